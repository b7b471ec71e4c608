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
#include "request.h"
#include "routes.h"
#include "util.h"

/* After h2o.h (request.h), which it needs. */
#include <h2o/http1.h>
#include <h2o/http2.h>

/* Request bodies. h2o 2.2 reads a whole body (spooling a large one to a
 * file in /tmp) before it hands the request over, and refuses early only a
 * Content-Length above globalconf.max_request_entity_size, which it reads
 * when the headers are in (and, for a chunked body, at each read). So that
 * limit is small, except while h2o reads for a connection whose request
 * may take a large body: the route table says which routes do, how large,
 * and checks the credentials in the headers (ferry_routes_large_body),
 * from a wrapper around h2o's read callback that sees the head before h2o
 * does. At most
 * SERVER__MAX_LARGE such bodies come in at once; the next is answered 503.
 * Anything read outside the wrapper (a pipelined request) gets the small
 * limit, and so does every HTTP/2 request: its head comes in HPACK frames
 * that only h2o decodes, after which it reads the body at once. A large
 * body goes over HTTP/1.1 (ferry's clients use it for uploads). */
#define SERVER__SMALL_BODY ((size_t)8 << 20)
#define SERVER__MAX_LARGE 8
#define SERVER__RETRY_AFTER "5"

/* picohttpparser's (libh2o carries it; h2o parses heads with it too). */
struct phr_header {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
};
int phr_parse_request(const char *buf, size_t len, const char **method, size_t *method_len,
                      const char **path, size_t *path_len, int *minor_version,
                      struct phr_header *headers, size_t *num_headers, size_t last_len);

typedef struct server__conn server__conn;

struct ferry_server {
    ferryd *d;
    h2o_globalconf_t globalconf;
    h2o_context_t ctx;
    h2o_accept_ctx_t accept_ctx;
    uv_tcp_t listener;
    int port;
    SSL_CTX *ssl_ctx;     /* NULL: plain HTTP */
    char listen_url[256]; /* what was bound: "https://0.0.0.0:8470" */
    uv_prepare_t rewrap;  /* puts server__on_read back where h2o replaced it */
    server__conn *conns;  /* open connections */
    int n_large;          /* large bodies coming in */
};

/* One accepted connection; its socket's on_close points here. */
struct server__conn {
    uv_tcp_t tcp; /* first: the handle's close callback frees the whole */
    ferry_server *s;
    h2o_socket_t *sock;        /* NULL once h2o closed it */
    h2o_socket_cb inner;       /* h2o's read callback */
    h2o_timeout_entry_t shake; /* the TLS handshake's deadline */
    int decided;               /* the current request's limit is known */
    int large;                 /* it holds one of the SERVER__MAX_LARGE slots */
    size_t limit;              /* the largest body its route and credentials allow */
    int busy;                  /* answered 503, closing */
    server__conn *next, **pprev;
};

typedef struct server__handler {
    h2o_handler_t super;
    ferryd *d;
} server__handler;

static void server__on_close(void *data);

/* The request's body is in: its connection's next request is decided anew
 * and a large body's slot is free. */
static void server__request_in(h2o_req_t *req)
{
    h2o_socket_t *sock =
        req->conn->callbacks->get_socket ? req->conn->callbacks->get_socket(req->conn) : NULL;
    if (sock == NULL || sock->on_close.cb != server__on_close)
        return;
    server__conn *c = sock->on_close.data;
    c->decided = 0;
    if (c->large)
        c->s->n_large--;
    c->large = 0;
}

