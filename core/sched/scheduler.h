/* Environments, their worker pools and their queues.
 *
 * scheduler.c owns the queues and decides which worker runs what;
 * workers.c owns the worker records and talks to compute plugins. */
#ifndef FERRY_SCHEDULER_H
#define FERRY_SCHEDULER_H

#include "exec.h"
#include "worker_state.h"

/* An intrusive FIFO of executions through their qprev/qnext links: an
 * execution is in at most one (its user's created list, or an environment
 * queue). */
typedef struct ferry_xlist {
    ferry_exec *head, *tail;
    size_t len;
} ferry_xlist;

/* A user's place in the scheduler: executions waiting for quota, in order,
 * and what is in flight (queued, started, stopping). */
typedef struct ferry_userq {
    char *name;
    const ferry_user *cfg; /* NULL: no quota */
    ferry_xlist created;
    int in_flight;
    int *env_in_flight; /* per environment, indexed like d->envs */
} ferry_userq;

/* Its state is written only by ferry_worker_set_state() (worker_state.h). */
struct ferry_worker {
    char id[37];
    ferry_env *env;
    char *instance_id;
    char bootstrap_hash[65]; /* sha256 of the one-time bootstrap token; "" once spent */
    char token_hash[65];     /* sha256 of the agent token */
    ferry_worker_state state;
    int slots;
    ferry_exec **assigned; /* executions this worker runs or will run */
    size_t n_assigned;
    unsigned char *gpu_busy; /* per GPU of the worker (env gpus), 1 = taken */
    json_t *stop_orders;     /* ids to stop, not yet handed over */
    void *poll;              /* agentapi.c: a held long poll, or NULL */
    uv_timer_t timer;        /* registration deadline, idle timeout, terminate retries */
    double last_seen;
    int awaiting; /* taken back at start; its agent has not called since */
    /* workers.c */
    char *launch_token;     /* the one-time token until the plugin is asked (then wiped) */
    int terminate_failures; /* in a row: the retry's backoff */
};

/* An op's hold on a worker that may be gone when the op completes (or
 * ferryd stopping): ferry_worker_ref_take() looks it up again. */
typedef struct ferry_worker_ref {
    ferryd *d;
    char id[37];
} ferry_worker_ref;
ferry_worker_ref *ferry_worker_ref_new(ferryd *d, const ferry_worker *w);
/* The worker, or NULL when it is gone or ferryd stops. Frees the ref. */
ferry_worker *ferry_worker_ref_take(ferry_worker_ref *ref);

struct ferry_env {
    ferryd *d;
    const ferry_env_config *cfg;
    ferry_plugin_instance *compute;
    size_t index;         /* in d->envs */
    ferry_xlist queue[2]; /* queued, not yet assigned: [1] priority, [0] normal */
    ferry_worker **workers;
    size_t n_workers;
    int launch_failures; /* in a row; reset by a registration */
    char *last_launch_error;
    uv_timer_t retry_timer;
    int retry_pending;
    double retry_at;
    char *broken;           /* why launches stopped (credentials, settings); NULL: fine */
    char *last_launch_note; /* what the last launch tried on its way (zones), for people */
    uv_timer_t sweep_timer; /* sweep.c: lists the plugin's instances every few minutes */
    int sweeping;           /* sweep.c: a list is in flight */
    uv_timer_t kick_timer;  /* ferry_scheduler_kick_soon(): a kick on the next loop turn */
    int draining;           /* drain.c: nothing new is scheduled or launched here */
};

/* scheduler.c */
int ferry_scheduler_init(ferryd *d, char *err, size_t err_cap);
void ferry_scheduler_close(ferryd *d);
ferry_env *ferry_scheduler_env(ferryd *d, const char *name);
/* A new (or reloaded) created execution: apply the quota, then queue it. */
void ferry_scheduler_admit(ferryd *d, ferry_exec *e);
/* Re-attach an execution loaded at start-up. */
void ferry_scheduler_restore(ferryd *d, ferry_exec *e);
/* Called by the lifecycle after every transition. */
void ferry_scheduler_on_transition(ferryd *d, ferry_exec *e, ferry_status from);
/* Why a created or queued execution waits, for people; 0 or FERRY_ENOENT
 * when it does not wait. */
int ferry_scheduler_why(ferryd *d, const ferry_exec *e, char *buf, size_t cap);
/* The environments with their pools and queues, as JSON (GET /v1/environments). */
json_t *ferry_scheduler_envs_json(ferryd *d);
/* One environment's entry of ferry_scheduler_envs_json(). */
json_t *ferry_scheduler_env_json(const ferry_env *env);
/* Match queued executions with free workers; launch workers as needed. */
void ferry_scheduler_kick(ferryd *d, ferry_env *env);
/* The same on the next loop turn, for a worker record that went: by then
 * its caller has set what a kick must see (a launch failure's backoff), and
 * a launch refused at once cannot recurse through the removal it causes. */
