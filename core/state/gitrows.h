/* What core/git/ keeps in SQLite: the snapshot built from each git tree
 * (table git_snapshots: every commit with the same tree shares it) and each
 * project's last fetch (table git_fetches: when, and why it failed). */
#ifndef FERRY_GITROWS_H
#define FERRY_GITROWS_H

#include "daemon.h"

/* The snapshot (sha256 of its .tar.gz) built from tree `tree` (40 hex):
 * 0 with `snapshot` (65 bytes) and `*lfs_files` set, or FERRY_ENOENT. */
int ferry_gitrows_snapshot(ferryd *d, const char *tree, char *snapshot, int64_t *lfs_files);
/* Remember it (in the loop turn's transaction): 0 or FERRY_EIO. */
int ferry_gitrows_put_snapshot(ferryd *d, const char *tree, const char *snapshot,
                               int64_t lfs_files);
/* Forget it (its snapshot is gone from the store): 0 or FERRY_EIO. */
int ferry_gitrows_drop_snapshot(ferryd *d, const char *tree);

/* Record a fetch of `project` at `at` (unix seconds); `error` NULL when it
 * worked: 0 or FERRY_EIO. */
int ferry_gitrows_put_fetch(ferryd *d, const char *project, double at, const char *error);
/* The last fetch of `project`: 0 with *at and *error (malloc'd or NULL, to
 * free), or FERRY_ENOENT when it was never fetched. */
int ferry_gitrows_fetch(ferryd *d, const char *project, double *at, char **error);

#endif
