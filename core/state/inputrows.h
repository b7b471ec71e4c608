/* Object inputs (scheme://BUCKET/KEY) as checked at submission, kept in
 * SQLite (table input_objects): the worker checks the size and caches by
 * ETag (store/objinputs.c decides; this stores). */
#ifndef FERRY_INPUTROWS_H
#define FERRY_INPUTROWS_H

#include <stdint.h>

#include "daemon.h"

/* Record one (in the loop turn's transaction); etag may be NULL. 0 or FERRY_EIO. */
int ferry_inputrows_save(ferryd *d, const char *exec_id, const char *url, int64_t size,
                         const char *etag);
/* Those of `from`, recorded for `to` too (a restart runs the same inputs). */
int ferry_inputrows_copy(ferryd *d, const char *from, const char *to);
/* Its size and ETag ("" when none): 1, or 0 when it was never recorded. */
int ferry_inputrows_find(ferryd *d, const char *exec_id, const char *url, int64_t *size, char *etag,
                         size_t etag_cap);

#endif
