/* Object inputs as checked at submission, in SQLite (inputrows.h). */
#include "inputrows.h"

#include <stdio.h>

#include "db.h"

int ferry_inputrows_save(ferryd *d, const char *exec_id, const char *url, int64_t size,
                         const char *etag)
{
    ferry_db_write(d);
    sqlite3_stmt *st = ferry_db_prepare(d, "INSERT OR REPLACE INTO input_objects (execution_id,"
                                           " url, size, etag) VALUES (?,?,?,?)");
    sqlite3_bind_text(st, 1, exec_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, url, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, size);
    sqlite3_bind_text(st, 4, etag, -1, SQLITE_STATIC);
    return ferry_db_step_done(d, st) == SQLITE_DONE ? 0 : FERRY_EIO;
}

int ferry_inputrows_copy(ferryd *d, const char *from, const char *to)
{
    ferry_db_write(d);
    sqlite3_stmt *st = ferry_db_prepare(
        d, "INSERT OR REPLACE INTO input_objects (execution_id, url, size, etag)"
           " SELECT ?2, url, size, etag FROM input_objects WHERE execution_id = ?1");
    sqlite3_bind_text(st, 1, from, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, to, -1, SQLITE_STATIC);
    return ferry_db_step_done(d, st) == SQLITE_DONE ? 0 : FERRY_EIO;
}

int ferry_inputrows_find(ferryd *d, const char *exec_id, const char *url, int64_t *size, char *etag,
                         size_t etag_cap)
{
    sqlite3_stmt *st = ferry_db_prepare(
        d, "SELECT size, etag FROM input_objects WHERE execution_id = ? AND url = ?");
    sqlite3_bind_text(st, 1, exec_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, url, -1, SQLITE_STATIC);
    int found = sqlite3_step(st) == SQLITE_ROW;
    if (found) {
        *size = sqlite3_column_int64(st, 0);
        const char *t = (const char *)sqlite3_column_text(st, 1);
        snprintf(etag, etag_cap, "%s", t ? t : "");
    }
    sqlite3_reset(st);
    return found;
}
