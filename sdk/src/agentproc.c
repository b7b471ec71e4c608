/* ferry-agent processes on the daemon's host: see ferry/agentproc.h.
 *
 * Each child owns two handles (the process and its SIGKILL timer) and is
 * freed when both are closed; the table outlives fini until its last child
 * is freed, because libuv still calls back into both until then.
 */
#include "ferry/agentproc.h"

#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <linux/close_range.h>
#include <unistd.h>

#include <jansson.h>

#include "ferry/error.h"
#include "ferry/file.h"

extern char **environ;

typedef struct ap_child {
    ferry_agentproc *ap;
    struct ap_child *prev, *next; /* live children */
    uv_process_t proc;
    uv_timer_t kill_timer;
    int pid;
    int terminating;
    int silent; /* after fini: never call the host */
    int open_handles;
    char instance_id[48];
    char *worker_id;
    char *daemon_id;
    ferry_op **term_ops; /* terminate calls waiting for the exit */
    size_t n_term_ops;
} ap_child;

struct ferry_agentproc {
    ferry_plugin_ctx *ctx;
    const ferry_host_api *host;
    uv_loop_t *loop;
    char *id_prefix;
    long grace_ms;
    char *env_keep;
    char *env_extra;
    int env_ferry;
    ap_child *children;
    size_t n_allocated; /* children not freed yet */
    int finishing;
};

/* ------------------------------------------------------------------------ */
/* Helpers                                                                  */

static void ap_complete(ferry_agentproc *ap, ferry_op *op, int status, const char *instance_id,
                        const char *text)
{
    ferry_op_result r = {.struct_size = sizeof(r), .instance_id = instance_id, .text = text};
    ap->host->op_complete(op, status, &r);
}

int ferry_agentproc_mkdirs(char *path, mode_t mode)
{
    return ferry_file_mkdirs(path, mode) == 0 ? 0 : -1;
}

int ferry_agentproc_worker_id_ok(const char *id)
{
    return id != NULL && id[0] != '\0' && strchr(id, '/') == NULL && strcmp(id, ".") != 0 &&
           strcmp(id, "..") != 0;
}

static ap_child *ap_find(const ferry_agentproc *ap, const char *instance_id)
{
    for (ap_child *c = ap->children; c != NULL; c = c->next)
        if (instance_id != NULL && strcmp(c->instance_id, instance_id) == 0)
            return c;
    return NULL;
}

static const char *ap_child_state(const ap_child *c)
{
    return c->terminating ? "shutting-down" : "running";
}

static void ap_free(ferry_agentproc *ap)
{
    free(ap->id_prefix);
    free(ap->env_keep);
    free(ap->env_extra);
    free(ap);
}

ferry_agentproc *ferry_agentproc_new(const ferry_agentproc_config *cfg)
{
    ferry_agentproc *ap = calloc(1, sizeof(*ap));
    if (ap == NULL)
        return NULL;
    ap->ctx = cfg->ctx;
    ap->host = cfg->host;
    ap->loop = cfg->loop;
    ap->grace_ms = cfg->grace_ms;
    ap->env_ferry = cfg->env_ferry;
    ap->id_prefix = strdup(cfg->id_prefix ? cfg->id_prefix : "agent");
    ap->env_keep = strdup(cfg->env_keep ? cfg->env_keep : "");
    ap->env_extra = strdup(cfg->env_extra ? cfg->env_extra : "");
    if (ap->id_prefix == NULL || ap->env_keep == NULL || ap->env_extra == NULL) {
        ap_free(ap);
        return NULL;
    }
    return ap;
}

/* ------------------------------------------------------------------------ */
/* Children                                                                 */

static void ap_child_unlink(ap_child *c)
{
    ferry_agentproc *ap = c->ap;
    if (c->prev != NULL)
        c->prev->next = c->next;
    else if (ap->children == c)
        ap->children = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
}

static void ap_on_close(uv_handle_t *h)
{
    ap_child *c = h->data;
    if (--c->open_handles > 0)
        return;
    ferry_agentproc *ap = c->ap;
    free(c->worker_id);
    free(c->daemon_id);
    free(c->term_ops);
    free(c);
    if (--ap->n_allocated == 0 && ap->finishing)
        ap_free(ap);
}

static void ap_child_close(ap_child *c)
{
    ap_child_unlink(c);
    c->open_handles = 2;
    uv_close((uv_handle_t *)&c->proc, ap_on_close);
    uv_close((uv_handle_t *)&c->kill_timer, ap_on_close);
}

