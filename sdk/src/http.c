/* The asynchronous HTTP client: libcurl's multi interface on a libuv loop.
 *
 * curl tells us which sockets to watch (CURLMOPT_SOCKETFUNCTION) and when to
 * wake it up (CURLMOPT_TIMERFUNCTION); we map those to uv_poll_t and one
 * uv_timer_t and hand readiness back through curl_multi_socket_action().
 * libcurl refuses re-entrant calls (adding or removing a handle) from inside
 * its callbacks, so such calls made from on_data are deferred until the
 * current curl_multi_socket_action() returns.
 */
#include "ferry/http.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>

#include "ferry/buf.h"
#include "ferry/error.h"
#include "ferry/plugin.h" /* FERRY_HAS_FIELD */

#if LIBCURL_VERSION_NUM < 0x075500
#error "ferry needs libcurl >= 7.85 (CURLOPT_PROTOCOLS_STR)"
#endif

#define FERRY__HTTP_DEFAULT_MAX_BODY ((size_t)64 << 20)

typedef struct ferry__http_socket {
    uv_poll_t poll;
    curl_socket_t fd;
    ferry_http_client *client;
    struct ferry__http_socket *prev, *next;
} ferry__http_socket;

struct ferry_http_client {
    uv_loop_t *loop;
    CURLM *multi;
    uv_timer_t timer;
    int in_curl;  /* > 0 while inside curl_multi_socket_action() */
    int deferred; /* requests waiting to be added to or removed from curl */
    int closing;
    int close_pending; /* close asked for from inside curl */
    int open_handles;  /* uv handles not closed yet: the timer and the polls */
    void (*closed)(void *arg);
    void *closed_arg;
    ferry_http_request *requests; /* every request not completed yet */
    ferry__http_socket *sockets;
};

struct ferry_http_request {
    ferry_http_client *client;
    CURL *easy;
    struct curl_slist *headers;
    FILE *upload;
    int64_t upload_left; /* bytes of a ranged upload still to send; -1: to the end */
    char *download_path;
    FILE *download;
    ferry_http_data_fn on_data;
    ferry_http_headers_fn on_headers;
    int follow_redirects;
    ferry_http_done_fn done;
    void *arg;
    size_t max_body;
    ferry_buf body;
    ferry_buf header_block;
    int64_t received;
    int added;            /* handed to curl_multi_add_handle() */
    int cancel_requested; /* cancelled while inside curl; completes after */
    int abort_code;       /* why a callback of ours made curl fail */
    char abort_msg[256];
    char errbuf[CURL_ERROR_SIZE];
    ferry_http_request *prev, *next;
};

static uv_once_t ferry__http_once = UV_ONCE_INIT;
static int ferry__http_global_rc;

static void ferry__http_global_init(void)
{
    ferry__http_global_rc = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : FERRY_EIO;
}

/* ---- small buffers ---- */

/* Appends within a limit: a body or header block past `max` is refused. */
static int ferry__buf_keep(ferry_buf *b, const char *data, size_t len, size_t max)
{
    if (b->len + len > max)
        return FERRY_ETOOBIG;
    return ferry_buf_append(b, data, len);
}

/* ---- requests: list, completion ---- */

static void ferry__req_link(ferry_http_client *c, ferry_http_request *r)
{
    r->next = c->requests;
    if (c->requests)
        c->requests->prev = r;
    c->requests = r;
}

static void ferry__req_unlink(ferry_http_client *c, ferry_http_request *r)
{
    if (r->prev)
        r->prev->next = r->next;
    else
        c->requests = r->next;
    if (r->next)
        r->next->prev = r->prev;
    r->prev = r->next = NULL;
}

static void ferry__req_free(ferry_http_request *r)
{
    if (r->easy)
        curl_easy_cleanup(r->easy);
    curl_slist_free_all(r->headers);
    if (r->upload)
        fclose(r->upload);
    if (r->download)
        fclose(r->download);
    free(r->download_path);
    ferry_buf_free(&r->body);
    ferry_buf_free(&r->header_block);
    free(r);
}

