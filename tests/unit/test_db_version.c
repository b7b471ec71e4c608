/* The schema version of ferry.db (core/state/db.c): a fresh database is
 * made at this build's version; one at version 0 gets every migration, its
 * rows kept and a backup copy at version 0 beside it; one of a newer ferryd,
 * and a file that is not a SQLite database, are refused with a message that
 * names the file (and both versions), and the folder is left byte for byte
 * as it was (no -wal, no -shm, no backup); so is a newer version that is
 * in the -wal only. */
#include "test.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "db.h"
#include "util.h"

static ferryd d;
static char root[] = "/tmp/ferry-db-version.XXXXXX";

/* A new data folder under `root`, as d's. */
static void new_folder(const char *name)
{
    uv_loop_t *loop = uv_default_loop();
    memset(&d, 0, sizeof(d));
    d.loop = loop;
    snprintf(d.data_dir, sizeof(d.data_dir), "%s/%s", root, name);
    CHECK_INT(ferry_file_mkdirs(d.data_dir, 0700), 0);
}

static void close_db(void)
{
    ferry_db_close(&d);
    uv_run(d.loop, UV_RUN_NOWAIT); /* completes the close of the commit handle */
}

static char *db_path(const char *suffix)
{
    return ferry_asprintf("%s/ferry.db%s", d.data_dir, suffix);
}

/* Every file of the folder: its name, size and sha256, sorted by name. */
static char *listing(void)
{
    ferry_buf out;
    ferry_buf_init(&out);
    DIR *dh = opendir(d.data_dir);
    CHECK(dh != NULL);
    char *names[64];
    int n = 0;
    for (struct dirent *de; dh && (de = readdir(dh)) != NULL && n < 64;)
        if (de->d_name[0] != '.')
            names[n++] = ferry_strdup(de->d_name);
    if (dh)
        closedir(dh);
    for (int i = 0; i < n; i++) /* readdir's order is the file system's: sort */
        for (int j = i + 1; j < n; j++)
            if (strcmp(names[j], names[i]) < 0) {
                char *t = names[i];
                names[i] = names[j];
                names[j] = t;
            }
    for (int i = 0; i < n; i++) {
        char *path = ferry_asprintf("%s/%s", d.data_dir, names[i]);
        char hex[65] = "-";
        int64_t size = -1;
        ferry_sha256_file(path, hex, &size);
        ferry_xcheck(ferry_buf_appendf(&out, "%s %lld %s\n", names[i], (long long)size, hex));
        free(path);
        free(names[i]);
    }
    size_t len;
    return ferry_buf_take(&out, &len);
}

/* Runs SQL on the folder's ferry.db with a connection of its own. */
static void sql_on_file(const char *sql)
{
    char *path = db_path("");
    sqlite3 *db = NULL;
    CHECK_INT(sqlite3_open(path, &db), SQLITE_OK);
    char *msg = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK)
        fprintf(stderr, "%s: %s\n", sql, msg ? msg : "?");
    CHECK_INT(rc, SQLITE_OK);
    sqlite3_free(msg);
    CHECK_INT(sqlite3_close(db), SQLITE_OK);
    free(path);
}

static long long user_version_of(const char *path)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    long long v = -1;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

