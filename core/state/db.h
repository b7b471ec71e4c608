/* SQLite in WAL mode: one connection on the loop thread. Writes of one loop
 * turn are committed together (ferry_db_write() opens the transaction, a
 * uv_prepare handle commits it before the loop next waits). */
#ifndef FERRY_DB_H
#define FERRY_DB_H

#include "daemon.h"

int ferry_db_open(ferryd *d, char *err, size_t err_cap);
void ferry_db_close(ferryd *d);
/* Call before any write: joins the current loop turn's transaction. */
void ferry_db_write(ferryd *d);
/* Commit now (before replying to a request that must see it durable). */
int ferry_db_commit(ferryd *d);
/* A prepared statement, reset and unbound: cached by its SQL text until
 * ferry_db_close() finalizes them all. Aborts on SQL that does not prepare. */
sqlite3_stmt *ferry_db_prepare(ferryd *d, const char *sql);
/* Run a statement to completion and reset it; SQLITE_DONE/ROW or an error. */
int ferry_db_step_done(ferryd *d, sqlite3_stmt *st);

#endif