/* An agent that ends unasked takes its worker with it: tell the host now,
 * as a cloud reports a reclaimed instance, rather than letting it wait for a
 * heartbeat that never comes. */
static void ap_report_gone(ferry_agentproc *ap, ap_child *c, int64_t exit_status, int term_signal)
{
    char reason[128];
    if (term_signal)
        snprintf(reason, sizeof(reason), "the agent process was killed by signal %d", term_signal);
    else
        snprintf(reason, sizeof(reason), "the agent process exited with status %d",
                 (int)exit_status);
    ap->host->log(ap->ctx, FERRY_LOG_WARN, "agent %s (worker %s): %s", c->instance_id, c->worker_id,
                  reason);
    if (FERRY_HAS_FIELD(ap->host, ferry_host_api, instance_gone) && ap->host->instance_gone)
        ap->host->instance_gone(ap->ctx, c->instance_id, reason);
}

static void ap_on_exit(uv_process_t *proc, int64_t exit_status, int term_signal)
{
    ap_child *c = proc->data;
    ferry_agentproc *ap = c->ap;
    uv_timer_stop(&c->kill_timer);
    if (!c->silent) {
        if (c->terminating)
            ap->host->log(ap->ctx, FERRY_LOG_INFO, "agent %s (worker %s) ended", c->instance_id,
                          c->worker_id);
        else
            ap_report_gone(ap, c, exit_status, term_signal);
        for (size_t i = 0; i < c->n_term_ops; i++)
            ap_complete(ap, c->term_ops[i], 0, c->instance_id, NULL);
    }
    c->n_term_ops = 0;
    ap_child_close(c);
}

static void ap_on_kill_timer(uv_timer_t *t)
{
    ap_child *c = t->data;
    if (!c->silent)
        c->ap->host->log(c->ap->ctx, FERRY_LOG_WARN,
                         "agent %s ignored SIGTERM for %ld ms; killing it", c->instance_id,
                         c->ap->grace_ms);
    kill(c->pid, SIGKILL);
}

static void ap_child_terminate(ap_child *c)
{
    if (c->terminating)
        return;
    c->terminating = 1;
    kill(c->pid, SIGTERM);
    uv_timer_start(&c->kill_timer, ap_on_kill_timer, (uint64_t)c->ap->grace_ms, 0);
}

/* ------------------------------------------------------------------------ */
/* The agent's environment                                                  */

typedef struct ap_env {
    char **v;
    size_t n;
} ap_env;

static void ap_env_free(ap_env *e)
{
    for (size_t i = 0; i < e->n; i++)
        free(e->v[i]);
    free(e->v);
}

static int ap_env_add(ap_env *e, const char *name, const char *value)
{
    if (asprintf(&e->v[e->n], "%s=%s", name, value) < 0)
        return -1;
    e->v[++e->n] = NULL;
    return 0;
}

/* The length of the NAME in "NAME=value". */
static size_t ap_env_name_len(const char *entry)
{
    const char *eq = strchr(entry, '=');
    return eq ? (size_t)(eq - entry) : strlen(entry);
}

/* Whether `name` (name_len bytes) is in a comma-separated list. An empty
 * name never is, so an empty item in the list matches nothing. */
