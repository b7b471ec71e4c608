/* SQLite in WAL mode: one connection on the loop thread. Writes of one loop
 * turn are committed together (ferry_db_write() opens the transaction, a
 * uv_prepare handle commits it before the loop next waits). */
#ifndef FERRY_DB_H
#define FERRY_DB_H

#include "daemon.h"

/* Opens DATA_DIR/ferry.db, creating it, and brings its schema to this
 * build's version (PRAGMA user_version counts the migrations applied): an
 * older one is first copied to ferry.db.bak-v<its version>, then migrated,
 * one transaction per migration, each logged. Refuses, changing nothing,
 * a database of a newer ferryd and a file that is not a SQLite database;
 * on failure the database is closed again. */
int ferry_db_open(ferryd *d, char *err, size_t err_cap);
/* The check ferry_db_open begins with, for ferryd to make before it writes
 * anything in the data folder: 0 when DATA_DIR/ferry.db is absent, empty,
 * or a SQLite database of this build's version or older; else a FERRY_E*
 * code and the reason in `err`. Reads the file's header only. */
int ferry_db_check(const char *data_dir, char *err, size_t cap);
/* The schema version this build writes: the number of migrations it knows. */
int ferry_db_schema_version(void);
void ferry_db_close(ferryd *d);
/* Call before any write: joins the current loop turn's transaction. */
void ferry_db_write(ferryd *d);
/* Commit now (before replying to a request that must see it durable): 0,
 * or FERRY_ENOSPC/FERRY_EIO when it failed; the writes are then kept in a
 * new transaction and the commit is retried (db.c), never dropped. */
int ferry_db_commit(ferryd *d);
/* Whether a failed commit waits for a retry (new data is refused). */
int ferry_db_stalled(const ferryd *d);
/* A prepared statement, reset and unbound: cached by its SQL text until
 * ferry_db_close() finalizes them all. Aborts on SQL that does not prepare. */
sqlite3_stmt *ferry_db_prepare(ferryd *d, const char *sql);
/* Run a statement to completion and reset it; SQLITE_DONE/ROW or an error. */
int ferry_db_step_done(ferryd *d, sqlite3_stmt *st);

#endif
