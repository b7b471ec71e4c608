/* Outputs a worker sends straight to the store (docs/api.md, "Outputs in
 * the store"): ferryd hands out presigned URLs, one PUT per file or, for a
 * file above the store's multipart threshold, an upload id and one URL per
 * part. The agent reports each upload; ferryd records the output only once
 * the store holds the whole object (completing a multipart upload itself),
 * and aborts an upload that failed, was given up or outlived its
 * execution, so that no part lingers.
 *
 * Stores that cannot presign (local-storage) keep ferryd's signed blob URLs
 * (blobs.c): there the PUT itself records the output, and nothing is
 * reported. */
#ifndef FERRY_UPLOADS_H
#define FERRY_UPLOADS_H

#include "exec.h"
#include "reply.h"

/* POST /v1/agent/executions/<id>/outputs (`body` as sent): one upload per
 * declared output; the reply waits for the multipart uploads to begin.
 * Takes `reply`. */
void ferry_uploads_answer(ferryd *d, ferry_exec *e, const json_t *body, ferry_reply *reply);
/* POST /v1/agent/executions/<id>/uploaded: an upload's outcome. Takes `reply`. */
void ferry_uploads_report(ferryd *d, ferry_exec *e, const json_t *body, ferry_reply *reply);
/* At start, before any transition: follow the lifecycle, aborting the
 * open uploads of each execution that ends. */
void ferry_uploads_init(ferryd *d);
/* The execution ended: abort its uploads still open. */
void ferry_uploads_on_end(ferryd *d, const char *exec_id);
/* At start: abort the open uploads of executions that are not active. */
void ferry_uploads_restore(ferryd *d);
/* A blob of output `name` came whole (blobs.c): 1 when it is a live output
 * that waits for the worker's report (not recorded yet), 0 to record it. */
int ferry_uploads_live_stored(ferryd *d, const char *id, const char *name, int64_t size,
                              const char *sha256);

#endif
