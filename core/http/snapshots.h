/* Snapshots of projects (docs/api.md, "User API"): uploaded as gzip'd
 * tarballs, kept in the store, and the step files they hold, parsed once
 * per snapshot (a snapshot never changes, so neither does its step file). */
#ifndef FERRY_SNAPSHOTS_H
#define FERRY_SNAPSHOTS_H

#include "blobs.h"
#include "request.h"
#include "stepfile.h"
#include "tarball.h"

/* POST /v1/snapshots and HEAD|GET /v1/snapshots/<sha256> (routes.c). */
void ferry_snapshots_upload(ferry_http_req *r);
void ferry_snapshots_head(ferry_http_req *r);

/* Called once the step file asked for is in the cache (or its failure is). */
typedef void (*ferry_snapshot_loaded_fn)(ferryd *d, void *arg);
/* What a snapshot may expand to (max_snapshot_mb, members, ratio): checked
 * at upload and at every read here, and sent to the agent that extracts it. */
ferry_archive_limits ferry_snapshot_limits(const ferryd *d);

/* The step file of snapshot `sha` (cached; do not free, valid until the
 * loop next turns): 0; FERRY_ENOENT for a snapshot never uploaded; another
 * code (remembered: the snapshot never changes) for one without a step file
 * or that breaks a bound; `err` says why. FERRY_EAGAIN: it is being read on
 * the thread pool (never on the loop): `done` (may be NULL) is called with
 * `arg` when it is in the cache, on a later loop turn. */
int ferry_snapshot_stepfile(ferryd *d, const char *sha, ferry_stepfile **out,
                            ferry_snapshot_loaded_fn done, void *arg, char *err, size_t cap);
/* The step `step` of snapshot `sha`, or NULL; `*loading` set when the step
 * file is not in the cache yet (its reading is started). */
const ferry_step *ferry_snapshot_find_step(ferryd *d, const char *sha, const char *step,
                                           int *loading);
/* Keeps snapshot `sha` (`len` bytes, checked or built by ferryd) in the
 * store, and a copy under <data>/cache/ when the store is not a local
 * folder (the step file is read from it): as ferry_blobs_store_bytes. */
int ferry_snapshot_store(ferryd *d, const char *sha, const void *data, size_t len,
                         ferry_reply *reply, ferry_blobs_done_fn done, void *arg);
/* The same for a snapshot ferryd built in a file of its data folder
 * (core/git/), which it takes: moved to <data>/cache/ for a store that is
 * not a local folder, else removed once the store holds it. `done` runs
 * once the store answered (status 0 or a negative code). 0, or a negative
 * code (then `path` is still the caller's and `done` never runs). */
typedef void (*ferry_snapshot_stored_fn)(ferryd *d, int status, void *arg);
int ferry_snapshot_store_file(ferryd *d, const char *sha, const char *path,
                              ferry_snapshot_stored_fn done, void *arg);
/* Whether snapshot `sha` can be read on this host (HEAD /v1/snapshots). */
int ferry_snapshot_exists(ferryd *d, const char *sha);
/* Puts the step file `name` (`len` bytes) of snapshot `sha` in the cache,
 * parsed here, as reading it from the archive would have: the snapshot of a
 * commit, whose build read it from the tree (at most 1 MiB: a larger one
 * is left to the thread pool). Nothing when it is in the cache already. */
void ferry_snapshot_seed_stepfile(ferryd *d, const char *sha, const char *name, const char *buf,
                                  size_t len);
/* Frees the cache of parsed step files. */
void ferry_snapshots_close(ferryd *d);

#endif
