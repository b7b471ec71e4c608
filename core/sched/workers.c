/* Worker records: launched through the environment's compute plugin,
 * registered by their agent with a one-time bootstrap token, retired after
 * the idle timeout. The launch intent is stored before the plugin is asked,
 * so that no instance exists without a record; the instance id is stored as
 * soon as the plugin says it; a record goes only once the plugin's describe
 * shows its instance shutting down or gone (a failed terminate is tried
 * again, with backoff, for as long as it takes). What a crash leaves behind
 * the orphan sweep (sweep.c) finds. */
#include "scheduler.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bundle.h"
#include "compute.h"
#include "db.h"
#include "workerrows.h"
#include "lifecycle.h"
#include "log.h"
#include "util.h"

#define WORKERS__REGISTER_DEADLINE_MS 120000
#define WORKERS__RETRY_BASE_MS 1000u
#define WORKERS__RETRY_MAX_MS 60000u
/* A broken environment (refused credentials or settings) tries again this
 * rarely: an operator may fix IAM without restarting ferryd, but ferryd
 * must not hammer the API with calls that cannot succeed. */
#define WORKERS__BROKEN_RETRY_MS 600000u

static void workers__db_upsert(ferryd *d, ferry_worker *w)
{
    ferry_worker_row row = {
        .id = w->id,
        .environment = w->env->cfg->name,
        .instance_id = w->instance_id,
        .state = ferry_worker_state_db_name(w->state),
        .token_hash = w->token_hash,
        .bootstrap_hash = w->bootstrap_hash,
        .slots = w->slots,
    };
    if (ferry_workerrows_save(d, &row) < 0)
        ferry_error("worker %s: its record is not stored", w->id);
}

static void workers__db_delete(ferryd *d, ferry_worker *w)
{
    ferry_workerrows_delete(d, w->id);
}

ferry_worker_ref *ferry_worker_ref_new(ferryd *d, const ferry_worker *w)
{
    ferry_worker_ref *ref = ferry_xcalloc(1, sizeof(*ref));
    ref->d = d;
    memcpy(ref->id, w->id, sizeof(ref->id));
    return ref;
}

ferry_worker *ferry_worker_ref_take(ferry_worker_ref *ref)
{
    ferryd *d = ref->d;
    ferry_worker *w = d->stopping ? NULL : ferry_map_get(&d->workers_by_id, ref->id);
    free(ref);
    return w && w->state != FERRY_WORKER_GONE ? w : NULL;
}

static void workers__wipe_token(ferry_worker *w)
{
    if (w->launch_token)
        memset(w->launch_token, 0, strlen(w->launch_token));
    free(w->launch_token);
    w->launch_token = NULL;
}

static void workers__closed(uv_handle_t *h)
{
    ferry_worker *w = h->data;
    workers__wipe_token(w);
    free(w->instance_id);
    free(w->assigned);
    json_decref(w->stop_orders);
    free(w->gpu_busy);
    free(w);
}

/* Executions of a worker that is gone: those it had not started go back in
 * line, the others end in error. */
static void workers__drop_assigned(ferryd *d, ferry_worker *w, const char *why)
{
    /* First out of the pool: requeueing kicks the scheduler, which must not
     * hand the same executions straight back to this worker. */
    if (w->n_assigned > 0 && !ferry_worker_state_is_retiring(w->state))
        ferry_worker_set_state(w,
                               ferry_worker_state_launch_in_flight(w->state)
                                   ? FERRY_WORKER_RETIRE_LAUNCHING
                                   : FERRY_WORKER_RETIRING,
                               why);
    while (w->n_assigned > 0) {
        ferry_exec *e = w->assigned[0];
        if (e->status == FERRY_STATUS_QUEUED) { /* never ran there: back in line */
            ferry_scheduler_requeue(d, e);
            continue;
        }
        char reason[300];
        snprintf(reason, sizeof(reason), "worker lost: %s", why);
        if (ferry_lifecycle_transition(d, e, FERRY_STATUS_ERROR, reason, FERRY_NO_EXIT_CODE) < 0) {
            e->worker = NULL;
            w->assigned[0] = w->assigned[--w->n_assigned];
        }
    }
}

