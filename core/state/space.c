/* Whether the data folder has room for new data.
 *
 * What is refused while free space is under the reserve is what ADDS data
 * of a size ferryd does not bound: new executions (each brings logs and
 * outputs), snapshot uploads, and log events (the agent keeps them in its
 * spool and sends them again: nothing is lost, only delayed). What finishes
 * accepted work is still taken, because refusing it would lose it or keep
 * a worker forever: status reports (started, finished), polls, stop
 * orders, output records. Those are rows of a few hundred bytes, and the
 * reserve is there for them. */
#include "space.h"

#include <stdio.h>
#include <sys/statvfs.h>

#include "db.h"
#include "util.h"

#define SPACE__MIB (1024.0 * 1024.0)

/* The last measure, for one daemon (a process runs one; unit tests start
 * several in turn, hence the owner). */
static struct {
    const ferryd *d;
    double at;
    double free_mib;
    int known;
} space__last;

void ferry_space_forget(ferryd *d)
{
    if (space__last.d == d)
        space__last.known = 0;
}

static double space__free_mib(ferryd *d)
{
    double now = ferry_now();
    if (space__last.d == d && space__last.known && now - space__last.at < 1.0)
        return space__last.free_mib;
    struct statvfs st;
    double free_mib = -1; /* unknown: never a reason to refuse */
    if (statvfs(d->data_dir, &st) == 0)
        free_mib = (double)st.f_bavail * (double)st.f_frsize / SPACE__MIB;
    space__last.d = d;
    space__last.at = now;
    space__last.free_mib = free_mib;
    space__last.known = 1;
    return free_mib;
}

int ferry_space_check(ferryd *d, char *msg, size_t cap)
{
    int reserve = d->cfg.data_reserve_mb;
    double free_mib = space__free_mib(d);
    int low = free_mib >= 0 && free_mib < reserve;
    /* Writes already accepted wait for a commit that failed for want of
     * space (db.c retries it): new ones would only queue behind them. */
    if (!low && !ferry_db_stalled(d))
        return 0;
    snprintf(msg, cap, "no space left in %s (%.0f MiB free, %d MiB reserved); free space and retry",
             d->data_dir, free_mib < 0 ? 0 : free_mib, reserve);
    return FERRY_ENOSPC;
}
