/* Room in the data folder (the database, the logs, a local store): requests
 * that add data are refused while free space is under the reserve
 * (data_reserve_mb), so that what was already accepted can still be
 * committed. */
#ifndef FERRY_SPACE_H
#define FERRY_SPACE_H

#include "daemon.h"

/* 0 when new data may be taken; FERRY_ENOSPC, with "no space left in DIR
 * (N MiB free, M MiB reserved); free space and retry" in msg, while free
 * space is under the reserve or the database cannot commit. statvfs(2) at
 * most once a second. */
int ferry_space_check(ferryd *d, char *msg, size_t cap);
/* Forget the last measure: the next check looks again (after a write
 * failed for want of space, or in a test). */
void ferry_space_forget(ferryd *d);

#endif
