/* s3-storage: one S3 call, signed afresh for every attempt and retried
 * with jittered backoff while S3 or the network says "later": 503 SlowDown
 * and other 5xx, RequestTimeout, a 200 carrying an <Error>, dropped
 * connections and stalled transfers. Anything else ends the call with S3's
 * error code in the detail.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "s3.h"

#define S3_BACKOFF_BASE_MS 100
#define S3_THROTTLE_BASE_MS 250
#define S3_BACKOFF_CAP_MS 20000

/* ------------------------------------------------------------------------ */
/* Errors                                                                   */

typedef struct s3_code_map {
    const char *code;
    int ferry;
    int retry;
} s3_code_map;

/* S3's error codes that mean something particular to ferry. The rest are
 * FERRY_EPROVIDER, retried when the status is 5xx. */
static const s3_code_map s3_codes[] = {
    {"NoSuchKey", FERRY_ENOENT, 0},
    {"NotFound", FERRY_ENOENT, 0},
    {"NoSuchBucket", FERRY_ENOENT, 0},
    {"NoSuchUpload", FERRY_ENOENT, 0},
    {"AccessDenied", FERRY_EPERM, 0},
    {"Forbidden", FERRY_EPERM, 0},
    {"AllAccessDisabled", FERRY_EPERM, 0},
    {"AccountProblem", FERRY_EPERM, 0},
    {"InvalidAccessKeyId", FERRY_EAUTH, 0},
    {"SignatureDoesNotMatch", FERRY_EAUTH, 0},
    {"ExpiredToken", FERRY_EAUTH, 0},
    {"InvalidToken", FERRY_EAUTH, 0},
    {"TokenRefreshRequired", FERRY_EAUTH, 0},
    {"AuthorizationHeaderMalformed", FERRY_ECONFIG, 0},
    {"PermanentRedirect", FERRY_ECONFIG, 0},
    {"MovedPermanently", FERRY_ECONFIG, 0},
    {"InvalidBucketName", FERRY_ECONFIG, 0},
    {"SlowDown", FERRY_ETHROTTLED, 1},
    {"ServiceUnavailable", FERRY_ETHROTTLED, 1},
    {"Throttling", FERRY_ETHROTTLED, 1},
    {"ThrottlingException", FERRY_ETHROTTLED, 1},
    {"RequestLimitExceeded", FERRY_ETHROTTLED, 1},
    {"InternalError", FERRY_EPROVIDER, 1},
    {"RequestTimeout", FERRY_ETIMEDOUT, 1},
    {"RequestTimeTooSkewed", FERRY_EAUTH, 1},
    {"EntityTooLarge", FERRY_ETOOBIG, 0},
    {"PreconditionFailed", FERRY_ESTATE, 0},
    {"InvalidRange", FERRY_EINVAL, 0},
};

/* A code for an answer without a body (HEAD) or with one we cannot read. */
static const char *s3_status_code(const s3_call *c, long status)
{
    switch (status) {
    case 301:
        return "MovedPermanently";
    case 403:
        return "Forbidden";
    case 404:
        return c->key ? (strcmp(c->method, "HEAD") == 0 ? "NotFound" : "NoSuchKey")
                      : "NoSuchBucket";
    case 500:
        return "InternalError";
    case 503:
        return "SlowDown";
    default:
        return NULL;
    }
}

static const char *s3_what(const s3_call *c)
{
    return c->key ? c->key : "(the bucket)";
}

