/* local-docker: calls to the Docker Engine API over its unix socket.
 *
 * Every path is prefixed with the negotiated version ("/v1.41/..."), except
 * the unversioned ones (/version). Errors are the daemon's own words: its
 * {"message": ...} body, else the transport's error naming the socket.
 */
#ifndef LD_DOCKER_API_H
#define LD_DOCKER_API_H

#include "local_docker.h"

typedef void (*ld_done_fn)(void *arg, const ferry_http_response *res);

typedef struct ld_call {
    const char *method; /* default GET */
    const char *path;   /* after the version: "/containers/create?name=x" */
    const char *body;   /* JSON, or NULL */
    const char *auth;   /* X-Registry-Auth value (a secret), or NULL */
    ferry_http_data_fn on_data;
    ferry_http_headers_fn on_headers;
    long timeout_ms; /* 0: none (waits, streams) */
    long stall_ms;   /* fail when nothing moves for this long; 0: never */
    int unversioned;
} ld_call;

/* Starts a call; `done` runs later, exactly once (never inside this). */
int ld_api_start(ld_state *st, const ld_call *c, ld_done_fn done, void *arg,
                 ferry_http_request **out);
/* The exchange completed with a 2xx. */
int ld_api_ok(const ferry_http_response *res);
/* Why a call failed, for people: the daemon's message, or the transport's
 * error with the socket named. */
const char *ld_api_why(ld_state *st, const ferry_http_response *res, char *buf, size_t cap);

/* GET /version; `ready` gets 0 once st->api is set, or a negative code and
 * the reason (no daemon at the socket, too old). */
typedef void (*ld_ready_fn)(void *arg, int rc, const char *why);
int ld_api_negotiate(ld_state *st, ld_ready_fn ready, void *arg, ferry_http_request **out);

/* Query value escaping for the paths above; malloc'd. */
char *ld_api_escape(const char *value);

#endif
