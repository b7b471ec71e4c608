/* ferry plugin SDK: compute plugins start and retire worker machines.
 *
 * A launched machine runs `ferry-agent`, which registers with ferryd using the
 * one-time bootstrap token of the launch request. Instances carry the daemon's
 * id so that an orphan sweep (list) finds every instance this daemon owns.
 */
#ifndef FERRY_COMPUTE_H
#define FERRY_COMPUTE_H

#include "ferry/plugin.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ferry_launch_request {
    size_t struct_size;
    const char *daemon_id;       /* tag every instance with it */
    const char *environment;     /* environment name */
    const char *worker_id;       /* ferryd's record of this worker */
    const char *server_url;      /* where the agent registers */
    const char *bootstrap_token; /* one-time; a secret: never log it */
    const char *agent_path;      /* local agent binary (local compute only) */
    const char *ca_file;         /* CA the agent verifies the server with, or NULL */
    const char *client_token;    /* idempotency token for the launch */
    int slots;                   /* executions the agent runs at once (its GPUs, or 1) */
} ferry_launch_request;

typedef struct ferry_compute_ops {
    size_t struct_size;
    /* Required. Start one worker machine. Completes with result->instance_id. */
    int (*launch)(void *state, const ferry_launch_request *req, ferry_op *op);
    /* Required. Retire the instance; completes once it is going away. */
    int (*terminate)(void *state, const char *instance_id, ferry_op *op);
    /* Optional. Every instance carrying `daemon_id`; completes with
     * result->text = JSON array of {"instance_id","state","worker_id"}. */
    int (*list)(void *state, const char *daemon_id, ferry_op *op);
    /* Optional. One instance's state; completes with result->text = JSON
     * object {"instance_id","state"} ("pending", "running", "shutting-down",
     * "terminated"). */
    int (*describe)(void *state, const char *instance_id, ferry_op *op);
} ferry_compute_ops;

#ifdef __cplusplus
}
#endif
#endif
