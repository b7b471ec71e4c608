/* Pipelines and their nodes, in SQLite (issue 20).
 *
 * A pipeline is a row of `pipelines`: what was asked (the project, the
 * pipeline's name, the snapshot or commit, the definition as JSON, the
 * parameters as given, reuse), its status and times. Each node is a row of
 * `pipeline_nodes`: its status as the engine sees it, the execution it has
 * (once created), its attempts, whether it was reused, its approval, and
 * the creation body it starts from (the step, the node's parameters and
 * inputs before its edges add theirs). The engine (http/pipeline_engine.c)
 * holds the unfinished pipelines in memory as these structs and writes
 * every change through here, so that a restarted ferryd takes them back. */
#ifndef FERRY_PIPELINEROWS_H
#define FERRY_PIPELINEROWS_H

#include <jansson.h>
#include <stdint.h>

#include "daemon.h"

/* A node's status, as the engine keeps it. While its execution exists and
 * has not ended the node is "running"; views show the execution's own
 * status then. */
#define FERRY_NODE_PENDING "pending"   /* waits for its sources */
#define FERRY_NODE_APPROVAL "approval" /* waits for a user's approval */
#define FERRY_NODE_RUNNING "running"   /* its execution exists, not ended */
#define FERRY_NODE_COMPLETE "complete"
#define FERRY_NODE_ERROR "error"
#define FERRY_NODE_STOPPED "stopped"
#define FERRY_NODE_SKIPPED "skipped" /* a source failed under stop-next */

typedef struct ferry_pnode {
    char *name;
    char *status;       /* FERRY_NODE_* */
    char exec_id[37];   /* "" until its execution exists */
    int attempts;       /* executions created for it */
    int reused;         /* its execution is an earlier one's (reuse) */
    char *approval;     /* NULL, "waiting", "approved" or "rejected" */
    char *approval_by;  /* who approved or rejected; NULL */
    double approval_at; /* when; 0 */
    char *reason;       /* why it failed, stopped or was skipped; NULL */
    json_t *base;       /* the creation body before edges (submit.h) */
    json_t *commit;     /* the commit it runs ({sha, ...}); NULL: the snapshot */
} ferry_pnode;

typedef struct ferry_pipeline {
    char id[37];
    int64_t counter; /* per project, as executions' */
    char *project, *name, *owner;
    char *status; /* created, started, complete, error, stopped */
    char *reason;
    /* The status it takes once its running nodes have ended (a stop, a
     * failure under stop-all); NULL while it goes on. */
    char *ending;
    char *snapshot;
    json_t *git_commit; /* {sha, ...} of the commit it runs, or NULL */
    json_t *definition; /* {"nodes": [...], "edges": [...]} (pipeline_engine.c) */
    json_t *parameters; /* as given: {"NODE.PARAM" or "PARAM": value} */
    int reuse;
    char *reuse_from; /* a pipeline id, or NULL */
    char *title;
    json_t *tags;
    double created_at, started_at, ended_at;
    ferry_pnode *nodes;
    size_t n_nodes;
} ferry_pipeline;

void ferry_pipeline_free(ferry_pipeline *p);
/* The node named `name`, or NULL. */
ferry_pnode *ferry_pipeline_find_node(const ferry_pipeline *p, const char *name);
/* Whether a pipeline status is final (complete, error, stopped). */
int ferry_pipeline_status_final(const char *status);

/* Store a new pipeline with its nodes; gives it its counter. 0 or FERRY_EIO. */
int ferry_pipelines_insert(ferryd *d, ferry_pipeline *p);
/* Store its status, reason, ending and times. */
int ferry_pipelines_save(ferryd *d, const ferry_pipeline *p);
/* Store one node's row. */
int ferry_pipelines_save_node(ferryd *d, const ferry_pipeline *p, const ferry_pnode *n);
/* The pipeline `ref` (a uuid, or a counter in `project` when non-NULL and
 * among `owner`'s when non-NULL): 0, FERRY_ENOENT, or FERRY_EEXIST when a
 * counter is ambiguous across projects. The caller frees *out. */
int ferry_pipelines_find(ferryd *d, const char *ref, const char *project, const char *owner,
                         ferry_pipeline **out);
/* Ids of pipelines, newest first, of `project` and `owner` when non-NULL,
 * at most `limit`; or, with `unfinished`, every one not yet ended, oldest
 * first. A JSON array of strings. */
json_t *ferry_pipelines_ids(ferryd *d, const char *project, const char *owner, int unfinished,
                            int limit);

#endif
