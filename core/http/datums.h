/* Datums and aliases over HTTP (docs/api.md, "Datums and aliases"): the
 * user API's handlers, the resolution of `datum://` inputs when an
 * execution is created, and their entries in a work spec (the rows are
 * state/datumrows.c's). */
#ifndef FERRY_HTTP_DATUMS_H
#define FERRY_HTTP_DATUMS_H

#include <jansson.h>

#include "daemon.h"
#include "exec.h"
#include "request.h"

/* Resolve each `datum://REF` URL of `inputs` ({"name": ["url", ...]}) in
 * place to the `datum://<id>` it names now (a datum id or an alias, as
 * `user` may see it). 0, with *records (NULL when there was none) for
 * ferry_http_datums_save; or FERRY_REPLIED after a 400 on `reply` naming the
 * input ("input 'model': datum://X is no alias or datum"). */
int ferry_http_datums_resolve(ferryd *d, const ferry_user *user, ferry_reply *reply, json_t *inputs,
                              json_t **records);
/* Record what the inputs of the new execution `exec_id` resolved to. */
void ferry_http_datums_save(ferryd *d, const char *exec_id, const json_t *records);

/* Say in the new execution's log what each datum input resolved to
 * ("input model: datum://model-prod is datum://<id> (output model.bin)"). */
void ferry_http_datums_note(ferryd *d, ferry_exec *e, const json_t *records);

/* The file name a datum input gets in its input's folder: the last part of
 * the output's name (malloc'd). */
char *ferry_http_datums_basename(ferryd *d, const char *url);

/* The work spec's entry for a `datum://<id>` input file: {"url" (a
 * presigned or ferryd-signed GET; never a store key), "filename",
 * "source": "datum://<id>", "size", "sha256", "etag": the sha256 (the
 * worker caches by it)}, or {"filename", "source", "error"}. */
json_t *ferry_http_datums_input_file(ferryd *d, const char *url, const char *filename);

/* The handlers of routes.c. */
void ferry_api_alias_list(ferry_http_req *r);
void ferry_api_alias_set(ferry_http_req *r);
void ferry_api_alias_history(ferry_http_req *r);
void ferry_api_datum_show(ferry_http_req *r);

#endif