/* Fills the call's detail from an S3 error code; returns whether to retry. */
static int s3_fail_s3(s3_call *c, long status, const char *code, const char *message,
                      const char *request_id, const char *region_hint)
{
    int ferry = FERRY_EPROVIDER, retry = status >= 500;
    for (size_t i = 0; i < sizeof(s3_codes) / sizeof(s3_codes[0]); i++)
        if (strcmp(code, s3_codes[i].code) == 0) {
            ferry = s3_codes[i].ferry;
            retry = s3_codes[i].retry || status >= 500;
            break;
        }
    char extra[160] = "";
    if (request_id && request_id[0])
        snprintf(extra, sizeof(extra), ", request id %.100s", request_id);
    if (region_hint && region_hint[0])
        snprintf(extra + strlen(extra), sizeof(extra) - strlen(extra),
                 "; the bucket is in region %.40s", region_hint);
    c->status = ferry_error_set(&c->err, ferry, retry, code, "S3 %s: %s (%s %s, HTTP %ld%s)", code,
                                message && message[0] ? message : ferry_strerror(ferry), c->method,
                                s3_what(c), status, extra);
    return retry;
}

/* An answer that is not a success; returns whether to retry. */
static int s3_fail_answer(s3_call *c, const ferry_http_response *res)
{
    char code[64], message[256], rid[128], region[64] = "";
    if (!s3_xml_error(res->body, res->body_len, code, sizeof(code), message, sizeof(message), rid,
                      sizeof(rid)) ||
        code[0] == '\0') {
        const char *sc = s3_status_code(c, res->status);
        if (sc)
            snprintf(code, sizeof(code), "%s", sc);
        else
            snprintf(code, sizeof(code), "HTTP%ld", res->status);
        message[0] = '\0';
        if (ferry_http_header(res, "x-amz-request-id", rid, sizeof(rid)) == NULL)
            rid[0] = '\0';
    }
    ferry_http_header(res, "x-amz-bucket-region", region, sizeof(region));
    return s3_fail_s3(c, res->status, code, message, rid, region);
}

/* "Date: Tue, 27 Mar 2007 21:20:26 GMT" into seconds since the epoch. */
static int64_t s3_http_date(const ferry_http_response *res)
{
    char date[64];
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    if (ferry_http_header(res, "Date", date, sizeof(date)) == NULL ||
        strptime(date, "%a, %d %b %Y %H:%M:%S", &tm) == NULL)
        return 0;
    return (int64_t)timegm(&tm);
}

/* Sorts out an attempt's outcome; returns whether to try again. */
static int s3_classify(s3_call *c, const ferry_http_response *res)
{
    c->http_status = res->status; /* also after a drop: a get's retry needs it */
    if (res->code != 0) {
        int retry = res->code == FERRY_ECONN || res->code == FERRY_ETIMEDOUT;
        c->status = ferry_error_set(&c->err, res->code, retry, NULL, "S3 %s %s: %s: %s", c->method,
                                    s3_what(c), ferry_strerror(res->code), res->error);
        return retry;
    }
    if (res->status >= 200 && res->status < 300) {
        char code[64], message[256], rid[128];
        if (c->error_in_200 && s3_xml_error(res->body, res->body_len, code, sizeof(code), message,
                                            sizeof(message), rid, sizeof(rid)))
            return s3_fail_s3(c, res->status, code[0] ? code : "InternalError", message, rid, NULL);
        c->status = 0;
        return 0;
    }
    int retry = s3_fail_answer(c, res);
    if (strcmp(c->err.provider_code, "RequestTimeTooSkewed") == 0) {
        int64_t server = s3_http_date(res);
        if (server == 0)
            return 0;
        c->eng->clock_skew_s = server - (int64_t)time(NULL);
    }
    return retry;
}

/* ------------------------------------------------------------------------ */
/* Attempts                                                                 */

static void s3_attempt_or_finish(s3_call *c);

static void s3_unlink(s3_call *c)
{
    s3_engine *e = c->eng;
    if (c->prev)
        c->prev->next = c->next;
    else if (e->calls == c)
        e->calls = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
}

static void s3_call_free(s3_call *c)
{
    free(c->key);
    free(c->query);
    for (int i = 0; c->headers[i]; i++)
        free(c->headers[i]);
    free(c->body);
    free(c->upload_path);
    free(c->resp_body);
    free(c->resp_headers);
    free(c);
}

void s3_call_discard(s3_call *c)
{
    if (c)
        s3_call_free(c);
}

