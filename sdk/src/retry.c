/* One HTTP call retried with full-jitter backoff (see ferry/retry.h). */
#include "ferry/retry.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RETRY__DEFAULT_ATTEMPTS 5
#define RETRY__DEFAULT_BASE_MS 200
#define RETRY__DEFAULT_THROTTLE_MS 1000
#define RETRY__DEFAULT_CAP_MS 20000
#define RETRY__DEFAULT_TIMEOUT_MS 30000
#define RETRY__DEFAULT_CONNECT_MS 10000

struct ferry_retry_call {
    ferry_retry_spec spec;
    int attempt;
    ferry_http_request *req;
    uv_timer_t *timer;
    uint64_t rng;
    int canceled;
    ferry_error_detail err;
};

uint64_t ferry_retry_backoff_ms(int attempt, long base_ms, long cap_ms, uint64_t *rng)
{
    int shift = attempt - 1 < 0 ? 0 : attempt - 1 > 30 ? 30 : attempt - 1;
    uint64_t ceiling = (uint64_t)(base_ms > 0 ? base_ms : 1) << shift;
    if (cap_ms > 0 && ceiling > (uint64_t)cap_ms)
        ceiling = (uint64_t)cap_ms;
    /* xorshift64*: jitter needs spread, not secrecy. */
    uint64_t x = *rng ? *rng : 88172645463325252ull;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *rng = x;
    return (x * 2685821657736338717ull) % (ceiling + 1);
}

int ferry_retry_classify_http(const ferry_http_response *res, ferry_error_detail *err)
{
    if (res->code < 0) {
        int retry = res->code == FERRY_ECONN || res->code == FERRY_ETIMEDOUT;
        return ferry_error_set(err, res->code, retry, NULL, "%s: %s", ferry_strerror(res->code),
                               res->error ? res->error : "");
    }
    if (res->status >= 200 && res->status < 300)
        return 0;
    int throttled = res->status == 429;
    int retry = throttled || res->status >= 500;
    return ferry_error_set(err, throttled ? FERRY_ETHROTTLED : FERRY_EPROVIDER, retry, NULL,
                           "HTTP %ld", res->status);
}

static void retry__timer_closed(uv_handle_t *h)
{
    free(h);
}

static void retry__drop_timer(ferry_retry_call *c)
{
    if (c->timer == NULL)
        return;
    uv_timer_stop(c->timer);
    uv_close((uv_handle_t *)c->timer, retry__timer_closed);
    c->timer = NULL;
}

static void retry__finish(ferry_retry_call *c, int status, const ferry_http_response *res)
{
    retry__drop_timer(c);
    if (status < 0 && c->err.code == 0)
        ferry_error_set(&c->err, status, 0, NULL, "%s", ferry_strerror(status));
    c->spec.done(c->spec.arg, status, res, status < 0 ? &c->err : NULL);
    free(c);
}

static void retry__http_done(void *arg, const ferry_http_response *res);

static int retry__send(ferry_retry_call *c)
{
    c->attempt++;
    ferry_http_options tmpl = {
        .struct_size = sizeof(tmpl),
        .timeout_ms = c->spec.timeout_ms,
        .connect_timeout_ms = c->spec.connect_timeout_ms,
        .done = retry__http_done,
        .arg = c,
    };
    return c->spec.send(c->spec.arg, c->attempt, &tmpl, &c->req);
}

static void retry__on_timer(uv_timer_t *t)
{
    ferry_retry_call *c = t->data;
    retry__drop_timer(c);
    int rc = retry__send(c);
    if (rc < 0) {
        memset(&c->err, 0, sizeof(c->err));
        retry__finish(c, rc, NULL);
    }
}

static int retry__wait(ferry_retry_call *c)
{
    long base = c->err.code == FERRY_ETHROTTLED ? c->spec.throttle_base_ms : c->spec.base_ms;
    uint64_t ms = ferry_retry_backoff_ms(c->attempt, base, c->spec.cap_ms, &c->rng);
    c->timer = malloc(sizeof(*c->timer));
    if (c->timer == NULL)
        return FERRY_ENOMEM;
    uv_timer_init(c->spec.loop, c->timer);
    c->timer->data = c;
    uv_timer_start(c->timer, retry__on_timer, ms, 0);
    if (c->spec.on_retry)
        c->spec.on_retry(c->spec.arg, c->attempt, ms, &c->err);
    return 0;
}

