/* The asynchronous HTTP client against a tiny HTTP/1.1 server that runs on
 * the same libuv loop (TCP on 127.0.0.1 and a unix socket), one request per
 * connection. */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>

#include <uv.h>

#include "ferry/error.h"
#include "ferry/http.h"
#include "test.h"
#include "util.h"

#define BIG_SIZE (3 * 1024 * 1024 + 17)

static uv_loop_t *loop;
static int port;
static char sock_path[300];
static char tmp_dir[256];

/* ---- the server ---- */

typedef struct conn {
    union {
        uv_tcp_t tcp;
        uv_pipe_t pipe;
        uv_stream_t stream;
    } h;
    char *in;
    size_t in_len, in_cap;
    int answered;
} conn;

static char *server_put_body; /* body of the last PUT /upload */
static size_t server_put_len;
static int server_requests;

static char big_byte(size_t i)
{
    return (char)('a' + (i * 7) % 26);
}

static void conn_closed(uv_handle_t *h)
{
    conn *c = h->data;
    free(c->in);
    free(c);
}

typedef struct reply {
    uv_write_t req;
    char *data;
    conn *c;
} reply;

static void reply_written(uv_write_t *w, int status)
{
    (void)status;
    reply *r = (reply *)w;
    free(r->data);
    uv_close((uv_handle_t *)&r->c->h.stream, conn_closed);
    free(r);
}

static void respond(conn *c, int status, const char *extra_headers, const char *body, size_t len)
{
    char head[512];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d X\r\nContent-Length: %zu\r\nConnection: close\r\n%s\r\n", status,
                     len, extra_headers ? extra_headers : "");
    reply *r = calloc(1, sizeof(*r));
    r->data = malloc((size_t)n + len);
    memcpy(r->data, head, (size_t)n);
    memcpy(r->data + n, body, len);
    r->c = c;
    uv_buf_t b = uv_buf_init(r->data, (unsigned)((size_t)n + len));
    c->answered = 1;
    uv_write(&r->req, &c->h.stream, &b, 1, reply_written);
}

static void held_written(uv_write_t *w, int status)
{
    (void)status;
    reply *r = (reply *)w;
    free(r->data);
    free(r);
}

/* Headers and the start of a body of unknown length, then nothing: the
 * connection stays open (as Docker's attach holds it) until the client goes. */
static void respond_and_hold(conn *c)
{
    static const char text[] = "HTTP/1.1 200 X\r\nConnection: close\r\n\r\nfirst";
    reply *r = calloc(1, sizeof(*r));
    r->data = strdup(text);
    r->c = c;
    uv_buf_t b = uv_buf_init(r->data, (unsigned)strlen(text));
    c->answered = 1;
    uv_write(&r->req, &c->h.stream, &b, 1, held_written);
}

static void route(conn *c, const char *method, const char *path, const char *headers,
                  const char *body, size_t body_len)
{
    server_requests++;
    if (strcmp(path, "/hello") == 0) {
        respond(c, 200, NULL, "hello world", 11);
    } else if (strcmp(path, "/big") == 0) {
        char *big = malloc(BIG_SIZE);
        for (size_t i = 0; i < BIG_SIZE; i++)
            big[i] = big_byte(i);
        respond(c, 200, NULL, big, BIG_SIZE);
        free(big);
    } else if (strcmp(path, "/upload") == 0 && strcmp(method, "PUT") == 0) {
        free(server_put_body);
        server_put_body = malloc(body_len + 1);
        memcpy(server_put_body, body, body_len);
        server_put_len = body_len;
        respond(c, 201, NULL, "stored", 6);
    } else if (strcmp(path, "/echo") == 0) {
        respond(c, 200, "X-Method: echo\r\n", body, body_len);
    } else if (strcmp(path, "/headers") == 0) {
        respond(c, 200, NULL, headers, strlen(headers));
    } else if (strcmp(path, "/redirect") == 0) {
        respond(c, 302, "Location: /hello\r\n", "moved", 5);
    } else if (strcmp(path, "/empty") == 0) {
        respond(c, 200, NULL, "", 0);
    } else if (strcmp(path, "/hold") == 0) {
        respond_and_hold(c);
    } else if (strcmp(path, "/slow") == 0) {
        /* never answers: the client's timeout or cancel ends it */
    } else {
        respond(c, 404, NULL, "no such thing", 13);
    }
}

