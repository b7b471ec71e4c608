/* Snapshots of projects (docs/api.md, "User API"): uploaded as gzip'd
 * tarballs, kept in the store, and the step files they hold, parsed once
 * per snapshot (a snapshot never changes, so neither does its step file). */
#ifndef FERRY_SNAPSHOTS_H
#define FERRY_SNAPSHOTS_H

#include "request.h"
#include "stepfile.h"

/* POST /v1/snapshots and HEAD|GET /v1/snapshots/<sha256> (routes.c). */
void ferry_snapshots_upload(ferry_http_req *r);
void ferry_snapshots_head(ferry_http_req *r);

/* The step file of snapshot `sha` (cached; do not free): 0, FERRY_ENOENT
 * for a snapshot never uploaded, or another code; `err` says why. */
int ferry_snapshot_stepfile(ferryd *d, const char *sha, ferry_stepfile **out, char *err,
                            size_t cap);
/* The step `step` of snapshot `sha`, or NULL. */
const ferry_step *ferry_snapshot_find_step(ferryd *d, const char *sha, const char *step);
/* Frees the cache of parsed step files. */
void ferry_snapshots_close(ferryd *d);

#endif
