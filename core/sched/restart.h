/* Spot auto-restart (issue 19, point 5): an execution created with
 * `autorestart` whose worker is lost (a spot instance interrupted, a
 * preemptible VM preempted, the machine gone) ends `error` as any other,
 * and a new execution of the same step, parameters, inputs and commit is
 * created and queued at once, linked both ways (restarted_from,
 * restarted_as), with the first one's outputs (live ones included) as its
 * input `_restart`. At most max_restarts (ferryd's config) in a chain. */
#ifndef FERRY_RESTART_H
#define FERRY_RESTART_H

#include "daemon.h"

/* Follows the lifecycle (an observer); call once, after the scheduler's. */
void ferry_restart_init(ferryd *d);

#endif
