/* Worker records: launched through the environment's compute plugin,
 * registered by their agent with a one-time bootstrap token, retired after
 * the idle timeout. The launch intent is stored before the plugin is asked,
 * so that no instance exists without a record. */
#include "scheduler.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "lifecycle.h"
#include "log.h"
#include "util.h"

#define WORKERS__REGISTER_DEADLINE_MS 120000
#define WORKERS__RETRY_BASE_MS 1000u
#define WORKERS__RETRY_MAX_MS 60000u

static void workers__db_upsert(ferryd *d, ferry_worker *w)
{
    static const char *names[] = {"launching", "ready", "terminating"};
    ferry_db_write(d);
    sqlite3_stmt *st = ferry_db_prepare(
        d, "INSERT INTO workers (id, environment, instance_id, state, created_at)"
           " VALUES (?,?,?,?,?) ON CONFLICT (id) DO UPDATE SET instance_id = excluded.instance_id,"
           " state = excluded.state");
    sqlite3_bind_text(st, 1, w->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, w->env->cfg->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, w->instance_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, names[w->state], -1, SQLITE_STATIC);
    sqlite3_bind_double(st, 5, ferry_now());
    ferry_db_step_done(d, st);
}

static void workers__db_delete(ferryd *d, ferry_worker *w)
{
    ferry_db_write(d);
    sqlite3_stmt *st = ferry_db_prepare(d, "DELETE FROM workers WHERE id = ?");
    sqlite3_bind_text(st, 1, w->id, -1, SQLITE_STATIC);
    ferry_db_step_done(d, st);
}

static void workers__closed(uv_handle_t *h)
{
    ferry_worker *w = h->data;
    free(w->instance_id);
    free(w->assigned);
    json_decref(w->stop_orders);
    free(w->gpu_busy);
    free(w);
}

/* Forget a worker whose instance is gone (or never existed). Executions it
 * held end in error: their commands are gone with it. */
static void workers__remove(ferryd *d, ferry_worker *w, const char *why)
{
    ferry_env *env = w->env;
    while (w->n_assigned > 0) {
        ferry_exec *e = w->assigned[0];
        char reason[300];
        snprintf(reason, sizeof(reason), "worker lost: %s", why);
        if (ferry_lifecycle_transition(d, e, FERRY_STATUS_ERROR, reason, FERRY_NO_EXIT_CODE) < 0) {
            e->worker = NULL;
            w->assigned[0] = w->assigned[--w->n_assigned];
        }
    }
    for (size_t i = 0; i < env->n_workers; i++)
        if (env->workers[i] == w) {
            env->workers[i] = env->workers[--env->n_workers];
            break;
        }
    ferry_map_del(&d->workers_by_id, w->id);
    if (w->token_hash[0])
        ferry_map_del(&d->workers_by_token, w->token_hash);
    workers__db_delete(d, w);
    w->closing = 1;
    ferry_agentapi_wake(d, w); /* releases a held poll */
    uv_close((uv_handle_t *)&w->timer, workers__closed);
}

static void workers__retry_cb(uv_timer_t *t)
{
    ferry_env *env = t->data;
    env->retry_pending = 0;
    ferry_scheduler_kick(env->d, env);
}

/* A failed launch is retried with backoff (1 s, 2 s, 4 s ... 60 s) for as
 * long as it takes: the queued executions wait, and say why. */
static void workers__launch_failed(ferryd *d, ferry_env *env, const char *message)
{
    (void)d;
    env->launch_failures++;
    free(env->last_launch_error);
    env->last_launch_error = ferry_strdup(message);
    int shift = env->launch_failures > 7 ? 7 : env->launch_failures - 1;
    uint64_t delay_ms = (uint64_t)WORKERS__RETRY_BASE_MS << shift;
    if (delay_ms > WORKERS__RETRY_MAX_MS)
        delay_ms = WORKERS__RETRY_MAX_MS;
    ferry_error("environment '%s': worker launch failed (%d in a row): %s; retrying in %.1f s",
                env->cfg->name, env->launch_failures, message, (double)delay_ms / 1000.0);
    env->retry_pending = 1;
    env->retry_at = ferry_now() + (double)delay_ms / 1000.0;
    uv_timer_start(&env->retry_timer, workers__retry_cb, delay_ms, 0);
}

