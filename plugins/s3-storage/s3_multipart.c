/* s3-storage: multipart uploads.
 *
 *   CreateMultipartUpload -> UploadPart x N (parallel_parts at once) ->
 *   CompleteMultipartUpload, or AbortMultipartUpload on any failure
 *
 * A part is a byte range of the file, streamed by the HTTP client without a
 * copy; over plain HTTP its SHA-256 is computed first on the worker pool.
 * When a part fails for good the others are canceled, and the upload is
 * aborted once none is in flight, so S3 keeps no part of it. The op ends
 * with the first failure's detail.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "s3.h"

typedef enum { S3_MP_CREATE, S3_MP_PARTS, S3_MP_COMPLETE, S3_MP_ABORT } s3_mp_phase;

typedef struct s3_part {
    struct s3_upload *u;
    int number; /* 1-based */
    int64_t offset, length;
    char hash[65];
    int hash_rc;
    char *etag;
    s3_call *call; /* while uploading */
} s3_part;

struct s3_upload {
    s3_state *st;
    ferry_op *op;
    char *key;
    char *path;
    int64_t size;
    char *upload_id;
    s3_mp_phase phase;
    s3_part *parts;
    int n_parts;
    int next_part;  /* next to start, 0-based */
    int in_flight;  /* parts hashing or uploading */
    int done_parts; /* uploaded */
    s3_call *call;  /* create, complete or abort */
    int busy;       /* > 0 while canceling parts: no phase change under our feet */
    int status;     /* the first failure */
    ferry_error_detail err;
    struct s3_upload *prev, *next;
};

static void s3_pump(s3_upload *u);

/* ------------------------------------------------------------------------ */
/* Bookkeeping                                                              */

static void s3_upload_link(s3_upload *u)
{
    s3_state *st = u->st;
    u->next = st->uploads;
    if (st->uploads)
        st->uploads->prev = u;
    st->uploads = u;
}

static void s3_upload_free(s3_upload *u)
{
    s3_state *st = u->st;
    if (u->prev)
        u->prev->next = u->next;
    else if (st->uploads == u)
        st->uploads = u->next;
    if (u->next)
        u->next->prev = u->prev;
    for (int i = 0; i < u->n_parts; i++)
        free(u->parts[i].etag);
    free(u->parts);
    free(u->key);
    free(u->path);
    free(u->upload_id);
    free(u);
}

/* The op's end: success with the object's size, or the first failure. */
static void s3_upload_end(s3_upload *u)
{
    if (!u->st->closing && u->op)
        s3_op_finish(u->st, u->op, u->status, u->size, NULL, &u->err);
    s3_upload_free(u);
}

/* The first failure wins; the parts still going are canceled. */
static void s3_fail(s3_upload *u, int status, const ferry_error_detail *err)
{
    if (u->status == 0) {
        u->status = status;
        u->err = *err;
    }
    u->busy++;
    for (int i = 0; i < u->n_parts; i++)
        if (u->parts[i].call)
            s3_call_cancel(u->parts[i].call);
    u->busy--;
}

static char *s3_upload_query(const char *upload_id, int part)
{
    char *id = ferry_sigv4_uri_encode(upload_id, strlen(upload_id), 0);
    char *q = NULL;
    int n = id == NULL ? -1
            : part > 0 ? asprintf(&q, "partNumber=%d&uploadId=%s", part, id)
                       : asprintf(&q, "uploadId=%s", id);
    free(id);
    return n < 0 ? NULL : q;
}

/* ------------------------------------------------------------------------ */
/* Abort                                                                    */

static void s3_abort_done(s3_call *c)
{
    s3_upload *u = c->arg;
    u->call = NULL;
    if (c->status != 0 && !u->st->closing) {
        /* The part data may linger: say so, the first failure stays the code. */
        size_t n = strlen(u->err.message);
        snprintf(u->err.message + n, sizeof(u->err.message) - n,
                 "; AbortMultipartUpload failed too: %s", c->err.provider_code);
        u->st->host->log(u->st->ctx, FERRY_LOG_WARN, "abort of upload of %s failed: %s", u->key,
                         c->err.message);
    }
    s3_upload_end(u);
}

