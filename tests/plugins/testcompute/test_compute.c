/* test: a compute plugin for testing pools, retries and scale-down without a
 * cloud. Its "instances" are processes on the daemon's host, like `local`'s,
 * but a launch can be slowed down and made to fail the way a cloud's does.
 *
 * Settings:
 *   launch_delay_ms     time between the launch request and the process (default 0)
 *   failure_rate        0..1: share of launches that fail with FERRY_ECAPACITY
 *   fail_first          the first N launches fail (deterministic, for tests)
 *   agent               "real": ferry-agent (req->agent_path), the default;
 *                       "fake": ferry-fake-agent, which finishes every execution at once
 *   fake_agent_path     default: ferry-fake-agent next to req->agent_path
 *   fake_hold_file      with agent "fake": the agent that is handed work while
 *                       this file exists removes it and freezes (SIGSTOP) before
 *                       starting that work (ferry-fake-agent's hold_file)
 *   fake_run_ms         with agent "fake": each execution runs this long
 *                       (ferry-fake-agent's run_ms; default 0, done at once)
 *   slots               executions per agent; default: the launch request's
 *   work_dir, runtime   as for `local`: a real agent works in <work_dir>/<worker_id>
 *   terminate_grace_ms  SIGTERM to SIGKILL (default 10000)
 *
 * A stop of ferryd leaves the agents running, as `local` does, unless the
 * host's "retire_workers_on_stop" is "true".
 *
 * A failed launch is what EC2 answers when a zone has no capacity: retryable,
 * with a provider code, so the scheduler's backoff is exercised on the same
 * path a cloud plugin takes. Built into the plugin folder of the build tree
 * only; never installed.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <uv.h>

#include "ferry/agentproc.h"
#include "ferry/ferry.h"
#include "ferry/file.h"

#define TC_DEFAULT_GRACE_MS 10000

typedef struct tc_state tc_state;

/* A launch waiting for its delay; then it fails or becomes a child. */
typedef struct tc_pending {
    tc_state *st;
    struct tc_pending *prev, *next;
    uv_timer_t timer;
    ferry_op *op;
    char *worker_id, *daemon_id, *server_url, *token, *agent_path, *ca_file;
    int slots;
} tc_pending;

struct tc_state {
    ferry_plugin_ctx *ctx;
    const ferry_host_api *host;
    uv_loop_t *loop;
    char *work_dir;
    char *runtime;
    char *fake_agent_path; /* NULL: next to the real agent */
    char *fake_settings;   /* the fake agent's runtime settings, "KEY=VALUE" lines, or NULL */
    int fake;
    long delay_ms;
    double failure_rate;
    long fail_first;
    long slots; /* 0: the launch request's */
    long grace_ms;
    unsigned long launches; /* launch attempts so far */
    uint64_t rng;
    tc_pending *pending;
    ferry_agentproc *agents;
    size_t n_allocated; /* launches whose timers are not closed yet */
    int finishing;
};

/* ------------------------------------------------------------------------ */
/* Helpers                                                                  */

static void tc_complete(tc_state *st, ferry_op *op, int status, const char *instance_id,
                        const char *text, const ferry_error_detail *err)
{
    ferry_op_result r = {
        .struct_size = sizeof(r), .instance_id = instance_id, .text = text, .error = err};
    st->host->op_complete(op, status, &r);
}

static void tc_state_free(tc_state *st)
{
    free(st->work_dir);
    free(st->runtime);
    free(st->fake_agent_path);
    free(st->fake_settings);
    free(st);
}

static void tc_release(tc_state *st)
{
    if (--st->n_allocated == 0 && st->finishing)
        tc_state_free(st);
}

/* xorshift64*: failure_rate needs no quality, only independence from the
 * daemon's own use of rand(). */
static double tc_random(tc_state *st)
{
    st->rng ^= st->rng >> 12;
    st->rng ^= st->rng << 25;
    st->rng ^= st->rng >> 27;
    return (double)((st->rng * 2685821657736338717ULL) >> 11) / (double)(1ULL << 53);
}

/* ------------------------------------------------------------------------ */
/* Launching                                                                */

static void tc_launch_closed(uv_handle_t *h)
{
    tc_pending *l = h->data;
    tc_state *st = l->st;
    free(l->worker_id);
    free(l->daemon_id);
    free(l->server_url);
    if (l->token != NULL)
        memset(l->token, 0, strlen(l->token));
    free(l->token);
    free(l->agent_path);
    free(l->ca_file);
    free(l);
    tc_release(st);
}

static void tc_launch_close(tc_pending *l)
{
    tc_state *st = l->st;
    if (l->prev != NULL)
        l->prev->next = l->next;
    else if (st->pending == l)
        st->pending = l->next;
    if (l->next != NULL)
        l->next->prev = l->prev;
    uv_close((uv_handle_t *)&l->timer, tc_launch_closed);
}

