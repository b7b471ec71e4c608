/* local: a compute plugin whose "instances" are ferry-agent processes on the
 * daemon's own host. Local executions thereby take the same path as cloud
 * ones: launch, register with a bootstrap token, long-poll, terminate.
 *
 * Settings: `work_dir` (each agent works in <work_dir>/<worker_id>; default
 * $TMPDIR/ferry-local-<uid>), `runtime` (default "local-process"),
 * `terminate_grace_ms` (SIGTERM to SIGKILL, default 10000), `agent_env`
 * (comma-separated names of more variables to pass to agents).
 *
 * The agent inherits stdout/stderr, so its log lines land in ferryd's log.
 * The bootstrap token travels in its environment only: argv is visible to
 * every user through ps. The rest of its environment is an allowlist of
 * ferryd's (see lc_env_passes): no cloud credentials reach a worker.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <uv.h>

#include "ferry/ferry.h"

extern char **environ;

#define LC_DEFAULT_GRACE_MS 10000

typedef struct lc_state lc_state;

typedef struct lc_child {
    lc_state *st;
    struct lc_child *prev, *next; /* live children */
    uv_process_t proc;
    uv_timer_t kill_timer;
    int pid;
    int terminating;
    int silent; /* after fini: never call the host */
    int open_handles;
    char instance_id[32];
    char *worker_id;
    char *daemon_id;
    ferry_op **term_ops; /* terminate calls waiting for the exit */
    size_t n_term_ops;
} lc_child;

struct lc_state {
    ferry_plugin_ctx *ctx;
    const ferry_host_api *host;
    uv_loop_t *loop;
    char *work_dir;
    char *runtime;
    char *agent_env; /* extra variable names to pass, comma-separated */
    long grace_ms;
    lc_child *children;
    size_t n_allocated; /* children not freed yet */
    int finishing;
};

/* ------------------------------------------------------------------------ */
/* Helpers                                                                  */

static void lc_complete(lc_state *st, ferry_op *op, int status, const char *instance_id,
                        const char *text, const ferry_error_detail *err)
{
    ferry_op_result r = {
        .struct_size = sizeof(r), .instance_id = instance_id, .text = text, .error = err};
    st->host->op_complete(op, status, &r);
}

static void lc_fail(lc_state *st, ferry_op *op, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void lc_fail(lc_state *st, ferry_op *op, int code, const char *fmt, ...)
{
    ferry_error_detail d;
    ferry_error_set(&d, code, 0, NULL, NULL);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d.message, sizeof(d.message), fmt, ap);
    va_end(ap);
    lc_complete(st, op, code, NULL, NULL, &d);
}

static int lc_mkdirs(char *path, mode_t mode)
{
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        int rc = mkdir(path, mode);
        *p = '/';
        if (rc != 0 && errno != EEXIST)
            return -1;
    }
    return mkdir(path, mode) != 0 && errno != EEXIST ? -1 : 0;
}

/* The worker id becomes a folder name: one plain component only. */
static int lc_worker_id_ok(const char *id)
{
    return id != NULL && id[0] != '\0' && strchr(id, '/') == NULL && strcmp(id, ".") != 0 &&
           strcmp(id, "..") != 0;
}

static lc_child *lc_find(lc_state *st, const char *instance_id)
{
    for (lc_child *c = st->children; c != NULL; c = c->next)
        if (instance_id != NULL && strcmp(c->instance_id, instance_id) == 0)
            return c;
    return NULL;
}

static const char *lc_child_state(const lc_child *c)
{
    return c->terminating ? "shutting-down" : "running";
}

/* ------------------------------------------------------------------------ */
/* Children                                                                 */

static void lc_child_unlink(lc_child *c)
{
    lc_state *st = c->st;
    if (c->prev != NULL)
        c->prev->next = c->next;
    else if (st->children == c)
        st->children = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
}

static void lc_state_free(lc_state *st)
{
    free(st->work_dir);
    free(st->runtime);
    free(st->agent_env);
    free(st);
}

static void lc_on_close(uv_handle_t *h)
{
    lc_child *c = h->data;
    if (--c->open_handles > 0)
        return;
    lc_state *st = c->st;
    free(c->worker_id);
    free(c->daemon_id);
    free(c->term_ops);
    free(c);
    if (--st->n_allocated == 0 && st->finishing)
        lc_state_free(st);
}

