/* The state database alone (core/state/db.c) of a ferryd whose data_dir and
 * loop the test set: for the tests of db.c itself (test_db, test_db_full),
 * which need no config, lifecycle or scheduler (daemon_fixture.h). */
#ifndef FERRY_TEST_DB_FIXTURE_H
#define FERRY_TEST_DB_FIXTURE_H

#include <stdio.h>

#include "db.h"
#include "test.h"

static inline void db_fixture_open(ferryd *d)
{
    char err[512] = "";
    int rc = ferry_db_open(d, err, sizeof(err));
    if (rc != 0)
        fprintf(stderr, "ferry_db_open: %s\n", err);
    CHECK_INT(rc, 0);
}

static inline void db_fixture_close(ferryd *d)
{
    ferry_db_close(d);
    uv_run(d->loop, UV_RUN_NOWAIT); /* completes the close of the commit handles */
}

#endif
