/* ferryd: the daemon. Holds the queue, the workers and the lifecycle of
 * every execution; serves the API on its libuv loop. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agentapi.h"
#include "commits.h"
#include "snapshots.h"
#include "config.h"
#include "daemon.h"
#include "db.h"
#include "git.h"
#include "exec.h"
#include "lifecycle.h"
#include "log.h"
#include "logstore.h"
#include "objinputs.h"
#include "pipeline_engine.h"
#include "restart.h"
#include "scheduler.h"
#include "server.h"
#include "store.h"
#include "uploads.h"
#include "util.h"

/* Static, so that everything the daemon holds stays reachable until exit. */
static ferryd daemon_state;
static uv_signal_t sigterm_handle, sigint_handle;

static void usage(FILE *out)
{
    fprintf(out,
            "usage: ferryd [-c FILE] [--data-dir DIR] [--listen HOST:PORT] [--plugin-dir DIR]\n"
            "              [--log-level error|warn|info|debug] [--retire-workers]\n"
            "\n"
            "With no config file ferryd runs on its embedded defaults: it listens on\n"
            "127.0.0.1:%d, keeps its state in $FERRY_DATA_DIR (default\n"
            "~/.local/share/ferry), stores artifacts in DATA_DIR/store and runs\n"
            "executions on the 'local' environment (one worker per core).\n"
            "Flags given after -c override the file.\n"
            "\n"
            "SIGTERM or SIGINT stops ferryd and leaves its workers running their\n"
            "executions: the next start takes them back. --retire-workers (or\n"
            "retire_workers_on_stop = true) makes the stop terminate every worker\n"
            "and end the executions they were running.\n",
            FERRY_DEFAULT_PORT);
}

typedef struct ferryd_args {
    const char *config, *data_dir, *listen, *plugin_dir, *log_level;
    int retire_workers;
} ferryd_args;

static int parse_args(int argc, char **argv, ferryd_args *a)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"data-dir", required_argument, NULL, 'd'},
        {"listen", required_argument, NULL, 'l'},
        {"plugin-dir", required_argument, NULL, 'p'},
        {"log-level", required_argument, NULL, 'L'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {"retire-workers", no_argument, NULL, 'R'},
        {NULL, 0, NULL, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            a->config = optarg;
            break;
        case 'd':
            a->data_dir = optarg;
            break;
        case 'l':
            a->listen = optarg;
            break;
        case 'p':
            a->plugin_dir = optarg;
            break;
        case 'L':
            a->log_level = optarg;
            break;
        case 'R':
            a->retire_workers = 1;
            break;
        case 'h':
            usage(stdout);
            exit(0);
        case 'V':
            printf("ferryd %s\n", FERRY_VERSION);
            exit(0);
        default:
            usage(stderr);
            return FERRY_EINVAL;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "ferryd: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return FERRY_EINVAL;
    }
    return 0;
}

static int configure(ferryd *d, const ferryd_args *a, char *err, size_t cap)
{
    ferry_config_init(&d->cfg);
    if (a->config && ferry_config_load(&d->cfg, a->config, err, cap) < 0)
        return FERRY_ECONFIG;
    if (a->data_dir) {
        free(d->cfg.data_dir);
        d->cfg.data_dir = ferry_strdup(a->data_dir);
    }
    if (a->plugin_dir) {
        free(d->cfg.plugin_dir);
        d->cfg.plugin_dir = ferry_strdup(a->plugin_dir);
    }
    if (a->listen) {
        char why[256];
        if (ferry_config_set_listen(&d->cfg, a->listen, why, sizeof(why)) < 0) {
            snprintf(err, cap, "--listen: %s", why);
            return FERRY_ECONFIG;
        }
    }
    if (a->retire_workers)
        d->cfg.retire_workers_on_stop = 1;
    if (a->log_level) {
        static const char *levels[] = {"error", "warn", "info", "debug"};
        int found = -1;
        for (int i = 0; i < 4; i++)
            if (strcmp(a->log_level, levels[i]) == 0)
                found = i;
        if (found < 0) {
            snprintf(err, cap, "--log-level: unknown level '%s' (error, warn, info, debug)",
                     a->log_level);
            return FERRY_ECONFIG;
        }
        ferry_log_set_level((ferry_log_level)found);
    }
    return ferry_config_finish(&d->cfg, err, cap);
}

static int prepare_dirs(ferryd *d, char *err, size_t cap)
{
    if (realpath(d->cfg.data_dir, d->data_dir) == NULL) {
        int rc = ferry_file_mkdirs(d->cfg.data_dir, 0700);
        if (rc < 0 || realpath(d->cfg.data_dir, d->data_dir) == NULL) {
            snprintf(err, cap, "data directory %s: %s", d->cfg.data_dir,
                     rc < 0 ? ferry_strerror(rc) : strerror(errno));
            return rc < 0 ? rc : ferry_from_errno(errno);
        }
    }
    static const char *subdirs[] = {"tmp", "cache", "workers"};
    for (size_t i = 0; i < 3; i++) {
        char p[PATH_MAX + 16];
        snprintf(p, sizeof(p), "%s/%s", d->data_dir, subdirs[i]);
        int rc = ferry_file_mkdirs(p, 0700);
        if (rc < 0) {
            snprintf(err, cap, "%s: %s", p, ferry_strerror(rc));
            return rc;
        }
    }
    return ferry_exe_dir(d->exe_dir, sizeof(d->exe_dir));
}