/* Once the whole request is in: split it and route it. */
static void try_request(conn *c)
{
    char *end = memmem(c->in, c->in_len, "\r\n\r\n", 4);
    if (end == NULL || c->answered)
        return;
    size_t head_len = (size_t)(end - c->in) + 4;
    size_t body_len = 0;
    *end = '\0';
    char *cl = strcasestr(c->in, "\r\ncontent-length:");
    if (cl)
        body_len = strtoul(cl + 17, NULL, 10);
    if (c->in_len < head_len + body_len) {
        *end = '\r';
        return;
    }
    char method[16] = "", path[256] = "";
    sscanf(c->in, "%15s %255s", method, path);
    char *headers = strstr(c->in, "\r\n");
    route(c, method, path, headers ? headers + 2 : "", c->in + head_len, body_len);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    conn *c = h->data;
    if (c->in_cap - c->in_len < suggested) {
        c->in_cap = c->in_len + suggested + 1;
        c->in = realloc(c->in, c->in_cap);
    }
    *buf = uv_buf_init(c->in + c->in_len, (unsigned)suggested);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    (void)buf;
    conn *c = s->data;
    if (n < 0) {
        if (!c->answered)
            uv_close((uv_handle_t *)s, conn_closed);
        return;
    }
    c->in_len += (size_t)n;
    try_request(c);
}

static void on_connection(uv_stream_t *server, int status)
{
    CHECK_INT(status, 0);
    conn *c = calloc(1, sizeof(*c));
    if (server->type == UV_TCP)
        uv_tcp_init(loop, &c->h.tcp);
    else
        uv_pipe_init(loop, &c->h.pipe, 0);
    c->h.stream.data = c;
    CHECK_INT(uv_accept(server, &c->h.stream), 0);
    uv_read_start(&c->h.stream, on_alloc, on_read);
}

static uv_tcp_t tcp_server;
static uv_pipe_t pipe_server;

static void server_start(void)
{
    struct sockaddr_in addr;
    uv_ip4_addr("127.0.0.1", 0, &addr);
    uv_tcp_init(loop, &tcp_server);
    CHECK_INT(uv_tcp_bind(&tcp_server, (const struct sockaddr *)&addr, 0), 0);
    CHECK_INT(uv_listen((uv_stream_t *)&tcp_server, 64, on_connection), 0);
    int len = sizeof(addr);
    uv_tcp_getsockname(&tcp_server, (struct sockaddr *)&addr, &len);
    port = ntohs(addr.sin_port);

    snprintf(sock_path, sizeof(sock_path), "%s/http.sock", tmp_dir);
    uv_pipe_init(loop, &pipe_server, 0);
    CHECK_INT(uv_pipe_bind(&pipe_server, sock_path), 0);
    CHECK_INT(uv_listen((uv_stream_t *)&pipe_server, 16, on_connection), 0);
}

static void close_any(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (uv_is_closing(h))
        return;
    if (h == (uv_handle_t *)&tcp_server || h == (uv_handle_t *)&pipe_server)
        uv_close(h, NULL);
    else
        uv_close(h, conn_closed); /* a connection left open (/slow) */
}

/* ---- the client side ---- */

typedef struct result {
    int done;
    int code;
    long status;
    char error[256];
    char *body;
    size_t body_len;
    char header[128];
    int64_t streamed;
    int stream_abort_at; /* on_data: abort once this many bytes arrived (0: never) */
    int headers_calls;   /* on_headers */
    long headers_status;
    int headers_abort;   /* on_headers answers this */
    int done_at_headers; /* `done` had run when on_headers came */
    size_t held_bytes;   /* on_held_data */
} result;

static void on_done(void *arg, const ferry_http_response *res)
{
    result *r = arg;
    r->done++;
    r->code = res->code;
    r->status = res->status;
    snprintf(r->error, sizeof(r->error), "%s", res->error);
    r->body = malloc(res->body_len + 1);
    memcpy(r->body, res->body, res->body_len + 1);
    r->body_len = res->body_len;
    if (ferry_http_header(res, "X-Method", r->header, sizeof(r->header)) == NULL)
        r->header[0] = '\0';
}

