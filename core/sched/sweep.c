/* The orphan sweep: no instance is ever left running without a record.
 *
 * At start and every instance_sweep_interval seconds, each environment's
 * compute plugin lists (op `list`) the instances that carry this daemon's
 * id. For each one:
 *   - no worker record has its instance id or its worker id: an orphan (a
 *     crash between RunInstances and storing its id, a record lost with a
 *     database): terminated;
 *   - a record restored without its instance id (ferryd died while the
 *     launch was in flight) has its worker id: the record learns the id;
 *   - its worker's instance is ending and ferryd did not ask (a spot
 *     interruption, someone else's terminate): the worker is retired and
 *     what it ran ends in error saying why.
 * Launch intents are stored before the plugin is asked, so an instance
 * whose launch is still in flight is never taken for an orphan: its worker
 * id is known. Nothing here knows a cloud: the plugin's list says it all.
 */
#include "scheduler.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compute.h"
#include "log.h"
#include "util.h"

typedef struct sweep__arg {
    ferryd *d;
    char env[256];
} sweep__arg;

static int sweep__ending(const char *state)
{
    return state && (strcmp(state, "shutting-down") == 0 || strcmp(state, "terminated") == 0 ||
                     strcmp(state, "stopping") == 0 || strcmp(state, "stopped") == 0);
}

/* The worker of a listed instance: by its id, else by its worker tag. */
static ferry_worker *sweep__worker(ferryd *d, const char *instance_id, const char *worker_id)
{
    ferry_worker *w = ferry_workers_by_instance(d, instance_id);
    if (w == NULL && worker_id && worker_id[0]) {
        w = ferry_map_get(&d->workers_by_id, worker_id);
        if (w && (w->state == FERRY_WORKER_GONE || (w->instance_id && w->instance_id[0] &&
                                                    strcmp(w->instance_id, instance_id) != 0)))
            w = NULL; /* a worker with another instance: this one is extra */
    }
    return w;
}

/* An instance of a known worker ended unasked. */
static void sweep__ended(ferryd *d, ferry_worker *w, const char *state, const char *reason)
{
    char why[400];
    /* "terminated (spot interruption)": shutting-down is on its way there. */
    const char *word = strcmp(state, "shutting-down") == 0 ? "terminated"
                       : strcmp(state, "stopping") == 0    ? "stopped"
                                                           : state;
    snprintf(why, sizeof(why), "instance %s %s%s%s%s", w->instance_id, word,
             reason && reason[0] ? " (" : "", reason ? reason : "", reason && reason[0] ? ")" : "");
    if (strcmp(state, "shutting-down") == 0 || strcmp(state, "terminated") == 0) {
        /* Gone for good: the record goes with it. */
        ferry_workers_instance_gone(w->env, w->instance_id, why);
        return;
    }
    /* Stopped is not gone (its volume still costs): retire it properly. */
    ferry_warn("worker %s is lost: %s", w->id, why);
    ferry_workers_lost(d, w, why);
}

static void sweep__one(ferryd *d, ferry_env *env, const json_t *item)
{
    const char *id = json_string_value(json_object_get(item, "instance_id"));
    const char *state = json_string_value(json_object_get(item, "state"));
    const char *worker_id = json_string_value(json_object_get(item, "worker_id"));
    const char *reason = json_string_value(json_object_get(item, "reason"));
    if (id == NULL || id[0] == '\0')
        return;
    ferry_worker *w = sweep__worker(d, id, worker_id);
    if (w == NULL) {
        if (!sweep__ending(state) || (state && strncmp(state, "stop", 4) == 0))
            ferry_workers_retire_orphan(d, env, id, "found by the orphan sweep");
        return;
    }
    if (w->instance_id == NULL || w->instance_id[0] == '\0')
        ferry_workers_adopt(d, w, id);
    if (sweep__ending(state) && !ferry_worker_state_is_retiring(w->state) && w->instance_id &&
        strcmp(w->instance_id, id) == 0)
        sweep__ended(d, w, state, reason);
}

static void sweep__done(void *arg, int status, const ferry_op_result *res)
{
    sweep__arg *a = arg;
    ferryd *d = a->d;
    ferry_env *env = d->stopping ? NULL : ferry_scheduler_env(d, a->env);
    free(a);
    if (env == NULL)
        return;
    env->sweeping = 0;
    if (status < 0) {
        const ferry_error_detail *err = res ? res->error : NULL;
        const char *msg = err && err->message[0] ? err->message : ferry_strerror(status);
        ferry_warn("environment '%s': listing its instances failed: %s", env->cfg->name, msg);
        if (ferry_workers_error_breaks(err))
            ferry_workers_env_broken(d, env, msg);
        return;
    }
    json_t *list = res && res->text ? json_loads(res->text, 0, NULL) : NULL;
    size_t i;
    json_t *item;
    json_array_foreach(list, i, item) sweep__one(d, env, item);
    json_decref(list);
}

static void sweep__env(ferryd *d, ferry_env *env)
{
    /* A broken environment's calls are refused alike: its next try comes
     * with its rare retry, not every few seconds. */
    if (env->compute == NULL || env->sweeping || d->stopping || (env->broken && env->retry_pending))
        return;
    if (!ferry_compute_can_list(env))
        return;
    sweep__arg *a = ferry_xcalloc(1, sizeof(*a));
    a->d = d;
    snprintf(a->env, sizeof(a->env), "%s", env->cfg->name);
    int rc = ferry_compute_list(env, d->daemon_id, sweep__done, a);
    if (rc == FERRY_ECANCELED) {
        free(a); /* shutting down */
        return;
    }
    if (rc < 0) {
        free(a);
        ferry_warn("environment '%s': cannot list its instances: %s", env->cfg->name,
                   ferry_strerror(rc));
        return;
    }
    env->sweeping = 1;
}

static void sweep__tick(uv_timer_t *t)
{
    ferry_env *env = t->data;
    sweep__env(env->d, env);
}

void ferry_sweep_env_init(ferryd *d, ferry_env *env)
{
    uv_timer_init(d->loop, &env->sweep_timer);
    env->sweep_timer.data = env;
}

void ferry_sweep_start(ferryd *d)
{
    uint64_t every = (uint64_t)d->cfg.instance_sweep_interval_s * 1000u;
    for (size_t i = 0; i < d->n_envs; i++) {
        ferry_env *env = d->envs[i];
        if (env->compute == NULL)
            continue;
        /* Now (after the records are restored), then every few minutes. */
        uv_timer_start(&env->sweep_timer, sweep__tick, 0, every ? every : 180000);
        uv_unref((uv_handle_t *)&env->sweep_timer);
    }
}

void ferry_sweep_env_close(ferry_env *env)
{
    uv_close((uv_handle_t *)&env->sweep_timer, NULL);
}
