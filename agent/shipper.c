/* Log shipping: runtime output -> lines -> numbered events -> ferryd.
 *
 * Every event goes into the execution's spool (spool.c) first, and batches
 * are read back from it: ferryd may be away for minutes while the commands
 * print hundreds of MB, and the agent itself may be killed, so memory only
 * ever holds the batch in flight.
 *
 * Latency and throughput both matter, so batching is adaptive: when no batch
 * is in flight, whatever is spooled goes out at once (one line costs one
 * round trip); while one is in flight, new lines wait in the spool and the
 * next batch takes up to SPOOL_BATCH_EVENTS / SPOOL_BATCH_BYTES of them. A
 * failed batch is resent (same seqs; ferryd stores each seq once) until
 * acknowledged; a call that cannot reach ferryd retries with backoff for as
 * long as the agent keeps going, and what is left when it gives up stays in
 * the spool for its next start.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "log.h"
#include "text.h"
#include "util.h"

#define SHIP_MAX_LINE (64 * 1024)
/* Lines that arrive together travel as one event of up to SHIP_CHUNK bytes:
 * per-line costs (a spool record, a header, a seq) would otherwise cap
 * shipping far below what the disk and the network take. */
#define SHIP_CHUNK (128 * 1024)
#define SHIP_STALL_RETRY_MS 1000
#define SHIP_STALL_LIMIT 5

_Static_assert(SHIP_CHUNK + SHIP_MAX_LINE + SPOOL_EVENT_HEAD + 2 <= SPOOL_MAX_PAYLOAD,
               "a chunk and one more line must fit one spool record");

typedef struct ship_line {
    char *buf;
    size_t len, cap;
} ship_line;

/* Lines of one stream waiting to become one event. */
typedef struct ship_chunk {
    ship_line text; /* the lines joined by "\n" */
    size_t lines;
    ferry_stream stream;
    double time; /* of its first line */
} ship_chunk;

struct shipper {
    agent *a;
    char *execution_id;
    char *path;
    spool *sp;   /* NULL when it could not be opened */
    char *error; /* why the spool is unusable, or NULL */
    agent_call *call;
    uint64_t sent_upto;   /* last seq of the batch in flight */
    ship_line partial[3]; /* by stream - 1 */
    ship_chunk chunk;
    int refused; /* ferryd refused events: drop them from now on */
    int held;    /* the agent gave up on ferryd: the rest stays spooled */
    int stalls;  /* answers in a row that acknowledged nothing new */
    uv_timer_t retry;
    void (*drained_cb)(void *arg);
    void *drained_arg;
    void (*broken_cb)(void *arg, const char *why);
    void *broken_arg;
    char **secrets; /* masked in every line (shipper_mask) */
    size_t n_secrets;
    ship_line masked; /* scratch: a text with its secrets masked */
};

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

/* Nothing more will be sent: every event is acknowledged, or dropped, or
 * left in the spool for the agent's next start. */
static int ship_idle(const shipper *s)
{
    int waiting = s->sp && spool_pending(s->sp) && !s->refused && !s->held;
    return !waiting && !s->call && !uv_is_active((const uv_handle_t *)&s->retry);
}

static void ship_check_drained(shipper *s)
{
    if (!ship_idle(s) || !s->drained_cb)
        return;
    void (*cb)(void *) = s->drained_cb;
    s->drained_cb = NULL;
    cb(s->drained_arg);
}

static void ship_drop_all(shipper *s, const char *why)
{
    if (s->sp && spool_pending(s->sp)) {
        uint64_t n = spool_last_seq(s->sp) - spool_acked(s->sp);
        ferry_warn("execution %s: dropping %llu log events: %s", s->execution_id,
                   (unsigned long long)n, why);
        spool_drop_all(s->sp);
    }
    s->refused = 1;
}

static void ship_on_retry(uv_timer_t *t)
{
    ship_kick(t->data);
}

/* An answer that acknowledged nothing new: ask again a few times, then give
 * up on the batch, since the execution must still finish. */
