/* The database's statement cache (core/state/db.c), on a real ferryd state
 * in a temporary data dir: it is keyed by the SQL text (one text from two
 * addresses is one statement), holds many more statements than the old
 * fixed table of 64, hands statements back reset and unbound, and is
 * emptied by ferry_db_close so that a reopened database prepares afresh. */
#include "test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "db_fixture.h"
#include "util.h"

static ferryd d;

/* The single integer a one-row statement answers. */
static long long answer(sqlite3_stmt *st)
{
    long long v = -1;
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    return v;
}

static void test_many_statements(void)
{
    size_t before = d.stmts.len;
    sqlite3_stmt *first[200];
    for (int i = 0; i < 200; i++) {
        char sql[64];
        snprintf(sql, sizeof(sql), "SELECT %d + 0", i);
        first[i] = ferry_db_prepare(&d, sql); /* a buffer on the stack: keyed by text */
        CHECK(first[i] != NULL);
        CHECK_INT(answer(first[i]), i);
    }
    CHECK_INT(d.stmts.len, before + 200);
    /* Asked again, from other buffers: the same statements. */
    int same = 1;
    for (int i = 0; i < 200; i++) {
        char *sql = ferry_asprintf("SELECT %d + 0", i);
        same &= ferry_db_prepare(&d, sql) == first[i];
        free(sql);
    }
    CHECK(same);
    CHECK_INT(d.stmts.len, before + 200);
}

static void test_same_text_two_pointers(void)
{
    static const char literal[] = "SELECT value FROM meta WHERE key = ?";
    char *copy = ferry_strdup(literal);
    CHECK(copy != literal);
    sqlite3_stmt *a = ferry_db_prepare(&d, literal);
    /* Left mid-result and bound: the next prepare resets and unbinds it. */
    sqlite3_bind_text(a, 1, "daemon_id", -1, SQLITE_STATIC);
    CHECK_INT(sqlite3_step(a), SQLITE_ROW);
    CHECK_STR((const char *)sqlite3_column_text(a, 0), d.daemon_id);
    sqlite3_stmt *b = ferry_db_prepare(&d, copy);
    CHECK(a == b);
    CHECK_INT(sqlite3_stmt_busy(b), 0);
    CHECK_INT(sqlite3_step(b), SQLITE_DONE); /* key = NULL: no row */
    sqlite3_reset(b);
    free(copy);
}

static void test_close_and_reopen(void)
{
    char daemon_id[sizeof(d.daemon_id)];
    snprintf(daemon_id, sizeof(daemon_id), "%s", d.daemon_id);
    sqlite3_stmt *st =
        ferry_db_prepare(&d, "INSERT INTO projects (name, last_counter) VALUES (?, ?)");
    sqlite3_bind_text(st, 1, "demo", -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, 7);
    ferry_db_write(&d);
    CHECK_INT(ferry_db_step_done(&d, st), SQLITE_DONE);
    db_fixture_close(&d);
    CHECK(d.db == NULL);
    CHECK_INT(d.stmts.len, 0); /* every statement finalized with its connection */

    db_fixture_open(&d);
    CHECK_STR(d.daemon_id, daemon_id); /* the same database, persisted */
    st = ferry_db_prepare(&d, "SELECT last_counter FROM projects WHERE name = ?");
    sqlite3_bind_text(st, 1, "demo", -1, SQLITE_STATIC);
    CHECK_INT(answer(st), 7);
    /* A text cached before the close is prepared again on the new connection. */
    st = ferry_db_prepare(&d, "SELECT 5 + 0");
    CHECK(st != NULL && sqlite3_db_handle(st) == d.db);
    CHECK_INT(answer(st), 5);
    db_fixture_close(&d);
    CHECK_INT(d.stmts.len, 0);
    ferry_db_close(&d); /* a second close is harmless */
}

int main(void)
{
    char tmpl[] = "/tmp/ferry-db.XXXXXX";
    CHECK(mkdtemp(tmpl) != NULL);
    snprintf(d.data_dir, sizeof(d.data_dir), "%s", tmpl);
    d.loop = uv_default_loop();
    db_fixture_open(&d);
    test_many_statements();
    test_same_text_two_pointers();
    test_close_and_reopen();
    ferry_rmtree(tmpl);
    TEST_MAIN_END();
}
