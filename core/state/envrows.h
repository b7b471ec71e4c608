/* What an operator set on an environment, in SQLite (table env_states):
 * today whether it is draining (`ferry envs drain`), which must outlive a
 * restart or upgrade of ferryd. sched/drain.c owns the state; this stores it. */
#ifndef FERRY_ENVROWS_H
#define FERRY_ENVROWS_H

#include "daemon.h"

/* Store the drain flag of environment `name` (in the loop turn's
 * transaction): 0 or FERRY_EIO. */
int ferry_envrows_set_draining(ferryd *d, const char *name, int draining);
/* Whether environment `name` was left draining: 1 or 0 (0 when no row). */
int ferry_envrows_draining(ferryd *d, const char *name);

#endif