static void workers__launch_done(void *arg, int status, const ferry_op_result *res)
{
    ferry_worker *w = arg;
    ferryd *d = w->env->d;
    if (status < 0) {
        char msg[600];
        snprintf(msg, sizeof(msg), "%s",
                 res && res->error && res->error->message[0] ? res->error->message
                                                             : ferry_strerror(status));
        ferry_env *env = w->env;
        workers__remove(d, w, msg);
        workers__launch_failed(d, env, msg);
        return;
    }
    free(w->instance_id);
    w->instance_id = ferry_strdup(res && res->instance_id ? res->instance_id : "");
    workers__db_upsert(d, w);
    if (w->state == FERRY_WORKER_TERMINATING) /* retired while it was launching */
        ferry_workers_terminate(d, w, "retired while launching");
}

static void workers__timer_cb(uv_timer_t *t)
{
    ferry_worker *w = t->data;
    ferryd *d = w->env->d;
    if (w->state == FERRY_WORKER_LAUNCHING) {
        ferry_env *env = w->env;
        ferry_workers_terminate(d, w, "its agent did not register in time");
        workers__launch_failed(d, env, "the agent did not register within 120 s");
    } else if (w->state == FERRY_WORKER_READY && w->n_assigned == 0) {
        ferry_workers_terminate(d, w, "idle timeout");
    }
}

void ferry_workers_instance_gone(void *arg, const char *instance_id, const char *reason)
{
    ferry_env *env = arg;
    ferryd *d = env->d;
    for (size_t i = 0; i < env->n_workers; i++) {
        ferry_worker *w = env->workers[i];
        if (w->closing || w->instance_id == NULL || strcmp(w->instance_id, instance_id) != 0)
            continue;
        int was_launching = w->state == FERRY_WORKER_LAUNCHING;
        ferry_warn("worker %s (%s) is gone: %s", w->id, instance_id, reason);
        workers__remove(d, w, reason);
        if (was_launching)
            workers__launch_failed(d, env, reason);
        else
            ferry_scheduler_kick(d, env);
        return;
    }
}

int ferry_workers_launch(ferryd *d, ferry_env *env)
{
    ferry_worker *w = ferry_xcalloc(1, sizeof(*w));
    ferry_uuid(w->id);
    w->env = env;
    w->slots = env->cfg->gpus > 0 ? env->cfg->gpus : 1;
    char token[65], agent_path[PATH_MAX + 16];
    ferry_random_hex(token, 32);
    ferry_sha256_hex(token, strlen(token), w->bootstrap_hash);
    uv_timer_init(d->loop, &w->timer);
    w->timer.data = w;
    env->workers = ferry_xrealloc(env->workers, (env->n_workers + 1) * sizeof(*env->workers));
    env->workers[env->n_workers++] = w;
    ferry_map_put(&d->workers_by_id, w->id, w);
    workers__db_upsert(d, w);
    ferry_db_commit(d); /* the intent is durable before the plugin acts */
    uv_timer_start(&w->timer, workers__timer_cb, WORKERS__REGISTER_DEADLINE_MS, 0);

    snprintf(agent_path, sizeof(agent_path), "%s/ferry-agent", d->exe_dir);
    ferry_launch_request req = {
        .struct_size = sizeof(req),
        .daemon_id = d->daemon_id,
        .environment = env->cfg->name,
        .worker_id = w->id,
        .server_url = d->server_url,
        .bootstrap_token = token,
        .agent_path = agent_path,
        .client_token = w->id,
        .slots = w->slots,
    };
    const ferry_plugin *p = ferry_plugin_instance_plugin(env->compute);
    ferry_op *op = ferry_op_new(env->compute, workers__launch_done, w);
    int rc = p->ops.compute.launch(ferry_plugin_instance_state(env->compute), &req, op);
    if (rc < 0) {
        ferry_op_abandon(op);
        workers__remove(d, w, ferry_strerror(rc));
        workers__launch_failed(d, env, ferry_strerror(rc));
        return rc;
    }
    return 0;
}

