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
    /* Appended in ABI 1.2, for plugins with FERRY_COMPUTE_USER_DATA: what the
     * machine runs at its first boot (EC2 user-data, a GCE startup-script):
     * ferryd's bootstrap script (docs/api.md) with this worker's id and
     * one-time token. It holds that token: never log it. NULL otherwise. */
    const char *user_data;
} ferry_launch_request;

/* Bits of ferry_compute_ops.flags: what a plugin needs of the host. */
#define FERRY_COMPUTE_USER_DATA (1u << 0) /* launch requests carry user_data */

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
    /* Appended in ABI 1.2: FERRY_COMPUTE_* bits; 0 for older plugins. */
    unsigned flags;
} ferry_compute_ops;

/* How the host reads what these ops say (ABI 1.2):
 *
 * - launch: result->text (optional) tells people what was tried on the way,
 *   e.g. "us-east-1a: InsufficientInstanceCapacity; us-east-1b: launched";
 *   `ferry show` of a waiting execution repeats it. A failure's message does
 *   the same for every zone tried. A failure that is not retryable with
 *   FERRY_EAUTH, FERRY_EPERM or FERRY_ECONFIG marks the environment broken
 *   (shown by `ferry envs`, retried rarely); other failures are retried
 *   with backoff.
 * - terminate and describe: FERRY_ENOENT means the instance is gone.
 * - list and describe: the objects may also carry "reason", for people,
 *   when an instance is ending ("spot interruption"); states may also be
 *   "stopping" and "stopped". The host retires a worker whose instance it
 *   sees ending without having asked, and removes a worker record only once
 *   describe shows its instance "shutting-down" or "terminated" (or gone).
 *   Every instance list shows with the daemon's id and no record is an
 *   orphan: the host terminates it.
 * - fini retires the instances the plugin instance knows of: a daemon that
 *   stops leaves none running.
 */

#ifdef __cplusplus
}
#endif
#endif
