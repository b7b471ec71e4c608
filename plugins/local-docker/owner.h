/* local-docker: which plugin instance a container belongs to.
 *
 * Several agents may share one Docker daemon (the local compute plugin starts
 * agents side by side on one host), so "a ferry container no run of mine
 * owns" is not enough to call it an orphan: it may be another agent's, busy.
 * Each container carries its instance's owner label,
 *   "<hostname>/<boot id>/<pid>/<process start time>/<instance number>",
 * and a container counts as orphaned when that instance's process is gone:
 * another boot, or no process with that pid and start time on this host.
 */
#ifndef LD_OWNER_H
#define LD_OWNER_H

#include <stddef.h>

typedef enum ld_owner_verdict {
    LD_OWNER_MINE,     /* this instance's */
    LD_OWNER_ORPHANED, /* its instance's process is gone (or no owner label at all) */
    LD_OWNER_LIVE,     /* another instance that still runs, or another host's */
} ld_owner_verdict;

/* This process's next instance label; 0, or -1 when /proc cannot tell. */
int ld_owner_make(char *out, size_t cap);
/* The verdict on a container labelled `label` (NULL: no label). */
ld_owner_verdict ld_owner_judge(const char *label, const char *mine);

#endif
