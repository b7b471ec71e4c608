/* aws: one EC2 Query API call, signed afresh for every attempt (SigV4 over
 * the form body) and retried with jittered backoff while EC2 or the network
 * says "later": RequestLimitExceeded and other throttling, 5xx, dropped
 * connections and timeouts. Every attempt has a timeout (call_timeout).
 * Anything else ends the call with EC2's error code in the detail.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aws.h"
#include "ferry/sigv4.h"

#define AWS_CONTENT_TYPE "Content-Type: application/x-www-form-urlencoded; charset=utf-8"

struct aws_call {
    aws_state *st;
    ferry_http_client *http; /* the plugin's, or a private one (fini) */
    char action[48];
    char *body;
    char body_sha[65];
    aws_call_done_fn done;
    void *arg;
    ferry_retry_call *retry;
    int linked; /* in st->calls (canceled at fini) */
    struct aws_call *prev, *next;
};

/* ------------------------------------------------------------------------ */
/* Errors                                                                   */

/* An answer that is not a success: EC2's code, message and request id. */
static int aws_fail_answer(aws_call *c, const ferry_http_response *res, ferry_error_detail *err)
{
    char code[64], message[320], rid[96];
    if (!aws_xml_error(res->body, res->body_len, code, sizeof(code), message, sizeof(message), rid,
                       sizeof(rid)) ||
        code[0] == '\0') {
        snprintf(code, sizeof(code), "HTTP%ld", res->status);
        message[0] = rid[0] = '\0';
    }
    int retry = 0;
    int ferry = aws_error_code(code, res->status, &retry);
    return ferry_error_set(err, ferry, retry, code, "EC2 %s: %s%s%s (HTTP %ld%s%s)", c->action,
                           code, message[0] ? ": " : "", message, res->status,
                           rid[0] ? ", request id " : "", rid);
}

static int aws_classify(void *arg, const ferry_http_response *res, ferry_error_detail *err)
{
    aws_call *c = arg;
    if (res->code < 0) {
        int retry = res->code == FERRY_ECONN || res->code == FERRY_ETIMEDOUT;
        return ferry_error_set(err, res->code, retry, NULL, "EC2 %s: %s: %s", c->action,
                               ferry_strerror(res->code), res->error ? res->error : "");
    }
    if (res->status >= 200 && res->status < 300)
        return 0;
    return aws_fail_answer(c, res, err);
}

/* ------------------------------------------------------------------------ */
/* Attempts                                                                 */

static int aws_sign(const aws_call *c, ferry_sigv4_signature *sig)
{
    const aws_state *st = c->st;
    const char *headers[] = {AWS_CONTENT_TYPE, NULL};
    ferry_sigv4_request r = {.struct_size = sizeof(r),
                             .access_key_id = st->creds.access_key_id,
                             .secret_access_key = st->creds.secret_access_key,
                             .session_token = st->creds.session_token,
                             .service = "ec2",
                             .region = st->cfg.region,
                             .method = "POST",
                             .host = st->cfg.host,
                             .path = st->cfg.path,
                             .headers = headers,
                             .payload_hash = c->body_sha,
                             .time = (int64_t)time(NULL)};
    return ferry_sigv4_sign(&r, sig);
}

/* Signed now: a retry minutes later needs a fresh X-Amz-Date. */
static int aws_send(void *arg, int attempt, const ferry_http_options *tmpl,
                    ferry_http_request **req)
{
    aws_call *c = arg;
    (void)attempt;
    ferry_sigv4_signature sig;
    int rc = aws_sign(c, &sig);
    if (rc != 0)
        return rc;
    const char *headers[8];
    size_t n = 0;
    headers[n++] = AWS_CONTENT_TYPE;
    for (char **h = sig.headers; *h && n < 7; h++)
        headers[n++] = *h;
    headers[n] = NULL;
    ferry_http_options o = *tmpl;
    o.method = "POST";
    o.url = c->st->cfg.url;
    o.headers = headers;
    o.body = c->body;
    o.body_len = strlen(c->body);
    o.max_body = 16u << 20;
    rc = ferry_http_request_start(c->http, &o, req);
    ferry_sigv4_signature_free(&sig);
    return rc;
}

