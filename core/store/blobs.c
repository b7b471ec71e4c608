/* Signed blob URLs served by ferryd itself (see blobs.h). */
#include "blobs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "exec.h"
#include "log.h"
#include "store.h"
#include "uploads.h"
#include "util.h"

static void blobs__sign(ferryd *d, const char *method, const char *key, long long expires,
                        const char *sha256, char *sig)
{
    char *msg = ferry_asprintf("%s\n%s\n%lld\n%s", method, key, expires, sha256 ? sha256 : "");
    ferry_hmac_sha256_hex(d->secret, strlen(d->secret), msg, strlen(msg), sig);
    free(msg);
}

/* Keys are made of safe path segments; escape anything else for the URL. */
static char *blobs__escape_key(const char *key)
{
    size_t n = strlen(key);
    char *out = ferry_xmalloc(n * 3 + 1), *o = out;
    for (const unsigned char *p = (const unsigned char *)key; *p; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            strchr("-._~/", *p))
            *o++ = (char)*p;
        else
            o += sprintf(o, "%%%02X", *p);
    }
    *o = '\0';
    return out;
}

char *ferry_blobs_url(ferryd *d, const char *method, const char *key, int expires_s,
                      const char *sha256)
{
    long long expires = (long long)time(NULL) + expires_s;
    char sig[65];
    blobs__sign(d, method, key, expires, sha256, sig);
    char *esc = blobs__escape_key(key);
    char *url = ferry_asprintf("%s/v1/blobs/%s?expires=%lld%s%s&sig=%s", d->server_url, esc,
                               expires, sha256 ? "&sha256=" : "", sha256 ? sha256 : "", sig);
    free(esc);
    return url;
}

char *ferry_blobs_worker_url(ferryd *d, const char *method, const char *key, int expires_s,
                             const char *sha256, int *presigned)
{
    ferry_error_detail err = {.struct_size = sizeof(err)};
    char *url = ferry_store_presign(d, method, key, expires_s, &err);
    if (presigned)
        *presigned = url != NULL;
    if (url)
        return url;
    if (err.code != FERRY_ENOTSUP)
        ferry_warn("store: presign %s failed: %s; serving it through ferryd", key, err.message);
    return ferry_blobs_url(d, method, key, expires_s, sha256);
}

int ferry_blobs_signature_ok(ferryd *d, const char *method, const char *key, const char *expires,
                             const char *sha256, const char *sig)
{
    char want[65];
    long long exp = strtoll(expires, NULL, 10);
    if (exp < (long long)time(NULL))
        return 0;
    blobs__sign(d, method, key, exp, sha256 && sha256[0] ? sha256 : NULL, want);
    return ferry_secure_streq(sig, want);
}

typedef struct blobs__put {
    ferryd *d;
    ferry_reply *reply;
    char *key;
    char tmp[PATH_MAX];
    ferry_blobs_done_fn done;
    void *arg;
} blobs__put;

static void blobs__put_done(void *arg, int status, const ferry_op_result *res)
{
    blobs__put *p = arg;
    if (status < 0)
        ferry_error("store: put %s: %s", p->key,
                    res && res->error ? res->error->message : ferry_strerror(status));
    unlink(p->tmp);
    p->done(p->d, p->reply, status, p->arg);
    ferry_reply_release(p->reply);
    free(p->key);
    free(p);
}

int ferry_blobs_store_bytes(ferryd *d, const void *data, size_t len, const char *key,
                            ferry_reply *reply, ferry_blobs_done_fn done, void *arg)
{
    blobs__put *p = ferry_xcalloc(1, sizeof(*p));
    snprintf(p->tmp, sizeof(p->tmp), "%s/tmp/upload.XXXXXX", d->data_dir);
    int rc = ferry_write_temp(p->tmp, data, len);
    if (rc < 0) {
        ferry_error("upload of %s: cannot write a temporary file: %s", key, ferry_strerror(rc));
        free(p);
        return FERRY_EIO;
    }
    p->d = d;
    p->key = ferry_strdup(key);
    p->done = done;
    p->arg = arg;
    rc = ferry_store_put(d, key, p->tmp, blobs__put_done, p);
    if (rc < 0) {
        unlink(p->tmp);
        free(p->key);
        free(p);
        return rc;
    }
    /* Safe after the call: an op completes on a later loop turn, never
     * inside the call that started it (lib/plugin.c). */
    p->reply = reply;
    return 0;
}

/* executions/<uuid>/outputs/<name>: the execution's id and the output name. */
static int blobs__output_key(const char *key, char *id, const char **name)
{
    if (strncmp(key, "executions/", 11) != 0 || strlen(key) < 11 + 36 + 9)
        return 0;
    memcpy(id, key + 11, 36);
    id[36] = '\0';
    if (strncmp(key + 47, "/outputs/", 9) != 0)
        return 0;
    *name = key + 56;
    return ferry_safe_relpath(*name);
}

typedef struct blobs__output {
    char id[37];
    char *name;
    int64_t size;
    char sha256[65];
} blobs__output;

static void blobs__output_stored(ferryd *d, ferry_reply *reply, int status, void *arg)
{
    blobs__output *o = arg;
    /* A live output is recorded on the worker's report (uploads.c). */
    if (status == 0 && !ferry_uploads_live_stored(d, o->id, o->name, o->size, o->sha256))
        ferry_exec_add_output(d, o->id, o->name, o->size, o->sha256);
    if (status == 0)
        ferry_reply_json(reply, 201,
                         json_pack("{s:s, s:I}", "name", o->name, "size", (json_int_t)o->size));
    else
        ferry_reply_error(reply, 503, NULL, "the store did not take the object: %s",
                          ferry_strerror(status));
    free(o->name);
    free(o);
}

void ferry_blobs_put_output(ferryd *d, const char *key, const void *data, size_t len,
                            const char *sha256, ferry_reply *reply)
{
    char id[37], got[65];
    const char *name = NULL;
    if (!blobs__output_key(key, id, &name)) {
        ferry_reply_error(reply, 403, NULL, "uploads are only accepted for execution outputs");
        ferry_reply_release(reply);
        return;
    }
    if (ferry_map_get(&d->active, id) == NULL) {
        ferry_reply_error(reply, 409, NULL, "execution %s is not running", id);
        ferry_reply_release(reply);
        return;
    }
    ferry_sha256_hex(data ? data : "", len, got);
    if (sha256 == NULL || sha256[0] == '\0' || strcmp(got, sha256) != 0) {
        ferry_reply_error(reply, 400, NULL, "body does not match the signed sha256");
        ferry_reply_release(reply);
        return;
    }
    blobs__output *o = ferry_xcalloc(1, sizeof(*o));
    memcpy(o->id, id, sizeof(o->id));
    o->name = ferry_strdup(name);
    o->size = (int64_t)len;
    memcpy(o->sha256, got, sizeof(o->sha256));
    if (ferry_blobs_store_bytes(d, data, len, key, reply, blobs__output_stored, o) < 0) {
        free(o->name);
        free(o);
        ferry_reply_error(reply, 503, NULL, "cannot store the upload");
        ferry_reply_release(reply);
    }
}
