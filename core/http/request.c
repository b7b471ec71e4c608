/* One HTTP request to ferryd: its path and query, its body and token, the
 * replies, and requests held open for long polls (request.h). */
#include "request.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ferry/hex.h"
#include "util.h"

/* Percent-decode into a pool string; NULL on a bad escape or a NUL byte. */
static char *request__decode(h2o_mem_pool_t *pool, const char *s, size_t len, int plus_is_space)
{
    char *out = h2o_mem_alloc_pool(pool, len + 1);
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '%') {
            if (i + 2 >= len)
                return NULL;
            int hi = ferry_hex_digit(s[i + 1]), lo = ferry_hex_digit(s[i + 2]);
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
                return NULL;
            out[n++] = (char)(hi * 16 + lo);
            i += 2;
        } else if (s[i] == '+' && plus_is_space) {
            out[n++] = ' ';
        } else {
            out[n++] = s[i];
        }
    }
    out[n] = '\0';
    return out;
}

int ferry_http_req_parse(ferry_http_req *r)
{
    h2o_req_t *req = r->req;
    size_t plen = req->query_at != SIZE_MAX ? req->query_at : req->path.len;
    if (req->query_at != SIZE_MAX) {
        r->query = req->path.base + req->query_at + 1;
        r->query_len = req->path.len - req->query_at - 1;
    }
    const char *p = req->path.base, *end = p + plen;
    while (p < end) {
        while (p < end && *p == '/')
            p++;
        if (p == end)
            break;
        const char *s = p;
        while (p < end && *p != '/')
            p++;
        if (r->nsegs == FERRY_HTTP_MAX_SEGS)
            return FERRY_ETOOBIG;
        char *seg = request__decode(&req->pool, s, (size_t)(p - s), 0);
        if (seg == NULL)
            return FERRY_EINVAL;
        r->segs[r->nsegs++] = seg;
    }
    return 0;
}

int ferry_http_method_is(const ferry_http_req *r, const char *method)
{
    return h2o_memis(r->req->method.base, r->req->method.len, method, strlen(method));
}

char *ferry_http_join_segs(const ferry_http_req *r, size_t first)
{
    if (first >= r->nsegs)
        return NULL;
    size_t len = 0;
    for (size_t i = first; i < r->nsegs; i++)
        len += strlen(r->segs[i]) + 1;
    char *out = h2o_mem_alloc_pool(&r->req->pool, len);
    out[0] = '\0';
    for (size_t i = first; i < r->nsegs; i++) {
        if (i > first)
            strcat(out, "/");
        strcat(out, r->segs[i]);
    }
    return out;
}

int ferry_http_query(const ferry_http_req *r, const char *name, char *out, size_t cap)
{
    /* No query: NULL, and NULL + 0 is undefined in C (UBSan says so). */
    const char *p = r->query, *end = p ? p + r->query_len : NULL;
    size_t nlen = strlen(name);
    if (cap)
        out[0] = '\0';
    while (p && p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *stop = amp ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(stop - p));
        const char *kend = eq ? eq : stop;
        if ((size_t)(kend - p) == nlen && memcmp(p, name, nlen) == 0) {
            const char *v = eq ? eq + 1 : stop;
            char *dec = request__decode(&r->req->pool, v, (size_t)(stop - v), 1);
            if (dec == NULL)
                return FERRY_EINVAL; /* given, but not as a value: never "absent" */
            if (strlen(dec) >= cap)
                return FERRY_ETOOBIG; /* cut short, it would be another value */
            memcpy(out, dec, strlen(dec) + 1);
            return 1;
        }
        p = amp ? amp + 1 : end;
    }
    return 0;
}

int ferry_http_query_arg(ferry_http_req *r, const char *name, char *out, size_t cap)
{
    int rc = ferry_http_query(r, name, out, cap);
    if (rc == FERRY_EINVAL)
        ferry_http_error(r->req, 400, name,
                         "query parameter '%s': not a valid value (a malformed %%-escape)", name);
    else if (rc == FERRY_ETOOBIG)
        ferry_http_error(r->req, 400, name, "query parameter '%s': longer than %zu bytes", name,
                         cap - 1);
    return rc < 0 ? FERRY_REPLIED : rc;
}

json_t *ferry_http_body_object(ferry_http_req *r)
{
    json_error_t jerr;
    json_t *j =
        json_loadb(r->req->entity.base ? r->req->entity.base : "", r->req->entity.len, 0, &jerr);
    if (j == NULL) {
        ferry_http_error(r->req, 400, NULL, "request body is not valid JSON: %s (line %d)",
                         jerr.text, jerr.line);
        return NULL;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        ferry_http_error(r->req, 400, NULL, "request body must be a JSON object");
        return NULL;
    }
    return j;
}

const char *ferry_http_bearer(const ferry_http_req *r, char *buf, size_t cap)
{
    ssize_t i = h2o_find_header(&r->req->headers, H2O_TOKEN_AUTHORIZATION, -1);
    if (i < 0)
        return NULL;
    h2o_iovec_t v = r->req->headers.entries[i].value;
    if (v.len < 8 || strncasecmp(v.base, "Bearer ", 7) != 0 || v.len - 7 >= cap)
        return NULL;
    memcpy(buf, v.base + 7, v.len - 7);
    buf[v.len - 7] = '\0';
    return buf;
}

static const char *request__reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 204:
        return "No Content";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 409:
        return "Conflict";
    case 413:
        return "Payload Too Large";
    case 503:
        return "Service Unavailable";
    case 507:
        return "Insufficient Storage";
    default:
        return status >= 500 ? "Internal Server Error" : "Error";
    }
}

