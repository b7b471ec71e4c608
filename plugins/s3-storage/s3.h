/* s3-storage: what the plugin's files share.
 *
 *   s3_config.c     settings, credentials (aws-cli's order), URLs, s3:// inputs
 *   s3_request.c    one signed S3 call with retries and jittered backoff
 *   s3_xml.c        S3's XML: error bodies, upload ids, listings
 *   s3_multipart.c  multipart uploads: parts in parallel, abort on failure
 *   s3_get.c        downloads: ranged, parallel, resumed after a drop
 *   s3_storage.c    the store ops, init (bucket check) and fini
 *
 * Everything runs on the host's loop thread except what goes through
 * queue_work (hashing file parts, renaming downloads).
 */
#ifndef FERRY_S3_H
#define FERRY_S3_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "ferry/awscreds.h"
#include "ferry/ferry.h"
#include "ferry/http.h"
#include "ferry/sigv4.h"

#define S3_MIB ((int64_t)1 << 20)
#define S3_MIN_PART_SIZE (5 * S3_MIB)         /* S3 refuses smaller parts but the last */
#define S3_MAX_PART_SIZE (5 * 1024 * S3_MIB)  /* and larger ones */
#define S3_MAX_PARTS 10000                    /* per upload */
#define S3_MAX_SINGLE_PUT (5 * 1024 * S3_MIB) /* one PUT */

/* ------------------------------------------------------------------------ */
/* Configuration and credentials (s3_config.c)                              */

typedef struct s3_config {
    char *bucket;
    char *prefix; /* "" or ends with '/' as written by the operator */
    char *region;
    char *scheme; /* "https" or "http" */
    char *host;   /* endpoint host[:port] */
    int path_style;
    int64_t multipart_threshold;
    int64_t part_size;
    int parallel_parts;
    int max_attempts;
    long stall_timeout_ms;
    long connect_timeout_ms;
    int list_page_size;
} s3_config;

/* The SDK's chain (ferry/awscreds.h), shared with the aws compute plugin. */
typedef ferry_aws_credentials s3_credentials;

/* Reads and checks the settings; ECONFIG with a message on a bad one. */
int s3_config_load(s3_config *cfg, ferry_plugin_ctx *ctx, const ferry_host_api *host,
                   ferry_error_detail *err);
void s3_config_free(s3_config *cfg);
/* Config, then AWS_ACCESS_KEY_ID/..., then the shared credentials file. */
int s3_credentials_load(s3_credentials *creds, ferry_plugin_ctx *ctx, const ferry_host_api *host,
                        ferry_error_detail *err);
void s3_credentials_free(s3_credentials *creds);
/* A size setting: "8388608", "8MiB", "8M", "16 MB" (binary units). -1 if bad. */
int64_t s3_parse_size(const char *s);

/* Where a request goes: the Host header, the encoded path and the URL
 * without query. `key` is the object's full key (prefix included), NULL
 * for the bucket itself. */
typedef struct s3_target {
    char *host;
    char *path;
    char *url;
} s3_target;
int s3_target_make(const s3_config *cfg, const char *key, s3_target *t);
void s3_target_free(s3_target *t);

/* Keys the host hands the plugin: relative, no "." or ".." or empty
 * segment, no backslash (defence in depth; the host checks first). */
int s3_key_is_safe(const char *key);
/* The store op url_input for s3://BUCKET/KEY: the bucket's instance gets
 * the store's settings with that bucket and no prefix. */
int s3_url_input(const char *url, ferry_store_url *in, ferry_error_detail *err);

/* ------------------------------------------------------------------------ */
/* XML (s3_xml.c)                                                           */

void s3_xml_init(void);
/* An <Error> document: its Code, Message and RequestId (each "" when
 * absent). 1 when the body is one, else 0. */
int s3_xml_error(const char *body, size_t len, char *code, size_t code_cap, char *message,
                 size_t message_cap, char *request_id, size_t request_id_cap);
/* The text of the first element named `name` anywhere in the document,
 * malloc'd; NULL when absent or unparsable. */
char *s3_xml_text(const char *body, size_t len, const char *name);

typedef struct s3_list_page {
    char **keys;
    int64_t *sizes;
    size_t n;
    int truncated;
    char *next_token; /* NULL when none */
} s3_list_page;
/* A ListObjectsV2 answer (keys decoded when EncodingType is url). */
int s3_xml_list(const char *body, size_t len, s3_list_page *page);
void s3_list_page_free(s3_list_page *page);

/* ------------------------------------------------------------------------ */
/* Calls (s3_request.c)                                                     */

typedef struct s3_engine {
    uv_loop_t *loop;
    ferry_http_client *http;
    const s3_config *cfg;
    const s3_credentials *creds;
    ferry_plugin_ctx *ctx; /* for debug logs */
    const ferry_host_api *host;
    struct s3_call *calls; /* in flight or waiting to retry */
    int64_t clock_skew_s;  /* server time minus ours, learned from RequestTimeTooSkewed */
    uint64_t rng;
    int closing;
    void *data; /* the owner's */
} s3_engine;

typedef struct s3_call s3_call;
/* The call's outcome is in call->status, ->err, ->http_status, ->body,
 * ->headers. The engine frees the call when this returns. */
