/* The log store (core/state/logstore.c): events appended as records and served as
 * NDJSON, every query (after, before, tail, metadata), watchers, escaping,
 * records larger than a reader's window, recovery of a record cut by a crash
 * and the conversion of an earlier version's NDJSON logs. */
#include "test.h"

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "exec.h"
#include "logstore.h"
#include "util.h"

static ferryd d;

static ferry_exec *new_exec(void)
{
    ferry_exec *e = ferry_exec_new();
    ferry_uuid(e->id);
    e->status = FERRY_STATUS_STARTED; /* keeps its descriptor, as a running one does */
    e->log_count = 0;
    return e;
}

/* The NDJSON a query answers, parsed: an array of event objects. */
static json_t *query(const char *id, ferry_log_query q, int64_t *last)
{
    char *out = NULL;
    size_t len = 0;
    CHECK_INT(ferry_logstore_query(&d, id, &q, &out, &len, last), 0);
    CHECK(out != NULL && strlen(out) == len);
    json_t *events = json_array();
    for (char *p = out, *nl; p && (nl = strchr(p, '\n')) != NULL; p = nl + 1) {
        json_error_t err;
        json_t *ev = json_loadb(p, (size_t)(nl - p), 0, &err);
        if (ev == NULL)
            fprintf(stderr, "not JSON: %.*s (%s)\n", (int)(nl - p), p, err.text);
        CHECK(json_is_object(ev));
        json_array_append_new(events, ev);
    }
    CHECK(len == 0 || out[len - 1] == '\n');
    free(out);
    return events;
}

static const char *text_of(json_t *events, size_t k)
{
    return json_string_value(json_object_get(json_array_get(events, k), "text"));
}

static long long i_of(json_t *events, size_t k)
{
    return (long long)json_integer_value(json_object_get(json_array_get(events, k), "i"));
}

static void append(ferry_exec *e, const char *stream, const char *text, int64_t seq)
{
    CHECK_INT(ferry_logstore_append(&d, e, stream, 1764136918.25, text, strlen(text), seq), 0);
}

static void test_lines_and_queries(void)
{
    ferry_exec *e = new_exec();
    append(e, "status", "status: started", 0);
    append(e, "stdout", "epoch 1\n{\"loss\": 0.5}\nepoch 2", 1);
    append(e, "stderr", "warning", 2);
    append(e, "stdout", "{\"loss\": 0.25, \"acc\": 0.9}\n[1,2]\n{broken", 3);
    CHECK_INT(e->log_count, 8);
    CHECK(json_is_object(e->metadata));
    CHECK(json_real_value(json_object_get(e->metadata, "loss")) == 0.25);
    CHECK(json_real_value(json_object_get(e->metadata, "acc")) == 0.9);

    int64_t last = -1;
    json_t *all = query(e->id, (ferry_log_query){.tail = -1}, &last);
    CHECK_INT(json_array_size(all), 8);
    CHECK_INT(last, 8);
    for (size_t k = 0; k < json_array_size(all); k++)
        CHECK_INT(i_of(all, k), (long long)k + 1);
    CHECK_STR(text_of(all, 1), "epoch 1");
    CHECK_STR(text_of(all, 3), "epoch 2");
    CHECK_STR(text_of(all, 4), "warning");
    CHECK_STR(text_of(all, 7), "{broken");
    json_t *ev = json_array_get(all, 4);
    CHECK_STR(json_string_value(json_object_get(ev, "stream")), "stderr");
    CHECK_STR(json_string_value(json_object_get(ev, "time")), "2025-11-26T06:01:58.250Z");
    CHECK_INT(json_object_size(ev), 4); /* i, stream, time, text: the agent's seq stays inside */
    json_decref(all);

    json_t *after = query(e->id, (ferry_log_query){.after = 3, .tail = -1}, &last);
    CHECK_INT(json_array_size(after), 5);
    CHECK_INT(i_of(after, 0), 4);
    CHECK_INT(last, 8);
    json_decref(after);

    json_t *tail = query(e->id, (ferry_log_query){.tail = 2}, &last);
    CHECK_INT(json_array_size(tail), 2);
    CHECK_STR(text_of(tail, 0), "[1,2]");
    CHECK_INT(last, 8);
    json_decref(tail);

    json_t *before = query(e->id, (ferry_log_query){.before = 5, .tail = 2}, &last);
    CHECK_INT(json_array_size(before), 2);
    CHECK_INT(i_of(before, 0), 3);
    CHECK_INT(i_of(before, 1), 4);
    CHECK_INT(last, 4);
    json_decref(before);

    json_t *none = query(e->id, (ferry_log_query){.tail = 0}, &last);
    CHECK_INT(json_array_size(none), 0);
    CHECK_INT(last, 0);
    json_decref(none);
    none = query(e->id, (ferry_log_query){.after = 8, .tail = -1}, &last);
    CHECK_INT(json_array_size(none), 0);
    CHECK_INT(last, 8); /* nothing new: still `after` */
    json_decref(none);

    json_t *meta = query(e->id, (ferry_log_query){.metadata = 1, .tail = -1}, &last);
    CHECK_INT(json_array_size(meta), 2);
    CHECK_INT(i_of(meta, 0), 3);
    CHECK_INT(i_of(meta, 1), 6);
    CHECK_INT(last, 6);
    json_decref(meta);
    meta = query(e->id, (ferry_log_query){.metadata = 1, .tail = 1}, &last);
    CHECK_INT(json_array_size(meta), 1);
    CHECK_INT(i_of(meta, 0), 6);
    json_decref(meta);
    meta = query(e->id, (ferry_log_query){.metadata = 1, .after = 3, .tail = -1}, &last);
    CHECK_INT(json_array_size(meta), 1);
    json_decref(meta);
    meta = query(e->id, (ferry_log_query){.metadata = 1, .tail = 0}, &last);
    CHECK_INT(json_array_size(meta), 0);
    CHECK_INT(last, 0);
    json_decref(meta);

    /* A stream name a reader could not take back is refused, and nothing
     * is stored. */
    CHECK(ferry_logstore_append(&d, e, "std\"out", 1.0, "x", 1, 0) < 0);
    CHECK(ferry_logstore_append(&d, e, "averyveryverylongstream", 1.0, "x", 1, 0) < 0);
    CHECK_INT(e->log_count, 8);
    /* A log that was never written reads as empty. */
    none = query("00000000-0000-4000-8000-000000000000", (ferry_log_query){.tail = -1}, &last);
    CHECK_INT(json_array_size(none), 0);
    json_decref(none);
    ferry_logstore_close(e);
    ferry_exec_free(e);
}