static int ap_in_list(const char *list, const char *name, size_t name_len)
{
    if (name_len == 0)
        return 0;
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

static int ap_contains(const char *name, size_t name_len, const char *word)
{
    size_t w = strlen(word);
    for (size_t i = 0; i + w <= name_len; i++)
        if (strncmp(name + i, word, w) == 0)
            return 1;
    return 0;
}

/* An allowlist, not a copy: ferryd's environment may hold the operator's
 * cloud credentials, and workers never get those. */
static int ap_env_passes(const ferry_agentproc *ap, const char *entry)
{
    size_t n = ap_env_name_len(entry);
    if (ap_in_list(ap->env_keep, entry, n) || ap_in_list(ap->env_extra, entry, n))
        return 1;
    if (!ap->env_ferry)
        return 0;
    if (n > 3 && strncmp(entry, "LC_", 3) == 0)
        return 1;
    if (n <= 6 || strncmp(entry, "FERRY_", 6) != 0)
        return 0;
    return !ap_contains(entry, n, "TOKEN") && !ap_contains(entry, n, "SECRET") &&
           !ap_contains(entry, n, "PASSWORD") && !ap_contains(entry, n, "KEY") &&
           !ap_in_list("FERRY_CA_FILE", entry, n);
}

/* What passes from ferryd's environment, plus the bootstrap token (and CA
 * file) of this launch. */
static int ap_env_build(const ferry_agentproc *ap, ap_env *e, const ferry_agentproc_spawn_args *a)
{
    size_t n = 0;
    while (environ[n] != NULL)
        n++;
    e->v = calloc(n + 3, sizeof(char *));
    if (e->v == NULL)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (!ap_env_passes(ap, environ[i]))
            continue;
        if ((e->v[e->n] = strdup(environ[i])) == NULL)
            return -1;
        e->v[++e->n] = NULL;
    }
    if (ap_env_add(e, "FERRY_BOOTSTRAP_TOKEN", a->bootstrap_token) < 0)
        return -1;
    if (a->ca_file != NULL && a->ca_file[0] != '\0')
        return ap_env_add(e, "FERRY_CA_FILE", a->ca_file);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Spawning                                                                 */

/* The agent's command line; NULL when out of memory. The strings are a's,
 * but for the --runtime-setting values, which live in *settings_copy. */
static char **ap_argv(const ferry_agentproc_spawn_args *a, char *slots, size_t slots_cap,
                      char **settings_copy)
{
    size_t n_settings = 0;
    for (const char *p = a->runtime_settings; p && *p; p++)
        n_settings += *p == '\n';
    char **argv = calloc(12 + 2 * (n_settings + 1), sizeof(*argv));
    *settings_copy = a->runtime_settings ? strdup(a->runtime_settings) : NULL;
    if (argv == NULL || (a->runtime_settings && *settings_copy == NULL)) {
        free(argv);
        free(*settings_copy);
        return NULL;
    }
    int n = 0;
    argv[n++] = (char *)a->file;
    argv[n++] = "--server";
    argv[n++] = (char *)a->server_url;
    argv[n++] = "--worker-id";
    argv[n++] = (char *)a->worker_id;
    if (a->work_dir != NULL) {
        argv[n++] = "--work-dir";
        argv[n++] = (char *)a->work_dir;
        argv[n++] = "--runtime";
        argv[n++] = (char *)a->runtime;
    }
    if (a->slots > 0) {
        snprintf(slots, slots_cap, "%d", a->slots);
        argv[n++] = "--slots";
        argv[n++] = slots;
    }
    char *save = NULL;
    for (char *line = *settings_copy ? strtok_r(*settings_copy, "\n", &save) : NULL; line;
         line = strtok_r(NULL, "\n", &save)) {
        argv[n++] = "--runtime-setting";
        argv[n++] = line;
    }
    argv[n] = NULL;
    return argv;
}

static int ap_uv_spawn(ferry_agentproc *ap, ap_child *c, const ferry_agentproc_spawn_args *a,
                       char **env)
{
    char slots[16], *settings = NULL;
    char **argv = ap_argv(a, slots, sizeof(slots), &settings);
    if (argv == NULL)
        return UV_ENOMEM;
    uv_stdio_container_t stdio[3] = {
        {.flags = UV_IGNORE}, /* /dev/null */
        {.flags = UV_INHERIT_FD, .data.fd = STDOUT_FILENO},
        {.flags = UV_INHERIT_FD, .data.fd = STDERR_FILENO},
    };
    uv_process_options_t opt;
    memset(&opt, 0, sizeof(opt));
    opt.exit_cb = ap_on_exit;
    opt.file = a->file;
    opt.args = argv;
    opt.env = env;
    opt.stdio_count = 3;
    opt.stdio = stdio;
    /* Its own session: a Ctrl-C to ferryd's terminal (a signal to the
     * process group) must not reach the agents, which outlive a stop of
     * ferryd. No parent-death signal is asked for; stdout and stderr are
     * ferryd's, and the agent ignores SIGPIPE, so a log pipe that closes
     * with ferryd does not end it either. */
    opt.flags = UV_PROCESS_DETACHED;
    /* An agent must not hold ferryd's files and sockets (it outlives ferryd
     * across a restart). */
    close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);
    int rc = uv_spawn(ap->loop, &c->proc, &opt);
    c->proc.data = c;
    free(argv);
    free(settings);
    return rc;
}

static ap_child *ap_child_new(ferry_agentproc *ap, const ferry_agentproc_spawn_args *a)
{
    ap_child *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->ap = ap;
    c->worker_id = strdup(a->worker_id);
    c->daemon_id = strdup(a->daemon_id ? a->daemon_id : "");
    if (c->worker_id == NULL || c->daemon_id == NULL) {
        free(c->worker_id);
        free(c->daemon_id);
        free(c);
        return NULL;
    }
    uv_timer_init(ap->loop, &c->kill_timer);
    c->kill_timer.data = c;
    ap->n_allocated++;
    return c;
}