static void retry__http_done(void *arg, const ferry_http_response *res)
{
    ferry_retry_call *c = arg;
    c->req = NULL;
    memset(&c->err, 0, sizeof(c->err));
    if (c->canceled) {
        ferry_error_set(&c->err, FERRY_ECANCELED, 0, NULL, "canceled");
        retry__finish(c, FERRY_ECANCELED, NULL);
        return;
    }
    int status = c->spec.classify ? c->spec.classify(c->spec.arg, res, &c->err)
                                  : ferry_retry_classify_http(res, &c->err);
    if (status < 0 && c->err.code == 0)
        ferry_error_set(&c->err, status, 0, NULL, "%s", ferry_strerror(status));
    if (status < 0 && c->err.retryable && c->attempt < c->spec.max_attempts && retry__wait(c) == 0)
        return;
    if (status < 0 && c->attempt > 1) {
        size_t n = strlen(c->err.message);
        snprintf(c->err.message + n, sizeof(c->err.message) - n, " (after %d attempts)",
                 c->attempt);
    }
    retry__finish(c, status < 0 ? status : 0, res);
}

int ferry_retry_start(const ferry_retry_spec *spec, ferry_retry_call **out)
{
    if (out)
        *out = NULL;
    if (spec == NULL || spec->http == NULL || spec->loop == NULL || spec->send == NULL ||
        spec->done == NULL)
        return FERRY_EINVAL;
    ferry_retry_call *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return FERRY_ENOMEM;
    size_t n = spec->struct_size && spec->struct_size < sizeof(c->spec) ? spec->struct_size
                                                                        : sizeof(c->spec);
    memcpy(&c->spec, spec, n);
    ferry_retry_spec *s = &c->spec;
    s->max_attempts = s->max_attempts > 0 ? s->max_attempts : RETRY__DEFAULT_ATTEMPTS;
    s->base_ms = s->base_ms > 0 ? s->base_ms : RETRY__DEFAULT_BASE_MS;
    s->throttle_base_ms =
        s->throttle_base_ms > 0 ? s->throttle_base_ms : RETRY__DEFAULT_THROTTLE_MS;
    s->cap_ms = s->cap_ms > 0 ? s->cap_ms : RETRY__DEFAULT_CAP_MS;
    s->timeout_ms = s->timeout_ms > 0 ? s->timeout_ms : RETRY__DEFAULT_TIMEOUT_MS;
    s->connect_timeout_ms =
        s->connect_timeout_ms > 0 ? s->connect_timeout_ms : RETRY__DEFAULT_CONNECT_MS;
    c->rng = ((uint64_t)time(NULL) << 20) ^ (uint64_t)(uintptr_t)c;
    int rc = retry__send(c);
    if (rc < 0) {
        free(c);
        return rc;
    }
    if (out)
        *out = c;
    return 0;
}

void ferry_retry_cancel(ferry_retry_call *c)
{
    if (c == NULL || c->canceled)
        return;
    c->canceled = 1;
    if (c->req) {
        ferry_http_request_cancel(c->req); /* its done finishes the call */
        return;
    }
    ferry_error_set(&c->err, FERRY_ECANCELED, 0, NULL, "canceled");
    retry__finish(c, FERRY_ECANCELED, NULL);
}

/* ---- calls to the end, on a loop of their own ---- */

int ferry_retry_blocking_open(ferry_retry_blocking *b)
{
    memset(b, 0, sizeof(*b));
    if (uv_loop_init(&b->loop) != 0)
        return FERRY_EIO;
    int rc = ferry_http_client_new(&b->loop, &b->http);
    if (rc != 0) {
        uv_loop_close(&b->loop);
        return rc;
    }
    b->open = 1;
    return 0;
}

void ferry_retry_blocking_done(void *arg, int status, const char *body, size_t len,
                               const ferry_error_detail *err)
{
    ferry_retry_blocking *b = arg;
    (void)body;
    (void)len;
    b->done = 1;
    b->status = status;
    if (err)
        b->err = *err;
}

int ferry_retry_blocking_wait(ferry_retry_blocking *b)
{
    while (!b->done)
        uv_run(&b->loop, UV_RUN_ONCE);
    b->done = 0;
    return b->status;
}

static void ferry__blocking_closed(void *arg)
{
    *(int *)arg = 1;
}

void ferry_retry_blocking_close(ferry_retry_blocking *b)
{
    if (!b->open)
        return;
    int closed = 0;
    ferry_http_client_close(b->http, ferry__blocking_closed, &closed);
    while (!closed)
        uv_run(&b->loop, UV_RUN_ONCE);
    uv_run(&b->loop, UV_RUN_NOWAIT); /* retry timers close on a later turn */
    uv_loop_close(&b->loop);
    b->open = 0;
}
