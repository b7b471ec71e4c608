/* Log shipping: runtime output -> lines -> numbered events -> ferryd.
 *
 * Latency and throughput both matter, so batching is adaptive: when no batch
 * is in flight, whatever is queued goes out at once (one line costs one
 * round trip); while one is in flight, new lines queue up and the next batch
 * takes up to SHIP_BATCH_EVENTS of them. A failed batch is resent (same seqs;
 * ferryd stores each seq once) until acknowledged.
 *
 * Events wait in a queue in memory. It is the one piece an on-disk spool
 * (events that survive an agent restart) replaces: push, peek at position i,
 * drop up to a seq.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "log.h"
#include "util.h"

#define SHIP_MAX_LINE (64 * 1024)
#define SHIP_BATCH_EVENTS 500
#define SHIP_BATCH_BYTES (1024 * 1024)
#define SHIP_STALL_RETRY_MS 1000
#define SHIP_STALL_LIMIT 5

typedef struct ship_event {
    uint64_t seq;
    ferry_stream stream;
    double time;
    char *text;
    size_t len;
} ship_event;

/* Unacknowledged events, oldest first: a ring buffer. */
typedef struct ship_queue {
    ship_event *v;
    size_t head, n, cap;
} ship_queue;

typedef struct ship_line {
    char *buf;
    size_t len, cap;
} ship_line;

struct shipper {
    agent *a;
    char *execution_id;
    char *path;
    ship_queue q;
    uint64_t last_seq; /* the last seq handed out */
    uint64_t acked;
    agent_call *call;
    uint64_t sent_upto;   /* last seq of the batch in flight */
    ship_line partial[3]; /* by stream - 1 */
    int refused;          /* ferryd refused events: drop them from now on */
    int stalls;           /* answers in a row that acknowledged nothing new */
    uv_timer_t retry;
    void (*drained_cb)(void *arg);
    void *drained_arg;
};

/* ---- UTF-8 ---- */

