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

static int server__on_req(h2o_handler_t *self, h2o_req_t *req)
{
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
