/* Inputs that a store reads: a URL "<scheme>://..." of a scheme that a
 * loaded store plugin claims (store.h, url_schemes), read with the
 * configured store's endpoint and credentials (so that plugin must be the
 * configured store). http, https and file URLs are the worker's own.
 *
 * The plugin's url_input says which location's instance reads a URL (one
 * per location, made at first use and kept) and with which settings. At
 * submission ferryd checks that each object exists (a head through that
 * instance) and keeps its size and ETag; the work spec then carries a
 * presigned GET URL with them, so the worker downloads without keys,
 * checks the size and caches the file by ETag. */
#ifndef FERRY_OBJINPUTS_H
#define FERRY_OBJINPUTS_H

#include "daemon.h"

/* 1 when `url` is "<scheme>://..." and not a URL the worker fetches itself:
 * a store's to read (or to refuse, when no loaded store claims it). */
int ferry_objinputs_is_url(const char *url);

/* `objects` (borrowed): {"<url>": {"size": N, "etag": "..."}} for every
 * store URL; with rc < 0, `err` says which input failed and why. */
typedef void (*ferry_objinputs_done_fn)(ferryd *d, void *arg, int rc, const json_t *objects,
                                        const char *err);
/* Check every store URL of `inputs` ({"name": ["url", ...]}). 1: there is
 * none (`done` never runs); 0: `done` runs once they are checked, possibly
 * before this returns; < 0: refused at once, `err` filled, no `done`. */
int ferry_objinputs_check(ferryd *d, const json_t *inputs, ferry_objinputs_done_fn done, void *arg,
                          char *err, size_t err_cap);
/* Keep the checked objects of an execution (before it is created). */
void ferry_objinputs_save(ferryd *d, const char *exec_id, const json_t *objects);
/* The work spec's entry for one store URL input file: {"url" (presigned GET),
 * "filename", "source", "size", "etag"}, or {"filename", "source",
 * "error"} when it cannot be presigned. */
json_t *ferry_objinputs_file(ferryd *d, const char *exec_id, const char *url, const char *filename);
void ferry_objinputs_close(ferryd *d);

#endif