static void s3_finish(s3_call *c)
{
    s3_unlink(c);
    c->done(c);
    s3_call_free(c);
}

static void s3_timer_closed(uv_handle_t *h)
{
    free(h);
}

static void s3_drop_timer(s3_call *c)
{
    if (c->timer) {
        uv_timer_stop(c->timer);
        uv_close((uv_handle_t *)c->timer, s3_timer_closed);
        c->timer = NULL;
    }
}

static void s3_on_timer(uv_timer_t *t)
{
    s3_call *c = t->data;
    s3_drop_timer(c);
    if (c->canceled) {
        c->status = ferry_error_set(&c->err, FERRY_ECANCELED, 1, NULL, "S3 %s %s: canceled",
                                    c->method, s3_what(c));
        s3_finish(c);
        return;
    }
    s3_attempt_or_finish(c);
}

static uint64_t s3_random(s3_engine *e)
{
    /* xorshift64*: jitter needs spread, not secrecy. */
    e->rng ^= e->rng >> 12;
    e->rng ^= e->rng << 25;
    e->rng ^= e->rng >> 27;
    return e->rng * 2685821657736338717ull;
}

/* Full jitter: uniform in [0, min(cap, base * 2^(attempt-1))]. */
static uint64_t s3_backoff_ms(s3_call *c)
{
    uint64_t base = c->err.code == FERRY_ETHROTTLED ? S3_THROTTLE_BASE_MS : S3_BACKOFF_BASE_MS;
    uint64_t ceiling = base << (c->attempt - 1 < 16 ? c->attempt - 1 : 16);
    if (ceiling > S3_BACKOFF_CAP_MS)
        ceiling = S3_BACKOFF_CAP_MS;
    if (strcmp(c->err.provider_code, "RequestTimeTooSkewed") == 0)
        return 0; /* the clock is corrected: no reason to wait */
    return s3_random(c->eng) % (ceiling + 1);
}

static int s3_schedule_retry(s3_call *c)
{
    uint64_t ms = s3_backoff_ms(c);
    c->timer = malloc(sizeof(*c->timer));
    if (c->timer == NULL)
        return FERRY_ENOMEM;
    uv_timer_init(c->eng->loop, c->timer);
    c->timer->data = c;
    uv_timer_start(c->timer, s3_on_timer, ms, 0);
    if (c->eng->host)
        c->eng->host->log(c->eng->ctx, FERRY_LOG_DEBUG,
                          "retrying %s %s in %llu ms (attempt %d failed: %s)", c->method,
                          s3_what(c), (unsigned long long)ms, c->attempt, c->err.message);
    return 0;
}

static void s3_http_done(void *arg, const ferry_http_response *res)
{
    s3_call *c = arg;
    c->req = NULL;
    if (c->canceled || c->eng->closing) {
        c->status = ferry_error_set(&c->err, FERRY_ECANCELED, 1, NULL, "S3 %s %s: canceled",
                                    c->method, s3_what(c));
        s3_finish(c);
        return;
    }
    int retry = s3_classify(c, res);
    int max = c->max_attempts > 0 ? c->max_attempts : c->eng->cfg->max_attempts;
    if (c->status != 0 && retry && c->attempt < max && s3_schedule_retry(c) == 0)
        return;
    if (c->status != 0 && c->attempt > 1) {
        size_t n = strlen(c->err.message);
        snprintf(c->err.message + n, sizeof(c->err.message) - n, " after %d attempts", c->attempt);
    }
    free(c->resp_body);
    free(c->resp_headers);
    c->resp_body = malloc(res->body_len + 1);
    c->resp_headers = strdup(res->headers ? res->headers : "");
    if (c->resp_body) {
        memcpy(c->resp_body, res->body ? res->body : "", res->body_len);
        c->resp_body[res->body_len] = '\0';
        c->resp_len = res->body_len;
    }
    if ((c->resp_body == NULL || c->resp_headers == NULL) && c->status == 0)
        c->status = ferry_error_set(&c->err, FERRY_ENOMEM, 1, NULL, "S3: out of memory");
    s3_finish(c);
}