static int ship_stalled(shipper *s)
{
    if (++s->stalls < SHIP_STALL_LIMIT) {
        uv_timer_start(&s->retry, ship_on_retry, SHIP_STALL_RETRY_MS, 0);
        return 1;
    }
    ferry_warn("execution %s: ferryd does not acknowledge log events %llu..%llu; dropping them",
               s->execution_id, (unsigned long long)spool_acked(s->sp) + 1,
               (unsigned long long)s->sent_upto);
    spool_ack(s->sp, s->sent_upto);
    s->stalls = 0;
    return 0;
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
        if (spool_ack(s->sp, upto))
            s->stalls = 0;
        else if (ship_stalled(s))
            return;
    } else if (r->code == FERRY_ECANCELED) {
        /* Not sent, not lost: the next start of the agent sends them. */
        s->held = 1;
    } else {
        char why[512];
        ship_drop_all(s, agent_reply_text(r, why, sizeof(why)));
    }
    ship_kick(s);
    ship_check_drained(s);
}

static void ship_kick(shipper *s)
{
    if (s->call || s->refused || s->held || s->sp == NULL || !spool_pending(s->sp) ||
        uv_is_active((uv_handle_t *)&s->retry))
        return;
    char *body = NULL;
    size_t len = 0;
    int rc = spool_batch(s->sp, SPOOL_BATCH_EVENTS, SPOOL_BATCH_BYTES, &body, &len, &s->sent_upto);
    if (rc < 0) {
        char why[256];
        snprintf(why, sizeof(why), "the spool cannot be read back: %s", ferry_strerror(rc));
        ship_drop_all(s, why);
        return;
    }
    if (rc == 0)
        return;
    agent_call_spec spec = {.path = s->path,
                            .take_body = body,
                            .raw_body_len = len,
                            .content_type = "application/x-ferry-events"};
    s->call = agent_call_start(s->a, &spec, ship_on_reply, s);
}

/* ---- lines ---- */

static void line_append(ship_line *l, const char *data, size_t len)
{
    FERRY_XGROW(l->buf, l->cap, l->len + len); /* a chunk grows line by line */
    memcpy(l->buf + l->len, data, len);
    l->len += len;
}

/* The waiting lines become one event in the spool. */
static void chunk_flush(shipper *s)
{
    ship_chunk *c = &s->chunk;
    if (c->lines > 0 && !s->refused && s->sp)
        spool_add(s->sp, stream_name(c->stream), c->time, c->text.buf, c->text.len);
    c->lines = 0;
    c->text.len = 0;
}

/* write(2) what was added, then send. A spool that cannot be written stops
 * the execution: its output would be lost without a word. */
static void ship_commit(shipper *s)
{
    chunk_flush(s);
    if (s->sp && s->error == NULL) {
        int rc = spool_flush(s->sp);
        if (rc != 0) {
            s->error = ferry_asprintf("could not write the log spool: %s", ferry_strerror(rc));
            ferry_error("execution %s: %s", s->execution_id, s->error);
            if (s->broken_cb)
                s->broken_cb(s->broken_arg, s->error);
        }
    }
    ship_kick(s);
}

/* The secret that starts at `p` (the longest), or 0. */
static size_t ship_secret_at(const shipper *s, const char *p, size_t left)
{
    size_t best = 0;
    for (size_t k = 0; k < s->n_secrets; k++) {
        size_t len = strlen(s->secrets[k]);
        if (len > best && len <= left && memcmp(p, s->secrets[k], len) == 0)
            best = len;
    }
    return best;
}

/* `text` with each secret replaced by "***", in s->masked; `text` itself
 * when none occurs (the common case costs one search per secret). Masking
 * never lengthens a text: secrets have 4 characters or more. */