/* Quotes, backslashes, control characters, NUL and invalid UTF-8 come back
 * as jansson reads them (invalid bytes as U+FFFD). */
static void test_escaping(void)
{
    ferry_exec *e = new_exec();
    static const char raw[] = "a \"q\" \\ \t\x01 \xc3\xa9 \xff end\0after";
    CHECK_INT(ferry_logstore_append(&d, e, "stdout", 1.0, raw, sizeof(raw) - 1, 1), 0);
    int64_t last;
    json_t *all = query(e->id, (ferry_log_query){.tail = -1}, &last);
    CHECK_INT(json_array_size(all), 1);
    json_t *text = json_object_get(json_array_get(all, 0), "text");
    static const char want[] = "a \"q\" \\ \t\x01 \xc3\xa9 \xef\xbf\xbd end\xef\xbf\xbd"
                               "after";
    CHECK_INT(json_string_length(text), sizeof(want) - 1);
    CHECK(memcmp(json_string_value(text), want, sizeof(want) - 1) == 0);
    json_decref(all);
    ferry_logstore_close(e);
    ferry_exec_free(e);
}

typedef struct seen {
    ferry_exec_watcher w;
    char buf[4096];
    size_t len;
    int calls;
} seen;

static void seen_event(ferry_exec_watcher *w, ferry_exec *e, const char *line, size_t len)
{
    (void)e;
    seen *s = (seen *)w;
    if (s->len + len < sizeof(s->buf)) {
        memcpy(s->buf + s->len, line, len);
        s->len += len;
    }
    s->calls++;
}

/* A watcher gets each event's lines as the NDJSON a query answers. */
static void test_watchers(void)
{
    ferry_exec *e = new_exec();
    append(e, "stdout", "before", 1);
    seen s = {.w.on_event = seen_event};
    ferry_exec_watch(e, &s.w);
    append(e, "stdout", "one\ntwo", 2);
    append(e, "status", "status: complete", 0);
    ferry_exec_unwatch(e, &s.w);
    CHECK_INT(s.calls, 2);
    char *out;
    size_t len;
    int64_t last;
    CHECK_INT(ferry_logstore_read(&d, e->id, 1, -1, &out, &len, &last), 0);
    CHECK_INT(s.len, len);
    CHECK(s.len == len && memcmp(s.buf, out, len) == 0);
    CHECK_CONTAINS(s.buf, "{\"i\":3,\"stream\":\"stdout\",");
    free(out);
    ferry_logstore_close(e);
    ferry_exec_free(e);
}

/* Records larger than a reader's window, among small ones: every line once,
 * in order, whatever the query. */