int ferry_agentproc_spawn(ferry_agentproc *ap, const ferry_agentproc_spawn_args *a,
                          const char **instance_id, int *uv_error)
{
    ap_env env = {0};
    ap_child *c = ap_env_build(ap, &env, a) == 0 ? ap_child_new(ap, a) : NULL;
    if (c == NULL) {
        ap_env_free(&env);
        return FERRY_ENOMEM;
    }
    int rc = ap_uv_spawn(ap, c, a, env.v);
    ap_env_free(&env);
    if (rc < 0) {
        ap_child_close(c); /* uv_spawn initialised the handle even so */
        if (uv_error != NULL)
            *uv_error = rc;
        return FERRY_ESPAWN;
    }
    c->pid = c->proc.pid;
    snprintf(c->instance_id, sizeof(c->instance_id), "%s-%d", ap->id_prefix, c->pid);
    c->next = ap->children;
    if (ap->children != NULL)
        ap->children->prev = c;
    ap->children = c;
    if (instance_id != NULL)
        *instance_id = c->instance_id;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Terminate, list, describe, fini                                          */

int ferry_agentproc_terminate(ferry_agentproc *ap, const char *instance_id, ferry_op *op)
{
    ap_child *c = ap_find(ap, instance_id);
    if (c == NULL)
        return FERRY_ENOENT;
    ferry_op **ops = realloc(c->term_ops, (c->n_term_ops + 1) * sizeof(*ops));
    if (ops == NULL)
        return FERRY_ENOMEM;
    c->term_ops = ops;
    c->term_ops[c->n_term_ops++] = op;
    ap_child_terminate(c);
    return 0;
}

const char *ferry_agentproc_state(const ferry_agentproc *ap, const char *instance_id)
{
    const ap_child *c = ap_find(ap, instance_id);
    return c ? ap_child_state(c) : NULL;
}

/* Takes `j`. */
static int ap_complete_json(ferry_agentproc *ap, ferry_op *op, const char *instance_id, json_t *j)
{
    char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (text == NULL)
        return FERRY_ENOMEM;
    ap_complete(ap, op, 0, instance_id, text);
    free(text);
    return 0;
}

int ferry_agentproc_list(ferry_agentproc *ap, const char *daemon_id, ferry_op *op)
{
    json_t *arr = json_array();
    for (ap_child *c = ap->children; c != NULL; c = c->next) {
        if (daemon_id != NULL && daemon_id[0] != '\0' && strcmp(daemon_id, c->daemon_id) != 0)
            continue;
        json_array_append_new(arr,
                              json_pack("{s:s, s:s, s:s}", "instance_id", c->instance_id, "state",
                                        ap_child_state(c), "worker_id", c->worker_id));
    }
    return ap_complete_json(ap, op, NULL, arr);
}

int ferry_agentproc_describe(ferry_agentproc *ap, const char *instance_id,
                             const char *unknown_state, ferry_op *op)
{
    const char *state = ferry_agentproc_state(ap, instance_id);
    if (state == NULL && unknown_state == NULL)
        return FERRY_ENOENT;
    json_t *j = json_pack("{s:s, s:s}", "instance_id", instance_id ? instance_id : "", "state",
                          state ? state : unknown_state);
    return ap_complete_json(ap, op, instance_id, j);
}

/* No more calls: 1 when nothing was left and the table is freed, else 0
 * (the children are the caller's to end or let go). */
static int ap_finishing(ferry_agentproc *ap)
{
    if (ap == NULL)
        return 1;
    ap->finishing = 1;
    if (ap->n_allocated != 0)
        return 0;
    ap_free(ap);
    return 1;
}

void ferry_agentproc_fini(ferry_agentproc *ap)
{
    if (ap_finishing(ap))
        return;
    for (ap_child *c = ap->children; c != NULL; c = c->next) {
        c->silent = 1;
        c->n_term_ops = 0;
        ap_child_terminate(c);
    }
}

void ferry_agentproc_release(ferry_agentproc *ap)
{
    if (ap_finishing(ap))
        return;
    /* Closing a process handle leaves the process alone; the table goes
     * once the handles are closed. */
    while (ap->children != NULL) {
        ap_child *c = ap->children;
        c->silent = 1;
        c->n_term_ops = 0;
        uv_timer_stop(&c->kill_timer);
        ap_child_close(c);
    }
}
