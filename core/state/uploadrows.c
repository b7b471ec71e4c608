/* Open multipart uploads and recorded outputs, in SQLite (uploadrows.h). */
#include "uploadrows.h"

#include <stdio.h>
#include <stdlib.h>

#include "db.h"
#include "log.h"

int ferry_uploadrows_add(ferryd *d, const char *exec_id, const char *name, const char *upload_id,
                         int64_t size, const char *sha256)
{
    ferry_db_write(d);
    sqlite3_stmt *st = ferry_db_prepare(d, "INSERT OR REPLACE INTO output_uploads (execution_id,"
                                           " name, upload_id, size, sha256) VALUES (?,?,?,?,?)");
    sqlite3_bind_text(st, 1, exec_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, upload_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, size);
    sqlite3_bind_text(st, 5, sha256, -1, SQLITE_STATIC);
    return ferry_db_step_done(d, st) == SQLITE_DONE ? 0 : FERRY_EIO;
}

void ferry_uploadrows_del(ferryd *d, const char *exec_id, const char *upload_id)
{
    ferry_db_write(d);
    sqlite3_stmt *st =
        ferry_db_prepare(d, "DELETE FROM output_uploads WHERE execution_id = ? AND upload_id = ?");
    sqlite3_bind_text(st, 1, exec_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, upload_id, -1, SQLITE_STATIC);
    ferry_db_step_done(d, st);
}

int ferry_uploadrows_find(ferryd *d, const char *exec_id, const char *upload_id, const char *name,
                          int64_t *size, char *sha256)
{
    sqlite3_stmt *st = ferry_db_prepare(d, "SELECT size, sha256 FROM output_uploads WHERE"
                                           " execution_id = ? AND upload_id = ? AND name = ?");
    sqlite3_bind_text(st, 1, exec_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, upload_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, name, -1, SQLITE_STATIC);
    int found = sqlite3_step(st) == SQLITE_ROW;
    if (found) {
        *size = sqlite3_column_int64(st, 0);
        snprintf(sha256, 65, "%s", (const char *)sqlite3_column_text(st, 1));
    }
    sqlite3_reset(st);
    return found;
}

json_t *ferry_uploadrows_list(ferryd *d, const char *exec_id)
{
    sqlite3_stmt *st = ferry_db_prepare(d, "SELECT execution_id, name, upload_id FROM"
                                           " output_uploads WHERE ?1 IS NULL OR execution_id = ?1");
    if (exec_id)
        sqlite3_bind_text(st, 1, exec_id, -1, SQLITE_STATIC);
    json_t *rows = json_array();
    while (sqlite3_step(st) == SQLITE_ROW)
        json_array_append_new(rows, json_pack("[s,s,s]", (const char *)sqlite3_column_text(st, 0),
                                              (const char *)sqlite3_column_text(st, 1),
                                              (const char *)sqlite3_column_text(st, 2)));
    sqlite3_reset(st);
    return rows;
}

int ferry_exec_has_output(ferryd *d, const char *exec_id, const char *name, const char *sha256)
{
    sqlite3_stmt *st = ferry_db_prepare(d, "SELECT 1 FROM outputs WHERE execution_id = ? AND"
                                           " name = ? AND (?3 IS NULL OR sha256 = ?3)");
    sqlite3_bind_text(st, 1, exec_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
    if (sha256)
        sqlite3_bind_text(st, 3, sha256, -1, SQLITE_STATIC);
    int found = sqlite3_step(st) == SQLITE_ROW;
    sqlite3_reset(st);
    return found;
}

void ferry_uploadrows_declare_metadata(ferryd *d, const char *exec_id, const char *name,
                                       const json_t *metadata)
{
    char *text = metadata ? json_dumps(metadata, JSON_COMPACT) : NULL;
    ferry_db_write(d);
    sqlite3_stmt *st =
        text ? ferry_db_prepare(d, "INSERT OR REPLACE INTO output_metadata (execution_id, name,"
                                   " metadata) VALUES (?,?,?)")
             : ferry_db_prepare(d, "DELETE FROM output_metadata WHERE execution_id = ? AND"
                                   " name = ?");
    sqlite3_bind_text(st, 1, exec_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
    if (text)
        sqlite3_bind_text(st, 3, text, -1, SQLITE_TRANSIENT);
    if (ferry_db_step_done(d, st) != SQLITE_DONE)
        ferry_error("execution %s: the metadata of output %s is not recorded", exec_id, name);
    free(text);
}

void ferry_uploadrows_forget_metadata(ferryd *d, const char *exec_id)
{
    ferry_db_write(d);
    sqlite3_stmt *st =
        exec_id ? ferry_db_prepare(d, "DELETE FROM output_metadata WHERE execution_id = ?")
                : ferry_db_prepare(d, "DELETE FROM output_metadata WHERE execution_id IN"
                                      " (SELECT id FROM executions WHERE ended_at IS NOT NULL)");
    if (exec_id)
        sqlite3_bind_text(st, 1, exec_id, -1, SQLITE_STATIC);
    ferry_db_step_done(d, st);
}

void ferry_uploadrows_apply_metadata(ferryd *d, const char *exec_id, const char *name)
{
    ferry_db_write(d);
    sqlite3_stmt *st = ferry_db_prepare(
        d, "UPDATE outputs SET metadata = (SELECT metadata FROM output_metadata"
           " WHERE execution_id = ?1 AND name = ?2) WHERE execution_id = ?1 AND name = ?2"
           " AND EXISTS (SELECT 1 FROM output_metadata WHERE execution_id = ?1 AND name = ?2)");
    sqlite3_bind_text(st, 1, exec_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
    if (ferry_db_step_done(d, st) != SQLITE_DONE)
        ferry_error("execution %s: the metadata of output %s is not recorded", exec_id, name);
}
