/* Creating an execution: one way for every creator, so that a request of
 * the API (POST /v1/executions, a rerun) and ferryd's own (a pipeline's
 * node) are checked and recorded alike (docs/api.md, "Executions").
 *
 * `body` is a creation request's JSON: project, step, snapshot, and
 * optionally parameters, inputs, environment, environment_variables,
 * title, image, command (a text or a list of texts run in place of the
 * step's commands: a pipeline node's override), tags, priority,
 * autorestart, time_limit, no_output_timeout, based_on. The answer goes to `reply` exactly once,
 * possibly before ferry_submit returns or on a later loop turn (the step
 * file read on the pool, store inputs checked): 201 with the execution's
 * view, or the error with its status and the field at fault ("unknown
 * step 'x' in valohai.yaml; known steps: ..."). A reply whose client went
 * away meanwhile (ferry_reply_gone) gets no execution made. */
#ifndef FERRY_SUBMIT_H
#define FERRY_SUBMIT_H

#include <jansson.h>

#include "commits.h"
#include "config.h"
#include "daemon.h"
#include "reply.h"

/* Takes `body` and `reply`; `user` is the owner (NULL without users);
 * `commit` the commit it runs (NULL: the snapshot alone), copied. */
/* Whether `project` is a valid project name: 1-100 of [A-Za-z0-9._-]. */
int ferry_submit_project_ok(const char *project);

void ferry_submit(ferryd *d, const ferry_user *user, json_t *body, const ferry_commit_info *commit,
                  ferry_reply *reply);

#endif
