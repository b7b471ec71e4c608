/* ferry plugin SDK: ferry-agent processes on the daemon's own host.
 *
 * For compute plugins whose "instances" are local processes (`local`, the
 * test plugin): starting an agent with an allowlisted environment and its
 * bootstrap token, tracking it, terminating it (SIGTERM, then SIGKILL after a
 * grace), and answering terminate, list and describe the way the host expects
 * (an agent that ends unasked is reported through instance_gone).
 *
 * Everything runs on the loop thread. The bootstrap token travels in the
 * agent's environment only: argv is visible to every user through ps.
 */
#ifndef FERRY_AGENTPROC_H
#define FERRY_AGENTPROC_H

#include <sys/types.h>

#include <uv.h>

#include "ferry/plugin.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A table of agent processes. */
typedef struct ferry_agentproc ferry_agentproc;

typedef struct ferry_agentproc_config {
    ferry_plugin_ctx *ctx;
    const ferry_host_api *host;
    uv_loop_t *loop;
    const char *id_prefix; /* instance ids are "<id_prefix>-<pid>" */
    long grace_ms;         /* SIGTERM to SIGKILL */
    /* Comma-separated names of ferryd's variables that pass to agents; the
     * rest of its environment (cloud credentials above all) never does. */
    const char *env_keep;
    const char *env_extra; /* more names (an operator's setting); may be NULL */
    /* Also pass LC_* and FERRY_* settings, except secrets (names holding
     * TOKEN, SECRET, PASSWORD or KEY) and FERRY_CA_FILE, which a launch sets. */
    int env_ferry;
} ferry_agentproc_config;

/* One agent to start. Its command line is
 *   file --server URL --worker-id ID [--work-dir DIR --runtime RT] [--slots N]
 *        [--runtime-setting KEY=VALUE]... */
typedef struct ferry_agentproc_spawn_args {
    const char *file; /* the agent executable */
    const char *server_url;
    const char *worker_id;
    const char *daemon_id; /* for list's filter; NULL: "" */
    const char *bootstrap_token;
    const char *ca_file;  /* NULL or "": none */
    const char *work_dir; /* NULL: neither --work-dir nor --runtime */
    const char *runtime;
    int slots; /* > 0: --slots N; 0: the agent's default */
    /* "KEY=VALUE" lines, one --runtime-setting each (ferryd gives compute
     * plugins the environment's as the setting "runtime_settings"); NULL:
     * none. */
    const char *runtime_settings;
} ferry_agentproc_spawn_args;

/* The config's strings are copied. NULL when out of memory. */
ferry_agentproc *ferry_agentproc_new(const ferry_agentproc_config *cfg);

/* Starts an agent. 0 and its instance id (valid until its exit callback
 * returns; copy it to keep it), FERRY_ENOMEM, or FERRY_ESPAWN with libuv's
 * error in *uv_error (for uv_strerror). */
int ferry_agentproc_spawn(ferry_agentproc *ap, const ferry_agentproc_spawn_args *a,
                          const char **instance_id, int *uv_error);

/* Asks an agent to end; `op` completes (status 0) once it has exited.
 * FERRY_ENOENT (op untouched) if no such agent runs; FERRY_ENOMEM. */
int ferry_agentproc_terminate(ferry_agentproc *ap, const char *instance_id, ferry_op *op);

/* Whether an agent runs: "running", "shutting-down", or NULL. */
const char *ferry_agentproc_state(const ferry_agentproc *ap, const char *instance_id);

/* Completes `op` with a JSON array of {instance_id, state, worker_id}, of
 * the agents of `daemon_id` (NULL or "": all). 0 or FERRY_ENOMEM. */
int ferry_agentproc_list(ferry_agentproc *ap, const char *daemon_id, ferry_op *op);

/* Completes `op` with {instance_id, state}. An unknown instance gets
 * `unknown_state`, or, where that is NULL, FERRY_ENOENT with op untouched. */
int ferry_agentproc_describe(ferry_agentproc *ap, const char *instance_id,
                             const char *unknown_state, ferry_op *op);

/* Asks every agent to end and never calls the host again: ops still waiting
 * are dropped (the host cancels them). The table frees itself once the last
 * agent's handles are closed, so the loop must keep running. */
void ferry_agentproc_fini(ferry_agentproc *ap);

/* Like fini, but leaves every agent running (a stop of ferryd that keeps
 * the work: the next start takes the agents back when they call again). */
void ferry_agentproc_release(ferry_agentproc *ap);

/* Helpers for a launch. A worker id becomes a folder name: one plain
 * component only. */
int ferry_agentproc_worker_id_ok(const char *id);
/* mkdir -p; 0 or -1 with errno. Kept for plugins written against it:
 * ferry_file_mkdirs (ferry/file.h) is the one implementation. */
int ferry_agentproc_mkdirs(char *path, mode_t mode);

#ifdef __cplusplus
}
#endif

#endif
