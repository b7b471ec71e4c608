/* The lifecycle: the one module that changes an execution's status.
 *
 *   created -> queued -> started -> complete | error
 *      |         |          |
 *      +---------+----------+--> stopping -> stopped
 *
 * A transition is stored (in the loop turn's transaction) and logged as a
 * `status` event before its side effects run; terminal statuses never
 * change. After a terminal transition the execution leaves d->active and is
 * freed at the end of the loop turn, so callers may still read it until they
 * return to the loop. */
#ifndef FERRY_LIFECYCLE_H
#define FERRY_LIFECYCLE_H

#include "exec.h"

/* What the layers above the state do on the lifecycle's events: the
 * scheduler admits new executions and follows every transition, the store
 * aborts the uploads of an execution that ended. The lifecycle calls each
 * observer in the order they were added; a NULL field is not called. This
 * is how the lifecycle (state/) reaches sched/ and store/ without depending
 * on them. */
typedef struct ferry_lifecycle_observer {
    void (*on_create)(ferryd *d, ferry_exec *e);                        /* stored as created */
    void (*on_transition)(ferryd *d, ferry_exec *e, ferry_status from); /* stored and logged */
    void (*on_end)(ferryd *d, ferry_exec *e); /* terminal, before its log closes */
} ferry_lifecycle_observer;

int ferry_lifecycle_init(ferryd *d);
/* Add an observer (static storage; at most FERRY_LIFECYCLE_OBSERVERS).
 * FERRY_ETOOBIG when full. */
int ferry_lifecycle_observe(ferryd *d, const ferry_lifecycle_observer *o);
void ferry_lifecycle_close(ferryd *d);
/* Store a new execution as `created`, make it active and hand it to the
 * scheduler. Takes ownership of `e`. */
int ferry_lifecycle_create(ferryd *d, ferry_exec *e);
/* Change status. `reason` may be NULL; exit_code < -1000 means none.
 * FERRY_ESTATE when the transition is not allowed. */
#define FERRY_NO_EXIT_CODE (-100000)
int ferry_lifecycle_transition(ferryd *d, ferry_exec *e, ferry_status to, const char *reason,
                               int exit_code);
/* A user's stop: created/queued -> stopped at once; started -> stopping and
 * a stop order to the worker. FERRY_ESTATE when it already ended. */
int ferry_lifecycle_request_stop(ferryd *d, ferry_exec *e);
/* The run's stop-condition holds (issue 18, point 9): stopped as a user's
 * stop would be (the worker gets the order), the reason naming it, then
 * and once it ended ("stop-condition met: loss < 0.1"). */
int ferry_lifecycle_stop_condition_met(ferryd *d, ferry_exec *e);
/* The worker's report that the commands ended. */
int ferry_lifecycle_finished(ferryd *d, ferry_exec *e, int exit_code, const char *reason);

#endif