static void lc_child_close(lc_child *c)
{
    lc_child_unlink(c);
    c->open_handles = 2;
    uv_close((uv_handle_t *)&c->proc, lc_on_close);
    uv_close((uv_handle_t *)&c->kill_timer, lc_on_close);
}

/* An agent that ends unasked takes its worker with it: tell the host now
 * rather than letting it wait for a heartbeat that never comes. */
static void lc_report_gone(lc_state *st, lc_child *c, int64_t exit_status, int term_signal)
{
    char reason[128];
    if (term_signal)
        snprintf(reason, sizeof(reason), "the agent process was killed by signal %d", term_signal);
    else
        snprintf(reason, sizeof(reason), "the agent process exited with status %d",
                 (int)exit_status);
    st->host->log(st->ctx, FERRY_LOG_WARN, "agent %s (worker %s): %s", c->instance_id, c->worker_id,
                  reason);
    if (st->host->struct_size > offsetof(ferry_host_api, instance_gone) && st->host->instance_gone)
        st->host->instance_gone(st->ctx, c->instance_id, reason);
}

static void lc_on_exit(uv_process_t *proc, int64_t exit_status, int term_signal)
{
    lc_child *c = proc->data;
    lc_state *st = c->st;
    uv_timer_stop(&c->kill_timer);
    if (!c->silent) {
        if (c->terminating)
            st->host->log(st->ctx, FERRY_LOG_INFO, "agent %s (worker %s) ended", c->instance_id,
                          c->worker_id);
        else
            lc_report_gone(st, c, exit_status, term_signal);
        for (size_t i = 0; i < c->n_term_ops; i++)
            lc_complete(st, c->term_ops[i], 0, c->instance_id, NULL, NULL);
    }
    c->n_term_ops = 0;
    lc_child_close(c);
}

static void lc_on_kill_timer(uv_timer_t *t)
{
    lc_child *c = t->data;
    if (!c->silent)
        c->st->host->log(c->st->ctx, FERRY_LOG_WARN,
                         "agent %s ignored SIGTERM for %ld ms; killing it", c->instance_id,
                         c->st->grace_ms);
    kill(c->pid, SIGKILL);
}

static void lc_child_terminate(lc_child *c)
{
    if (c->terminating)
        return;
    c->terminating = 1;
    kill(c->pid, SIGTERM);
    uv_timer_start(&c->kill_timer, lc_on_kill_timer, (uint64_t)c->st->grace_ms, 0);
}

/* ------------------------------------------------------------------------ */
/* Launching                                                                */

typedef struct lc_env {
    char **v;
    size_t n;
} lc_env;

static void lc_env_free(lc_env *e)
{
    for (size_t i = 0; i < e->n; i++)
        free(e->v[i]);
    free(e->v);
}

static int lc_env_add(lc_env *e, const char *name, const char *value)
{
    if (asprintf(&e->v[e->n], "%s=%s", name, value) < 0)
        return -1;
    e->v[++e->n] = NULL;
    return 0;
}

/* The length of the NAME in "NAME=value". */
static size_t lc_env_name_len(const char *entry)
{
    const char *eq = strchr(entry, '=');
    return eq ? (size_t)(eq - entry) : strlen(entry);
}

/* Whether `name` (name_len bytes) is in a comma-separated list. */
static int lc_in_list(const char *list, const char *name, size_t name_len)
{
    for (const char *p = list; p != NULL && *p;) {
        size_t n = strcspn(p, ",");
        while (n > 0 && p[0] == ' ')
            p++, n--;
        size_t m = n;
        while (m > 0 && p[m - 1] == ' ')
            m--;
        if (m == name_len && strncmp(p, name, m) == 0)
            return 1;
        p += n;
        if (*p == ',')
            p++;
    }
    return 0;
}

/* Variables an agent needs to run, find its plugins, Docker, proxies and
 * CA bundles. */
