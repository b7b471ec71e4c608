/* The scheduler: per environment, a FIFO queue of queued executions matched
 * with workers that have free slots; workers are launched (up to the pool's
 * maximum) when the queue outgrows the capacity that is already coming. */
#include "scheduler.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lifecycle.h"
#include "log.h"
#include "util.h"

static int scheduler__env_init(ferryd *d, const ferry_env_config *cfg, ferry_env **out, char *err,
                               size_t err_cap)
{
    const ferry_plugin *p =
        ferry_plugin_registry_get(&d->plugins, FERRY_PLUGIN_COMPUTE, cfg->compute);
    if (p == NULL) {
        snprintf(err, err_cap, "environment '%s': no compute plugin named '%s' was loaded",
                 cfg->name, cfg->compute);
        return FERRY_ECONFIG;
    }
    int rc = ferry_config_check_env(&d->cfg, cfg, p, err, err_cap);
    if (rc < 0)
        return rc;
    if (strcmp(cfg->compute, "local") == 0 &&
        ferry_plugin_registry_get(&d->plugins, FERRY_PLUGIN_RUNTIME, cfg->runtime) == NULL) {
        /* Local agents load their runtime from the same folder as ferryd. */
        snprintf(err, err_cap, "environment '%s': no runtime plugin named '%s' was loaded",
                 cfg->name, cfg->runtime);
        return FERRY_ECONFIG;
    }
    ferry_env *env = ferry_xcalloc(1, sizeof(*env));
    env->d = d;
    env->cfg = cfg;
    ferry_error_detail detail = {0};
    rc = ferry_plugin_instance_new(p, d->loop, cfg->name, cfg->settings, NULL, &env->compute,
                                   &detail);
    if (rc < 0) {
        snprintf(err, err_cap, "environment '%s': compute plugin '%s': %s", cfg->name, cfg->compute,
                 detail.message[0] ? detail.message : ferry_strerror(rc));
        free(env);
        return rc;
    }
    ferry_plugin_instance_on_gone(env->compute, ferry_workers_instance_gone, env);
    uv_timer_init(d->loop, &env->retry_timer);
    env->retry_timer.data = env;
    *out = env;
    return 0;
}

int ferry_scheduler_init(ferryd *d, char *err, size_t err_cap)
{
    d->envs = ferry_xcalloc(d->cfg.n_envs, sizeof(ferry_env *));
    for (size_t i = 0; i < d->cfg.n_envs; i++) {
        int rc = scheduler__env_init(d, &d->cfg.envs[i], &d->envs[i], err, err_cap);
        if (rc < 0)
            return rc;
        d->n_envs++;
    }
    ferry_map_init(&d->workers_by_id);
    ferry_map_init(&d->workers_by_token);
    return 0;
}

void ferry_scheduler_close(ferryd *d)
{
    ferry_workers_close_all(d);
    for (size_t i = 0; i < d->n_envs; i++) {
        ferry_env *env = d->envs[i];
        uv_close((uv_handle_t *)&env->retry_timer, NULL);
        ferry_plugin_instance_free(env->compute);
        free(env->last_launch_error);
    }
    /* Run the loop so closed handles release before their memory goes. */
    uv_run(d->loop, UV_RUN_NOWAIT);
    for (size_t i = 0; i < d->n_envs; i++) {
        free(d->envs[i]->workers);
        free(d->envs[i]);
    }
    free(d->envs);
    d->envs = NULL;
    d->n_envs = 0;
    ferry_map_free(&d->workers_by_id);
    ferry_map_free(&d->workers_by_token);
}

ferry_env *ferry_scheduler_env(ferryd *d, const char *name)
{
    for (size_t i = 0; i < d->n_envs; i++)
        if (strcmp(d->envs[i]->cfg->name, name) == 0)
            return d->envs[i];
    return NULL;
}

static void scheduler__enqueue(ferry_env *env, ferry_exec *e)
{
    e->qnext = NULL;
    e->qprev = env->qtail;
    if (env->qtail)
        env->qtail->qnext = e;
    else
        env->qhead = e;
    env->qtail = e;
    env->qlen++;
}

static int scheduler__in_queue(ferry_env *env, ferry_exec *e)
{
    return e->qprev != NULL || env->qhead == e;
}

static void scheduler__dequeue(ferry_env *env, ferry_exec *e)
{
    if (!scheduler__in_queue(env, e))
        return;
    if (e->qprev)
        e->qprev->qnext = e->qnext;
    else
        env->qhead = e->qnext;
    if (e->qnext)
        e->qnext->qprev = e->qprev;
    else
        env->qtail = e->qprev;
    e->qprev = e->qnext = NULL;
    env->qlen--;
}

void ferry_scheduler_admit(ferryd *d, ferry_exec *e)
{
    /* No quotas are configured in this version: every execution is admitted. */
    ferry_lifecycle_transition(d, e, FERRY_STATUS_QUEUED, NULL, FERRY_NO_EXIT_CODE);
}

