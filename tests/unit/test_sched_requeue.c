/* A worker lost while an execution was handed to it but not started
 * (issue 25, defect 4), on a real ferryd state with the "test" compute
 * plugin: an environment of min_workers = max_workers = 1 whose one worker
 * is restored from the workers table (registered, its instance unknown to
 * the plugin, so that its terminate answers "no such instance" and the
 * record goes on the next loop turns). The execution goes back to the queue
 * while the lost worker still fills the pool; once its record is removed, a
 * new worker must be launched for the queue and for min_workers. Launches
 * are delayed for ten minutes, so that nothing is spawned: the test sees
 * the launch being asked. */
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
#include "workerrows.h"

static ferryd d;

#define WORKER_ID "0b7e1c2a-5d41-4e8f-9a3b-2c6d8e0f1a2b"

static ferry_exec *new_exec(const char *env)
{
    return daemon_fixture_exec(&d, "p", env, NULL, NULL);
}

static const char *why(const ferry_exec *e)
{
    static char buf[512];
    if (ferry_scheduler_why(&d, e, buf, sizeof(buf)) < 0)
        return "(not waiting)";
    return buf;
}

/* A field of the pool's "workers" in GET /v1/environments. */
static long long pool_count(const char *field)
{
    json_t *envs = ferry_scheduler_envs_json(&d);
    json_t *pool = json_array_get(envs, 0);
    long long n = json_integer_value(json_object_get(json_object_get(pool, "workers"), field));
    json_decref(envs);
    return n;
}

/* Run the loop until `done` holds, for at most about two seconds. */
static int run_until(int (*done)(void))
{
    for (int i = 0; i < 200 && !done(); i++) {
        uv_run(d.loop, UV_RUN_NOWAIT);
        if (!done())
            usleep(10000);
    }
    return done();
}

static int lost_worker_gone(void)
{
    return ferry_map_get(&d.workers_by_id, WORKER_ID) == NULL;
}

static int pool_refilled(void)
{
    return pool_count("total") == 1;
}

static void test_requeue_after_loss(void)
{
    ferry_worker *w = ferry_map_get(&d.workers_by_id, WORKER_ID);
    CHECK(w != NULL);
    if (w == NULL)
        return;
    CHECK_INT(w->state, FERRY_WORKER_READY);
    ferry_exec *e = new_exec("pool");
    CHECK(e->worker == w);
    ferry_exec **work;
    size_t n;
    json_t *stop;
    ferry_scheduler_take_news(&d, w, &work, &n, &stop); /* its poll took it */
    CHECK_INT(n, 1);
    free(work);
    json_decref(stop);
    ferry_workers_lost(&d, w, "no heartbeat for 10 s");
    CHECK_INT(e->status, FERRY_STATUS_QUEUED);
    CHECK(e->worker == NULL);
    /* The worker being retired still fills the pool: no launch yet. */
    CHECK_INT(pool_count("total"), 1);
    CHECK_INT(pool_count("launching"), 0);
    CHECK(run_until(lost_worker_gone));
    /* Its record went: the queue and min_workers get a new worker. */
    CHECK(run_until(pool_refilled));
    CHECK_INT(pool_count("total"), 1);
    CHECK_INT(pool_count("launching"), 1);
    CHECK_CONTAINS(why(e), "waiting for a worker: launching 1 (pool 1 of max 1)");
    CHECK_INT(e->status, FERRY_STATUS_QUEUED);
    CHECK_INT(ferry_lifecycle_request_stop(&d, e), 0);
}

static void write_config(const char *path, const char *work_dir)
{
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (f == NULL)
        exit(1);
    fprintf(f,
            "default_environment = \"pool\";\n"
            "environments = (\n"
            "  { name = \"pool\"; compute = \"test\"; agent = \"fake\"; min_workers = 1;\n"
            "    max_workers = 1; launch_delay_ms = 600000; work_dir = \"%s\"; }\n"
            ");\n",
            work_dir);
    fclose(f);
}

/* The worker as a restart of ferryd finds it: registered, with an instance
 * that the plugin does not know. */
static void store_worker(void)
{
    ferry_worker_row row = {
        .id = WORKER_ID,
        .environment = "pool",
        .instance_id = "test-not-running",
        .state = "ready",
        .token_hash = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        .bootstrap_hash = "",
        .slots = 1,
    };
    CHECK_INT(ferry_workerrows_save(&d, &row), 0);
    ferry_db_commit(&d);
}

int main(void)
{
    const char *plugin_dir = getenv("FERRY_PLUGIN_DIR");
    CHECK(plugin_dir != NULL);
    if (plugin_dir == NULL)
        TEST_MAIN_END();
    daemon_fixture f;
    char err[1024] = "", work_dir[PATH_MAX];
    if (daemon_fixture_dir(&f, &d, "sched-requeue") < 0)
        TEST_MAIN_END();
    snprintf(d.server_url, sizeof(d.server_url), "http://127.0.0.1:1");
    snprintf(work_dir, sizeof(work_dir), "%s/workers", f.dir);
    write_config(f.conf, work_dir);
    if (daemon_fixture_open(&f, &d, 1, plugin_dir) < 0) /* test compute, local-process */
        TEST_MAIN_END();
    store_worker();
    CHECK_INT(ferry_scheduler_init(&d, err, sizeof(err)), 0);
    if (err[0])
        fprintf(stderr, "scheduler: %s\n", err);
    CHECK_INT(d.n_envs, 1);
    if (d.n_envs == 1)
        test_requeue_after_loss();
    uv_run(d.loop, UV_RUN_NOWAIT); /* frees what ended */
    CHECK_INT((long long)d.active.len, 0);
    d.stopping = 1;
    daemon_fixture_close(&f, &d);
    TEST_MAIN_END();
}