/* Remember why one of our callbacks makes curl fail ("what: detail"). */
static void ferry__req_abort(ferry_http_request *r, int code, const char *what, const char *detail)
{
    if (r->abort_code != 0)
        return;
    r->abort_code = code;
    snprintf(r->abort_msg, sizeof(r->abort_msg), "%s%s%s", what, detail ? ": " : "",
             detail ? detail : "");
}

static int ferry__map_curl_code(CURLcode rc)
{
    switch (rc) {
    case CURLE_OK:
        return 0;
    case CURLE_OPERATION_TIMEDOUT:
        return FERRY_ETIMEDOUT;
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
    case CURLE_BAD_FUNCTION_ARGUMENT:
        return FERRY_EINVAL;
    case CURLE_FILE_COULDNT_READ_FILE:
        return FERRY_ENOENT;
    case CURLE_REMOTE_ACCESS_DENIED:
    case CURLE_LOGIN_DENIED:
        return FERRY_EPERM;
    case CURLE_OUT_OF_MEMORY:
        return FERRY_ENOMEM;
    case CURLE_WRITE_ERROR:
    case CURLE_READ_ERROR:
    case CURLE_ABORTED_BY_CALLBACK:
        return FERRY_EIO;
    default:
        return FERRY_ECONN;
    }
}

/* Close the download file; on success make sure it exists (an empty 2xx body
 * never reached on_write), on failure remove what was written. */
/* The HTTP status; file:// has none, and a read that got this far is a 200. */
static long ferry__status(ferry_http_request *r)
{
    long status = 0;
    curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
    if (status == 0) {
        char *scheme = NULL;
        curl_easy_getinfo(r->easy, CURLINFO_SCHEME, &scheme);
        if (scheme && strcasecmp(scheme, "FILE") == 0)
            status = 200;
    }
    return status;
}

static void ferry__req_settle_download(ferry_http_request *r, int *code, long status,
                                       const char **error)
{
    if (r->download_path == NULL)
        return;
    int ok = *code == 0 && status >= 200 && status < 300;
    if (r->download) {
        int failed = fclose(r->download) != 0;
        r->download = NULL;
        if (failed && ok) {
            *code = FERRY_EIO;
            *error = "could not write the download file";
            ok = 0;
        }
    } else if (ok) {
        FILE *f = fopen(r->download_path, "wb");
        if (f == NULL || fclose(f) != 0) {
            *code = FERRY_EIO;
            *error = "could not create the download file";
            ok = 0;
        }
    }
    if (!ok)
        unlink(r->download_path);
}

/* Take the request out of curl and the client, run `done`, free it. */
static void ferry__req_complete(ferry_http_request *r, CURLcode rc, int forced_code)
{
    ferry_http_client *c = r->client;
    if (r->added) {
        curl_multi_remove_handle(c->multi, r->easy);
        r->added = 0;
    }
    if (r->cancel_requested) {
        r->cancel_requested = 0;
        c->deferred--;
        if (!forced_code)
            forced_code = FERRY_ECANCELED; /* it finished while the cancel waited */
    }
    ferry__req_unlink(c, r);

    int code = forced_code ? forced_code : ferry__map_curl_code(rc);
    const char *error = "";
    if (forced_code) {
        error = forced_code == FERRY_ECANCELED ? "request canceled" : ferry_strerror(forced_code);
    } else if (rc != CURLE_OK) {
        if (r->abort_code != 0) {
            code = r->abort_code;
            error = r->abort_msg;
        } else {
            error = r->errbuf[0] ? r->errbuf : curl_easy_strerror(rc);
        }
    }
    long status = ferry__status(r);
    ferry__req_settle_download(r, &code, status, &error);

    ferry_http_response res;
    memset(&res, 0, sizeof(res));
    res.struct_size = sizeof(res);
    res.code = code;
    res.status = status;
    res.error = error;
    res.body = r->body.data ? r->body.data : "";
    res.body_len = r->body.len;
    res.headers = r->header_block.data ? r->header_block.data : "";
    res.bytes_received = r->received;
    r->done(r->arg, &res);
    ferry__req_free(r);
}

/* ---- curl callbacks ---- */

static int ferry__is_2xx(ferry_http_request *r)
{
    long status = ferry__status(r);
    return status >= 200 && status < 300;
}

