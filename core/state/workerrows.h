/* Worker records in SQLite (table workers): what a restart of ferryd needs
 * to take its workers back. sched/workers.c owns the workers; this stores
 * them. Tokens are kept as hashes only: a stolen database holds none. */
#ifndef FERRY_WORKERROWS_H
#define FERRY_WORKERROWS_H

#include "daemon.h"

typedef struct ferry_worker_row {
    const char *id, *environment, *instance_id; /* instance_id may be NULL */
    const char *state;                          /* as sched/worker_state.c names it */
    const char *token_hash, *bootstrap_hash;    /* "" when none */
    int slots;
} ferry_worker_row;

/* Insert or update (in the loop turn's transaction): 0 or FERRY_EIO. */
int ferry_workerrows_save(ferryd *d, const ferry_worker_row *row);
void ferry_workerrows_delete(ferryd *d, const char *id);
/* `each` for every record, oldest first (the row is valid during the call,
 * which must not write workers); the number of records. */
int ferry_workerrows_each(ferryd *d, void (*each)(ferryd *d, const ferry_worker_row *row));

#endif
