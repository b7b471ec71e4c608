/* ferry plugin SDK: a small asynchronous HTTP client on a libuv loop.
 *
 * libcurl's multi interface driven by the loop (socket and timer callbacks
 * mapped to uv_poll_t and uv_timer_t), so a plugin or the agent can run many
 * transfers at once without blocking the loop. Everything runs on the loop
 * thread: create the client, start and cancel requests, and receive their
 * callbacks there.
 *
 * URLs may carry secrets in their query string (presigned URLs): the client
 * never logs, and its error texts never contain a URL. Use
 * ferry_http_redact_url() before putting a URL into a log or a message.
 */
#ifndef FERRY_HTTP_H
#define FERRY_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ferry_http_client ferry_http_client;
typedef struct ferry_http_request ferry_http_request;

/* What a finished request hands back; valid only during the `done` call. */
typedef struct ferry_http_response {
    size_t struct_size;
    /* 0 when the exchange completed (whatever the HTTP status), else a ferry
     * code: FERRY_ECONN (resolve/connect/TLS/transfer failures),
     * FERRY_ETIMEDOUT, FERRY_ECANCELED, FERRY_EIO (local file),
     * FERRY_ETOOBIG (memory body over max_body), FERRY_EINVAL. */
    int code;
    /* HTTP status of the last response (after redirects), 0 when none. */
    long status;
    /* Why `code` is not 0 (curl's text or the local error), "" otherwise.
     * Never contains the URL. */
    const char *error;
    /* The response body when it went to memory, NUL-terminated; "" when
     * empty. A 2xx body sent to download_path or consumed by on_data is not
     * kept; other statuses always keep their body here (error text). */
    const char *body;
    size_t body_len;
    /* Raw header block of the last response ("Name: value\r\n" lines). */
    const char *headers;
    int64_t bytes_received; /* body bytes of the last response */
} ferry_http_response;

/* `done` runs exactly once per started request, on the loop thread, never
 * from inside ferry_http_request_start(). The request handle is freed when
 * it returns. */
typedef void (*ferry_http_done_fn)(void *arg, const ferry_http_response *res);
/* Body bytes of a 2xx response as they arrive. Return 0 to go on, non-zero
 * to abort the request (it then completes with FERRY_ECANCELED). */
typedef int (*ferry_http_data_fn)(void *arg, const char *data, size_t len);
/* The final response's status and raw header block, once they are in and
 * before any of its body: after redirects that are followed and interim 1xx
 * answers. Return 0 to go on, non-zero to abort (FERRY_ECANCELED). */
typedef int (*ferry_http_headers_fn)(void *arg, long status, const char *headers);

typedef struct ferry_http_options {
    size_t struct_size;         /* sizeof(ferry_http_options) */
    const char *method;         /* default "GET" ("HEAD" asks for no body) */
    const char *url;            /* required */
    const char *const *headers; /* NULL-terminated "Name: value" list, or NULL */
    /* Request body from memory (copied unless body_borrowed), or from a file
     * streamed as it is sent; at most one of them. */
    const void *body;
    size_t body_len;
    const char *upload_path;
    /* Response body of a 2xx answer to this file (created or truncated). The
     * file exists after `done` only when code == 0 and the status is 2xx; a
     * failed transfer removes it. */
    const char *download_path;
    ferry_http_data_fn on_data; /* optional, see above */
    size_t max_body;            /* cap on a body kept in memory; 0 = 64 MiB */
    long timeout_ms;            /* whole request; 0 = none */
    long connect_timeout_ms;    /* 0 = curl's default (300 s) */
    /* Fail when fewer than 1 byte/s moved during this long (a stalled
     * transfer), without capping the length of a healthy one; 0 = off. */
    long stall_timeout_ms;
    int follow_redirects;    /* follow up to 10 redirects (http/https only) */
    const char *protocols;   /* allowed URL schemes, curl syntax; default "http,https" */
    const char *unix_socket; /* connect through this unix socket (Docker) */
    const char *ca_file;     /* CA bundle to verify the server with */
    ferry_http_done_fn done; /* required */
    void *arg;
    /* Optional, appended: see ferry_http_headers_fn. For servers that answer
     * at once and then hold the connection open for a long body (Docker's
     * attach): the caller learns that the server is listening. */
    ferry_http_headers_fn on_headers;
    /* Optional, appended: send only `upload_length` bytes of upload_path
     * from `upload_offset` (one part of a multipart upload) instead of the
     * whole file. Both 0: the whole file. A range past the end of the file
     * is FERRY_EINVAL. */
    int64_t upload_offset;
    int64_t upload_length;
    /* Optional, appended: `body` is sent from where it is, not copied; the
     * caller keeps it unchanged until `done` runs, or until it cancelled the
     * request and the loop turned (bodies of MBs, sent often: log batches). */
    int body_borrowed;
    /* Optional, appended: upload_path must still be the file the caller
     * examined, its fstat() st_dev and st_ino given here. It is opened
     * without following a symlink, and another file found there (swapped in
     * since, or reached through a folder swapped for a symlink) is
     * FERRY_EUNSAFE: nothing is sent. For files a process the caller does
     * not trust can replace (an execution's outputs). */
    int upload_same_file;
    uint64_t upload_dev;
    uint64_t upload_ino;
} ferry_http_options;

/* A client on `loop`. One per loop is plenty; it reuses connections. */
int ferry_http_client_new(uv_loop_t *loop, ferry_http_client **out);
/* Cancel every request (their `done` runs with FERRY_ECANCELED before this
 * returns), then release the loop handles; `closed` (may be NULL) runs once
 * they are gone and the client is freed. */
void ferry_http_client_close(ferry_http_client *client, void (*closed)(void *arg), void *arg);

/* Start a request. On 0, `done` will run later and *out (may be NULL) is the
 * handle until then. On a negative code nothing was started. */
int ferry_http_request_start(ferry_http_client *client, const ferry_http_options *opts,
                             ferry_http_request **out);
/* Abort a request that has not completed: its `done` runs with
 * FERRY_ECANCELED, before this returns unless it is called from inside one of
 * the client's callbacks (on_data), in which case it runs shortly after. */
void ferry_http_request_cancel(ferry_http_request *req);

/* `url` without userinfo, query string and fragment, for logs and messages:
 * "https://bucket.s3.amazonaws.com/key". Always NUL-terminates `buf`. */
char *ferry_http_redact_url(const char *url, char *buf, size_t cap);

/* Value of header `name` (case-insensitive) in a response's header block,
 * copied into buf without surrounding spaces; NULL when absent. */
const char *ferry_http_header(const ferry_http_response *res, const char *name, char *buf,
                              size_t cap);

#ifdef __cplusplus
}
#endif
#endif
