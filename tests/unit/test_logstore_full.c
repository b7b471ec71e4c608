/* A log append that the disk cuts off part-way (core/state/logstore.c;
 * issue 16, point 6). RLIMIT_FSIZE stands in for a full disk: the write of
 * a record stops after a few bytes, as ENOSPC stops it. The piece written
 * must go again, so that the file ends with a whole record: the append fails
 * (the agent sends the event again), and the same event appended once there
 * is room is read back after the earlier ones, every line once. */
#include "test.h"

#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "exec.h"
#include "logstore.h"
#include "util.h"

static ferryd d;

static long long log_size(const char *id)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/logs/%s.log", d.data_dir, id);
    struct stat st;
    return stat(path, &st) == 0 ? (long long)st.st_size : -1;
}

static void file_limit(rlim_t cur)
{
    struct rlimit rl;
    CHECK_INT(getrlimit(RLIMIT_FSIZE, &rl), 0);
    rl.rlim_cur = cur == RLIM_INFINITY ? rl.rlim_max : cur;
    CHECK_INT(setrlimit(RLIMIT_FSIZE, &rl), 0);
}

/* The texts of every stored event, joined by '|'. */
static char *stored(const char *id)
{
    char *out = NULL;
    size_t len = 0;
    int64_t last = 0;
    ferry_log_query q = {.tail = -1};
    CHECK_INT(ferry_logstore_query(&d, id, &q, &out, &len, &last), 0);
    ferry_buf texts = {0};
    for (char *p = out, *nl; p && (nl = strchr(p, '\n')) != NULL; p = nl + 1) {
        json_t *ev = json_loadb(p, (size_t)(nl - p), 0, NULL);
        const char *t = json_string_value(json_object_get(ev, "text"));
        if (texts.len)
            ferry_xcheck(ferry_buf_append(&texts, "|", 1));
        ferry_xcheck(ferry_buf_append(&texts, t ? t : "?", t ? strlen(t) : 1));
        json_decref(ev);
    }
    ferry_xcheck(ferry_buf_append(&texts, "", 1));
    free(out);
    return texts.data;
}

static void test_cut_append(void)
{
    ferry_exec *e = ferry_exec_new();
    ferry_uuid(e->id);
    e->status = FERRY_STATUS_STARTED;
    e->log_count = 0;
    CHECK_INT(ferry_logstore_append(&d, e, "stdout", 1.0, "one", 3, 1), 0);
    long long size = log_size(e->id);
    CHECK(size > 0);

    static const char text[] = "two: a line long enough to be cut off part-way";
    file_limit((rlim_t)size + 8); /* the disk takes 8 bytes more */
    CHECK(ferry_logstore_append(&d, e, "stdout", 2.0, text, sizeof(text) - 1, 2) < 0);
    file_limit(RLIM_INFINITY);
    CHECK_INT(log_size(e->id), size); /* the piece is gone */
    CHECK_INT(e->log_count, 1);

    /* Resent once there is room: after the first, once. */
    CHECK_INT(ferry_logstore_append(&d, e, "stdout", 2.0, text, sizeof(text) - 1, 2), 0);
    CHECK_INT(ferry_logstore_append(&d, e, "stdout", 3.0, "three", 5, 3), 0);
    char *all = stored(e->id);
    CHECK_STR(all, "one|two: a line long enough to be cut off part-way|three");
    free(all);
    ferry_logstore_close(e);

    /* A restart reads the same: three lines, the agent's seqs up to 3. */
    ferry_exec *back = ferry_exec_new();
    memcpy(back->id, e->id, sizeof(back->id));
    back->log_count = -1;
    CHECK_INT(ferry_logstore_recover(&d, back), 0);
    CHECK_INT(back->log_count, 3);
    CHECK_INT(back->agent_seq, 3);
    ferry_exec_free(back);
    ferry_exec_free(e);
}

int main(void)
{
    signal(SIGXFSZ, SIG_IGN); /* a write past the limit fails instead */
    char tmpl[] = "/tmp/ferry-logfull.XXXXXX";
    CHECK(mkdtemp(tmpl) != NULL);
    snprintf(d.data_dir, sizeof(d.data_dir), "%s", tmpl);
    char err[512];
    CHECK_INT(ferry_logstore_init(&d, err, sizeof(err)), 0);
    test_cut_append();
    ferry_logstore_close_all(&d);
    ferry_rmtree(tmpl);
    TEST_MAIN_END();
}
