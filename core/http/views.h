/* JSON views of ferryd's records, as the API answers them. */
#ifndef FERRY_VIEWS_H
#define FERRY_VIEWS_H

#include <jansson.h>

#include "exec.h"
#include "pipelinerows.h"

/* One execution; status_reason says why it waits when the scheduler knows. */
json_t *ferry_view_exec(ferryd *d, const ferry_exec *e);
/* Executions newest first, filtered; a JSON array. */
json_t *ferry_view_exec_list(ferryd *d, const ferry_exec_filter *f);

/* A time as the API shows it (RFC 3339, UTC), or null for none (<= 0). */
json_t *ferry_view_time(double t);
/* One pipeline, its nodes (with their executions) and its edges
 * (docs/api.md, "Pipeline object"). */
json_t *ferry_view_pipeline(ferryd *d, const ferry_pipeline *p);

#endif