static const char *ship_mask_text(shipper *s, const char *text, size_t *n)
{
    int found = 0;
    for (size_t k = 0; k < s->n_secrets && !found; k++)
        found = memmem(text, *n, s->secrets[k], strlen(s->secrets[k])) != NULL;
    if (!found)
        return text;
    s->masked.len = 0;
    for (size_t i = 0; i < *n;) {
        size_t hit = ship_secret_at(s, text + i, *n - i);
        if (hit) {
            line_append(&s->masked, "***", 3);
            i += hit;
        } else {
            line_append(&s->masked, text + i, 1);
            i++;
        }
    }
    *n = s->masked.len;
    return s->masked.buf;
}

void shipper_mask(shipper *s, const json_t *secrets)
{
    size_t i;
    const json_t *v;
    json_array_foreach(secrets, i, v)
    {
        const char *text = json_string_value(v);
        if (text == NULL || strlen(text) < 4)
            continue; /* "***" for every "a" would make the log unreadable */
        s->secrets = ferry_xrealloc(s->secrets, (s->n_secrets + 1) * sizeof(char *));
        s->secrets[s->n_secrets++] = ferry_strdup(text);
    }
}

/* Complete lines (joined by "\n", without the last one's), added to the
 * chunk of their stream. */
static void ship_lines_add(shipper *s, ferry_stream stream, double time, const char *text, size_t n,
                           size_t lines)
{
    ship_chunk *c = &s->chunk;
    if (s->n_secrets > 0)
        text = ship_mask_text(s, text, &n);
    if (c->lines > 0 && (c->stream != stream || c->text.len + 1 + n > SHIP_CHUNK))
        chunk_flush(s);
    if (c->lines == 0) {
        c->stream = stream;
        c->time = time;
    } else {
        line_append(&c->text, "\n", 1);
    }
    line_append(&c->text, text, n);
    c->lines += lines;
}

static void ship_line_add(shipper *s, ferry_stream stream, double time, const char *text, size_t n)
{
    ship_lines_add(s, stream, time, text, n, 1);
}

/* A line as the commands ended it: a "\r" before the "\n" goes too. */
static void line_emit(shipper *s, ferry_stream stream, double time, const char *text, size_t n)
{
    if (n > 0 && text[n - 1] == '\r')
        n--;
    ship_line_add(s, stream, time, text, n);
}

static ship_line *line_of(shipper *s, ferry_stream stream)
{
    int i = stream == FERRY_STREAM_STDOUT ? 0 : stream == FERRY_STREAM_STDERR ? 1 : 2;
    return &s->partial[i];
}

/* Very long lines go out in pieces, cut between UTF-8 sequences. A piece
 * waits until more follows, so that a line of exactly the limit is not
 * followed by an empty one. */
static void line_cut_long(shipper *s, ferry_stream stream, double time, ship_line *l)
{
    size_t done = 0;
    while (l->len - done > SHIP_MAX_LINE) {
        size_t cut = ferry_utf8_cut(l->buf + done, l->len - done, SHIP_MAX_LINE);
        ship_line_add(s, stream, time, l->buf + done, cut);
        done += cut;
    }
    memmove(l->buf, l->buf + done, l->len - done);
    l->len -= done;
}

/* The whole lines at the start of `data` join the chunk in one copy, when
 * nothing waits before them and none needs cutting or a "\r" removed (the
 * common case: a read of many short lines). Returns the bytes taken. */
static size_t ship_whole_lines(shipper *s, ferry_stream stream, double time, const char *data,
                               size_t len)
{
    const char *last_nl = memrchr(data, '\n', len);
    if (last_nl == NULL || line_of(s, stream)->len > 0)
        return 0;
    size_t n = (size_t)(last_nl - data); /* the lines, without the last "\n" */
    if (n > SHIP_MAX_LINE || memchr(data, '\r', n + 1) != NULL)
        return 0; /* a line may need cutting (too long to tell cheaply) or a "\r" removed */
    ship_lines_add(s, stream, time, data, n, ferry_count_byte(data, n, '\n') + 1);
    return n + 1;
}