/* The signature for this attempt, with the time corrected by what S3 told
 * us of our clock. */
static int s3_sign(s3_call *c, const s3_target *t, ferry_sigv4_signature *sig)
{
    s3_engine *e = c->eng;
    if (c->payload_hash[0] == '\0')
        ferry_sigv4_sha256_hex(c->body ? c->body : "", c->body_len, c->payload_hash);
    ferry_sigv4_request r = {.struct_size = sizeof(r),
                             .access_key_id = e->creds->access_key_id,
                             .secret_access_key = e->creds->secret_access_key,
                             .session_token = e->creds->session_token,
                             .service = "s3",
                             .region = e->cfg->region,
                             .method = c->method,
                             .host = t->host,
                             .path = t->path,
                             .query = c->query,
                             .headers = (const char *const *)c->headers,
                             .payload_hash = c->payload_hash,
                             .time = (int64_t)time(NULL) + e->clock_skew_s};
    return ferry_sigv4_sign(&r, sig);
}

static int s3_send(s3_call *c, const s3_target *t, const ferry_sigv4_signature *sig)
{
    const s3_config *cfg = c->eng->cfg;
    const char *headers[S3_CALL_MAX_HEADERS + 8];
    size_t n = 0;
    for (int i = 0; c->headers[i]; i++)
        headers[n++] = c->headers[i];
    for (char **h = sig->headers; *h; h++)
        headers[n++] = *h;
    if (c->body == NULL && c->upload_path == NULL && strcmp(c->method, "PUT") == 0)
        headers[n++] = "Content-Length: 0";
    headers[n] = NULL;
    char *url = NULL;
    if (asprintf(&url, "%s%s%s", t->url, c->query ? "?" : "", c->query ? c->query : "") < 0)
        return FERRY_ENOMEM;
    ferry_http_options o = {.struct_size = sizeof(o),
                            .method = c->method,
                            .url = url,
                            .headers = headers,
                            .body = c->body,
                            .body_len = c->body_len,
                            .upload_path = c->upload_path,
                            .upload_offset = c->upload_offset,
                            .upload_length = c->upload_length,
                            .on_data = c->on_data,
                            .timeout_ms = c->timeout_ms,
                            .connect_timeout_ms = cfg->connect_timeout_ms,
                            .stall_timeout_ms = cfg->stall_timeout_ms,
                            .done = s3_http_done,
                            .arg = c};
    int rc = ferry_http_request_start(c->eng->http, &o, &c->req);
    free(url);
    return rc;
}

static int s3_attempt(s3_call *c)
{
    c->attempt++;
    memset(&c->err, 0, sizeof(c->err));
    c->status = 0;
    if (c->prepare) {
        int rc = c->prepare(c);
        if (rc != 0)
            return rc;
    }
    s3_target t;
    int rc = s3_target_make(c->eng->cfg, c->key, &t);
    if (rc != 0)
        return rc;
    ferry_sigv4_signature sig;
    rc = s3_sign(c, &t, &sig);
    if (rc == 0)
        rc = s3_send(c, &t, &sig);
    ferry_sigv4_signature_free(&sig);
    s3_target_free(&t);
    return rc;
}

static void s3_attempt_or_finish(s3_call *c)
{
    int rc = s3_attempt(c);
    if (rc == 0)
        return;
    if (c->err.code == 0)
        ferry_error_set(&c->err, rc, 0, NULL, "S3 %s %s: %s", c->method, s3_what(c),
                        ferry_strerror(rc));
    c->status = c->err.code;
    s3_finish(c);
}

/* ------------------------------------------------------------------------ */
/* Public                                                                   */