static size_t ferry__on_write(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    ferry_http_request *r = userdata;
    size_t n = size * nmemb;
    if (r->cancel_requested) {
        ferry__req_abort(r, FERRY_ECANCELED, "request canceled", NULL);
        return 0;
    }
    r->received += (int64_t)n;
    if (ferry__is_2xx(r) && (r->on_data || r->download_path)) {
        if (r->on_data && r->on_data(r->arg, ptr, n) != 0) {
            ferry__req_abort(r, FERRY_ECANCELED, "aborted by the data callback", NULL);
            return 0;
        }
        if (r->download_path) {
            if (r->download == NULL && (r->download = fopen(r->download_path, "wb")) == NULL) {
                ferry__req_abort(r, FERRY_EIO, "could not create the download file",
                                 strerror(errno));
                return 0;
            }
            if (fwrite(ptr, 1, n, r->download) != n) {
                ferry__req_abort(r, FERRY_EIO, "could not write the download file",
                                 strerror(errno));
                return 0;
            }
        }
        return n;
    }
    int rc = ferry__buf_keep(&r->body, ptr, n, r->max_body);
    if (rc != 0) {
        ferry__req_abort(r, rc, "response body too large", NULL);
        return 0;
    }
    return n;
}

/* The blank line that ends a header block: tell on_headers, unless curl
 * goes on to another response (an interim 1xx, a redirect it follows). */
static int ferry__headers_done(ferry_http_request *r)
{
    long status = ferry__status(r);
    if (status >= 100 && status < 200)
        return 0;
    if (r->follow_redirects &&
        (status == 301 || status == 302 || status == 303 || status == 307 || status == 308)) {
        ferry_http_response block = {.struct_size = sizeof(block), .headers = r->header_block.data};
        char location[8];
        if (ferry_http_header(&block, "Location", location, sizeof(location)) != NULL)
            return 0; /* curl follows it: the final response is still to come */
    }
    if (r->on_headers(r->arg, status, r->header_block.data) != 0) {
        ferry__req_abort(r, FERRY_ECANCELED, "aborted by the headers callback", NULL);
        return -1;
    }
    return 0;
}

static size_t ferry__on_header(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    ferry_http_request *r = userdata;
    size_t n = size * nmemb;
    /* A new status line starts a new response (interim 100, redirects):
     * keep only the last one's headers and body. */
    if (n >= 5 && memcmp(ptr, "HTTP/", 5) == 0) {
        ferry_buf_reset(&r->header_block);
        ferry_buf_reset(&r->body);
        r->received = 0;
    }
    if (ferry__buf_keep(&r->header_block, ptr, n, (size_t)1 << 20) != 0) {
        ferry__req_abort(r, FERRY_ETOOBIG, "response headers too large", NULL);
        return 0;
    }
    if (r->on_headers && (n == 2 || n == 1) && (ptr[0] == '\r' || ptr[0] == '\n'))
        return ferry__headers_done(r) == 0 ? n : 0;
    return n;
}

static size_t ferry__on_read(char *buffer, size_t size, size_t nitems, void *userdata)
{
    ferry_http_request *r = userdata;
    if (r->cancel_requested) {
        ferry__req_abort(r, FERRY_ECANCELED, "request canceled", NULL);
        return CURL_READFUNC_ABORT;
    }
    size_t want = size * nitems;
    if (r->upload_left >= 0 && (int64_t)want > r->upload_left)
        want = (size_t)r->upload_left;
    size_t n = want > 0 ? fread(buffer, 1, want, r->upload) : 0;
    if (r->upload_left >= 0)
        r->upload_left -= (int64_t)n;
    if (n == 0 && ferror(r->upload)) {
        ferry__req_abort(r, FERRY_EIO, "could not read the upload file", NULL);
        return CURL_READFUNC_ABORT;
    }
    return n;
}

/* ---- driving curl from the loop ---- */

static void ferry__client_maybe_closed(ferry_http_client *c)
{
    if (c->closing && c->open_handles == 0) {
        void (*closed)(void *) = c->closed;
        void *arg = c->closed_arg;
        free(c);
        if (closed)
            closed(arg);
    }
}