static void test_large_records(void)
{
    ferry_exec *e = new_exec();
    size_t lines = 30000, n = 0; /* 30,000 lines of 20 bytes: 600 KB in one event */
    char *big = ferry_xmalloc(lines * 20 + 1);
    for (size_t k = 0; k < lines; k++)
        n += (size_t)sprintf(big + n, "%s%018zu", k ? "\n" : "", k);
    for (int round = 0; round < 3; round++) {
        append(e, "stdout", "small", 1 + round * 2);
        CHECK_INT(ferry_logstore_append(&d, e, "stdout", 2.0, big, n, 2 + round * 2), 0);
    }
    free(big);
    int64_t total = 3 * (1 + (int64_t)lines), last;
    CHECK_INT(e->log_count, total);
    json_t *all = query(e->id, (ferry_log_query){.tail = -1}, &last);
    CHECK_INT(json_array_size(all), total);
    CHECK_INT(last, total);
    int in_order = 1;
    for (size_t k = 0; k < json_array_size(all); k++)
        in_order &= i_of(all, k) == (long long)k + 1;
    CHECK(in_order);
    CHECK_STR(text_of(all, (size_t)lines + 1), "small");
    CHECK_STR(text_of(all, (size_t)lines + 2), "000000000000000000");
    json_decref(all);
    json_t *tail = query(e->id, (ferry_log_query){.tail = 5}, &last);
    CHECK_INT(json_array_size(tail), 5);
    CHECK_STR(text_of(tail, 4), "000000000000029999");
    json_decref(tail);
    /* Piece by piece (a cursor): the same bytes, in whole lines. */
    char *whole;
    size_t whole_len;
    ferry_log_query all_q = {.tail = -1};
    CHECK_INT(ferry_logstore_query(&d, e->id, &all_q, &whole, &whole_len, &last), 0);
    ferry_log_cursor *c = NULL;
    CHECK_INT(ferry_logstore_cursor_open(&d, e->id, &all_q, &c), 0);
    size_t at = 0, pieces = 0;
    int more = 1, same = 1;
    while (c && more == 1) {
        char *piece;
        size_t n;
        more = ferry_logstore_cursor_next(c, 64 * 1024, &piece, &n);
        same &= at + n <= whole_len && memcmp(whole + at, piece, n) == 0;
        same &= n == 0 || piece[n - 1] == '\n';
        at += n;
        pieces += n > 0;
        free(piece);
    }
    CHECK_INT(more, 0);
    CHECK(same && at == whole_len);
    CHECK(pieces >= 3); /* whole records: three of ~2 MB of NDJSON, and small ones */
    CHECK_INT(ferry_logstore_cursor_last(c), total);
    ferry_logstore_cursor_close(c);
    free(whole);
    json_t *mid =
        query(e->id, (ferry_log_query){.after = 29990, .before = 30010, .tail = -1}, &last);
    CHECK_INT(json_array_size(mid), 19);
    CHECK_STR(text_of(mid, 11), "small"); /* i = 30002 */
    json_decref(mid);
    ferry_logstore_close(e);
    ferry_exec_free(e);
}

static char *log_path(const char *id, const char *ext, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s/logs/%s.%s", d.data_dir, id, ext);
    return buf;
}

/* A crash can cut the last record anywhere: it goes, the rest stays, and
 * the agent's seqs and the line count come back from the file. */
