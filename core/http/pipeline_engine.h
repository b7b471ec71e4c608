/* The pipeline engine (issue 20): creates a pipeline's node executions as
 * their sources end, through ferry_submit() like any creation, and carries
 * the data of each edge (outputs as datums, parameters, metadata,
 * environment variables) into the next node's creation body.
 *
 * The unfinished pipelines are in memory, each written through
 * state/pipelinerows.c on every change; the engine follows the lifecycle
 * as an observer, so that an execution's end moves its node on. At start
 * it takes the unfinished pipelines back from the database and looks at
 * their nodes' executions as stored: what ended while ferryd was away is
 * seen then. docs/api.md ("Pipelines") describes what a user sees. */
#ifndef FERRY_PIPELINE_ENGINE_H
#define FERRY_PIPELINE_ENGINE_H

#include <jansson.h>

#include "commits.h"
#include "config.h"
#include "daemon.h"
#include "pipelinerows.h"
#include "reply.h"

/* After the scheduler started: the observer, then the pipelines taken back. */
int ferry_pipeline_engine_init(ferryd *d);
void ferry_pipeline_engine_close(ferryd *d);

/* POST /v1/pipelines's work: `body` {project, pipeline, snapshot,
 * parameters?, reuse?, reuse_from?, title?, tags?} (taken), of `commit`
 * (NULL: the snapshot alone; copied). Checks the whole definition against
 * the step file, stores the pipeline, creates its first nodes and answers
 * `reply` once: 201 with the pipeline's view, or 4xx naming the node, edge
 * or parameter at fault and its line. */
void ferry_pipeline_create(ferryd *d, const ferry_user *user, json_t *body,
                           const ferry_commit_info *commit, ferry_reply *reply);

/* The unfinished pipeline `id` as the engine holds it, or NULL. */
ferry_pipeline *ferry_pipeline_live(ferryd *d, const char *id);

/* A user's stop: the nodes not yet created are stopped, the running ones
 * are asked to stop, and the pipeline ends `stopped` once they have.
 * FERRY_ESTATE when it has ended already. */
int ferry_pipeline_stop(ferryd *d, ferry_pipeline *p, const char *by);

/* A user's answer to node `node`'s require-approval: approve lets it go
 * on, reject stops the pipeline. FERRY_ENOENT for no such node,
 * FERRY_ESTATE when it waits for no approval. */
int ferry_pipeline_approve(ferryd *d, ferry_pipeline *p, const char *node, int approve,
                           const char *by);

/* The node `name` of `p`'s stored definition ({name, type, step, ...}), or NULL. */
const json_t *ferry_pipeline_def_node(const ferry_pipeline *p, const char *name);
/* "node.kind.name" of an edge end of the stored definition; caller frees. */
char *ferry_pipeline_edge_text(const json_t *end);

#endif