void ferry_http_json(h2o_req_t *req, int status, json_t *body)
{
    char *text = json_dumps(body, JSON_COMPACT | JSON_REAL_PRECISION(15));
    json_decref(body);
    size_t len = text ? strlen(text) : 0;
    char *copy = h2o_mem_alloc_pool(&req->pool, len + 1);
    memcpy(copy, text ? text : "", len);
    copy[len] = '\n';
    free(text);
    req->res.status = status;
    req->res.reason = request__reason(status);
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
                   H2O_STRLIT("application/json"));
    /* Without a length h2o closes the connection after every reply. */
    req->res.content_length = len + 1;
    h2o_send_inline(req, copy, len + 1);
}

static void request__verror(h2o_req_t *req, int status, const char *field, const char *fmt,
                            va_list ap)
{
    char msg[1024];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    json_t *body = json_pack("{s:s}", "error", msg);
    if (field)
        json_object_set_new(body, "field", json_string(field));
    ferry_http_json(req, status, body);
}

void ferry_http_error(h2o_req_t *req, int status, const char *field, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    request__verror(req, status, field, fmt, ap);
    va_end(ap);
}

void ferry_http_code_error(h2o_req_t *req, int code, const char *fmt, ...)
{
    int status = 500;
    switch (code) {
    case FERRY_EINVAL:
    case FERRY_EUNSAFE:
        status = 400;
        break;
    case FERRY_EAUTH:
        status = 401;
        break;
    case FERRY_EPERM:
        status = 403;
        break;
    case FERRY_ENOENT:
        status = 404;
        break;
    case FERRY_EEXIST:
    case FERRY_ESTATE:
        status = 409;
        break;
    case FERRY_ENOSPC:
        status = 507;
        break;
    default:
        break;
    }
    va_list ap;
    va_start(ap, fmt);
    request__verror(req, status, NULL, fmt, ap);
    va_end(ap);
}

/* Held requests. The ferry_held lives on the heap (its timer must outlive
 * the request pool); a small token in the pool tells it when the pool goes. */
struct ferry_held {
    h2o_req_t *req;
    struct ferry_held **token;
    uv_timer_t timer;
    ferry_held_cb on_timeout, on_gone;
    void *arg;
    int released;
};

static void request__held_closed(uv_handle_t *h)
{
    free(h->data);
}

static void request__held_pool_gone(void *p)
{
    ferry_held *h = *(ferry_held **)p;
    if (h == NULL)
        return;
    h->req = NULL;
    h->token = NULL;
    uv_timer_stop(&h->timer);
    if (h->on_gone)
        h->on_gone(h, h->arg);
}

static void request__held_timeout(uv_timer_t *t)
{
    ferry_held *h = t->data;
    if (h->req && h->on_timeout)
        h->on_timeout(h, h->arg);
}

ferry_held *ferry_http_hold(ferryd *d, h2o_req_t *req, uint64_t timeout_ms,
                            ferry_held_cb on_timeout, ferry_held_cb on_gone, void *arg)
{
    ferry_held *h = ferry_xcalloc(1, sizeof(*h));
    h->req = req;
    h->on_timeout = on_timeout;
    h->on_gone = on_gone;
    h->arg = arg;
    h->token = h2o_mem_alloc_shared(&req->pool, sizeof(*h->token), request__held_pool_gone);
    *h->token = h;
    uv_timer_init(d->loop, &h->timer);
    h->timer.data = h;
    if (timeout_ms > 0)
        uv_timer_start(&h->timer, request__held_timeout, timeout_ms, 0);
    return h;
}

h2o_req_t *ferry_held_req(ferry_held *h)
{
    return h->req;
}

void ferry_held_release(ferry_held *h)
{
    if (h == NULL || h->released)
        return;
    h->released = 1;
    if (h->token)
        *h->token = NULL; /* the pool may outlive us now */
    uv_timer_stop(&h->timer);
    uv_close((uv_handle_t *)&h->timer, request__held_closed);
}

/* ---- replies for the modules below HTTP (reply.h) ---- */

typedef struct request__reply {
    ferry_reply base;
    ferry_held *held;
} request__reply;

static int request__reply_json(ferry_reply *r, int status, json_t *body)
{
    h2o_req_t *req = ferry_held_req(((request__reply *)r)->held);
    if (req == NULL) {
        json_decref(body);
        return FERRY_ECANCELED;
    }
    ferry_http_json(req, status, body);
    return 0;
}

static int request__reply_error(ferry_reply *r, int status, const char *field, const char *message)
{
    h2o_req_t *req = ferry_held_req(((request__reply *)r)->held);
    if (req == NULL)
        return FERRY_ECANCELED;
    ferry_http_error(req, status, field, "%s", message);
    return 0;
}

static void request__reply_release(ferry_reply *r)
{
    ferry_held_release(((request__reply *)r)->held);
    free(r);
}

static int request__reply_gone(ferry_reply *r)
{
    return ferry_held_req(((request__reply *)r)->held) == NULL;
}

static const ferry_reply_ops request__reply_ops = {
    .send_json = request__reply_json,
    .send_error = request__reply_error,
    .release = request__reply_release,
    .gone = request__reply_gone,
};

ferry_reply *ferry_http_reply(ferryd *d, h2o_req_t *req)
{
    request__reply *r = ferry_xcalloc(1, sizeof(*r));
    r->base.ops = &request__reply_ops;
    r->held = ferry_http_hold(d, req, 0, NULL, NULL, NULL);
    return &r->base;
}