/* Out of its environment's list and of the daemon's maps. */
static void workers__unlist(ferryd *d, ferry_worker *w)
{
    ferry_env *env = w->env;
    if (w->awaiting) {
        w->awaiting = 0;
        d->workers_awaiting--;
    }
    for (size_t i = 0; i < env->n_workers; i++)
        if (env->workers[i] == w) {
            env->workers[i] = env->workers[--env->n_workers];
            break;
        }
    ferry_map_del(&d->workers_by_id, w->id);
    if (w->token_hash[0])
        ferry_map_del(&d->workers_by_token, w->token_hash);
}

static void workers__remove(ferryd *d, ferry_worker *w, const char *why)
{
    workers__drop_assigned(d, w, why);
    workers__unlist(d, w);
    workers__db_delete(d, w);
    ferry_worker_set_state(w, FERRY_WORKER_GONE, why);
    ferry_scheduler_wake(d, w); /* releases a held poll */
    uv_close((uv_handle_t *)&w->timer, workers__closed);
    /* A lost worker counted in the pool until now: what it gave back to the
     * queue, and min_workers, may need a launch that only this frees room
     * for. Every way a record goes passes here. */
    ferry_scheduler_kick_soon(d, w->env);
}

static void workers__retry_cb(uv_timer_t *t)
{
    ferry_env *env = t->data;
    env->retry_pending = 0;
    ferry_scheduler_kick(env->d, env);
}

static void workers__retry_in(ferry_env *env, uint64_t delay_ms)
{
    env->retry_pending = 1;
    env->retry_at = ferry_now() + (double)delay_ms / 1000.0;
    uv_timer_start(&env->retry_timer, workers__retry_cb, delay_ms, 0);
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
    workers__retry_in(env, delay_ms);
}

int ferry_workers_error_breaks(const ferry_error_detail *err)
{
    return err && !err->retryable &&
           (err->code == FERRY_EAUTH || err->code == FERRY_EPERM || err->code == FERRY_ECONFIG);
}

void ferry_workers_env_broken(ferryd *d, ferry_env *env, const char *why)
{
    (void)d;
    if (env->broken == NULL || strcmp(env->broken, why) != 0)
        ferry_error("environment '%s' is broken: %s; no launch until this is fixed (tried "
                    "again every %u minutes)",
                    env->cfg->name, why, WORKERS__BROKEN_RETRY_MS / 60000u);
    free(env->broken);
    env->broken = ferry_strdup(why);
    free(env->last_launch_error);
    env->last_launch_error = ferry_strdup(why);
    workers__retry_in(env, WORKERS__BROKEN_RETRY_MS);
}

/* A launch answered without a worker left to take it (ferryd stopping, or
 * a record dropped meanwhile): no instance may live without a record. */
static void workers__launch_stray(ferryd *d, ferry_env *env, const char *instance_id)
{
    if (instance_id && instance_id[0] && !d->stopping)
        ferry_workers_retire_orphan(d, env, instance_id, "its worker record is gone");
}

static void workers__launch_ok(ferryd *d, ferry_worker *w, const ferry_op_result *res)
{
    ferry_env *env = w->env;
    free(w->instance_id);
    w->instance_id = ferry_strdup(res && res->instance_id ? res->instance_id : "");
    workers__db_upsert(d, w); /* stored as soon as known */
    if (env->broken) {        /* what was refused works again */
        ferry_info("environment '%s' works again", env->cfg->name);
        free(env->broken);
        env->broken = NULL;
    }
    free(env->last_launch_note);
    env->last_launch_note = res && res->text && res->text[0] ? ferry_strdup(res->text) : NULL;
    if (w->state == FERRY_WORKER_RETIRING) /* retired while it was launching */
        ferry_workers_terminate(d, w, "retired while launching");
}

typedef struct workers__launch_arg {
    ferry_worker_ref *ref;
    ferry_env *env;
} workers__launch_arg;

static void workers__launch_done(void *arg, int status, const ferry_op_result *res)
{
    workers__launch_arg *a = arg;
    ferryd *d = a->ref->d;
    ferry_env *env = a->env;
    ferry_worker *w = ferry_worker_ref_take(a->ref);
    free(a);
    if (w == NULL) {
        if (status >= 0 && !d->stopping)
            workers__launch_stray(d, env, res ? res->instance_id : NULL);
        return;
    }
    if (status >= 0) {
        ferry_worker_set_state(w, ferry_worker_state_launched(w->state), "launched");
        workers__launch_ok(d, w, res);
        return;
    }
    char msg[600];
    const ferry_error_detail *err = res ? res->error : NULL;
    snprintf(msg, sizeof(msg), "%s",
             err && err->message[0] ? err->message : ferry_strerror(status));
    workers__remove(d, w, msg);
    if (ferry_workers_error_breaks(err))
        ferry_workers_env_broken(d, env, msg);
    else
        workers__launch_failed(d, env, msg);
}

