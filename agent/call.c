/* Calls to ferryd and file transfers, with retries.
 *
 * A call is retried while its failure is transient (no connection, timeout,
 * 408, 429, 5xx) with exponential backoff and jitter, so a flapping server
 * is not hammered and many agents do not retry in step. Calls to ferryd feed
 * the agent's reachability clock (give-up); foreign URLs (presigned objects,
 * inputs) never get the agent's token and have a bounded number of tries.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "log.h"
#include "text.h"
#include "util.h"

#define CALL_BACKOFF_FIRST_MS 500
#define CALL_BACKOFF_MAX_MS 30000
/* ferryd back after a restart must hear from its agents well within its
 * lost-worker timeout (60 s by default). */
#define CALL_SERVER_BACKOFF_MAX_MS 10000
#define CALL_DEFAULT_TIMEOUT_MS 30000
#define CALL_URL_ATTEMPTS 3
#define CALL_MAX_HEADERS 4 /* extra headers of a foreign URL */

struct agent_call {
    agent *a;
    agent_call *prev, *next;
    char *method;
    char *url;
    char **headers; /* extra lines for a foreign URL, NULL-terminated */
    char *body;
    size_t body_len;
    char *upload_path;
    int64_t upload_offset, upload_length;
    int upload_same_file;
    uint64_t upload_dev, upload_ino;
    char *download_path;
    char *protocols;
    char *content_type;
    int to_server;
    int max_attempts;
    int attempts;
    long timeout_ms;
    long stall_timeout_ms;
    ferry_http_request *req;
    uv_timer_t timer;
    agent_call_cb cb;
    void *arg;
    int cancelled;
};

/* The CA file is ferryd's (often its self-signed certificate): it replaces
 * the system store, so it is used only for ferryd and its blob URLs, never
 * for inputs and presigned objects elsewhere. */
static int call_trusts_ca(const agent *a, const agent_call *c)
{
    size_t n = strlen(a->cfg.server_url);
    return c->to_server ||
           (strncmp(c->url, a->cfg.server_url, n) == 0 && (c->url[n] == '/' || c->url[n] == '\0'));
}

static void call_link(agent *a, agent_call *c)
{
    c->next = a->calls;
    if (a->calls)
        a->calls->prev = c;
    a->calls = c;
}

static void call_unlink(agent *a, agent_call *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else if (a->calls == c)
        a->calls = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
}

static void call_closed(uv_handle_t *h)
{
    agent_call *c = h->data;
    free(c->method);
    free(c->url);
    for (char **h = c->headers; h && *h; h++)
        free(*h);
    free(c->headers);
    free(c->body);
    free(c->upload_path);
    free(c->download_path);
    free(c->protocols);
    free(c->content_type);
    free(c);
}

/* The call is over (answered or cancelled): unlink it, free it later. */
static void call_retire(agent_call *c)
{
    call_unlink(c->a, c);
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->timer, call_closed);
}

static int call_transient(const ferry_http_response *res)
{
    if (res->code != 0)
        return res->code == FERRY_ECONN || res->code == FERRY_ETIMEDOUT;
    return res->status == 408 || res->status == 429 || res->status >= 500;
}

/* Whether a failure says the server is not there (as opposed to a refusal). */
static int call_unreachable(const ferry_http_response *res)
{
    return res->code != 0 || res->status == 502 || res->status == 503 || res->status == 504;
}

static uint64_t call_backoff_ms(int attempt, uint64_t max_ms)
{
    uint64_t ms = CALL_BACKOFF_FIRST_MS;
    for (int i = 1; i < attempt && ms < max_ms; i++)
        ms *= 2;
    if (ms > max_ms)
        ms = max_ms;
    /* +-25% jitter */
    unsigned r = 0;
    char hex[9];
    if (ferry_random_hex(hex, 4) == 0)
        r = (unsigned)strtoul(hex, NULL, 16);
    return ms * 3 / 4 + (uint64_t)(r % (unsigned)(ms / 2 + 1));
}

static void call_deliver(agent_call *c, const agent_reply *r)
{
    agent_call_cb cb = c->cb;
    void *arg = c->arg;
    call_retire(c);
    cb(arg, r);
}

static void call_fail_abandoned(agent_call *c)
{
    agent_reply r = {.ok = 0, .code = FERRY_ECANCELED, .status = 0, .error = "agent is giving up"};
    call_deliver(c, &r);
}