static void ferry__handle_closed(uv_handle_t *h)
{
    ferry_http_client *c = h->data;
    if ((void *)h != (void *)&c->timer)
        free(h); /* a socket's poll: first member of ferry__http_socket */
    c->open_handles--;
    ferry__client_maybe_closed(c);
}

/* Work curl could not take from inside its own callbacks, then finished
 * transfers. Runs whenever we are back outside curl. */
static void ferry__process(ferry_http_client *c)
{
    if (c->in_curl > 0)
        return;
    if (c->close_pending) {
        ferry_http_client_close(c, c->closed, c->closed_arg);
        return;
    }
    /* `done` callbacks may start or cancel other requests: rescan the list
     * from its head after each one. */
restart:
    for (ferry_http_request *r = c->requests; r && c->deferred > 0; r = r->next) {
        if (r->cancel_requested) {
            ferry__req_complete(r, CURLE_OK, FERRY_ECANCELED);
            goto restart;
        }
        if (!r->added) {
            c->deferred--;
            r->added = 1;
            if (curl_multi_add_handle(c->multi, r->easy) != CURLM_OK) {
                r->added = 0;
                ferry__req_complete(r, CURLE_OK, FERRY_EIO);
                goto restart;
            }
        }
    }
    CURLMsg *m;
    int left;
    while (!c->closing && (m = curl_multi_info_read(c->multi, &left)) != NULL) {
        if (m->msg != CURLMSG_DONE)
            continue;
        char *priv = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &priv);
        ferry__req_complete((ferry_http_request *)priv, m->data.result, 0);
    }
}

static void ferry__drive(ferry_http_client *c, curl_socket_t fd, int flags)
{
    int running = 0;
    c->in_curl++;
    curl_multi_socket_action(c->multi, fd, flags, &running);
    c->in_curl--;
    ferry__process(c);
}

static void ferry__on_poll(uv_poll_t *h, int status, int events)
{
    ferry__http_socket *s = (ferry__http_socket *)h;
    int flags = 0;
    if (status < 0)
        flags = CURL_CSELECT_ERR;
    if (events & UV_READABLE)
        flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE)
        flags |= CURL_CSELECT_OUT;
    ferry__drive(s->client, s->fd, flags);
}

static void ferry__on_timer(uv_timer_t *t)
{
    ferry_http_client *c = t->data;
    ferry__drive(c, CURL_SOCKET_TIMEOUT, 0);
}

static void ferry__socket_forget(ferry_http_client *c, ferry__http_socket *s)
{
    if (s->prev)
        s->prev->next = s->next;
    else
        c->sockets = s->next;
    if (s->next)
        s->next->prev = s->prev;
    uv_poll_stop(&s->poll);
    uv_close((uv_handle_t *)&s->poll, ferry__handle_closed);
}

static int ferry__on_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    (void)easy;
    ferry_http_client *c = userp;
    ferry__http_socket *s = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (s) {
            curl_multi_assign(c->multi, fd, NULL);
            ferry__socket_forget(c, s);
        }
        return 0;
    }
    if (s == NULL) {
        s = calloc(1, sizeof(*s));
        if (s == NULL)
            return -1;
        if (uv_poll_init_socket(c->loop, &s->poll, fd) != 0) {
            free(s);
            return -1;
        }
        s->poll.data = c;
        s->fd = fd;
        s->client = c;
        s->next = c->sockets;
        if (c->sockets)
            c->sockets->prev = s;
        c->sockets = s;
        c->open_handles++;
        curl_multi_assign(c->multi, fd, s);
    }
    int events = 0;
    if (what & CURL_POLL_IN)
        events |= UV_READABLE;
    if (what & CURL_POLL_OUT)
        events |= UV_WRITABLE;
    return uv_poll_start(&s->poll, events, ferry__on_poll) == 0 ? 0 : -1;
}

static int ferry__on_timer_set(CURLM *multi, long timeout_ms, void *userp)
{
    (void)multi;
    ferry_http_client *c = userp;
    if (timeout_ms < 0)
        uv_timer_stop(&c->timer);
    else
        uv_timer_start(&c->timer, ferry__on_timer, (uint64_t)timeout_ms, 0);
    return 0;
}

/* ---- public API ---- */

