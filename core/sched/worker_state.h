/* A worker record's state machine: the one place that says which states a
 * worker goes through and which moves between them are allowed.
 *
 *   new -> [bundling ->] launching -> booting -> ready <-> probing
 *       -> retiring <-> terminating -> gone
 *
 * and off that path: an agent that registers before its launch answered
 * (ready_launching, ready once it answers), a worker retired while its
 * launch is in flight (retire_launching, retiring once it answers), a
 * machine that joins by hand (new -> ready), a record restored from the
 * table (new -> booting, ready or retiring). Ready, ready_launching and
 * probing take work; anything may go (gone) at once, nothing comes back.
 *
 * The states stand for what used to be flags beside a three-valued state
 * (awaiting_bundle, launch_pending, terminate_pending, probing, closing):
 * every combination that occurred is one state here. Only
 * ferry_worker_set_state() writes w->state. */
#ifndef FERRY_WORKER_STATE_H
#define FERRY_WORKER_STATE_H

typedef struct ferry_worker ferry_worker;

typedef enum ferry_worker_state {
    FERRY_WORKER_NEW = 0,          /* a record just made, not launched nor admitted */
    FERRY_WORKER_BUNDLING,         /* the launch waits for the agent bundle (user-data) */
    FERRY_WORKER_LAUNCHING,        /* the compute plugin's launch is in flight */
    FERRY_WORKER_BOOTING,          /* launched (or restored): its agent has not registered */
    FERRY_WORKER_READY,            /* registered, takes work */
    FERRY_WORKER_READY_LAUNCHING,  /* registered before its launch answered: takes work */
    FERRY_WORKER_PROBING,          /* silent too long: a describe asks why; still takes work */
    FERRY_WORKER_RETIRE_LAUNCHING, /* retired while its launch is in flight: retired once it answers
                                    */
    FERRY_WORKER_RETIRING, /* retired; no terminate in flight (none asked yet, or a retry waits) */
    FERRY_WORKER_TERMINATING, /* a terminate, or the describe that confirms it, is in flight */
    FERRY_WORKER_GONE,        /* the record is removed */
    FERRY_WORKER_N_STATES
} ferry_worker_state;

const char *ferry_worker_state_name(ferry_worker_state s);
/* Whether `from` may become `to` (a state never "becomes" itself). */
int ferry_worker_state_allowed(ferry_worker_state from, ferry_worker_state to);
/* Change w->state, logged with `reason` (may be NULL). Setting the state it
 * already has is a no-op. FERRY_ESTATE (logged as an error, state kept)
 * when the table refuses the move. */
int ferry_worker_set_state(ferry_worker *w, ferry_worker_state to, const char *reason);

/* What the rest of ferryd asks of a state. */
/* In the pool: may be handed work (ready, ready_launching, probing). */
int ferry_worker_state_takes_work(ferry_worker_state s);
/* Coming: launched or being launched, its agent not registered yet. */
int ferry_worker_state_is_coming(ferry_worker_state s);
/* The compute plugin's launch has not answered yet. */
int ferry_worker_state_launch_in_flight(ferry_worker_state s);
/* Being retired (retire_launching, retiring, terminating). */
int ferry_worker_state_is_retiring(ferry_worker_state s);
/* The registered state of a worker in `s` (ready, or ready_launching while
 * its launch has not answered). */
ferry_worker_state ferry_worker_state_registered(ferry_worker_state s);
/* The state once the launch answered well (launching -> booting,
 * ready_launching -> ready, retire_launching -> retiring); `s` otherwise. */
ferry_worker_state ferry_worker_state_launched(ferry_worker_state s);

/* The workers table's state column: "launching", "ready" or "terminating". */
const char *ferry_worker_state_db_name(ferry_worker_state s);
/* A stored state back: booting, ready or retiring (nothing is in flight
 * after a restart). */
ferry_worker_state ferry_worker_state_from_db(const char *name);

#endif
