/* The worker's caches, <work>/snapshots and <work>/inputs-cache, kept
 * within --cache-max-mb: when a new entry pushes them over, the entries used
 * least recently go. A long-lived worker would otherwise fill its disk with
 * every snapshot and input it ever saw.
 *
 * An entry's mtime is when it was last used (cache_touch on every hit), so
 * the order survives a restart of the agent. Downloads in progress (*.part)
 * are not entries, and neither are entries used in the last CACHE_PIN_S: an
 * execution between taking an entry and opening it (another slot, the same
 * snapshot) must find it there. Pruning runs on the threadpool; an
 * execution that is already copying or extracting a removed entry still
 * reads it through its open file.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "agent.h"
#include "log.h"
#include "util.h"

#define CACHE_PIN_S 60

typedef struct cache_entry {
    char *path;
    int64_t size;
    struct timespec used;
} cache_entry;

typedef struct cache_entries {
    cache_entry *v;
    size_t n, cap;
    int64_t total;
} cache_entries;

void cache_touch(const char *path)
{
    if (utimensat(AT_FDCWD, path, NULL, 0) != 0 && errno != ENOENT)
        ferry_debug("cache: %s: %s", path, strerror(errno));
}

static int cache_is_part(const char *name)
{
    size_t n = strlen(name);
    return n >= 5 && strcmp(name + n - 5, ".part") == 0;
}

static void cache_scan(cache_entries *es, const char *dir, time_t pinned_after)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return;
    for (struct dirent *de; (de = readdir(d)) != NULL;) {
        if (de->d_name[0] == '.' || cache_is_part(de->d_name))
            continue;
        char *path = ferry_asprintf("%s/%s", dir, de->d_name);
        struct stat st;
        if (lstat(path, &st) != 0 || !S_ISREG(st.st_mode)) {
            free(path);
            continue;
        }
        FERRY_XGROW(es->v, es->cap, es->n + 1);
        es->total += st.st_size;
        if (st.st_mtim.tv_sec > pinned_after) {
            free(path);
            continue;
        }
        es->v[es->n++] = (cache_entry){.path = path, .size = st.st_size, .used = st.st_mtim};
    }
    closedir(d);
}

static int cache_older_first(const void *a, const void *b)
{
    const struct timespec *x = &((const cache_entry *)a)->used;
    const struct timespec *y = &((const cache_entry *)b)->used;
    if (x->tv_sec != y->tv_sec)
        return x->tv_sec < y->tv_sec ? -1 : 1;
    return x->tv_nsec < y->tv_nsec ? -1 : x->tv_nsec > y->tv_nsec;
}

int64_t cache_prune(const char *work_dir, int64_t max_bytes)
{
    cache_entries es = {0};
    char *snapshots = ferry_asprintf("%s/snapshots", work_dir);
    char *inputs = ferry_asprintf("%s/inputs-cache", work_dir);
    time_t pinned_after = time(NULL) - CACHE_PIN_S;
    cache_scan(&es, snapshots, pinned_after);
    cache_scan(&es, inputs, pinned_after);
    qsort(es.v, es.n, sizeof(*es.v), cache_older_first);
    int64_t freed = 0;
    for (size_t i = 0; i < es.n && es.total > max_bytes; i++) {
        if (unlink(es.v[i].path) == 0 || errno == ENOENT) {
            es.total -= es.v[i].size;
            freed += es.v[i].size;
        } else {
            ferry_warn("cache: cannot remove %s: %s", es.v[i].path, strerror(errno));
        }
    }
    if (freed > 0)
        ferry_info("cache: removed %lld bytes used least recently (limit %lld)", (long long)freed,
                   (long long)max_bytes);
    for (size_t i = 0; i < es.n; i++)
        free(es.v[i].path);
    free(es.v);
    free(snapshots);
    free(inputs);
    return freed;
}