static void s3_start_abort(s3_upload *u)
{
    u->phase = S3_MP_ABORT;
    s3_call *c = s3_call_new(&u->st->eng, "DELETE", u->key, s3_abort_done, u);
    if (c && (c->query = s3_upload_query(u->upload_id, 0)) != NULL) {
        u->call = c;
        if (s3_call_start(c) == 0)
            return;
        u->call = NULL;
    } else {
        s3_call_discard(c);
    }
    s3_upload_end(u);
}

/* ------------------------------------------------------------------------ */
/* Complete                                                                 */

char *s3_complete_body(char *const *etags, int n)
{
    size_t cap = 64;
    for (int i = 0; i < n; i++)
        cap += 64 + strlen(etags[i]) * 6; /* worst case: every byte escaped */
    char *out = malloc(cap);
    if (out == NULL)
        return NULL;
    size_t len = (size_t)snprintf(out, cap, "<CompleteMultipartUpload>");
    for (int i = 0; i < n; i++) {
        len += (size_t)snprintf(out + len, cap - len, "<Part><PartNumber>%d</PartNumber><ETag>",
                                i + 1);
        for (const char *p = etags[i]; *p; p++) { /* ETags are quoted: escape for XML */
            const char *esc = *p == '"'   ? "&quot;"
                              : *p == '&' ? "&amp;"
                              : *p == '<' ? "&lt;"
                              : *p == '>' ? "&gt;"
                                          : NULL;
            if (esc)
                len += (size_t)snprintf(out + len, cap - len, "%s", esc);
            else
                out[len++] = *p;
        }
        len += (size_t)snprintf(out + len, cap - len, "</ETag></Part>");
    }
    snprintf(out + len, cap - len, "</CompleteMultipartUpload>");
    return out;
}

static void s3_complete_done(s3_call *c)
{
    s3_upload *u = c->arg;
    u->call = NULL;
    if (u->st->closing) {
        s3_upload_end(u);
        return;
    }
    if (c->status != 0) {
        s3_fail(u, c->status, &c->err);
        s3_start_abort(u);
        return;
    }
    s3_upload_end(u);
}

static void s3_start_complete(s3_upload *u)
{
    u->phase = S3_MP_COMPLETE;
    char **etags = malloc((size_t)u->n_parts * sizeof(*etags));
    for (int i = 0; etags && i < u->n_parts; i++)
        etags[i] = u->parts[i].etag;
    s3_call *c = s3_call_new(&u->st->eng, "POST", u->key, s3_complete_done, u);
    int rc = etags && c ? 0 : FERRY_ENOMEM;
    if (rc == 0 && ((c->query = s3_upload_query(u->upload_id, 0)) == NULL ||
                    (c->body = s3_complete_body(etags, u->n_parts)) == NULL))
        rc = FERRY_ENOMEM;
    free(etags);
    if (rc == 0) {
        c->body_len = strlen(c->body);
        c->error_in_200 = 1; /* S3 may answer 200 and fail in the body */
        rc = s3_call_header(c, "Content-Type: application/xml");
    }
    if (rc == 0) {
        u->call = c;
        if ((rc = s3_call_start(c)) == 0)
            return;
        u->call = NULL;
        c = NULL;
    }
    s3_call_discard(c);
    ferry_error_detail e;
    ferry_error_set(&e, rc, 0, NULL, "S3 CompleteMultipartUpload %s: %s", u->key,
                    ferry_strerror(rc));
    s3_fail(u, rc, &e);
    s3_start_abort(u);
}

/* ------------------------------------------------------------------------ */
/* Parts                                                                    */

