/* gcp: access tokens and one authorized Compute Engine call.
 *
 * Tokens: the service-account JWT bearer flow. An assertion signed with the
 * key (RS256, fresh iat for every attempt) is exchanged at the key's
 * token_uri for an access token, which is cached and fetched anew well
 * before it expires (at three quarters of its life, or five minutes before
 * the end of a long one). Calls that need a token while none is valid wait
 * for one fetch; a fetch that fails ends them all with its error (an
 * invalid_grant is FERRY_EAUTH: the environment is broken).
 *
 * Calls: each attempt carries the current token and has a timeout
 * (call_timeout); 429, rateLimitExceeded, 5xx, dropped connections and
 * timeouts are retried with jittered backoff (sdk retry.h). A 401 is
 * answered once by fetching a new token and starting over; a second 401,
 * and a 403 that is not a rate limit or quota, end the call with
 * FERRY_EAUTH / FERRY_EPERM, not retryable. Tokens never reach a log.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gcp.h"

struct gcp_call {
    gcp_state *st;
    ferry_http_client *http; /* the plugin's, or a private one (fini) */
    uv_loop_t *loop;
    char what[64];
    char method[8];
    char *url;
    char *body;
    gcp_call_done_fn done;
    void *arg;
    long timeout_ms;
    int max_attempts;
    ferry_retry_call *retry;
    int linked;       /* in st->calls or st->waiting */
    int waiting;      /* in st->waiting */
    int reauth;       /* this attempt's 401: fetch a new token, start over */
    int auth_retried; /* did that once */
    struct gcp_call *prev, *next;
};

static void gcp_wipe_free(char *s)
{
    if (s)
        memset(s, 0, strlen(s));
    free(s);
}

/* ------------------------------------------------------------------------ */
/* Lists                                                                    */

static gcp_call **gcp_head(gcp_call *c)
{
    return c->waiting ? &c->st->waiting : &c->st->calls;
}

static void gcp_link(gcp_call *c, int waiting)
{
    c->waiting = waiting;
    gcp_call **head = gcp_head(c);
    c->prev = NULL;
    c->next = *head;
    if (*head)
        (*head)->prev = c;
    *head = c;
    c->linked = 1;
}

static void gcp_unlink(gcp_call *c)
{
    if (!c->linked)
        return;
    if (c->prev)
        c->prev->next = c->next;
    else
        *gcp_head(c) = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->linked = 0;
    c->prev = c->next = NULL;
}

static void gcp_call_free(gcp_call *c)
{
    free(c->url);
    gcp_wipe_free(c->body); /* it may hold the startup-script's token */
    free(c);
}

/* ------------------------------------------------------------------------ */
/* Tokens                                                                   */

typedef void (*gcp_token_cb)(gcp_state *st, int status, const ferry_error_detail *err, void *arg);

typedef struct gcp_token_fetch {
    gcp_state *st;
    ferry_http_client *http;
    gcp_token_cb cb;
    void *arg;
    char *body;
} gcp_token_fetch;

static int gcp_token_valid(const gcp_state *st, uv_loop_t *loop)
{
    return st->token && uv_now(loop) < st->token_refresh_ms;
}

static int gcp_token_send(void *arg, int attempt, const ferry_http_options *tmpl,
                          ferry_http_request **req)
{
    gcp_token_fetch *f = arg;
    (void)attempt;
    char *assertion = NULL;
    ferry_error_detail err;
    int rc = gcp_assertion(&f->st->cfg.key, GCP_SCOPE, (long long)time(NULL), &assertion, &err);
    if (rc != 0)
        return rc;
    gcp_wipe_free(f->body);
    f->body = gcp_token_body(assertion);
    gcp_wipe_free(assertion);
    if (f->body == NULL)
        return FERRY_ENOMEM;
    const char *headers[] = {"Content-Type: application/x-www-form-urlencoded",
                             "Accept: application/json", NULL};
    ferry_http_options o = *tmpl;
    o.method = "POST";
    o.url = f->st->cfg.key.token_uri;
    o.headers = headers;
    o.body = f->body;
    o.body_len = strlen(f->body);
    o.max_body = 1u << 20;
    return ferry_http_request_start(f->http, &o, req);
}