static void test_recovery(void)
{
    static const char *cuts[] = {"9", "9 1 stdout 2026-11-26T06:01:58.123Z 3 4",
                                 "9 1 stdout 2026-11-26T06:01:58.123Z 3 4\nli",
                                 "9 1 stdout 2026-11-26T06:01:58.123Z 3 4\nlin"};
    for (size_t c = 0; c < sizeof(cuts) / sizeof(*cuts); c++) {
        ferry_exec *e = new_exec();
        append(e, "stdout", "a\nb", 1);
        append(e, "stdout", "c", 2);
        ferry_logstore_close(e);
        char path[PATH_MAX];
        FILE *f = fopen(log_path(e->id, "log", path, sizeof(path)), "a");
        CHECK(f != NULL);
        fputs(cuts[c], f);
        fclose(f);
        ferry_exec *back = ferry_exec_new();
        memcpy(back->id, e->id, sizeof(back->id));
        back->log_count = -1;
        CHECK_INT(ferry_logstore_recover(&d, back), 0);
        CHECK_INT(back->log_count, 3);
        CHECK_INT(back->agent_seq, 2);
        /* Appends number on from what is stored. */
        back->status = FERRY_STATUS_STARTED;
        append(back, "stdout", "d", 3);
        int64_t last;
        json_t *all = query(e->id, (ferry_log_query){.tail = -1}, &last);
        CHECK_INT(json_array_size(all), 4);
        CHECK_STR(text_of(all, 3), "d");
        CHECK_INT(last, 4);
        json_decref(all);
        ferry_logstore_close(back);
        ferry_exec_free(back);
        ferry_exec_free(e);
    }
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

/* An earlier version's NDJSON log becomes records at start-up, once. */
static void test_conversion(void)
{
    char tmpl[] = "/tmp/ferry-logstore-old.XXXXXX";
    CHECK(mkdtemp(tmpl) != NULL);
    ferryd old = d;
    snprintf(d.data_dir, sizeof(d.data_dir), "%s", tmpl);
    char dir[PATH_MAX], path[PATH_MAX], path2[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s/logs", tmpl);
    CHECK_INT(ferry_file_mkdirs(dir, 0700), 0);
    static const char id[] = "11111111-2222-4333-8444-555555555555";
    write_text(log_path(id, "ndjson", path, sizeof(path)),
               "{\"i\":1,\"stream\":\"status\",\"time\":\"2026-11-26T06:01:58.123Z\","
               "\"text\":\"status: started\"}\n"
               "{\"i\":2,\"stream\":\"stdout\",\"time\":\"2026-11-26T06:01:59.000Z\","
               "\"text\":\"tab\\there \\\"q\\\" \\u00e9\",\"seq\":7}\n"
               "{\"i\":3,\"stream\":\"stdout\",\"time\":\"2026-11-26T06:02:00.000Z\","
               "\"text\":\"{\\\"loss\\\": 1}\",\"seq\":8}\n"
               "{\"i\":4,\"stream\":\"std"); /* cut by a crash of the old version */
    char err[256] = "";
    CHECK_INT(ferry_logstore_init(&d, err, sizeof(err)), 0);
    CHECK(access(path, F_OK) != 0); /* converted, then removed */
    int64_t last;
    json_t *all = query(id, (ferry_log_query){.tail = -1}, &last);
    CHECK_INT(json_array_size(all), 3);
    CHECK_STR(text_of(all, 1), "tab\there \"q\" \xc3\xa9");
    CHECK_STR(json_string_value(json_object_get(json_array_get(all, 2), "time")),
              "2026-11-26T06:02:00.000Z");
    json_decref(all);
    json_t *meta = query(id, (ferry_log_query){.metadata = 1, .tail = -1}, &last);
    CHECK_INT(json_array_size(meta), 1);
    json_decref(meta);
    ferry_exec *back = ferry_exec_new();
    memcpy(back->id, id, sizeof(id));
    back->log_count = -1;
    CHECK_INT(ferry_logstore_recover(&d, back), 0);
    CHECK_INT(back->log_count, 3);
    CHECK_INT(back->agent_seq, 8);
    ferry_exec_free(back);
    /* Once: a later start does not look again. */
    static const char id2[] = "11111111-2222-4333-8444-666666666666";
    write_text(log_path(id2, "ndjson", path2, sizeof(path2)), "{}\n");
    CHECK_INT(ferry_logstore_init(&d, err, sizeof(err)), 0);
    CHECK(access(path2, F_OK) == 0);
    ferry_rmtree(tmpl);
    d = old;
}

/* A log that cannot be converted stops the start, naming the file. */
static void test_conversion_error(void)
{
    char tmpl[] = "/tmp/ferry-logstore-bad.XXXXXX";
    CHECK(mkdtemp(tmpl) != NULL);
    ferryd old = d;
    snprintf(d.data_dir, sizeof(d.data_dir), "%s", tmpl);
    char dir[PATH_MAX], path[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s/logs", tmpl);
    CHECK_INT(ferry_file_mkdirs(dir, 0700), 0);
    /* A stream with a quote would make a record no reader takes back. */
    write_text(log_path("bad", "ndjson", path, sizeof(path)),
               "{\"i\":1,\"stream\":\"std\\\"out\",\"time\":\"2026-11-26T06:01:58.123Z\","
               "\"text\":\"x\"}\n");
    char err[512] = "";
    CHECK(ferry_logstore_init(&d, err, sizeof(err)) < 0);
    CHECK_CONTAINS(err, "bad.ndjson");
    CHECK(access(path, F_OK) == 0); /* kept as it was */
    ferry_rmtree(tmpl);
    d = old;
}

int main(void)
{
    char tmpl[] = "/tmp/ferry-logstore.XXXXXX";
    CHECK(mkdtemp(tmpl) != NULL);
    snprintf(d.data_dir, sizeof(d.data_dir), "%s", tmpl);
    char err[512];
    CHECK_INT(ferry_logstore_init(&d, err, sizeof(err)), 0);
    test_lines_and_queries();
    test_escaping();
    test_watchers();
    test_large_records();
    test_recovery();
    test_conversion();
    test_conversion_error();
    ferry_logstore_close_all(&d);
    ferry_rmtree(tmpl);
    TEST_MAIN_END();
}