static void s3_part_done(s3_call *c)
{
    s3_part *p = c->arg;
    s3_upload *u = p->u;
    p->call = NULL;
    u->in_flight--;
    if (c->status == 0) {
        char etag[256];
        const ferry_http_response res = {.struct_size = sizeof(res), .headers = c->resp_headers};
        if (ferry_http_header(&res, "ETag", etag, sizeof(etag)) && (p->etag = strdup(etag))) {
            u->done_parts++;
        } else if (!u->st->closing) {
            ferry_error_detail e;
            ferry_error_set(&e, FERRY_EPROTO, 1, NULL, "S3 UploadPart %d of %s: no ETag", p->number,
                            u->key);
            s3_fail(u, FERRY_EPROTO, &e);
        }
    } else if (!u->st->closing) {
        s3_fail(u, c->status, &c->err);
    }
    s3_pump(u);
}

static int s3_part_send(s3_part *p, const char *payload_hash)
{
    s3_upload *u = p->u;
    s3_call *c = s3_call_new(&u->st->eng, "PUT", u->key, s3_part_done, p);
    if (c == NULL || (c->query = s3_upload_query(u->upload_id, p->number)) == NULL ||
        (c->upload_path = strdup(u->path)) == NULL) {
        s3_call_discard(c);
        return FERRY_ENOMEM;
    }
    c->upload_offset = p->offset;
    c->upload_length = p->length;
    snprintf(c->payload_hash, sizeof(c->payload_hash), "%s", payload_hash);
    p->call = c;
    int rc = s3_call_start(c);
    if (rc != 0)
        p->call = NULL;
    return rc;
}

static void s3_part_hash_work(void *arg)
{
    s3_part *p = arg;
    p->hash_rc = ferry_sigv4_sha256_file(p->u->path, p->offset, p->length, p->hash);
}

static void s3_part_hash_after(void *arg, int status)
{
    s3_part *p = arg;
    s3_upload *u = p->u;
    int rc = status < 0 ? status : p->hash_rc;
    if (rc == 0 && u->status == 0 && (rc = s3_part_send(p, p->hash)) == 0)
        return;
    u->in_flight--;
    if (rc != 0) {
        ferry_error_detail e;
        ferry_error_set(&e, rc, 0, NULL, "S3 UploadPart %d of %s: reading %s: %s", p->number,
                        u->key, u->path, ferry_strerror(rc));
        s3_fail(u, rc, &e);
    }
    s3_pump(u);
}

static int s3_part_start(s3_upload *u, s3_part *p)
{
    u->in_flight++;
    int rc = u->st->https
                 ? s3_part_send(p, FERRY_SIGV4_UNSIGNED_PAYLOAD)
                 : u->st->host->queue_work(u->st->ctx, s3_part_hash_work, s3_part_hash_after, p);
    if (rc != 0)
        u->in_flight--;
    return rc;
}

/* Starts parts up to parallel_parts, and moves on once none is left: to
 * complete, or to abort after a failure. */
static void s3_pump(s3_upload *u)
{
    if (u->busy > 0 || u->phase != S3_MP_PARTS)
        return;
    if (u->st->closing) {
        if (u->in_flight == 0)
            s3_upload_end(u);
        return;
    }
    while (u->status == 0 && u->in_flight < u->st->cfg.parallel_parts &&
           u->next_part < u->n_parts) {
        s3_part *p = &u->parts[u->next_part++];
        int rc = s3_part_start(u, p);
        if (rc != 0) {
            ferry_error_detail e;
            ferry_error_set(&e, rc, 0, NULL, "S3 UploadPart %d of %s: %s", p->number, u->key,
                            ferry_strerror(rc));
            s3_fail(u, rc, &e);
        }
    }
    if (u->in_flight > 0)
        return;
    if (u->status != 0)
        s3_start_abort(u);
    else if (u->done_parts == u->n_parts)
        s3_start_complete(u);
}

