/* hello-store: a template store plugin for ferry. Copy this folder, rename
 * it, and replace the in-memory "backend" with calls to your storage.
 *
 * It shows the parts every plugin has:
 *   - one descriptor, exported with FERRY_PLUGIN_DEFINE (the only symbol
 *     the plugin exports: build with -fvisibility=hidden);
 *   - init reading settings through host->config_get;
 *   - asynchronous ops: blocking work goes to host->queue_work, the result
 *     goes back through host->op_complete, exactly once, on the loop thread;
 *   - errors as a ferry code plus a ferry_error_detail;
 *   - optional ops left NULL (list, remove): the host treats them as
 *     unsupported.
 *
 * Objects live in memory, keyed by name. Setting `max_bytes` (optional)
 * caps the size of one object.
 */
#define _POSIX_C_SOURCE 200809L /* strdup */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ferry/buf.h>
#include <ferry/ferry.h>

typedef struct hello_object {
    char *key;
    char *data;
    size_t len;
    struct hello_object *next;
} hello_object;

typedef struct hello_state {
    ferry_plugin_ctx *ctx;
    const ferry_host_api *host;
    long max_bytes;
    hello_object *objects; /* only touched on the loop thread */
} hello_state;

/* One put or get on its way through the worker pool. The worker touches
 * only the job, never the shared state: no locks needed. */
typedef struct hello_job {
    hello_state *st;
    ferry_op *op;
    char *key;
    char *path;
    char *data; /* put: read by the worker; get: a copy to write out */
    size_t len;
    int status;
    ferry_error_detail err;
} hello_job;

/* ferryd checks keys before they reach a plugin; a store that checks them
 * again stays safe however it is driven (ferry-conformance checks this).
 * A key is a relative path without empty, "." or ".." parts. */
static int hello_key_ok(const char *key)
{
    if (key == NULL || key[0] == '\0' || key[0] == '/')
        return 0;
    for (const char *p = key; *p;) {
        size_t n = strcspn(p, "/");
        if (n == 0 || (n == 1 && p[0] == '.') || (n == 2 && strncmp(p, "..", 2) == 0))
            return 0;
        p += n + (p[n] == '/');
    }
    return 1;
}

static hello_object *hello_find(hello_state *st, const char *key)
{
    for (hello_object *o = st->objects; o != NULL; o = o->next)
        if (strcmp(o->key, key) == 0)
            return o;
    return NULL;
}

static void hello_job_free(hello_job *job)
{
    free(job->key);
    free(job->path);
    free(job->data);
    free(job);
}

static hello_job *hello_job_new(hello_state *st, const char *key, const char *path, ferry_op *op)
{
    hello_job *job = calloc(1, sizeof(*job));
    if (job == NULL)
        return NULL;
    job->st = st;
    job->op = op;
    job->key = strdup(key);
    job->path = strdup(path);
    if (job->key == NULL || job->path == NULL) {
        hello_job_free(job);
        return NULL;
    }
    return job;
}

/* Completes the op with the job's outcome; the host copies the result. */
static void hello_complete(hello_job *job)
{
    ferry_op_result r = {.struct_size = sizeof(r), .size = (int64_t)job->len};
    if (job->status < 0)
        r.error = &job->err;
    job->st->host->op_complete(job->op, job->status, &r);
    hello_job_free(job);
}

/* --- put_file ----------------------------------------------------------- */

static void hello_put_work(void *arg) /* worker thread */
{
    hello_job *job = arg;
    FILE *f = fopen(job->path, "rb");
    if (f == NULL) {
        job->status = ferry_error_set(&job->err, FERRY_EIO, 0, NULL, "open %s: %s", job->path,
                                      strerror(errno));
        return;
    }
    /* ferry/buf.h grows the buffer; the job keeps its bytes and length. */
    ferry_buf b = FERRY_BUF_INIT;
    size_t n;
    int rc;
    while ((rc = ferry_buf_reserve(&b, 4096)) == 0 &&
           (n = fread(b.data + b.len, 1, b.cap - b.len - 1, f)) > 0)
        b.len += n;
    job->data = b.data;
    job->len = b.len;
    if (rc != 0)
        job->status = ferry_error_set(&job->err, FERRY_ENOMEM, 0, NULL, "out of memory");
    else if (ferror(f))
        job->status = ferry_error_set(&job->err, FERRY_EIO, 1, NULL, "read %s", job->path);
    fclose(f);
}

static void hello_put_after(void *arg, int status) /* loop thread */
{
    hello_job *job = arg;
    hello_state *st = job->st;
    if (status < 0 && job->status == 0) /* the host canceled the work */
        job->status = ferry_error_set(&job->err, status, 1, NULL, "put canceled");
    if (job->status == 0 && st->max_bytes > 0 && job->len > (size_t)st->max_bytes)
        job->status =
            ferry_error_set(&job->err, FERRY_ETOOBIG, 0, NULL, "%s: %zu bytes, max_bytes is %ld",
                            job->key, job->len, st->max_bytes);
    if (job->status == 0) {
        /* Swap the object in whole: a reader never sees a partial one. */
        hello_object *o = hello_find(st, job->key);
        if (o == NULL && (o = calloc(1, sizeof(*o))) != NULL) {
            o->key = job->key;
            job->key = NULL;
            o->next = st->objects;
            st->objects = o;
        }
        if (o == NULL) {
            job->status = ferry_error_set(&job->err, FERRY_ENOMEM, 0, NULL, "out of memory");
        } else {
            free(o->data);
            o->data = job->data;
            o->len = job->len;
            job->data = NULL;
        }
    }
    hello_complete(job);
}

