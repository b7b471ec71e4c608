/* s3-storage: a store plugin that keeps objects in an S3 bucket (AWS, or
 * any S3-compatible server: MinIO, Ceph, s3rver), under an optional key
 * prefix. Key "a/b.bin" is the object <prefix>a/b.bin.
 *
 * Every request is signed with SigV4 (sdk/src/sigv4.c) and sent through the
 * SDK's asynchronous HTTP client on the host's loop; hashing file parts and
 * renaming downloads run on the host's worker pool. Objects appear whole or
 * not at all: a single PUT is atomic in S3, a multipart upload is aborted
 * when any part fails, a download goes to a temporary file renamed at the
 * end.
 *
 * Settings (see plugins/s3-storage/README.md): bucket (required), prefix,
 * region, endpoint, path_style, access_key_id, secret_access_key,
 * session_token, multipart_threshold, part_size, parallel_parts,
 * max_attempts, stall_timeout, list_page_size.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#include "s3.h"

void s3_op_finish(s3_state *st, ferry_op *op, int status, int64_t size, const char *text,
                  const ferry_error_detail *err)
{
    ferry_op_result r = {.struct_size = sizeof(r), .size = size, .text = text};
    if (status < 0)
        r.error = err;
    st->host->op_complete(op, status, &r);
}

/* ------------------------------------------------------------------------ */
/* put_file below the multipart threshold: one PUT                          */

typedef struct s3_put {
    s3_state *st;
    ferry_op *op;
    char *key;
    char *path;
    int64_t size;
    char hash[65];
    int hash_rc;
} s3_put;

static void s3_put_free(s3_put *p)
{
    free(p->key);
    free(p->path);
    free(p);
}

static void s3_put_done(s3_call *c)
{
    s3_put *p = c->arg;
    if (!p->st->closing)
        s3_op_finish(p->st, p->op, c->status, p->size, NULL, &c->err);
    s3_put_free(p);
}

static int s3_put_send(s3_put *p, const char *payload_hash)
{
    s3_call *c = s3_call_new(&p->st->eng, "PUT", p->key, s3_put_done, p);
    if (c == NULL || (c->upload_path = strdup(p->path)) == NULL) {
        s3_call_discard(c);
        return FERRY_ENOMEM;
    }
    snprintf(c->payload_hash, sizeof(c->payload_hash), "%s", payload_hash);
    return s3_call_start(c);
}

static void s3_put_hash_work(void *arg)
{
    s3_put *p = arg;
    p->hash_rc = ferry_sigv4_sha256_file(p->path, 0, -1, p->hash);
}

static void s3_put_hash_after(void *arg, int status)
{
    s3_put *p = arg;
    ferry_error_detail e;
    int rc = status < 0 ? status : p->hash_rc;
    if (rc == 0 && (rc = s3_put_send(p, p->hash)) == 0)
        return;
    ferry_error_set(&e, rc, 0, NULL, "S3 PUT %s: reading %s: %s", p->key, p->path,
                    ferry_strerror(rc));
    s3_op_finish(p->st, p->op, rc, 0, NULL, &e);
    s3_put_free(p);
}

/* Over TLS the payload goes UNSIGNED (TLS protects it, and the file is read
 * once); over plain HTTP S3 wants its SHA-256, hashed on the worker pool. */
static int s3_put_single(s3_state *st, const char *full_key, const char *path, int64_t size,
                         ferry_op *op)
{
    s3_put *p = calloc(1, sizeof(*p));
    if (p == NULL || (p->key = strdup(full_key)) == NULL || (p->path = strdup(path)) == NULL) {
        if (p)
            s3_put_free(p);
        return FERRY_ENOMEM;
    }
    p->st = st;
    p->op = op;
    p->size = size;
    int rc = st->https ? s3_put_send(p, FERRY_SIGV4_UNSIGNED_PAYLOAD)
                       : st->host->queue_work(st->ctx, s3_put_hash_work, s3_put_hash_after, p);
    if (rc != 0)
        s3_put_free(p); /* neither the call's done nor the work's after will run */
    return rc;
}