/* ------------------------------------------------------------------------ */
/* Create                                                                   */

static void s3_create_done(s3_call *c)
{
    s3_upload *u = c->arg;
    u->call = NULL;
    if (u->st->closing) {
        s3_upload_end(u);
        return;
    }
    if (c->status != 0) {
        s3_fail(u, c->status, &c->err);
        s3_upload_end(u); /* nothing to abort */
        return;
    }
    u->upload_id = s3_xml_text(c->resp_body, c->resp_len, "UploadId");
    if (u->upload_id == NULL || u->upload_id[0] == '\0') {
        ferry_error_detail e;
        ferry_error_set(&e, FERRY_EPROTO, 1, NULL,
                        "S3 CreateMultipartUpload %s: no UploadId in the answer", u->key);
        s3_fail(u, FERRY_EPROTO, &e);
        s3_upload_end(u);
        return;
    }
    u->phase = S3_MP_PARTS;
    s3_pump(u);
}

static int s3_start_create(s3_upload *u)
{
    s3_call *c = s3_call_new(&u->st->eng, "POST", u->key, s3_create_done, u);
    if (c == NULL)
        return FERRY_ENOMEM;
    if ((c->query = strdup("uploads")) == NULL ||
        s3_call_header(c, "Content-Type: application/octet-stream") != 0) {
        s3_call_discard(c);
        return FERRY_ENOMEM;
    }
    u->call = c;
    int rc = s3_call_start(c);
    if (rc != 0)
        u->call = NULL;
    return rc;
}

/* Parts of part_size, grown when the file would need more than S3's 10,000. */
static int s3_plan_parts(s3_upload *u)
{
    int64_t part = u->st->cfg.part_size;
    while ((u->size + part - 1) / part > S3_MAX_PARTS)
        part *= 2;
    if (part > S3_MAX_PART_SIZE)
        return FERRY_ETOOBIG;
    u->n_parts = (int)((u->size + part - 1) / part);
    u->parts = calloc((size_t)u->n_parts, sizeof(*u->parts));
    if (u->parts == NULL)
        return FERRY_ENOMEM;
    for (int i = 0; i < u->n_parts; i++) {
        s3_part *p = &u->parts[i];
        p->u = u;
        p->number = i + 1;
        p->offset = (int64_t)i * part;
        p->length = i + 1 < u->n_parts ? part : u->size - p->offset;
    }
    return 0;
}

int s3_multipart_put(s3_state *st, const char *full_key, const char *path, int64_t size,
                     ferry_op *op)
{
    s3_upload *u = calloc(1, sizeof(*u));
    if (u == NULL)
        return FERRY_ENOMEM;
    u->st = st;
    u->op = op;
    u->size = size;
    u->phase = S3_MP_CREATE;
    s3_upload_link(u);
    u->key = strdup(full_key);
    u->path = strdup(path);
    int rc = u->key && u->path ? s3_plan_parts(u) : FERRY_ENOMEM;
    if (rc == 0)
        rc = s3_start_create(u);
    if (rc != 0)
        s3_upload_free(u);
    return rc;
}

