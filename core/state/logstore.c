/* Execution logs: one append-only file of records per execution,
 * <data>/logs/<uuid>.log, served as NDJSON and pushed to watchers as written.
 *
 * A record is one event as it arrived: an agent's chunk of lines, or one of
 * ferryd's status lines:
 *
 *   "<i> <lines> <stream> <time> <seq> <length>\n" <length bytes of text> "\n"
 *
 * i: the number of its first line; lines: how many lines the text holds
 * (joined by "\n"); time: RFC 3339, as served; seq: the agent's seq of the
 * event, 0 for ferryd's own; text: the bytes the commands wrote.
 *
 * Why not NDJSON on disk: at hundreds of MB/s, the keys, the escaping and a
 * time on every line made the file 1.75x the output, and writing it was most
 * of ferryd's work. A reader formats only the lines it asks for, and skips
 * over the text of the records it does not want.
 *
 * Logs written as NDJSON (<uuid>.ndjson) by earlier versions are converted
 * once, at start-up (logstore__convert_all).
 */
#include "logstore.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "log.h"
#include "text.h"
#include "util.h"

/* A head line is short: numbers, a stream name and a time. */
#define LOGSTORE__HEAD_MAX 128
/* How much a reader reads at once: many small records per read; when only
 * heads are wanted, little more than one. */
#define LOGSTORE__WINDOW (256 * 1024)
#define LOGSTORE__HEAD_WINDOW 4096
/* Marks a logs folder whose NDJSON files were all converted. */
#define LOGSTORE__CONVERTED ".records-v1"

typedef struct logstore__rec {
    int64_t i, lines, seq;
    uint64_t off;    /* where the record starts */
    size_t head_len; /* its head line, with the "\n" */
    size_t len;      /* bytes of text */
    char stream[16];
    char when[40];
} logstore__rec;

static void logstore__path(ferryd *d, const char *id, const char *ext, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s/logs/%s.%s", d->data_dir, id, ext);
}

static char *logstore__put(char *p, const char *s, size_t n)
{
    memcpy(p, s, n);
    return p + n;
}

/* Decimal digits of v (printf costs more than the rest of a line). */
static char *logstore__put_i64(char *p, int64_t v)
{
    char tmp[24];
    int n = 0;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u > 0);
    if (v < 0)
        *p++ = '-';
    while (n > 0)
        *p++ = tmp[--n];
    return p;
}

/* ---- NDJSON, as served ---- */

/* Whether a line of text is a metadata point: a JSON object. */
static json_t *logstore__metadata_point(const char *text, size_t len)
{
    if (len < 2 || text[0] != '{')
        return NULL;
    json_t *point = json_loadb(text, len, 0, NULL);
    if (json_is_object(point))
        return point;
    json_decref(point);
    return NULL;
}

static int logstore__is_stdout(const logstore__rec *h)
{
    return strcmp(h->stream, "stdout") == 0;
}

/* {"i":N,"stream":S,"time":T,"text":X}\n for the lines numbered from..to
 * of a record (only the metadata points among them with `metadata_only`),
 * appended to `out`; *last becomes the i of the last one written. */
static void logstore__ndjson(ferry_buf *out, const logstore__rec *h, const char *text, int64_t from,
                             int64_t to, int metadata_only, int64_t *last)
{
    size_t stream_len = strlen(h->stream), when_len = strlen(h->when);
    if (metadata_only && !logstore__is_stdout(h))
        return;
    const char *line = text, *end = text + h->len;
    for (int64_t i = h->i; i <= to && line != NULL; i++) {
        const char *nl = memchr(line, '\n', (size_t)(end - line));
        size_t n = nl ? (size_t)(nl - line) : (size_t)(end - line);
        int wanted = i >= from;
        if (wanted && metadata_only) {
            json_t *point = logstore__metadata_point(line, n);
            wanted = point != NULL;
            json_decref(point);
        }
        if (wanted) {
            /* The keys, i and the time; the text escapes to <= 6x. */
            ferry_xcheck(ferry_buf_reserve(out, 64 + stream_len + when_len + n * 6));
            char *p = out->data + out->len;
            p = logstore__put(p, "{\"i\":", 5);
            p = logstore__put_i64(p, i);
            p = logstore__put(p, ",\"stream\":\"", 11);
            p = logstore__put(p, h->stream, stream_len);
            p = logstore__put(p, "\",\"time\":\"", 10);
            p = logstore__put(p, h->when, when_len);
            p = logstore__put(p, "\",\"text\":\"", 10);
            p += ferry_json_escape(line, n, p);
            p = logstore__put(p, "\"}\n", 3);
            out->len = (size_t)(p - out->data);
            *last = i;
        }
        line = nl ? nl + 1 : NULL;
    }
}