static void workers__terminate_step(ferryd *d, ferry_worker *w);

/* The workers that count towards min_workers: all but the retiring ones. */
static size_t workers__staying(const ferry_env *env)
{
    size_t n = 0;
    for (size_t i = 0; i < env->n_workers; i++)
        n += !ferry_worker_state_is_retiring(env->workers[i]->state) &&
             env->workers[i]->state != FERRY_WORKER_GONE;
    return n;
}

static void workers__timer_cb(uv_timer_t *t)
{
    ferry_worker *w = t->data;
    ferryd *d = w->env->d;
    if (ferry_worker_state_is_coming(w->state)) {
        ferry_env *env = w->env;
        ferry_workers_terminate(d, w, "its agent did not register in time");
        workers__launch_failed(d, env, "the agent did not register within 120 s");
    } else if (ferry_worker_state_takes_work(w->state) && w->n_assigned == 0) {
        /* Several idle timers may end together (after a restart, all of
         * them): only those past min_workers retire. */
        if (workers__staying(w->env) > (size_t)w->env->cfg->min_workers)
            ferry_workers_terminate(d, w, "idle timeout");
    } else if (w->state == FERRY_WORKER_RETIRING) {
        workers__terminate_step(d, w); /* the last try failed: again */
    }
}

void ferry_workers_instance_gone(void *arg, const char *instance_id, const char *reason)
{
    ferry_env *env = arg;
    ferryd *d = env->d;
    for (size_t i = 0; i < env->n_workers; i++) {
        ferry_worker *w = env->workers[i];
        if (w->state == FERRY_WORKER_GONE || w->instance_id == NULL ||
            strcmp(w->instance_id, instance_id) != 0)
            continue;
        int was_launching = ferry_worker_state_is_coming(w->state);
        ferry_warn("worker %s (%s) is gone: %s", w->id, instance_id, reason);
        workers__remove(d, w, reason); /* kicks the environment */
        if (was_launching)
            workers__launch_failed(d, env, reason);
        return;
    }
}

ferry_worker *ferry_workers_by_instance(ferryd *d, const char *instance_id)
{
    for (size_t i = 0; instance_id && i < d->n_envs; i++)
        for (size_t k = 0; k < d->envs[i]->n_workers; k++) {
            ferry_worker *w = d->envs[i]->workers[k];
            if (w->state != FERRY_WORKER_GONE && w->instance_id &&
                strcmp(w->instance_id, instance_id) == 0)
                return w;
        }
    return NULL;
}

void ferry_workers_adopt(ferryd *d, ferry_worker *w, const char *instance_id)
{
    if (w->instance_id != NULL || w->state == FERRY_WORKER_BUNDLING ||
        ferry_worker_state_launch_in_flight(w->state))
        return;
    ferry_info("worker %s: its instance is %s (found by its tag)", w->id, instance_id);
    w->instance_id = ferry_strdup(instance_id);
    workers__db_upsert(d, w);
}

static void workers__orphan_done(void *arg, int status, const ferry_op_result *res)
{
    char *instance_id = arg;
    if (status < 0 && status != FERRY_ENOENT)
        ferry_warn("orphan instance %s: terminate: %s (the next sweep tries again)", instance_id,
                   res && res->error ? res->error->message : ferry_strerror(status));
    free(instance_id);
}

void ferry_workers_retire_orphan(ferryd *d, ferry_env *env, const char *instance_id,
                                 const char *why)
{
    (void)d;
    if (env->compute == NULL)
        return;
    ferry_warn("environment '%s': instance %s has no worker record (%s): terminating it",
               env->cfg->name, instance_id, why);
    char *arg = ferry_strdup(instance_id);
    int rc = ferry_compute_terminate(env, arg, workers__orphan_done, arg);
    if (rc == FERRY_ECANCELED) {
        free(arg); /* shutting down */
    } else if (rc < 0) {
        ferry_warn("orphan instance %s: terminate: %s", instance_id, ferry_strerror(rc));
        free(arg);
    }
}

