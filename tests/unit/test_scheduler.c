/* The scheduler (core/sched/scheduler.c) on a real ferryd state: SQLite and
 * logs in a temporary data dir, a config file with static environments
 * (no compute plugin: nothing is launched, nothing goes on the network),
 * users with quotas, and workers that join with the environment's token
 * (ferry_workers_join, as an agent's registration does). Quota admission
 * order, the priority FIFO, GPU slots, and a lost worker. */
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

/* sha256("join") */
#define JOIN_SHA "58393216032be6257784ac0c6a73efb2a084e27b4cfff1e6acee7b7e6ab93b10"

typedef struct sched_exec_opts {
    const char *owner;
    int priority;
} sched_exec_opts;

static void set_owner_priority(ferry_exec *e, void *arg)
{
    const sched_exec_opts *o = arg;
    e->owner = o->owner ? ferry_strdup(o->owner) : NULL;
    e->priority = o->priority;
}

static ferry_exec *new_exec(const char *owner, const char *env, int priority)
{
    sched_exec_opts o = {owner, priority};
    return daemon_fixture_exec(&d, "p", env, set_owner_priority, &o);
}

static ferry_worker *join(const char *env, int slots)
{
    char *id = NULL, *token = NULL;
    CHECK_INT(ferry_workers_join(&d, env, "join", slots, &id, &token), 0);
    ferry_worker *w = id ? ferry_map_get(&d.workers_by_id, id) : NULL;
    CHECK(w != NULL);
    CHECK(w && w->state == FERRY_WORKER_READY);
    CHECK(token && ferry_workers_by_token(&d, token) == w);
    free(id);
    free(token);
    return w;
}

/* The commands ran and exited 0, as the worker would report. */
static void complete(ferry_exec *e)
{
    CHECK_INT(ferry_lifecycle_transition(&d, e, FERRY_STATUS_STARTED, NULL, FERRY_NO_EXIT_CODE), 0);
    CHECK_INT(ferry_lifecycle_finished(&d, e, 0, NULL), 0);
}

static const char *why(const ferry_exec *e)
{
    static char buf[512];
    if (ferry_scheduler_why(&d, e, buf, sizeof(buf)) < 0)
        return "(not waiting)";
    return buf;
}

/* What a worker's poll would be handed now, in order. */
static size_t take_news(ferry_worker *w, ferry_exec **out, size_t cap)
{
    ferry_exec **work;
    size_t n;
    json_t *stop;
    ferry_scheduler_take_news(&d, w, &work, &n, &stop);
    for (size_t i = 0; i < n && i < cap; i++)
        out[i] = work[i];
    free(work);
    json_decref(stop);
    return n;
}

/* alice: quota 2 overall. Her third and fourth wait in `created`, and are
 * admitted in the order she made them as slots free up; someone without a
 * quota is never held back by her. */
static void test_quota_order(void)
{
    ferry_exec *a[4];
    for (int i = 0; i < 4; i++)
        a[i] = new_exec("alice", "cpu", 0);
    CHECK_INT(a[0]->status, FERRY_STATUS_QUEUED);
    CHECK_INT(a[1]->status, FERRY_STATUS_QUEUED);
    CHECK_INT(a[2]->status, FERRY_STATUS_CREATED);
    CHECK_INT(a[3]->status, FERRY_STATUS_CREATED);
    CHECK_STR(why(a[2]), "waiting for quota (2 of 2 in flight)");
    CHECK_STR(why(a[3]), "waiting for quota (2 of 2 in flight)");
    ferry_exec *free_user = new_exec("carol", "cpu", 0); /* not configured: no quota */
    CHECK_INT(free_user->status, FERRY_STATUS_QUEUED);
    /* A stop of a queued one frees a slot: the oldest waiting goes first. */
    CHECK_INT(ferry_lifecycle_request_stop(&d, a[1]), 0);
    CHECK_INT(a[2]->status, FERRY_STATUS_QUEUED);
    CHECK_INT(a[3]->status, FERRY_STATUS_CREATED);
    /* Stopping one still waiting for quota frees nothing. */
    ferry_exec *a4 = new_exec("alice", "cpu", 0);
    CHECK_INT(a4->status, FERRY_STATUS_CREATED);
    CHECK_INT(ferry_lifecycle_request_stop(&d, a[3]), 0);
    CHECK_INT(a4->status, FERRY_STATUS_CREATED);
    /* A start keeps it in flight; its end lets the next in. */
    CHECK_INT(ferry_lifecycle_transition(&d, a[0], FERRY_STATUS_STARTED, NULL, FERRY_NO_EXIT_CODE),
              0);
    CHECK_INT(a4->status, FERRY_STATUS_CREATED);
    CHECK_INT(ferry_lifecycle_finished(&d, a[0], 0, NULL), 0);
    CHECK_INT(a4->status, FERRY_STATUS_QUEUED);
    ferry_lifecycle_request_stop(&d, a[2]);
    ferry_lifecycle_request_stop(&d, a4);
    ferry_lifecycle_request_stop(&d, free_user);
}

