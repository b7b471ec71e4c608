/* Execution logs: append-only NDJSON files, pushed to watchers as written. */
#include "logstore.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "text.h"
#include "util.h"

static void logstore__path(ferryd *d, const char *id, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s/logs/%s.ndjson", d->data_dir, id);
}

int ferry_logstore_init(ferryd *d, char *err, size_t err_cap)
{
    char dir[PATH_MAX + 8];
    snprintf(dir, sizeof(dir), "%s/logs", d->data_dir);
    int rc = ferry_mkdirs(dir, 0700);
    if (rc < 0)
        snprintf(err, err_cap, "%s: %s", dir, strerror(-rc));
    return rc < 0 ? FERRY_EIO : 0;
}

static int logstore__open(ferryd *d, ferry_exec *e)
{
    if (e->log_fd >= 0)
        return 0;
    char path[PATH_MAX];
    logstore__path(d, e->id, path, sizeof(path));
    e->log_fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (e->log_fd < 0) {
        ferry_error("log of %s: %s: %s", e->id, path, strerror(errno));
        return FERRY_EIO;
    }
    return 0;
}

static void logstore__metadata(ferry_exec *e, const char *text, size_t len)
{
    if (len < 2 || text[0] != '{')
        return;
    json_t *point = json_loadb(text, len, 0, NULL);
    if (json_is_object(point)) {
        if (e->metadata == NULL)
            e->metadata = json_object();
        json_object_update(e->metadata, point);
        e->metadata_dirty = 1;
    }
    json_decref(point);
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

/* The NDJSON lines of `text`'s lines, numbered on from log_count, into one
 * buffer: {"i":N,"stream":S,"time":T,"text":X[,"seq":Q]}. The seq goes on
 * the last line of an agent's event, which is what a restart looks for. */
static char *logstore__format(ferryd *d, ferry_exec *e, const char *stream, double time,
                              const char *text, size_t len, int64_t agent_seq, size_t *out_len,
                              int64_t *n_lines)
{
    char when[40];
    ferry_time_format(time, when, sizeof(when));
    size_t when_len = strlen(when), stream_len = strlen(stream);
    int64_t lines = 1;
    for (const char *q = text; (q = memchr(q, '\n', (size_t)(text + len - q))) != NULL; q++)
        lines++;
    /* Per line: the keys, i, the time and seq; the text escapes to <= 6x. */
    size_t head = 96 + stream_len + when_len;
    /* Reused: a fresh buffer per event costs page faults at 200 MB/s. */
    size_t need = (size_t)lines * head + len * 6 + 1;
    if (need > d->log_buf_cap) {
        free(d->log_buf);
        d->log_buf_cap = need + need / 2;
        d->log_buf = ferry_xmalloc(d->log_buf_cap);
    }
    char *buf = d->log_buf, *p = buf;
    int stdout_stream = strcmp(stream, "stdout") == 0;
    const char *line = text, *end = text + len;
    for (int64_t k = 0; k < lines; k++) {
        const char *nl = memchr(line, '\n', (size_t)(end - line));
        size_t n = nl ? (size_t)(nl - line) : (size_t)(end - line);
        p = logstore__put(p, "{\"i\":", 5);
        p = logstore__put_i64(p, e->log_count + 1 + k);
        p = logstore__put(p, ",\"stream\":\"", 11);
        p = logstore__put(p, stream, stream_len);
        p = logstore__put(p, "\",\"time\":\"", 10);
        p = logstore__put(p, when, when_len);
        p = logstore__put(p, "\",\"text\":\"", 10);
        p += ferry_json_escape(line, n, p);
        *p++ = '"';
        if (agent_seq > 0 && k == lines - 1) {
            p = logstore__put(p, ",\"seq\":", 7);
            p = logstore__put_i64(p, agent_seq);
        }
        p = logstore__put(p, "}\n", 2);
        if (stdout_stream)
            logstore__metadata(e, line, n);
        line += n + 1;
    }
    *out_len = (size_t)(p - buf);
    *n_lines = lines;
    return buf;
}

int ferry_logstore_append(ferryd *d, ferry_exec *e, const char *stream, double time,
                          const char *text, size_t len, int64_t agent_seq)
{
    int rc = logstore__open(d, e);
    if (rc < 0)
        return rc;
    if (e->log_count < 0) /* loaded at start-up: number on from what is stored */
        ferry_logstore_recover(d, e);
    size_t n = 0;
    int64_t lines = 0;
    char *buf = logstore__format(d, e, stream, time, text, len, agent_seq, &n, &lines);
    rc = ferry_write_all(e->log_fd, buf, n);
    if (rc < 0) {
        ferry_error("log of %s: write: %s", e->id, strerror(-rc));
        return FERRY_EIO;
    }
    e->log_count += lines;
    /* Only running executions write often; a waiting one keeps no descriptor,
     * so 100,000 queued executions do not need 100,000 open files. */
    if (e->status != FERRY_STATUS_STARTED && e->status != FERRY_STATUS_STOPPING)
        ferry_logstore_close(e);
    for (ferry_exec_watcher *w = e->watchers, *next; w; w = next) {
        next = w->next; /* a watcher may remove itself */
        if (w->on_event)
            w->on_event(w, e, buf, n);
    }
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

/* The i of an NDJSON event line: it always starts with {"i":N. */
static int64_t logstore__line_i(const char *line)
{
    const char *p = strstr(line, "\"i\":");
    return p ? strtoll(p + 4, NULL, 10) : 0;
}

int ferry_logstore_line_is_metadata(const char *line, size_t len)
{
    /* Cheap checks first: inside "text" every quote is escaped, so these
     * keys can only be the event's own. */
    static const char so[] = ",\"stream\":\"stdout\",", tx[] = ",\"text\":\"{";
    if (memmem(line, len, so, sizeof(so) - 1) == NULL ||
        memmem(line, len, tx, sizeof(tx) - 1) == NULL)
        return 0;
    /* The same test as logstore__metadata, on the unescaped text. */
    json_t *ev = json_loadb(line, len, 0, NULL);
    const json_t *text = json_object_get(ev, "text");
    json_t *point = json_is_string(text)
                        ? json_loadb(json_string_value(text), json_string_length(text), 0, NULL)
                        : NULL;
    int yes = json_is_object(point);
    json_decref(point);
    json_decref(ev);
    return yes;
}

int ferry_logstore_query(ferryd *d, const char *id, const ferry_log_query *q, char **out,
                         size_t *out_len, int64_t *last)
{
    char path[PATH_MAX];
    logstore__path(d, id, path, sizeof(path));
    size_t len = 0;
    char *all = ferry_read_file(path, &len);
    *last = q->after;
    if (all == NULL) {
        *out = ferry_strdup("");
        *out_len = 0;
        return errno == ENOENT ? 0 : FERRY_EIO;
    }
    /* Only whole lines count: a line being written has no newline yet. */
    size_t end = len;
    while (end > 0 && all[end - 1] != '\n')
        end--;
    /* One pass: the selected lines move to the front of the buffer (never
     * past where they were read), their starts noted for the tail. */
    size_t w = 0, count = 0, cap = 0, *starts = NULL;
    for (size_t pos = 0; pos < end;) {
        char *nl = memchr(all + pos, '\n', end - pos);
        size_t n = (size_t)(nl - (all + pos)) + 1;
        int64_t i = logstore__line_i(all + pos);
        if (q->before > 0 && i >= q->before)
            break;
        if (i > q->after && (!q->metadata || ferry_logstore_line_is_metadata(all + pos, n - 1))) {
            if (count == cap) {
                cap = cap ? cap * 2 : 1024;
                starts = ferry_xrealloc(starts, cap * sizeof(*starts));
            }
            starts[count++] = w;
            if (w != pos)
                memmove(all + w, all + pos, n);
            w += n;
        }
        pos += n;
    }
    size_t from = 0;
    if (q->tail == 0)
        from = w;
    else if (q->tail > 0 && count > (size_t)q->tail)
        from = starts[count - (size_t)q->tail];
    if (w > from)
        *last = logstore__line_i(all + starts[count - 1]);
    free(starts);
    memmove(all, all + from, w - from);
    all[w - from] = '\0';
    *out = all;
    *out_len = w - from;
    return 0;
}

int ferry_logstore_read(ferryd *d, const char *id, int64_t after, int64_t tail, char **out,
                        size_t *out_len, int64_t *last)
{
    ferry_log_query q = {.after = after, .tail = tail};
    return ferry_logstore_query(d, id, &q, out, out_len, last);
}

/* The agent seq of an event line ({"i":..,...,"seq":N}), or 0. */
static int64_t logstore__line_seq(const char *line, size_t len)
{
    static const char key[] = "\"seq\":";
    const char *p = memmem(line, len, key, sizeof(key) - 1);
    return p ? strtoll(p + sizeof(key) - 1, NULL, 10) : 0;
}

int ferry_logstore_recover(ferryd *d, ferry_exec *e)
{
    char path[PATH_MAX];
    logstore__path(d, e->id, path, sizeof(path));
    size_t len = 0;
    char *all = ferry_read_file(path, &len);
    e->log_count = 0;
    if (all == NULL)
        return errno == ENOENT ? 0 : FERRY_EIO;
    size_t whole = len;
    while (whole > 0 && all[whole - 1] != '\n')
        whole--;
    if (whole < len && truncate(path, (off_t)whole) != 0) /* a line cut by a crash */
        ferry_warn("log of %s: cannot cut a partial last line: %s", e->id, strerror(errno));
    int64_t max_seq = 0;
    for (size_t pos = 0; pos < whole;) {
        char *nl = memchr(all + pos, '\n', whole - pos);
        size_t n = (size_t)(nl - (all + pos));
        int64_t seq = logstore__line_seq(all + pos, n);
        if (seq > max_seq)
            max_seq = seq;
        e->log_count++;
        pos += n + 1;
    }
    free(all);
    /* The log is written before agent_seq is committed: after a crash it
     * may hold events the database does not know were stored. */
    if (max_seq > e->agent_seq)
        e->agent_seq = max_seq;
    return 0;
}