int ferry_http_client_new(uv_loop_t *loop, ferry_http_client **out)
{
    *out = NULL;
    uv_once(&ferry__http_once, ferry__http_global_init);
    if (ferry__http_global_rc != 0)
        return ferry__http_global_rc;
    ferry_http_client *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return FERRY_ENOMEM;
    c->loop = loop;
    c->multi = curl_multi_init();
    if (c->multi == NULL) {
        free(c);
        return FERRY_ENOMEM;
    }
    uv_timer_init(loop, &c->timer);
    c->timer.data = c;
    c->open_handles = 1;
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, ferry__on_socket);
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, ferry__on_timer_set);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
    *out = c;
    return 0;
}

void ferry_http_client_close(ferry_http_client *c, void (*closed)(void *arg), void *arg)
{
    if (c == NULL || c->closing)
        return;
    c->closed = closed;
    c->closed_arg = arg;
    if (c->in_curl > 0) {
        c->close_pending = 1; /* curl_multi_cleanup() is refused inside curl */
        return;
    }
    c->close_pending = 0;
    c->closing = 1;
    while (c->requests)
        ferry__req_complete(c->requests, CURLE_OK, FERRY_ECANCELED);
    /* Cached connections still have polls: close them while their fds are
     * still open, and make sure curl's cleanup cannot reach them. */
    while (c->sockets) {
        curl_multi_assign(c->multi, c->sockets->fd, NULL);
        ferry__socket_forget(c, c->sockets);
    }
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, NULL);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, NULL);
    curl_multi_cleanup(c->multi);
    c->multi = NULL;
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->timer, ferry__handle_closed);
}

/* upload_offset/upload_length (appended to the options; older callers pass
 * a shorter struct): position the file and cap what is read. `size` is the
 * file's size in, the number of bytes to send out. */
static int ferry__setup_upload_range(ferry_http_request *r, const ferry_http_options *o,
                                     int64_t *size)
{
    r->upload_left = -1;
    if (!FERRY_HAS_FIELD(o, ferry_http_options, upload_length))
        return 0;
    if (o->upload_offset == 0 && o->upload_length == 0)
        return 0;
    if (o->upload_offset < 0 || o->upload_length < 0 || o->upload_offset > *size ||
        o->upload_length > *size - o->upload_offset)
        return FERRY_EINVAL;
    if (fseeko(r->upload, (off_t)o->upload_offset, SEEK_SET) != 0)
        return FERRY_EIO;
    r->upload_left = o->upload_length;
    *size = o->upload_length;
    return 0;
}

/* upload_same_file (appended): the path is reopened without following a
 * symlink and must lead to the very file the caller examined; between its
 * look and this open, whoever can write the folder could have swapped it. */
static int ferry__open_same_file(const ferry_http_options *o, FILE **out)
{
    int fd = open(o->upload_path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0)
        return errno == ELOOP ? FERRY_EUNSAFE : errno == ENOENT ? FERRY_ENOENT : FERRY_EIO;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        close(fd);
        return FERRY_EIO;
    }
    if (!S_ISREG(st.st_mode) || (uint64_t)st.st_dev != o->upload_dev ||
        (uint64_t)st.st_ino != o->upload_ino) {
        close(fd);
        return FERRY_EUNSAFE;
    }
    /* Reads block again (O_NONBLOCK only kept a fifo from hanging the open). */
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) != 0 || (*out = fdopen(fd, "rb")) == NULL) {
        close(fd);
        return FERRY_EIO;
    }
    return 0;
}

