/* local-docker: container owners (owner.h). */
#include "owner.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Field 22 of /proc/PID/stat: when the process started, in clock ticks
 * since boot; with the pid, it names one process for the boot's lifetime. */
static int ld_proc_start(long pid, unsigned long long *start)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')'); /* the command name may hold spaces */
    if (p == NULL)
        return -1;
    p++;
    for (int field = 3; field < 22 && p != NULL; field++)
        p = strchr(p + 1, ' ');
    return p != NULL && sscanf(p, " %llu", start) == 1 ? 0 : -1;
}

static int ld_boot_id(char *out, size_t cap)
{
    FILE *f = fopen("/proc/sys/kernel/random/boot_id", "r");
    if (f == NULL)
        return -1;
    char buf[64] = "";
    int ok = fgets(buf, sizeof(buf), f) != NULL;
    fclose(f);
    buf[strcspn(buf, "\n")] = '\0';
    snprintf(out, cap, "%.8s", buf);
    return ok ? 0 : -1;
}

static void ld_hostname(char *out, size_t cap)
{
    if (gethostname(out, cap) != 0)
        snprintf(out, cap, "unknown");
    out[cap - 1] = '\0';
    /* The label is split at '/': a hostname never has one, but be sure. */
    for (char *p = out; *p; p++)
        if (*p == '/')
            *p = '_';
}

int ld_owner_make(char *out, size_t cap)
{
    static unsigned instances; /* instances are made on the loop thread */
    char host[128], boot[16];
    unsigned long long start;
    ld_hostname(host, sizeof(host));
    if (ld_boot_id(boot, sizeof(boot)) < 0 || ld_proc_start((long)getpid(), &start) < 0)
        return -1;
    snprintf(out, cap, "%s/%s/%ld/%llu/%u", host, boot, (long)getpid(), start, ++instances);
    return 0;
}

typedef struct ld_owner {
    char host[128];
    char boot[16];
    long pid;
    unsigned long long start;
    unsigned instance;
} ld_owner;

static int ld_owner_parse(const char *label, ld_owner *o)
{
    char tail;
    if (label == NULL || sscanf(label, "%127[^/]/%15[^/]/%ld/%llu/%u%c", o->host, o->boot, &o->pid,
                                &o->start, &o->instance, &tail) != 5)
        return -1;
    return 0;
}

ld_owner_verdict ld_owner_judge(const char *label, const char *mine)
{
    if (label != NULL && mine != NULL && strcmp(label, mine) == 0)
        return LD_OWNER_MINE;
    ld_owner them, me;
    if (ld_owner_parse(label, &them) < 0)
        return LD_OWNER_ORPHANED; /* ferry's, and no instance claims it */
    if (ld_owner_parse(mine, &me) < 0 || strcmp(them.host, me.host) != 0)
        return LD_OWNER_LIVE; /* another host's processes are not ours to judge */
    if (strcmp(them.boot, me.boot) != 0)
        return LD_OWNER_ORPHANED; /* its process died with the last boot */
    if (them.pid == me.pid && them.start == me.start)
        return LD_OWNER_LIVE; /* another instance of this process: fini cleans up after it */
    unsigned long long start;
    if (ld_proc_start(them.pid, &start) < 0 || start != them.start)
        return LD_OWNER_ORPHANED;
    return LD_OWNER_LIVE;
}