/* A worker record in its environment (not stored yet). */
static ferry_worker *workers__new_with_id(ferryd *d, ferry_env *env, const char *id)
{
    ferry_worker *w = ferry_xcalloc(1, sizeof(*w));
    snprintf(w->id, sizeof(w->id), "%s", id);
    w->env = env;
    w->slots = env->cfg->gpus > 0 ? env->cfg->gpus : 1;
    w->last_seen = ferry_now();
    uv_timer_init(d->loop, &w->timer);
    w->timer.data = w;
    env->workers = ferry_xrealloc(env->workers, (env->n_workers + 1) * sizeof(*env->workers));
    env->workers[env->n_workers++] = w;
    ferry_map_put(&d->workers_by_id, w->id, w);
    return w;
}

static ferry_worker *workers__new(ferryd *d, ferry_env *env)
{
    char id[37];
    ferry_uuid(id);
    return workers__new_with_id(d, env, id);
}

static unsigned workers__plugin_flags(const ferry_env *env)
{
    return ferry_compute_flags(env);
}

/* Ask the plugin for the instance; `bundle_sha` is set for plugins that
 * boot the agent from user-data. The one-time token is wiped after. */
static int workers__launch_now(ferryd *d, ferry_worker *w, const char *bundle_sha)
{
    ferry_env *env = w->env;
    char agent_path[PATH_MAX + 16];
    snprintf(agent_path, sizeof(agent_path), "%s/ferry-agent", d->exe_dir);
    char *user_data =
        bundle_sha ? ferry_bootstrap_user_data(d, env->cfg, w->id, w->launch_token, bundle_sha)
                   : NULL;
    ferry_launch_request req = {
        .struct_size = sizeof(req),
        .daemon_id = d->daemon_id,
        .environment = env->cfg->name,
        .worker_id = w->id,
        .server_url = d->server_url,
        .ca_file = d->cfg.tls_ca, /* NULL without TLS: the system store */
        .bootstrap_token = w->launch_token,
        .agent_path = agent_path,
        .client_token = w->id,
        .slots = w->slots,
        .user_data = user_data,
    };
    workers__launch_arg *a = ferry_xcalloc(1, sizeof(*a));
    a->ref = ferry_worker_ref_new(d, w);
    a->env = env;
    int rc = ferry_compute_launch(env, &req, workers__launch_done, a);
    if (user_data) {
        memset(user_data, 0, strlen(user_data));
        free(user_data);
    }
    workers__wipe_token(w);
    if (rc < 0) {
        free(a->ref);
        free(a);
        workers__remove(d, w, ferry_strerror(rc));
        if (rc == FERRY_ECANCELED) {
            /* The plugin is shutting down: nothing was launched, nothing failed. */
        } else if (rc == FERRY_ETOOBIG || rc == FERRY_ECONFIG) {
            /* Refused before any call (user-data too large for the cloud, a
             * setting): trying again every few seconds cannot help. */
            char why[160];
            snprintf(why, sizeof(why), "the compute plugin refused the launch request: %s%s",
                     ferry_strerror(rc), rc == FERRY_ETOOBIG ? " (its user-data)" : "");
            ferry_workers_env_broken(d, env, why);
        } else {
            workers__launch_failed(d, env, ferry_strerror(rc));
        }
        return rc;
    }
    ferry_worker_set_state(w, FERRY_WORKER_LAUNCHING, "launch asked");
    return 0;
}

/* The agent bundle is built (or could not be): the launches waiting for it
 * go on. */
static void workers__bundle_built(ferryd *d, int status, void *arg)
{
    (void)arg;
    if (d->stopping)
        return;
    ferry_bundle_info bundle = {0};
    if (status == 0 && ferry_bundle_get(d, &bundle, workers__bundle_built, NULL) == FERRY_EAGAIN)
        return; /* changed again meanwhile: this callback comes back */
    const char *sha = bundle.sha256;
    for (size_t i = 0; i < d->n_envs; i++) {
        ferry_env *env = d->envs[i];
        for (size_t k = 0; k < env->n_workers;) {
            ferry_worker *w = env->workers[k];
            if (w->state != FERRY_WORKER_BUNDLING) {
                k++;
                continue;
            }
            if (sha) {
                workers__launch_now(d, w, sha);
            } else {
                workers__remove(d, w, "no agent bundle");
                workers__launch_failed(d, env, "could not build the agent bundle (see the log)");
            }
            k = 0; /* the list may have changed */
        }
    }
}

