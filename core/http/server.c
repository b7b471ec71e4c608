/* ferryd's HTTP server: libh2o (the libuv build) on the daemon's loop. */
#include "server.h"

#include <errno.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "routes.h"
#include "util.h"

struct ferry_server {
    h2o_globalconf_t globalconf;
    h2o_context_t ctx;
    h2o_accept_ctx_t accept_ctx;
    uv_tcp_t listener;
    int port;
    SSL_CTX *ssl_ctx;     /* NULL: plain HTTP */
    char listen_url[256]; /* what was bound: "https://0.0.0.0:8470" */
};

typedef struct server__handler {
    h2o_handler_t super;
    ferryd *d;
} server__handler;

static int server__hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Percent-decode into a pool string; NULL on a bad escape or a NUL byte. */
static char *server__decode(h2o_mem_pool_t *pool, const char *s, size_t len, int plus_is_space)
{
    char *out = h2o_mem_alloc_pool(pool, len + 1);
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '%') {
            if (i + 2 >= len)
                return NULL;
            int hi = server__hexval(s[i + 1]), lo = server__hexval(s[i + 2]);
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

static int server__split_path(ferry_http_req *r)
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
        char *seg = server__decode(&req->pool, s, (size_t)(p - s), 0);
        if (seg == NULL)
            return FERRY_EINVAL;
        r->segs[r->nsegs++] = seg;
    }
    return 0;
}

static int server__on_req(h2o_handler_t *self, h2o_req_t *req)
{
    ferry_http_req r = {.d = ((server__handler *)self)->d, .req = req};
    if (server__split_path(&r) < 0) {
        ferry_http_error(req, 400, NULL, "malformed request path");
        return 0;
    }
    if (ferry_routes_dispatch(&r) == 0)
        return 0;
    ferry_http_error(
        req, 404, NULL, "no such endpoint: %.*s %.*s", (int)req->method.len, req->method.base,
        (int)(req->query_at != SIZE_MAX ? req->query_at : req->path.len), req->path.base);
    return 0;
}

static void server__on_accept(uv_stream_t *listener, int status)
{
    ferry_server *s = listener->data;
    if (status != 0)
        return;
    uv_tcp_t *conn = h2o_mem_alloc(sizeof(*conn));
    uv_tcp_init(listener->loop, conn);
    if (uv_accept(listener, (uv_stream_t *)conn) != 0) {
        uv_close((uv_handle_t *)conn, (uv_close_cb)free);
        return;
    }
    uv_tcp_nodelay(conn, 1); /* small JSON replies must not wait for Nagle */
    h2o_socket_t *sock = h2o_uv_socket_create((uv_stream_t *)conn, (uv_close_cb)free);
    h2o_accept(&s->accept_ctx, sock);
}

static int server__bind(ferryd *d, ferry_server *s, char *err, size_t err_cap)
{
    struct sockaddr_storage addr;
    const char *host = d->cfg.listen_host;
    if (strcmp(host, "localhost") == 0)
        host = "127.0.0.1";
    int rc = strchr(host, ':') ? uv_ip6_addr(host, d->cfg.listen_port, (struct sockaddr_in6 *)&addr)
                               : uv_ip4_addr(host, d->cfg.listen_port, (struct sockaddr_in *)&addr);
    if (rc == 0)
        rc = uv_tcp_init(d->loop, &s->listener);
    s->listener.data = s;
    if (rc == 0)
        rc = uv_tcp_bind(&s->listener, (struct sockaddr *)&addr, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&s->listener, 511, server__on_accept);
    if (rc != 0) {
        snprintf(err, err_cap, "cannot listen on %s:%d: %s", d->cfg.listen_host, d->cfg.listen_port,
                 uv_strerror(rc));
        return FERRY_ECONN;
    }
    struct sockaddr_storage bound;
    int len = sizeof(bound);
    uv_tcp_getsockname(&s->listener, (struct sockaddr *)&bound, &len);
    s->port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                                : ((struct sockaddr_in *)&bound)->sin_port);
    return 0;
}

/* OpenSSL's reasons for the errors queued since the last clear, joined
 * ("no start line"); it says nothing of the files' contents. Returns 1
 * when one of them is a key that does not match the certificate. */
static int server__ssl_reason(char *out, size_t cap)
{
    size_t n = 0;
    int mismatch = 0;
    out[0] = '\0';
    unsigned long e;
    while ((e = ERR_get_error()) != 0) {
        mismatch |=
            ERR_GET_LIB(e) == ERR_LIB_X509 && ERR_GET_REASON(e) == X509_R_KEY_VALUES_MISMATCH;
        const char *r = ERR_reason_error_string(e);
        if (r == NULL || strstr(out, r) != NULL || n >= cap)
            continue;
        int w = snprintf(out + n, cap - n, "%s%s", n ? ": " : "", r);
        n += w > 0 ? (size_t)w : 0;
    }
    if (out[0] == '\0')
        snprintf(out, cap, "OpenSSL gave no reason");
    return mismatch;
}

