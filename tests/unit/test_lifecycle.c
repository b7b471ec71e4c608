/* The lifecycle's transition table, timestamps, status events and the rule
 * that terminal statuses never change, on a real ferryd state (SQLite and
 * log files in a temporary data dir, no environments). */
#include "test.h"

#include "daemon_fixture.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "db.h"
#include "exec.h"
#include "lifecycle.h"
#include "logstore.h"
#include "scheduler.h"
#include "util.h"

static ferryd d;

static ferry_exec *new_exec(const char *project)
{
    /* No scheduler environment: it stays queued. */
    return daemon_fixture_exec(&d, project, "nowhere", NULL, NULL);
}

static const char *status_of(const char *id)
{
    static char buf[32];
    ferry_exec *e;
    int owned;
    if (ferry_exec_find(&d, id, NULL, NULL, &e, &owned) < 0)
        return "(missing)";
    snprintf(buf, sizeof(buf), "%s", ferry_status_name(e->status));
    ferry_exec_release(e, owned);
    return buf;
}

static void test_happy_path(void)
{
    ferry_exec *e = new_exec("p");
    char id[37];
    memcpy(id, e->id, sizeof(id));
    CHECK_STR(status_of(id), "queued"); /* admitted at once: no quota */
    CHECK(e->queued_at > 0);
    CHECK_INT(ferry_lifecycle_transition(&d, e, FERRY_STATUS_STARTED, NULL, FERRY_NO_EXIT_CODE), 0);
    CHECK(e->started_at >= e->queued_at);
    CHECK_INT(ferry_lifecycle_finished(&d, e, 0, NULL), 0);
    ferry_db_commit(&d);
    CHECK_STR(status_of(id), "complete");
    /* The log holds every transition, in order. */
    char *log;
    size_t len;
    int64_t last;
    CHECK_INT(ferry_logstore_read(&d, id, 0, -1, &log, &len, &last), 0);
    const char *c = strstr(log, "status: created"), *q = strstr(log, "status: queued");
    const char *s = strstr(log, "status: started"), *k = strstr(log, "status: complete");
    CHECK(c && q && s && k && c < q && q < s && s < k);
    CHECK_INT(last, 4);
    free(log);
}

static void test_terminal_is_final(void)
{
    ferry_exec *e = new_exec("p");
    char id[37];
    memcpy(id, e->id, sizeof(id));
    ferry_lifecycle_transition(&d, e, FERRY_STATUS_STARTED, NULL, FERRY_NO_EXIT_CODE);
    CHECK_INT(ferry_lifecycle_finished(&d, e, 3, NULL), 0);
    ferry_exec *found;
    int owned;
    CHECK_INT(ferry_exec_find(&d, id, NULL, NULL, &found, &owned), 0);
    CHECK_STR(ferry_status_name(found->status), "error");
    CHECK_INT(found->exit_code, 3);
    CHECK_STR(found->status_reason, "exit code 3");
    /* No way out of a terminal status, through any entry point. */
    CHECK_INT(ferry_lifecycle_transition(&d, found, FERRY_STATUS_COMPLETE, NULL, 0), FERRY_ESTATE);
    CHECK_INT(ferry_lifecycle_request_stop(&d, found), FERRY_ESTATE);
    CHECK_INT(ferry_lifecycle_finished(&d, found, 0, NULL), FERRY_ESTATE);
    ferry_exec_release(found, owned);
    CHECK_STR(status_of(id), "error");
}

static void test_stop_paths(void)
{
    /* queued -> stopped at once */
    ferry_exec *q = new_exec("p");
    char qid[37];
    memcpy(qid, q->id, sizeof(qid));
    CHECK_INT(ferry_lifecycle_request_stop(&d, q), 0);
    CHECK_STR(status_of(qid), "stopped");
    /* started -> stopping -> stopped, whatever the exit code */
    ferry_exec *s = new_exec("p");
    char sid[37];
    memcpy(sid, s->id, sizeof(sid));
    ferry_lifecycle_transition(&d, s, FERRY_STATUS_STARTED, NULL, FERRY_NO_EXIT_CODE);
    CHECK_INT(ferry_lifecycle_request_stop(&d, s), 0);
    CHECK_STR(status_of(sid), "stopping");
    CHECK_INT(ferry_lifecycle_request_stop(&d, s), 0); /* twice is fine */
    CHECK_INT(ferry_lifecycle_finished(&d, s, 143, "stopped"), 0);
    CHECK_STR(status_of(sid), "stopped");
}

