/* local-docker: the JSON of POST /containers/create, built from a run's
 * spec without talking to anyone (unit-tested on its own).
 *
 * Inside the container the execution directory is at /ferry/repository,
 * /ferry/inputs, /ferry/outputs and /ferry/config (DESIGN.md), and also at
 * /valohai/... with valohai_aliases; FERRY_*_DIR (and VH_*_DIR) point there.
 */
#ifndef LD_BODY_H
#define LD_BODY_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "ferry/runtime.h"

#define LD_LABEL_EXECUTION "ferry.execution"
#define LD_LABEL_OWNER "ferry.owner"
#define LD_LABEL_ROLE "ferry.role"
/* Where a "#!" script file is mounted. */
#define LD_COMMAND_PATH "/ferry/command"
#define LD_OUTPUTS_PATH "/ferry/outputs"
/* The entrypoint's `sh -c` program when the spec names no shell: the
 * script (its $0) runs under /bin/bash if the image has one, else /bin/sh. */
#define LD_SHELL_CHOOSER                                                                           \
    "if [ -x /bin/bash ]; then exec /bin/bash -c \"$0\"; fi; exec /bin/sh -c \"$0\""

typedef struct ld_run_opts {
    const char *owner;   /* the ferry.owner label: which plugin instance runs it */
    const char *network; /* network mode; NULL: Docker's default */
    int64_t nano_cpus;   /* the instance's limits, 0 = none; the spec's win */
    int64_t memory;
    const char *command_file; /* host path of the "#!" script, or NULL */
} ld_run_opts;

/* The run's container; NULL with a reason in `why` when the spec cannot be
 * expressed (no image, a GPU list that is not one). */
json_t *ld_run_body(const ferry_run_spec *spec, const ld_run_opts *o, char *why, size_t why_cap);

/* The short helper container that hands the outputs to uid:gid (see
 * outputs.c): the run's image as root, with only the outputs mounted. */
json_t *ld_outputs_body(const char *image, const char *shell, const char *outputs_dir, unsigned uid,
                        unsigned gid, const char *execution_id, const char *owner);

/* HostConfig.DeviceRequests for "0,1" (indices or GPU UUIDs) or "all";
 * NULL for none (NULL, ""), and NULL with *bad set for anything else. */
json_t *ld_device_requests(const char *gpus, int *bad);

/* The daemon's "Env" list: the spec's env, then ours (later names win). */
json_t *ld_run_env(const ferry_run_spec *spec);

#endif