static const char lc_env_keep[] =
    "PATH,HOME,USER,LOGNAME,SHELL,LANG,LANGUAGE,TZ,TMPDIR,LD_LIBRARY_PATH,XDG_RUNTIME_DIR,"
    "DOCKER_HOST,DOCKER_CONFIG,DOCKER_CERT_PATH,DOCKER_TLS_VERIFY,SSL_CERT_FILE,SSL_CERT_DIR,"
    "CURL_CA_BUNDLE,http_proxy,https_proxy,no_proxy,HTTP_PROXY,HTTPS_PROXY,NO_PROXY,"
    "ASAN_OPTIONS,UBSAN_OPTIONS,LSAN_OPTIONS";

static int lc_contains(const char *name, size_t name_len, const char *word)
{
    size_t w = strlen(word);
    for (size_t i = 0; i + w <= name_len; i++)
        if (strncmp(name + i, word, w) == 0)
            return 1;
    return 0;
}

/* An allowlist, not a copy: ferryd's environment may hold the operator's
 * cloud credentials, and workers never get those. FERRY_* settings pass,
 * except secrets and what this launch sets itself; the `agent_env` setting
 * names more. */
static int lc_env_passes(const lc_state *st, const char *entry)
{
    size_t n = lc_env_name_len(entry);
    if (lc_in_list(lc_env_keep, entry, n) || lc_in_list(st->agent_env, entry, n))
        return 1;
    if (n > 3 && strncmp(entry, "LC_", 3) == 0)
        return 1;
    if (n <= 6 || strncmp(entry, "FERRY_", 6) != 0)
        return 0;
    return !lc_contains(entry, n, "TOKEN") && !lc_contains(entry, n, "SECRET") &&
           !lc_contains(entry, n, "PASSWORD") && !lc_contains(entry, n, "KEY") &&
           !lc_in_list("FERRY_CA_FILE", entry, n);
}

/* The agent's environment: what passes from ferryd's, plus the bootstrap
 * token (and CA file) of this launch. */
static int lc_env_build(const lc_state *st, lc_env *e, const ferry_launch_request *req)
{
    size_t n = 0;
    while (environ[n] != NULL)
        n++;
    e->v = calloc(n + 3, sizeof(char *));
    if (e->v == NULL)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (!lc_env_passes(st, environ[i]))
            continue;
        if ((e->v[e->n] = strdup(environ[i])) == NULL)
            return -1;
        e->v[++e->n] = NULL;
    }
    if (lc_env_add(e, "FERRY_BOOTSTRAP_TOKEN", req->bootstrap_token) < 0)
        return -1;
    if (req->ca_file != NULL && req->ca_file[0] != '\0')
        return lc_env_add(e, "FERRY_CA_FILE", req->ca_file);
    return 0;
}

/* `slots` was appended to the request: an older host's ends before it.
 * 0 (unset) means one, the agent's own default. */
static int lc_slots(const ferry_launch_request *req)
{
    if (req->struct_size < offsetof(ferry_launch_request, slots) + sizeof(req->slots))
        return 1;
    return req->slots > 1 ? req->slots : 1;
}

static int lc_spawn(lc_state *st, lc_child *c, const ferry_launch_request *req,
                    const char *work_dir, char **env)
{
    char slots[16];
    char *argv[12] = {(char *)req->agent_path,
                      "--server",
                      (char *)req->server_url,
                      "--worker-id",
                      (char *)req->worker_id,
                      "--work-dir",
                      (char *)work_dir,
                      "--runtime",
                      st->runtime};
    /* One slot is the agent's default: its command line stays as it was. */
    if (lc_slots(req) > 1) {
        snprintf(slots, sizeof(slots), "%d", lc_slots(req));
        argv[9] = "--slots";
        argv[10] = slots;
    }
    uv_stdio_container_t stdio[3] = {
        {.flags = UV_IGNORE}, /* /dev/null */
        {.flags = UV_INHERIT_FD, .data.fd = STDOUT_FILENO},
        {.flags = UV_INHERIT_FD, .data.fd = STDERR_FILENO},
    };
    uv_process_options_t opt;
    memset(&opt, 0, sizeof(opt));
    opt.exit_cb = lc_on_exit;
    opt.file = req->agent_path;
    opt.args = argv;
    opt.env = env;
    opt.stdio_count = 3;
    opt.stdio = stdio;
    int rc = uv_spawn(st->loop, &c->proc, &opt);
    c->proc.data = c;
    return rc;
}

