/* ferry-agent: the command line, the runtime plugin, the loop. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "agent.h"
#include "log.h"
#include "util.h"

#define PROG "ferry-agent"

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: " PROG " --server URL [options]\n"
            "\n"
            "Runs the executions that ferryd hands to this worker (docs/api.md).\n"
            "A launched worker registers with the one-time bootstrap token in\n"
            "FERRY_BOOTSTRAP_TOKEN; a machine of a static environment joins with the\n"
            "environment's join token in FERRY_JOIN_TOKEN (or --join-token). The agent's own\n"
            "token is kept in the work folder, so a restart needs neither.\n"
            "\n"
            "  --server URL           ferryd's base URL, http:// or https:// (required)\n"
            "  --worker-id ID         ferryd's record of this worker\n"
            "  --work-dir DIR         executions and the snapshot cache (default: "
            "/var/lib/ferry/agent)\n"
            "  --runtime NAME         runtime plugin (default: local-process)\n"
            "  --environment NAME     the environment this worker serves\n"
            "  --join-token TOKEN     join the static environment --environment (prefer\n"
            "                         FERRY_JOIN_TOKEN: the command line is visible to ps)\n"
            "  --runtime-setting KEY=VALUE\n"
            "                         a setting of the runtime plugin (repeatable; e.g.\n"
            "                         docker_socket=/run/docker.sock for local-docker)\n"
            "  --slots N              executions run at once (default: 1)\n"
            "  --plugin-dir DIR       where plugins are (default: next to the binary)\n"
            "  --stop-grace-ms MS     time between the stop signal and the kill (default: 5000)\n"
            "  --give-up-after S      exit non-zero when ferryd is unreachable for longer\n"
            "                         (default: 600)\n"
            "  --cache-max-mb MB      room for cached snapshots and inputs; what was used\n"
            "                         least recently goes first (default: 10240)\n"
            "  --bind-inputs-mb MB|off\n"
            "                         a cached input of MB or more is bound read-only into\n"
            "                         inputs/ instead of copied, where the runtime can bind\n"
            "                         files (default: $FERRY_BIND_INPUTS_MB, else 64;\n"
            "                         off: always copy)\n"
            "  --ca FILE              CA certificates (PEM) to verify ferryd's https:// with\n"
            "                         (default: $FERRY_CA_FILE, else the system store);\n"
            "                         --ca-file is the same\n"
            "  -v, --verbose          debug logging\n"
            "  -h, --help             this help\n"
            "      --version          print the version\n");
}

static int usage_error(const char *fmt, const char *a, const char *b)
{
    fprintf(stderr, PROG ": ");
    fprintf(stderr, fmt, a, b);
    fprintf(stderr, "\nTry '" PROG " --help'.\n");
    return 2;
}

/* A whole number in [lo, hi] (lo >= 0), or FERRY_EINVAL with an error printed. */
static long parse_number(const char *opt, const char *text, long lo, long hi)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || v < lo || v > hi) {
        char range[64];
        snprintf(range, sizeof(range), "a whole number from %ld to %ld", lo, hi);
        fprintf(stderr, PROG ": %s needs %s, got '%s'\nTry '" PROG " --help'.\n", opt, range, text);
        return FERRY_EINVAL;
    }
    return v;
}

/* --bind-inputs-mb MB|off */
static int parse_bind_inputs(const char *name, const char *text, agent_config *cfg)
{
    if (strcmp(text, "off") == 0) {
        cfg->bind_inputs_min_bytes = -1;
        return 0;
    }
    long v = parse_number(name, text, 0, 1L << 30);
    if (v < 0)
        return FERRY_EINVAL;
    cfg->bind_inputs_min_bytes = (int64_t)v << 20;
    return 0;
}

enum {
    OPT_SERVER = 256,
    OPT_WORKER_ID,
    OPT_WORK_DIR,
    OPT_RUNTIME,
    OPT_ENVIRONMENT,
    OPT_SLOTS,
    OPT_PLUGIN_DIR,
    OPT_STOP_GRACE,
    OPT_GIVE_UP,
    OPT_CA_FILE,
    OPT_JOIN_TOKEN,
    OPT_RUNTIME_SETTING,
    OPT_CACHE_MAX,
    OPT_BIND_INPUTS,
    OPT_VERSION,
};