int ferry_logstore_line_is_metadata(const char *line, size_t len)
{
    /* Cheap checks first: inside "text" every quote is escaped, so these
     * keys can only be the event's own. */
    static const char so[] = ",\"stream\":\"stdout\",", tx[] = ",\"text\":\"{";
    if (memmem(line, len, so, sizeof(so) - 1) == NULL ||
        memmem(line, len, tx, sizeof(tx) - 1) == NULL)
        return 0;
    /* The same test as for stored lines, on the unescaped text. */
    json_t *ev = json_loadb(line, len, 0, NULL);
    const json_t *text = json_object_get(ev, "text");
    json_t *point = json_is_string(text) ? logstore__metadata_point(json_string_value(text),
                                                                    json_string_length(text))
                                         : NULL;
    int yes = point != NULL;
    json_decref(point);
    json_decref(ev);
    return yes;
}

/* ---- records ---- */

/* The head line's length, or FERRY_ETOOBIG when it does not fit. */
static int logstore__head_format(char *buf, size_t cap, const logstore__rec *h)
{
    int n = snprintf(buf, cap, "%lld %lld %s %s %lld %zu\n", (long long)h->i, (long long)h->lines,
                     h->stream, h->when, (long long)h->seq, h->len);
    return n > 0 && (size_t)n < cap ? n : FERRY_ETOOBIG;
}

/* One space-separated word of a head line into `out` (< cap bytes). */
static const char *logstore__word(const char *p, const char *end, char *out, size_t cap)
{
    size_t n = 0;
    while (p < end && *p != ' ' && n + 1 < cap)
        out[n++] = *p++;
    out[n] = '\0';
    if (n == 0 || (p < end && *p != ' '))
        return NULL;
    return p < end ? p + 1 : p;
}

static const char *logstore__number(const char *p, const char *end, int64_t min, int64_t *v)
{
    char word[24], *stop;
    p = logstore__word(p, end, word, sizeof(word));
    if (p == NULL)
        return NULL;
    errno = 0;
    long long x = strtoll(word, &stop, 10);
    if (*stop != '\0' || errno != 0 || x < min)
        return NULL;
    *v = x;
    return p;
}

/* The bytes a stream name and a time may hold: they go into the served
 * JSON unescaped. */
#define LOGSTORE__STREAM_CHARS "abcdefghijklmnopqrstuvwxyz"
#define LOGSTORE__TIME_CHARS "0123456789-:.TZ"

static int logstore__only(const char *s, const char *allowed)
{
    return s[0] != '\0' && s[strspn(s, allowed)] == '\0';
}

/* "<i> <lines> <stream> <time> <seq> <length>" (no "\n"). */
static int logstore__head_parse(const char *p, const char *end, logstore__rec *h)
{
    int64_t len = 0;
    p = logstore__number(p, end, 1, &h->i);
    p = p ? logstore__number(p, end, 1, &h->lines) : NULL;
    p = p ? logstore__word(p, end, h->stream, sizeof(h->stream)) : NULL;
    p = p ? logstore__word(p, end, h->when, sizeof(h->when)) : NULL;
    p = p ? logstore__number(p, end, 0, &h->seq) : NULL;
    p = p ? logstore__number(p, end, 0, &len) : NULL;
    if (p != end || !logstore__only(h->stream, LOGSTORE__STREAM_CHARS) ||
        !logstore__only(h->when, LOGSTORE__TIME_CHARS))
        return 0;
    h->len = (size_t)len;
    return 1;
}

/* Reads records through a window of the file, so that a walk over many
 * small records costs few reads and one over large ones skips their text.
 * Only what the file held when the reader began is read: an append in
 * progress is not. */
typedef struct logstore__reader {
    int fd;
    uint64_t size;
    char *buf;
    size_t cap, len;
    uint64_t at;     /* the file offset of buf[0] */
    size_t prefetch; /* read at least this much at once */
    int error;       /* the FERRY_E* code of a failed read */
} logstore__reader;