static int ferry__setup_body(ferry_http_request *r, const ferry_http_options *o, const char *method)
{
    CURL *e = r->easy;
    if (o->body && o->upload_path)
        return FERRY_EINVAL;
    if (o->upload_path) {
        if (FERRY_HAS_FIELD(o, ferry_http_options, upload_ino) && o->upload_same_file) {
            int rc = ferry__open_same_file(o, &r->upload);
            if (rc != 0)
                return rc;
        } else if ((r->upload = fopen(o->upload_path, "rb")) == NULL) {
            return errno == ENOENT ? FERRY_ENOENT : FERRY_EIO;
        }
        struct stat st;
        if (fstat(fileno(r->upload), &st) != 0 || !S_ISREG(st.st_mode))
            return FERRY_EIO;
        int64_t size = (int64_t)st.st_size;
        int rc = ferry__setup_upload_range(r, o, &size);
        if (rc != 0)
            return rc;
        curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(e, CURLOPT_READFUNCTION, ferry__on_read);
        curl_easy_setopt(e, CURLOPT_READDATA, r);
        curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE, (curl_off_t)size);
        if (strcmp(method, "PUT") != 0)
            curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
        return 0;
    }
    if (o->body || strcmp(method, "POST") == 0) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)o->body_len);
        int borrowed =
            FERRY_HAS_FIELD(o, ferry_http_options, body_borrowed) && o->body_borrowed && o->body;
        curl_easy_setopt(e, borrowed ? CURLOPT_POSTFIELDS : CURLOPT_COPYPOSTFIELDS,
                         o->body ? (const char *)o->body : "");
        if (strcmp(method, "POST") != 0)
            curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
        return 0;
    }
    if (strcmp(method, "HEAD") == 0)
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    else if (strcmp(method, "GET") != 0)
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
    return 0;
}

static int ferry__setup_headers(ferry_http_request *r, const ferry_http_options *o)
{
    struct curl_slist *l = NULL, *n;
    for (const char *const *h = o->headers; h && *h; h++) {
        if ((n = curl_slist_append(l, *h)) == NULL)
            goto oom;
        l = n;
    }
    /* No "Expect: 100-continue" round trip before a body: the servers we talk
     * to answer at once, and some (presigned S3 PUTs) do not need it. */
    if (o->body || o->upload_path) {
        if ((n = curl_slist_append(l, "Expect:")) == NULL)
            goto oom;
        l = n;
    }
    r->headers = l;
    curl_easy_setopt(r->easy, CURLOPT_HTTPHEADER, l);
    return 0;
oom:
    curl_slist_free_all(l);
    return FERRY_ENOMEM;
}

/* The commands an agent runs must not inherit its connections: a command
 * holding one open would keep a dead agent's long poll alive for ferryd. */
static int ferry__sockopt(void *arg, curl_socket_t fd, curlsocktype purpose)
{
    (void)arg;
    (void)purpose;
    int flags = fcntl(fd, F_GETFD);
    if (flags >= 0)
        fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
    return CURL_SOCKOPT_OK;
}

static int ferry__setup(ferry_http_request *r, const ferry_http_options *o)
{
    CURL *e = r->easy;
    const char *method = o->method ? o->method : "GET";
    if (curl_easy_setopt(e, CURLOPT_URL, o->url) != CURLE_OK)
        return FERRY_EINVAL;
    curl_easy_setopt(e, CURLOPT_PRIVATE, r);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_SOCKOPTFUNCTION, ferry__sockopt);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "ferry");
    /* HTTP/1.1 even where a server offers h2: this curl's HTTP/2 uploads go
     * out in 8 KiB pieces under flow control, and a 4 MB log batch took half
     * as much CPU again on both ends (tests/bench/logs.py). The bodies ferry
     * sends are large and its requests few, so h2's multiplexing buys
     * nothing here. */
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, ferry__on_write);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, ferry__on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
    if (curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, o->protocols ? o->protocols : "http,https") !=
        CURLE_OK)
        return FERRY_EINVAL;
    curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    if (o->follow_redirects) {
        curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 1L);
        curl_easy_setopt(e, CURLOPT_MAXREDIRS, 10L);
    }
    if (o->timeout_ms > 0)
        curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, o->timeout_ms);
    if (o->connect_timeout_ms > 0)
        curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, o->connect_timeout_ms);
    if (o->stall_timeout_ms > 0) {
        curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1L);
        curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, (o->stall_timeout_ms + 999) / 1000);
    }
    if (o->unix_socket)
        curl_easy_setopt(e, CURLOPT_UNIX_SOCKET_PATH, o->unix_socket);
    if (o->ca_file)
        curl_easy_setopt(e, CURLOPT_CAINFO, o->ca_file);
    int rc = ferry__setup_headers(r, o);
    return rc != 0 ? rc : ferry__setup_body(r, o, method);
}