/* The text of the first <name> element of an XML body, cleaned up. */
static int call_xml_field(const char *body, size_t len, const char *name, char *out, size_t cap)
{
    char open[32], close[32];
    snprintf(open, sizeof(open), "<%s>", name);
    snprintf(close, sizeof(close), "</%s>", name);
    const char *a = memmem(body, len, open, strlen(open));
    if (a == NULL)
        return 0;
    a += strlen(open);
    const char *b = memmem(a, len - (size_t)(a - body), close, strlen(close));
    if (b == NULL)
        return 0;
    size_t n = (size_t)(b - a) < cap - 1 ? (size_t)(b - a) : cap - 1, clean_len = 0;
    char *clean = ferry_utf8_clean(a, n, &clean_len);
    snprintf(out, cap, "%s", clean);
    free(clean);
    for (char *p = out; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    return 1;
}

/* An object store's error document (S3, GCS, MinIO: <Error><Code>...):
 * "NoSuchBucket: The specified bucket does not exist", so that the code
 * reaches the execution's status_reason. */
static int call_store_error(const ferry_http_response *res, char *buf, size_t cap)
{
    char code[128], message[256];
    if (!call_xml_field(res->body, res->body_len, "Code", code, sizeof(code)) || !code[0])
        return 0;
    if (!call_xml_field(res->body, res->body_len, "Message", message, sizeof(message)))
        message[0] = '\0';
    snprintf(buf, cap, "%s%s%s", code, message[0] ? ": " : "", message);
    return 1;
}

/* ferryd's {"error": "..."} when there is one, else a short body. */
static const char *call_error_text(const ferry_http_response *res, json_t **owned, char *buf,
                                   size_t cap)
{
    if (res->code != 0)
        return res->error;
    json_t *j = json_loadb(res->body, res->body_len, 0, NULL);
    const char *msg = json_string_value(json_object_get(j, "error"));
    if (msg) {
        *owned = j;
        return msg;
    }
    json_decref(j);
    if (call_store_error(res, buf, cap))
        return buf;
    size_t n = res->body_len < 200 ? res->body_len : 200;
    size_t len = 0;
    char *clean = ferry_utf8_clean(res->body, n, &len);
    snprintf(buf, cap, "%s", clean);
    free(clean);
    for (char *p = buf; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    return buf;
}

static void call_send(agent_call *c);

static void call_on_timer(uv_timer_t *t)
{
    agent_call *c = t->data;
    if (c->a->abandoning) {
        call_fail_abandoned(c);
        return;
    }
    call_send(c);
}

static void call_on_done(void *arg, const ferry_http_response *res)
{
    agent_call *c = arg;
    c->req = NULL;
    if (c->cancelled)
        return;
    int ok = res->code == 0 && res->status >= 200 && res->status < 300;
    if (c->to_server) {
        agent_note_server(c->a, !call_unreachable(res));
        if (c->cancelled) /* giving up on ferryd cancelled this very call */
            return;
    }
    if (!ok && c->a->abandoning) { /* no more retries */
        call_fail_abandoned(c);
        return;
    }
    if (!ok && call_transient(res) && (c->max_attempts == 0 || c->attempts < c->max_attempts)) {
        uint64_t wait = call_backoff_ms(c->attempts, c->to_server ? CALL_SERVER_BACKOFF_MAX_MS
                                                                  : CALL_BACKOFF_MAX_MS);
        ferry_debug("%s: %s, retrying in %llu ms", c->to_server ? "ferryd call" : "transfer",
                    res->code ? res->error : "server error", (unsigned long long)wait);
        uv_timer_start(&c->timer, call_on_timer, wait, 0);
        return;
    }
    agent_reply r = {
        .ok = ok, .code = res->code, .status = res->status, .error = "", .headers = res->headers};
    json_t *owned = NULL;
    char buf[256];
    if (ok && c->to_server) {
        json_error_t jerr;
        /* An empty 2xx answer (204) says as much as {}. */
        owned = res->body_len ? json_loadb(res->body, res->body_len, 0, &jerr) : json_object();
        if (!json_is_object(owned)) {
            r.ok = 0;
            r.code = FERRY_EPROTO;
            r.error = "ferryd's answer is not a JSON object";
        }
        r.json = owned;
    } else if (!ok) {
        r.error = call_error_text(res, &owned, buf, sizeof(buf));
    }
    call_deliver(c, &r);
    json_decref(owned);
}

static void call_send(agent_call *c)
{
    agent *a = c->a;
    char auth[1024], ctype[128];
    const char *headers[4 + CALL_MAX_HEADERS];
    int nh = 0;
    for (char **h = c->headers; !c->to_server && h && *h && nh < CALL_MAX_HEADERS; h++)
        headers[nh++] = *h;
    if (c->to_server) {
        snprintf(ctype, sizeof(ctype), "Content-Type: %s",
                 c->content_type ? c->content_type : "application/json");
        headers[nh++] = ctype;
        headers[nh++] = "Accept: application/json";
        if (a->token && a->token[0]) {
            snprintf(auth, sizeof(auth), "Authorization: Bearer %s", a->token);
            headers[nh++] = auth;
        }
    }
    headers[nh] = NULL;
    ferry_http_options o;
    memset(&o, 0, sizeof(o));
    o.struct_size = sizeof(o);
    o.method = c->method;
    o.url = c->url;
    o.headers = headers;
    o.body = c->body;
    o.body_len = c->body_len;
    o.body_borrowed = 1; /* the call keeps it until it is freed, after `done` */
    o.upload_path = c->upload_path;
    o.upload_offset = c->upload_offset;
    o.upload_length = c->upload_length;
    o.upload_same_file = c->upload_same_file;
    o.upload_dev = c->upload_dev;
    o.upload_ino = c->upload_ino;
    o.download_path = c->download_path;
    o.protocols = c->protocols;
    o.follow_redirects = !c->to_server;
    o.timeout_ms = c->timeout_ms;
    o.connect_timeout_ms = 30000;
    o.stall_timeout_ms = c->stall_timeout_ms;
    o.ca_file = call_trusts_ca(a, c) ? a->cfg.ca_file : NULL;
    o.done = call_on_done;
    o.arg = c;
    c->attempts++;
    int rc = ferry_http_request_start(a->http, &o, &c->req);
    memset(auth, 0, sizeof(auth));
    if (rc != 0) {
        /* Nothing was sent (a missing upload file, a bad URL): final. */
        char err[128];
        snprintf(err, sizeof(err), "could not start the request: %s", ferry_strerror(rc));
        agent_reply r = {.ok = 0, .code = rc, .status = 0, .error = err};
        call_deliver(c, &r);
    }
}

static char **call_copy_headers(const char *const *h)
{
    size_t n = 0;
    while (h && h[n] && n < CALL_MAX_HEADERS)
        n++;
    if (n == 0)
        return NULL;
    char **copy = ferry_xcalloc(n + 1, sizeof(char *));
    for (size_t i = 0; i < n; i++)
        copy[i] = ferry_strdup(h[i]);
    return copy;
}

agent_call *agent_call_start(agent *a, const agent_call_spec *s, agent_call_cb cb, void *arg)
{
    agent_call *c = ferry_xcalloc(1, sizeof(*c));
    c->a = a;
    c->cb = cb;
    c->arg = arg;
    c->to_server = s->path != NULL;
    if (c->to_server) {
        c->url = ferry_asprintf("%s%s", a->cfg.server_url, s->path);
        c->max_attempts = s->max_attempts;
    } else {
        c->url = ferry_strdup(s->url);
        c->max_attempts = s->max_attempts ? s->max_attempts : CALL_URL_ATTEMPTS;
    }
    if (s->take_body) {
        c->body = s->take_body;
        c->body_len = s->raw_body_len;
    } else if (s->raw_body) {
        c->body = ferry_xmalloc(s->raw_body_len + 1);
        memcpy(c->body, s->raw_body, s->raw_body_len);
        c->body[s->raw_body_len] = '\0';
        c->body_len = s->raw_body_len;
    } else if (s->body) {
        c->body = json_dumps(s->body, JSON_COMPACT);
        c->body_len = c->body ? strlen(c->body) : 0;
    }
    c->method = ferry_strdup(s->method ? s->method : (c->body ? "POST" : "GET"));
    c->upload_path = ferry_strdup(s->upload_path);
    c->upload_offset = s->upload_offset;
    c->upload_length = s->upload_length;
    c->upload_same_file = s->upload_same_file;
    c->upload_dev = s->upload_dev;
    c->upload_ino = s->upload_ino;
    c->headers = call_copy_headers(s->headers);
    c->download_path = ferry_strdup(s->download_path);
    c->protocols = ferry_strdup(s->protocols);
    c->content_type = ferry_strdup(s->content_type);
    c->timeout_ms = s->timeout_ms ? s->timeout_ms : (c->to_server ? CALL_DEFAULT_TIMEOUT_MS : 0);
    c->stall_timeout_ms = s->stall_timeout_ms;
    uv_timer_init(a->loop, &c->timer);
    c->timer.data = c;
    call_link(a, c);
    /* Always from the loop, never synchronously: callers may still be setting
     * up what the callback needs. */
    uv_timer_start(&c->timer, call_on_timer, 0, 0);
    return c;
}

void agent_call_cancel(agent_call *c)
{
    if (c == NULL)
        return;
    c->cancelled = 1;
    if (c->req)
        ferry_http_request_cancel(c->req);
    call_retire(c);
}

void agent_calls_abandon(agent *a)
{
    /* Each failure runs its owner's callback, which may start or cancel other
     * calls: rescan from the head each time. */
    for (;;) {
        agent_call *c = a->calls;
        while (c && c->req == NULL)
            c = c->next;
        if (c == NULL)
            break;
        ferry_http_request_cancel(c->req); /* call_on_done fails it */
    }
    /* Calls waiting for a retry fail on the next loop turn. */
    for (agent_call *c = a->calls; c; c = c->next)
        uv_timer_start(&c->timer, call_on_timer, 0, 0);
}

const char *agent_reply_text(const agent_reply *r, char *buf, size_t cap)
{
    if (r->code != 0 || r->status == 0)
        snprintf(buf, cap, "%s", r->error && r->error[0] ? r->error : ferry_strerror(r->code));
    else if (r->error && r->error[0])
        snprintf(buf, cap, "HTTP %ld: %s", r->status, r->error);
    else
        snprintf(buf, cap, "HTTP %ld", r->status);
    return buf;
}
