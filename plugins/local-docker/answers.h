/* local-docker: the few fields read back from the daemon's answers. Pure:
 * unit-tested on its own. */
#ifndef LD_ANSWERS_H
#define LD_ANSWERS_H

#include <stddef.h>

#include "ferry/http.h"

/* Container ids are 64 hex digits. */
#define LD_ID_CAP 80

/* The "Id" of a create answer; 0, or -1 when there is none. */
int ld_created_id(const ferry_http_response *res, char *id, size_t cap);
/* The "StatusCode" of a wait answer; -1 when there is none. */
int ld_wait_code(const ferry_http_response *res);
/* State.OOMKilled of an inspect answer. */
int ld_inspect_oom_killed(const ferry_http_response *res);

#endif
