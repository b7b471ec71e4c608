/* ferry plugin SDK: one HTTP call to a cloud API, retried with backoff.
 *
 * Cloud APIs answer "later" in many ways (throttling, 5xx, dropped
 * connections, a request that timed out). Every compute plugin needs the
 * same loop around its calls: send, judge the answer, wait a jittered,
 * growing delay, send again (signed afresh: a signature or token carries the
 * time), give up after a number of attempts. The plugin says how a request
 * is sent and how an answer is judged; this runs the loop on the host's
 * libuv loop with ferry/http.h. Everything runs on the loop thread.
 */
#ifndef FERRY_RETRY_H
#define FERRY_RETRY_H

#include <stddef.h>
#include <stdint.h>

#include "ferry/error.h"
#include "ferry/http.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ferry_retry_call ferry_retry_call;

typedef struct ferry_retry_spec {
    size_t struct_size; /* sizeof(ferry_retry_spec) */
    ferry_http_client *http;
    uv_loop_t *loop;
    int max_attempts; /* 1 or more; 0: 5 */
    /* Full-jitter backoff before attempt n+1: uniform in
     * [0, min(cap_ms, base * 2^(n-1))], base = throttle_base_ms after a
     * FERRY_ETHROTTLED answer, else base_ms. 0: 200 ms, 1000 ms, 20 s. */
    long base_ms;
    long throttle_base_ms;
    long cap_ms;
    /* Each attempt's limits, as in ferry_http_options. A call always has
     * one: 0 here means 30 s (connect: 10 s). */
    long timeout_ms;
    long connect_timeout_ms;
    /* Start one attempt: copy `tmpl` (done, arg and the timeouts are set),
     * fill method, url, headers and body, and start it with
     * ferry_http_request_start(http, &copy, req). 0, or a negative code
     * that ends the call with that error. */
    int (*send)(void *arg, int attempt, const ferry_http_options *tmpl, ferry_http_request **req);
    /* Judge an answer (res->code == 0) or a failed exchange (res->code < 0):
     * 0 for success, else a negative code with `err` filled; err->retryable
     * asks for another attempt. NULL: 2xx succeeds, 429, 5xx, ECONN and
     * ETIMEDOUT retry. */
    int (*classify)(void *arg, const ferry_http_response *res, ferry_error_detail *err);
    /* Exactly once: status 0 and the successful answer, or the last error
     * (`res` is the last answer, NULL when there was none, as after a
     * cancel). Never from inside ferry_retry_start(). The call is freed
     * when this returns. */
    void (*done)(void *arg, int status, const ferry_http_response *res,
                 const ferry_error_detail *err);
    void *arg;
    /* Optional: told before each wait (for a debug log). */
    void (*on_retry)(void *arg, int attempt, uint64_t delay_ms, const ferry_error_detail *err);
} ferry_retry_spec;

/* Start a call; the spec is copied. On 0 `done` will run and *out (may be
 * NULL) is its handle until then. On a negative code nothing started. */
int ferry_retry_start(const ferry_retry_spec *spec, ferry_retry_call **out);
/* End a call that has not completed: `done` runs with FERRY_ECANCELED
 * before this returns (or shortly after, from inside an HTTP callback). */
void ferry_retry_cancel(ferry_retry_call *call);

/* The full-jitter delay before attempt `attempt` + 1 (attempt >= 1).
 * `rng` is the caller's xorshift state (non-zero). */
uint64_t ferry_retry_backoff_ms(int attempt, long base_ms, long cap_ms, uint64_t *rng);

/* The default judgement (see `classify`), for a classify that only adds
 * to it. */
int ferry_retry_classify_http(const ferry_http_response *res, ferry_error_detail *err);

/* Calls run to their end on a loop of their own: a plugin's fini runs when
 * the host's loop no longer turns, and what it must still tell its provider
 * (terminate what it launched) goes out on this one. Open, start calls on
 * `loop` with `http`, ending each with ferry_retry_blocking_done, wait,
 * close. */
typedef struct ferry_retry_blocking {
    uv_loop_t loop;
    ferry_http_client *http;
    int done, status; /* of the call that ended last */
    ferry_error_detail err;
    int open;
} ferry_retry_blocking;

/* The loop and an HTTP client on it: 0, FERRY_EIO (no loop) or the
 * client's error. Closing is needed only after 0. */
int ferry_retry_blocking_open(ferry_retry_blocking *b);
/* A call's end, in the shape of a plugin's done callback; `arg` is the
 * ferry_retry_blocking. */
void ferry_retry_blocking_done(void *arg, int status, const char *body, size_t len,
                               const ferry_error_detail *err);
/* Turns the loop until a call ended (and clears `done` for the next);
 * that call's status. */
int ferry_retry_blocking_wait(ferry_retry_blocking *b);
/* Closes the client and the loop, with everything still on it. */
void ferry_retry_blocking_close(ferry_retry_blocking *b);

#ifdef __cplusplus
}
#endif
#endif