/* Bytes [off, off + n) of the file, or NULL. */
static const char *logstore__reader_at(logstore__reader *r, uint64_t off, size_t n)
{
    if (off + n > r->size)
        return NULL;
    if (off >= r->at && off + n <= r->at + r->len)
        return r->buf + (off - r->at);
    size_t want = n > r->prefetch ? n : r->prefetch;
    if (want > r->size - off)
        want = (size_t)(r->size - off);
    if (want > r->cap) {
        r->cap = want;
        free(r->buf);
        r->buf = ferry_xmalloc(r->cap);
    }
    r->at = off;
    r->len = 0;
    while (r->len < want) {
        ssize_t got = pread(r->fd, r->buf + r->len, want - r->len, (off_t)(off + r->len));
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0) {
            r->error = got < 0 ? ferry_from_errno(errno) : 0;
            return NULL;
        }
        r->len += (size_t)got;
    }
    return r->buf;
}

/* The record at `off`: 1; 0 at the end; FERRY_EPROTO when what is there is
 * no whole record (a crash cut it, or the file is damaged). */
static int logstore__reader_head(logstore__reader *r, uint64_t off, logstore__rec *h)
{
    if (off >= r->size)
        return 0;
    size_t avail =
        r->size - off < LOGSTORE__HEAD_MAX ? (size_t)(r->size - off) : LOGSTORE__HEAD_MAX;
    const char *p = logstore__reader_at(r, off, avail);
    const char *nl = p ? memchr(p, '\n', avail) : NULL;
    if (nl == NULL || !logstore__head_parse(p, nl, h))
        return FERRY_EPROTO;
    h->off = off;
    h->head_len = (size_t)(nl - p) + 1;
    return off + h->head_len + h->len + 1 <= r->size ? 1 : FERRY_EPROTO;
}

/* The text of a record whose head was read, or NULL. */
static const char *logstore__reader_text(logstore__reader *r, const logstore__rec *h)
{
    const char *text = logstore__reader_at(r, h->off + h->head_len, h->len + 1);
    return text && text[h->len] == '\n' ? text : NULL;
}

static uint64_t logstore__next(const logstore__rec *h)
{
    return h->off + h->head_len + h->len + 1;
}

static int logstore__reader_open(logstore__reader *r, const char *path)
{
    memset(r, 0, sizeof(*r));
    r->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (r->fd < 0)
        return ferry_from_errno(errno);
    struct stat st;
    if (fstat(r->fd, &st) != 0) {
        int e = ferry_from_errno(errno);
        close(r->fd);
        return e;
    }
    r->size = (uint64_t)st.st_size;
    r->prefetch = LOGSTORE__WINDOW;
    return 0;
}

static void logstore__reader_close(logstore__reader *r)
{
    if (r->fd >= 0)
        close(r->fd);
    free(r->buf);
}

/* ---- writing ---- */

