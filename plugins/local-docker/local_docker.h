/* local-docker: what the plugin's files share.
 *
 * Everything runs on the host's loop thread: the runs are state machines
 * driven by the SDK's asynchronous HTTP client talking to the daemon's unix
 * socket. Only the walk over a run's outputs (outputs.c) goes to the host's
 * worker pool.
 */
#ifndef LOCAL_DOCKER_H
#define LOCAL_DOCKER_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "ferry/ferry.h"
#include "ferry/http.h"

#define LD_NAME "local-docker"

typedef struct ld_cleanup ld_cleanup;

typedef struct ld_state {
    ferry_plugin_ctx *ctx;
    const ferry_host_api *host;
    uv_loop_t *loop;
    ferry_http_client *http;
    char socket[108];
    char *network;     /* NULL: Docker's default */
    int64_t nano_cpus; /* the instance's limits; 0 = none */
    int64_t memory;
    char api[16];           /* the version spoken ("1.41"), "" until negotiated */
    char owner[192];        /* the ferry.owner label of this instance's containers */
    struct ferry_run *runs; /* started, `exited` not called yet */
    ld_cleanup *cleanups;   /* cleanup ops in flight */
    int refs;               /* what must end before the state is freed */
    int finishing;          /* fini ran: no more host calls */
} ld_state;

/* Log through the host, unless fini already ran. */
void ld_log(ld_state *st, ferry_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Drop one reference; the state goes with the last (after fini). */
void ld_state_unref(ld_state *st);

/* run.c: the runtime ops. */
int ld_run_start(void *state, const ferry_run_spec *spec, const ferry_run_callbacks *cb,
                 ferry_run **out, ferry_error_detail *err);
int ld_run_stop(void *state, ferry_run *run, int grace_ms);
/* Whether a live run of this instance owns the container with this id or
 * execution label (cleanup). */
int ld_run_owns(ld_state *st, const char *container_id, const char *execution_id);
/* fini: every run ends silently, its containers force-removed. */
void ld_runs_abandon(ld_state *st);

/* cleanup.c */
int ld_cleanup_start(void *state, ferry_op *op);
void ld_cleanups_abandon(ld_state *st);

#endif