void s3_multipart_close(s3_state *st)
{
    /* What to abort, taken before the calls are canceled: their done
     * callbacks free the uploads. An upload whose create was in flight is
     * unknown to us; a bucket lifecycle rule (AbortIncompleteMultipartUpload)
     * is the net for that. */
    size_t n = 0;
    for (s3_upload *u = st->uploads; u; u = u->next)
        n += u->upload_id != NULL;
    char **keys = calloc(n + 1, sizeof(char *)), **queries = calloc(n + 1, sizeof(char *));
    size_t k = 0;
    for (s3_upload *u = st->uploads; u && keys && queries; u = u->next)
        if (u->upload_id && (keys[k] = strdup(u->key)) != NULL &&
            (queries[k] = s3_upload_query(u->upload_id, 0)) != NULL)
            k++;
    s3_engine_cancel_all(&st->eng);
    for (size_t i = 0; i < k; i++) {
        ferry_error_detail e;
        memset(&e, 0, sizeof(e));
        int rc = s3_call_blocking(&st->cfg, &st->creds, st->ctx, st->host, "DELETE", keys[i],
                                  queries[i], 2, &e, NULL);
        if (rc != 0 && strcmp(e.provider_code, "NoSuchUpload") != 0)
            st->host->log(st->ctx, FERRY_LOG_WARN, "abort of the upload of %s at close: %s",
                          keys[i], e.message);
    }
    for (size_t i = 0; keys && i <= k; i++)
        free(keys[i]);
    for (size_t i = 0; queries && i <= k; i++)
        free(queries[i]);
    free(keys);
    free(queries);
}

/* ------------------------------------------------------------------------ */
/* Uploads a worker drives through presigned part URLs                      */

typedef struct s3_wupload {
    s3_state *st;
    ferry_op *op;
    char *key;
    int64_t size;
} s3_wupload;

static void s3_wupload_free(s3_wupload *w)
{
    free(w->key);
    free(w);
}

static s3_wupload *s3_wupload_new(s3_state *st, const char *key, ferry_op *op)
{
    s3_wupload *w = calloc(1, sizeof(*w));
    if (w == NULL || (w->key = strdup(key)) == NULL) {
        free(w);
        return NULL;
    }
    w->st = st;
    w->op = op;
    return w;
}

/* A call of a worker-driven upload, started; the call is freed on failure. */
static int s3_wupload_call(s3_wupload *w, s3_call *c)
{
    int rc = s3_call_start(c);
    if (rc != 0)
        s3_wupload_free(w);
    return rc;
}

static void s3_begin_done(s3_call *c)
{
    s3_wupload *w = c->arg;
    if (!w->st->closing) {
        ferry_error_detail e = c->err;
        int rc = c->status;
        char *id = rc == 0 ? s3_xml_text(c->resp_body, c->resp_len, "UploadId") : NULL;
        if (rc == 0 && (id == NULL || id[0] == '\0'))
            rc = ferry_error_set(&e, FERRY_EPROTO, 1, NULL,
                                 "S3 CreateMultipartUpload %s: no UploadId in the answer", w->key);
        s3_op_finish(w->st, w->op, rc, 0, rc == 0 ? id : NULL, &e);
        free(id);
    }
    s3_wupload_free(w);
}

int s3_upload_begin(s3_state *st, const char *full_key, ferry_op *op)
{
    s3_wupload *w = s3_wupload_new(st, full_key, op);
    s3_call *c = w ? s3_call_new(&st->eng, "POST", full_key, s3_begin_done, w) : NULL;
    if (c == NULL || (c->query = strdup("uploads")) == NULL ||
        s3_call_header(c, "Content-Type: application/octet-stream") != 0) {
        s3_call_discard(c);
        if (w)
            s3_wupload_free(w);
        return FERRY_ENOMEM;
    }
    return s3_wupload_call(w, c);
}

static void s3_abort_op_done(s3_call *c)
{
    s3_wupload *w = c->arg;
    if (!w->st->closing)
        s3_op_finish(w->st, w->op, c->status, 0, NULL, &c->err);
    s3_wupload_free(w);
}

int s3_upload_abort(s3_state *st, const char *full_key, const char *upload_id, ferry_op *op)
{
    s3_wupload *w = s3_wupload_new(st, full_key, op);
    s3_call *c = w ? s3_call_new(&st->eng, "DELETE", full_key, s3_abort_op_done, w) : NULL;
    if (c == NULL || (c->query = s3_upload_query(upload_id, 0)) == NULL) {
        s3_call_discard(c);
        if (w)
            s3_wupload_free(w);
        return FERRY_ENOMEM;
    }
    return s3_wupload_call(w, c);
}

