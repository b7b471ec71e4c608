/* local-docker: outputs the agent can read, whoever the image runs as.
 *
 * A container that runs as another user (USER 1000 in its image) leaves
 * files on the bind-mounted outputs folder that the agent may not be able to
 * read (0600) or even list. After the run, the folder is walked (on the
 * host's worker pool); when anything in it is not the agent's, or not
 * readable by its owner, a short helper container from the same image runs
 * as root with only the outputs mounted, and hands them to the owner of the
 * outputs folder (the agent's uid and gid) with owner read/write. Runs whose
 * files are the agent's already (the common case) pay only the walk.
 */
#ifndef LD_OUTPUTS_H
#define LD_OUTPUTS_H

#include <sys/types.h>

#include "local_docker.h"

typedef struct ld_outputs ld_outputs;

/* Once, `warning` NULL when the outputs are fine now; freed after. */
typedef void (*ld_outputs_done_fn)(void *arg, const char *warning);

typedef struct ld_outputs_args {
    const char *image;
    const char *shell;
    const char *outputs_dir;
    const char *execution_id;
    uid_t uid; /* whom they must belong to */
    gid_t gid;
    ld_outputs_done_fn done;
    void *arg;
} ld_outputs_args;

/* 0 and *out, `done` later; or a negative code and nothing happens. */
int ld_outputs_start(ld_state *st, const ld_outputs_args *a, ld_outputs **out);
/* fini: the helper container, if any, is removed, then `done` comes
 * (without a warning); nothing more is asked of the host. */
void ld_outputs_abandon(ld_outputs *o);

/* Whether anything under `dir` is not uid's or not readable by its owner
 * (an unreadable folder counts). Blocking: the worker pool's. */
int ld_outputs_need_fix(const char *dir, uid_t uid);

#endif