void ferry_scheduler_restore(ferryd *d, ferry_exec *e)
{
    e->log_count = 0;
    switch (e->status) {
    case FERRY_STATUS_CREATED:
        ferry_scheduler_admit(d, e);
        break;
    case FERRY_STATUS_QUEUED: {
        ferry_env *env = ferry_scheduler_env(d, e->environment);
        if (env == NULL) {
            ferry_lifecycle_transition(d, e, FERRY_STATUS_ERROR,
                                       "its environment is no longer configured",
                                       FERRY_NO_EXIT_CODE);
            return;
        }
        scheduler__enqueue(env, e);
        ferry_scheduler_kick(d, env);
        break;
    }
    default:
        /* Its worker is gone with the previous ferryd process. */
        ferry_lifecycle_transition(d, e, FERRY_STATUS_ERROR, "worker lost (ferryd restarted)",
                                   FERRY_NO_EXIT_CODE);
        break;
    }
}

static void scheduler__unassign(ferry_worker *w, ferry_exec *e)
{
    for (size_t i = 0; i < w->n_assigned; i++) {
        if (w->assigned[i] == e) {
            w->assigned[i] = w->assigned[--w->n_assigned];
            break;
        }
    }
    e->worker = NULL;
}

static void scheduler__order_stop(ferryd *d, ferry_worker *w, ferry_exec *e)
{
    if (w->stop_orders == NULL)
        w->stop_orders = json_array();
    json_array_append_new(w->stop_orders, json_string(e->id));
    ferry_agentapi_wake(d, w);
}

void ferry_scheduler_on_transition(ferryd *d, ferry_exec *e, ferry_status from)
{
    ferry_env *env = ferry_scheduler_env(d, e->environment);
    ferry_worker *w = e->worker;
    if (env && from == FERRY_STATUS_QUEUED)
        scheduler__dequeue(env, e);
    if (e->status == FERRY_STATUS_QUEUED && env) {
        scheduler__enqueue(env, e);
        ferry_scheduler_kick(d, env);
        return;
    }
    if (e->status == FERRY_STATUS_STOPPING && w) {
        scheduler__order_stop(d, w, e);
        return;
    }
    if (!ferry_status_is_terminal(e->status) || w == NULL)
        return;
    /* Ended before the worker said so (a stop while queued): it must stop too. */
    if (e->delivered && (from == FERRY_STATUS_QUEUED || from == FERRY_STATUS_CREATED))
        scheduler__order_stop(d, w, e);
    scheduler__unassign(w, e);
    ferry_workers_touch(d, w);
    if (env)
        ferry_scheduler_kick(d, env);
}

static ferry_worker *scheduler__pick_worker(ferry_env *env)
{
    ferry_worker *best = NULL;
    for (size_t i = 0; i < env->n_workers; i++) {
        ferry_worker *w = env->workers[i];
        if (w->state != FERRY_WORKER_READY || ferry_worker_free_slots(w) <= 0)
            continue;
        if (w->poll) /* a worker that is waiting right now answers fastest */
            return w;
        if (best == NULL)
            best = w;
    }
    return best;
}

static void scheduler__assign(ferryd *d, ferry_worker *w, ferry_exec *e)
{
    scheduler__dequeue(w->env, e);
    e->worker = w;
    e->delivered = 0;
    free(e->worker_id);
    e->worker_id = ferry_strdup(w->id);
    w->assigned = ferry_xrealloc(w->assigned, (w->n_assigned + 1) * sizeof(*w->assigned));
    w->assigned[w->n_assigned++] = e;
    ferry_workers_touch(d, w);
}

static void scheduler__launch_more(ferryd *d, ferry_env *env)
{
    size_t coming = 0;
    for (size_t i = 0; i < env->n_workers; i++)
        if (env->workers[i]->state == FERRY_WORKER_LAUNCHING)
            coming++;
    while (!env->retry_pending && env->n_workers < (size_t)env->cfg->max_workers &&
           (env->qlen > coming || env->n_workers < (size_t)env->cfg->min_workers)) {
        if (ferry_workers_launch(d, env) < 0)
            break;
        coming++;
    }
}

void ferry_scheduler_kick(ferryd *d, ferry_env *env)
{
    if (d->stopping)
        return;
    ferry_worker *w;
    while (env->qhead && (w = scheduler__pick_worker(env)) != NULL)
        scheduler__assign(d, w, env->qhead);
    for (size_t i = 0; i < env->n_workers; i++)
        ferry_agentapi_wake(d, env->workers[i]);
    scheduler__launch_more(d, env);
}

int ferry_scheduler_has_news(const ferry_worker *w)
{
    if (w->stop_orders && json_array_size(w->stop_orders) > 0)
        return 1;
    for (size_t i = 0; i < w->n_assigned; i++)
        if (!w->assigned[i]->delivered)
            return 1;
    return 0;
}

void ferry_scheduler_take_news(ferryd *d, ferry_worker *w, ferry_exec ***work, size_t *n_work,
                               json_t **stop)
{
    (void)d;
    *work = NULL;
    *n_work = 0;
    for (size_t i = 0; i < w->n_assigned; i++) {
        ferry_exec *e = w->assigned[i];
        if (e->delivered)
            continue;
        e->delivered = 1;
        *work = ferry_xrealloc(*work, (*n_work + 1) * sizeof(**work));
        (*work)[(*n_work)++] = e;
    }
    *stop = w->stop_orders ? w->stop_orders : json_array();
    w->stop_orders = NULL;
}
