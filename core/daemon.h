/* ferryd's shared state. Each field is owned by the module named beside it;
 * other modules read it and call that module to change it. */
#ifndef FERRY_DAEMON_H
#define FERRY_DAEMON_H

#include <jansson.h>
#include <limits.h>
#include <sqlite3.h>
#include <uv.h>

#include "config.h"
#include "map.h"
#include "plugin.h"

typedef struct ferry_server ferry_server;
typedef struct ferry_env ferry_env;
typedef struct ferry_stepcache ferry_stepcache;
typedef struct ferry_lifecycle_observer ferry_lifecycle_observer;
typedef struct ferry_worker ferry_worker;

#define FERRY_LIFECYCLE_OBSERVERS 8

typedef struct ferryd {
    uv_loop_t *loop;
    ferry_config cfg;
    char data_dir[PATH_MAX];
    char server_url[256]; /* how agents reach this daemon */
    char daemon_id[40];   /* db.c: persisted, tags every instance */
    char secret[65];      /* db.c: persisted, signs blob URLs */
    char exe_dir[PATH_MAX];

    sqlite3 *db;                 /* db.c */
    uv_prepare_t commit_prepare; /* db.c: commits each loop turn's writes */
    int in_txn;
    ferry_map stmts; /* db.c: SQL text -> prepared statement, until close */
    /* db.c: the writes of a commit that failed, kept; the timer retries it. */
    struct db__redo *redo;
    uv_timer_t commit_retry;

    ferry_plugin_registry plugins;
    ferry_plugin_instance *store; /* store.c */
    ferry_map input_stores;       /* objinputs.c: "<store> <location>" -> its store instance */

    ferry_env **envs; /* scheduler.c */
    size_t n_envs;
    ferry_map workers_by_id;    /* scheduler.c */
    ferry_map workers_by_token; /* scheduler.c: sha256(agent token) -> worker */
    size_t workers_awaiting;    /* workers.c: taken back at start, not heard from since */
    double workers_restored_at; /* workers.c: when they were taken back */
    uv_timer_t lost_timer;      /* scheduler.c: looks for silent workers */
    ferry_map userqs;           /* scheduler.c: owner -> ferry_userq ("" without users) */

    ferry_map active;                   /* exec.c: id -> ferry_exec, every non-terminal execution */
    struct lifecycle__grave *graveyard; /* lifecycle.c: ended this turn, freed after it */
    uv_prepare_t reaper;                /* lifecycle.c */
    const ferry_lifecycle_observer *observers[FERRY_LIFECYCLE_OBSERVERS]; /* lifecycle.c */
    /* agentapi.c: answers the worker's held poll when it has news, so that
     * the scheduler (sched/) wakes an agent without knowing HTTP. NULL
     * until the API is up. */
    void (*wake_worker)(struct ferryd *d, ferry_worker *w);
    ferry_stepcache *steps;  /* api.c: parsed step files by snapshot */
    ferry_server *server;    /* server.c */
    struct ferry_git *git;   /* core/git/ */
    ferry_map commit_builds; /* commits.c: git tree -> the build of its snapshot in flight */
    struct ferry_pipeline_engine *pipelines; /* pipeline_engine.c: the unfinished pipelines */
    char *log_buf;                           /* logstore.c: reused for the lines of each event */
    size_t log_buf_cap;
    int stopping;
} ferryd;

#endif