static lc_child *lc_child_new(lc_state *st, const ferry_launch_request *req)
{
    lc_child *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->st = st;
    c->worker_id = strdup(req->worker_id);
    c->daemon_id = strdup(req->daemon_id ? req->daemon_id : "");
    if (c->worker_id == NULL || c->daemon_id == NULL) {
        free(c->worker_id);
        free(c->daemon_id);
        free(c);
        return NULL;
    }
    uv_timer_init(st->loop, &c->kill_timer);
    c->kill_timer.data = c;
    st->n_allocated++;
    return c;
}

static int lc_check_request(const ferry_launch_request *req)
{
    if (req == NULL || req->agent_path == NULL || req->agent_path[0] == '\0' ||
        req->server_url == NULL || req->bootstrap_token == NULL)
        return FERRY_EINVAL;
    if (!lc_worker_id_ok(req->worker_id))
        return FERRY_EUNSAFE;
    return 0;
}

static void lc_launch_spawn(lc_state *st, const ferry_launch_request *req, const char *work_dir,
                            ferry_op *op)
{
    lc_env env = {0};
    lc_child *c = lc_env_build(st, &env, req) == 0 ? lc_child_new(st, req) : NULL;
    if (c == NULL) {
        lc_env_free(&env);
        lc_fail(st, op, FERRY_ENOMEM, "launch %s: out of memory", req->worker_id);
        return;
    }
    int rc = lc_spawn(st, c, req, work_dir, env.v);
    lc_env_free(&env);
    if (rc < 0) {
        lc_child_close(c); /* uv_spawn initialised the handle even so */
        lc_fail(st, op, FERRY_ESPAWN, "could not start %s: %s", req->agent_path, uv_strerror(rc));
        return;
    }
    c->pid = c->proc.pid;
    snprintf(c->instance_id, sizeof(c->instance_id), "local-%d", c->pid);
    c->next = st->children;
    if (st->children != NULL)
        st->children->prev = c;
    st->children = c;
    st->host->log(st->ctx, FERRY_LOG_INFO, "launched agent %s for worker %s", c->instance_id,
                  c->worker_id);
    lc_complete(st, op, 0, c->instance_id, NULL, NULL);
}

