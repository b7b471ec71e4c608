/* Snapshots: POST and HEAD /v1/snapshots, where ferryd keeps them, and the
 * step files they hold, parsed once per snapshot. */
#include "snapshots.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "blobs.h"
#include "log.h"
#include "store.h"
#include "tarball.h"
#include "util.h"

#define SNAPSHOTS__STEPCACHE_MAX 64

/* Parsed step files by snapshot: a snapshot never changes, so neither does
 * its step file; many executions of one snapshot parse it once. */
struct ferry_stepcache {
    ferry_map by_sha;
};

static void snapshots__stepcache_clear(ferry_stepcache *c)
{
    size_t it = 0;
    const char *k;
    void *v;
    while (ferry_map_next(&c->by_sha, &it, &k, &v))
        ferry_stepfile_free(v);
    ferry_map_free(&c->by_sha);
}

void ferry_snapshots_close(ferryd *d)
{
    if (d->steps) {
        snapshots__stepcache_clear(d->steps);
        free(d->steps);
        d->steps = NULL;
    }
}

static void snapshots__key(const char *sha, char *key, size_t cap)
{
    snprintf(key, cap, "snapshots/%s.tar.gz", sha);
}

/* Where the snapshot can be read on this host: the store's own file, or
 * the copy kept at upload for stores that are not local directories. */
static int snapshots__path(ferryd *d, const char *sha, char *path, size_t cap)
{
    char key[128];
    snapshots__key(sha, key, sizeof(key));
    int rc = ferry_store_local_path(d, key, path, cap);
    if (rc != FERRY_ENOTSUP)
        return rc;
    snprintf(path, cap, "%s/cache/%s.tar.gz", d->data_dir, sha);
    return access(path, R_OK) == 0 ? 0 : FERRY_ENOENT;
}

int ferry_snapshot_stepfile(ferryd *d, const char *sha, ferry_stepfile **out, char *err, size_t cap)
{
    if (d->steps == NULL) {
        d->steps = ferry_xcalloc(1, sizeof(*d->steps));
        ferry_map_init(&d->steps->by_sha);
    }
    if ((*out = ferry_map_get(&d->steps->by_sha, sha)) != NULL)
        return 0;
    char path[PATH_MAX];
    if (snapshots__path(d, sha, path, sizeof(path)) < 0) {
        snprintf(err, cap, "snapshot %s was not uploaded (POST /v1/snapshots first)", sha);
        return FERRY_ENOENT; /* the only ENOENT: an unknown snapshot */
    }
    static const char *names[] = {"ferry.yaml", "valohai.yaml"};
    int rc = FERRY_ENOENT;
    for (size_t i = 0; i < 2 && rc == FERRY_ENOENT; i++) {
        char *buf = NULL;
        size_t len = 0;
        char why[512];
        rc = ferry_archive_read_member(path, names[i], &buf, &len, why, sizeof(why));
        if (rc == 0) {
            rc = ferry_stepfile_parse_buffer(names[i], buf, len, out, err, cap);
        } else if (rc != FERRY_ENOENT) {
            /* The reader's message names our store's path: keep it in our log. */
            ferry_warn("snapshot %s: %s", sha, why);
            snprintf(err, cap, "snapshot %s is not a readable .tar.gz", sha);
        }
        free(buf);
    }
    if (rc == FERRY_ENOENT)
        snprintf(err, cap, "the snapshot has no ferry.yaml or valohai.yaml at its top level");
    if (rc < 0)
        return rc == FERRY_ENOENT ? FERRY_EINVAL : rc;
    if (d->steps->by_sha.len >= SNAPSHOTS__STEPCACHE_MAX)
        snapshots__stepcache_clear(d->steps);
    ferry_map_put(&d->steps->by_sha, sha, *out);
    return 0;
}

/* --- the endpoints --- */

typedef struct snapshots__upload {
    char sha[65];
    int64_t size;
} snapshots__upload;

static void snapshots__stored(ferryd *d, ferry_reply *reply, int status, void *arg)
{
    (void)d;
    snapshots__upload *s = arg;
    if (status == 0)
        ferry_reply_json(reply, 201,
                         json_pack("{s:s, s:I}", "snapshot", s->sha, "size", (json_int_t)s->size));
    else
        ferry_reply_error(reply, 503, NULL, "the store did not take the snapshot: %s",
                          ferry_strerror(status));
    free(s);
}

void ferry_snapshots_upload(ferry_http_req *r)
{
    h2o_iovec_t body = r->req->entity;
    if (body.len == 0) {
        ferry_http_error(r->req, 400, NULL, "the snapshot body is empty");
        return;
    }
    snapshots__upload *s = ferry_xcalloc(1, sizeof(*s));
    ferry_sha256_hex(body.base, body.len, s->sha);
    s->size = (int64_t)body.len;
    char key[128], path[PATH_MAX];
    snapshots__key(s->sha, key, sizeof(key));
    if (ferry_store_local_path(r->d, key, path, sizeof(path)) == FERRY_ENOTSUP) {
        snprintf(path, sizeof(path), "%s/cache/%s.tar.gz", r->d->data_dir, s->sha);
        ferry_write_file(path, body.base, body.len);
    }
    ferry_reply *reply = ferry_http_reply(r->d, r->req);
    if (ferry_blobs_store_bytes(r->d, body.base, body.len, key, reply, snapshots__stored, s) < 0) {
        free(s);
        ferry_reply_error(reply, 503, NULL, "cannot store the snapshot");
        ferry_reply_release(reply);
    }
}

void ferry_snapshots_head(ferry_http_req *r)
{
    const char *sha = r->segs[2];
    char path[PATH_MAX];
    int ok = ferry_is_sha256_hex(sha) && snapshots__path(r->d, sha, path, sizeof(path)) == 0;
    r->req->res.status = ok ? 200 : 404;
    r->req->res.reason = ok ? "OK" : "Not Found";
    r->req->res.content_length = 0;
    h2o_send_inline(r->req, "", 0);
}

const ferry_step *ferry_snapshot_find_step(ferryd *d, const char *sha, const char *step)
{
    ferry_stepfile *sf;
    char err[256];
    if (ferry_snapshot_stepfile(d, sha, &sf, err, sizeof(err)) < 0)
        return NULL;
    return ferry_stepfile_find(sf, step);
}