static int on_data(void *arg, const char *data, size_t len)
{
    result *r = arg;
    for (size_t i = 0; i < len; i++) {
        if (data[i] != big_byte((size_t)r->streamed + i))
            return 1;
    }
    r->streamed += (int64_t)len;
    return r->stream_abort_at && r->streamed >= r->stream_abort_at;
}

static int on_headers(void *arg, long status, const char *headers)
{
    result *r = arg;
    r->headers_calls++;
    r->headers_status = status;
    r->done_at_headers = r->done;
    CHECK(headers != NULL && strncmp(headers, "HTTP/1.1 ", 9) == 0);
    return r->headers_abort;
}

static int on_held_data(void *arg, const char *data, size_t len)
{
    (void)data;
    ((result *)arg)->held_bytes += len;
    return 0;
}

static void tick(uv_timer_t *t)
{
    (void)t;
}

/* Run the loop until *flag reaches n. A ticking timer keeps UV_RUN_ONCE from
 * blocking for good when the event came from the timer phase of a turn. */
static void run_until(int *flag, int n)
{
    uv_timer_t ticker;
    uv_timer_init(loop, &ticker);
    uv_timer_start(&ticker, tick, 10, 10);
    while (*flag < n)
        uv_run(loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&ticker, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
}

static ferry_http_options opts_for(const char *path, result *r)
{
    static char url[512];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
    ferry_http_options o;
    memset(&o, 0, sizeof(o));
    o.struct_size = sizeof(o);
    o.url = url;
    o.done = on_done;
    o.arg = r;
    o.timeout_ms = 10000;
    return o;
}

static void result_free(result *r)
{
    free(r->body);
    memset(r, 0, sizeof(*r));
}

static void test_get_memory(ferry_http_client *c)
{
    result r = {0};
    ferry_http_options o = opts_for("/hello", &r);
    CHECK_INT(ferry_http_request_start(c, &o, NULL), 0);
    CHECK_INT(r.done, 0); /* never completes from inside start */
    run_until(&r.done, 1);
    CHECK_INT(r.done, 1);
    CHECK_INT(r.code, 0);
    CHECK_INT(r.status, 200);
    CHECK_STR(r.body, "hello world");
    CHECK_STR(r.error, "");
    result_free(&r);
}

static void test_get_file_and_stream(ferry_http_client *c)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/big.bin", tmp_dir);
    result r = {0};
    ferry_http_options o = opts_for("/big", &r);
    o.download_path = path;
    o.on_data = on_data; /* both: the stream sees what goes to the file */
    CHECK_INT(ferry_http_request_start(c, &o, NULL), 0);
    run_until(&r.done, 1);
    CHECK_INT(r.code, 0);
    CHECK_INT(r.status, 200);
    CHECK_INT(r.body_len, 0); /* went to the file, not to memory */
    CHECK_INT(r.streamed, BIG_SIZE);
    size_t len = 0;
    char *data = ferry_read_file(path, &len);
    CHECK(data != NULL);
    CHECK_INT(len, BIG_SIZE);
    int same = data != NULL;
    for (size_t i = 0; data && i < len; i++)
        same &= data[i] == big_byte(i);
    CHECK(same);
    free(data);
    unlink(path);
    result_free(&r);

    /* an empty 2xx body still leaves a (empty) file */
    o = opts_for("/empty", &r);
    o.download_path = path;
    CHECK_INT(ferry_http_request_start(c, &o, NULL), 0);
    run_until(&r.done, 1);
    CHECK_INT(r.code, 0);
    struct stat st;
    CHECK_INT(stat(path, &st), 0);
    CHECK_INT(st.st_size, 0);
    unlink(path);
    result_free(&r);

    /* aborting from on_data ends the request with ECANCELED and no file */
    o = opts_for("/big", &r);
    o.download_path = path;
    o.on_data = on_data;
    r.stream_abort_at = 100000;
    CHECK_INT(ferry_http_request_start(c, &o, NULL), 0);
    run_until(&r.done, 1);
    CHECK_INT(r.code, FERRY_ECANCELED);
    CHECK(stat(path, &st) != 0 && errno == ENOENT);
    result_free(&r);
}

