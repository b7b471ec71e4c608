/* SQLite in WAL mode on the loop thread. Each loop turn's writes are one
 * transaction, committed by a uv_prepare handle right before the loop waits
 * for I/O: many transitions cost one commit. */
#include "db.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

static const char *schema =
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS projects (name TEXT PRIMARY KEY, last_counter INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS executions ("
    " id TEXT PRIMARY KEY, counter INTEGER NOT NULL, project TEXT NOT NULL, step TEXT NOT NULL,"
    " status TEXT NOT NULL, status_reason TEXT, exit_code INTEGER,"
    " environment TEXT NOT NULL, image TEXT, snapshot TEXT NOT NULL, command TEXT NOT NULL,"
    " parameters TEXT NOT NULL, inputs TEXT NOT NULL, env TEXT NOT NULL, tags TEXT NOT NULL,"
    " time_limit INTEGER NOT NULL DEFAULT 0, valohai INTEGER NOT NULL DEFAULT 0,"
    " metadata TEXT NOT NULL DEFAULT '{}', agent_seq INTEGER NOT NULL DEFAULT 0,"
    " worker_id TEXT,"
    " created_at REAL NOT NULL, queued_at REAL, started_at REAL, ended_at REAL,"
    " UNIQUE (project, counter));"
    "CREATE INDEX IF NOT EXISTS executions_status ON executions (status);"
    "CREATE INDEX IF NOT EXISTS executions_counter ON executions (counter);"
    "CREATE TABLE IF NOT EXISTS outputs ("
    " execution_id TEXT NOT NULL, name TEXT NOT NULL, size INTEGER NOT NULL,"
    " sha256 TEXT NOT NULL, PRIMARY KEY (execution_id, name));"
    "CREATE TABLE IF NOT EXISTS workers ("
    " id TEXT PRIMARY KEY, environment TEXT NOT NULL, instance_id TEXT, state TEXT NOT NULL,"
    " created_at REAL NOT NULL);"
    /* uploads.c: multipart uploads a worker drives, until completed or
     * aborted (a restart aborts those of executions that ended). */
    "CREATE TABLE IF NOT EXISTS output_uploads ("
    " execution_id TEXT NOT NULL, name TEXT NOT NULL, upload_id TEXT NOT NULL,"
    " size INTEGER NOT NULL, sha256 TEXT NOT NULL, PRIMARY KEY (execution_id, upload_id));"
    /* objinputs.c: size and ETag of each object input (a store's scheme://), checked at submission.
     */
    "CREATE TABLE IF NOT EXISTS input_objects ("
    " execution_id TEXT NOT NULL, url TEXT NOT NULL, size INTEGER NOT NULL, etag TEXT,"
    " PRIMARY KEY (execution_id, url));";

/* Changes to a stored schema, in order; PRAGMA user_version counts those
 * applied. Append only: an entry, once released, is never edited or
 * removed (a data folder at version N has run entries 1..N). A ferryd
 * refuses a database whose user_version is beyond this array's end: it
 * was written by a newer ferryd (ferry_db_check). */
static const char *migrations[] = {
    "ALTER TABLE executions ADD COLUMN owner TEXT;"
    "ALTER TABLE executions ADD COLUMN priority INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE executions ADD COLUMN no_output_timeout INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE executions ADD COLUMN gpus TEXT;"
    "CREATE INDEX IF NOT EXISTS executions_owner ON executions (owner);",
    "ALTER TABLE workers ADD COLUMN token_hash TEXT;"
    "ALTER TABLE workers ADD COLUMN bootstrap_hash TEXT;"
    "ALTER TABLE workers ADD COLUMN slots INTEGER NOT NULL DEFAULT 1;",
    /* envrows.c: what an operator set on an environment (drain). */
    "CREATE TABLE IF NOT EXISTS env_states ("
    " name TEXT PRIMARY KEY, draining INTEGER NOT NULL DEFAULT 0);",
    /* gitrows.c: commits (issue 17). A tree's snapshot, built once; each
     * project's last fetch; the commit an execution ran (JSON), its sha
     * (for ?commit=) and, for an ad-hoc one, the commit it was based on. */
    "CREATE TABLE IF NOT EXISTS git_snapshots ("
    " tree TEXT PRIMARY KEY, snapshot TEXT NOT NULL, lfs_files INTEGER NOT NULL DEFAULT 0,"
    " created_at REAL NOT NULL);"
    "CREATE TABLE IF NOT EXISTS git_fetches ("
    " project TEXT PRIMARY KEY, fetched_at REAL, error TEXT);"
    "ALTER TABLE executions ADD COLUMN git_commit TEXT;"
    "ALTER TABLE executions ADD COLUMN commit_sha TEXT;"
    "ALTER TABLE executions ADD COLUMN based_on TEXT;"
    "CREATE INDEX IF NOT EXISTS executions_commit ON executions (commit_sha);",
    /* exec.c: an execution's title, as `vh exec run --title` gives one (issue 18). */
    "ALTER TABLE executions ADD COLUMN title TEXT;",
    /* Each output's properties, a JSON object (issue 18, point 13): the
     * worker declares them with its outputs (output_metadata, until the
     * execution ends), and the output's row takes them once it is stored
     * (exec.c, ferry_exec_add_output). */
    "ALTER TABLE outputs ADD COLUMN metadata TEXT;"
    "CREATE TABLE IF NOT EXISTS output_metadata ("
    " execution_id TEXT NOT NULL, name TEXT NOT NULL, metadata TEXT NOT NULL,"
    " PRIMARY KEY (execution_id, name));",
    /* exec.c: the step's stop-condition, evaluated as metadata arrives
     * (lifecycle.c, issue 18, point 9). */
    "ALTER TABLE executions ADD COLUMN stop_condition TEXT;",
    /* exec.c, sched/restart.c: spot auto-restart (issue 19, point 5): the
     * execution asked for it, the one it restarts and the one that restarts
     * it, and how many restarts came before it in its chain. */
    "ALTER TABLE executions ADD COLUMN autorestart INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE executions ADD COLUMN restarted_from TEXT;"
    "ALTER TABLE executions ADD COLUMN restarted_as TEXT;"
    "ALTER TABLE executions ADD COLUMN restarts INTEGER NOT NULL DEFAULT 0;",
    /* datumrows.c: datums, aliases and lineage (issue 19). A datum is an
     * output's row: its id is a column of it (outputs are never deleted,
     * so the id never outlives its file); the outputs stored before get
     * theirs here (random version-4 UUIDs). An alias points at one datum;
     * each move is a row of alias_history. execution_inputs: each input
     * file of an execution that came from a datum, as resolved at
     * creation (the alias it came through, if any), with its sha256. */
    "ALTER TABLE outputs ADD COLUMN datum_id TEXT;"
    "UPDATE outputs SET datum_id = lower(hex(randomblob(4)) || '-' || hex(randomblob(2)) || '-4'"
    " || substr(hex(randomblob(2)), 2) || '-' || substr('89ab', 1 + abs(random()) % 4, 1)"
    " || substr(hex(randomblob(2)), 2) || '-' || hex(randomblob(6)));"
    "CREATE UNIQUE INDEX IF NOT EXISTS outputs_datum ON outputs (datum_id);"
    "CREATE TABLE IF NOT EXISTS aliases ("
    " name TEXT PRIMARY KEY, datum_id TEXT NOT NULL, set_by TEXT, set_at REAL NOT NULL,"
    " source TEXT);"
    "CREATE TABLE IF NOT EXISTS alias_history ("
    " name TEXT NOT NULL, datum_id TEXT NOT NULL, set_by TEXT, set_at REAL NOT NULL,"
    " source TEXT);"
    "CREATE INDEX IF NOT EXISTS alias_history_name ON alias_history (name, set_at);"
    "CREATE TABLE IF NOT EXISTS execution_inputs ("
    " execution_id TEXT NOT NULL, input TEXT NOT NULL, datum_id TEXT NOT NULL, alias TEXT,"
    " size INTEGER NOT NULL, sha256 TEXT NOT NULL, PRIMARY KEY (execution_id, input, datum_id));"
    "CREATE INDEX IF NOT EXISTS execution_inputs_datum ON execution_inputs (datum_id);",
    /* pipelinerows.c: pipelines and their nodes (issue 20). A node's row
     * holds the execution it has (indexed: an execution's end finds its
     * node), and the creation body its edges add to. An execution's
     * reuse_key is what makes it the same run as another (reuse). */
    "CREATE TABLE IF NOT EXISTS pipelines ("
    " id TEXT PRIMARY KEY, counter INTEGER NOT NULL, project TEXT NOT NULL, name TEXT NOT NULL,"
    " owner TEXT, status TEXT NOT NULL, reason TEXT, ending TEXT, snapshot TEXT NOT NULL,"
    " git_commit TEXT, definition TEXT NOT NULL, parameters TEXT NOT NULL,"
    " reuse INTEGER NOT NULL DEFAULT 0, reuse_from TEXT, title TEXT, tags TEXT,"
    " created_at REAL NOT NULL, started_at REAL, ended_at REAL);"
    "CREATE UNIQUE INDEX IF NOT EXISTS pipelines_counter ON pipelines (project, counter);"
    "CREATE INDEX IF NOT EXISTS pipelines_status ON pipelines (status);"
    "CREATE TABLE IF NOT EXISTS pipeline_nodes ("
    " pipeline_id TEXT NOT NULL, seq INTEGER NOT NULL, name TEXT NOT NULL, status TEXT NOT NULL,"
    " execution_id TEXT, attempts INTEGER NOT NULL DEFAULT 0, reused INTEGER NOT NULL DEFAULT 0,"
    " approval TEXT, approval_by TEXT, approval_at REAL, reason TEXT, base TEXT NOT NULL,"
    " git_commit TEXT, PRIMARY KEY (pipeline_id, name));"
    "CREATE INDEX IF NOT EXISTS pipeline_nodes_execution ON pipeline_nodes (execution_id);"
    "ALTER TABLE executions ADD COLUMN reuse_key TEXT;"
    "CREATE INDEX IF NOT EXISTS executions_reuse ON executions (project, reuse_key, status);",
};

#define DB__N_MIGRATIONS ((int)(sizeof(migrations) / sizeof(migrations[0])))

int ferry_db_schema_version(void)
{
    return DB__N_MIGRATIONS;
}

static void db__newer_message(const char *path, int version, char *err, size_t cap)
{
    snprintf(err, cap,
             "%s: written by a newer ferryd (schema %d; this ferryd knows up to %d); refusing "
             "to start, the folder is left as it is (downgrades are not supported)",
             path, version, DB__N_MIGRATIONS);
}

/* The header of a SQLite file (https://www.sqlite.org/fileformat.html):
 * 16 bytes of magic, and at offset 60 the user_version, big-endian. Read
 * by hand, not through SQLite: even a read-only connection may create the
 * -wal and -shm files of a WAL database, and nothing may change in a
 * folder that is refused. */
int ferry_db_check(const char *data_dir, char *err, size_t cap)
{
    char path[PATH_MAX + 16];
    snprintf(path, sizeof(path), "%s/ferry.db", data_dir);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return 0; /* a fresh folder */
        int rc = ferry_from_errno(errno);
        snprintf(err, cap, "%s: %s", path, strerror(errno));
        return rc;
    }
    unsigned char head[100];
    size_t got = 0;
    while (got < sizeof(head)) {
        ssize_t n = read(fd, head + got, sizeof(head) - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    if (got == 0)
        return 0; /* SQLite takes an empty file for an empty database */
    if (got < sizeof(head) || memcmp(head, "SQLite format 3", 16) != 0) {
        snprintf(err, cap,
                 "%s: not a SQLite database (ferryd keeps its state there); refusing to start, "
                 "the folder is left as it is",
                 path);
        return FERRY_EPROTO;
    }
    uint32_t v = (uint32_t)head[60] << 24 | (uint32_t)head[61] << 16 | (uint32_t)head[62] << 8 |
                 (uint32_t)head[63];
    if (v > (uint32_t)DB__N_MIGRATIONS) {
        db__newer_message(path, (int)v, err, cap);
        return FERRY_EPROTO;
    }
    return 0;
}

static int db__user_version(ferryd *d, int *version, char **msg)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(d->db, "PRAGMA user_version", -1, &st, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *version = sqlite3_column_int(st, 0);
    else
        *msg = sqlite3_mprintf("%s", sqlite3_errmsg(d->db));
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? 0 : FERRY_EIO;
}

/* Whether the database has any table yet: a fresh one needs no backup. */
static int db__has_tables(ferryd *d)
{
    sqlite3_stmt *st = NULL;
    int any = 0;
    if (sqlite3_prepare_v2(d->db, "SELECT 1 FROM sqlite_master LIMIT 1", -1, &st, NULL) ==
        SQLITE_OK)
        any = sqlite3_step(st) == SQLITE_ROW;
    sqlite3_finalize(st);
    return any;
}

/* A consistent copy of the database as it is before its migrations, in
 * ferry.db.bak-v<version>, for an operator who has to go back: written
 * under a temporary name and renamed, so that a copy by that name is whole.
 * Replaces an older copy of the same version (a retry after a failed
 * migration: the database is still at that version). */
static int db__backup(ferryd *d, const char *path, int version, char **msg)
{
    char *bak = ferry_asprintf("%s.bak-v%d", path, version);
    char *tmp = ferry_asprintf("%s.tmp", bak);
    unlink(tmp);
    char *sql = sqlite3_mprintf("VACUUM INTO %Q", tmp);
    int rc = sqlite3_exec(d->db, sql, NULL, NULL, msg);
    sqlite3_free(sql);
    if (rc == SQLITE_OK && rename(tmp, bak) != 0) {
        *msg = sqlite3_mprintf("backup %s: %s", bak, strerror(errno));
        rc = SQLITE_IOERR;
    }
    if (rc == SQLITE_OK)
        ferry_info("database: a copy of schema version %d is in %s", version, bak);
    else
        unlink(tmp);
    free(tmp);
    free(bak);
    return rc == SQLITE_OK ? 0 : FERRY_EIO;
}

/* Runs the migrations from `version` on, each in its own transaction with
 * the user_version it reaches: a failure leaves the database at the last
 * version reached, and the next start resumes from there. */
static int db__migrate(ferryd *d, const char *path, int version, int existing, char **msg)
{
    /* A database made just now has nothing to keep, nor to report. */
    if (version < DB__N_MIGRATIONS && existing && db__backup(d, path, version, msg) < 0)
        return FERRY_EIO;
    for (int v = version; v < DB__N_MIGRATIONS; v++) {
        char *sql =
            ferry_asprintf("BEGIN; %s PRAGMA user_version = %d; COMMIT;", migrations[v], v + 1);
        int rc = sqlite3_exec(d->db, sql, NULL, NULL, msg);
        free(sql);
        if (rc != SQLITE_OK) {
            sqlite3_exec(d->db, "ROLLBACK", NULL, NULL, NULL);
            char *why = *msg;
            *msg = sqlite3_mprintf("schema migration %d -> %d failed (the database stays at %d): "
                                   "%s",
                                   v, v + 1, v, why ? why : sqlite3_errmsg(d->db));
            sqlite3_free(why);
            return FERRY_EIO;
        }
        if (existing)
            ferry_info("database: schema migrated from version %d to %d", v, v + 1);
    }
    return 0;
}

/* A commit that fails for want of space (SQLITE_FULL, or an I/O error of a
 * full disk) rolls the whole transaction back: SQLite cannot keep it. Its
 * writes may already have been answered (an execution created, a status
 * recorded), and what ferryd holds in memory says they were made. So every
 * write of the open transaction is also kept as SQL text (the statement
 * with its values, sqlite3_expanded_sql), and after a failed commit a new
 * transaction replays them at once: readers still see them, later writes
 * join them, and the commit is tried again every second until there is
 * room. Nothing acknowledged is lost while ferryd runs; new data is refused
 * meanwhile (space.c asks ferry_db_stalled). A statement that failed the
 * first time fails the same way on the replay (the same database, the same
 * order), so the replay ignores such errors. Doubles come back with 15
 * digits (times to 10 us): only in this path. */
typedef struct db__redo {
    ferry_buf sql; /* the statements, each ending in '\0' */
    size_t n;      /* how many */
    int pending;   /* a commit of them failed */
    int replaying; /* do not record the replay itself */
    int doomed;    /* the replay failed: this transaction must not commit */
    double next_try;
    int last_error;           /* FERRY_ENOSPC or FERRY_EIO, for the callers of a commit */
    const sqlite3_stmt *last; /* the statement recorded last, at last_off */
    size_t last_off;
} db__redo;

#define DB__RETRY_MS 1000

static int db__trace(unsigned type, void *ctx, void *p, void *x)
{
    ferryd *d = ctx;
    sqlite3_stmt *st = p;
    db__redo *r = d->redo;
    /* A trigger's start is traced with a comment: its statement was already. */
    if (type != SQLITE_TRACE_STMT || r == NULL || !d->in_txn || r->replaying ||
        sqlite3_stmt_readonly(st) || (x && strncmp(x, "--", 2) == 0))
        return 0;
    char *sql = sqlite3_expanded_sql(st);
    if (sql == NULL) {
        ferry_error("database: cannot keep a write for a retry (%s)", sqlite3_sql(st));
        return 0;
    }
    r->last = st;
    r->last_off = r->sql.len;
    ferry_xcheck(ferry_buf_append(&r->sql, sql, strlen(sql) + 1));
    r->n++;
    sqlite3_free(sql);
    return 0;
}

static void db__commit_cb(uv_prepare_t *h)
{
    ferryd *d = h->data;
    ferry_db_commit(d);
}

static int db__meta(ferryd *d, const char *key, char *value, size_t cap, int random_bytes)
{
    sqlite3_stmt *st = ferry_db_prepare(d, "SELECT value FROM meta WHERE key = ?");
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW) {
        snprintf(value, cap, "%s", (const char *)sqlite3_column_text(st, 0));
        sqlite3_reset(st);
        return 0;
    }
    sqlite3_reset(st);
    if (ferry_random_hex(value, (size_t)random_bytes) != 0)
        return FERRY_EIO;
    st = ferry_db_prepare(d, "INSERT INTO meta (key, value) VALUES (?, ?)");
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, value, -1, SQLITE_STATIC);
    ferry_db_write(d);
    return ferry_db_step_done(d, st) == SQLITE_DONE ? 0 : FERRY_EIO;
}

/* A database that did not open is closed again: nothing else was set up. */
static void db__close_failed(ferryd *d)
{
    sqlite3_close(d->db);
    d->db = NULL;
}

int ferry_db_open(ferryd *d, char *err, size_t err_cap)
{
    char path[PATH_MAX + 16];
    snprintf(path, sizeof(path), "%s/ferry.db", d->data_dir);
    /* Before SQLite creates or touches anything. */
    if (ferry_db_check(d->data_dir, err, err_cap) < 0)
        return FERRY_EIO;
    if (sqlite3_open_v2(path, &d->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
        SQLITE_OK) {
        snprintf(err, err_cap, "%s: %s", path, d->db ? sqlite3_errmsg(d->db) : "cannot open");
        db__close_failed(d);
        return FERRY_EIO;
    }
    char *msg = NULL;
    int version = 0, existing = 0;
    /* Read again through SQLite, before the schema is run: a newer ferryd
     * that was killed may have left its version in the -wal only. */
    if (db__user_version(d, &version, &msg) < 0)
        goto fail;
    if (version > DB__N_MIGRATIONS) {
        db__newer_message(path, version, err, err_cap);
        db__close_failed(d);
        return FERRY_EIO;
    }
    existing = db__has_tables(d);
    if (sqlite3_exec(d->db,
                     "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; "
                     "PRAGMA busy_timeout=5000; PRAGMA foreign_keys=ON;",
                     NULL, NULL, &msg) != SQLITE_OK ||
        sqlite3_exec(d->db, schema, NULL, NULL, &msg) != SQLITE_OK ||
        db__migrate(d, path, version, existing, &msg) < 0)
        goto fail;
    uv_prepare_init(d->loop, &d->commit_prepare);
    d->commit_prepare.data = d;
    uv_prepare_start(&d->commit_prepare, db__commit_cb);
    d->redo = ferry_xcalloc(1, sizeof(*d->redo));
    sqlite3_trace_v2(d->db, SQLITE_TRACE_STMT, db__trace, d);
    uv_timer_init(d->loop, &d->commit_retry);
    d->commit_retry.data = d;
    uv_unref((uv_handle_t *)&d->commit_retry); /* never keeps the loop alive */
    if (db__meta(d, "daemon_id", d->daemon_id, sizeof(d->daemon_id), 8) != 0 ||
        db__meta(d, "secret", d->secret, sizeof(d->secret), 32) != 0) {
        snprintf(err, err_cap, "%s: cannot initialise: %s", path, sqlite3_errmsg(d->db));
        return FERRY_EIO;
    }
    return ferry_db_commit(d);
fail:
    snprintf(err, err_cap, "%s: %s", path, msg ? msg : "schema error");
    sqlite3_free(msg);
    db__close_failed(d);
    return FERRY_EIO;
}

/* Finalizes every cached statement: they belong to the connection that is
 * closing, and a reopened one prepares its own. */
static void db__stmts_clear(ferryd *d)
{
    const char *sql;
    void *st;
    for (size_t i = 0; ferry_map_next(&d->stmts, &i, &sql, &st);)
        sqlite3_finalize(st);
    ferry_map_free(&d->stmts);
}

void ferry_db_close(ferryd *d)
{
    if (d->db == NULL)
        return;
    if (d->redo && d->redo->pending)
        d->redo->next_try = 0; /* the last try */
    if (ferry_db_commit(d) < 0 && d->redo)
        ferry_error("database: closing with %zu writes that could not be committed (no space in "
                    "%s): they are lost",
                    d->redo->n, d->data_dir);
    uv_prepare_stop(&d->commit_prepare);
    uv_close((uv_handle_t *)&d->commit_prepare, NULL);
    if (d->redo) {
        uv_close((uv_handle_t *)&d->commit_retry, NULL);
        free(d->redo->sql.data);
        free(d->redo);
        d->redo = NULL;
    }
    db__stmts_clear(d);
    sqlite3_stmt *st; /* any not from the cache, so that the close succeeds */
    while ((st = sqlite3_next_stmt(d->db, NULL)) != NULL)
        sqlite3_finalize(st);
    sqlite3_close(d->db);
    d->db = NULL;
}

static int db__error_code(int rc)
{
    return (rc & 0xff) == SQLITE_FULL ? FERRY_ENOSPC : FERRY_EIO;
}

static int db__special(int rc)
{
    rc &= 0xff;
    return rc == SQLITE_FULL || rc == SQLITE_IOERR || rc == SQLITE_NOMEM || rc == SQLITE_BUSY;
}

/* Opens the loop turn's transaction; after a failed commit, with its writes. */
static void db__begin(ferryd *d)
{
    char *msg = NULL;
    if (sqlite3_exec(d->db, "BEGIN IMMEDIATE", NULL, NULL, &msg) != SQLITE_OK) {
        ferry_error("database: cannot begin a transaction: %s", msg ? msg : "?");
        sqlite3_free(msg);
        return;
    }
    d->in_txn = 1;
    db__redo *r = d->redo;
    if (r == NULL || !r->pending)
        return;
    r->replaying = 1;
    for (size_t i = 0, off = 0; i < r->n; i++) {
        const char *sql = r->sql.data + off;
        off += strlen(sql) + 1;
        int rc = sqlite3_exec(d->db, sql, NULL, NULL, NULL);
        if (rc != SQLITE_OK && (db__special(rc) || sqlite3_get_autocommit(d->db))) {
            /* Not as the first time: this transaction lacks them; roll it
             * back at its commit and replay it all again later. */
            ferry_error("database: replaying kept writes: %s", sqlite3_errmsg(d->db));
            r->doomed = 1;
            if (sqlite3_get_autocommit(d->db))
                sqlite3_exec(d->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
            break;
        }
    }
    r->replaying = 0;
}

void ferry_db_write(ferryd *d)
{
    if (!d->in_txn)
        db__begin(d);
}

int ferry_db_stalled(const ferryd *d)
{
    return d->redo && d->redo->pending;
}

static void db__retry_cb(uv_timer_t *t)
{
    ferryd *d = t->data;
    if (!ferry_db_stalled(d))
        return;
    ferry_db_write(d);
    ferry_db_commit(d);
}

static int db__failed(ferryd *d, int rc, const char *msg)
{
    db__redo *r = d->redo;
    int first = !r->pending;
    r->pending = 1;
    r->doomed = 0;
    r->last_error = db__error_code(rc);
    r->next_try = ferry_now() + DB__RETRY_MS / 1000.0;
    if (first)
        ferry_error("database: a transaction failed (%s): %zu writes kept, committed again "
                    "every %d ms; new executions are refused until it succeeds",
                    msg, r->n, DB__RETRY_MS);
    if (!sqlite3_get_autocommit(d->db))
        sqlite3_exec(d->db, "ROLLBACK", NULL, NULL, NULL);
    d->in_txn = 0;
    db__begin(d); /* readers go on seeing what was written */
    if (!uv_is_closing((uv_handle_t *)&d->commit_retry))
        uv_timer_start(&d->commit_retry, db__retry_cb, DB__RETRY_MS, DB__RETRY_MS);
    return r->last_error;
}

int ferry_db_commit(ferryd *d)
{
    if (!d->in_txn)
        return 0;
    db__redo *r = d->redo;
    if (r == NULL) { /* not opened */
        d->in_txn = 0;
        return sqlite3_exec(d->db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK ? 0 : FERRY_EIO;
    }
    if (r->pending && ferry_now() < r->next_try)
        return r->last_error; /* kept open: tried again soon */
    if (r->doomed) {
        sqlite3_exec(d->db, "ROLLBACK", NULL, NULL, NULL);
        return db__failed(d, SQLITE_FULL, "the kept writes could not be replayed");
    }
    char *msg = NULL;
    int rc = sqlite3_exec(d->db, "COMMIT", NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        char why[256];
        snprintf(why, sizeof(why), "%s", msg ? msg : sqlite3_errstr(rc));
        sqlite3_free(msg);
        return db__failed(d, rc, why);
    }
    d->in_txn = 0;
    if (r->pending) {
        ferry_info("database: the %zu kept writes are committed", r->n);
        uv_timer_stop(&d->commit_retry);
    }
    r->pending = 0;
    r->n = 0;
    r->sql.len = 0;
    r->last = NULL;
    return 0;
}

/* A write failed and SQLite rolled the whole open transaction back with it
 * (it may, on SQLITE_FULL or an I/O error, instead of undoing only that
 * statement): the writes before it are kept as after a failed commit, and
 * replayed into a new transaction. The failed one is left out: its caller
 * is told that it failed, as when SQLite undoes the statement alone. */
static void db__rolled_back(ferryd *d, sqlite3_stmt *st, int rc, const char *msg)
{
    db__redo *r = d->redo;
    if (r == NULL || !d->in_txn || r->replaying || !sqlite3_get_autocommit(d->db))
        return;
    if (r->last == st && r->n > 0) {
        r->sql.len = r->last_off;
        r->n--;
    }
    r->last = NULL;
    char why[320];
    snprintf(why, sizeof(why), "a write failed and rolled it back: %s", msg);
    db__failed(d, rc, why);
}

/* Statements are cached by their SQL text (not its address: one text may
 * live at several), in the daemon's map, for as long as the connection is
 * open. Call sites use literals, so the map stays small; it has no bound. */
sqlite3_stmt *ferry_db_prepare(ferryd *d, const char *sql)
{
    sqlite3_stmt *st = ferry_map_get(&d->stmts, sql);
    if (st != NULL) {
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
        return st;
    }
    /* SQL is the program's own text: one that does not prepare is a bug. */
    if (sqlite3_prepare_v3(d->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) != SQLITE_OK) {
        ferry_error("database: cannot prepare '%s': %s", sql, sqlite3_errmsg(d->db));
        abort();
    }
    ferry_map_put(&d->stmts, sql, st);
    return st;
}

int ferry_db_step_done(ferryd *d, sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    char msg[256] = "";
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
        snprintf(msg, sizeof(msg), "%s", sqlite3_errmsg(d->db));
        ferry_error("database: %s", msg);
    }
    sqlite3_reset(st);
    if (msg[0])
        db__rolled_back(d, st, rc, msg);
    return rc;
}