static int logstore__writev_all(int fd, struct iovec *iov, int n)
{
    while (n > 0) {
        ssize_t w = writev(fd, iov, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return ferry_from_errno(errno);
        while (n > 0 && (size_t)w >= iov->iov_len) {
            w -= (ssize_t)iov->iov_len;
            iov++;
            n--;
        }
        if (n > 0) {
            iov->iov_base = (char *)iov->iov_base + w;
            iov->iov_len -= (size_t)w;
        }
    }
    return 0;
}

/* Appends one record: its head, then the text as it came (no copy). A
 * write that fails part-way (ENOSPC on a full disk) is cut off again, so
 * that the file ends with a whole record and the next append, once there
 * is room, is readable after it (a reader stops at a torn record). */
static int logstore__write_record(int fd, const logstore__rec *h, const char *text)
{
    char head[LOGSTORE__HEAD_MAX];
    int n = logstore__head_format(head, sizeof(head), h);
    if (n < 0)
        return FERRY_EINVAL;
    struct iovec iov[3] = {{.iov_base = head, .iov_len = (size_t)n},
                           {.iov_base = (void *)text, .iov_len = h->len},
                           {.iov_base = "\n", .iov_len = 1}};
    off_t end = lseek(fd, 0, SEEK_END); /* O_APPEND: where this record starts */
    int rc = logstore__writev_all(fd, iov, 3);
    if (rc < 0 && end >= 0 && ftruncate(fd, end) != 0)
        ferry_warn("log: cannot cut a record a failed write left: %s", strerror(errno));
    return rc;
}

static int logstore__open(ferryd *d, ferry_exec *e)
{
    if (e->log_fd >= 0)
        return 0;
    char path[PATH_MAX];
    logstore__path(d, e->id, "log", path, sizeof(path));
    e->log_fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (e->log_fd < 0) {
        ferry_error("log of %s: %s: %s", e->id, path, strerror(errno));
        return FERRY_EIO;
    }
    return 0;
}

/* Whether a line of the text starts with "{" (memchr is much faster than
 * memmem's search for "\n{"). */
static int logstore__brace_starts_a_line(const char *text, size_t len)
{
    for (const char *p = text, *end = text + len; (p = memchr(p, '{', (size_t)(end - p))) != NULL;
         p++)
        if (p == text || p[-1] == '\n')
            return 1;
    return 0;
}

/* Counts the lines of a text and takes the metadata points among them. */
static int64_t logstore__scan_lines(ferry_exec *e, const char *text, size_t len, int is_stdout)
{
    int64_t lines = 1 + (int64_t)ferry_count_byte(text, len, '\n');
    /* A metadata point is a line that starts with "{": most chunks have none. */
    if (!is_stdout || !logstore__brace_starts_a_line(text, len))
        return lines;
    for (const char *line = text, *end = text + len; line != NULL;) {
        const char *nl = memchr(line, '\n', (size_t)(end - line));
        size_t n = nl ? (size_t)(nl - line) : (size_t)(end - line);
        json_t *point = logstore__metadata_point(line, n);
        if (point) {
            if (e->metadata == NULL)
                e->metadata = json_object();
            json_object_update(e->metadata, point);
            e->metadata_dirty = 1;
            json_decref(point);
        }
        line = nl ? nl + 1 : NULL;
    }
    return lines;
}

/* Watchers that want lines (a `wait` wants only the end) get them as NDJSON. */
static void logstore__push(ferryd *d, ferry_exec *e, const logstore__rec *h, const char *text)
{
    const ferry_exec_watcher *w = e->watchers;
    while (w && w->on_event == NULL)
        w = w->next;
    if (w == NULL)
        return;
    /* Reused: a fresh buffer per event costs page faults at 200 MB/s. */
    ferry_buf out = {.data = d->log_buf, .cap = d->log_buf_cap};
    int64_t last = 0;
    logstore__ndjson(&out, h, text, h->i, h->i + h->lines - 1, 0, &last);
    d->log_buf = out.data;
    d->log_buf_cap = out.cap;
    for (ferry_exec_watcher *each = e->watchers, *next; each; each = next) {
        next = each->next; /* a watcher may remove itself */
        if (each->on_event)
            each->on_event(each, e, out.data, out.len);
    }
}

int ferry_logstore_append(ferryd *d, ferry_exec *e, const char *stream, double time,
                          const char *text, size_t len, int64_t agent_seq)
{
    int rc = logstore__open(d, e);
    if (rc < 0)
        return rc;
    if (e->log_count < 0) /* loaded at start-up: number on from what is stored */
        ferry_logstore_recover(d, e);
    logstore__rec h = {.i = e->log_count + 1, .seq = agent_seq > 0 ? agent_seq : 0, .len = len};
    snprintf(h.stream, sizeof(h.stream), "%s", stream);
    if (!logstore__only(h.stream, LOGSTORE__STREAM_CHARS) || strlen(stream) >= sizeof(h.stream))
        return FERRY_EINVAL; /* a reader would take the record for a damaged one */
    ferry_time_format(time, h.when, sizeof(h.when));
    h.lines = logstore__scan_lines(e, text, len, logstore__is_stdout(&h));
    rc = logstore__write_record(e->log_fd, &h, text);
    if (rc < 0) {
        ferry_error("log of %s: write: %s", e->id, ferry_strerror(rc));
        return rc == FERRY_ENOSPC ? FERRY_ENOSPC : FERRY_EIO; /* ENOSPC: retry later */
    }
    e->log_count += h.lines;
    /* Only running executions write often; a waiting one keeps no descriptor,
     * so 100,000 queued executions do not need 100,000 open files. */
    if (e->status != FERRY_STATUS_STARTED && e->status != FERRY_STATUS_STOPPING)
        ferry_logstore_close(e);
    logstore__push(d, e, &h, text);
    return 0;
}

void ferry_logstore_close_all(ferryd *d)
{
    free(d->log_buf);
    d->log_buf = NULL;
    d->log_buf_cap = 0;
}

void ferry_logstore_close(ferry_exec *e)
{
    if (e->log_fd >= 0)
        close(e->log_fd);
    e->log_fd = -1;
}

/* ---- reading ---- */

/* The i of the last stored line (0 for none). Only the heads are read:
 * large records are skipped over. */
static int64_t logstore__last_i(logstore__reader *r)
{
    logstore__rec h;
    int64_t last = 0;
    r->prefetch = LOGSTORE__HEAD_WINDOW;
    for (uint64_t off = 0; logstore__reader_head(r, off, &h) > 0; off = logstore__next(&h))
        last = h.i + h.lines - 1;
    r->prefetch = LOGSTORE__WINDOW;
    return last;
}

/* The lines numbered from..to of the records from *off on, formatted into
 * `out` until it holds `max` bytes or more (whole records) or the range
 * ends; *off moves past the records read. With `starts`, where each line
 * begins in `out` (to keep only the last `tail` of them). 1: more may
 * follow; 0: the end; a FERRY_E* code. */
static int logstore__range(logstore__reader *r, uint64_t *off, int64_t from, int64_t to,
                           int metadata_only, size_t max, ferry_buf *out, size_t **starts,
                           size_t *n_starts, int64_t *last)
{
    logstore__rec h;
    size_t cap = starts ? *n_starts : 0;
    while (from <= to && out->len < max && logstore__reader_head(r, *off, &h) > 0) {
        if (h.i > to)
            break;
        *off = logstore__next(&h);
        if (h.i + h.lines - 1 < from)
            continue;
        const char *text = logstore__reader_text(r, &h);
        if (text == NULL)
            break;
        size_t before = out->len;
        logstore__ndjson(out, &h, text, from, to, metadata_only, last);
        for (size_t at = before; starts && at < out->len; at++) {
            FERRY_XGROW(*starts, cap, *n_starts + 1);
            (*starts)[(*n_starts)++] = at;
            at = (size_t)((char *)memchr(out->data + at, '\n', out->len - at) - out->data);
        }
        if (h.i + h.lines - 1 >= to)
            return 0;
    }
    if (r->error < 0)
        return r->error;
    return from <= to && out->len >= max ? 1 : 0;
}

struct ferry_log_cursor {
    logstore__reader r;
    char *id;
    uint64_t off;
    int64_t from, to, last;
    int metadata, done;
    ferry_buf answer; /* metadata with tail: the whole answer, made at open */
};

/* Metadata points with a tail: which are the last N is known only once all
 * are found, so the answer is made at once (points are few). */
static int logstore__cursor_metadata_tail(ferry_log_cursor *c, int64_t tail)
{
    size_t *starts = NULL, n = 0;
    int rc = logstore__range(&c->r, &c->off, c->from, c->to, 1, SIZE_MAX, &c->answer, &starts, &n,
                             &c->last);
    if (rc >= 0 && n > (size_t)tail) {
        size_t cut = tail > 0 ? starts[n - (size_t)tail] : c->answer.len;
        memmove(c->answer.data, c->answer.data + cut, c->answer.len - cut);
        c->answer.len -= cut;
        if (c->answer.len == 0)
            c->last = c->from - 1; /* none: still `after` */
    }
    free(starts);
    return rc < 0 ? rc : 0;
}

int ferry_logstore_cursor_open(ferryd *d, const char *id, const ferry_log_query *q,
                               ferry_log_cursor **out)
{
    char path[PATH_MAX];
    logstore__path(d, id, "log", path, sizeof(path));
    ferry_log_cursor *c = ferry_xcalloc(1, sizeof(*c));
    c->id = ferry_strdup(id);
    c->last = q->after;
    c->metadata = q->metadata;
    int rc = logstore__reader_open(&c->r, path);
    if (rc == FERRY_ENOENT) {
        c->done = 1; /* nothing written yet */
        *out = c;
        return 0;
    }
    if (rc == 0) {
        c->from = q->after + 1;
        c->to = logstore__last_i(&c->r);
        if (q->before > 0 && q->before - 1 < c->to)
            c->to = q->before - 1;
        if (!q->metadata && q->tail >= 0 && c->to - q->tail + 1 > c->from)
            c->from = c->to - q->tail + 1; /* the last `tail` lines: known from the heads */
        rc = c->r.error;
    }
    if (rc == 0 && q->metadata && q->tail >= 0) {
        rc = logstore__cursor_metadata_tail(c, q->tail);
        c->done = 1;
    }
    if (rc < 0) {
        ferry_error("log of %s: %s: %s", id, path, ferry_strerror(rc));
        ferry_logstore_cursor_close(c);
        return FERRY_EIO;
    }
    *out = c;
    return 0;
}

int ferry_logstore_cursor_next(ferry_log_cursor *c, size_t max, char **out, size_t *out_len)
{
    ferry_buf buf = c->answer;
    ferry_buf_init(&c->answer);
    int rc = 0;
    if (!c->done) {
        rc = logstore__range(&c->r, &c->off, c->from, c->to, c->metadata, max, &buf, NULL, NULL,
                             &c->last);
        c->done = rc <= 0;
    }
    *out = ferry_buf_take(&buf, out_len);
    ferry_xcheck(*out ? 0 : FERRY_ENOMEM);
    if (rc < 0) {
        ferry_error("log of %s: %s", c->id, ferry_strerror(rc));
        return FERRY_EIO;
    }
    return c->done ? 0 : 1;
}

int64_t ferry_logstore_cursor_last(const ferry_log_cursor *c)
{
    return c->last;
}

void ferry_logstore_cursor_close(ferry_log_cursor *c)
{
    if (c == NULL)
        return;
    logstore__reader_close(&c->r);
    ferry_buf_free(&c->answer);
    free(c->id);
    free(c);
}

int ferry_logstore_query(ferryd *d, const char *id, const ferry_log_query *q, char **out,
                         size_t *out_len, int64_t *last)
{
    ferry_log_cursor *c = NULL;
    *out = NULL;
    *out_len = 0;
    *last = q->after;
    int rc = ferry_logstore_cursor_open(d, id, q, &c);
    if (rc == 0)
        rc = ferry_logstore_cursor_next(c, SIZE_MAX, out, out_len);
    if (c)
        *last = ferry_logstore_cursor_last(c);
    ferry_logstore_cursor_close(c);
    return rc < 0 ? rc : 0;
}

int ferry_logstore_read(ferryd *d, const char *id, int64_t after, int64_t tail, char **out,
                        size_t *out_len, int64_t *last)
{
    ferry_log_query q = {.after = after, .tail = tail};
    return ferry_logstore_query(d, id, &q, out, out_len, last);
}

int ferry_logstore_recover(ferryd *d, ferry_exec *e)
{
    char path[PATH_MAX];
    logstore__path(d, e->id, "log", path, sizeof(path));
    e->log_count = 0;
    logstore__reader r;
    int rc = logstore__reader_open(&r, path);
    if (rc < 0) {
        logstore__reader_close(&r);
        return rc == FERRY_ENOENT ? 0 : FERRY_EIO;
    }
    logstore__rec h;
    int64_t max_seq = 0;
    uint64_t off = 0;
    r.prefetch = LOGSTORE__HEAD_WINDOW;
    while ((rc = logstore__reader_head(&r, off, &h)) > 0) {
        if (h.seq > max_seq)
            max_seq = h.seq;
        e->log_count = h.i + h.lines - 1;
        off = logstore__next(&h);
    }
    logstore__reader_close(&r);
    if (r.error < 0) {
        ferry_error("log of %s: %s: %s", e->id, path, ferry_strerror(r.error));
        return FERRY_EIO;
    }
    if (off < r.size) { /* a record cut by a crash */
        ferry_warn("log of %s: cutting %llu bytes that are no whole record", e->id,
                   (unsigned long long)(r.size - off));
        if (truncate(path, (off_t)off) != 0)
            ferry_warn("log of %s: cannot cut: %s", e->id, strerror(errno));
    }
    /* The log is written before agent_seq is committed: after a crash it
     * may hold events the database does not know were stored. */
    if (max_seq > e->agent_seq)
        e->agent_seq = max_seq;
    return 0;
}

/* ---- logs of earlier versions ---- */

/* One NDJSON event line of an earlier version as a record of one line. */
static int logstore__convert_line(int fd, const char *line, size_t len)
{
    json_t *ev = json_loadb(line, len, 0, NULL);
    const json_t *text = json_object_get(ev, "text");
    const char *stream = json_string_value(json_object_get(ev, "stream"));
    const char *when = json_string_value(json_object_get(ev, "time"));
    json_int_t i = json_integer_value(json_object_get(ev, "i"));
    int rc = FERRY_EINVAL;
    if (json_is_string(text) && stream && when && i > 0 && strlen(stream) < 16 &&
        strlen(when) < 40 && logstore__only(stream, LOGSTORE__STREAM_CHARS) &&
        logstore__only(when, LOGSTORE__TIME_CHARS)) {
        logstore__rec h = {.i = i,
                           .lines = 1,
                           .seq = json_integer_value(json_object_get(ev, "seq")),
                           .len = json_string_length(text)};
        snprintf(h.stream, sizeof(h.stream), "%s", stream);
        snprintf(h.when, sizeof(h.when), "%s", when);
        rc = logstore__write_record(fd, &h, json_string_value(text));
    }
    json_decref(ev);
    return rc;
}

/* <id>.ndjson -> <id>.log, through a temporary file and a rename. */
static int logstore__convert(const char *dir, const char *name)
{
    char from[PATH_MAX], tmp[PATH_MAX], to[PATH_MAX];
    size_t stem = strlen(name) - strlen(".ndjson");
    snprintf(from, sizeof(from), "%s/%s", dir, name);
    snprintf(tmp, sizeof(tmp), "%s/%.*s.log.tmp", dir, (int)stem, name);
    snprintf(to, sizeof(to), "%s/%.*s.log", dir, (int)stem, name);
    size_t len = 0;
    char *all = ferry_read_file(from, &len);
    if (all == NULL)
        return ferry_from_errno(errno);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    int rc = fd < 0 ? ferry_from_errno(errno) : 0;
    /* Whole lines only: a last line without "\n" was cut by a crash. */
    for (char *p = all, *nl; rc == 0 && (nl = memchr(p, '\n', len - (size_t)(p - all))); p = nl + 1)
        rc = logstore__convert_line(fd, p, (size_t)(nl - p));
    if (fd >= 0 && (fsync(fd) != 0 || close(fd) != 0) && rc == 0)
        rc = ferry_from_errno(errno);
    free(all);
    if (rc == 0 && rename(tmp, to) != 0)
        rc = ferry_from_errno(errno);
    if (rc == 0)
        unlink(from);
    else
        unlink(tmp);
    return rc;
}

static int logstore__is_ndjson(const char *name)
{
    size_t n = strlen(name);
    return n > 7 && strcmp(name + n - 7, ".ndjson") == 0;
}

/* Once per data folder: the marker file says it was done. */
static int logstore__convert_all(const char *dir, char *err, size_t err_cap)
{
    char marker[PATH_MAX];
    snprintf(marker, sizeof(marker), "%s/%s", dir, LOGSTORE__CONVERTED);
    if (access(marker, F_OK) == 0)
        return 0;
    DIR *dh = opendir(dir);
    if (dh == NULL) {
        snprintf(err, err_cap, "%s: %s", dir, strerror(errno));
        return FERRY_EIO;
    }
    int converted = 0, rc = 0;
    for (struct dirent *de; rc == 0 && (de = readdir(dh)) != NULL;) {
        if (!logstore__is_ndjson(de->d_name))
            continue;
        rc = logstore__convert(dir, de->d_name);
        if (rc < 0)
            snprintf(err, err_cap, "%s/%s: cannot convert it to this version's log format: %s", dir,
                     de->d_name, ferry_strerror(rc));
        converted++;
    }
    closedir(dh);
    if (rc < 0)
        return FERRY_EIO;
    if (converted > 0)
        ferry_info("converted %d execution logs to this version's format", converted);
    rc = ferry_write_file(marker, "", 0);
    if (rc < 0) {
        snprintf(err, err_cap, "%s: %s", marker, ferry_strerror(rc));
        return FERRY_EIO;
    }
    return 0;
}

int ferry_logstore_init(ferryd *d, char *err, size_t err_cap)
{
    char dir[PATH_MAX + 8];
    snprintf(dir, sizeof(dir), "%s/logs", d->data_dir);
    int rc = ferry_file_mkdirs(dir, 0700);
    if (rc < 0) {
        snprintf(err, err_cap, "%s: %s", dir, ferry_strerror(rc));
        return FERRY_EIO;
    }
    return logstore__convert_all(dir, err, err_cap);
}