static int s3_put_file(void *state, const char *key, const char *path, ferry_op *op)
{
    s3_state *st = state;
    if (!s3_key_is_safe(key))
        return FERRY_EUNSAFE;
    if (path == NULL || path[0] == '\0')
        return FERRY_EINVAL;
    struct stat sb;
    if (stat(path, &sb) != 0)
        return errno == ENOENT ? FERRY_ENOENT : FERRY_EIO;
    if (!S_ISREG(sb.st_mode))
        return FERRY_EINVAL;
    char *full = s3_full_key(st, key);
    if (full == NULL)
        return FERRY_ENOMEM;
    int64_t size = (int64_t)sb.st_size;
    int rc = size > st->cfg.multipart_threshold ? s3_multipart_put(st, full, path, size, op)
                                                : s3_put_single(st, full, path, size, op);
    free(full);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* head, remove                                                             */

static void s3_simple_done(s3_call *c)
{
    s3_state *st = c->eng->data;
    ferry_op *op = c->arg;
    if (st->closing)
        return;
    int64_t size = 0;
    char len[32], etag[256];
    const char *tag = NULL;
    const ferry_http_response res = {.struct_size = sizeof(res), .headers = c->resp_headers};
    if (c->status == 0 && strcmp(c->method, "HEAD") == 0) {
        if (ferry_http_header(&res, "Content-Length", len, sizeof(len)))
            size = strtoll(len, NULL, 10);
        tag = ferry_http_header(&res, "ETag", etag, sizeof(etag)); /* for caches */
    }
    s3_op_finish(st, op, c->status, size, tag, &c->err);
}

static int s3_simple(s3_state *st, const char *method, const char *key, ferry_op *op)
{
    if (!s3_key_is_safe(key))
        return FERRY_EUNSAFE;
    char *full = s3_full_key(st, key);
    s3_call *c = full ? s3_call_new(&st->eng, method, full, s3_simple_done, op) : NULL;
    free(full);
    if (c == NULL)
        return FERRY_ENOMEM;
    return s3_call_start(c);
}

static int s3_head(void *state, const char *key, ferry_op *op)
{
    return s3_simple(state, "HEAD", key, op);
}

/* S3 answers 204 whether or not the key was there, as the contract wants. */
static int s3_remove(void *state, const char *key, ferry_op *op)
{
    return s3_simple(state, "DELETE", key, op);
}

static int s3_get(void *state, const char *key, const char *path, ferry_op *op)
{
    s3_state *st = state;
    if (!s3_key_is_safe(key))
        return FERRY_EUNSAFE;
    if (path == NULL || path[0] == '\0')
        return FERRY_EINVAL;
    char *full = s3_full_key(st, key);
    if (full == NULL)
        return FERRY_ENOMEM;
    int rc = s3_get_file(st, full, path, op);
    free(full);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* list: ListObjectsV2, page after page                                     */

typedef struct s3_listing {
    s3_state *st;
    ferry_op *op;
    char *prefix; /* full */
    json_t *out;
} s3_listing;

static void s3_list_free(s3_listing *l)
{
    free(l->prefix);
    json_decref(l->out);
    free(l);
}

static int s3_list_next(s3_listing *l, const char *token);

/* Keys come back full; the store's own keys are what follows the prefix. */
static int s3_list_take(s3_listing *l, const s3_list_page *page)
{
    size_t skip = strlen(l->st->cfg.prefix);
    for (size_t i = 0; i < page->n; i++) {
        if (strncmp(page->keys[i], l->st->cfg.prefix, skip) != 0)
            continue;
        json_t *e = json_pack("{s:s, s:I}", "key", page->keys[i] + skip, "size",
                              (json_int_t)page->sizes[i]);
        if (e == NULL || json_array_append_new(l->out, e) != 0)
            return FERRY_ENOMEM;
    }
    return 0;
}

static void s3_list_done(s3_call *c)
{
    s3_listing *l = c->arg;
    if (l->st->closing) {
        s3_list_free(l);
        return;
    }
    ferry_error_detail e = c->err;
    int rc = c->status;
    s3_list_page page = {0};
    if (rc == 0 && (rc = s3_xml_list(c->resp_body, c->resp_len, &page)) != 0)
        ferry_error_set(&e, rc, 1, NULL, "S3 ListObjectsV2: an answer that is not a listing");
    if (rc == 0 && (rc = s3_list_take(l, &page)) != 0)
        ferry_error_set(&e, rc, 0, NULL, "S3 ListObjectsV2: out of memory");
    if (rc == 0 && page.truncated && page.next_token && page.next_token[0]) {
        rc = s3_list_next(l, page.next_token);
        s3_list_page_free(&page);
        if (rc == 0)
            return;
        ferry_error_set(&e, rc, 0, NULL, "S3 ListObjectsV2: %s", ferry_strerror(rc));
    }
    s3_list_page_free(&page);
    char *text = rc == 0 ? json_dumps(l->out, JSON_COMPACT) : NULL;
    if (rc == 0 && text == NULL)
        rc = ferry_error_set(&e, FERRY_ENOMEM, 0, NULL, "S3 ListObjectsV2: out of memory");
    s3_op_finish(l->st, l->op, rc, 0, text, &e);
    free(text);
    s3_list_free(l);
}

static int s3_list_next(s3_listing *l, const char *token)
{
    char *p = ferry_sigv4_uri_encode(l->prefix, strlen(l->prefix), 0);
    char *t = token ? ferry_sigv4_uri_encode(token, strlen(token), 0) : NULL;
    s3_call *c = s3_call_new(&l->st->eng, "GET", NULL, s3_list_done, l);
    int rc = p && (t || !token) && c ? 0 : FERRY_ENOMEM;
    if (rc == 0 &&
        asprintf(&c->query, "list-type=2&encoding-type=url&max-keys=%d&prefix=%s%s%s",
                 l->st->cfg.list_page_size, p, t ? "&continuation-token=" : "", t ? t : "") < 0) {
        c->query = NULL;
        rc = FERRY_ENOMEM;
    }
    free(p);
    free(t);
    if (rc != 0) {
        s3_call_discard(c);
        return rc;
    }
    return s3_call_start(c);
}

static int s3_list_op(void *state, const char *prefix, ferry_op *op)
{
    s3_state *st = state;
    s3_listing *l = calloc(1, sizeof(*l));
    if (l == NULL)
        return FERRY_ENOMEM;
    l->st = st;
    l->op = op;
    l->prefix = s3_full_key(st, prefix ? prefix : "");
    l->out = json_array();
    int rc = l->prefix && l->out ? s3_list_next(l, NULL) : FERRY_ENOMEM;
    if (rc != 0)
        s3_list_free(l);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* presign, and uploads a worker drives                                     */

static int s3_presign(void *state, const char *method, const char *key, int expires_s, char *url,
                      size_t url_cap, ferry_error_detail *err)
{
    s3_state *st = state;
    if (url_cap > 0)
        url[0] = '\0';
    if (!s3_key_is_safe(key))
        return ferry_error_set(err, FERRY_EUNSAFE, 0, NULL, "s3-storage: unsafe key");
    if (method == NULL ||
        (strcmp(method, "GET") != 0 && strcmp(method, "PUT") != 0 && strcmp(method, "HEAD") != 0))
        return ferry_error_set(err, FERRY_EINVAL, 0, NULL,
                               "s3-storage: presign takes GET, PUT or HEAD");
    char *full = s3_full_key(st, key);
    if (full == NULL)
        return ferry_error_set(err, FERRY_ENOMEM, 0, NULL, "s3-storage: out of memory");
    int rc = s3_presign_url(&st->eng, method, full, NULL, expires_s, url, url_cap, err);
    free(full);
    return rc;
}

static int s3_presign_part(void *state, const char *key, const char *upload_id, int part_number,
                           int expires_s, char *url, size_t url_cap, ferry_error_detail *err)
{
    s3_state *st = state;
    if (url_cap > 0)
        url[0] = '\0';
    if (!s3_key_is_safe(key))
        return ferry_error_set(err, FERRY_EUNSAFE, 0, NULL, "s3-storage: unsafe key");
    if (upload_id == NULL || upload_id[0] == '\0' || part_number < 1 || part_number > S3_MAX_PARTS)
        return ferry_error_set(err, FERRY_EINVAL, 0, NULL,
                               "s3-storage: presign_part needs an upload id and a part number "
                               "from 1 to %d",
                               S3_MAX_PARTS);
    char *full = s3_full_key(st, key);
    char *id = ferry_sigv4_uri_encode(upload_id, strlen(upload_id), 0);
    char *query = NULL;
    if (full && id && asprintf(&query, "partNumber=%d&uploadId=%s", part_number, id) < 0)
        query = NULL;
    int rc = query ? s3_presign_url(&st->eng, "PUT", full, query, expires_s, url, url_cap, err)
                   : ferry_error_set(err, FERRY_ENOMEM, 0, NULL, "s3-storage: out of memory");
    free(full);
    free(id);
    free(query);
    return rc;
}

static int s3_op_upload_begin(void *state, const char *key, ferry_op *op)
{
    s3_state *st = state;
    if (!s3_key_is_safe(key))
        return FERRY_EUNSAFE;
    char *full = s3_full_key(st, key);
    int rc = full ? s3_upload_begin(st, full, op) : FERRY_ENOMEM;
    free(full);
    return rc;
}

static int s3_op_upload_complete(void *state, const char *key, const char *upload_id,
                                 const char *parts, ferry_op *op)
{
    s3_state *st = state;
    if (!s3_key_is_safe(key))
        return FERRY_EUNSAFE;
    if (upload_id == NULL || upload_id[0] == '\0' || parts == NULL)
        return FERRY_EINVAL;
    char *full = s3_full_key(st, key);
    int rc = full ? s3_upload_complete(st, full, upload_id, parts, op) : FERRY_ENOMEM;
    free(full);
    return rc;
}

static int s3_op_upload_abort(void *state, const char *key, const char *upload_id, ferry_op *op)
{
    s3_state *st = state;
    if (!s3_key_is_safe(key))
        return FERRY_EUNSAFE;
    if (upload_id == NULL || upload_id[0] == '\0')
        return FERRY_EINVAL;
    char *full = s3_full_key(st, key);
    int rc = full ? s3_upload_abort(st, full, upload_id, op) : FERRY_ENOMEM;
    free(full);
    return rc;
}

/* The plan put_file follows itself: one PUT up to the threshold, else
 * parts of part_size, grown when the object would need more than 10,000. */
static int s3_upload_part_size(void *state, int64_t size, int64_t *part_size)
{
    s3_state *st = state;
    *part_size = 0;
    if (size < 0)
        return FERRY_EINVAL;
    if (size <= st->cfg.multipart_threshold)
        return 0;
    int64_t part = st->cfg.part_size;
    while ((size + part - 1) / part > S3_MAX_PARTS)
        part *= 2;
    if (part > S3_MAX_PART_SIZE)
        return FERRY_ETOOBIG;
    *part_size = part;
    return 0;
}

/* Inputs given as s3://BUCKET/KEY are this store's (s3_url_input). */
static const char *const s3_url_schemes[] = {"s3", NULL};

static const ferry_store_ops s3_ops = {
    .struct_size = sizeof(ferry_store_ops),
    .put_file = s3_put_file,
    .get_file = s3_get,
    .head = s3_head,
    .list = s3_list_op,
    .remove = s3_remove,
    .presign = s3_presign,
    .local_path = NULL, /* objects are not files here */
    .upload_begin = s3_op_upload_begin,
    .presign_part = s3_presign_part,
    .upload_complete = s3_op_upload_complete,
    .upload_abort = s3_op_upload_abort,
    .upload_part_size = s3_upload_part_size,
    .url_schemes = s3_url_schemes,
    .url_input = s3_url_input,
};

/* ------------------------------------------------------------------------ */
/* Lifecycle                                                                */

/* One ListObjectsV2 of at most one key under the prefix: proves the
 * endpoint answers, the bucket exists, the keys are valid and may list.
 * Blocking, once, before any op can be in flight. */
static int s3_check_bucket(s3_state *st, ferry_error_detail *err)
{
    char *p = ferry_sigv4_uri_encode(st->cfg.prefix, strlen(st->cfg.prefix), 0);
    char *query = NULL;
    if (p == NULL || asprintf(&query, "list-type=2&max-keys=1&prefix=%s", p) < 0) {
        free(p);
        return ferry_error_set(err, FERRY_ENOMEM, 0, NULL, "s3-storage: out of memory");
    }
    ferry_error_detail e;
    memset(&e, 0, sizeof(e));
    long status = 0;
    int rc = s3_call_blocking(&st->cfg, &st->creds, st->ctx, st->host, "GET", NULL, query, 3, &e,
                              &status);
    free(p);
    free(query);
    if (rc == 0)
        return 0;
    return ferry_error_set(err, rc, e.retryable, e.provider_code,
                           "s3-storage: bucket \"%s\" at %s://%s is not usable: %s", st->cfg.bucket,
                           st->cfg.scheme, st->cfg.host, e.message);
}

static void s3_state_free(s3_state *st)
{
    s3_config_free(&st->cfg);
    s3_credentials_free(&st->creds);
    free(st);
}

static int s3_init(ferry_plugin_ctx *ctx, const ferry_host_api *host, void **state,
                   ferry_error_detail *err)
{
    s3_xml_init();
    s3_state *st = calloc(1, sizeof(*st));
    if (st == NULL)
        return ferry_error_set(err, FERRY_ENOMEM, 0, NULL, "s3-storage: out of memory");
    st->ctx = ctx;
    st->host = host;
    int rc = s3_config_load(&st->cfg, ctx, host, err);
    if (rc == 0)
        rc = s3_credentials_load(&st->creds, ctx, host, err);
    if (rc == 0)
        rc = s3_check_bucket(st, err);
    if (rc == 0 && ferry_http_client_new(host->loop(ctx), &st->http) != 0)
        rc = ferry_error_set(err, FERRY_ENOMEM, 0, NULL, "s3-storage: no HTTP client");
    if (rc != 0) {
        s3_state_free(st);
        return rc;
    }
    st->https = strcmp(st->cfg.scheme, "https") == 0;
    s3_engine_init(&st->eng, host->loop(ctx), st->http, &st->cfg, &st->creds, ctx, host);
    st->eng.data = st;
    host->log(ctx, FERRY_LOG_INFO,
              "bucket %s at %s://%s (%s, region %s), prefix \"%s\", credentials from %s",
              st->cfg.bucket, st->cfg.scheme, st->cfg.host,
              st->cfg.path_style ? "path-style" : "virtual-hosted", st->cfg.region, st->cfg.prefix,
              st->creds.source);
    *state = st;
    return 0;
}

/* Ops still held are dropped (the host cancels them). Open multipart
 * uploads are aborted before returning, so no part outlives the instance. */
static void s3_fini(void *state)
{
    s3_state *st = state;
    st->closing = 1;
    s3_multipart_close(st);
    s3_engine_cancel_all(&st->eng);
    ferry_http_client_close(st->http, NULL, NULL);
    s3_state_free(st);
}

static const char *const s3_settings[] = {
    "bucket",
    "prefix",
    "region",
    "endpoint",
    "path_style",
    "access_key_id",
    "secret_access_key",
    "session_token",
    "multipart_threshold",
    "part_size",
    "parallel_parts",
    "max_attempts",
    "stall_timeout",
    "list_page_size",
    NULL,
};

static const ferry_plugin_descriptor s3_descriptor = {
    .struct_size = sizeof(ferry_plugin_descriptor),
    .abi_major = FERRY_ABI_MAJOR,
    .abi_minor = FERRY_ABI_MINOR,
    .kind = FERRY_PLUGIN_STORE,
    .name = "s3-storage",
    .version = "1.0.0",
    .init = s3_init,
    .fini = s3_fini,
    .ops = &s3_ops,
    .settings = s3_settings,
};

FERRY_PLUGIN_DEFINE(s3_descriptor)
