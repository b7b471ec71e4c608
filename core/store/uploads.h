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
#include "server.h"

/* POST /v1/agent/executions/<id>/outputs: one upload per declared output;
 * the reply waits for the multipart uploads to begin. */
void ferry_uploads_answer(ferry_http_req *r, ferry_exec *e);
/* POST /v1/agent/executions/<id>/uploaded: an upload's outcome. */
void ferry_uploads_report(ferry_http_req *r, ferry_exec *e);
/* The execution ended: abort its uploads still open. */
void ferry_uploads_on_end(ferryd *d, const char *exec_id);
/* At start: abort the open uploads of executions that are not active. */
void ferry_uploads_restore(ferryd *d);

#endif