void ferry_scheduler_kick_soon(ferryd *d, ferry_env *env);
/* What a worker should be told now: takes its undelivered assignments and stop orders. */
void ferry_scheduler_take_news(ferryd *d, ferry_worker *w, ferry_exec ***work, size_t *n_work,
                               json_t **stop);
int ferry_scheduler_has_news(const ferry_worker *w);

/* Put a queued execution that a worker will not run back at the head of its
 * queue (it keeps its place). */
void ferry_scheduler_requeue(ferryd *d, ferry_exec *e);
/* Match what a worker's poll says it runs with what it was handed. */
void ferry_scheduler_reconcile(ferryd *d, ferry_worker *w, const json_t *running);
/* After start-up: launch the min_workers of each environment. */
void ferry_scheduler_start(ferryd *d);

/* workers.c */
int ferry_workers_launch(ferryd *d, ferry_env *env);
/* Load the worker records at start-up; their agents call back with their
 * tokens (kept as hashes). */
int ferry_workers_restore(ferryd *d);
/* An authenticated call of w's agent: its heartbeat, and after a restart the
 * sign that it is back (counted in "awaiting" until then). */
void ferry_workers_heard(ferryd *d, ferry_worker *w);
/* A machine joins a static environment with its join token. */
int ferry_workers_join(ferryd *d, const char *env_name, const char *join_token, int slots,
                       char **worker_id, char **token);
/* The worker is gone: executions it had not started go back in line, the
 * rest end in error; its instance is retired. */
void ferry_workers_lost(ferryd *d, ferry_worker *w, const char *why);
/* Declare lost every worker silent for longer than worker_lost_timeout. */
void ferry_workers_check_lost(ferryd *d);
void ferry_workers_terminate(ferryd *d, ferry_worker *w, const char *why);
/* Register an agent: spends the bootstrap token, returns the agent token
 * (caller frees). FERRY_EAUTH on a wrong or spent token. */
int ferry_workers_register(ferryd *d, const char *worker_id, const char *bootstrap_token, int slots,
                           char **token);
ferry_worker *ferry_workers_by_token(ferryd *d, const char *token);
/* A worker became idle or busy: (re)arm its idle timeout. */
void ferry_workers_touch(ferryd *d, ferry_worker *w);
int ferry_worker_free_slots(const ferry_worker *w);
void ferry_workers_close_all(ferryd *d);
/* The compute plugin says an instance ended on its own (arg: the ferry_env). */
void ferry_workers_instance_gone(void *arg, const char *instance_id, const char *reason);
/* The worker (of any environment) whose instance is `instance_id`, or NULL. */
ferry_worker *ferry_workers_by_instance(ferryd *d, const char *instance_id);
/* A record restored without its instance id learns it (the sweep found the
 * instance by its worker tag). */
void ferry_workers_adopt(ferryd *d, ferry_worker *w, const char *instance_id);
/* Terminate an instance that has no worker record (an orphan), through
 * `env`'s plugin; the outcome is only logged. */
void ferry_workers_retire_orphan(ferryd *d, ferry_env *env, const char *instance_id,
                                 const char *why);
/* Launches stop: the environment's credentials or settings are refused.
 * `ferry envs` and `ferry show` say why; a launch is tried again rarely. */
void ferry_workers_env_broken(ferryd *d, ferry_env *env, const char *why);
/* Whether a failed op's error means "broken" rather than "try again". */
int ferry_workers_error_breaks(const ferry_error_detail *err);

/* drain.c: an environment taken out of service by an operator (`ferry envs
 * drain`). Draining, it gets no new work: its queued executions wait, no
 * worker is launched for it (min_workers included), its idle workers retire
 * at once and busy ones when their execution ends. The flag is stored, so
 * that it outlives a restart of ferryd. Undraining resumes the pool rules
 * and the queue at once. Idempotent; 0 or FERRY_EIO (not stored). */
int ferry_drain_set(ferryd *d, ferry_env *env, int draining);
/* At start-up, before the workers are restored: the stored flags. */
void ferry_drain_restore(ferryd *d);
/* Once the executions are restored: the idle workers taken back in a
 * draining environment retire. */
void ferry_drain_start(ferryd *d);
/* Whether a worker of a draining environment must retire now: a launched
 * (not joined by hand) worker with no work. */
int ferry_drain_retires(const ferry_worker *w);

/* sweep.c: the orphan sweep. At start and every instance_sweep_interval,
 * each environment's plugin lists the instances carrying the daemon's id:
 * one without a worker record is terminated, a record restored without its
 * instance id learns it, and a worker whose instance ended unasked (a spot
 * interruption) is retired. */
void ferry_sweep_start(ferryd *d);
void ferry_sweep_env_init(ferryd *d, ferry_env *env);
void ferry_sweep_env_close(ferry_env *env);

/* Answer the worker's held poll if it has news (through d->wake_worker,
 * which the agent API sets). */
void ferry_scheduler_wake(ferryd *d, ferry_worker *w);

#endif