static void aws_unlink(aws_call *c)
{
    if (!c->linked)
        return;
    if (c->prev)
        c->prev->next = c->next;
    else
        c->st->calls = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->linked = 0;
}

static void aws_call_free(aws_call *c)
{
    if (c->body) /* it may hold user-data */
        memset(c->body, 0, strlen(c->body));
    free(c->body);
    free(c);
}

static void aws_on_retry(void *arg, int attempt, uint64_t delay_ms, const ferry_error_detail *err)
{
    aws_call *c = arg;
    if (c->st->host && !c->st->cloud.closing)
        c->st->host->log(c->st->ctx, FERRY_LOG_INFO,
                         "EC2 %s: attempt %d failed (%s); again in %llu ms", c->action, attempt,
                         err->message, (unsigned long long)delay_ms);
}

static void aws_done(void *arg, int status, const ferry_http_response *res,
                     const ferry_error_detail *err)
{
    aws_call *c = arg;
    aws_unlink(c);
    if (status == 0)
        c->done(c->arg, 0, res->body, res->body_len, NULL);
    else
        c->done(c->arg, status, NULL, 0, err);
    aws_call_free(c);
}

static int aws_call_start_on(aws_state *st, ferry_http_client *http, uv_loop_t *loop,
                             aws_params *params, long timeout_ms, int max_attempts, int link,
                             aws_call_done_fn done, void *arg)
{
    aws_call *c = calloc(1, sizeof(*c));
    if (c == NULL || (c->body = aws_params_body(params)) == NULL) {
        aws_params_free(params);
        free(c);
        return FERRY_ENOMEM;
    }
    const char *action = aws_params_get(params, "Action");
    snprintf(c->action, sizeof(c->action), "%s", action ? action : "?");
    aws_params_free(params);
    c->st = st;
    c->http = http;
    c->done = done;
    c->arg = arg;
    ferry_sigv4_sha256_hex(c->body, strlen(c->body), c->body_sha);
    ferry_retry_spec spec = {.struct_size = sizeof(spec),
                             .http = http,
                             .loop = loop,
                             .max_attempts = max_attempts,
                             .timeout_ms = timeout_ms,
                             .send = aws_send,
                             .classify = aws_classify,
                             .done = aws_done,
                             .arg = c,
                             .on_retry = aws_on_retry};
    /* Linked first: a cancel_all during the first attempt must see it. */
    if (link) {
        c->linked = 1;
        c->next = st->calls;
        if (st->calls)
            st->calls->prev = c;
        st->calls = c;
    }
    int rc = ferry_retry_start(&spec, &c->retry);
    if (rc != 0) {
        aws_unlink(c);
        aws_call_free(c);
    }
    return rc;
}

int aws_call_start(aws_state *st, aws_params *params, aws_call_done_fn done, void *arg)
{
    if (st->cloud.closing) {
        aws_params_free(params);
        return FERRY_ESTATE;
    }
    return aws_call_start_on(st, st->http, st->loop, params, st->cfg.call_timeout_ms,
                             st->cfg.max_attempts, 1, done, arg);
}

void aws_call_cancel_all(aws_state *st)
{
    while (st->calls) {
        aws_call *c = st->calls;
        aws_unlink(c); /* its done may run later, from inside an HTTP callback */
        ferry_retry_cancel(c->retry);
    }
}

/* ------------------------------------------------------------------------ */
/* Blocking, on a private loop (fini)                                       */

int aws_call_blocking(aws_state *st, aws_params *params, long timeout_ms, int max_attempts,
                      ferry_error_detail *err)
{
    ferry_retry_blocking b;
    int rc = ferry_retry_blocking_open(&b);
    if (rc != 0) {
        aws_params_free(params);
        return ferry_error_set(err, rc, 0, NULL, "aws: cannot make a loop: %s", ferry_strerror(rc));
    }
    rc = aws_call_start_on(st, b.http, &b.loop, params, timeout_ms, max_attempts, 0,
                           ferry_retry_blocking_done, &b);
    int status = rc == 0 ? ferry_retry_blocking_wait(&b) : 0;
    ferry_retry_blocking_close(&b);
    if (rc != 0)
        return ferry_error_set(err, rc, 0, NULL, "aws: %s", ferry_strerror(rc));
    if (status != 0 && err)
        *err = b.err;
    return status;
}
