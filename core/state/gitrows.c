/* core/git/'s rows in SQLite (gitrows.h). */
#include "gitrows.h"

#include <string.h>

#include "db.h"
#include "util.h"

int ferry_gitrows_snapshot(ferryd *d, const char *tree, char *snapshot, int64_t *lfs_files)
{
    sqlite3_stmt *st =
        ferry_db_prepare(d, "SELECT snapshot, lfs_files FROM git_snapshots WHERE tree = ?");
    sqlite3_bind_text(st, 1, tree, -1, SQLITE_STATIC);
    int rc = FERRY_ENOENT;
    if (sqlite3_step(st) == SQLITE_ROW) {
        const char *sha = (const char *)sqlite3_column_text(st, 0);
        if (sha && strlen(sha) == 64) {
            memcpy(snapshot, sha, 65);
            *lfs_files = sqlite3_column_int64(st, 1);
            rc = 0;
        }
    }
    sqlite3_reset(st);
    return rc;
}

int ferry_gitrows_put_snapshot(ferryd *d, const char *tree, const char *snapshot, int64_t lfs_files)
{
    ferry_db_write(d);
    sqlite3_stmt *st = ferry_db_prepare(
        d, "INSERT INTO git_snapshots (tree, snapshot, lfs_files, created_at) VALUES (?, ?, ?, ?)"
           " ON CONFLICT (tree) DO UPDATE SET snapshot = excluded.snapshot,"
           " lfs_files = excluded.lfs_files, created_at = excluded.created_at");
    sqlite3_bind_text(st, 1, tree, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, snapshot, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, lfs_files);
    sqlite3_bind_double(st, 4, ferry_now());
    return ferry_db_step_done(d, st) == SQLITE_DONE ? 0 : FERRY_EIO;
}

int ferry_gitrows_drop_snapshot(ferryd *d, const char *tree)
{
    ferry_db_write(d);
    sqlite3_stmt *st = ferry_db_prepare(d, "DELETE FROM git_snapshots WHERE tree = ?");
    sqlite3_bind_text(st, 1, tree, -1, SQLITE_STATIC);
    return ferry_db_step_done(d, st) == SQLITE_DONE ? 0 : FERRY_EIO;
}

int ferry_gitrows_put_fetch(ferryd *d, const char *project, double at, const char *error)
{
    ferry_db_write(d);
    sqlite3_stmt *st =
        ferry_db_prepare(d, "INSERT INTO git_fetches (project, fetched_at, error) VALUES (?, ?, ?)"
                            " ON CONFLICT (project) DO UPDATE SET fetched_at = excluded.fetched_at,"
                            " error = excluded.error");
    sqlite3_bind_text(st, 1, project, -1, SQLITE_STATIC);
    sqlite3_bind_double(st, 2, at);
    if (error)
        sqlite3_bind_text(st, 3, error, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 3);
    return ferry_db_step_done(d, st) == SQLITE_DONE ? 0 : FERRY_EIO;
}

int ferry_gitrows_fetch(ferryd *d, const char *project, double *at, char **error)
{
    sqlite3_stmt *st =
        ferry_db_prepare(d, "SELECT fetched_at, error FROM git_fetches WHERE project = ?");
    sqlite3_bind_text(st, 1, project, -1, SQLITE_STATIC);
    int rc = FERRY_ENOENT;
    if (sqlite3_step(st) == SQLITE_ROW) {
        *at = sqlite3_column_double(st, 0);
        const char *e = (const char *)sqlite3_column_text(st, 1);
        *error = e ? ferry_strdup(e) : NULL;
        rc = 0;
    }
    sqlite3_reset(st);
    return rc;
}
