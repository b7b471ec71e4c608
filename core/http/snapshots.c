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
#include "space.h"
#include "store.h"
#include "tarball.h"
#include "util.h"

#define SNAPSHOTS__STEPCACHE_MAX 64
#define SNAPSHOTS__SEED_MAX (1 << 20) /* parsed on the loop: small ones only */

/* A caller waiting for a step file being read. */
typedef struct snapshots__waiter {
    ferry_snapshot_loaded_fn done;
    void *arg;
    struct snapshots__waiter *next;
} snapshots__waiter;

/* What reading a snapshot's step file gave: a snapshot never changes, so
 * neither does its step file, nor a failure to find or read it (a bomb is
 * not scanned again on each create). */
typedef struct snapshots__entry {
    ferry_stepfile *sf; /* NULL on failure or while loading */
    int rc;
    char *err;
    int loading;
    snapshots__waiter *waiters;
} snapshots__entry;

/* Parsed step files by snapshot: many executions of one snapshot parse it once. */
struct ferry_stepcache {
    ferry_map by_sha;
};

static void snapshots__entry_free(snapshots__entry *en)
{
    while (en->waiters) {
        snapshots__waiter *w = en->waiters;
        en->waiters = w->next;
        free(w);
    }
    ferry_stepfile_free(en->sf);
    free(en->err);
    free(en);
}

/* Drops the entries read (not those being read: their readers come back). */
static void snapshots__stepcache_trim(ferry_stepcache *c)
{
    ferry_map keep;
    ferry_map_init(&keep);
    size_t it = 0;
    const char *k;
    void *v;
    while (ferry_map_next(&c->by_sha, &it, &k, &v)) {
        snapshots__entry *en = v;
        if (en->loading)
            ferry_map_put(&keep, k, en);
        else
            snapshots__entry_free(en);
    }
    ferry_map_free(&c->by_sha);
    c->by_sha = keep;
}