static void free_secret(char *s)
{
    if (s) {
        memset(s, 0, strlen(s));
        free(s);
    }
}

static int parse_args(int argc, char **argv, agent_config *cfg, int *verbose, char **join_token)
{
    static const struct option opts[] = {
        {"server", required_argument, NULL, OPT_SERVER},
        {"worker-id", required_argument, NULL, OPT_WORKER_ID},
        {"work-dir", required_argument, NULL, OPT_WORK_DIR},
        {"runtime", required_argument, NULL, OPT_RUNTIME},
        {"environment", required_argument, NULL, OPT_ENVIRONMENT},
        {"slots", required_argument, NULL, OPT_SLOTS},
        {"plugin-dir", required_argument, NULL, OPT_PLUGIN_DIR},
        {"stop-grace-ms", required_argument, NULL, OPT_STOP_GRACE},
        {"give-up-after", required_argument, NULL, OPT_GIVE_UP},
        {"ca", required_argument, NULL, OPT_CA_FILE},
        {"ca-file", required_argument, NULL, OPT_CA_FILE},
        {"join-token", required_argument, NULL, OPT_JOIN_TOKEN},
        {"runtime-setting", required_argument, NULL, OPT_RUNTIME_SETTING},
        {"cache-max-mb", required_argument, NULL, OPT_CACHE_MAX},
        {"bind-inputs-mb", required_argument, NULL, OPT_BIND_INPUTS},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, OPT_VERSION},
        {NULL, 0, NULL, 0},
    };
    cfg->slots = 1;
    cfg->runtime_settings = ferry_settings_new();
    cfg->stop_grace_ms = 5000;
    cfg->give_up_s = 600;
    cfg->cache_max_bytes = (int64_t)10240 << 20;
    cfg->bind_inputs_min_bytes = (int64_t)64 << 20;
    /* A compute plugin starts the agent with its own flags: an operator
     * sets this one in the agent's environment (the flag wins). */
    const char *bind_env = getenv("FERRY_BIND_INPUTS_MB");
    if (bind_env != NULL && bind_env[0] != '\0' &&
        parse_bind_inputs("FERRY_BIND_INPUTS_MB", bind_env, cfg) < 0)
        return 2;
    opterr = 0;
    int c;
    long v;
    while ((c = getopt_long(argc, argv, ":vh", opts, NULL)) != -1) {
        switch (c) {
        case OPT_SERVER:
            free(cfg->server_url);
            cfg->server_url = ferry_strdup(optarg);
            break;
        case OPT_WORKER_ID:
            free(cfg->worker_id);
            cfg->worker_id = ferry_strdup(optarg);
            break;
        case OPT_WORK_DIR:
            free(cfg->work_dir);
            cfg->work_dir = ferry_strdup(optarg);
            break;
        case OPT_RUNTIME:
            free(cfg->runtime);
            cfg->runtime = ferry_strdup(optarg);
            break;
        case OPT_ENVIRONMENT:
            free(cfg->environment);
            cfg->environment = ferry_strdup(optarg);
            break;
        case OPT_PLUGIN_DIR:
            free(cfg->plugin_dir);
            cfg->plugin_dir = ferry_strdup(optarg);
            break;
        case OPT_CA_FILE:
            free(cfg->ca_file);
            cfg->ca_file = ferry_strdup(optarg);
            break;
        case OPT_JOIN_TOKEN:
            free_secret(*join_token);
            *join_token = ferry_strdup(optarg);
            /* Blank it in argv: ps shows the rest of our life otherwise. */
            memset(optarg, 'x', strlen(optarg));
            break;
        case OPT_RUNTIME_SETTING: {
            const char *eq = strchr(optarg, '=');
            if (eq == NULL || eq == optarg)
                return usage_error("--runtime-setting takes KEY=VALUE, got '%s'%s", optarg, "");
            char *key = ferry_asprintf("%.*s", (int)(eq - optarg), optarg);
            ferry_settings_set(cfg->runtime_settings, key, eq + 1);
            free(key);
            break;
        }
        case OPT_SLOTS:
            if ((v = parse_number("--slots", optarg, 1, 1024)) < 0)
                return 2;
            cfg->slots = (int)v;
            break;
        case OPT_STOP_GRACE:
            if ((v = parse_number("--stop-grace-ms", optarg, 0, 3600000)) < 0)
                return 2;
            cfg->stop_grace_ms = (int)v;
            break;
        case OPT_GIVE_UP:
            if ((v = parse_number("--give-up-after", optarg, 1, 86400 * 30)) < 0)
                return 2;
            cfg->give_up_s = (int)v;
            break;
        case OPT_CACHE_MAX:
            if ((v = parse_number("--cache-max-mb", optarg, 0, 1L << 30)) < 0)
                return 2;
            cfg->cache_max_bytes = (int64_t)v << 20;
            break;
        case OPT_BIND_INPUTS:
            if (parse_bind_inputs("--bind-inputs-mb", optarg, cfg) < 0)
                return 2;
            break;
        case 'v':
            *verbose = 1;
            break;
        case 'h':
            usage(stdout);
            exit(0);
        case OPT_VERSION:
            printf(PROG " %s\n", FERRY_VERSION);
            exit(0);
        case ':':
            return usage_error("%s needs a value%s", argv[optind - 1], "");
        default:
            return usage_error("unknown option '%s'%s", argv[optind - 1], "");
        }
    }
    if (optind < argc)
        return usage_error("unexpected argument '%s'%s", argv[optind], "");
    if (cfg->server_url == NULL)
        return usage_error("--server URL is required%s%s", "", "");
    if (strncmp(cfg->server_url, "http://", 7) != 0 && strncmp(cfg->server_url, "https://", 8) != 0)
        return usage_error("--server must be an http:// or https:// URL, got '%s'%s",
                           cfg->server_url, "");
    size_t n = strlen(cfg->server_url);
    while (n > 0 && cfg->server_url[n - 1] == '/')
        cfg->server_url[--n] = '\0';
    /* A compute plugin hands the CA over in the environment (ferryd's own
     * certificate when it is self-signed); the flag wins. */
    const char *ca_env = getenv("FERRY_CA_FILE");
    if (cfg->ca_file == NULL && ca_env != NULL && ca_env[0] != '\0')
        cfg->ca_file = ferry_strdup(ca_env);
    if (cfg->ca_file != NULL && access(cfg->ca_file, R_OK) != 0)
        return usage_error("cannot read the CA file %s: %s (see --ca, FERRY_CA_FILE)", cfg->ca_file,
                           strerror(errno));
    if (cfg->runtime == NULL)
        cfg->runtime = ferry_strdup("local-process");
    if (strchr(cfg->runtime, '/') != NULL || cfg->runtime[0] == '\0' || cfg->runtime[0] == '.')
        return usage_error("--runtime takes a plugin name, not a path: '%s'%s", cfg->runtime, "");
    if (cfg->work_dir == NULL)
        cfg->work_dir = ferry_strdup("/var/lib/ferry/agent");
    if (*join_token && cfg->environment == NULL)
        return usage_error("a join token needs --environment NAME (the static environment)%s%s", "",
                           "");
    return 0;
}

