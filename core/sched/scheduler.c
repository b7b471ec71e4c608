/* The scheduler. Per user, executions wait in `created` while the user's
 * quota is full, and are admitted in order. Per environment, admitted
 * executions wait in a priority FIFO and a normal FIFO (priority first,
 * running work never pre-empted) for a worker with a free slot; workers are
 * launched, up to the pool's maximum, when the queue outgrows the capacity
 * already coming. */
#include "scheduler.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lifecycle.h"
#include "log.h"
#include "logstore.h"
#include "util.h"

/* --- intrusive FIFOs --- */

static void xlist_push(ferry_xlist *l, ferry_exec *e)
{
    e->qnext = NULL;
    e->qprev = l->tail;
    if (l->tail)
        l->tail->qnext = e;
    else
        l->head = e;
    l->tail = e;
    l->len++;
}

static int xlist_holds(const ferry_xlist *l, const ferry_exec *e)
{
    return e->qprev != NULL ? 1 : l->head == e;
}

static void xlist_remove(ferry_xlist *l, ferry_exec *e)
{
    if (e->qprev)
        e->qprev->qnext = e->qnext;
    else
        l->head = e->qnext;
    if (e->qnext)
        e->qnext->qprev = e->qprev;
    else
        l->tail = e->qprev;
    e->qprev = e->qnext = NULL;
    l->len--;
}

static void scheduler__attach(ferry_worker *w, ferry_exec *e);

/* --- environments --- */

/* The runtime plugin an environment's agents load: ferryd holds them all
 * (it serves them in the agent bundle), so a typo is found here. */
static const ferry_plugin *scheduler__runtime(ferryd *d, const ferry_env_config *cfg, char *err,
                                              size_t err_cap)
{
    const ferry_plugin *rt =
        ferry_plugin_registry_get(&d->plugins, FERRY_PLUGIN_RUNTIME, cfg->runtime);
    if (rt == NULL)
        snprintf(err, err_cap, "environment '%s': no runtime plugin named '%s' was loaded",
                 cfg->name, cfg->runtime);
    return rt;
}

/* A static environment: machines join it by hand, nothing is launched. */
static int scheduler__static_env_init(ferryd *d, ferry_env_config *cfg, ferry_env **out, char *err,
                                      size_t err_cap)
{
    const ferry_plugin *rt = scheduler__runtime(d, cfg, err, err_cap);
    if (rt == NULL)
        return FERRY_ECONFIG;
    int rc = ferry_config_check_env(&d->cfg, cfg, NULL, rt, err, err_cap);
    if (rc < 0)
        return rc;
    ferry_env *env = ferry_xcalloc(1, sizeof(*env));
    env->d = d;
    env->cfg = cfg;
    uv_timer_init(d->loop, &env->retry_timer);
    env->retry_timer.data = env;
    uv_timer_init(d->loop, &env->kick_timer);
    env->kick_timer.data = env;
    *out = env;
    return 0;
}

static int scheduler__env_init(ferryd *d, ferry_env_config *cfg, ferry_env **out, char *err,
                               size_t err_cap)
{
    if (ferry_env_is_static(cfg))
        return scheduler__static_env_init(d, cfg, out, err, err_cap);
    const ferry_plugin *p =
        ferry_plugin_registry_get(&d->plugins, FERRY_PLUGIN_COMPUTE, cfg->compute);
    if (p == NULL) {
        snprintf(err, err_cap, "environment '%s': no compute plugin named '%s' was loaded",
                 cfg->name, cfg->compute);
        return FERRY_ECONFIG;
    }
    const ferry_plugin *rt = scheduler__runtime(d, cfg, err, err_cap);
    if (rt == NULL)
        return FERRY_ECONFIG;
    int rc = ferry_config_check_env(&d->cfg, cfg, p, rt, err, err_cap);
    if (rc < 0)
        return rc;
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
    uv_timer_init(d->loop, &env->kick_timer);
    env->kick_timer.data = env;
    ferry_sweep_env_init(d, env);
    *out = env;
    return 0;
}

static void scheduler__lost_tick(uv_timer_t *t)
{
    ferry_workers_check_lost(t->data);
}

static const ferry_lifecycle_observer scheduler__observer = {
    .on_create = ferry_scheduler_admit,
    .on_transition = ferry_scheduler_on_transition,
};

