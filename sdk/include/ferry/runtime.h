/* ferry plugin SDK: runtime plugins run an execution's commands on a worker.
 *
 * Loaded by ferry-agent. The agent prepares the execution directory and the
 * script; the runtime runs it (a process group, a container...), streams its
 * output and reports the exit exactly once.
 */
#ifndef FERRY_RUNTIME_H
#define FERRY_RUNTIME_H

#include "ferry/plugin.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum ferry_stream {
    FERRY_STREAM_STDOUT = 1,
    FERRY_STREAM_STDERR = 2,
    FERRY_STREAM_STATUS = 3, /* runtime progress, e.g. image pulls */
} ferry_stream;

typedef struct ferry_run ferry_run; /* plugin-owned handle of one running execution */

typedef struct ferry_run_callbacks {
    size_t struct_size;
    void *arg;
    /* Bytes the commands wrote, in order per stream; not split into lines
     * (the host does that). Called on the loop thread. */
    void (*output)(void *arg, ferry_stream stream, const char *data, size_t len);
    /* Exactly once, after all output: exit code (128+N for signal N), or -1 if
     * the commands could not start; `reason` says why when it is not a plain
     * exit ("oom-killed", "stopped", "could not start: ..."), else NULL.
     * After it returns the run handle is freed by the plugin. */
    void (*exited)(void *arg, int exit_code, const char *reason);
} ferry_run_callbacks;

/* A host path bound where the commands see it (a step's `mounts`). */
typedef struct ferry_mount {
    const char *source;      /* absolute host path, allowed by ferryd and checked by the agent */
    const char *destination; /* absolute path where the commands see it */
    int readonly;
} ferry_mount;

typedef struct ferry_run_spec {
    size_t struct_size;
    const char *execution_id;
    const char *image;      /* Docker image (ignored by local-process) */
    const char *script;     /* shell script: the step's commands, already built */
    const char *shell;      /* interpreter; default /bin/bash where it exists, else /bin/sh */
    const char *const *env; /* NULL-terminated "NAME=value" list */
    /* Host paths of the execution directory, and where the commands see them. */
    const char *repository_dir;
    const char *inputs_dir;
    const char *outputs_dir;
    const char *config_dir;
    int valohai_aliases;  /* also expose them under /valohai/... */
    const char *gpus;     /* assigned GPU indices, "0,1", or NULL */
    double cpus;          /* 0 = unlimited */
    int64_t memory_bytes; /* 0 = unlimited */
    /* Credentials for pulling `image` from its registry, for this pull only;
     * NULL when the operator configured none for that registry. Secrets:
     * never logged, never kept after the pull. */
    const char *registry_server; /* as in the image reference, "host:port" */
    const char *registry_username;
    const char *registry_password;
    /* Appended (issue 18): the step's bind mounts, n_mounts of them
     * (local-docker: in the container; local-process: in the execution's
     * mount namespace). Check with FERRY_HAS_FIELD(spec, ferry_run_spec,
     * n_mounts). */
    const ferry_mount *mounts;
    size_t n_mounts;
    /* Appended (issue 19): files of the worker's input cache the commands
     * read as inputs, n_input_files of them, never more than the runtime's
     * binds_input_files answers. Each `source` (a regular file) is bound
     * read-only at `destination`, a path relative to the inputs folder (an
     * empty file is there already), wherever the commands see that folder
     * (every alias); `readonly` is ignored. A runtime that cannot bind one
     * must refuse to start: the commands would read an empty file. Check
     * with FERRY_HAS_FIELD(spec, ferry_run_spec, n_input_files). */
    const ferry_mount *input_files;
    size_t n_input_files;
} ferry_run_spec;

/* The runtime itself adds FERRY_REPOSITORY_DIR, FERRY_INPUTS_DIR,
 * FERRY_OUTPUTS_DIR and FERRY_CONFIG_DIR (and, with valohai_aliases, the
 * VH_* equivalents) pointing where the commands see the directories; the
 * working directory is the repository directory. `env` holds the rest. */
typedef struct ferry_runtime_ops {
    size_t struct_size;
    /* Required. Start the commands; on 0, callbacks fire later and *run is set.
     * `spec` and its strings are valid only during the call: copy what the
     * run needs later (and drop credentials once the pull is done).
     * On a negative return nothing runs and no callback fires; err says why,
     * and its message fits as the execution's reason (local-process answers
     * FERRY_ESPAWN, "could not start: ...", when the process cannot start). */
    int (*start)(void *state, const ferry_run_spec *spec, const ferry_run_callbacks *cb,
                 ferry_run **run, ferry_error_detail *err);
    /* Required. Ask the run to end: SIGTERM (or the runtime's equivalent),
     * then a kill after grace_ms. `exited` still fires exactly once. */
    int (*stop)(void *state, ferry_run *run, int grace_ms);
    /* Optional. Remove leftovers (containers) that no execution owns. */
    int (*cleanup)(void *state, ferry_op *op);
    /* Optional (appended for config/inputs.json, issue 18): where the
     * commands see the inputs folder ("/valohai/inputs" in a container of a
     * valohai.yaml project), so that the paths the agent writes there are
     * the commands' own. NULL (or the op absent): the host's inputs_dir,
     * which is where they see it (local-process). */
    const char *(*inputs_path)(void *state, int valohai_aliases);
    /* Optional (appended, issue 19): how many of the spec's input_files
     * start() can bind on this worker, so that large inputs the worker's
     * cache holds reach the commands without a copy; the agent copies the
     * rest. NULL or 0: it copies every one. Asked once per execution. */
    int (*binds_input_files)(void *state);
} ferry_runtime_ops;

#ifdef __cplusplus
}
#endif
#endif
