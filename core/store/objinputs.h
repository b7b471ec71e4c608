/* Inputs in object storage: s3://BUCKET/KEY, read with the store's
 * endpoint and credentials (the store must be s3-storage).
 *
 * At submission ferryd checks that each object exists (a HEAD through an
 * s3-storage instance for that bucket, without the store's prefix; one
 * instance per bucket, kept) and keeps its size and ETag; the work spec
 * then carries a presigned GET URL with them, so the worker downloads
 * without keys, checks the size and caches the file by ETag. */
#ifndef FERRY_OBJINPUTS_H
#define FERRY_OBJINPUTS_H

#include "daemon.h"

int ferry_objinputs_is_url(const char *url);

/* `objects` (borrowed): {"<url>": {"size": N, "etag": "..."}} for every
 * s3:// URL; with rc < 0, `err` says which input failed and why. */
typedef void (*ferry_objinputs_done_fn)(ferryd *d, void *arg, int rc, const json_t *objects,
                                        const char *err);
/* Check every s3:// URL of `inputs` ({"name": ["url", ...]}). 1: there is
 * none (`done` never runs); 0: `done` runs once they are checked, possibly
 * before this returns; < 0: refused at once, `err` filled, no `done`. */
int ferry_objinputs_check(ferryd *d, const json_t *inputs, ferry_objinputs_done_fn done, void *arg,
                          char *err, size_t err_cap);
/* Keep the checked objects of an execution (before it is created). */
void ferry_objinputs_save(ferryd *d, const char *exec_id, const json_t *objects);
/* The work spec's entry for one s3:// input file: {"url" (presigned GET),
 * "filename", "source", "size", "etag"}, or {"filename", "source",
 * "error"} when it cannot be presigned. */
json_t *ferry_objinputs_file(ferryd *d, const char *exec_id, const char *url, const char *filename);
void ferry_objinputs_close(ferryd *d);

#endif