int ferry_http_request_start(ferry_http_client *c, const ferry_http_options *o,
                             ferry_http_request **out)
{
    if (out)
        *out = NULL;
    /* The first layout ends at `arg`; what follows was appended. */
    if (c == NULL || c->closing || c->close_pending || o == NULL || o->url == NULL ||
        o->done == NULL || !FERRY_HAS_FIELD(o, ferry_http_options, arg))
        return FERRY_EINVAL;
    ferry_http_request *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return FERRY_ENOMEM;
    r->client = c;
    r->on_data = o->on_data;
    /* on_headers was appended: callers built before it pass a shorter struct. */
    if (FERRY_HAS_FIELD(o, ferry_http_options, on_headers))
        r->on_headers = o->on_headers;
    r->follow_redirects = o->follow_redirects;
    r->done = o->done;
    r->arg = o->arg;
    r->max_body = o->max_body ? o->max_body : FERRY__HTTP_DEFAULT_MAX_BODY;
    r->easy = curl_easy_init();
    int rc = r->easy ? 0 : FERRY_ENOMEM;
    if (rc == 0 && o->download_path && (r->download_path = strdup(o->download_path)) == NULL)
        rc = FERRY_ENOMEM;
    if (rc == 0)
        rc = ferry__setup(r, o);
    if (rc != 0) {
        ferry__req_free(r);
        return rc;
    }
    ferry__req_link(c, r);
    if (c->in_curl > 0) {
        c->deferred++; /* added by ferry__process() once curl returns */
    } else {
        r->added = 1;
        if (curl_multi_add_handle(c->multi, r->easy) != CURLM_OK) {
            ferry__req_unlink(c, r);
            ferry__req_free(r);
            return FERRY_EIO;
        }
    }
    if (out)
        *out = r;
    return 0;
}

void ferry_http_request_cancel(ferry_http_request *r)
{
    if (r == NULL || r->cancel_requested)
        return;
    ferry_http_client *c = r->client;
    if (c->in_curl > 0) {
        if (!r->added)
            c->deferred--; /* it was waiting to be added: now waits to complete */
        r->cancel_requested = 1;
        c->deferred++;
        return;
    }
    ferry__req_complete(r, CURLE_OK, FERRY_ECANCELED);
}

char *ferry_http_redact_url(const char *url, char *buf, size_t cap)
{
    if (cap == 0)
        return buf;
    if (url == NULL)
        url = "";
    size_t out = 0;
    const char *p = url;
    const char *scheme_end = strstr(url, "://");
    if (scheme_end && (size_t)(scheme_end - url) < strcspn(url, "/?#")) {
        /* scheme://[userinfo@]authority: drop the userinfo */
        p = scheme_end + 3;
        size_t auth_len = strcspn(p, "/?#");
        const char *at = NULL;
        for (const char *q = p; q < p + auth_len; q++)
            if (*q == '@')
                at = q;
        size_t n = (size_t)(p - url);
        for (size_t i = 0; i < n && out + 1 < cap; i++)
            buf[out++] = url[i];
        if (at)
            p = at + 1;
    }
    size_t rest = strcspn(p, "?#");
    for (size_t i = 0; i < rest && out + 1 < cap; i++)
        buf[out++] = p[i];
    buf[out] = '\0';
    return buf;
}

const char *ferry_http_header(const ferry_http_response *res, const char *name, char *buf,
                              size_t cap)
{
    if (res == NULL || res->headers == NULL || cap == 0)
        return NULL;
    size_t name_len = strlen(name);
    const char *line = res->headers;
    while (*line) {
        const char *eol = strchr(line, '\n');
        size_t len = eol ? (size_t)(eol - line) : strlen(line);
        if (len > name_len && line[name_len] == ':' && strncasecmp(line, name, name_len) == 0) {
            const char *v = line + name_len + 1, *end = line + len;
            while (v < end && (*v == ' ' || *v == '\t'))
                v++;
            while (end > v && (end[-1] == '\r' || end[-1] == ' ' || end[-1] == '\t'))
                end--;
            size_t n = (size_t)(end - v) < cap - 1 ? (size_t)(end - v) : cap - 1;
            memcpy(buf, v, n);
            buf[n] = '\0';
            return buf;
        }
        if (eol == NULL)
            break;
        line = eol + 1;
    }
    return NULL;
}