/* The PID a holder wrote into the lock file, or "unknown". The holder
 * writes it just after taking the lock: a moment's wait covers that gap. */
static void work_lock__holder(int fd, char *pid, size_t size)
{
    for (int tries = 0; tries < 20; tries++) {
        ssize_t n = pread(fd, pid, size - 1, 0);
        if (n > 0) {
            pid[n] = '\0';
            pid[strcspn(pid, "\r\n")] = '\0';
            if (pid[0] != '\0')
                return;
        }
        usleep(10 * 1000);
    }
    snprintf(pid, size, "unknown");
}

/* One agent per work folder: two would take each other's executions for
 * ones "left by an earlier run". The lock lives as long as the process (the
 * descriptor is never closed; the kernel drops it at exit, kill -9 too) and
 * is not inherited by the commands it runs (O_CLOEXEC). */
static int work_lock_fd = -1;

static int work_lock_take(const char *work_dir)
{
    char *path = ferry_asprintf("%s/.lock", work_dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0644);
    int rc = 0;
    if (fd < 0) {
        rc = ferry_from_errno(errno);
        fprintf(stderr, PROG ": cannot open the lock file %s: %s\n", path, ferry_strerror(rc));
    } else if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        rc = ferry_from_errno(errno);
        if (errno == EWOULDBLOCK) {
            char pid[32];
            work_lock__holder(fd, pid, sizeof(pid));
            fprintf(stderr,
                    PROG ": the work folder %s is in use by another ferry-agent (pid %s); each "
                         "agent needs its own --work-dir\n",
                    work_dir, pid);
        } else {
            fprintf(stderr, PROG ": cannot lock %s: %s\n", path, ferry_strerror(rc));
        }
        close(fd);
    } else {
        char pid[32];
        int n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
        if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)n, 0) != n)
            ferry_warn("cannot write the PID into %s: %s", path, strerror(errno));
        work_lock_fd = fd;
    }
    free(path);
    return rc;
}