static void tc_launch_fail(tc_pending *l, int code, int retryable, const char *provider_code,
                           const char *message)
{
    ferry_error_detail d;
    ferry_error_set(&d, code, retryable, provider_code, "%s", message);
    tc_complete(l->st, l->op, code, NULL, NULL, &d);
}

/* The delay is over: fail on purpose, or start the agent. */
static void tc_launch_go(tc_state *st, tc_pending *l)
{
    unsigned long nth = ++st->launches;
    char msg[256];
    if ((long)nth <= st->fail_first) {
        snprintf(msg, sizeof(msg),
                 "test: launch %lu failed on purpose (fail_first %ld): insufficient capacity", nth,
                 st->fail_first);
        tc_launch_fail(l, FERRY_ECAPACITY, 1, "TestInsufficientCapacity", msg);
        return;
    }
    if (st->failure_rate > 0 && tc_random(st) < st->failure_rate) {
        snprintf(msg, sizeof(msg),
                 "test: launch %lu failed on purpose (failure_rate %g): insufficient capacity", nth,
                 st->failure_rate);
        tc_launch_fail(l, FERRY_ECAPACITY, 1, "TestInsufficientCapacity", msg);
        return;
    }
    char work_dir[PATH_MAX] = "";
    if (!st->fake) {
        /* 0700: the agent keeps snapshots and inputs there. */
        int too_long = snprintf(work_dir, sizeof(work_dir), "%s/%s", st->work_dir, l->worker_id) >=
                       (int)sizeof(work_dir);
        if (too_long || ferry_file_mkdirs(work_dir, 0700) != 0) {
            snprintf(msg, sizeof(msg), "test: create %s/%s: %s", st->work_dir, l->worker_id,
                     strerror(too_long ? ENAMETOOLONG : errno));
            tc_launch_fail(l, FERRY_EIO, 0, NULL, msg);
            return;
        }
    }
    const char *file = st->fake ? st->fake_agent_path : l->agent_path;
    ferry_agentproc_spawn_args a = {
        .file = file,
        .server_url = l->server_url,
        .worker_id = l->worker_id,
        .daemon_id = l->daemon_id,
        .bootstrap_token = l->token,
        .ca_file = l->ca_file,
        .work_dir = st->fake ? NULL : work_dir, /* the fake agent takes neither */
        .runtime = st->runtime,
        .slots = l->slots, /* always: the fake agent's default is 64 */
        .runtime_settings = st->fake ? st->fake_settings : NULL,
    };
    const char *id = NULL;
    int uv_error = 0;
    int rc = ferry_agentproc_spawn(st->agents, &a, &id, &uv_error);
    if (rc == FERRY_ENOMEM) {
        tc_launch_fail(l, FERRY_ENOMEM, 1, NULL, "test: out of memory");
        return;
    }
    if (rc < 0) {
        snprintf(msg, sizeof(msg), "test: could not start %s: %s", file, uv_strerror(uv_error));
        tc_launch_fail(l, FERRY_ESPAWN, 0, NULL, msg);
        return;
    }
    st->host->log(st->ctx, FERRY_LOG_INFO, "launched %s agent %s for worker %s",
                  st->fake ? "fake" : "real", id, l->worker_id);
    tc_complete(st, l->op, 0, id, NULL, NULL);
}

static void tc_on_launch_timer(uv_timer_t *t)
{
    tc_pending *l = t->data;
    tc_launch_go(l->st, l);
    tc_launch_close(l);
}

static char *tc_strdup_or_null(const char *s)
{
    return s != NULL && s[0] != '\0' ? strdup(s) : NULL;
}

