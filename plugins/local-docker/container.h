/* local-docker: the container calls a run makes, one function each, and
 * the few fields read back from their answers. */
#ifndef LD_CONTAINER_H
#define LD_CONTAINER_H

#include <jansson.h>

#include "answers.h"
#include "docker_api.h"

/* POST /containers/create?name=NAME (NULL: Docker names it); on success
 * ld_created_id() has the id. */
int ld_container_create(ld_state *st, json_t *body, const char *name, ld_done_fn done, void *arg,
                        ferry_http_request **out);
/* HEAD /containers/{id}/archive?path=PATH: 200 when PATH exists in the
 * container's file system (stopped or not), 404 when it does not. */
int ld_container_stat(ld_state *st, const char *id, const char *path, ld_done_fn done, void *arg,
                      ferry_http_request **out);
/* POST /containers/{id}/attach?stream=1&stdout=1&stderr=1: the multiplexed
 * output from now until the container ends; on_headers tells when the
 * daemon listens, so that the start can go (nothing is lost before it). */
int ld_container_attach(ld_state *st, const char *id, ferry_http_headers_fn on_headers,
                        ferry_http_data_fn on_data, ld_done_fn done, void *arg,
                        ferry_http_request **out);
int ld_container_start(ld_state *st, const char *id, ld_done_fn done, void *arg,
                       ferry_http_request **out);
/* POST /containers/{id}/wait?condition=not-running: answers when it ended
 * (at once when it already has); ld_wait_code() reads the exit code. */
int ld_container_wait(ld_state *st, const char *id, ld_done_fn done, void *arg,
                      ferry_http_request **out);
int ld_container_inspect(ld_state *st, const char *id, ld_done_fn done, void *arg,
                         ferry_http_request **out);
/* POST /containers/{id}/stop?t=SECONDS: its stop signal, then SIGKILL. */
int ld_container_stop(ld_state *st, const char *id, int seconds, ld_done_fn done, void *arg,
                      ferry_http_request **out);
int ld_container_kill(ld_state *st, const char *id, const char *signal, ld_done_fn done, void *arg,
                      ferry_http_request **out);
/* DELETE /containers/{id}?force=1&v=1: killed if it runs, and its
 * anonymous volumes with it. */
int ld_container_remove(ld_state *st, const char *id, ld_done_fn done, void *arg,
                        ferry_http_request **out);
/* GET /containers/json?all=1 with label ferry.execution. */
int ld_container_list_ours(ld_state *st, ld_done_fn done, void *arg, ferry_http_request **out);

#endif