int ferry_scheduler_init(ferryd *d, char *err, size_t err_cap)
{
    ferry_lifecycle_observe(d, &scheduler__observer);
    ferry_map_init(&d->workers_by_id);
    ferry_map_init(&d->workers_by_token);
    ferry_map_init(&d->userqs);
    d->envs = ferry_xcalloc(d->cfg.n_envs, sizeof(ferry_env *));
    for (size_t i = 0; i < d->cfg.n_envs; i++) {
        int rc = scheduler__env_init(d, &d->cfg.envs[i], &d->envs[i], err, err_cap);
        if (rc < 0)
            return rc;
        d->envs[i]->index = i;
        d->n_envs++;
    }
    ferry_drain_restore(d);
    ferry_workers_restore(d);
    uv_timer_init(d->loop, &d->lost_timer);
    d->lost_timer.data = d;
    uint64_t every = (uint64_t)d->cfg.worker_lost_timeout_s * 250u; /* a quarter of it */
    uv_timer_start(&d->lost_timer, scheduler__lost_tick, every ? every : 250, every ? every : 250);
    uv_unref((uv_handle_t *)&d->lost_timer);
    return 0;
}

/* Once the executions are restored (ferryd.c): keep min_workers warm, and
 * reconcile the plugins' instances with the records. */
void ferry_scheduler_start(ferryd *d)
{
    ferry_drain_start(d);
    for (size_t i = 0; i < d->n_envs; i++) {
        ferry_env *env = d->envs[i];
        /* A worker taken back idle (its executions, if any, are attached by
         * now) retires after idle_timeout from here, as one that just
         * finished its work; its agent need not call first. */
        for (size_t k = 0; k < env->n_workers; k++)
            ferry_workers_touch(d, env->workers[k]);
        ferry_scheduler_kick(d, env);
    }
    ferry_sweep_start(d);
}