static int tc_launch(void *state, const ferry_launch_request *req, ferry_op *op)
{
    tc_state *st = state;
    if (req == NULL || req->server_url == NULL || req->bootstrap_token == NULL ||
        req->worker_id == NULL || (!st->fake && (req->agent_path == NULL || !req->agent_path[0])))
        return FERRY_EINVAL;
    /* The worker id becomes a folder name: one plain component only. */
    if (req->worker_id[0] == '\0' || strchr(req->worker_id, '/') != NULL ||
        strcmp(req->worker_id, ".") == 0 || strcmp(req->worker_id, "..") == 0)
        return FERRY_EUNSAFE;
    if (st->fake && st->fake_agent_path == NULL) {
        /* ferry-fake-agent lives next to ferry-agent in the build tree. */
        const char *ap = req->agent_path ? req->agent_path : "";
        const char *slash = strrchr(ap, '/');
        int dir_len = slash ? (int)(slash - ap) : 1;
        if (asprintf(&st->fake_agent_path, "%.*s/ferry-fake-agent", dir_len, slash ? ap : ".") <
            0) {
            st->fake_agent_path = NULL;
            return FERRY_ENOMEM;
        }
    }
    tc_pending *l = calloc(1, sizeof(*l));
    if (l == NULL)
        return FERRY_ENOMEM;
    l->st = st;
    l->op = op;
    l->worker_id = strdup(req->worker_id);
    l->daemon_id = strdup(req->daemon_id ? req->daemon_id : "");
    l->server_url = strdup(req->server_url);
    l->token = strdup(req->bootstrap_token);
    l->agent_path = tc_strdup_or_null(req->agent_path);
    l->ca_file = tc_strdup_or_null(req->ca_file);
    l->slots = st->slots > 0 ? (int)st->slots
               : FERRY_HAS_FIELD(req, ferry_launch_request, slots) && req->slots > 0 ? req->slots
                                                                                     : 1;
    if (l->worker_id == NULL || l->daemon_id == NULL || l->server_url == NULL || l->token == NULL ||
        (req->agent_path && req->agent_path[0] && l->agent_path == NULL)) {
        free(l->worker_id);
        free(l->daemon_id);
        free(l->server_url);
        free(l->token);
        free(l->agent_path);
        free(l->ca_file);
        free(l);
        return FERRY_ENOMEM;
    }
    /* Always through the timer, even with no delay: a launch completes on a
     * later loop turn, as a cloud's does. */
    uv_timer_init(st->loop, &l->timer);
    l->timer.data = l;
    st->n_allocated++;
    l->next = st->pending;
    if (st->pending != NULL)
        st->pending->prev = l;
    st->pending = l;
    uv_timer_start(&l->timer, tc_on_launch_timer, (uint64_t)st->delay_ms, 0);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Terminate, list, describe                                                */

static int tc_terminate(void *state, const char *instance_id, ferry_op *op)
{
    tc_state *st = state;
    int rc = ferry_agentproc_terminate(st->agents, instance_id, op);
    if (rc == FERRY_ENOENT) {
        ferry_error_detail d;
        ferry_error_set(&d, FERRY_ENOENT, 0, NULL, "test: no instance %s",
                        instance_id ? instance_id : "");
        tc_complete(st, op, FERRY_ENOENT, NULL, NULL, &d);
        return 0;
    }
    return rc;
}

static int tc_list(void *state, const char *daemon_id, ferry_op *op)
{
    tc_state *st = state;
    return ferry_agentproc_list(st->agents, daemon_id, op);
}

/* An instance gone is "terminated", as a cloud describes one for a while. */
static int tc_describe(void *state, const char *instance_id, ferry_op *op)
{
    tc_state *st = state;
    return ferry_agentproc_describe(st->agents, instance_id, "terminated", op);
}

static const ferry_compute_ops tc_ops = {
    .struct_size = sizeof(ferry_compute_ops),
    .launch = tc_launch,
    .terminate = tc_terminate,
    .list = tc_list,
    .describe = tc_describe,
};

/* ------------------------------------------------------------------------ */
/* Lifecycle                                                                */

static int tc_setting_long(ferry_plugin_ctx *ctx, const ferry_host_api *host, const char *key,
                           long max, long *out, ferry_error_detail *err)
{
    const char *v = host->config_get(ctx, key);
    if (v == NULL)
        return 0;
    char *end;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (v[0] == '\0' || *end != '\0' || errno != 0 || n < 0 || n > max)
        return ferry_error_set(err, FERRY_ECONFIG, 0, NULL,
                               "test: %s must be a whole number from 0 to %ld, not \"%s\"", key,
                               max, v);
    *out = n;
    return 0;
}

static int tc_settings(tc_state *st, ferry_error_detail *err)
{
    ferry_plugin_ctx *ctx = st->ctx;
    const ferry_host_api *host = st->host;
    int rc;
    if ((rc = tc_setting_long(ctx, host, "launch_delay_ms", 86400000L, &st->delay_ms, err)) < 0 ||
        (rc = tc_setting_long(ctx, host, "fail_first", LONG_MAX, &st->fail_first, err)) < 0 ||
        (rc = tc_setting_long(ctx, host, "slots", 1024, &st->slots, err)) < 0 ||
        (rc = tc_setting_long(ctx, host, "terminate_grace_ms", 3600000L, &st->grace_ms, err)) < 0)
        return rc;
    const char *rate = host->config_get(ctx, "failure_rate");
    if (rate != NULL) {
        char *end;
        st->failure_rate = strtod(rate, &end);
        if (rate[0] == '\0' || *end != '\0' || !(st->failure_rate >= 0 && st->failure_rate <= 1))
            return ferry_error_set(err, FERRY_ECONFIG, 0, NULL,
                                   "test: failure_rate must be a number from 0 to 1, not \"%s\"",
                                   rate);
    }
    const char *agent = host->config_get(ctx, "agent");
    if (agent != NULL && strcmp(agent, "fake") != 0 && strcmp(agent, "real") != 0)
        return ferry_error_set(err, FERRY_ECONFIG, 0, NULL,
                               "test: agent must be \"real\" or \"fake\", not \"%s\"", agent);
    st->fake = agent != NULL && strcmp(agent, "fake") == 0;
    const char *work_dir = host->config_get(ctx, "work_dir");
    const char *runtime = host->config_get(ctx, "runtime");
    const char *fake_path = host->config_get(ctx, "fake_agent_path");
    st->work_dir = strdup(work_dir && work_dir[0] ? work_dir : "/tmp/ferry-test-compute");
    st->runtime = strdup(runtime && runtime[0] ? runtime : "local-process");
    st->fake_agent_path = tc_strdup_or_null(fake_path);
    long run_ms = 0;
    if ((rc = tc_setting_long(ctx, host, "fake_run_ms", 86400000L, &run_ms, err)) < 0)
        return rc;
    const char *hold = host->config_get(ctx, "fake_hold_file");
    if (asprintf(&st->fake_settings, "%s%s%srun_ms=%ld\n", hold && hold[0] ? "hold_file=" : "",
                 hold && hold[0] ? hold : "", hold && hold[0] ? "\n" : "", run_ms) < 0)
        st->fake_settings = NULL;
    if (st->work_dir == NULL || st->runtime == NULL ||
        (fake_path && fake_path[0] && st->fake_agent_path == NULL) || st->fake_settings == NULL)
        return ferry_error_set(err, FERRY_ENOMEM, 0, NULL, "test: out of memory");
    return 0;
}

static int tc_init(ferry_plugin_ctx *ctx, const ferry_host_api *host, void **state,
                   ferry_error_detail *err)
{
    tc_state *st = calloc(1, sizeof(*st));
    if (st == NULL)
        return ferry_error_set(err, FERRY_ENOMEM, 0, NULL, "test: out of memory");
    st->ctx = ctx;
    st->host = host;
    st->loop = host->loop(ctx);
    st->grace_ms = TC_DEFAULT_GRACE_MS;
    st->rng = ((uint64_t)time(NULL) << 20) ^ (uint64_t)getpid() ^ (uint64_t)(uintptr_t)st;
    if (st->rng == 0)
        st->rng = 88172645463325252ULL;
    int rc = tc_settings(st, err);
    if (rc < 0) {
        tc_state_free(st);
        return rc;
    }
    ferry_agentproc_config cfg = {
        .ctx = ctx,
        .host = host,
        .loop = st->loop,
        .id_prefix = "test",
        .grace_ms = st->grace_ms,
        /* To run, find its plugins, and keep sanitizers configured in ASan
         * builds; nothing else passes, so no credential reaches a worker
         * even in tests. */
        .env_keep = "PATH,HOME,USER,LANG,TMPDIR,LD_LIBRARY_PATH,ASAN_OPTIONS,UBSAN_OPTIONS,"
                    "LSAN_OPTIONS,FERRY_LOG_LEVEL",
    };
    if ((st->agents = ferry_agentproc_new(&cfg)) == NULL) {
        tc_state_free(st);
        return ferry_error_set(err, FERRY_ENOMEM, 0, NULL, "test: out of memory");
    }
    *state = st;
    return 0;
}

/* Pending launches are dropped (the host cancels their ops) and agents are
 * asked to end; the host is never called again. */
static void tc_fini(void *state)
{
    tc_state *st = state;
    st->finishing = 1;
    while (st->pending != NULL)
        tc_launch_close(st->pending);
    /* As `local`: ferryd's stop keeps the work unless the operator asked
     * otherwise. Either way the table frees itself once its agents are gone. */
    const char *retire = st->host->config_get(st->ctx, "retire_workers_on_stop");
    if (retire != NULL && strcmp(retire, "false") == 0)
        ferry_agentproc_release(st->agents);
    else
        ferry_agentproc_fini(st->agents);
    st->agents = NULL;
    if (st->n_allocated == 0)
        tc_state_free(st);
}

static const char *const tc_setting_names[] = {
    "launch_delay_ms",    "failure_rate",   "fail_first",  "agent",
    "fake_agent_path",    "slots",          "work_dir",    "runtime",
    "terminate_grace_ms", "fake_hold_file", "fake_run_ms", NULL};

static const ferry_plugin_descriptor tc_descriptor = {
    .struct_size = sizeof(ferry_plugin_descriptor),
    .abi_major = FERRY_ABI_MAJOR,
    .abi_minor = FERRY_ABI_MINOR,
    .kind = FERRY_PLUGIN_COMPUTE,
    .name = "test",
    .version = "1.0.0",
    .init = tc_init,
    .fini = tc_fini,
    .ops = &tc_ops,
    .settings = tc_setting_names,
};

FERRY_PLUGIN_DEFINE(tc_descriptor)
