/* Worker records in SQLite (workerrows.h). */
#include "workerrows.h"

#include "db.h"
#include "util.h"

int ferry_workerrows_save(ferryd *d, const ferry_worker_row *row)
{
    ferry_db_write(d);
    sqlite3_stmt *st = ferry_db_prepare(
        d, "INSERT INTO workers (id, environment, instance_id, state, created_at, token_hash,"
           " bootstrap_hash, slots) VALUES (?,?,?,?,?,?,?,?) ON CONFLICT (id) DO UPDATE SET"
           " instance_id = excluded.instance_id, state = excluded.state,"
           " token_hash = excluded.token_hash, bootstrap_hash = excluded.bootstrap_hash,"
           " slots = excluded.slots");
    sqlite3_bind_text(st, 1, row->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, row->environment, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, row->instance_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, row->state, -1, SQLITE_STATIC);
    sqlite3_bind_double(st, 5, ferry_now());
    sqlite3_bind_text(st, 6, row->token_hash, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 7, row->bootstrap_hash, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 8, row->slots);
    return ferry_db_step_done(d, st) == SQLITE_DONE ? 0 : FERRY_EIO;
}

void ferry_workerrows_delete(ferryd *d, const char *id)
{
    ferry_db_write(d);
    sqlite3_stmt *st = ferry_db_prepare(d, "DELETE FROM workers WHERE id = ?");
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    ferry_db_step_done(d, st);
}

static const char *workerrows__text(sqlite3_stmt *st, int col)
{
    return (const char *)sqlite3_column_text(st, col);
}

int ferry_workerrows_each(ferryd *d, void (*each)(ferryd *d, const ferry_worker_row *row))
{
    sqlite3_stmt *st = ferry_db_prepare(
        d, "SELECT id, environment, instance_id, state, token_hash, bootstrap_hash, slots"
           " FROM workers ORDER BY created_at");
    int n = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *token = workerrows__text(st, 4), *boot = workerrows__text(st, 5);
        ferry_worker_row row = {
            .id = workerrows__text(st, 0),
            .environment = workerrows__text(st, 1),
            .instance_id = workerrows__text(st, 2),
            .state = workerrows__text(st, 3),
            .token_hash = token ? token : "",
            .bootstrap_hash = boot ? boot : "",
            .slots = sqlite3_column_int(st, 6),
        };
        each(d, &row);
        n++;
    }
    sqlite3_reset(st);
    return n;
}