void ferry_snapshots_close(ferryd *d)
{
    if (d->steps) {
        size_t it = 0;
        const char *k;
        void *v;
        while (ferry_map_next(&d->steps->by_sha, &it, &k, &v))
            snapshots__entry_free(v); /* a read under way finds no cache and drops its result */
        ferry_map_free(&d->steps->by_sha);
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

ferry_archive_limits ferry_snapshot_limits(const ferryd *d)
{
    ferry_archive_limits lim = ferry_archive_default_limits;
    lim.max_bytes = (int64_t)d->cfg.max_snapshot_mb << 20;
    return lim;
}

/* The bound a snapshot broke, for a message: "... (max_snapshot_mb = 100)". */
static const char *snapshots__bound(const ferry_archive_limits *lim, char *buf, size_t cap)
{
    if (lim->broken == FERRY_ARCHIVE_BROKE_BYTES)
        snprintf(buf, cap, "max_snapshot_mb = %lld", (long long)(lim->max_bytes >> 20));
    else if (lim->broken == FERRY_ARCHIVE_BROKE_MEMBERS)
        snprintf(buf, cap, "at most %lld members", (long long)lim->max_members);
    else
        snprintf(buf, cap, "compression ratio at most %lld", (long long)lim->max_ratio);
    return buf;
}

/* Reading a step file, on the thread pool: nothing here touches `d`. */
typedef struct snapshots__load {
    uv_work_t work;
    ferryd *d;
    char sha[65];
    char path[PATH_MAX];
    ferry_archive_limits lim;
    ferry_stepfile *sf;
    int rc;
    char err[1024];
    char why[512]; /* for our log: names our store's path */
} snapshots__load;

static void snapshots__load_work(uv_work_t *w)
{
    snapshots__load *l = w->data;
    static const char *names[] = {"ferry.yaml", "valohai.yaml"};
    int rc = FERRY_ENOENT;
    for (size_t i = 0; i < 2 && rc == FERRY_ENOENT; i++) {
        char *buf = NULL;
        size_t len = 0;
        rc = ferry_archive_read_member_limited(l->path, names[i], &l->lim, &buf, &len, l->why,
                                               sizeof(l->why));
        if (rc == 0) {
            rc = ferry_stepfile_parse_buffer(names[i], buf, len, &l->sf, l->err, sizeof(l->err));
        } else if (rc == FERRY_ETOOBIG) {
            char bound[96];
            snprintf(l->err, sizeof(l->err), "snapshot %s breaks a bound (%s): %s", l->sha,
                     snapshots__bound(&l->lim, bound, sizeof(bound)), l->why);
        } else if (rc != FERRY_ENOENT) {
            snprintf(l->err, sizeof(l->err), "snapshot %s is not a readable .tar.gz", l->sha);
        }
        free(buf);
    }
    if (rc == FERRY_ENOENT) {
        snprintf(l->err, sizeof(l->err),
                 "the snapshot has no ferry.yaml or valohai.yaml at its top level");
        rc = FERRY_EINVAL; /* the only ENOENT is an unknown snapshot */
    }
    l->rc = rc;
}

static void snapshots__load_done(uv_work_t *w, int status)
{
    snapshots__load *l = w->data;
    ferryd *d = l->d;
    snapshots__entry *en = d->steps ? ferry_map_get(&d->steps->by_sha, l->sha) : NULL;
    if (en == NULL) { /* the cache was closed meanwhile */
        ferry_stepfile_free(l->sf);
        free(l);
        return;
    }
    if (status < 0 && l->rc == 0) {
        ferry_stepfile_free(l->sf);
        l->sf = NULL;
        l->rc = FERRY_ECANCELED;
        snprintf(l->err, sizeof(l->err), "the step file of snapshot %s was not read", l->sha);
    }
    if (l->rc < 0 && l->rc != FERRY_EINVAL)
        ferry_warn("snapshot %s: %s", l->sha, l->why);
    en->loading = 0;
    en->sf = l->sf;
    en->rc = l->rc;
    en->err = ferry_strdup(l->rc < 0 ? l->err : "");
    snapshots__waiter *waiters = en->waiters;
    en->waiters = NULL;
    free(l);
    /* Each waiter finds the entry in the cache; none of them inserts. */
    while (waiters) {
        snapshots__waiter *next = waiters->next;
        waiters->done(d, waiters->arg);
        free(waiters);
        waiters = next;
    }
}

static ferry_stepcache *snapshots__cache(ferryd *d)
{
    if (d->steps == NULL) {
        d->steps = ferry_xcalloc(1, sizeof(*d->steps));
        ferry_map_init(&d->steps->by_sha);
    }
    if (d->steps->by_sha.len >= SNAPSHOTS__STEPCACHE_MAX)
        snapshots__stepcache_trim(d->steps);
    return d->steps;
}

void ferry_snapshot_seed_stepfile(ferryd *d, const char *sha, const char *name, const char *buf,
                                  size_t len)
{
    if (len > SNAPSHOTS__SEED_MAX || (d->steps && ferry_map_get(&d->steps->by_sha, sha)))
        return;
    ferry_stepcache *c = snapshots__cache(d);
    snapshots__entry *en = ferry_xcalloc(1, sizeof(*en));
    char err[1024] = "";
    en->rc = ferry_stepfile_parse_buffer(name, buf, len, &en->sf, err, sizeof(err));
    en->err = ferry_strdup(en->rc < 0 ? err : "");
    ferry_map_put(&c->by_sha, sha, en);
}

int ferry_snapshot_stepfile(ferryd *d, const char *sha, ferry_stepfile **out,
                            ferry_snapshot_loaded_fn done, void *arg, char *err, size_t cap)
{
    *out = NULL;
    snapshots__entry *en = d->steps ? ferry_map_get(&d->steps->by_sha, sha) : NULL;
    if (en == NULL) {
        char path[PATH_MAX];
        if (snapshots__path(d, sha, path, sizeof(path)) < 0) {
            snprintf(err, cap, "snapshot %s was not uploaded (POST /v1/snapshots first)", sha);
            return FERRY_ENOENT; /* not cached: it may come */
        }
        snapshots__cache(d);
        snapshots__load *l = ferry_xcalloc(1, sizeof(*l));
        l->d = d;
        snprintf(l->sha, sizeof(l->sha), "%s", sha);
        snprintf(l->path, sizeof(l->path), "%s", path);
        l->lim = ferry_snapshot_limits(d);
        l->work.data = l;
        if (uv_queue_work(d->loop, &l->work, snapshots__load_work, snapshots__load_done) < 0) {
            free(l);
            snprintf(err, cap, "cannot read the step file of snapshot %s now", sha);
            return FERRY_EIO;
        }
        en = ferry_xcalloc(1, sizeof(*en));
        en->loading = 1;
        ferry_map_put(&d->steps->by_sha, sha, en);
    }
    if (en->loading) {
        if (done != NULL) {
            snapshots__waiter *w = ferry_xcalloc(1, sizeof(*w));
            w->done = done;
            w->arg = arg;
            snapshots__waiter **tail = &en->waiters; /* in order of arrival */
            while (*tail)
                tail = &(*tail)->next;
            *tail = w;
        }
        snprintf(err, cap, "the step file of snapshot %s is being read", sha);
        return FERRY_EAGAIN;
    }
    if (en->rc < 0) {
        snprintf(err, cap, "%s", en->err);
        return en->rc;
    }
    *out = en->sf;
    return 0;
}

/* --- the endpoints --- */

/* An upload, checked against the bounds on the thread pool before it is
 * stored: the body is copied, since the request may go before the check ends. */
typedef struct snapshots__upload {
    uv_work_t work;
    ferryd *d;
    ferry_reply *reply;
    char *body;
    size_t len;
    char sha[65];
    int64_t size;
    ferry_archive_limits lim;
    int rc;
    char err[512];
} snapshots__upload;

static void snapshots__upload_free(snapshots__upload *s)
{
    free(s->body);
    free(s);
}

static void snapshots__stored(ferryd *d, ferry_reply *reply, int status, void *arg)
{
    (void)d;
    snapshots__upload *s = arg;
    if (status == 0)
        ferry_reply_json(reply, 201,
                         json_pack("{s:s, s:I}", "snapshot", s->sha, "size", (json_int_t)s->size));
    else
        ferry_reply_error(reply, status == FERRY_ENOSPC ? 507 : 503, NULL,
                          "the store did not take the snapshot: %s", ferry_strerror(status));
    snapshots__upload_free(s);
}

static void snapshots__check_work(uv_work_t *w)
{
    snapshots__upload *s = w->data;
    ferry_sha256_hex(s->body, s->len, s->sha);
    s->rc = ferry_archive_check(s->body, s->len, &s->lim, s->err, sizeof(s->err));
}

static void snapshots__checked(uv_work_t *w, int status)
{
    snapshots__upload *s = w->data;
    ferry_reply *reply = s->reply;
    if (status < 0 || s->rc < 0) {
        char bound[96];
        if (status < 0)
            ferry_reply_error(reply, 503, NULL, "the snapshot was not checked");
        else if (s->rc == FERRY_ETOOBIG)
            ferry_reply_error(reply, 413, NULL, "the snapshot breaks a bound (%s): %s",
                              snapshots__bound(&s->lim, bound, sizeof(bound)), s->err);
        else
            ferry_reply_error(reply, 400, NULL, "the snapshot is not a gzip'd tar: %s", s->err);
        ferry_reply_release(reply);
        snapshots__upload_free(s);
        return;
    }
    if (ferry_snapshot_store(s->d, s->sha, s->body, s->len, reply, snapshots__stored, s) < 0) {
        ferry_reply_error(reply, 503, NULL, "cannot store the snapshot");
        ferry_reply_release(reply);
        snapshots__upload_free(s);
    }
}

int ferry_snapshot_store(ferryd *d, const char *sha, const void *data, size_t len,
                         ferry_reply *reply, ferry_blobs_done_fn done, void *arg)
{
    char key[128], path[PATH_MAX];
    snapshots__key(sha, key, sizeof(key));
    if (ferry_store_local_path(d, key, path, sizeof(path)) == FERRY_ENOTSUP) {
        snprintf(path, sizeof(path), "%s/cache/%s.tar.gz", d->data_dir, sha);
        ferry_write_file(path, data, len);
    }
    return ferry_blobs_store_bytes(d, data, len, key, reply, done, arg);
}

typedef struct snapshots__put {
    ferryd *d;
    char sha[65];
    char path[PATH_MAX];
    ferry_snapshot_stored_fn done;
    void *arg;
} snapshots__put;

static void snapshots__put_done(void *arg, int status, const ferry_op_result *res)
{
    snapshots__put *p = arg;
    char key[128], local[PATH_MAX], cache[PATH_MAX];
    snapshots__key(p->sha, key, sizeof(key));
    if (status < 0)
        ferry_error("store: put %s: %s", key,
                    res && res->error ? res->error->message : ferry_strerror(status));
    snprintf(cache, sizeof(cache), "%s/cache/%s.tar.gz", p->d->data_dir, p->sha);
    if (status < 0 || ferry_store_local_path(p->d, key, local, sizeof(local)) != FERRY_ENOTSUP ||
        rename(p->path, cache) != 0)
        unlink(p->path); /* the step file is read from the store's copy, or from nowhere */
    p->done(p->d, status, p->arg);
    free(p);
}

int ferry_snapshot_store_file(ferryd *d, const char *sha, const char *path,
                              ferry_snapshot_stored_fn done, void *arg)
{
    char key[128];
    snapshots__key(sha, key, sizeof(key));
    snapshots__put *p = ferry_xcalloc(1, sizeof(*p));
    p->d = d;
    snprintf(p->sha, sizeof(p->sha), "%s", sha);
    snprintf(p->path, sizeof(p->path), "%s", path);
    p->done = done;
    p->arg = arg;
    int rc = ferry_store_put(d, key, path, snapshots__put_done, p);
    if (rc < 0)
        free(p);
    return rc;
}

int ferry_snapshot_exists(ferryd *d, const char *sha)
{
    char path[PATH_MAX];
    return snapshots__path(d, sha, path, sizeof(path)) == 0;
}

void ferry_snapshots_upload(ferry_http_req *r)
{
    h2o_iovec_t body = r->req->entity;
    if (body.len == 0) {
        ferry_http_error(r->req, 400, NULL, "the snapshot body is empty");
        return;
    }
    char msg[PATH_MAX + 128]; /* new data: refused under the reserve (space.c) */
    if (ferry_space_check(r->d, msg, sizeof(msg)) < 0) {
        ferry_http_code_error(r->req, FERRY_ENOSPC, "%s", msg);
        return;
    }
    snapshots__upload *s = ferry_xcalloc(1, sizeof(*s));
    s->d = r->d;
    s->body = ferry_xmalloc(body.len);
    memcpy(s->body, body.base, body.len);
    s->len = body.len;
    s->size = (int64_t)body.len;
    s->lim = ferry_snapshot_limits(r->d);
    s->work.data = s;
    s->reply = ferry_http_reply(r->d, r->req);
    if (uv_queue_work(r->d->loop, &s->work, snapshots__check_work, snapshots__checked) < 0) {
        ferry_reply_error(s->reply, 503, NULL, "cannot check the snapshot now");
        ferry_reply_release(s->reply);
        snapshots__upload_free(s);
    }
}

void ferry_snapshots_head(ferry_http_req *r)
{
    const char *sha = r->segs[2];
    int ok = ferry_is_sha256_hex(sha) && ferry_snapshot_exists(r->d, sha);
    r->req->res.status = ok ? 200 : 404;
    r->req->res.reason = ok ? "OK" : "Not Found";
    r->req->res.content_length = 0;
    h2o_send_inline(r->req, "", 0);
}

const ferry_step *ferry_snapshot_find_step(ferryd *d, const char *sha, const char *step,
                                           int *loading)
{
    ferry_stepfile *sf;
    char err[256];
    int rc = ferry_snapshot_stepfile(d, sha, &sf, NULL, NULL, err, sizeof(err));
    *loading = rc == FERRY_EAGAIN;
    return rc < 0 ? NULL : ferry_stepfile_find(sf, step);
}