/* The work folder as an absolute path (runtimes get absolute paths), locked
 * before anything in it is read or written. */
static int prepare_work_dir(agent_config *cfg)
{
    char *dirs[] = {cfg->work_dir, NULL, NULL};
    int rc = ferry_file_mkdirs(cfg->work_dir, 0755);
    if (rc == 0) {
        char abs[PATH_MAX];
        if (realpath(cfg->work_dir, abs) == NULL) {
            rc = ferry_from_errno(errno);
        } else if ((rc = work_lock_take(abs)) != 0) {
            return rc; /* work_lock_take said why */
        } else {
            free(cfg->work_dir);
            cfg->work_dir = ferry_strdup(abs);
            dirs[1] = ferry_asprintf("%s/executions", abs);
            dirs[2] = ferry_asprintf("%s/snapshots", abs);
            for (int i = 1; i < 3 && rc == 0; i++)
                rc = ferry_file_mkdirs(dirs[i], 0755);
        }
    }
    if (rc != 0)
        fprintf(stderr, PROG ": cannot use the work folder %s: %s (see --work-dir)\n",
                cfg->work_dir, ferry_strerror(rc));
    free(dirs[1]);
    free(dirs[2]);
    return rc;
}

typedef struct runtime_plugin {
    ferry_plugin *own;         /* loaded by file name */
    ferry_plugin_registry reg; /* or found by scanning the folder */
    const ferry_plugin *p;
} runtime_plugin;

/* <dir>/<name>.so, or else any plugin in <dir> whose descriptor has that name. */
static int load_runtime(const agent_config *cfg, runtime_plugin *rp)
{
    char err[1024] = "";
    char *path = ferry_asprintf("%s/%s.so", cfg->plugin_dir, cfg->runtime);
    int rc = 0;
    if (access(path, F_OK) == 0) {
        rc = ferry_plugin_load(path, &rp->own, err, sizeof(err));
        if (rc != 0)
            fprintf(stderr, PROG ": %s\n", err);
        rp->p = rp->own;
    } else {
        ferry_plugin_registry_scan(&rp->reg, cfg->plugin_dir);
        rp->p = ferry_plugin_registry_get(&rp->reg, FERRY_PLUGIN_RUNTIME, cfg->runtime);
        if (rp->p == NULL) {
            fprintf(stderr,
                    PROG ": no runtime plugin named '%s' in %s (see --runtime, --plugin-dir)\n",
                    cfg->runtime, cfg->plugin_dir);
            rc = FERRY_ENOENT;
        }
    }
    if (rc == 0 && rp->p->desc.kind != FERRY_PLUGIN_RUNTIME) {
        fprintf(stderr, PROG ": %s is a %s plugin, not a runtime\n", rp->p->path,
                ferry_plugin_kind_name(rp->p->desc.kind));
        rc = FERRY_EINVAL;
    }
    free(path);
    return rc;
}

static void unload_runtime(runtime_plugin *rp)
{
    if (rp->own)
        ferry_plugin_unload(rp->own);
    ferry_plugin_registry_free(&rp->reg);
}