void s3_engine_init(s3_engine *eng, uv_loop_t *loop, ferry_http_client *http, const s3_config *cfg,
                    const s3_credentials *creds, ferry_plugin_ctx *ctx, const ferry_host_api *host)
{
    memset(eng, 0, sizeof(*eng));
    eng->loop = loop;
    eng->http = http;
    eng->cfg = cfg;
    eng->creds = creds;
    eng->ctx = ctx;
    eng->host = host;
    eng->rng = (uint64_t)uv_hrtime() ^ ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)eng;
    if (eng->rng == 0)
        eng->rng = 88172645463325252ull;
}

s3_call *s3_call_new(s3_engine *eng, const char *method, const char *key, s3_call_done_fn done,
                     void *arg)
{
    s3_call *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->eng = eng;
    c->method = method;
    c->done = done;
    c->arg = arg;
    if (key && (c->key = strdup(key)) == NULL) {
        free(c);
        return NULL;
    }
    return c;
}

int s3_call_header(s3_call *c, const char *fmt, ...)
{
    int n = 0;
    while (c->headers[n])
        n++;
    if (n >= S3_CALL_MAX_HEADERS)
        return FERRY_EINVAL;
    va_list ap;
    va_start(ap, fmt);
    int rc = vasprintf(&c->headers[n], fmt, ap);
    va_end(ap);
    if (rc < 0) {
        c->headers[n] = NULL;
        return FERRY_ENOMEM;
    }
    return 0;
}

int s3_call_set_header(s3_call *c, const char *name, const char *value)
{
    size_t len = strlen(name);
    int i = 0;
    for (; c->headers[i]; i++)
        if (strncasecmp(c->headers[i], name, len) == 0 && c->headers[i][len] == ':')
            break;
    if (c->headers[i] == NULL)
        return value ? s3_call_header(c, "%s: %s", name, value) : 0;
    free(c->headers[i]);
    if (value == NULL) { /* remove it */
        for (; c->headers[i]; i++)
            c->headers[i] = c->headers[i + 1];
        return 0;
    }
    if (asprintf(&c->headers[i], "%s: %s", name, value) < 0) {
        for (; c->headers[i]; i++) /* keep the list NULL-terminated */
            c->headers[i] = c->headers[i + 1];
        return FERRY_ENOMEM;
    }
    return 0;
}

int s3_call_start(s3_call *c)
{
    s3_engine *e = c->eng;
    if (e->closing) {
        s3_call_free(c);
        return FERRY_ECANCELED;
    }
    c->next = e->calls;
    if (e->calls)
        e->calls->prev = c;
    e->calls = c;
    int rc = s3_attempt(c);
    if (rc != 0) {
        s3_unlink(c);
        s3_call_free(c);
    }
    return rc;
}

void s3_call_cancel(s3_call *c)
{
    if (c->canceled)
        return;
    c->canceled = 1;
    if (c->req) {
        ferry_http_request_cancel(c->req); /* done runs now or soon */
    } else if (c->timer) {
        /* Waiting to retry: finish from the timer, not from inside here. */
        uv_timer_start(c->timer, s3_on_timer, 0, 0);
    }
}

void s3_engine_cancel_all(s3_engine *e)
{
    e->closing = 1;
    for (;;) {
        /* A request canceled from inside a curl callback completes when the
         * client closes; skip it. */
        s3_call *c = e->calls;
        while (c && c->req && c->canceled)
            c = c->next;
        if (c == NULL)
            break;
        c->canceled = 1;
        if (c->req) {
            ferry_http_request_cancel(c->req); /* done runs and frees it */
            continue;
        }
        s3_drop_timer(c); /* waiting to retry: finish it here, nothing will later */
        c->status = ferry_error_set(&c->err, FERRY_ECANCELED, 1, NULL, "S3 %s %s: canceled",
                                    c->method, s3_what(c));
        s3_finish(c);
    }
}

/* ------------------------------------------------------------------------ */
/* Blocking, on a private loop (init and fini)                              */

typedef struct s3_blocking {
    int done;
    int status;
    long http_status;
    ferry_error_detail err;
} s3_blocking;