/* ferryd runs unattended: an encrypted key must fail, not prompt on a tty. */
static int server__no_passphrase(char *buf, int size, int rwflag, void *asked)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    *(int *)asked = 1;
    return 0;
}

/* Say which file is wrong in words the operator can act on. */
static int server__tls_fail(ferry_server *s, const char *what, const char *path, const char *why,
                            char *err, size_t err_cap)
{
    snprintf(err, err_cap, "TLS %s %s: %s", what, path, why);
    SSL_CTX_free(s->ssl_ctx);
    s->ssl_ctx = NULL;
    return FERRY_ECONFIG;
}

static int server__tls(const ferry_config *c, ferry_server *s, char *err, size_t err_cap)
{
    static const h2o_iovec_t alpn[] = {{H2O_STRLIT("h2")}, {H2O_STRLIT("http/1.1")}, {NULL, 0}};
    /* tls.ca is only handed to agents, but an unreadable one is the
     * operator's mistake to hear about now, not each agent's later. */
    const char *files[3][2] = {
        {"certificate", c->tls_cert}, {"key", c->tls_key}, {"CA file (tls.ca)", c->tls_ca}};
    char why[512];
    ERR_clear_error();
    s->ssl_ctx = SSL_CTX_new(TLS_server_method());
    if (s->ssl_ctx == NULL) {
        server__ssl_reason(why, sizeof(why));
        snprintf(err, err_cap, "cannot set up TLS: %s", why);
        return FERRY_ECONFIG;
    }
    SSL_CTX_set_min_proto_version(s->ssl_ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(s->ssl_ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                                        SSL_OP_CIPHER_SERVER_PREFERENCE);
    int asked = 0;
    SSL_CTX_set_default_passwd_cb(s->ssl_ctx, server__no_passphrase);
    SSL_CTX_set_default_passwd_cb_userdata(s->ssl_ctx, &asked);
    /* OpenSSL's words for a missing file are vague ("system lib"): ask first. */
    for (int i = 0; i < 3 && files[i][1] != NULL; i++) {
        FILE *f = fopen(files[i][1], "r");
        if (f == NULL)
            return server__tls_fail(s, files[i][0], files[i][1], strerror(errno), err, err_cap);
        fclose(f);
    }
    if (SSL_CTX_use_certificate_chain_file(s->ssl_ctx, c->tls_cert) != 1) {
        server__ssl_reason(why, sizeof(why));
        return server__tls_fail(s, "certificate", c->tls_cert, why, err, err_cap);
    }
    /* Loading the key also checks it against the certificate. */
    int loaded = SSL_CTX_use_PrivateKey_file(s->ssl_ctx, c->tls_key, SSL_FILETYPE_PEM) == 1;
    if (loaded && SSL_CTX_check_private_key(s->ssl_ctx) != 1)
        loaded = 0;
    if (!loaded) {
        int mismatch = server__ssl_reason(why, sizeof(why));
        char text[640];
        if (asked)
            snprintf(text, sizeof(text),
                     "the key is protected by a passphrase; ferryd needs it unencrypted "
                     "(and readable only by ferryd)");
        else if (mismatch)
            snprintf(text, sizeof(text), "does not belong to the certificate %s (%s)", c->tls_cert,
                     why);
        else
            snprintf(text, sizeof(text), "%s", why);
        return server__tls_fail(s, "key", c->tls_key, text, err, err_cap);
    }
    SSL_CTX_set_default_passwd_cb_userdata(s->ssl_ctx, NULL); /* `asked` goes out of scope */
    h2o_ssl_register_alpn_protocols(s->ssl_ctx, alpn);
    s->accept_ctx.ssl_ctx = s->ssl_ctx;
    return 0;
}

/* "host" as it goes in a URL: IPv6 in brackets. */
static void server__url(char *out, size_t cap, const char *scheme, const char *host, int port)
{
    snprintf(out, cap, strchr(host, ':') ? "%s://[%s]:%d" : "%s://%s:%d", scheme, host, port);
}

/* The URL agents are given and blob URLs start with: public_url, else the
 * listen address made reachable from this machine. */
static void server__agent_url(ferryd *d, ferry_server *s)
{
    const ferry_config *c = &d->cfg;
    if (c->public_url) {
        snprintf(d->server_url, sizeof(d->server_url), "%s", c->public_url);
        return;
    }
    const char *h = c->listen_host;
    /* A wildcard is no address to connect to; loopback reaches it here. */
    if (strcmp(h, "0.0.0.0") == 0)
        h = "127.0.0.1";
    else if (strcmp(h, "::") == 0)
        h = "::1";
    /* Plain HTTP keeps the old 127.0.0.1; a certificate names "localhost". */
    else if (strcmp(h, "localhost") == 0 && c->tls_cert == NULL)
        h = "127.0.0.1";
    server__url(d->server_url, sizeof(d->server_url), c->tls_cert ? "https" : "http", h, s->port);
}

int ferry_server_start(ferryd *d, char *err, size_t err_cap)
{
    ferry_server *s = ferry_xcalloc(1, sizeof(*s));
    d->server = s;
    h2o_config_init(&s->globalconf);
    s->globalconf.max_request_entity_size = (size_t)1 << 40; /* snapshots and outputs */
    h2o_hostconf_t *host =
        h2o_config_register_host(&s->globalconf, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_pathconf_t *path = h2o_config_register_path(host, "/", 0);
    server__handler *h = (server__handler *)h2o_create_handler(path, sizeof(*h));
    h->super.on_req = server__on_req;
    h->d = d;
    h2o_context_init(&s->ctx, d->loop, &s->globalconf);
    s->accept_ctx.ctx = &s->ctx;
    s->accept_ctx.hosts = s->globalconf.hosts;
    /* Before binding: a bad certificate must not leave a port half served. */
    int rc = d->cfg.tls_cert ? server__tls(&d->cfg, s, err, err_cap) : 0;
    if (rc == 0)
        rc = server__bind(d, s, err, err_cap);
    if (rc < 0)
        return rc;
    const char *h_ = d->cfg.listen_host;
    server__url(s->listen_url, sizeof(s->listen_url), s->ssl_ctx ? "https" : "http",
                strcmp(h_, "localhost") == 0 && s->ssl_ctx == NULL ? "127.0.0.1" : h_, s->port);
    server__agent_url(d, s);
    return 0;
}

int ferry_server_port(ferryd *d)
{
    return d->server ? d->server->port : 0;
}

const char *ferry_server_listen_url(ferryd *d)
{
    return d->server ? d->server->listen_url : "";
}

void ferry_server_stop(ferryd *d)
{
    if (d->server == NULL)
        return;
    uv_close((uv_handle_t *)&d->server->listener, NULL);
    /* Open connections hold their own references to the context. */
    SSL_CTX_free(d->server->ssl_ctx);
    d->server->ssl_ctx = d->server->accept_ctx.ssl_ctx = NULL;
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
    const char *p = r->query, *end = r->query + r->query_len;
    size_t nlen = strlen(name);
    while (p && p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *stop = amp ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(stop - p));
        const char *kend = eq ? eq : stop;
        if ((size_t)(kend - p) == nlen && memcmp(p, name, nlen) == 0) {
            const char *v = eq ? eq + 1 : stop;
            char *dec = server__decode(&r->req->pool, v, (size_t)(stop - v), 1);
            if (dec == NULL)
                return 0;
            snprintf(out, cap, "%s", dec);
            return 1;
        }
        p = amp ? amp + 1 : end;
    }
    return 0;
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

static const char *server__reason(int status)
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
    req->res.reason = server__reason(status);
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
                   H2O_STRLIT("application/json"));
    /* Without a length h2o closes the connection after every reply. */
    req->res.content_length = len + 1;
    h2o_send_inline(req, copy, len + 1);
}