static int hello_put_file(void *state, const char *key, const char *path, ferry_op *op)
{
    hello_state *st = state;
    if (!hello_key_ok(key))
        return FERRY_EUNSAFE;
    hello_job *job = hello_job_new(st, key, path, op);
    if (job == NULL)
        return FERRY_ENOMEM;
    /* A negative return means "not started": the host then drops the op. */
    int rc = st->host->queue_work(st->ctx, hello_put_work, hello_put_after, job);
    if (rc < 0)
        hello_job_free(job);
    return rc;
}

/* --- get_file ----------------------------------------------------------- */

static void hello_get_work(void *arg) /* worker thread */
{
    hello_job *job = arg;
    FILE *f = fopen(job->path, "wb");
    if (f == NULL || fwrite(job->data, 1, job->len, f) != job->len)
        job->status = ferry_error_set(&job->err, FERRY_EIO, 0, NULL, "write %s: %s", job->path,
                                      strerror(errno));
    if (f != NULL && fclose(f) != 0 && job->status == 0)
        job->status = ferry_error_set(&job->err, FERRY_EIO, 0, NULL, "write %s", job->path);
}

static void hello_get_after(void *arg, int status) /* loop thread */
{
    hello_job *job = arg;
    if (status < 0 && job->status == 0)
        job->status = ferry_error_set(&job->err, status, 1, NULL, "get canceled");
    hello_complete(job);
}

static int hello_get_file(void *state, const char *key, const char *path, ferry_op *op)
{
    hello_state *st = state;
    if (!hello_key_ok(key))
        return FERRY_EUNSAFE;
    hello_job *job = hello_job_new(st, key, path, op);
    if (job == NULL)
        return FERRY_ENOMEM;
    hello_object *o = hello_find(st, key);
    if (o == NULL) {
        /* Completing inside the call is fine: the host defers `done`. */
        job->status = ferry_error_set(&job->err, FERRY_ENOENT, 0, "NoSuchKey", "no object %s", key);
        hello_complete(job);
        return 0;
    }
    /* The worker writes a private copy, so a later put cannot race it. */
    job->data = malloc(o->len ? o->len : 1);
    if (job->data == NULL) {
        hello_job_free(job);
        return FERRY_ENOMEM;
    }
    memcpy(job->data, o->data, o->len);
    job->len = o->len;
    int rc = st->host->queue_work(st->ctx, hello_get_work, hello_get_after, job);
    if (rc < 0)
        hello_job_free(job);
    return rc;
}

/* --- head --------------------------------------------------------------- */

static int hello_head(void *state, const char *key, ferry_op *op)
{
    hello_state *st = state;
    hello_object *o = hello_find(st, key);
    ferry_error_detail err;
    ferry_op_result r = {.struct_size = sizeof(r)};
    if (o == NULL) {
        r.error = &err;
        st->host->op_complete(
            op, ferry_error_set(&err, FERRY_ENOENT, 0, "NoSuchKey", "no object %s", key), &r);
        return 0;
    }
    r.size = (int64_t)o->len;
    st->host->op_complete(op, 0, &r);
    return 0;
}

static const ferry_store_ops hello_ops = {
    .struct_size = sizeof(ferry_store_ops),
    .put_file = hello_put_file,
    .get_file = hello_get_file,
    .head = hello_head,
    /* list, remove, presign, local_path: NULL = not supported */
};

/* --- lifecycle ---------------------------------------------------------- */

static int hello_init(ferry_plugin_ctx *ctx, const ferry_host_api *host, void **state,
                      ferry_error_detail *err)
{
    hello_state *st = calloc(1, sizeof(*st));
    if (st == NULL)
        return ferry_error_set(err, FERRY_ENOMEM, 0, NULL, "hello-store: out of memory");
    const char *max = host->config_get(ctx, "max_bytes");
    if (max != NULL) {
        char *end;
        st->max_bytes = strtol(max, &end, 10);
        if (*end != '\0' || st->max_bytes < 0) {
            free(st);
            return ferry_error_set(err, FERRY_ECONFIG, 0, NULL,
                                   "hello-store: max_bytes must be a number of bytes, not \"%s\"",
                                   max);
        }
    }
    st->ctx = ctx;
    st->host = host;
    host->log(ctx, FERRY_LOG_INFO, "ready (max_bytes %ld)", st->max_bytes);
    *state = st;
    return 0;
}

/* The host calls fini once no queued work is in flight. */
static void hello_fini(void *state)
{
    hello_state *st = state;
    while (st->objects != NULL) {
        hello_object *o = st->objects;
        st->objects = o->next;
        free(o->key);
        free(o->data);
        free(o);
    }
    free(st);
}

static const char *const hello_settings[] = {"max_bytes", NULL};

static const ferry_plugin_descriptor hello_descriptor = {
    .struct_size = sizeof(ferry_plugin_descriptor),
    .abi_major = FERRY_ABI_MAJOR,
    .abi_minor = FERRY_ABI_MINOR,
    .kind = FERRY_PLUGIN_STORE,
    .name = "hello-store",
    .version = "0.1.0",
    .init = hello_init,
    .fini = hello_fini,
    .ops = &hello_ops,
    .settings = hello_settings,
};

FERRY_PLUGIN_DEFINE(hello_descriptor)