int ferry_workers_launch(ferryd *d, ferry_env *env)
{
    ferry_worker *w = workers__new(d, env);
    char token[65];
    ferry_random_hex(token, 32);
    ferry_sha256_hex(token, strlen(token), w->bootstrap_hash);
    workers__db_upsert(d, w);
    ferry_db_commit(d); /* the intent is durable before the plugin acts */
    uv_timer_start(&w->timer, workers__timer_cb, WORKERS__REGISTER_DEADLINE_MS, 0);
    w->launch_token = ferry_strdup(token);
    memset(token, 0, sizeof(token));
    if (!(workers__plugin_flags(env) & FERRY_COMPUTE_USER_DATA))
        return workers__launch_now(d, w, NULL);
    /* The machine boots from the bootstrap script, which names the bundle. */
    ferry_bundle_info bundle;
    int rc = ferry_bundle_get(d, &bundle, workers__bundle_built, NULL);
    const char *sha = bundle.sha256;
    if (rc == FERRY_EAGAIN) {
        ferry_worker_set_state(w, FERRY_WORKER_BUNDLING, "waiting for the agent bundle");
        return 0;
    }
    if (rc < 0) {
        workers__remove(d, w, "no agent bundle");
        workers__launch_failed(d, env, "no ferry-agent next to ferryd to put into user-data");
        return rc;
    }
    return workers__launch_now(d, w, sha);
}

/* --- retiring: terminate, then confirm with describe --- */

/* Try again later, with backoff (2 s, 4 s ... 60 s): the record stays
 * until the instance is seen going, so none is ever left unrecorded. */
static void workers__terminate_retry(ferryd *d, ferry_worker *w, const char *why)
{
    (void)d;
    w->terminate_failures++;
    int shift = w->terminate_failures > 6 ? 6 : w->terminate_failures;
    uint64_t delay_ms = (uint64_t)WORKERS__RETRY_BASE_MS << shift;
    if (delay_ms > WORKERS__RETRY_MAX_MS)
        delay_ms = WORKERS__RETRY_MAX_MS;
    ferry_warn("worker %s: instance %s not retired yet (%s); trying again in %.0f s", w->id,
               w->instance_id, why, (double)delay_ms / 1000.0);
    uv_timer_start(&w->timer, workers__timer_cb, delay_ms, 0);
}

static void workers__confirm_done(void *arg, int status, const ferry_op_result *res)
{
    ferry_worker *w = ferry_worker_ref_take(arg);
    if (w == NULL)
        return;
    ferryd *d = w->env->d;
    ferry_worker_set_state(w, FERRY_WORKER_RETIRING, "describe answered");
    json_t *j = status >= 0 && res && res->text ? json_loads(res->text, 0, NULL) : NULL;
    const char *state = json_string_value(json_object_get(j, "state"));
    if (status == FERRY_ENOENT ||
        (state && (strcmp(state, "shutting-down") == 0 || strcmp(state, "terminated") == 0))) {
        ferry_info("worker %s: instance %s is %s: record removed", w->id, w->instance_id,
                   state ? state : "gone");
        workers__remove(d, w, "terminated");
    } else if (status < 0)
        workers__terminate_retry(d, w, res && res->error ? res->error->message : "describe failed");
    else
        workers__terminate_retry(d, w, state ? state : "state unknown");
    json_decref(j);
}

/* Terminated, says the plugin: the record goes once describe agrees. */
static void workers__confirm(ferryd *d, ferry_worker *w)
{
    if (!ferry_compute_can_describe(w->env)) {
        workers__remove(d, w, "terminated");
        return;
    }
    ferry_worker_ref *ref = ferry_worker_ref_new(d, w);
    int rc = ferry_compute_describe(w->env, w->instance_id, workers__confirm_done, ref);
    if (rc < 0) {
        free(ref);
        workers__terminate_retry(d, w, ferry_strerror(rc));
        return;
    }
    ferry_worker_set_state(w, FERRY_WORKER_TERMINATING, "describe asked");
}

static void workers__terminate_done(void *arg, int status, const ferry_op_result *res)
{
    ferry_worker *w = ferry_worker_ref_take(arg);
    if (w == NULL)
        return;
    ferryd *d = w->env->d;
    ferry_worker_set_state(w, FERRY_WORKER_RETIRING, "terminate answered");
    if (status == FERRY_ENOENT)
        workers__remove(d, w, "terminated"); /* the plugin knows it no more */
    else if (status < 0)
        workers__terminate_retry(d, w,
                                 res && res->error ? res->error->message : ferry_strerror(status));
    else
        workers__confirm(d, w);
}