static int server__on_req(h2o_handler_t *self, h2o_req_t *req)
{
    server__request_in(req);
    ferry_http_req r = {.d = ((server__handler *)self)->d, .req = req};
    if (ferry_http_req_parse(&r) < 0) {
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

/* The largest body a request with this head may send (routes.c); 0: the
 * small limit. */
static size_t server__head_large(ferry_server *s, const char *method, size_t method_len,
                                 const char *path, size_t path_len, const struct phr_header *auth)
{
    h2o_req_t req;
    memset(&req, 0, sizeof(req));
    h2o_mem_init_pool(&req.pool);
    req.method = h2o_iovec_init(method, method_len);
    req.path = h2o_iovec_init(path, path_len);
    const char *q = memchr(path, '?', path_len);
    req.query_at = q ? (size_t)(q - path) : SIZE_MAX;
    if (auth != NULL)
        h2o_add_header(&req.pool, &req.headers, H2O_TOKEN_AUTHORIZATION, NULL, auth->value,
                       auth->value_len);
    ferry_http_req r = {.d = s->d, .req = &req};
    size_t limit = ferry_http_req_parse(&r) == 0 ? ferry_routes_large_body(&r) : 0;
    h2o_mem_clear_pool(&req.pool);
    return limit;
}

static void server__busy_sent(h2o_socket_t *sock, const char *err)
{
    server__conn *c = sock->on_close.data;
    if (c->inner == NULL) /* TLS: answered before h2o had a connection */
        h2o_socket_close(sock);
    else
        c->inner(sock, err ? err : "busy"); /* h2o closes the connection on an error */
}

/* Too many large bodies already: 503 before this one is read, then close. */
static void server__busy(server__conn *c)
{
    static const char body[] =
        "{\"error\":\"too many uploads at once; retry in " SERVER__RETRY_AFTER " s\"}\n";
    static char head[256];
    snprintf(head, sizeof(head),
             "HTTP/1.1 503 Service Unavailable\r\nRetry-After: " SERVER__RETRY_AFTER
             "\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
             "Connection: close\r\n\r\n",
             sizeof(body) - 1);
    h2o_iovec_t bufs[2] = {h2o_iovec_init(head, strlen(head)),
                           h2o_iovec_init(body, sizeof(body) - 1)};
    c->busy = 1;
    h2o_socket_read_stop(c->sock);
    h2o_socket_write(c->sock, bufs, 2, server__busy_sent);
}

/* With the head of the connection's next request in, its body's limit. */
static void server__decide(server__conn *c)
{
    h2o_buffer_t *in = c->sock->input;
    const char *method, *path;
    size_t method_len, path_len, n_headers = H2O_MAX_HEADERS;
    int minor;
    struct phr_header headers[H2O_MAX_HEADERS];
    int n =
        phr_parse_request(in->bytes, in->size < H2O_MAX_REQLEN ? in->size : H2O_MAX_REQLEN, &method,
                          &method_len, &path, &path_len, &minor, headers, &n_headers, 0);
    if (n == -2)
        return; /* not all in yet */
    c->decided = 1;
    if (n < 0)
        return; /* h2o answers 400 */
    const struct phr_header *auth = NULL;
    size_t length = SIZE_MAX; /* chunked, or no body */
    int has_length = 0;
    for (size_t i = 0; i < n_headers; i++) {
        const struct phr_header *h = &headers[i];
        if (h2o_lcstris(h->name, h->name_len, H2O_STRLIT("authorization")))
            auth = h;
        else if (h2o_lcstris(h->name, h->name_len, H2O_STRLIT("content-length"))) {
            length = h2o_strtosize(h->value, h->value_len);
            has_length = 1;
        }
    }
    if (has_length && length <= SERVER__SMALL_BODY)
        return; /* small enough for any route */
    size_t limit = server__head_large(c->s, method, method_len, path, path_len, auth);
    /* Past its route's own bound it keeps the small limit: h2o refuses an
     * announced length over that at the head, before reading the body. */
    if (limit <= SERVER__SMALL_BODY || (has_length && length > limit))
        return;
    if (c->s->n_large >= SERVER__MAX_LARGE) {
        server__busy(c);
        return;
    }
    c->large = 1;
    c->limit = limit;
    c->s->n_large++;
}

static void server__on_read(h2o_socket_t *sock, const char *err)
{
    server__conn *c = sock->on_close.data;
    if (err == NULL && !c->decided)
        server__decide(c);
    if (c->busy)
        return;
    c->s->globalconf.max_request_entity_size = c->large ? c->limit : SERVER__SMALL_BODY;
    c->inner(sock, err);
    c->s->globalconf.max_request_entity_size = SERVER__SMALL_BODY;
}

static void server__wrap(server__conn *c)
{
    if (c->sock != NULL && !c->busy && c->sock->_cb.read != NULL &&
        c->sock->_cb.read != server__on_read) {
        c->inner = c->sock->_cb.read;
        c->sock->_cb.read = server__on_read;
    }
}

/* h2o sets its read callback anew after each response, outside any read:
 * wrap it again before the loop polls. */
static void server__rewrap(uv_prepare_t *p)
{
    ferry_server *s = p->data;
    for (server__conn *c = s->conns; c != NULL; c = c->next)
        server__wrap(c);
}

static void server__on_close(void *data)
{
    server__conn *c = data;
    if (c->large)
        c->s->n_large--;
    c->large = 0;
    c->sock = NULL;
    h2o_timeout_unlink(&c->shake);
    if (c->next)
        c->next->pprev = c->pprev;
    *c->pprev = c->next;
}

static void server__free(uv_handle_t *h)
{
    free(h);
}

static void server__http1(server__conn *c)
{
    h2o_http1_accept(&c->s->accept_ctx, c->sock, *h2o_get_timestamp(&c->s->ctx, NULL, NULL));
    server__wrap(c);
}

/* As h2o_accept's, but an HTTP/1.1 request that came with the handshake's
 * end is decided here: h2o reads it before any read callback. */
static void server__on_handshake(h2o_socket_t *sock, const char *err)
{
    server__conn *c = sock->on_close.data;
    h2o_timeout_unlink(&c->shake);
    if (err != NULL) {
        h2o_socket_close(sock);
        return;
    }
    h2o_iovec_t proto = h2o_socket_ssl_get_selected_protocol(sock);
    if (h2o_memis(proto.base, proto.len, H2O_STRLIT("h2"))) {
        h2o_http2_accept(&c->s->accept_ctx, sock, *h2o_get_timestamp(&c->s->ctx, NULL, NULL));
        server__wrap(c); /* it keeps the small limit: no head is ever decided */
        return;
    }
    if (sock->input->size == 0) {
        server__http1(c);
        return;
    }
    /* The first request came with the handshake's end: decide it now. */
    server__decide(c);
    if (c->busy) /* no h2o connection yet to close it */
        return;
    c->s->globalconf.max_request_entity_size = c->large ? c->limit : SERVER__SMALL_BODY;
    server__http1(c);
    c->s->globalconf.max_request_entity_size = SERVER__SMALL_BODY;
}

static void server__shake_timeout(h2o_timeout_entry_t *e)
{
    server__conn *c = H2O_STRUCT_FROM_MEMBER(server__conn, shake, e);
    h2o_socket_close(c->sock);
}

static void server__on_accept(uv_stream_t *listener, int status)
{
    ferry_server *s = listener->data;
    if (status != 0)
        return;
    server__conn *c = ferry_xcalloc(1, sizeof(*c));
    uv_tcp_init(listener->loop, &c->tcp);
    if (uv_accept(listener, (uv_stream_t *)&c->tcp) != 0) {
        uv_close((uv_handle_t *)&c->tcp, server__free);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1); /* small JSON replies must not wait for Nagle */
    c->s = s;
    c->sock = h2o_uv_socket_create((uv_stream_t *)&c->tcp, server__free);
    c->sock->on_close.cb = server__on_close;
    c->sock->on_close.data = c;
    c->next = s->conns;
    if (c->next)
        c->next->pprev = &c->next;
    c->pprev = &s->conns;
    s->conns = c;
    if (s->ssl_ctx == NULL) {
        server__http1(c);
        return;
    }
    c->shake.cb = server__shake_timeout;
    h2o_timeout_link(s->ctx.loop, &s->ctx.handshake_timeout, &c->shake);
    h2o_socket_ssl_handshake(c->sock, s->ssl_ctx, NULL, server__on_handshake);
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
    s->d = d;
    h2o_config_init(&s->globalconf);
    s->globalconf.max_request_entity_size = SERVER__SMALL_BODY; /* raised by server__on_read */
    s->globalconf.http1.upgrade_to_http2 = 0;                   /* see SERVER__SMALL_BODY */
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
    uv_prepare_init(d->loop, &s->rewrap);
    s->rewrap.data = s;
    uv_prepare_start(&s->rewrap, server__rewrap);
    uv_unref((uv_handle_t *)&s->rewrap);
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
    uv_close((uv_handle_t *)&d->server->rewrap, NULL);
    /* Open connections hold their own references to the context. */
    SSL_CTX_free(d->server->ssl_ctx);
    d->server->ssl_ctx = d->server->accept_ctx.ssl_ctx = NULL;
}