static int gcp_token_classify(void *arg, const ferry_http_response *res, ferry_error_detail *err)
{
    gcp_token_fetch *f = arg;
    char uri[256];
    ferry_http_redact_url(f->st->cfg.key.token_uri, uri, sizeof(uri));
    if (res->code < 0)
        return ferry_error_set(err, res->code,
                               res->code == FERRY_ECONN || res->code == FERRY_ETIMEDOUT, NULL,
                               "OAuth2 token from %s: %s: %s", uri, ferry_strerror(res->code),
                               res->error ? res->error : "");
    if (res->status >= 200 && res->status < 300)
        return 0;
    if (res->status == 429 || res->status >= 500)
        return ferry_error_set(err, res->status == 429 ? FERRY_ETHROTTLED : FERRY_EPROVIDER, 1,
                               NULL, "OAuth2 token from %s: HTTP %ld", uri, res->status);
    char *tok = NULL;
    long exp;
    gcp_token_parse(res->body, &tok, &exp, err);
    free(tok);
    char why[400];
    snprintf(why, sizeof(why), "%s", err->code == FERRY_EAUTH ? err->message : "");
    /* invalid_grant, invalid_client, a key Google no longer knows. */
    return ferry_error_set(err, FERRY_EAUTH, 0,
                           err->code == FERRY_EAUTH ? err->provider_code : NULL,
                           "Google refused the service account %s at %s (HTTP %ld)%s%s",
                           f->st->cfg.key.client_email, uri, res->status, why[0] ? ": " : "", why);
}

static void gcp_token_done(void *arg, int status, const ferry_http_response *res,
                           const ferry_error_detail *err)
{
    gcp_token_fetch *f = arg;
    gcp_state *st = f->st;
    ferry_error_detail d;
    if (status == 0) {
        char *token = NULL;
        long expires_in = 0;
        status = gcp_token_parse(res->body, &token, &expires_in, &d);
        if (status == 0) {
            gcp_wipe_free(st->token);
            st->token = token;
            uint64_t now = uv_now(st->loop);
            if (expires_in < 1)
                expires_in = 1;
            long refresh = expires_in > 1200 ? expires_in - 300 : expires_in * 3 / 4;
            st->token_refresh_ms = now + (uint64_t)refresh * 1000;
            st->token_expiry_ms = now + (uint64_t)expires_in * 1000;
        }
        err = &d;
    }
    if (f->http == st->http)
        st->token_call = NULL;
    gcp_wipe_free(f->body);
    gcp_token_cb cb = f->cb;
    void *cb_arg = f->arg;
    free(f);
    cb(st, status, status == 0 ? NULL : err, cb_arg);
}