static void test_illegal_transitions(void)
{
    ferry_exec *e = new_exec("p");
    /* queued cannot complete without starting, nor go back to created */
    CHECK_INT(ferry_lifecycle_transition(&d, e, FERRY_STATUS_COMPLETE, NULL, 0), FERRY_ESTATE);
    CHECK_INT(ferry_lifecycle_transition(&d, e, FERRY_STATUS_CREATED, NULL, FERRY_NO_EXIT_CODE),
              FERRY_ESTATE);
    CHECK_INT(ferry_lifecycle_transition(&d, e, FERRY_STATUS_STOPPING, NULL, FERRY_NO_EXIT_CODE),
              FERRY_ESTATE);
    CHECK_STR(ferry_status_name(e->status), "queued");
    ferry_lifecycle_request_stop(&d, e);
}

static void test_counters(void)
{
    ferry_exec *a = new_exec("alpha");
    ferry_exec *b = new_exec("alpha");
    ferry_exec *c = new_exec("beta");
    CHECK_INT(b->counter, a->counter + 1);
    CHECK_INT(c->counter, 1);
    ferry_lifecycle_request_stop(&d, a);
    ferry_lifecycle_request_stop(&d, b);
    ferry_lifecycle_request_stop(&d, c);
}

/* A crash between writing log lines and committing agent_seq: the reloaded
 * execution must take the stored seqs from the log (else the agent's resend
 * is stored twice), and a half-written last line is cut. */
static void test_log_recovery_after_crash(void)
{
    ferry_exec *e = new_exec("p");
    ferry_lifecycle_transition(&d, e, FERRY_STATUS_STARTED, NULL, FERRY_NO_EXIT_CODE);
    for (int seq = 1; seq <= 5; seq++)
        CHECK_INT(ferry_logstore_append(&d, e, "stdout", 1.0, "line", 4, seq), 0);
    int64_t stored = e->log_count; /* 3 status events + 5 lines */
    ferry_logstore_close(e);
    char path[PATH_MAX + 64];
    snprintf(path, sizeof(path), "%s/logs/%s.log", d.data_dir, e->id);
    FILE *f = fopen(path, "a");
    CHECK(f != NULL);
    fputs("99 1 stdout 2026-11-26T06:01:58.123Z 6 4\nli", f); /* torn by the crash */
    fclose(f);
    ferry_exec *reloaded = ferry_exec_new();
    memcpy(reloaded->id, e->id, sizeof(reloaded->id));
    reloaded->log_count = -1;
    reloaded->agent_seq = 0; /* what the database held */
    CHECK_INT(ferry_logstore_recover(&d, reloaded), 0);
    CHECK_INT(reloaded->agent_seq, 5);
    CHECK_INT(reloaded->log_count, stored);
    char *log;
    size_t len;
    int64_t last;
    CHECK_INT(ferry_logstore_read(&d, e->id, 0, -1, &log, &len, &last), 0);
    size_t flen = 0;
    char *file = ferry_read_file(path, &flen);
    CHECK(file && flen > 0 && file[flen - 1] == '\n'); /* the torn record was cut from the file */
    free(file);
    CHECK(len > 0 && log[len - 1] == '\n');
    CHECK_INT(last, stored);
    free(log);
    ferry_exec_free(reloaded);
    ferry_lifecycle_request_stop(&d, e);
    ferry_lifecycle_finished(&d, e, 143, "stopped");
}

int main(void)
{
    daemon_fixture f;
    char err[512];
    if (daemon_fixture_dir(&f, &d, "lifecycle") < 0 || daemon_fixture_open(&f, &d, 0, NULL) < 0)
        TEST_MAIN_END();
    /* The scheduler follows the lifecycle as an observer: it admits. */
    CHECK_INT(ferry_scheduler_init(&d, err, sizeof(err)), 0);
    test_happy_path();
    test_terminal_is_final();
    test_stop_paths();
    test_illegal_transitions();
    test_counters();
    test_log_recovery_after_crash();
    uv_run(d.loop, UV_RUN_NOWAIT); /* frees what ended */
    CHECK_INT((long long)d.active.len, 0);
    daemon_fixture_close(&f, &d);
    TEST_MAIN_END();
}