static void workers__terminate_done(void *arg, int status, const ferry_op_result *res)
{
    ferry_worker *w = arg;
    ferryd *d = w->env->d;
    if (status < 0)
        ferry_warn("worker %s: terminate instance %s: %s", w->id, w->instance_id,
                   res && res->error ? res->error->message : ferry_strerror(status));
    workers__remove(d, w, "terminated");
}

void ferry_workers_terminate(ferryd *d, ferry_worker *w, const char *why)
{
    if (w->closing)
        return;
    int launching_now = w->state == FERRY_WORKER_LAUNCHING && w->instance_id == NULL;
    w->state = FERRY_WORKER_TERMINATING;
    uv_timer_stop(&w->timer);
    ferry_info("worker %s (%s): retiring: %s", w->id, w->instance_id ? w->instance_id : "-", why);
    if (launching_now) /* terminated once the launch completes */
        return;
    workers__db_upsert(d, w);
    if (w->instance_id == NULL || w->instance_id[0] == '\0') {
        workers__remove(d, w, why);
        return;
    }
    const ferry_plugin *p = ferry_plugin_instance_plugin(w->env->compute);
    ferry_op *op = ferry_op_new(w->env->compute, workers__terminate_done, w);
    int rc =
        p->ops.compute.terminate(ferry_plugin_instance_state(w->env->compute), w->instance_id, op);
    if (rc < 0) {
        ferry_op_abandon(op);
        ferry_warn("worker %s: terminate: %s", w->id, ferry_strerror(rc));
        workers__remove(d, w, why);
    }
}

int ferry_workers_register(ferryd *d, const char *worker_id, const char *bootstrap_token, int slots,
                           char **token)
{
    ferry_worker *w = worker_id ? ferry_map_get(&d->workers_by_id, worker_id) : NULL;
    char hash[65];
    if (bootstrap_token == NULL)
        return FERRY_EAUTH;
    ferry_sha256_hex(bootstrap_token, strlen(bootstrap_token), hash);
    if (w == NULL || w->state != FERRY_WORKER_LAUNCHING || w->bootstrap_hash[0] == '\0' ||
        !ferry_secure_streq(hash, w->bootstrap_hash))
        return FERRY_EAUTH;
    w->bootstrap_hash[0] = '\0'; /* spent */
    char fresh[65];
    ferry_random_hex(fresh, 32);
    ferry_sha256_hex(fresh, strlen(fresh), w->token_hash);
    ferry_map_put(&d->workers_by_token, w->token_hash, w);
    w->state = FERRY_WORKER_READY;
    /* The agent says how many it runs at once; a GPU worker no more than its GPUs. */
    if (slots > 0)
        w->slots = w->env->cfg->gpus > 0 && slots > w->env->cfg->gpus ? w->env->cfg->gpus : slots;
    w->last_seen = ferry_now();
    w->env->launch_failures = 0;
    free(w->env->last_launch_error);
    w->env->last_launch_error = NULL;
    workers__db_upsert(d, w);
    ferry_workers_touch(d, w);
    *token = ferry_strdup(fresh);
    ferry_scheduler_kick(d, w->env);
    return 0;
}

ferry_worker *ferry_workers_by_token(ferryd *d, const char *token)
{
    char hash[65];
    ferry_sha256_hex(token, strlen(token), hash);
    ferry_worker *w = ferry_map_get(&d->workers_by_token, hash);
    return w && !w->closing ? w : NULL;
}

int ferry_worker_free_slots(const ferry_worker *w)
{
    return w->slots - (int)w->n_assigned;
}

void ferry_workers_touch(ferryd *d, ferry_worker *w)
{
    (void)d;
    if (w->state != FERRY_WORKER_READY)
        return;
    const ferry_env_config *cfg = w->env->cfg;
    if (w->n_assigned == 0 && w->env->n_workers > (size_t)cfg->min_workers)
        uv_timer_start(&w->timer, workers__timer_cb, (uint64_t)cfg->idle_timeout_s * 1000u, 0);
    else
        uv_timer_stop(&w->timer);
}

void ferry_workers_close_all(ferryd *d)
{
    for (size_t i = 0; i < d->n_envs; i++) {
        ferry_env *env = d->envs[i];
        while (env->n_workers > 0) {
            ferry_worker *w = env->workers[0];
            /* The plugin's fini retires what it launched; drop our record. */
            workers__remove(d, w, "ferryd is shutting down");
        }
    }
}