static long long answer(const char *sql)
{
    sqlite3_stmt *st = NULL;
    long long v = -1;
    if (sqlite3_prepare_v2(d.db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    else
        fprintf(stderr, "%s: %s\n", sql, sqlite3_errmsg(d.db));
    sqlite3_finalize(st);
    return v;
}

static void test_fresh(void)
{
    new_folder("fresh");
    char err[512] = "";
    CHECK_INT(ferry_db_check(d.data_dir, err, sizeof(err)), 0);
    CHECK_INT(ferry_db_open(&d, err, sizeof(err)), 0);
    CHECK_INT(answer("PRAGMA user_version"), ferry_db_schema_version());
    CHECK(ferry_db_schema_version() >= 2);
    close_db();
    char *bak = db_path(".bak-v0");
    CHECK(access(bak, F_OK) != 0); /* nothing to keep of a database made just now */
    free(bak);
    /* Opened again: at its version already, nothing to do. */
    CHECK_INT(ferry_db_open(&d, err, sizeof(err)), 0);
    CHECK_INT(answer("PRAGMA user_version"), ferry_db_schema_version());
    close_db();
}

/* The tables the migrations change, as they were before the first one. */
static void test_v0_gets_every_migration(void)
{
    new_folder("v0");
    sql_on_file("CREATE TABLE executions (id TEXT PRIMARY KEY, counter INTEGER NOT NULL,"
                " project TEXT NOT NULL, status TEXT NOT NULL);"
                "CREATE TABLE workers (id TEXT PRIMARY KEY, environment TEXT NOT NULL,"
                " instance_id TEXT, state TEXT NOT NULL, created_at REAL NOT NULL);"
                "INSERT INTO executions VALUES ('e1', 1, 'demo', 'completed');"
                "INSERT INTO workers VALUES ('w1', 'local', NULL, 'idle', 1.0);");
    char *path = db_path("");
    CHECK_INT(user_version_of(path), 0);
    free(path);
    char err[512] = "";
    int rc = ferry_db_open(&d, err, sizeof(err));
    if (rc != 0)
        fprintf(stderr, "ferry_db_open: %s\n", err);
    CHECK_INT(rc, 0);
    CHECK_INT(answer("PRAGMA user_version"), ferry_db_schema_version());
    /* The columns of the first two migrations, defaults on the old rows. */
    CHECK_INT(answer("SELECT priority + no_output_timeout FROM executions WHERE id = 'e1'"), 0);
    CHECK_INT(answer("SELECT count(*) FROM executions WHERE owner IS NULL AND gpus IS NULL"), 1);
    CHECK_INT(answer("SELECT slots FROM workers WHERE id = 'w1'"), 1);
    CHECK_INT(answer("SELECT count(*) FROM workers WHERE token_hash IS NULL"), 1);
    close_db();
    /* The copy from before: version 0, its row. */
    char *bak = db_path(".bak-v0");
    CHECK_INT(user_version_of(bak), 0);
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    CHECK_INT(sqlite3_open_v2(bak, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    CHECK_INT(sqlite3_prepare_v2(db, "SELECT count(*) FROM executions", -1, &st, NULL), SQLITE_OK);
    CHECK_INT(sqlite3_step(st), SQLITE_ROW);
    CHECK_INT(sqlite3_column_int(st, 0), 1);
    sqlite3_finalize(st);
    sqlite3_close(db);
    free(bak);
    char *tmp = db_path(".bak-v0.tmp");
    CHECK(access(tmp, F_OK) != 0);
    free(tmp);
}

static void test_newer_refused_unchanged(void)
{
    new_folder("newer");
    char err[512] = "";
    CHECK_INT(ferry_db_open(&d, err, sizeof(err)), 0);
    close_db(); /* the last connection: the -wal and -shm go */
    int newer = ferry_db_schema_version() + 5;
    char *sql = ferry_asprintf("PRAGMA user_version = %d", newer);
    sql_on_file(sql);
    free(sql);
    char *before = listing();
    char *path = db_path("");
    char *want_file = ferry_asprintf("%s: written by a newer ferryd", path);
    char *want_versions =
        ferry_asprintf("(schema %d; this ferryd knows up to %d)", newer, ferry_db_schema_version());

    err[0] = '\0';
    CHECK(ferry_db_check(d.data_dir, err, sizeof(err)) < 0);
    CHECK_CONTAINS(err, want_file);
    CHECK_CONTAINS(err, want_versions);
    CHECK_CONTAINS(err, "refusing to start");
    err[0] = '\0';
    CHECK(ferry_db_open(&d, err, sizeof(err)) < 0);
    CHECK(d.db == NULL);
    CHECK_CONTAINS(err, want_versions);
    char *after = listing();
    CHECK_STR(after, before);
    CHECK_INT(user_version_of(path), newer);
    free(after);
    free(before);
    free(want_versions);
    free(want_file);
    free(path);
}

/* A newer ferryd killed before a checkpoint: its version is in the -wal
 * only (here: a connection of its own still holds it there), the file's
 * header says otherwise; ferry_db_open reads it through SQLite before it
 * runs anything. */
static void test_newer_in_wal_only(void)
{
    new_folder("newer-wal");
    char err[512] = "";
    CHECK_INT(ferry_db_open(&d, err, sizeof(err)), 0);
    close_db();
    char *path = db_path("");
    sqlite3 *other = NULL;
    CHECK_INT(sqlite3_open(path, &other), SQLITE_OK);
    int newer = ferry_db_schema_version() + 1;
    char *sql = ferry_asprintf("PRAGMA wal_autocheckpoint = 0; PRAGMA user_version = %d", newer);
    CHECK_INT(sqlite3_exec(other, sql, NULL, NULL, NULL), SQLITE_OK);
    free(sql);
    CHECK_INT(ferry_db_check(d.data_dir, err, sizeof(err)), 0); /* the header is the old one */
    err[0] = '\0';
    CHECK(ferry_db_open(&d, err, sizeof(err)) < 0);
    CHECK(d.db == NULL);
    CHECK_CONTAINS(err, "written by a newer ferryd");
    sqlite3_close(other);
    CHECK_INT(user_version_of(path), newer);
    free(path);
}

static void test_not_a_database(void)
{
    new_folder("garbage");
    char *path = db_path("");
    char junk[4096];
    for (size_t i = 0; i < sizeof(junk); i++)
        junk[i] = (char)('a' + i % 26);
    CHECK_INT(ferry_write_file(path, junk, sizeof(junk)), 0);
    char *before = listing();
    char err[512] = "";
    CHECK(ferry_db_check(d.data_dir, err, sizeof(err)) < 0);
    CHECK_CONTAINS(err, path);
    CHECK_CONTAINS(err, "not a SQLite database");
    err[0] = '\0';
    CHECK(ferry_db_open(&d, err, sizeof(err)) < 0);
    CHECK_CONTAINS(err, "not a SQLite database");
    char *after = listing();
    CHECK_STR(after, before);
    /* Shorter than a header: not a database either, and no crash. */
    CHECK_INT(ferry_write_file(path, "SQLite", 6), 0);
    CHECK(ferry_db_check(d.data_dir, err, sizeof(err)) < 0);
    CHECK_CONTAINS(err, "not a SQLite database");
    free(after);
    free(before);
    free(path);
}

int main(void)
{
    CHECK(mkdtemp(root) != NULL);
    test_fresh();
    test_v0_gets_every_migration();
    test_newer_refused_unchanged();
    test_newer_in_wal_only();
    test_not_a_database();
    ferry_rmtree(root);
    TEST_MAIN_END();
}
