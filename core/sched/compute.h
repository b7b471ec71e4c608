/* The one wrapper of an environment's compute plugin (as store/store.c is
 * of the store's): each call makes the op, calls the plugin and abandons
 * the op when the plugin refuses the call, so that `done` runs exactly when
 * the call returned 0. */
#ifndef FERRY_SCHED_COMPUTE_H
#define FERRY_SCHED_COMPUTE_H

#include <stdint.h>

#include "scheduler.h"

/* FERRY_COMPUTE_* flags of the environment's plugin (0 without one). */
uint32_t ferry_compute_flags(const ferry_env *env);
/* Whether the plugin can describe, or list, its instances. */
int ferry_compute_can_describe(const ferry_env *env);
int ferry_compute_can_list(const ferry_env *env);

/* 0 (then `done` runs once), or a negative code: FERRY_ENOTSUP when the
 * plugin lacks the op or the environment has no compute plugin,
 * FERRY_ECANCELED when the plugin is being shut down, or the plugin's. */
int ferry_compute_launch(ferry_env *env, const ferry_launch_request *req, ferry_op_done_fn done,
                         void *arg);
int ferry_compute_terminate(ferry_env *env, const char *instance_id, ferry_op_done_fn done,
                            void *arg);
int ferry_compute_describe(ferry_env *env, const char *instance_id, ferry_op_done_fn done,
                           void *arg);
int ferry_compute_list(ferry_env *env, const char *daemon_id, ferry_op_done_fn done, void *arg);

#endif