static void config_free(agent_config *cfg)
{
    free(cfg->server_url);
    free(cfg->worker_id);
    free(cfg->work_dir);
    free(cfg->runtime);
    free(cfg->environment);
    free(cfg->plugin_dir);
    free(cfg->ca_file);
    ferry_settings_free(cfg->runtime_settings);
}

/* Read a token and take it out of the environment, so that no child
 * process (the user's commands) inherits it. */
static char *take_env_token(const char *name)
{
    const char *t = getenv(name);
    char *token = t && t[0] ? ferry_strdup(t) : NULL;
    unsetenv(name);
    return token;
}

int main(int argc, char **argv)
{
    ferry_log_set_name(PROG);
    signal(SIGPIPE, SIG_IGN);
    ferry_keep_large_blocks();
    char *token = take_env_token("FERRY_BOOTSTRAP_TOKEN");
    char *join_token = take_env_token("FERRY_JOIN_TOKEN");
    agent_config cfg = {0};
    int verbose = 0;
    int rc = parse_args(argc, argv, &cfg, &verbose, &join_token);
    if (rc == 0 && cfg.plugin_dir == NULL) {
        char dir[PATH_MAX];
        if (ferry_plugin_default_dir(dir, sizeof(dir)) != 0) {
            fprintf(stderr, PROG ": cannot find the plugin folder; use --plugin-dir\n");
            rc = 2;
        } else {
            cfg.plugin_dir = ferry_strdup(dir);
        }
    }
    if (rc != 0) {
        free_secret(token);
        free_secret(join_token);
        config_free(&cfg);
        return rc;
    }
    if (verbose)
        ferry_log_set_level(FERRY_LOG_DEBUG);

    runtime_plugin rp;
    memset(&rp, 0, sizeof(rp));
    if (prepare_work_dir(&cfg) != 0 || load_runtime(&cfg, &rp) != 0) {
        unload_runtime(&rp);
        free_secret(token);
        free_secret(join_token);
        config_free(&cfg);
        return 1;
    }

    static const char *const no_host_keys[] = {NULL};
    const char *unknown = NULL;
    if (ferry_plugin_check_settings(rp.p, cfg.runtime_settings, no_host_keys, &unknown) != 0) {
        char *known = ferry_plugin_settings_list(rp.p);
        fprintf(stderr,
                PROG ": --runtime-setting %s: not a setting of the runtime plugin %s (it "
                     "reads: %s)\n",
                unknown, cfg.runtime, known[0] ? known : "nothing");
        free(known);
        unload_runtime(&rp);
        free_secret(token);
        free_secret(join_token);
        config_free(&cfg);
        return 2;
    }

    uv_loop_t *loop = uv_default_loop();
    ferry_plugin_instance *inst = NULL;
    ferry_error_detail err = {.struct_size = sizeof(err)};
    rc =
        ferry_plugin_instance_new(rp.p, loop, cfg.runtime, cfg.runtime_settings, NULL, &inst, &err);
    if (rc != 0) {
        fprintf(stderr, PROG ": the runtime plugin %s did not start: %s\n", cfg.runtime,
                err.message[0] ? err.message : ferry_strerror(rc));
        uv_run(loop, UV_RUN_DEFAULT); /* lets the half-made instance go */
        unload_runtime(&rp);
        free_secret(token);
        free_secret(join_token);
        config_free(&cfg);
        return 1;
    }

    agent a;
    rc = agent_init(&a, loop, &cfg, inst, token, join_token);
    if (rc != 0) {
        fprintf(stderr, PROG ": %s\n", ferry_strerror(rc));
        return 1;
    }
    agent_start(&a);
    uv_run(loop, UV_RUN_DEFAULT);
    int exit_code = a.exit_code;
    free(a.token);
    free(a.agent_id);
    free_secret(a.bootstrap_token);
    free_secret(a.join_token);
    if (uv_loop_close(loop) != 0)
        ferry_debug("the loop still had handles at exit");
    unload_runtime(&rp);
    config_free(&cfg);
    ferry_info("exiting with code %d", exit_code);
    return exit_code;
}