/* After CompleteMultipartUpload, a HEAD gives the size the op reports. */
static void s3_complete_head_done(s3_call *c)
{
    s3_wupload *w = c->arg;
    if (!w->st->closing) {
        char len[32];
        const ferry_http_response res = {.struct_size = sizeof(res), .headers = c->resp_headers};
        int64_t size = c->status == 0 && ferry_http_header(&res, "Content-Length", len, sizeof(len))
                           ? strtoll(len, NULL, 10)
                           : 0;
        s3_op_finish(w->st, w->op, c->status, size, NULL, &c->err);
    }
    s3_wupload_free(w);
}

static void s3_complete_op_done(s3_call *c)
{
    s3_wupload *w = c->arg;
    if (w->st->closing) {
        s3_wupload_free(w);
        return;
    }
    if (c->status != 0) {
        s3_op_finish(w->st, w->op, c->status, 0, NULL, &c->err);
        s3_wupload_free(w);
        return;
    }
    s3_call *h = s3_call_new(&w->st->eng, "HEAD", w->key, s3_complete_head_done, w);
    int rc = h ? s3_call_start(h) : FERRY_ENOMEM;
    if (rc != 0) {
        ferry_error_detail e;
        ferry_error_set(&e, rc, 1, NULL, "S3 HEAD %s after completing its upload: %s", w->key,
                        ferry_strerror(rc));
        s3_op_finish(w->st, w->op, rc, 0, NULL, &e);
        s3_wupload_free(w);
    }
}

/* [{"part": n, "etag": "..."}] into ETags of parts 1..count, each given
 * once; NULL when the list is not that. */
static char **s3_parse_parts(const char *parts, int *count)
{
    json_t *arr = json_loads(parts, 0, NULL);
    size_t n = json_is_array(arr) ? json_array_size(arr) : 0;
    char **etags = n > 0 && n <= S3_MAX_PARTS ? calloc(n, sizeof(char *)) : NULL;
    int ok = etags != NULL;
    size_t i;
    json_t *e;
    json_array_foreach(arr, i, e)
    {
        json_t *num = json_object_get(e, "part");
        const char *etag = json_string_value(json_object_get(e, "etag"));
        json_int_t k = json_is_integer(num) ? json_integer_value(num) : 0;
        if (!ok || k < 1 || (size_t)k > n || etag == NULL || etags[k - 1] != NULL ||
            (etags[k - 1] = strdup(etag)) == NULL) {
            ok = 0;
            break;
        }
    }
    json_decref(arr);
    if (!ok && etags) {
        for (i = 0; i < n; i++)
            free(etags[i]);
        free(etags);
        return NULL;
    }
    *count = (int)n;
    return etags;
}

int s3_upload_complete(s3_state *st, const char *full_key, const char *upload_id, const char *parts,
                       ferry_op *op)
{
    int n = 0;
    char **etags = s3_parse_parts(parts, &n);
    if (etags == NULL)
        return FERRY_EINVAL;
    s3_wupload *w = s3_wupload_new(st, full_key, op);
    s3_call *c = w ? s3_call_new(&st->eng, "POST", full_key, s3_complete_op_done, w) : NULL;
    int rc = c ? 0 : FERRY_ENOMEM;
    if (rc == 0 && ((c->query = s3_upload_query(upload_id, 0)) == NULL ||
                    (c->body = s3_complete_body(etags, n)) == NULL ||
                    s3_call_header(c, "Content-Type: application/xml") != 0))
        rc = FERRY_ENOMEM;
    for (int i = 0; i < n; i++)
        free(etags[i]);
    free(etags);
    if (rc != 0) {
        s3_call_discard(c);
        if (w)
            s3_wupload_free(w);
        return rc;
    }
    c->body_len = strlen(c->body);
    c->error_in_200 = 1;
    return s3_wupload_call(w, c);
}