static void test_error_status_keeps_body(ferry_http_client *c)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/missing.bin", tmp_dir);
    result r = {0};
    ferry_http_options o = opts_for("/missing", &r);
    o.download_path = path;
    CHECK_INT(ferry_http_request_start(c, &o, NULL), 0);
    run_until(&r.done, 1);
    CHECK_INT(r.code, 0); /* the exchange worked; the status says no */
    CHECK_INT(r.status, 404);
    CHECK_STR(r.body, "no such thing");
    struct stat st;
    CHECK(stat(path, &st) != 0 && errno == ENOENT);
    result_free(&r);
}

static void test_put_file(ferry_http_client *c)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/up.bin", tmp_dir);
    size_t n = 1500000;
    char *data = malloc(n);
    for (size_t i = 0; i < n; i++)
        data[i] = (char)(i * 31 + 7);
    CHECK_INT(ferry_write_file(path, data, n), 0);
    result r = {0};
    ferry_http_options o = opts_for("/upload", &r);
    o.method = "PUT";
    o.upload_path = path;
    CHECK_INT(ferry_http_request_start(c, &o, NULL), 0);
    run_until(&r.done, 1);
    CHECK_INT(r.code, 0);
    CHECK_INT(r.status, 201);
    CHECK_STR(r.body, "stored");
    CHECK_INT(server_put_len, n);
    CHECK(server_put_body != NULL && memcmp(server_put_body, data, n) == 0);
    free(data);
    unlink(path);
    result_free(&r);

    /* a missing upload file is refused at once */
    o = opts_for("/upload", &r);
    o.method = "PUT";
    o.upload_path = path;
    CHECK_INT(ferry_http_request_start(c, &o, NULL), FERRY_ENOENT);
}

static void test_post_memory_headers(ferry_http_client *c)
{
    result r = {0};
    ferry_http_options o = opts_for("/echo", &r);
    const char *headers[] = {"Content-Type: application/json", NULL};
    o.method = "POST";
    o.headers = headers;
    o.body = "{\"a\": 1}";
    o.body_len = 8;
    CHECK_INT(ferry_http_request_start(c, &o, NULL), 0);
    run_until(&r.done, 1);
    CHECK_INT(r.status, 200);
    CHECK_STR(r.body, "{\"a\": 1}");
    CHECK_STR(r.header, "echo");
    result_free(&r);

    const char *auth[] = {"Authorization: Bearer t0k", NULL};
    o = opts_for("/headers", &r);
    o.headers = auth;
    CHECK_INT(ferry_http_request_start(c, &o, NULL), 0);
    run_until(&r.done, 1);
    CHECK_CONTAINS(r.body, "Authorization: Bearer t0k");
    result_free(&r);
}

static void test_redirect(ferry_http_client *c)
{
    result r = {0};
    ferry_http_options o = opts_for("/redirect", &r);
    CHECK_INT(ferry_http_request_start(c, &o, NULL), 0);
    run_until(&r.done, 1);
    CHECK_INT(r.status, 302); /* not followed unless asked */
    result_free(&r);
    o = opts_for("/redirect", &r);
    o.follow_redirects = 1;
    CHECK_INT(ferry_http_request_start(c, &o, NULL), 0);
    run_until(&r.done, 1);
    CHECK_INT(r.status, 200);
    CHECK_STR(r.body, "hello world");
    result_free(&r);
}

/* on_headers: once, for the final response, before its body; a server
 * that holds the connection open after its headers is known to listen. */