typedef void (*s3_call_done_fn)(s3_call *call);
/* Before each attempt (retries too): set what depends on progress so far,
 * such as a Range header. Non-zero fails the call with that code. */
typedef int (*s3_call_prepare_fn)(s3_call *call);

#define S3_CALL_MAX_HEADERS 6

struct s3_call {
    s3_engine *eng;
    /* The request. */
    const char *method;
    char *key;                              /* full key, NULL for the bucket */
    char *query;                            /* encoded, NULL for none */
    char *headers[S3_CALL_MAX_HEADERS + 1]; /* signed extra headers, owned */
    char *body;                             /* owned, memory body */
    size_t body_len;
    char *upload_path; /* or a file range */
    int64_t upload_offset, upload_length;
    char payload_hash[65];      /* "" = hash the memory body / empty */
    int error_in_200;           /* a 200 may carry an <Error> (CompleteMultipartUpload) */
    int max_attempts;           /* 0: the configuration's */
    long timeout_ms;            /* whole attempt; 0: none (the stall timeout still applies) */
    ferry_http_data_fn on_data; /* body of a 2xx as it comes; its arg is the call */
    s3_call_prepare_fn prepare;
    s3_call_done_fn done;
    void *arg;
    /* Progress. */
    int attempt;
    ferry_http_request *req;
    uv_timer_t *timer;
    int canceled;
    /* Outcome, for done. */
    int status;
    long http_status;
    char *resp_body;
    size_t resp_len;
    char *resp_headers;
    ferry_error_detail err;
    struct s3_call *prev, *next;
};

void s3_engine_init(s3_engine *eng, uv_loop_t *loop, ferry_http_client *http, const s3_config *cfg,
                    const s3_credentials *creds, ferry_plugin_ctx *ctx, const ferry_host_api *host);
/* Cancels every call (their done runs with FERRY_ECANCELED). */
void s3_engine_cancel_all(s3_engine *eng);

/* A call to fill in; NULL when out of memory. */
s3_call *s3_call_new(s3_engine *eng, const char *method, const char *key, s3_call_done_fn done,
                     void *arg);
/* Adds "Name: value" (copied) to the signed headers. */
int s3_call_header(s3_call *call, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Frees a call that was never started. */
void s3_call_discard(s3_call *call);
/* Starts it; on a negative return the call is freed and done never runs. */
int s3_call_start(s3_call *call);
/* Done runs with FERRY_ECANCELED: maybe before this returns (a request in
 * flight), or on a later loop turn (a call waiting to retry). */
void s3_call_cancel(s3_call *call);
/* Replace the header that starts with `name:` (for prepare). */
int s3_call_set_header(s3_call *call, const char *name, const char *value);

/* Runs one call to completion on a private loop, blocking (init and fini
 * only). `setup` fills the call; the outcome is copied into `err` and, when
 * wanted, the body into *body. */
int s3_call_blocking(const s3_config *cfg, const s3_credentials *creds, ferry_plugin_ctx *ctx,
                     const ferry_host_api *host, const char *method, const char *key,
                     const char *query, int max_attempts, ferry_error_detail *err,
                     long *http_status);

/* A presigned URL for `method` on the full `key` (query: extra encoded
 * parameters to sign, such as "partNumber=1&uploadId=..."), dated by the
 * engine's clock, corrected as S3 told it. */
int s3_presign_url(const s3_engine *eng, const char *method, const char *key, const char *query,
                   int expires_s, char *url, size_t cap, ferry_error_detail *err);

/* ------------------------------------------------------------------------ */
/* The plugin instance (s3_storage.c)                                       */

typedef struct s3_upload s3_upload;

typedef struct s3_state {
    ferry_plugin_ctx *ctx;
    const ferry_host_api *host;
    s3_config cfg;
    s3_credentials creds;
    s3_engine eng;
    ferry_http_client *http;
    int https;          /* payloads go UNSIGNED over TLS, hashed over plain HTTP */
    s3_upload *uploads; /* multipart uploads in flight, aborted at fini */
    int closing;
} s3_state;

/* The full key of a store key: prefix + key, malloc'd. */
char *s3_full_key(const s3_state *st, const char *key);
/* Completes `op` with status (and the detail when negative). */
void s3_op_finish(s3_state *st, ferry_op *op, int status, int64_t size, const char *text,
                  const ferry_error_detail *err);

/* s3_multipart.c */
int s3_multipart_put(s3_state *st, const char *full_key, const char *path, int64_t size,
                     ferry_op *op);
/* At fini: cancel every call, then abort (blocking, bounded) each upload
 * still open, so that no part outlives the instance. */
void s3_multipart_close(s3_state *st);
/* Store ops for uploads driven by a worker through presigned part URLs. */
int s3_upload_begin(s3_state *st, const char *full_key, ferry_op *op);
int s3_upload_complete(s3_state *st, const char *full_key, const char *upload_id,
                       const char *parts_json, ferry_op *op);
int s3_upload_abort(s3_state *st, const char *full_key, const char *upload_id, ferry_op *op);
/* The CompleteMultipartUpload body for parts 1..n with their ETags. */
char *s3_complete_body(char *const *etags, int n);

/* s3_get.c */
int s3_get_file(s3_state *st, const char *full_key, const char *path, ferry_op *op);

#endif
