/* The user API: snapshots, executions, environments, whoami (docs/api.md,
 * "User API"). routes.c maps each endpoint to a handler here. */
#ifndef FERRY_API_H
#define FERRY_API_H

#include "commits.h"
#include "request.h"

/* Guards (0 to go on, or a reply was sent): the caller's token (r->user),
 * and with it the execution <ID> of the path that the caller may see
 * (r->exec, released by routes.c). */
int ferry_api_guard_user(ferry_http_req *r);
/* Whether the request's headers carry a good token (or none is needed),
 * sending nothing: for a body not read yet. */
int ferry_api_token_ok(ferry_http_req *r);
int ferry_api_guard_exec(ferry_http_req *r);
/* The owner a listing or lookup is narrowed to: the caller's name, or NULL
 * for an admin (and without users), who sees everything. */
const char *ferry_api_owner_filter(const ferry_http_req *r);

void ferry_api_whoami(ferry_http_req *r);
void ferry_api_environments(ferry_http_req *r);
/* POST /v1/environments/<name>/drain and /undrain: admins only. */
void ferry_api_env_drain(ferry_http_req *r);
void ferry_api_env_undrain(ferry_http_req *r);
/* A creation request (POST /v1/executions, /v1/pipelines): refused with a
 * 507 while the data folder is full; of a "commit", once its snapshot is
 * in the store (commits.h); else `create` at once. */
void ferry_api_create_with(ferry_http_req *r, ferry_commit_ready_fn create);
void ferry_api_create(ferry_http_req *r);
void ferry_api_list(ferry_http_req *r);
void ferry_api_show(ferry_http_req *r);
void ferry_api_stop(ferry_http_req *r);
/* POST .../rerun: a copy of the execution, with overrides (issue 19). */
void ferry_api_rerun(ferry_http_req *r);
void ferry_api_wait(ferry_http_req *r);
void ferry_api_logs(ferry_http_req *r);
void ferry_api_outputs(ferry_http_req *r);
void ferry_api_output_download(ferry_http_req *r);
/* 404 inside the API's paths, once the caller is known. */
void ferry_api_no_endpoint(ferry_http_req *r);

#endif
