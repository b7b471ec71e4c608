/* Draining an environment (scheduler.h, "drain.c"): an operator takes it
 * out of service before tearing it down, without ending the work it runs.
 * The scheduler asks env->draining before it assigns or launches anything
 * (ferry_scheduler_kick); a worker that becomes idle while its environment
 * drains retires through ferry_workers_touch, by the same retire path as an
 * idle timeout, so that its cloud instance is terminated (compute.c). */
#include "scheduler.h"

#include "db.h"
#include "envrows.h"
#include "log.h"

#define DRAIN__WHY "its environment is draining"

int ferry_drain_retires(const ferry_worker *w)
{
    const ferry_env *env = w->env;
    /* A machine that joined by hand is no instance of ours: it stays, idle. */
    if (!env->draining || env->compute == NULL)
        return 0;
    /* One still booting would only register to sit idle. */
    if (ferry_worker_state_is_coming(w->state))
        return 1;
    return ferry_worker_state_takes_work(w->state) && w->n_assigned == 0;
}

/* Retire every worker with nothing to do; busy ones follow as their work ends. */
static void drain__retire_idle(ferryd *d, ferry_env *env)
{
    for (size_t i = 0; i < env->n_workers; i++) {
        if (!ferry_drain_retires(env->workers[i]))
            continue;
        ferry_workers_terminate(d, env->workers[i], DRAIN__WHY);
        i = (size_t)-1; /* a record may have gone from the list: start over */
    }
}

int ferry_drain_set(ferryd *d, ferry_env *env, int draining)
{
    draining = draining != 0;
    /* Stored and committed first: an operator's word must outlive a crash,
     * and a flag not stored is not taken. A commit that fails keeps the
     * write and retries it (db.c), so only a failed write refuses. */
    if (ferry_envrows_set_draining(d, env->cfg->name, draining) < 0)
        return FERRY_EIO;
    ferry_db_commit(d);
    if (env->draining == draining)
        return 0;
    env->draining = draining;
    ferry_info("environment '%s': %s", env->cfg->name,
               draining ? "draining (no new work; idle workers retire now, busy ones when "
                          "their execution ends)"
                        : "undrained (scheduling and the pool rules resume)");
    if (draining)
        drain__retire_idle(d, env);
    else
        ferry_scheduler_kick(d, env); /* the queue, and min_workers */
    return 0;
}

void ferry_drain_restore(ferryd *d)
{
    for (size_t i = 0; i < d->n_envs; i++) {
        ferry_env *env = d->envs[i];
        env->draining = ferry_envrows_draining(d, env->cfg->name);
        if (env->draining)
            ferry_info("environment '%s' is draining (ferry envs undrain %s resumes it)",
                       env->cfg->name, env->cfg->name);
    }
}

void ferry_drain_start(ferryd *d)
{
    for (size_t i = 0; i < d->n_envs; i++)
        drain__retire_idle(d, d->envs[i]);
}