static void workers__terminate_step(ferryd *d, ferry_worker *w)
{
    ferry_worker_ref *ref = ferry_worker_ref_new(d, w);
    int rc = ferry_compute_terminate(w->env, w->instance_id, workers__terminate_done, ref);
    if (rc < 0) {
        free(ref);
        workers__terminate_retry(d, w, ferry_strerror(rc));
        return;
    }
    ferry_worker_set_state(w, FERRY_WORKER_TERMINATING, "terminate asked");
}

void ferry_workers_terminate(ferryd *d, ferry_worker *w, const char *why)
{
    if (w->state == FERRY_WORKER_GONE || w->state == FERRY_WORKER_TERMINATING)
        return;
    ferry_worker_set_state(w,
                           ferry_worker_state_launch_in_flight(w->state)
                               ? FERRY_WORKER_RETIRE_LAUNCHING
                               : FERRY_WORKER_RETIRING,
                           why);
    uv_timer_stop(&w->timer);
    ferry_info("worker %s (%s): retiring: %s", w->id, w->instance_id ? w->instance_id : "-", why);
    if (w->state == FERRY_WORKER_RETIRE_LAUNCHING) /* terminated once the launch completes */
        return;
    workers__db_upsert(d, w);
    /* No instance: none was asked for (or a crash lost the answer, and the
     * sweep terminates what carries no record). */
    if (w->env->compute == NULL || w->instance_id == NULL || w->instance_id[0] == '\0') {
        workers__remove(d, w, why);
        return;
    }
    w->terminate_failures = 0;
    workers__terminate_step(d, w);
}

/* Issue the agent's own token (kept only as its hash) and take it in. */
static char *workers__admit(ferryd *d, ferry_worker *w, int slots)
{
    char fresh[65];
    ferry_random_hex(fresh, 32);
    ferry_sha256_hex(fresh, strlen(fresh), w->token_hash);
    ferry_map_put(&d->workers_by_token, w->token_hash, w);
    ferry_worker_set_state(w, ferry_worker_state_registered(w->state), "registered");
    /* The agent says how many it runs at once; a GPU worker no more than its GPUs. */
    if (slots > 0)
        w->slots = w->env->cfg->gpus > 0 && slots > w->env->cfg->gpus ? w->env->cfg->gpus : slots;
    ferry_workers_heard(d, w);
    workers__db_upsert(d, w);
    ferry_db_commit(d); /* the token must outlive a crash of ferryd */
    ferry_workers_touch(d, w);
    ferry_scheduler_kick(d, w->env);
    return ferry_strdup(fresh);
}

int ferry_workers_register(ferryd *d, const char *worker_id, const char *bootstrap_token, int slots,
                           char **token)
{
    ferry_worker *w = worker_id ? ferry_map_get(&d->workers_by_id, worker_id) : NULL;
    char hash[65];
    if (bootstrap_token == NULL)
        return FERRY_EAUTH;
    ferry_sha256_hex(bootstrap_token, strlen(bootstrap_token), hash);
    /* Only once its token went to the plugin (the agent may call before
     * the launch answers). */
    if (w == NULL || (w->state != FERRY_WORKER_LAUNCHING && w->state != FERRY_WORKER_BOOTING) ||
        w->bootstrap_hash[0] == '\0' || !ferry_secure_streq(hash, w->bootstrap_hash))
        return FERRY_EAUTH;
    w->bootstrap_hash[0] = '\0'; /* spent */
    w->env->launch_failures = 0;
    free(w->env->last_launch_error);
    w->env->last_launch_error = NULL;
    *token = workers__admit(d, w, slots);
    return 0;
}

int ferry_workers_join(ferryd *d, const char *env_name, const char *join_token, int slots,
                       char **worker_id, char **token)
{
    ferry_env *env = env_name ? ferry_scheduler_env(d, env_name) : NULL;
    char hash[65];
    if (env == NULL || join_token == NULL || !ferry_env_is_static(env->cfg))
        return FERRY_EAUTH;
    ferry_sha256_hex(join_token, strlen(join_token), hash);
    if (!ferry_secure_streq(hash, env->cfg->join_token_sha256))
        return FERRY_EAUTH;
    ferry_worker *w = workers__new(d, env);
    *token = workers__admit(d, w, slots);
    *worker_id = ferry_strdup(w->id);
    ferry_info("worker %s joined environment '%s'", w->id, env->cfg->name);
    return 0;
}