/* Length of the valid sequence at s[0..len), or 0 when it is not valid. */
static size_t utf8_seq(const unsigned char *s, size_t len)
{
    unsigned char c = s[0];
    size_t n;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        n = 2;
    else if (c >= 0xE0 && c <= 0xEF)
        n = 3;
    else if (c >= 0xF0 && c <= 0xF4)
        n = 4;
    else
        return 0;
    if (c == 0xE0)
        lo = 0xA0; /* overlong */
    else if (c == 0xED)
        hi = 0x9F; /* surrogates */
    else if (c == 0xF0)
        lo = 0x90; /* overlong */
    else if (c == 0xF4)
        hi = 0x8F; /* above U+10FFFF */
    if (len < n || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    return n;
}

char *agent_utf8_clean(const char *data, size_t len, size_t *out_len)
{
    const unsigned char *s = (const unsigned char *)data;
    char *out = ferry_xmalloc(len * 3 + 1);
    size_t o = 0;
    for (size_t i = 0; i < len;) {
        size_t n = utf8_seq(s + i, len - i);
        if (n == 0) {
            memcpy(out + o, "\xEF\xBF\xBD", 3); /* U+FFFD */
            o += 3;
            i++;
        } else {
            memcpy(out + o, s + i, n);
            o += n;
            i += n;
        }
    }
    out[o] = '\0';
    if (out_len)
        *out_len = o;
    return out;
}

size_t agent_utf8_cut(const char *data, size_t len, size_t max)
{
    if (len <= max)
        return len;
    size_t cut = max;
    while (cut > 0 && max - cut < 3 && ((unsigned char)data[cut] & 0xC0) == 0x80)
        cut--;
    return cut > 0 ? cut : max;
}

/* ---- the queue ---- */

static void queue_push(ship_queue *q, ship_event ev)
{
    if (q->n == q->cap) {
        size_t cap = q->cap ? q->cap * 2 : 64;
        ship_event *v = ferry_xmalloc(cap * sizeof(*v));
        for (size_t i = 0; i < q->n; i++)
            v[i] = q->v[(q->head + i) % q->cap];
        free(q->v);
        q->v = v;
        q->cap = cap;
        q->head = 0;
    }
    q->v[(q->head + q->n) % q->cap] = ev;
    q->n++;
}

static ship_event *queue_at(ship_queue *q, size_t i)
{
    return &q->v[(q->head + i) % q->cap];
}

static void queue_drop_upto(ship_queue *q, uint64_t seq)
{
    while (q->n > 0 && queue_at(q, 0)->seq <= seq) {
        free(queue_at(q, 0)->text);
        q->head = (q->head + 1) % q->cap;
        q->n--;
    }
}

/* ---- sending ---- */

static const char *stream_name(ferry_stream s)
{
    switch (s) {
    case FERRY_STREAM_STDOUT:
        return "stdout";
    case FERRY_STREAM_STDERR:
        return "stderr";
    default:
        return "status";
    }
}

static void ship_kick(shipper *s);

static void ship_check_drained(shipper *s)
{
    if (s->q.n > 0 || s->call || uv_is_active((uv_handle_t *)&s->retry) || !s->drained_cb)
        return;
    void (*cb)(void *) = s->drained_cb;
    s->drained_cb = NULL;
    cb(s->drained_arg);
}

static void ship_drop_all(shipper *s, const char *why)
{
    if (s->q.n > 0)
        ferry_warn("execution %s: dropping %zu log events: %s", s->execution_id, s->q.n, why);
    s->refused = 1;
    queue_drop_upto(&s->q, UINT64_MAX);
}

static void ship_on_retry(uv_timer_t *t)
{
    ship_kick(t->data);
}

static void ship_on_reply(void *arg, const agent_reply *r)
{
    shipper *s = arg;
    s->call = NULL;
    if (r->ok) {
        json_t *acked = json_object_get(r->json, "acked");
        uint64_t upto = json_is_integer(acked) && json_integer_value(acked) > 0
                            ? (uint64_t)json_integer_value(acked)
                            : 0;
        if (upto > s->last_seq)
            upto = s->last_seq;
        if (upto > s->acked) {
            s->acked = upto;
            s->stalls = 0;
            queue_drop_upto(&s->q, upto);
        } else if (++s->stalls >= SHIP_STALL_LIMIT) {
            /* ferryd keeps answering without storing this batch: it will not
             * change its mind, and the execution must still finish. */
            ferry_warn("execution %s: ferryd does not acknowledge log events %llu..%llu; "
                       "dropping them",
                       s->execution_id, (unsigned long long)s->acked + 1,
                       (unsigned long long)s->sent_upto);
            queue_drop_upto(&s->q, s->sent_upto);
            s->acked = s->sent_upto;
            s->stalls = 0;
        } else {
            uv_timer_start(&s->retry, ship_on_retry, SHIP_STALL_RETRY_MS, 0);
            return;
        }
    } else if (r->code == FERRY_ECANCELED) {
        ship_drop_all(s, "the agent gave up on ferryd");
    } else {
        char why[512];
        ship_drop_all(s, agent_reply_text(r, why, sizeof(why)));
    }
    ship_kick(s);
    ship_check_drained(s);
}

static void ship_kick(shipper *s)
{
    if (s->call || s->q.n == 0 || uv_is_active((uv_handle_t *)&s->retry))
        return;
    json_t *events = json_array();
    size_t bytes = 0;
    for (size_t i = 0; i < s->q.n && i < SHIP_BATCH_EVENTS; i++) {
        ship_event *ev = queue_at(&s->q, i);
        if (i > 0 && bytes + ev->len > SHIP_BATCH_BYTES)
            break;
        bytes += ev->len + 64;
        json_t *e = json_object();
        json_object_set_new(e, "seq", json_integer((json_int_t)ev->seq));
        json_object_set_new(e, "stream", json_string(stream_name(ev->stream)));
        json_object_set_new(e, "time", json_real(ev->time));
        json_object_set_new(e, "text", json_stringn(ev->text, ev->len));
        json_array_append_new(events, e);
        s->sent_upto = ev->seq;
    }
    json_t *body = json_object();
    json_object_set_new(body, "events", events);
    agent_call_spec spec = {.path = s->path, .body = body};
    s->call = agent_call_start(s->a, &spec, ship_on_reply, s);
    json_decref(body);
}

/* ---- lines ---- */

static void ship_event_add(shipper *s, ferry_stream stream, const char *text, size_t len)
{
    s->last_seq++;
    if (s->refused)
        return;
    ship_event ev = {.seq = s->last_seq, .stream = stream, .time = ferry_now()};
    ev.text = agent_utf8_clean(text, len, &ev.len);
    queue_push(&s->q, ev);
}

static void line_append(ship_line *l, const char *data, size_t len)
{
    if (l->len + len > l->cap) {
        l->cap = l->len + len + 256;
        l->buf = ferry_xrealloc(l->buf, l->cap);
    }
    memcpy(l->buf + l->len, data, len);
    l->len += len;
}

/* A complete line (without its "\n"; a "\r" before it goes too). */
static void line_emit(shipper *s, ferry_stream stream, ship_line *l)
{
    size_t n = l->len;
    if (n > 0 && l->buf[n - 1] == '\r')
        n--;
    ship_event_add(s, stream, l->buf, n);
    l->len = 0;
}

static ship_line *line_of(shipper *s, ferry_stream stream)
{
    int i = stream == FERRY_STREAM_STDOUT ? 0 : stream == FERRY_STREAM_STDERR ? 1 : 2;
    return &s->partial[i];
}

void shipper_output(shipper *s, ferry_stream stream, const char *data, size_t len)
{
    ship_line *l = line_of(s, stream);
    while (len > 0) {
        const char *nl = memchr(data, '\n', len);
        size_t seg = nl ? (size_t)(nl - data) : len;
        line_append(l, data, seg);
        /* Very long lines go out in pieces, cut between UTF-8 sequences. A
         * piece waits until more follows, so that a line of exactly the
         * limit is not followed by an empty one. */
        while (l->len > SHIP_MAX_LINE) {
            size_t cut = agent_utf8_cut(l->buf, l->len, SHIP_MAX_LINE);
            ship_event_add(s, stream, l->buf, cut);
            memmove(l->buf, l->buf + cut, l->len - cut);
            l->len -= cut;
        }
        if (nl) {
            line_emit(s, stream, l);
            seg++;
        }
        data += seg;
        len -= seg;
    }
    ship_kick(s);
}

void shipper_flush_partial(shipper *s)
{
    static const ferry_stream streams[] = {FERRY_STREAM_STDOUT, FERRY_STREAM_STDERR,
                                           FERRY_STREAM_STATUS};
    for (size_t i = 0; i < 3; i++)
        if (s->partial[i].len > 0)
            line_emit(s, streams[i], &s->partial[i]);
    ship_kick(s);
}

void shipper_status(shipper *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *text = NULL;
    if (vasprintf(&text, fmt, ap) < 0)
        abort();
    va_end(ap);
    for (char *p = text, *nl;; p = nl + 1) {
        nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        if (n > SHIP_MAX_LINE)
            n = agent_utf8_cut(p, n, SHIP_MAX_LINE);
        ship_event_add(s, FERRY_STREAM_STATUS, p, n);
        if (nl == NULL)
            break;
    }
    free(text);
    ship_kick(s);
}

void shipper_when_drained(shipper *s, void (*cb)(void *arg), void *arg)
{
    s->drained_cb = cb;
    s->drained_arg = arg;
    ship_kick(s);
    ship_check_drained(s);
}

uint64_t shipper_last_seq(const shipper *s)
{
    return s->last_seq;
}

/* ---- life ---- */

shipper *shipper_new(agent *a, const char *execution_id)
{
    shipper *s = ferry_xcalloc(1, sizeof(*s));
    s->a = a;
    s->execution_id = ferry_strdup(execution_id);
    s->path = ferry_asprintf("/v1/agent/executions/%s/events", execution_id);
    uv_timer_init(a->loop, &s->retry);
    s->retry.data = s;
    return s;
}

static void ship_closed(uv_handle_t *h)
{
    shipper *s = h->data;
    queue_drop_upto(&s->q, UINT64_MAX);
    free(s->q.v);
    for (size_t i = 0; i < 3; i++)
        free(s->partial[i].buf);
    free(s->execution_id);
    free(s->path);
    free(s);
}

void shipper_free(shipper *s)
{
    if (s == NULL)
        return;
    agent_call_cancel(s->call);
    s->call = NULL;
    s->drained_cb = NULL;
    uv_close((uv_handle_t *)&s->retry, ship_closed);
}