static void s3_blocking_done(s3_call *c)
{
    s3_blocking *b = c->arg;
    b->done = 1;
    b->status = c->status;
    b->http_status = c->http_status;
    b->err = c->err;
}

static void s3_blocking_closed(void *arg)
{
    *(int *)arg = 1;
}

int s3_call_blocking(const s3_config *cfg, const s3_credentials *creds, ferry_plugin_ctx *ctx,
                     const ferry_host_api *host, const char *method, const char *key,
                     const char *query, int max_attempts, ferry_error_detail *err,
                     long *http_status)
{
    uv_loop_t loop;
    if (uv_loop_init(&loop) != 0)
        return ferry_error_set(err, FERRY_ENOMEM, 0, NULL, "S3: cannot create a loop");
    ferry_http_client *http = NULL;
    int rc = ferry_http_client_new(&loop, &http);
    s3_engine eng;
    s3_blocking b = {0};
    s3_call *c = NULL;
    if (rc == 0) {
        s3_engine_init(&eng, &loop, http, cfg, creds, ctx, host);
        c = s3_call_new(&eng, method, key, s3_blocking_done, &b);
        if (c == NULL || (query && (c->query = strdup(query)) == NULL))
            rc = FERRY_ENOMEM;
    }
    if (rc == 0) {
        c->max_attempts = max_attempts;
        c->timeout_ms = 15000;
        rc = s3_call_start(c);
        c = NULL; /* the engine owns it now, or freed it */
        while (rc == 0 && !b.done)
            uv_run(&loop, UV_RUN_ONCE);
    }
    if (c)
        s3_call_free(c);
    int closed = 0;
    if (http) {
        ferry_http_client_close(http, s3_blocking_closed, &closed);
        while (!closed)
            uv_run(&loop, UV_RUN_ONCE);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    if (rc != 0)
        return ferry_error_set(err, rc, 0, NULL, "S3 %s: %s", method, ferry_strerror(rc));
    if (http_status)
        *http_status = b.http_status;
    if (b.status != 0 && err)
        *err = b.err;
    return b.status;
}

/* ------------------------------------------------------------------------ */
/* Presigned URLs                                                           */

int s3_presign_url(const s3_engine *eng, const char *method, const char *key, const char *query,
                   int expires_s, char *url, size_t cap, ferry_error_detail *err)
{
    const s3_config *cfg = eng->cfg;
    const s3_credentials *creds = eng->creds;
    if (cap > 0)
        url[0] = '\0';
    s3_target t;
    int rc = s3_target_make(cfg, key, &t);
    if (rc != 0)
        return ferry_error_set(err, rc, 0, NULL, "s3-storage: presign: %s", ferry_strerror(rc));
    ferry_sigv4_request r = {.struct_size = sizeof(r),
                             .access_key_id = creds->access_key_id,
                             .secret_access_key = creds->secret_access_key,
                             .session_token = creds->session_token,
                             .service = "s3",
                             .region = cfg->region,
                             .method = method,
                             .host = t.host,
                             .path = t.path,
                             .query = query,
                             .time = (int64_t)time(NULL) + eng->clock_skew_s,
                             .expires_s = expires_s};
    ferry_sigv4_signature sig;
    rc = ferry_sigv4_presign(&r, &sig);
    if (rc != 0) {
        s3_target_free(&t);
        return ferry_error_set(err, rc, 0, NULL, "s3-storage: presign %s %s: %s", method, key,
                               rc == FERRY_EINVAL ? "invalid request (expiry out of 1 s..7 days?)"
                                                  : ferry_strerror(rc));
    }
    size_t need = strlen(t.url) + 1 + strlen(sig.query) + 1;
    if (need > cap)
        rc = ferry_error_set(err, FERRY_ETOOBIG, 0, NULL,
                             "s3-storage: presigned URL needs %zu bytes, %zu given", need, cap);
    else
        snprintf(url, cap, "%s?%s", t.url, sig.query);
    ferry_sigv4_signature_free(&sig);
    s3_target_free(&t);
    return rc;
}