ferry_worker *ferry_workers_by_token(ferryd *d, const char *token)
{
    char hash[65];
    ferry_sha256_hex(token, strlen(token), hash);
    ferry_worker *w = ferry_map_get(&d->workers_by_token, hash);
    return w && w->state != FERRY_WORKER_GONE ? w : NULL;
}

int ferry_worker_free_slots(const ferry_worker *w)
{
    return w->slots - (int)w->n_assigned;
}

void ferry_workers_touch(ferryd *d, ferry_worker *w)
{
    (void)d;
    if (!ferry_worker_state_takes_work(w->state))
        return;
    const ferry_env_config *cfg = w->env->cfg;
    if (w->env->compute == NULL) /* a machine that joined by hand stays */
        return;
    if (ferry_drain_retires(w)) { /* no idle time: nothing more comes its way */
        ferry_workers_terminate(d, w, "its environment is draining");
        return;
    }
    if (w->n_assigned == 0 && w->env->n_workers > (size_t)cfg->min_workers)
        uv_timer_start(&w->timer, workers__timer_cb, (uint64_t)cfg->idle_timeout_s * 1000u, 0);
    else
        uv_timer_stop(&w->timer);
}

/* A stop that keeps the work: the worker's row and its executions' stay
 * as they are in the database, exactly what a kill -9 leaves, so that the
 * next start takes the worker back when its agent calls again. Only this
 * process's memory of it goes. */
static void workers__forget(ferryd *d, ferry_worker *w)
{
    for (size_t i = 0; i < w->n_assigned; i++)
        if (w->assigned[i]->worker == w)
            w->assigned[i]->worker = NULL;
    w->n_assigned = 0;
    workers__unlist(d, w);
    uv_close((uv_handle_t *)&w->timer, workers__closed);
}

void ferry_workers_close_all(ferryd *d)
{
    for (size_t i = 0; i < d->n_envs; i++) {
        ferry_env *env = d->envs[i];
        while (env->n_workers > 0) {
            ferry_worker *w = env->workers[0];
            if (d->cfg.retire_workers_on_stop)
                /* The plugin's fini retires what it launched; drop our record. */
                workers__remove(d, w, "ferryd is shutting down");
            else
                workers__forget(d, w);
        }
    }
}

void ferry_workers_lost(ferryd *d, ferry_worker *w, const char *why)
{
    workers__drop_assigned(d, w, why);
    ferry_workers_terminate(d, w, why);
}

/* --- after a restart, and lost workers --- */

static void workers__restore_row(ferryd *d, const ferry_worker_row *row)
{
    ferry_env *env = ferry_scheduler_env(d, row->environment);
    if (env == NULL) {
        ferry_warn("worker %s: its environment '%s' is no longer configured; forgetting it%s%s",
                   row->id, row->environment, row->instance_id ? "; instance left: " : "",
                   row->instance_id ? row->instance_id : "");
        return;
    }
    ferry_worker *w = workers__new_with_id(d, env, row->id);
    w->instance_id = row->instance_id ? ferry_strdup(row->instance_id) : NULL;
    ferry_worker_set_state(w, ferry_worker_state_from_db(row->state), "restored");
    w->slots = row->slots > 0 ? row->slots : 1;
    snprintf(w->bootstrap_hash, sizeof(w->bootstrap_hash), "%s", row->bootstrap_hash);
    snprintf(w->token_hash, sizeof(w->token_hash), "%s", row->token_hash);
    if (w->token_hash[0])
        ferry_map_put(&d->workers_by_token, w->token_hash, w);
    if (w->state == FERRY_WORKER_BOOTING)
        uv_timer_start(&w->timer, workers__timer_cb, WORKERS__REGISTER_DEADLINE_MS, 0);
    w->awaiting = 1;
    d->workers_awaiting++;
}

/* Every call of an agent passes here: the poll is the heartbeat. After a
 * restart, the last worker taken back to call is when the fleet is whole
 * again, which an operator upgrading ferryd wants to see. */
void ferry_workers_heard(ferryd *d, ferry_worker *w)
{
    w->last_seen = ferry_now();
    if (!w->awaiting)
        return;
    w->awaiting = 0;
    ferry_debug("worker %s called again after the restart", w->id);
    if (--d->workers_awaiting == 0)
        ferry_info("every worker taken back has called again, %.2f s after the restart",
                   w->last_seen - d->workers_restored_at);
}