/* bob: quota 1 in "other" only. */
static void test_env_quota(void)
{
    ferry_exec *o1 = new_exec("bob", "other", 0);
    ferry_exec *o2 = new_exec("bob", "other", 0);
    ferry_exec *c1 = new_exec("bob", "cpu", 0);
    CHECK_INT(o1->status, FERRY_STATUS_QUEUED);
    CHECK_INT(o2->status, FERRY_STATUS_CREATED);
    CHECK_STR(why(o2), "waiting for quota in environment 'other' (1 of 1 in flight)");
    /* His created list is one FIFO: what waits at its head holds back the
     * rest, whatever their environment. */
    CHECK_INT(c1->status, FERRY_STATUS_CREATED);
    CHECK_INT(ferry_lifecycle_request_stop(&d, o1), 0);
    CHECK_INT(o2->status, FERRY_STATUS_QUEUED);
    CHECK_INT(c1->status, FERRY_STATUS_QUEUED);
    ferry_lifecycle_request_stop(&d, o2);
    ferry_lifecycle_request_stop(&d, c1);
}

/* One worker with one slot: the running one is never pre-empted; then the
 * priority FIFO, then the normal one, each in order. */
static void test_priority_fifo(void)
{
    ferry_exec *first = new_exec(NULL, "cpu", 0);
    CHECK(first->worker == NULL);
    CHECK_CONTAINS(why(first), "waiting for a worker");
    ferry_worker *w = join("cpu", 1);
    CHECK(first->worker == w); /* the join kicked the queue */
    CHECK_CONTAINS(why(first), "handed to worker");
    ferry_exec *n1 = new_exec(NULL, "cpu", 0);
    ferry_exec *n2 = new_exec(NULL, "cpu", 0);
    ferry_exec *p1 = new_exec(NULL, "cpu", 1);
    ferry_exec *p2 = new_exec(NULL, "cpu", 1);
    CHECK(n1->worker == NULL && p1->worker == NULL);
    CHECK_STR(why(n2), "waiting for a worker: all 1 busy (pool 1 of max 2), 3 ahead in the queue");
    CHECK_STR(why(p2), "waiting for a worker: all 1 busy (pool 1 of max 2), 1 ahead in the queue");
    ferry_exec *got[4];
    CHECK_INT(take_news(w, got, 4), 1);
    CHECK(got[0] == first);
    CHECK_INT(take_news(w, got, 4), 0); /* handed once */
    const ferry_exec *order[] = {p1, p2, n1, n2};
    ferry_exec *running = first;
    for (int i = 0; i < 4; i++) {
        complete(running);
        running = (ferry_exec *)order[i];
        CHECK(running->worker == w);
        CHECK_INT(take_news(w, got, 4), 1);
        CHECK(got[0] == running);
    }
    complete(running);
    CHECK_INT(w->n_assigned, 0);
    ferry_workers_terminate(&d, w, "test done"); /* a static worker: its record goes at once */
    CHECK(ferry_map_get(&d.workers_by_id, w->id) == NULL);
}

/* gpus = 2: the worker takes two at once (whatever slots it asks for),
 * each with its own GPU; the third gets the GPU that was freed. */
static void test_gpu_slots(void)
{
    ferry_worker *w = join("gpu", 8);
    CHECK_INT(w->slots, 2);
    ferry_exec *g1 = new_exec(NULL, "gpu", 0);
    ferry_exec *g2 = new_exec(NULL, "gpu", 0);
    ferry_exec *g3 = new_exec(NULL, "gpu", 0);
    CHECK(g1->worker == w && g2->worker == w && g3->worker == NULL);
    CHECK_STR(g1->gpus, "0");
    CHECK_STR(g2->gpus, "1");
    CHECK_INT(ferry_worker_free_slots(w), 0);
    json_t *envs = ferry_scheduler_envs_json(&d);
    json_t *gpu = json_array_get(envs, 2);
    CHECK_STR(json_string_value(json_object_get(gpu, "name")), "gpu");
    CHECK_INT(json_integer_value(json_object_get(json_object_get(gpu, "workers"), "busy")), 1);
    CHECK_INT(json_integer_value(json_object_get(gpu, "queued")), 1);
    json_decref(envs);
    complete(g1);
    CHECK(g3->worker == w);
    CHECK_STR(g3->gpus, "0");
    CHECK_INT(g3->gpu_index, 0);
    complete(g2);
    complete(g3);
    CHECK_INT(ferry_worker_free_slots(w), 2);
    ferry_workers_terminate(&d, w, "test done");
}

