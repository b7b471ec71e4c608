/* Environment states in SQLite (envrows.h). */
#include "envrows.h"

#include "db.h"

int ferry_envrows_set_draining(ferryd *d, const char *name, int draining)
{
    ferry_db_write(d);
    sqlite3_stmt *st =
        ferry_db_prepare(d, "INSERT INTO env_states (name, draining) VALUES (?, ?)"
                            " ON CONFLICT (name) DO UPDATE SET draining = excluded.draining");
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, draining ? 1 : 0);
    return ferry_db_step_done(d, st) == SQLITE_DONE ? 0 : FERRY_EIO;
}

int ferry_envrows_draining(ferryd *d, const char *name)
{
    sqlite3_stmt *st = ferry_db_prepare(d, "SELECT draining FROM env_states WHERE name = ?");
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    int draining = sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int(st, 0) != 0;
    sqlite3_reset(st);
    return draining;
}