void shipper_output(shipper *s, ferry_stream stream, const char *data, size_t len)
{
    ship_line *l = line_of(s, stream);
    /* One time for the whole chunk: its lines arrived together. */
    double time = ferry_now();
    size_t fast = ship_whole_lines(s, stream, time, data, len);
    data += fast;
    len -= fast;
    while (len > 0) {
        const char *nl = memchr(data, '\n', len);
        size_t seg = nl ? (size_t)(nl - data) : len;
        if (nl && l->len == 0 && seg <= SHIP_MAX_LINE) {
            line_emit(s, stream, time, data, seg); /* the common case: no partial */
        } else {
            line_append(l, data, seg);
            line_cut_long(s, stream, time, l);
            if (nl) {
                line_emit(s, stream, time, l->buf, l->len);
                l->len = 0;
            }
        }
        if (nl)
            seg++;
        data += seg;
        len -= seg;
    }
    ship_commit(s);
}

void shipper_flush_partial(shipper *s)
{
    static const ferry_stream streams[] = {FERRY_STREAM_STDOUT, FERRY_STREAM_STDERR,
                                           FERRY_STREAM_STATUS};
    double time = ferry_now();
    for (size_t i = 0; i < 3; i++) {
        if (s->partial[i].len > 0) {
            line_emit(s, streams[i], time, s->partial[i].buf, s->partial[i].len);
            s->partial[i].len = 0;
        }
    }
    ship_commit(s);
    /* The commands ended: what they printed is on disk before anything is
     * reported. */
    if (s->sp)
        spool_sync_now(s->sp);
}

void shipper_status(shipper *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *text = ferry_vasprintf(fmt, ap);
    va_end(ap);
    double time = ferry_now();
    for (char *p = text, *nl;; p = nl + 1) {
        nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        if (n > SHIP_MAX_LINE)
            n = ferry_utf8_cut(p, n, SHIP_MAX_LINE);
        ship_line_add(s, FERRY_STREAM_STATUS, time, p, n);
        if (nl == NULL)
            break;
    }
    free(text);
    ship_commit(s);
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
    return s->sp ? spool_last_seq(s->sp) : 0;
}

const char *shipper_error(const shipper *s)
{
    return s->error;
}

/* ---- life ---- */

shipper *shipper_new(agent *a, const char *execution_id, const char *dir,
                     void (*broken_cb)(void *arg, const char *why), void *arg)
{
    shipper *s = ferry_xcalloc(1, sizeof(*s));
    s->a = a;
    s->execution_id = ferry_strdup(execution_id);
    s->path = ferry_asprintf("/v1/agent/executions/%s/events", execution_id);
    s->broken_cb = broken_cb;
    s->broken_arg = arg;
    int rc = ferry_file_mkdirs(dir, 0755);
    if (rc == 0)
        rc = spool_open(a->loop, dir, &s->sp);
    if (rc != 0) {
        s->error =
            ferry_asprintf("could not open the log spool in %s: %s", dir, ferry_strerror(rc));
        ferry_error("execution %s: %s", execution_id, s->error);
    }
    uv_timer_init(a->loop, &s->retry);
    s->retry.data = s;
    return s;
}

static void ship_closed(uv_handle_t *h)
{
    shipper *s = h->data;
    for (size_t i = 0; i < 3; i++)
        free(s->partial[i].buf);
    free(s->chunk.text.buf);
    for (size_t i = 0; i < s->n_secrets; i++) {
        memset(s->secrets[i], 0, strlen(s->secrets[i]));
        free(s->secrets[i]);
    }
    free(s->secrets);
    free(s->masked.buf);
    free(s->execution_id);
    free(s->path);
    free(s->error);
    free(s);
}

void shipper_free(shipper *s)
{
    if (s == NULL)
        return;
    agent_call_cancel(s->call);
    s->call = NULL;
    s->drained_cb = NULL;
    spool_close(s->sp);
    s->sp = NULL;
    uv_close((uv_handle_t *)&s->retry, ship_closed);
}