static void test_on_headers(ferry_http_client *c)
{
    result r = {0};
    ferry_http_options o = opts_for("/hold", &r);
    o.on_headers = on_headers;
    o.on_data = on_held_data;
    o.timeout_ms = 0;
    ferry_http_request *req = NULL;
    CHECK_INT(ferry_http_request_start(c, &o, &req), 0);
    run_until(&r.headers_calls, 1);
    CHECK_INT(r.headers_calls, 1);
    CHECK_INT(r.headers_status, 200);
    CHECK_INT(r.done_at_headers, 0);
    for (int i = 0; i < 200 && r.held_bytes < 5; i++)
        uv_run(loop, UV_RUN_NOWAIT);
    CHECK_INT(r.held_bytes, 5);
    CHECK_INT(r.done, 0); /* the body goes on: only the headers are in */
    ferry_http_request_cancel(req);
    CHECK_INT(r.code, FERRY_ECANCELED);
    result_free(&r);

    /* Redirects that are followed: only the last response counts. */
    o = opts_for("/redirect", &r);
    o.on_headers = on_headers;
    o.follow_redirects = 1;
    CHECK_INT(ferry_http_request_start(c, &o, NULL), 0);
    run_until(&r.done, 1);
    CHECK_INT(r.headers_calls, 1);
    CHECK_INT(r.headers_status, 200);
    result_free(&r);
    /* An error status is a final response too. */
    o = opts_for("/nothing-here", &r);
    o.on_headers = on_headers;
    CHECK_INT(ferry_http_request_start(c, &o, NULL), 0);
    run_until(&r.done, 1);
    CHECK_INT(r.headers_calls, 1);
    CHECK_INT(r.headers_status, 404);
    CHECK_STR(r.body, "no such thing");
    result_free(&r);
    /* Non-zero aborts. */
    r.headers_abort = 1;
    o = opts_for("/hello", &r);
    o.on_headers = on_headers;
    CHECK_INT(ferry_http_request_start(c, &o, NULL), 0);
    run_until(&r.done, 1);
    CHECK_INT(r.code, FERRY_ECANCELED);
    CHECK_CONTAINS(r.error, "headers callback");
    result_free(&r);
    /* A caller built before on_headers existed passes a shorter struct. */
    o = opts_for("/hello", &r);
    o.on_headers = on_headers;
    o.struct_size = offsetof(ferry_http_options, on_headers);
    CHECK_INT(ferry_http_request_start(c, &o, NULL), 0);
    run_until(&r.done, 1);
    CHECK_INT(r.code, 0);
    CHECK_INT(r.headers_calls, 0);
    result_free(&r);
}

static void test_timeout(ferry_http_client *c)
{
    result r = {0};
    ferry_http_options o = opts_for("/slow", &r);
    o.timeout_ms = 300;
    uint64_t t0 = ferry_mono_ms();
    CHECK_INT(ferry_http_request_start(c, &o, NULL), 0);
    run_until(&r.done, 1);
    uint64_t took = ferry_mono_ms() - t0;
    CHECK_INT(r.code, FERRY_ETIMEDOUT);
    CHECK_INT(r.status, 0);
    CHECK(r.error[0] != '\0');
    CHECK(took >= 250 && took < 5000);
    result_free(&r);
}

static void test_cancel(ferry_http_client *c)
{
    result r = {0};
    ferry_http_options o = opts_for("/slow", &r);
    ferry_http_request *req = NULL;
    CHECK_INT(ferry_http_request_start(c, &o, &req), 0);
    for (int i = 0; i < 5; i++)
        uv_run(loop, UV_RUN_NOWAIT);
    CHECK_INT(r.done, 0);
    ferry_http_request_cancel(req);
    CHECK_INT(r.done, 1); /* done runs before cancel returns */
    CHECK_INT(r.code, FERRY_ECANCELED);
    result_free(&r);
}

static void test_connection_refused(ferry_http_client *c)
{
    /* a port nobody listens on: bind one, then close it */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof(a);
    bind(fd, (struct sockaddr *)&a, sizeof(a));
    getsockname(fd, (struct sockaddr *)&a, &alen);
    close(fd);
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/hello?sig=SECRET", ntohs(a.sin_port));
    result r = {0};
    ferry_http_options o = opts_for("/", &r);
    o.url = url;
    CHECK_INT(ferry_http_request_start(c, &o, NULL), 0);
    run_until(&r.done, 1);
    CHECK_INT(r.code, FERRY_ECONN);
    CHECK_INT(r.status, 0);
    CHECK(r.error[0] != '\0');
    CHECK(strstr(r.error, "SECRET") == NULL);
    result_free(&r);

    /* a scheme that is not allowed */
    o = opts_for("/", &r);
    o.url = "file:///etc/hostname";
    CHECK_INT(ferry_http_request_start(c, &o, NULL), 0);
    run_until(&r.done, 1);
    CHECK_INT(r.code, FERRY_EINVAL);
    result_free(&r);
}

