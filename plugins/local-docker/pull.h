/* local-docker: make sure a run's image is there, pulling it if not.
 *
 * GET /images/{name}/json; on 404, POST /images/create with the registry's
 * credentials (X-Registry-Auth, this pull only, and only when they were given
 * for the image's own registry), its progress handed out as status lines.
 */
#ifndef LD_PULL_H
#define LD_PULL_H

#include "local_docker.h"

typedef struct ld_pull ld_pull;

/* A line for the run's status stream, with its newline. */
typedef void (*ld_status_fn)(void *arg, const char *text, size_t len);
/* Once: 0 when the image is there, else a code and the reason
 * ("pulling X: <the registry's message>"); FERRY_ECANCELED after
 * ld_pull_cancel. The pull is freed after it returns. */
typedef void (*ld_pull_done_fn)(void *arg, int rc, const char *why);

typedef struct ld_pull_args {
    const char *image;
    /* Credentials, or NULL: secrets, copied only as the header's value. */
    const char *registry_server;
    const char *username;
    const char *password;
    ld_status_fn status;
    ld_pull_done_fn done;
    void *arg;
} ld_pull_args;

/* 0 and *out, or a negative code with the reason in `why` (a reference
 * that is none); `done` never runs inside this call. */
int ld_pull_start(ld_state *st, const ld_pull_args *a, ld_pull **out, char *why, size_t why_cap);
/* `done` runs with FERRY_ECANCELED (maybe inside this call). */
void ld_pull_cancel(ld_pull *p);

#endif