void ferry_scheduler_close(ferryd *d)
{
    uv_close((uv_handle_t *)&d->lost_timer, NULL);
    ferry_workers_close_all(d);
    for (size_t i = 0; i < d->n_envs; i++) {
        ferry_env *env = d->envs[i];
        uv_close((uv_handle_t *)&env->retry_timer, NULL);
        uv_close((uv_handle_t *)&env->kick_timer, NULL);
        if (env->compute) {
            ferry_sweep_env_close(env);
            ferry_plugin_instance_free(env->compute);
        }
        free(env->last_launch_error);
        free(env->broken);
        free(env->last_launch_note);
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
    size_t it = 0;
    const char *k;
    void *v;
    while (ferry_map_next(&d->userqs, &it, &k, &v)) {
        ferry_userq *u = v;
        free(u->name);
        free(u->env_in_flight);
        free(u);
    }
    ferry_map_free(&d->userqs);
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

static ferry_xlist *scheduler__queue_of(ferry_env *env, const ferry_exec *e)
{
    return &env->queue[e->priority ? 1 : 0];
}

static size_t scheduler__queued(const ferry_env *env)
{
    return env->queue[0].len + env->queue[1].len;
}

static ferry_exec *scheduler__next_queued(ferry_env *env)
{
    return env->queue[1].head ? env->queue[1].head : env->queue[0].head;
}

/* --- users and quotas --- */

static ferry_userq *scheduler__user(ferryd *d, const char *owner)
{
    const char *key = owner ? owner : "";
    ferry_userq *u = ferry_map_get(&d->userqs, key);
    if (u == NULL) {
        u = ferry_xcalloc(1, sizeof(*u));
        u->name = ferry_strdup(key);
        u->cfg = ferry_config_user(&d->cfg, owner);
        u->env_in_flight = ferry_xcalloc(d->n_envs ? d->n_envs : 1, sizeof(int));
        ferry_map_put(&d->userqs, key, u);
    }
    return u;
}

/* May `e` (the head of its user's created list) be admitted now? If not,
 * says why in `why` (may be NULL). */
static int scheduler__quota_allows(ferryd *d, ferry_userq *u, const ferry_exec *e, char *why,
                                   size_t cap)
{
    if (u->cfg == NULL)
        return 1;
    if (u->cfg->quota > 0 && u->in_flight >= u->cfg->quota) {
        if (why)
            snprintf(why, cap, "waiting for quota (%d of %d in flight)", u->in_flight,
                     u->cfg->quota);
        return 0;
    }
    ferry_env *env = ferry_scheduler_env(d, e->environment);
    int env_quota = env ? ferry_user_env_quota(u->cfg, env->cfg->name) : 0;
    if (env_quota > 0 && u->env_in_flight[env->index] >= env_quota) {
        if (why)
            snprintf(why, cap, "waiting for quota in environment '%s' (%d of %d in flight)",
                     env->cfg->name, u->env_in_flight[env->index], env_quota);
        return 0;
    }
    return 1;
}

static void scheduler__count(ferryd *d, ferry_exec *e, int delta)
{
    ferry_userq *u = scheduler__user(d, e->owner);
    ferry_env *env = ferry_scheduler_env(d, e->environment);
    u->in_flight += delta;
    if (env)
        u->env_in_flight[env->index] += delta;
}

/* Admit the user's created executions, in order, while the quota allows. */
static void scheduler__admit_user(ferryd *d, ferry_userq *u)
{
    while (u->created.head && scheduler__quota_allows(d, u, u->created.head, NULL, 0)) {
        ferry_exec *e = u->created.head;
        xlist_remove(&u->created, e);
        ferry_lifecycle_transition(d, e, FERRY_STATUS_QUEUED, NULL, FERRY_NO_EXIT_CODE);
    }
}

void ferry_scheduler_wake(ferryd *d, ferry_worker *w)
{
    if (d->wake_worker)
        d->wake_worker(d, w);
}

void ferry_scheduler_admit(ferryd *d, ferry_exec *e)
{
    ferry_userq *u = scheduler__user(d, e->owner);
    xlist_push(&u->created, e);
    scheduler__admit_user(d, u);
}

void ferry_scheduler_restore(ferryd *d, ferry_exec *e)
{
    ferry_env *env = ferry_scheduler_env(d, e->environment);
    if (env == NULL && e->status != FERRY_STATUS_CREATED) {
        ferry_lifecycle_transition(d, e, FERRY_STATUS_ERROR,
                                   "its environment is no longer configured", FERRY_NO_EXIT_CODE);
        return;
    }
    if (e->status == FERRY_STATUS_CREATED) {
        ferry_scheduler_admit(d, e);
        return;
    }
    scheduler__count(d, e, +1);
    ferry_logstore_recover(d, e); /* before its agent resends anything */
    ferry_worker *w = e->worker_id ? ferry_map_get(&d->workers_by_id, e->worker_id) : NULL;
    if (w && w->env == env && !ferry_worker_state_is_retiring(w->state)) {
        /* Its agent may run it right now: it says so in its next poll
         * (scheduler__reconcile sorts out what it does not hold). */
        scheduler__attach(w, e);
        return;
    }
    if (e->status == FERRY_STATUS_QUEUED) {
        xlist_push(scheduler__queue_of(env, e), e);
        ferry_scheduler_kick(d, env);
        return;
    }
    ferry_lifecycle_transition(d, e, FERRY_STATUS_ERROR,
                               "worker lost (its record did not survive a restart of ferryd)",
                               FERRY_NO_EXIT_CODE);
}

/* --- workers and slots --- */

static void scheduler__release_gpu(ferry_worker *w, ferry_exec *e)
{
    if (e->gpu_index >= 0 && w->gpu_busy)
        w->gpu_busy[e->gpu_index] = 0;
    e->gpu_index = -1;
}

static void scheduler__unassign(ferry_worker *w, ferry_exec *e)
{
    for (size_t i = 0; i < w->n_assigned; i++) {
        if (w->assigned[i] == e) {
            w->assigned[i] = w->assigned[--w->n_assigned];
            break;
        }
    }
    scheduler__release_gpu(w, e);
    e->worker = NULL;
}

static void scheduler__order_stop(ferryd *d, ferry_worker *w, ferry_exec *e)
{
    if (w->stop_orders == NULL)
        w->stop_orders = json_array();
    json_array_append_new(w->stop_orders, json_string(e->id));
    ferry_scheduler_wake(d, w);
}

static int scheduler__in_flight(ferry_status s)
{
    return s == FERRY_STATUS_QUEUED || s == FERRY_STATUS_STARTED || s == FERRY_STATUS_STOPPING;
}

void ferry_scheduler_on_transition(ferryd *d, ferry_exec *e, ferry_status from)
{
    ferry_env *env = ferry_scheduler_env(d, e->environment);
    ferry_worker *w = e->worker;
    if (from == FERRY_STATUS_CREATED) {
        ferry_userq *u = scheduler__user(d, e->owner);
        if (xlist_holds(&u->created, e))
            xlist_remove(&u->created, e);
    }
    if (env && from == FERRY_STATUS_QUEUED && xlist_holds(scheduler__queue_of(env, e), e))
        xlist_remove(scheduler__queue_of(env, e), e);
    if (!scheduler__in_flight(from) && scheduler__in_flight(e->status))
        scheduler__count(d, e, +1);
    if (e->status == FERRY_STATUS_QUEUED && env) {
        xlist_push(scheduler__queue_of(env, e), e);
        ferry_scheduler_kick(d, env);
        return;
    }
    if (e->status == FERRY_STATUS_STOPPING && w) {
        scheduler__order_stop(d, w, e);
        return;
    }
    if (!ferry_status_is_terminal(e->status))
        return;
    if (scheduler__in_flight(from)) {
        scheduler__count(d, e, -1);
        scheduler__admit_user(d, scheduler__user(d, e->owner));
    }
    if (w) {
        /* Ended before the worker said so (a stop while queued): it must stop too. */
        if (e->delivered && from == FERRY_STATUS_QUEUED)
            scheduler__order_stop(d, w, e);
        scheduler__unassign(w, e);
        ferry_workers_touch(d, w);
    }
    if (env)
        ferry_scheduler_kick(d, env);
}

static ferry_worker *scheduler__pick_worker(ferry_env *env)
{
    ferry_worker *best = NULL;
    for (size_t i = 0; i < env->n_workers; i++) {
        ferry_worker *w = env->workers[i];
        if (!ferry_worker_state_takes_work(w->state) || ferry_worker_free_slots(w) <= 0)
            continue;
        if (w->poll) /* a worker that is waiting right now answers fastest */
            return w;
        if (best == NULL)
            best = w;
    }
    return best;
}

/* One GPU per execution on a GPU environment's worker: the lowest free one. */
static void scheduler__take_gpu(ferry_worker *w, ferry_exec *e)
{
    int gpus = w->env->cfg->gpus;
    free(e->gpus);
    e->gpus = NULL;
    if (gpus <= 0)
        return;
    if (w->gpu_busy == NULL)
        w->gpu_busy = ferry_xcalloc((size_t)gpus, 1);
    for (int i = 0; i < gpus; i++) {
        if (!w->gpu_busy[i]) {
            w->gpu_busy[i] = 1;
            e->gpu_index = i;
            e->gpus = ferry_asprintf("%d", i);
            return;
        }
    }
}

/* Re-attach after a restart: the worker had it, GPU and all. */
static void scheduler__attach(ferry_worker *w, ferry_exec *e)
{
    e->worker = w;
    e->delivered = 1;
    int gpus = w->env->cfg->gpus;
    if (e->gpus && gpus > 0) {
        int idx = atoi(e->gpus);
        if (w->gpu_busy == NULL)
            w->gpu_busy = ferry_xcalloc((size_t)gpus, 1);
        if (idx >= 0 && idx < gpus) {
            w->gpu_busy[idx] = 1;
            e->gpu_index = idx;
        }
    }
    w->assigned = ferry_xrealloc(w->assigned, (w->n_assigned + 1) * sizeof(*w->assigned));
    w->assigned[w->n_assigned++] = e;
}

void ferry_scheduler_requeue(ferryd *d, ferry_exec *e)
{
    ferry_worker *w = e->worker;
    ferry_env *env = ferry_scheduler_env(d, e->environment);
    if (w)
        scheduler__unassign(w, e);
    e->delivered = 0;
    free(e->worker_id);
    e->worker_id = NULL;
    if (env == NULL)
        return;
    ferry_xlist *q = scheduler__queue_of(env, e);
    /* At the head: it was first in line when it was handed out. */
    e->qprev = NULL;
    e->qnext = q->head;
    if (q->head)
        q->head->qprev = e;
    else
        q->tail = e;
    q->head = e;
    q->len++;
    ferry_scheduler_kick(d, env);
}

/* The agent's poll lists what it runs. Something handed to it that it does
 * not list never reached it (ferryd died before the answer left) or it lost
 * it: hand a queued one out again; one that had started is lost. */
void ferry_scheduler_reconcile(ferryd *d, ferry_worker *w, const json_t *running)
{
    for (size_t i = 0; i < w->n_assigned;) {
        ferry_exec *e = w->assigned[i];
        int listed = 0;
        size_t k;
        json_t *v;
        json_array_foreach(running, k, v) listed |=
            json_is_string(v) && strcmp(json_string_value(v), e->id) == 0;
        if (!e->delivered || listed) {
            i++;
        } else if (e->status == FERRY_STATUS_QUEUED) {
            e->delivered = 0;
            i++;
        } else {
            ferry_lifecycle_transition(d, e, FERRY_STATUS_ERROR,
                                       "worker lost: its agent no longer runs it",
                                       FERRY_NO_EXIT_CODE);
        }
    }
}

static void scheduler__assign(ferryd *d, ferry_worker *w, ferry_exec *e)
{
    xlist_remove(scheduler__queue_of(w->env, e), e);
    e->worker = w;
    e->delivered = 0;
    free(e->worker_id);
    e->worker_id = ferry_strdup(w->id);
    scheduler__take_gpu(w, e);
    w->assigned = ferry_xrealloc(w->assigned, (w->n_assigned + 1) * sizeof(*w->assigned));
    w->assigned[w->n_assigned++] = e;
    ferry_workers_touch(d, w);
}

static size_t scheduler__coming_slots(const ferry_env *env)
{
    size_t coming = 0;
    for (size_t i = 0; i < env->n_workers; i++)
        if (ferry_worker_state_is_coming(env->workers[i]->state))
            coming += (size_t)env->workers[i]->slots;
    return coming;
}

static void scheduler__launch_more(ferryd *d, ferry_env *env)
{
    if (env->compute == NULL) /* static: its machines join by themselves */
        return;
    size_t coming = scheduler__coming_slots(env);
    while (!env->retry_pending && env->n_workers < (size_t)env->cfg->max_workers &&
           (scheduler__queued(env) > coming || env->n_workers < (size_t)env->cfg->min_workers)) {
        if (ferry_workers_launch(d, env) < 0)
            break;
        coming = scheduler__coming_slots(env);
    }
}

void ferry_scheduler_kick(ferryd *d, ferry_env *env)
{
    if (d->stopping)
        return;
    ferry_worker *w;
    ferry_exec *e;
    /* Draining (drain.c): what is queued waits, and nothing is launched. */
    while (!env->draining && (e = scheduler__next_queued(env)) != NULL &&
           (w = scheduler__pick_worker(env)) != NULL)
        scheduler__assign(d, w, e);
    for (size_t i = 0; i < env->n_workers; i++)
        ferry_scheduler_wake(d, env->workers[i]);
    if (!env->draining)
        scheduler__launch_more(d, env);
}

static void scheduler__kick_cb(uv_timer_t *t)
{
    ferry_env *env = t->data;
    ferry_scheduler_kick(env->d, env);
}

void ferry_scheduler_kick_soon(ferryd *d, ferry_env *env)
{
    if (d->stopping || uv_is_active((uv_handle_t *)&env->kick_timer))
        return;
    uv_timer_start(&env->kick_timer, scheduler__kick_cb, 0, 0);
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

/* --- why is it waiting, and the pools as JSON --- */

typedef struct scheduler__pool {
    int idle, busy, launching, total;
    int awaiting; /* taken back at start, not heard from since */
} scheduler__pool;

static scheduler__pool scheduler__pool_counts(const ferry_env *env)
{
    scheduler__pool p = {0, 0, 0, 0, 0};
    for (size_t i = 0; i < env->n_workers; i++) {
        const ferry_worker *w = env->workers[i];
        if (ferry_worker_state_is_coming(w->state))
            p.launching++;
        else if (ferry_worker_state_takes_work(w->state) && w->n_assigned == 0)
            p.idle++;
        else if (ferry_worker_state_takes_work(w->state))
            p.busy++;
        p.total++;
        p.awaiting += w->awaiting;
    }
    return p;
}

static size_t scheduler__ahead(const ferry_env *env, const ferry_exec *e)
{
    size_t n = e->priority ? 0 : env->queue[1].len;
    for (const ferry_exec *x = scheduler__queue_of((ferry_env *)env, e)->head; x && x != e;
         x = x->qnext)
        n++;
    return n;
}

static void scheduler__why_queued(const ferry_env *env, const ferry_exec *e, char *buf, size_t cap)
{
    scheduler__pool p = scheduler__pool_counts(env);
    int max = env->cfg->max_workers;
    if (e->worker) {
        snprintf(buf, cap, "handed to worker %s, starting", e->worker->id);
    } else if (env->draining) {
        snprintf(buf, cap,
                 "waiting: environment '%s' is draining; nothing starts there until an "
                 "operator undrains it (ferry envs undrain %s)",
                 env->cfg->name, env->cfg->name);
    } else if (env->broken) {
        snprintf(buf, cap,
                 "waiting for a worker: environment '%s' is broken: %s (launches are tried again "
                 "every 10 minutes; an operator must fix this)",
                 env->cfg->name, env->broken);
    } else if (env->retry_pending) {
        double in = env->retry_at - ferry_now();
        snprintf(buf, cap,
                 "waiting for a worker: launching failed %d time%s (%s); retrying in %.0f s",
                 env->launch_failures, env->launch_failures == 1 ? "" : "s",
                 env->last_launch_error ? env->last_launch_error : "?", in > 0 ? in : 0);
    } else if (p.launching > 0) {
        snprintf(buf, cap, "waiting for a worker: launching %d (pool %d of max %d)%s%s",
                 p.launching, p.total, max, env->last_launch_note ? "; last launch: " : "",
                 env->last_launch_note ? env->last_launch_note : "");
    } else {
        snprintf(buf, cap,
                 "waiting for a worker: all %d busy (pool %d of max %d), %zu ahead in the queue",
                 p.busy, p.total, max, scheduler__ahead(env, e));
    }
}

int ferry_scheduler_why(ferryd *d, const ferry_exec *e, char *buf, size_t cap)
{
    if (!e->active)
        return FERRY_ENOENT;
    ferry_env *env = ferry_scheduler_env(d, e->environment);
    if (e->status == FERRY_STATUS_CREATED) {
        ferry_userq *u = scheduler__user(d, e->owner);
        if (u->created.head && !scheduler__quota_allows(d, u, u->created.head, buf, cap))
            return 0;
        snprintf(buf, cap, "waiting for quota");
        return 0;
    }
    if (e->status == FERRY_STATUS_QUEUED && env) {
        scheduler__why_queued(env, e, buf, cap);
        return 0;
    }
    return FERRY_ENOENT;
}

json_t *ferry_scheduler_env_json(const ferry_env *env)
{
    scheduler__pool p = scheduler__pool_counts(env);
    return json_pack(
        "{s:s, s:s, s:s, s:i, s:i, s:i, s:i, s:{s:i, s:i, s:i, s:i, s:i}, s:I, s:I, s:s?, s:s?, "
        "s:s?, s:b}",
        "name", env->cfg->name, "compute", env->cfg->compute, "runtime", env->cfg->runtime, "gpus",
        env->cfg->gpus, "min_workers", env->cfg->min_workers, "max_workers", env->cfg->max_workers,
        "idle_timeout", env->cfg->idle_timeout_s, "workers", "idle", p.idle, "busy", p.busy,
        "launching", p.launching, "total", p.total, "awaiting", p.awaiting, "queued",
        (json_int_t)scheduler__queued(env), "queued_priority", (json_int_t)env->queue[1].len,
        "last_launch_error", env->last_launch_error, "broken", env->broken, "last_launch_note",
        env->last_launch_note, "draining", env->draining);
}

json_t *ferry_scheduler_envs_json(ferryd *d)
{
    json_t *list = json_array();
    for (size_t i = 0; i < d->n_envs; i++)
        json_array_append_new(list, ferry_scheduler_env_json(d->envs[i]));
    return list;
}