static void test_file_url(ferry_http_client *c)
{
    char path[512], url[600];
    snprintf(path, sizeof(path), "%s/local.txt", tmp_dir);
    CHECK_INT(ferry_write_file(path, "local bytes", 11), 0);
    snprintf(url, sizeof(url), "file://%s", path);
    result r = {0};
    ferry_http_options o = opts_for("/", &r);
    o.url = url;
    o.protocols = "http,https,file";
    CHECK_INT(ferry_http_request_start(c, &o, NULL), 0);
    run_until(&r.done, 1);
    CHECK_INT(r.code, 0);
    CHECK_STR(r.body, "local bytes");
    result_free(&r);
    unlink(path);
    o.url = url;
    CHECK_INT(ferry_http_request_start(c, &o, NULL), 0);
    run_until(&r.done, 1);
    CHECK_INT(r.code, FERRY_ENOENT);
    result_free(&r);
}

static void test_unix_socket(ferry_http_client *c)
{
    result r = {0};
    ferry_http_options o = opts_for("/", &r);
    o.url = "http://localhost/hello";
    o.unix_socket = sock_path;
    CHECK_INT(ferry_http_request_start(c, &o, NULL), 0);
    run_until(&r.done, 1);
    CHECK_INT(r.code, 0);
    CHECK_INT(r.status, 200);
    CHECK_STR(r.body, "hello world");
    result_free(&r);
}

static void test_many_at_once(ferry_http_client *c)
{
    enum { N = 24 };
    static result rs[N];
    int before = server_requests;
    for (int i = 0; i < N; i++) {
        ferry_http_options o = opts_for(i % 2 ? "/hello" : "/missing", &rs[i]);
        CHECK_INT(ferry_http_request_start(c, &o, NULL), 0);
    }
    for (int i = 0; i < N; i++)
        run_until(&rs[i].done, 1);
    for (int i = 0; i < N; i++) {
        CHECK_INT(rs[i].done, 1);
        CHECK_INT(rs[i].status, i % 2 ? 200 : 404);
        result_free(&rs[i]);
    }
    CHECK_INT(server_requests - before, N);
}

static void test_redact(void)
{
    char b[256];
    CHECK_STR(ferry_http_redact_url("https://u:p@host:9/a/b?X-Amz-Signature=s#f", b, sizeof(b)),
              "https://host:9/a/b");
    CHECK_STR(ferry_http_redact_url("http://h/v1/blobs/k?expires=1&sig=ab", b, sizeof(b)),
              "http://h/v1/blobs/k");
    CHECK_STR(ferry_http_redact_url("file:///data/x.csv", b, sizeof(b)), "file:///data/x.csv");
    CHECK_STR(ferry_http_redact_url("relative/p?q=1", b, sizeof(b)), "relative/p");
    CHECK_STR(ferry_http_redact_url("http://h/p?q", b, 5), "http");
}

static int closed_called;
static void on_closed(void *arg)
{
    (void)arg;
    closed_called++;
}

static void test_close_with_pending(ferry_http_client *c)
{
    result r = {0};
    ferry_http_options o = opts_for("/slow", &r);
    CHECK_INT(ferry_http_request_start(c, &o, NULL), 0);
    for (int i = 0; i < 5; i++)
        uv_run(loop, UV_RUN_NOWAIT);
    ferry_http_client_close(c, on_closed, NULL);
    CHECK_INT(r.done, 1);
    CHECK_INT(r.code, FERRY_ECANCELED);
    CHECK_INT(ferry_http_request_start(c, &o, NULL), FERRY_EINVAL);
    run_until(&closed_called, 1);
    result_free(&r);
}

int main(void)
{
    snprintf(tmp_dir, sizeof(tmp_dir), "/tmp/ferry-test-http-XXXXXX");
    if (mkdtemp(tmp_dir) == NULL)
        return 2;
    loop = uv_default_loop();
    server_start();

    ferry_http_client *c = NULL;
    CHECK_INT(ferry_http_client_new(loop, &c), 0);
    test_redact();
    test_get_memory(c);
    test_get_file_and_stream(c);
    test_error_status_keeps_body(c);
    test_put_file(c);
    test_post_memory_headers(c);
    test_redirect(c);
    test_on_headers(c);
    test_timeout(c);
    test_cancel(c);
    test_connection_refused(c);
    test_file_url(c);
    test_unix_socket(c);
    test_many_at_once(c);
    test_close_with_pending(c);

    uv_walk(loop, close_any, NULL);
    uv_run(loop, UV_RUN_DEFAULT);
    CHECK_INT(uv_loop_close(loop), 0);
    free(server_put_body);
    ferry_rmtree(tmp_dir);
    TEST_MAIN_END();
}