int ferry_workers_restore(ferryd *d)
{
    d->workers_restored_at = ferry_now();
    int n = ferry_workerrows_each(d, workers__restore_row);
    /* Retire what was being retired; the rest waits for its agent to call. */
    for (size_t i = 0; i < d->n_envs; i++)
        for (size_t k = 0; k < d->envs[i]->n_workers; k++)
            if (d->envs[i]->workers[k]->state == FERRY_WORKER_RETIRING)
                ferry_workers_terminate(d, d->envs[i]->workers[k],
                                        "it was being retired when ferryd stopped");
    return n;
}

/* Why a silent worker went silent: its instance may have ended (a spot
 * interruption) rather than its agent. */
typedef struct workers__probe {
    ferry_worker_ref *ref;
    char why[128];
} workers__probe;

static void workers__probe_done(void *arg, int status, const ferry_op_result *res)
{
    workers__probe *p = arg;
    ferryd *d = p->ref->d;
    ferry_worker *w = ferry_worker_ref_take(p->ref);
    if (w == NULL || w->state != FERRY_WORKER_PROBING) {
        free(p); /* gone or retired meanwhile */
        return;
    }
    if (ferry_now() - w->last_seen <= d->cfg.worker_lost_timeout_s) {
        ferry_worker_set_state(w, FERRY_WORKER_READY, "it called again");
        free(p);
        return;
    }
    char why[400];
    json_t *j = status >= 0 && res && res->text ? json_loads(res->text, 0, NULL) : NULL;
    const char *state = json_string_value(json_object_get(j, "state"));
    const char *reason = json_string_value(json_object_get(j, "reason"));
    if (status == FERRY_ENOENT)
        snprintf(why, sizeof(why), "instance %s is gone (%s)", w->instance_id, p->why);
    else if (state && strcmp(state, "running") != 0 && strcmp(state, "pending") != 0)
        snprintf(why, sizeof(why), "instance %s %s (%s)", w->instance_id,
                 strcmp(state, "shutting-down") == 0 ? "terminated"
                 : strcmp(state, "stopping") == 0    ? "stopped"
                                                     : state,
                 reason && reason[0] ? reason : p->why);
    else
        snprintf(why, sizeof(why), "%s", p->why);
    json_decref(j);
    free(p);
    ferry_warn("worker %s is lost: %s", w->id, why);
    ferry_workers_lost(d, w, why);
}

/* Ask the plugin about the instance first, when it can tell. */
static int workers__probe_start(ferryd *d, ferry_worker *w, const char *why)
{
    if (!ferry_compute_can_describe(w->env) || w->instance_id == NULL || w->instance_id[0] == '\0')
        return FERRY_ENOTSUP; /* nothing to ask */
    workers__probe *pr = ferry_xcalloc(1, sizeof(*pr));
    pr->ref = ferry_worker_ref_new(d, w);
    snprintf(pr->why, sizeof(pr->why), "%s", why);
    if (ferry_compute_describe(w->env, w->instance_id, workers__probe_done, pr) < 0) {
        free(pr->ref);
        free(pr);
        return FERRY_EIO;
    }
    ferry_worker_set_state(w, FERRY_WORKER_PROBING, why);
    return 0;
}

/* A worker that stopped calling (its poll is the heartbeat) is lost: what
 * it was running ends in error, what it had not started goes back in line,
 * and its instance is retired so that none is left without a record. A held
 * poll does not count: polls are held for under half the timeout, so a live
 * agent has polled again since; an open connection alone may be a machine
 * that dropped off the network without closing it. The instance's own state
 * (from describe) names the cause when it ended. */
void ferry_workers_check_lost(ferryd *d)
{
    double now = ferry_now(), limit = d->cfg.worker_lost_timeout_s;
    for (size_t i = 0; i < d->n_envs; i++) {
        ferry_env *env = d->envs[i];
        for (size_t k = 0; k < env->n_workers; k++) {
            ferry_worker *w = env->workers[k];
            /* Probing: its describe answers first. */
            if ((w->state != FERRY_WORKER_READY && w->state != FERRY_WORKER_READY_LAUNCHING) ||
                now - w->last_seen <= limit)
                continue;
            char why[128];
            snprintf(why, sizeof(why), "no heartbeat for %d s", d->cfg.worker_lost_timeout_s);
            if (workers__probe_start(d, w, why) == 0)
                continue;
            ferry_warn("worker %s is lost: %s", w->id, why);
            ferry_workers_lost(d, w, why);
            k = (size_t)-1; /* the list changed: start over */
        }
    }
}
