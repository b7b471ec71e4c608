/* A database that runs out of room (core/state/db.c; issue 16, point 6).
 * `PRAGMA max_page_count` makes SQLite answer SQLITE_FULL as a full disk
 * does, deterministically: the write that needs a new page fails, and
 * SQLite may roll the whole open transaction back with it. What the
 * transaction held before (writes ferryd already answered for) must not be
 * lost: readers still see it, the database is marked stalled (new data is
 * refused, space.c), and once there is room again the retried commit makes
 * it durable. The write that failed stays failed: its caller was told. */
#include "test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "db.h"
#include "db_fixture.h"
#include "util.h"

static ferryd d;

static int add_project(const char *name, int counter)
{
    sqlite3_stmt *st =
        ferry_db_prepare(&d, "INSERT INTO projects (name, last_counter) VALUES (?, ?)");
    sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(st, 2, counter);
    ferry_db_write(&d);
    return ferry_db_step_done(&d, st);
}

static int set_counter(const char *name, const char *text)
{
    sqlite3_stmt *st = ferry_db_prepare(&d, "UPDATE projects SET last_counter = ? WHERE name = ?");
    sqlite3_bind_text(st, 1, text, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
    ferry_db_write(&d);
    return ferry_db_step_done(&d, st);
}

/* last_counter of a project, -1 when there is none. */
static long long counter_of(const char *name)
{
    sqlite3_stmt *st = ferry_db_prepare(&d, "SELECT last_counter FROM projects WHERE name = ?");
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    long long v = -1;
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    return v;
}

static void max_pages(long long n)
{
    char sql[64];
    snprintf(sql, sizeof(sql), "PRAGMA max_page_count = %lld", n);
    CHECK_INT(sqlite3_exec(d.db, sql, NULL, NULL, NULL), SQLITE_OK);
}

static long long page_count(void)
{
    sqlite3_stmt *st = ferry_db_prepare(&d, "PRAGMA page_count");
    long long v = -1;
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    return v;
}

/* A text of n bytes: a value that needs pages of its own. */
static char *big_text(size_t n)
{
    char *s = ferry_xmalloc(n + 1);
    memset(s, 'x', n);
    s[n] = '\0';
    return s;
}

static void test_full_mid_transaction(void)
{
    CHECK_INT(add_project("committed", 1), SQLITE_DONE);
    CHECK_INT(ferry_db_commit(&d), 0);
    CHECK_INT(add_project("answered", 2), SQLITE_DONE);
    CHECK_INT(set_counter("committed", "5"), SQLITE_DONE);
    max_pages(page_count()); /* the disk is full now */
    char *big = big_text(256 * 1024);
    CHECK_INT(set_counter("answered", big) & 0xff, SQLITE_FULL);
    free(big);
    /* The writes before the failed one are still seen, the failed one not. */
    CHECK_INT(counter_of("answered"), 2);
    CHECK_INT(counter_of("committed"), 5);
    CHECK_INT(ferry_db_stalled(&d), 1);
    /* Writes go on joining the kept ones. */
    CHECK_INT(set_counter("committed", "6"), SQLITE_DONE);
    CHECK_INT(counter_of("committed"), 6);

    max_pages(1 << 30);  /* space is freed */
    usleep(1100 * 1000); /* past the retry delay */
    CHECK_INT(ferry_db_commit(&d), 0);
    CHECK_INT(ferry_db_stalled(&d), 0);

    db_fixture_close(&d);
    db_fixture_open(&d);
    CHECK_INT(counter_of("committed"), 6);
    CHECK_INT(counter_of("answered"), 2);
}

/* The write that failed is not replayed with the kept ones: its caller was
 * told that it failed (an execution answered 500 must not appear later). */
static void test_failed_write_left_out(void)
{
    CHECK_INT(add_project("before", 1), SQLITE_DONE);
    max_pages(page_count());
    char *big = big_text(256 * 1024);
    CHECK_INT(add_project(big, 9) & 0xff, SQLITE_FULL);
    CHECK_INT(counter_of(big), -1);
    CHECK_INT(counter_of("before"), 1);
    CHECK_INT(ferry_db_stalled(&d), 1);
    max_pages(1 << 30);
    usleep(1100 * 1000);
    CHECK_INT(ferry_db_commit(&d), 0);
    CHECK_INT(ferry_db_stalled(&d), 0);
    db_fixture_close(&d);
    db_fixture_open(&d);
    CHECK_INT(counter_of("before"), 1);
    CHECK_INT(counter_of(big), -1);
    free(big);
}

int main(void)
{
    char tmpl[] = "/tmp/ferry-dbfull.XXXXXX";
    CHECK(mkdtemp(tmpl) != NULL);
    snprintf(d.data_dir, sizeof(d.data_dir), "%s", tmpl);
    d.loop = uv_default_loop();
    db_fixture_open(&d);
    test_full_mid_transaction();
    test_failed_write_left_out();
    db_fixture_close(&d);
    ferry_rmtree(tmpl);
    TEST_MAIN_END();
}
