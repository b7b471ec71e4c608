/* Execution logs: append-only NDJSON files, pushed to watchers as written. */
#include "logstore.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
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

int ferry_logstore_append(ferryd *d, ferry_exec *e, const char *stream, double time,
                          const char *text, size_t len, int64_t agent_seq)
{
    int rc = logstore__open(d, e);
    if (rc < 0)
        return rc;
    if (e->log_count < 0) /* loaded at start-up: number on from what is stored */
        ferry_logstore_recover(d, e);
    char when[40];
    json_t *ev = json_object();
    json_object_set_new(ev, "i", json_integer(e->log_count + 1));
    json_object_set_new(ev, "stream", json_string(stream));
    json_object_set_new(ev, "time", json_string(ferry_time_format(time, when, sizeof(when))));
    json_object_set_new(ev, "text", json_stringn_nocheck(text, len));
    if (agent_seq > 0) /* lets a restart know what the agent need not resend */
        json_object_set_new(ev, "seq", json_integer(agent_seq));
    char *line = json_dumps(ev, JSON_COMPACT | JSON_ENSURE_ASCII);
    json_decref(ev);
    if (line == NULL)
        return FERRY_ENOMEM;
    size_t n = strlen(line);
    line[n] = '\n'; /* json_dumps leaves room for the NUL; the newline replaces it */
    rc = ferry_write_all(e->log_fd, line, n + 1);
    if (rc < 0) {
        ferry_error("log of %s: write: %s", e->id, strerror(-rc));
        free(line);
        return FERRY_EIO;
    }
    e->log_count++;
    /* Only running executions write often; a waiting one keeps no descriptor,
     * so 100,000 queued executions do not need 100,000 open files. */
    if (e->status != FERRY_STATUS_STARTED && e->status != FERRY_STATUS_STOPPING)
        ferry_logstore_close(e);
    if (strcmp(stream, "stdout") == 0)
        logstore__metadata(e, text, len);
    for (ferry_exec_watcher *w = e->watchers, *next; w; w = next) {
        next = w->next; /* a watcher may remove itself */
        if (w->on_event)
            w->on_event(w, e, line, n + 1);
    }
    free(line);
    return 0;
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

int ferry_logstore_read(ferryd *d, const char *id, int64_t after, int64_t tail, char **out,
                        size_t *out_len, int64_t *last)
{
    char path[PATH_MAX];
    logstore__path(d, id, path, sizeof(path));
    size_t len = 0;
    char *all = ferry_read_file(path, &len);
    *last = after;
    if (all == NULL) {
        *out = ferry_strdup("");
        *out_len = 0;
        return errno == ENOENT ? 0 : FERRY_EIO;
    }
    /* Only whole lines count: a line being written has no newline yet. */
    size_t end = len;
    while (end > 0 && all[end - 1] != '\n')
        end--;
    size_t start = 0;
    int64_t total = 0;
    for (size_t i = 0; i < end; i++)
        total += all[i] == '\n';
    int64_t skip = tail >= 0 && total > tail ? total - tail : 0;
    size_t pos = 0;
    for (int64_t k = 0; pos < end; k++) {
        char *nl = memchr(all + pos, '\n', end - pos);
        size_t next = (size_t)(nl - all) + 1;
        if (k < skip || logstore__line_i(all + pos) <= after)
            start = next;
        else
            break;
        pos = next;
    }
    if (end > start) {
        char *nl = all + end - 1;
        char *prev = nl;
        while (prev > all + start && prev[-1] != '\n')
            prev--;
        *last = logstore__line_i(prev);
    }
    memmove(all, all + start, end - start);
    all[end - start] = '\0';
    *out = all;
    *out_len = end - start;
    return 0;
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