static int lc_launch(void *state, const ferry_launch_request *req, ferry_op *op)
{
    lc_state *st = state;
    int rc = lc_check_request(req);
    if (rc < 0)
        return rc;
    char work_dir[PATH_MAX];
    if (snprintf(work_dir, sizeof(work_dir), "%s/%s", st->work_dir, req->worker_id) >=
        (int)sizeof(work_dir))
        return FERRY_ETOOBIG;
    /* 0700: the agent keeps snapshots and inputs there. Blocking, but one
     * mkdir per launch. */
    if (lc_mkdirs(work_dir, 0700) != 0) {
        lc_fail(st, op, FERRY_EIO, "create %s: %s", work_dir, strerror(errno));
        return 0;
    }
    lc_launch_spawn(st, req, work_dir, op);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Terminate, list, describe                                                */

static int lc_terminate(void *state, const char *instance_id, ferry_op *op)
{
    lc_state *st = state;
    lc_child *c = lc_find(st, instance_id);
    if (c == NULL) {
        lc_fail(st, op, FERRY_ENOENT, "no running agent %s", instance_id ? instance_id : "");
        return 0;
    }
    ferry_op **ops = realloc(c->term_ops, (c->n_term_ops + 1) * sizeof(*ops));
    if (ops == NULL)
        return FERRY_ENOMEM;
    c->term_ops = ops;
    c->term_ops[c->n_term_ops++] = op;
    lc_child_terminate(c);
    return 0;
}

static int lc_list(void *state, const char *daemon_id, ferry_op *op)
{
    lc_state *st = state;
    json_t *arr = json_array();
    for (lc_child *c = st->children; c != NULL; c = c->next) {
        if (daemon_id != NULL && daemon_id[0] != '\0' && strcmp(daemon_id, c->daemon_id) != 0)
            continue;
        json_array_append_new(arr,
                              json_pack("{s:s, s:s, s:s}", "instance_id", c->instance_id, "state",
                                        lc_child_state(c), "worker_id", c->worker_id));
    }
    char *text = json_dumps(arr, JSON_COMPACT);
    json_decref(arr);
    if (text == NULL)
        return FERRY_ENOMEM;
    lc_complete(st, op, 0, NULL, text, NULL);
    free(text);
    return 0;
}

static int lc_describe(void *state, const char *instance_id, ferry_op *op)
{
    lc_state *st = state;
    lc_child *c = lc_find(st, instance_id);
    if (c == NULL) {
        lc_fail(st, op, FERRY_ENOENT, "no running agent %s", instance_id ? instance_id : "");
        return 0;
    }
    json_t *obj =
        json_pack("{s:s, s:s}", "instance_id", c->instance_id, "state", lc_child_state(c));
    char *text = json_dumps(obj, JSON_COMPACT);
    json_decref(obj);
    if (text == NULL)
        return FERRY_ENOMEM;
    lc_complete(st, op, 0, c->instance_id, text, NULL);
    free(text);
    return 0;
}

static const ferry_compute_ops lc_ops = {
    .struct_size = sizeof(ferry_compute_ops),
    .launch = lc_launch,
    .terminate = lc_terminate,
    .list = lc_list,
    .describe = lc_describe,
};

/* ------------------------------------------------------------------------ */
/* Lifecycle                                                                */

static char *lc_default_work_dir(void)
{
    const char *tmp = getenv("TMPDIR");
    char *dir = NULL;
    if (asprintf(&dir, "%s/ferry-local-%d", tmp && tmp[0] ? tmp : "/tmp", (int)getuid()) < 0)
        return NULL;
    return dir;
}

static int lc_init(ferry_plugin_ctx *ctx, const ferry_host_api *host, void **state,
                   ferry_error_detail *err)
{
    lc_state *st = calloc(1, sizeof(*st));
    if (st == NULL)
        return ferry_error_set(err, FERRY_ENOMEM, 0, NULL, "local: out of memory");
    const char *work_dir = host->config_get(ctx, "work_dir");
    const char *runtime = host->config_get(ctx, "runtime");
    const char *agent_env = host->config_get(ctx, "agent_env");
    st->ctx = ctx;
    st->host = host;
    st->loop = host->loop(ctx);
    st->grace_ms = LC_DEFAULT_GRACE_MS;
    const char *grace = host->config_get(ctx, "terminate_grace_ms");
    if (grace != NULL) {
        char *end;
        st->grace_ms = strtol(grace, &end, 10);
        if (grace[0] == '\0' || *end != '\0' || st->grace_ms < 0) {
            free(st);
            return ferry_error_set(err, FERRY_ECONFIG, 0, NULL,
                                   "local: terminate_grace_ms must be a number of milliseconds, "
                                   "not \"%s\"",
                                   grace);
        }
    }
    st->work_dir = work_dir && work_dir[0] ? strdup(work_dir) : lc_default_work_dir();
    st->runtime = strdup(runtime && runtime[0] ? runtime : "local-process");
    st->agent_env = strdup(agent_env ? agent_env : "");
    if (st->work_dir == NULL || st->runtime == NULL || st->agent_env == NULL) {
        lc_state_free(st);
        return ferry_error_set(err, FERRY_ENOMEM, 0, NULL, "local: out of memory");
    }
    *state = st;
    return 0;
}

/* Asks every agent to end. Ops still waiting are dropped (the host cancels
 * them) and the host is never called again; while the loop keeps running,
 * agents that ignore SIGTERM are killed after the usual delay. */
static void lc_fini(void *state)
{
    lc_state *st = state;
    st->finishing = 1;
    if (st->n_allocated == 0) {
        lc_state_free(st);
        return;
    }
    for (lc_child *c = st->children; c != NULL; c = c->next) {
        c->silent = 1;
        c->n_term_ops = 0;
        lc_child_terminate(c);
    }
}

static const char *const lc_settings[] = {"work_dir", "runtime", "agent_env", "terminate_grace_ms",
                                          NULL};

static const ferry_plugin_descriptor lc_descriptor = {
    .struct_size = sizeof(ferry_plugin_descriptor),
    .abi_major = FERRY_ABI_MAJOR,
    .abi_minor = FERRY_ABI_MINOR,
    .kind = FERRY_PLUGIN_COMPUTE,
    .name = "local",
    .version = "1.0.0",
    .init = lc_init,
    .fini = lc_fini,
    .ops = &lc_ops,
    .settings = lc_settings,
};

FERRY_PLUGIN_DEFINE(lc_descriptor)