/* A lost worker: what had started there ends in error, what had not goes
 * back in line, at its head, and another worker takes it. */
static void test_lost_worker(void)
{
    ferry_worker *w1 = join("cpu", 2);
    ferry_exec *ran = new_exec(NULL, "cpu", 0);
    ferry_exec *handed = new_exec(NULL, "cpu", 0);
    ferry_exec *waits = new_exec(NULL, "cpu", 0);
    CHECK(ran->worker == w1 && handed->worker == w1 && waits->worker == NULL);
    char ran_id[37];
    memcpy(ran_id, ran->id, sizeof(ran_id));
    CHECK_INT(ferry_lifecycle_transition(&d, ran, FERRY_STATUS_STARTED, NULL, FERRY_NO_EXIT_CODE),
              0);
    ferry_workers_lost(&d, w1, "no heartbeat for 60 s");
    CHECK(ferry_map_get(&d.workers_by_id, w1->id) == NULL); /* static: retired at once */
    ferry_exec *found;
    int owned;
    CHECK_INT(ferry_exec_find(&d, ran_id, NULL, NULL, &found, &owned), 0);
    CHECK_INT(found->status, FERRY_STATUS_ERROR);
    CHECK_STR(found->status_reason, "worker lost: no heartbeat for 60 s");
    ferry_exec_release(found, owned);
    CHECK_INT(handed->status, FERRY_STATUS_QUEUED);
    CHECK(handed->worker == NULL && handed->worker_id == NULL);
    CHECK_INT(waits->status, FERRY_STATUS_QUEUED);
    /* Only one slot: the one handed out before goes first. */
    ferry_worker *w2 = join("cpu", 1);
    CHECK(handed->worker == w2);
    CHECK(waits->worker == NULL);
    complete(handed);
    CHECK(waits->worker == w2);
    complete(waits);
    ferry_workers_terminate(&d, w2, "test done");
}

static void write_config(const char *path)
{
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (f == NULL)
        exit(1);
    fprintf(f,
            "default_environment = \"cpu\";\n"
            "environments = (\n"
            "  { name = \"cpu\"; compute = \"static\"; max_workers = 2; join_token_sha256 = "
            "\"%s\"; },\n"
            "  { name = \"other\"; compute = \"static\"; join_token_sha256 = \"%s\"; },\n"
            "  { name = \"gpu\"; compute = \"static\"; gpus = 2; join_token_sha256 = \"%s\"; }\n"
            ");\n"
            "users = (\n"
            "  { name = \"alice\"; token_sha256 = \"%064d\"; quota = 2; },\n"
            "  { name = \"bob\"; token_sha256 = \"%064d\"; quotas = { other = 1; }; }\n"
            ");\n",
            JOIN_SHA, JOIN_SHA, JOIN_SHA, 1, 2);
    fclose(f);
}

int main(void)
{
    char hash[65];
    ferry_sha256_hex("join", 4, hash);
    CHECK_STR(hash, JOIN_SHA);
    const char *plugin_dir = getenv("FERRY_PLUGIN_DIR");
    CHECK(plugin_dir != NULL);
    if (plugin_dir == NULL)
        TEST_MAIN_END();
    daemon_fixture f;
    char err[1024] = "";
    if (daemon_fixture_dir(&f, &d, "scheduler") < 0)
        TEST_MAIN_END();
    write_config(f.conf);
    if (daemon_fixture_open(&f, &d, 1, plugin_dir) < 0) /* the environments' runtime */
        TEST_MAIN_END();
    CHECK_INT(ferry_scheduler_init(&d, err, sizeof(err)), 0);
    if (err[0])
        fprintf(stderr, "scheduler: %s\n", err);
    CHECK_INT(d.n_envs, 3);
    if (d.n_envs != 3)
        TEST_MAIN_END();
    test_quota_order();
    test_env_quota();
    test_priority_fifo();
    test_gpu_slots();
    test_lost_worker();
    uv_run(d.loop, UV_RUN_NOWAIT); /* frees what ended */
    CHECK_INT((long long)d.active.len, 0);
    daemon_fixture_close(&f, &d);
    TEST_MAIN_END();
}