static void server__verror(h2o_req_t *req, int status, const char *field, const char *fmt,
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
    server__verror(req, status, field, fmt, ap);
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
    default:
        break;
    }
    va_list ap;
    va_start(ap, fmt);
    server__verror(req, status, NULL, fmt, ap);
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

static void server__held_closed(uv_handle_t *h)
{
    free(h->data);
}

static void server__held_pool_gone(void *p)
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

static void server__held_timeout(uv_timer_t *t)
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
    h->token = h2o_mem_alloc_shared(&req->pool, sizeof(*h->token), server__held_pool_gone);
    *h->token = h;
    uv_timer_init(d->loop, &h->timer);
    h->timer.data = h;
    if (timeout_ms > 0)
        uv_timer_start(&h->timer, server__held_timeout, timeout_ms, 0);
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
    uv_close((uv_handle_t *)&h->timer, server__held_closed);
}

/* ---- replies for the modules below HTTP (reply.h) ---- */

typedef struct server__reply {
    ferry_reply base;
    ferry_held *held;
} server__reply;

static int server__reply_json(ferry_reply *r, int status, json_t *body)
{
    h2o_req_t *req = ferry_held_req(((server__reply *)r)->held);
    if (req == NULL) {
        json_decref(body);
        return FERRY_ECANCELED;
    }
    ferry_http_json(req, status, body);
    return 0;
}

static int server__reply_error(ferry_reply *r, int status, const char *field, const char *message)
{
    h2o_req_t *req = ferry_held_req(((server__reply *)r)->held);
    if (req == NULL)
        return FERRY_ECANCELED;
    ferry_http_error(req, status, field, "%s", message);
    return 0;
}

static void server__reply_release(ferry_reply *r)
{
    ferry_held_release(((server__reply *)r)->held);
    free(r);
}

static const ferry_reply_ops server__reply_ops = {
    .send_json = server__reply_json,
    .send_error = server__reply_error,
    .release = server__reply_release,
};

ferry_reply *ferry_http_reply(ferryd *d, h2o_req_t *req)
{
    server__reply *r = ferry_xcalloc(1, sizeof(*r));
    r->base.ops = &server__reply_ops;
    r->held = ferry_http_hold(d, req, 0, NULL, NULL, NULL);
    return &r->base;
}