static int gcp_token_start(gcp_state *st, ferry_http_client *http, uv_loop_t *loop, gcp_token_cb cb,
                           void *arg, ferry_retry_call **out)
{
    gcp_token_fetch *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return FERRY_ENOMEM;
    f->st = st;
    f->http = http;
    f->cb = cb;
    f->arg = arg;
    ferry_retry_spec spec = {.struct_size = sizeof(spec),
                             .http = http,
                             .loop = loop,
                             .max_attempts = st->cfg.max_attempts,
                             .timeout_ms = st->cfg.call_timeout_ms,
                             .send = gcp_token_send,
                             .classify = gcp_token_classify,
                             .done = gcp_token_done,
                             .arg = f};
    int rc = ferry_retry_start(&spec, out);
    if (rc != 0)
        free(f);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Compute calls                                                            */

static int gcp_call_send(void *arg, int attempt, const ferry_http_options *tmpl,
                         ferry_http_request **req)
{
    gcp_call *c = arg;
    (void)attempt;
    if (!gcp_token_valid(c->st, c->loop)) {
        /* A retry after a long wait: fetch a new token, start over. */
        c->reauth = 1;
        return FERRY_EAUTH;
    }
    size_t n = strlen(c->st->token) + 32;
    char *auth = malloc(n);
    if (auth == NULL)
        return FERRY_ENOMEM;
    snprintf(auth, n, "Authorization: Bearer %s", c->st->token);
    const char *headers[] = {auth, "Accept: application/json",
                             c->body ? "Content-Type: application/json" : NULL, NULL};
    ferry_http_options o = *tmpl;
    o.method = c->method;
    o.url = c->url;
    o.headers = headers;
    o.body = c->body;
    o.body_len = c->body ? strlen(c->body) : 0;
    o.max_body = 32u << 20;
    int rc = ferry_http_request_start(c->http, &o, req);
    gcp_wipe_free(auth);
    return rc;
}

static int gcp_call_classify(void *arg, const ferry_http_response *res, ferry_error_detail *err)
{
    gcp_call *c = arg;
    if (res->code < 0) {
        int retry = res->code == FERRY_ECONN || res->code == FERRY_ETIMEDOUT;
        return ferry_error_set(err, res->code, retry, NULL, "Compute %s: %s: %s", c->what,
                               ferry_strerror(res->code), res->error ? res->error : "");
    }
    if (res->status >= 200 && res->status < 300)
        return 0;
    char reason[64], message[320];
    if (!gcp_error_parse(res->body, res->body_len, reason, sizeof(reason), message,
                         sizeof(message)) ||
        reason[0] == '\0') {
        snprintf(reason, sizeof(reason), "HTTP%ld", res->status);
        message[0] = '\0';
    }
    int retry = 0;
    int code = gcp_error_code(reason, res->status, &retry);
    if (res->status == 401 && !c->auth_retried) {
        c->reauth = 1; /* revoked or expired early: one new token */
        retry = 0;
    }
    if (code == FERRY_EAUTH || code == FERRY_EPERM)
        return ferry_error_set(err, code, 0, reason,
                               "Compute Engine refused the service account %s for %s in project "
                               "%s: %s%s%s (HTTP %ld)",
                               c->st->cfg.key.client_email, c->what, c->st->cfg.project, reason,
                               message[0] ? ": " : "", message, res->status);
    return ferry_error_set(err, code, retry, reason, "Compute %s: %s%s%s (HTTP %ld)", c->what,
                           reason, message[0] ? ": " : "", message, res->status);
}

static void gcp_call_on_retry(void *arg, int attempt, uint64_t delay_ms,
                              const ferry_error_detail *err)
{
    gcp_call *c = arg;
    if (c->st->host && !c->st->cloud.closing)
        c->st->host->log(c->st->ctx, FERRY_LOG_INFO,
                         "Compute %s: attempt %d failed (%s); again in %llu ms", c->what, attempt,
                         err->message, (unsigned long long)delay_ms);
}

static void gcp_token_for_waiting(gcp_state *st, int status, const ferry_error_detail *err,
                                  void *arg);
static int gcp_call_go(gcp_call *c);

static void gcp_call_finish(gcp_call *c, int status, const ferry_http_response *res,
                            const ferry_error_detail *err)
{
    if (status == 0)
        c->done(c->arg, 0, res->body, res->body_len, NULL);
    else
        c->done(c->arg, status, NULL, 0, err);
    gcp_call_free(c);
}

static void gcp_call_retry_done(void *arg, int status, const ferry_http_response *res,
                                const ferry_error_detail *err)
{
    gcp_call *c = arg;
    int was_linked = c->linked;
    gcp_unlink(c);
    c->retry = NULL;
    if (status != 0 && c->reauth && !c->auth_retried && was_linked && !c->st->cloud.closing) {
        c->reauth = 0;
        c->auth_retried = 1;
        /* The token this call had is no longer good. */
        c->st->token_refresh_ms = 0;
        if (gcp_call_go(c) == 0)
            return;
    }
    gcp_call_finish(c, status, res, err);
}

/* The call's retry loop on its client and loop, with its attempts and
 * timeout (a retry logs nothing once fini began). */
static int gcp_call_retry_start(gcp_call *c)
{
    ferry_retry_spec spec = {.struct_size = sizeof(spec),
                             .http = c->http,
                             .loop = c->loop,
                             .max_attempts = c->max_attempts,
                             .timeout_ms = c->timeout_ms,
                             .send = gcp_call_send,
                             .classify = gcp_call_classify,
                             .done = gcp_call_retry_done,
                             .arg = c,
                             .on_retry = gcp_call_on_retry};
    return ferry_retry_start(&spec, &c->retry);
}

/* Start the retry loop now (a valid token), or wait for one. */
static int gcp_call_go(gcp_call *c)
{
    gcp_state *st = c->st;
    if (!gcp_token_valid(st, c->loop)) {
        gcp_link(c, 1);
        if (st->token_call == NULL) {
            int rc = gcp_token_start(st, st->http, st->loop, gcp_token_for_waiting, NULL,
                                     &st->token_call);
            if (rc != 0) {
                gcp_unlink(c);
                return rc;
            }
        }
        return 0;
    }
    c->reauth = 0;
    gcp_link(c, 0); /* first: a cancel_all during the first attempt must see it */
    int rc = gcp_call_retry_start(c);
    if (rc != 0)
        gcp_unlink(c);
    return rc;
}

/* A fetch for the waiting calls ended: start them, or end them all. */
static void gcp_token_for_waiting(gcp_state *st, int status, const ferry_error_detail *err,
                                  void *arg)
{
    (void)arg;
    ferry_error_detail fallback;
    if (status != 0 && err == NULL) {
        ferry_error_set(&fallback, status, 0, NULL, "OAuth2 token: %s", ferry_strerror(status));
        err = &fallback;
    }
    if (status != 0 && st->host && !st->cloud.closing)
        st->host->log(st->ctx, FERRY_LOG_WARN, "no access token: %s", err->message);
    while (st->waiting) {
        gcp_call *c = st->waiting;
        gcp_unlink(c);
        int rc = status;
        if (rc == 0 && (rc = gcp_call_go(c)) == 0)
            continue;
        ferry_error_detail d;
        if (status == 0)
            ferry_error_set(&d, rc, 0, NULL, "Compute %s: %s", c->what, ferry_strerror(rc));
        gcp_call_finish(c, rc, NULL, status == 0 ? &d : err);
    }
}

static gcp_call *gcp_call_new(gcp_state *st, const char *what, const char *method, char *url,
                              char *body)
{
    gcp_call *c = calloc(1, sizeof(*c));
    if (c == NULL || url == NULL) {
        free(url);
        gcp_wipe_free(body);
        free(c);
        return NULL;
    }
    c->st = st;
    snprintf(c->what, sizeof(c->what), "%s", what);
    snprintf(c->method, sizeof(c->method), "%s", method);
    c->url = url;
    c->body = body;
    c->timeout_ms = st->cfg.call_timeout_ms;
    c->max_attempts = st->cfg.max_attempts;
    return c;
}

int gcp_call_start(gcp_state *st, const char *what, const char *method, char *url, char *body,
                   gcp_call_done_fn done, void *arg)
{
    if (st->cloud.closing) {
        free(url);
        gcp_wipe_free(body);
        return FERRY_ESTATE;
    }
    gcp_call *c = gcp_call_new(st, what, method, url, body);
    if (c == NULL)
        return FERRY_ENOMEM;
    c->http = st->http;
    c->loop = st->loop;
    c->done = done;
    c->arg = arg;
    int rc = gcp_call_go(c);
    if (rc != 0)
        gcp_call_free(c);
    return rc;
}

void gcp_call_cancel_all(gcp_state *st)
{
    if (st->token_call) {
        ferry_retry_call *t = st->token_call;
        st->token_call = NULL;
        ferry_retry_cancel(t); /* ends the waiting calls with FERRY_ECANCELED */
    }
    while (st->waiting) {
        gcp_call *c = st->waiting;
        gcp_unlink(c);
        ferry_error_detail d;
        ferry_error_set(&d, FERRY_ECANCELED, 0, NULL, "Compute %s: canceled", c->what);
        gcp_call_finish(c, FERRY_ECANCELED, NULL, &d);
    }
    while (st->calls) {
        gcp_call *c = st->calls;
        gcp_unlink(c); /* its done may run later, from inside an HTTP callback */
        ferry_retry_cancel(c->retry);
    }
}

/* ------------------------------------------------------------------------ */
/* Blocking, on a private loop (fini)                                       */

static void gcp_blocking_token(gcp_state *st, int status, const ferry_error_detail *err, void *arg)
{
    (void)st;
    ferry_retry_blocking_done(arg, status, NULL, 0, err);
}

/* A token first, when the cached one will not do; 0 or the token call's
 * status (its error in b->err). */
static int gcp_blocking_token_fresh(gcp_state *st, ferry_retry_blocking *b)
{
    if (st->token && uv_now(st->loop) + 5000 < st->token_expiry_ms)
        return 0;
    st->token_refresh_ms = 0;
    int rc = gcp_token_start(st, b->http, &b->loop, gcp_blocking_token, b, NULL);
    if (rc == 0)
        rc = ferry_retry_blocking_wait(b);
    if (rc == 0)
        st->token_refresh_ms = uv_now(st->loop) + 60000; /* stamped on this loop */
    return rc;
}

/* The call itself (takes `url`), its end reported to `b`. */
static int gcp_blocking_start(gcp_state *st, ferry_retry_blocking *b, const char *what,
                              const char *method, char *url, long timeout_ms)
{
    gcp_call *c = gcp_call_new(st, what, method, url, NULL);
    if (c == NULL)
        return FERRY_ENOMEM;
    c->http = b->http;
    c->loop = &b->loop;
    c->done = ferry_retry_blocking_done;
    c->arg = b;
    c->timeout_ms = timeout_ms;
    c->max_attempts = 2;
    c->auth_retried = 1;
    /* send checks the token against this loop's clock. */
    st->token_refresh_ms = uv_now(&b->loop) + 60000;
    /* Not on st->calls: nothing cancels it but its timeout. */
    int rc = gcp_call_retry_start(c);
    if (rc != 0)
        gcp_call_free(c);
    return rc;
}

int gcp_call_blocking(gcp_state *st, const char *what, const char *method, char *url,
                      long timeout_ms, ferry_error_detail *err)
{
    ferry_retry_blocking b;
    int rc = ferry_retry_blocking_open(&b);
    if (rc != 0) {
        free(url);
        return ferry_error_set(err, rc, 0, NULL, "gcp: cannot make a loop: %s", ferry_strerror(rc));
    }
    rc = gcp_blocking_token_fresh(st, &b);
    if (rc == 0)
        rc = gcp_blocking_start(st, &b, what, method, url, timeout_ms);
    else
        free(url);
    if (rc == 0)
        rc = ferry_retry_blocking_wait(&b);
    ferry_retry_blocking_close(&b);
    if (rc != 0 && b.status == rc && b.err.message[0]) {
        if (err)
            *err = b.err;
        return rc;
    }
    if (rc != 0)
        return ferry_error_set(err, rc, 0, NULL, "gcp: %s", ferry_strerror(rc));
    return 0;
}
