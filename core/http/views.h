/* JSON views of ferryd's records, as the API answers them. */
#ifndef FERRY_VIEWS_H
#define FERRY_VIEWS_H

#include <jansson.h>

#include "exec.h"

/* One execution; status_reason says why it waits when the scheduler knows. */
json_t *ferry_view_exec(ferryd *d, const ferry_exec *e);
/* Executions newest first, optionally filtered (owner NULL: everyone's); a
 * JSON array. */
json_t *ferry_view_exec_list(ferryd *d, const char *status, const char *project, const char *step,
                             const char *owner, int limit);

#endif
