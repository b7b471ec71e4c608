/* A real ferryd state for the unit tests of its modules (test_lifecycle,
 * test_scheduler, test_sched_requeue): a temporary data dir, the config
 * file the test wrote there (or none), the plugins of FERRY_PLUGIN_DIR,
 * SQLite, the log store and the lifecycle. The scheduler is the test's to
 * start (some set rows up before it restores them); the close stops it.
 * Header-only, included after test.h: its CHECKs count in the test's own
 * failures. */
#ifndef FERRY_TEST_DAEMON_FIXTURE_H
#define FERRY_TEST_DAEMON_FIXTURE_H

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

#include "daemon.h"
#include "db.h"
#include "exec.h"
#include "lifecycle.h"
#include "logstore.h"
#include "scheduler.h"
#include "util.h"

typedef struct daemon_fixture {
    char dir[PATH_MAX];       /* the data dir, removed at the close */
    char conf[PATH_MAX + 32]; /* dir/ferryd.conf, for the test to write before open */
    int with_config;
} daemon_fixture;

/* Make the data dir (named after `name`): 0, or -1 with a CHECK failed. */
static inline int daemon_fixture_dir(daemon_fixture *f, ferryd *d, const char *name)
{
    snprintf(f->dir, sizeof(f->dir), "/tmp/ferry-%s.XXXXXX", name);
    CHECK(mkdtemp(f->dir) != NULL);
    snprintf(d->data_dir, sizeof(d->data_dir), "%s", f->dir);
    snprintf(f->conf, sizeof(f->conf), "%s/ferryd.conf", f->dir);
    d->loop = uv_default_loop();
    return f->dir[0] && d->data_dir[0] ? 0 : -1;
}

/* Load f->conf when `with_config`, scan `plugin_dir` (may be NULL), open
 * the state and the lifecycle: 0, or -1 with a CHECK failed. */
static inline int daemon_fixture_open(daemon_fixture *f, ferryd *d, int with_config,
                                      const char *plugin_dir)
{
    char err[1024] = "";
    f->with_config = with_config;
    if (with_config) {
        ferry_config_init(&d->cfg);
        CHECK_INT(ferry_config_load(&d->cfg, f->conf, err, sizeof(err)), 0);
        CHECK_INT(ferry_config_finish(&d->cfg, err, sizeof(err)), 0);
        if (err[0])
            fprintf(stderr, "config: %s\n", err);
    }
    if (plugin_dir)
        ferry_plugin_registry_scan(&d->plugins, plugin_dir);
    int rc = ferry_db_open(d, err, sizeof(err));
    CHECK_INT(rc, 0);
    if (rc == 0) {
        rc = ferry_logstore_init(d, err, sizeof(err));
        CHECK_INT(rc, 0);
    }
    ferry_map_init(&d->active);
    ferry_lifecycle_init(d);
    return rc == 0 ? 0 : -1;
}

/* Stop the scheduler, close the state and remove the data dir. */
static inline void daemon_fixture_close(daemon_fixture *f, ferryd *d)
{
    ferry_scheduler_close(d);
    ferry_lifecycle_close(d);
    ferry_db_close(d);
    uv_run(d->loop, UV_RUN_NOWAIT);
    ferry_map_free(&d->active);
    ferry_plugin_registry_free(&d->plugins);
    if (f->with_config)
        ferry_config_free(&d->cfg);
    ferry_rmtree(f->dir);
}

/* A new execution of step "train" in `project` and `env`, created through
 * the lifecycle (`setup`, may be NULL, sets more fields before). */
static inline ferry_exec *daemon_fixture_exec(ferryd *d, const char *project, const char *env,
                                              void (*setup)(ferry_exec *e, void *arg), void *arg)
{
    ferry_exec *e = ferry_exec_new();
    ferry_uuid(e->id);
    e->project = ferry_strdup(project);
    e->counter = ferry_exec_next_counter(d, project);
    e->step = ferry_strdup("train");
    e->environment = ferry_strdup(env);
    e->snapshot = ferry_strdup("00");
    e->command = ferry_strdup("true");
    e->parameters = json_object();
    e->inputs = json_object();
    e->env = json_object();
    e->tags = json_array();
    if (setup)
        setup(e, arg);
    CHECK_INT(ferry_lifecycle_create(d, e), 0);
    return e;
}

#endif