static int load_plugins(ferryd *d, char *err, size_t cap)
{
    char dir[PATH_MAX];
    if (d->cfg.plugin_dir)
        snprintf(dir, sizeof(dir), "%s", d->cfg.plugin_dir);
    else if (ferry_plugin_default_dir(dir, sizeof(dir)) < 0) {
        snprintf(err, cap, "cannot find the plugin directory");
        return FERRY_ENOENT;
    }
    ferry_plugin_registry_scan(&d->plugins, dir);
    if (d->plugins.n == 0) {
        snprintf(err, cap, "no plugins could be loaded from %s", dir);
        return FERRY_EABI;
    }
    return 0;
}

static void shutdown_daemon(ferryd *d)
{
    if (d->stopping)
        return;
    d->stopping = 1;
    ferry_info("shutting down; %s",
               d->cfg.retire_workers_on_stop
                   ? "retiring every worker (retire_workers_on_stop)"
                   : "workers keep running and are taken back at the next start");
    ferry_server_stop(d);
    ferry_scheduler_close(d);
    ferry_db_commit(d);
    uv_stop(d->loop);
}

static void on_signal(uv_signal_t *h, int signum)
{
    (void)signum;
    shutdown_daemon(h->data);
}

static int start(ferryd *d, char *err, size_t cap)
{
    /* A folder of a newer ferryd is refused before anything is written in it. */
    if (ferry_db_check(d->cfg.data_dir, err, cap) < 0)
        return FERRY_EIO;
    if (prepare_dirs(d, err, cap) < 0 || load_plugins(d, err, cap) < 0)
        return FERRY_EIO;
    if (ferry_db_open(d, err, cap) < 0 || ferry_logstore_init(d, err, cap) < 0 ||
        ferry_store_init(d, err, cap) < 0 || ferry_git_init(d, err, cap) < 0)
        return FERRY_EIO;
    ferry_lifecycle_init(d);
    ferry_uploads_init(d);
    d->wake_worker = ferry_agentapi_wake;
    if (ferry_scheduler_init(d, err, cap) < 0 || ferry_server_start(d, err, cap) < 0)
        return FERRY_EIO;
    ferry_restart_init(d); /* after the scheduler: a restart is admitted as any creation */
    ferry_map_init(&d->active);
    int n = ferry_exec_load_active(d, ferry_scheduler_restore);
    ferry_uploads_restore(d); /* parts of executions that ended while we were away */
    ferry_scheduler_start(d);
    ferry_pipeline_engine_init(d); /* after the executions: it reads their statuses */
    ferry_db_commit(d);
    const char *listen_url = ferry_server_listen_url(d);
    int same = strcmp(listen_url, d->server_url) == 0;
    ferry_info("listening on %s (%s%s%sdata in %s; %d unfinished execution%s restored)", listen_url,
               same ? "" : "agents use ", same ? "" : d->server_url, same ? "" : "; ", d->data_dir,
               n, n == 1 ? "" : "s");
    return 0;
}

int main(int argc, char **argv)
{
    ferryd *d = &daemon_state;
    ferryd_args args = {0};
    char err[2048] = "";
    ferry_log_set_name("ferryd");
    signal(SIGPIPE, SIG_IGN);
    ferry_keep_large_blocks();
    if (parse_args(argc, argv, &args) < 0)
        return 2;
    d->loop = uv_default_loop();
    if (configure(d, &args, err, sizeof(err)) < 0) {
        fprintf(stderr, "ferryd: %s\n", err);
        return 2;
    }
    if (start(d, err, sizeof(err)) < 0) {
        fprintf(stderr, "ferryd: %s\n", err[0] ? err : "start-up failed");
        return 1;
    }
    uv_signal_init(d->loop, &sigterm_handle);
    uv_signal_init(d->loop, &sigint_handle);
    sigterm_handle.data = sigint_handle.data = d;
    uv_signal_start(&sigterm_handle, on_signal, SIGTERM);
    uv_signal_start(&sigint_handle, on_signal, SIGINT);
    uv_run(d->loop, UV_RUN_DEFAULT);
    shutdown_daemon(d);
    uv_close((uv_handle_t *)&sigterm_handle, NULL);
    uv_close((uv_handle_t *)&sigint_handle, NULL);
    ferry_objinputs_close(d);
    /* Let plugins finish closing their handles (they release on later turns). */
    for (int i = 0; i < 20; i++)
        uv_run(d->loop, UV_RUN_NOWAIT);
    ferry_git_close(d); /* its jobs' answers write gitrows: before the db closes */
    ferry_commits_close(d);
    ferry_snapshots_close(d);
    ferry_pipeline_engine_close(d); /* after the closes that answer its creations */
    ferry_lifecycle_close(d);
    ferry_store_close(d);
    ferry_db_close(d);
    ferry_logstore_close_all(d);
    return 0;
}
