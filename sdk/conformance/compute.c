/* ferry-conformance: compute plugins (sdk/include/ferry/compute.h).
 *
 * The launch request names a fake agent as agent_path: a shell script that
 * records its argv and environment, then waits for SIGTERM. So these checks
 * suit plugins that start the agent on this machine (local, or a VM image
 * that runs agent_path); a cloud plugin that never runs agent_path fails
 * the agent checks.
 */
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "conformance.h"
#include "util.h"

#define FERRY__AGENT_TIMEOUT_MS 15000
#define FERRY__MAX_AGENTS 16

typedef struct ferry__compute {
    ferry_conf_inst *ci;
    const ferry_compute_ops *ops;
    void *st;
    char *agents; /* where the fake agents record themselves */
    char *agent;  /* the fake agent */
    char daemon_id[64];
    char token[64];
    char server_url[128];
    int pids[FERRY__MAX_AGENTS]; /* agents seen so far */
    int n_pids;
} ferry__compute;

/* Writes the record files only after the trap is set, so "ready" means
 * SIGTERM is handled. Its stdio is /dev/null: a leftover must not hold the
 * test runner's pipes open. */
static const char ferry__agent_script[] =
    "#!/bin/sh\n"
    "# ferry-conformance fake agent: records how it was started, then waits.\n"
    "exec </dev/null >/dev/null 2>&1\n"
    "rec='%s'/agent-$$\n"
    "for a in \"$0\" \"$@\"; do printf '%%s\\n' \"$a\"; done > \"$rec.argv\"\n"
    "env > \"$rec.env\"\n"
    "trap ': > \"$rec.term\"; kill $! 2>/dev/null; exit 0' TERM\n"
    ": > \"$rec.ready\"\n"
    "sleep 60 & wait\n";

static const char *const ferry__states[] = {"pending", "running", "shutting-down", "terminated"};

static int ferry__state_known(const char *state)
{
    for (size_t i = 0; i < sizeof(ferry__states) / sizeof(ferry__states[0]); i++)
        if (state != NULL && strcmp(state, ferry__states[i]) == 0)
            return 1;
    return 0;
}

static int ferry__state_ending(const char *state)
{
    return state != NULL &&
           (strcmp(state, "shutting-down") == 0 || strcmp(state, "terminated") == 0);
}

/* ------------------------------------------------------------------------ */
/* Agents                                                                   */

/* A zombie nobody reaped yet is dead for these checks. */
static int ferry__alive(int pid)
{
    if (pid <= 0 || kill(pid, 0) != 0)
        return 0;
    char path[64], buf[512];
    snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return 1;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *paren = strrchr(buf, ')');
    return paren == NULL || paren[1] == '\0' || paren[2] != 'Z';
}

static int ferry__seen(const ferry__compute *c, int pid)
{
    for (int i = 0; i < c->n_pids; i++)
        if (c->pids[i] == pid)
            return 1;
    return 0;
}

/* The pid of an agent that got ready since the last call, or 0. */
static int ferry__new_agent(ferry__compute *c)
{
    DIR *d = opendir(c->agents);
    if (d == NULL)
        return 0;
    int found = 0;
    struct dirent *e;
    while (found == 0 && (e = readdir(d)) != NULL) {
        int pid = 0;
        char tail[16];
        if (sscanf(e->d_name, "agent-%d.%15s", &pid, tail) == 2 && strcmp(tail, "ready") == 0 &&
            !ferry__seen(c, pid) && c->n_pids < FERRY__MAX_AGENTS) {
            c->pids[c->n_pids++] = pid;
            found = pid;
        }
    }
    closedir(d);
    return found;
}

typedef struct ferry__agent_wait {
    ferry__compute *c;
    int pid;
} ferry__agent_wait;

static int ferry__agent_ready(void *arg)
{
    ferry__agent_wait *w = arg;
    w->pid = ferry__new_agent(w->c);
    return w->pid != 0;
}

static int ferry__wait_agent(ferry__compute *c)
{
    ferry__agent_wait w = {c, 0};
    ferry_conf_run_until(ferry__agent_ready, &w, FERRY__AGENT_TIMEOUT_MS);
    return w.pid;
}

static int ferry__agent_gone(void *arg)
{
    return !ferry__alive(*(int *)arg);
}

static char *ferry__record(const ferry__compute *c, int pid, const char *what)
{
    char *path = ferry_asprintf("%s/agent-%d.%s", c->agents, pid, what);
    char *text = ferry_read_file(path, NULL);
    free(path);
    return text ? text : ferry_strdup("");
}

/* Whether `text` has a line that is exactly `line`. */
static int ferry__has_line(const char *text, const char *line)
{
    size_t n = strlen(line);
    for (const char *p = text; (p = strstr(p, line)) != NULL; p++)
        if ((p == text || p[-1] == '\n') && (p[n] == '\n' || p[n] == '\0'))
            return 1;
    return 0;
}

/* Whether an environment dump has a variable whose value is `value`. */
static int ferry__env_has_value(const char *env, const char *value)
{
    for (const char *line = env; *line;) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        const char *eq = memchr(line, '=', len);
        if (eq && len - (size_t)(eq + 1 - line) == strlen(value) &&
            strncmp(eq + 1, value, strlen(value)) == 0)
            return 1;
        line += len + (end ? 1 : 0);
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Ops                                                                      */

static ferry_launch_request ferry__request(const ferry__compute *c, const char *worker,
                                           const char *agent_path)
{
    ferry_launch_request req = {
        .struct_size = sizeof(req),
        .daemon_id = c->daemon_id,
        .environment = "conformance",
        .worker_id = worker,
        .server_url = c->server_url,
        .bootstrap_token = c->token,
        .agent_path = agent_path,
        .client_token = worker,
    };
    return req;
}

static ferry_conf_op *ferry__launch_start(ferry_conf_inst *ci, const ferry_launch_request *req)
{
    const ferry_compute_ops *ops = &ferry_conf_plugin()->ops.compute;
    ferry_conf_op *o = ferry_conf_op_begin(ci, "launch %s", req->worker_id);
    ferry_conf_op_started(o, ops->launch(ferry_plugin_instance_state(ci->inst), req, o->op));
    return o;
}

static ferry_conf_op *ferry__launch(ferry__compute *c, const ferry_launch_request *req)
{
    ferry_conf_op *o = ferry__launch_start(c->ci, req);
    ferry_conf_op_wait(o, FERRY_CONF_OP_TIMEOUT_MS);
    return o;
}

static ferry_conf_op *ferry__terminate(ferry__compute *c, const char *id)
{
    ferry_conf_op *o = ferry_conf_op_begin(c->ci, "terminate %s", id);
    ferry_conf_op_started(o, c->ops->terminate(c->st, id, o->op));
    ferry_conf_op_wait(o, FERRY_CONF_OP_TIMEOUT_MS);
    return o;
}

static ferry_conf_op *ferry__describe(ferry__compute *c, const char *id)
{
    ferry_conf_op *o = ferry_conf_op_begin(c->ci, "describe %s", id);
    ferry_conf_op_started(o, c->ops->describe(c->st, id, o->op));
    ferry_conf_op_wait(o, FERRY_CONF_OP_TIMEOUT_MS);
    return o;
}

/* The list of `daemon_id` as JSON, or NULL (then *op says why). */
static json_t *ferry__list(ferry__compute *c, const char *daemon_id, ferry_conf_op **op)
{
    ferry_conf_op *o = ferry_conf_op_begin(c->ci, "list %s", daemon_id);
    ferry_conf_op_started(o, c->ops->list(c->st, daemon_id, o->op));
    ferry_conf_op_wait(o, FERRY_CONF_OP_TIMEOUT_MS);
    *op = o;
    if (ferry_conf_op_result(o) != 0 || o->text == NULL)
        return NULL;
    return json_loads(o->text, 0, NULL);
}

static int ferry__check_op(const ferry_conf_op *o, int pass, const char *what)
{
    char buf[768];
    if (!ferry_conf_check(pass, "compute: %s", what))
        ferry_conf_diag("%s", ferry_conf_op_outcome(o, buf, sizeof(buf)));
    return pass;
}

/* ------------------------------------------------------------------------ */
/* Listings                                                                 */

/* Every entry an object of three strings, the state a known one. */
static int ferry__list_shape_ok(json_t *arr)
{
    if (!json_is_array(arr))
        return 0;
    size_t i;
    json_t *e;
    json_array_foreach(arr, i, e)
    {
        if (!json_is_string(json_object_get(e, "instance_id")) ||
            !json_is_string(json_object_get(e, "worker_id")) ||
            !ferry__state_known(json_string_value(json_object_get(e, "state"))))
            return 0;
    }
    return 1;
}

static json_t *ferry__list_entry(json_t *arr, const char *id)
{
    size_t i;
    json_t *e;
    json_array_foreach(arr, i, e)
    {
        const char *v = json_string_value(json_object_get(e, "instance_id"));
        if (v != NULL && strcmp(v, id) == 0)
            return e;
    }
    return NULL;
}

static void ferry__check_listed(ferry__compute *c, const char *id, const char *worker)
{
    if (c->ops->list == NULL) {
        ferry_conf_skip("list is not provided", "compute: list holds the instance");
        return;
    }
    ferry_conf_op *o;
    json_t *arr = ferry__list(c, c->daemon_id, &o);
    json_t *e = ferry__list_entry(arr, id);
    const char *state = json_string_value(json_object_get(e, "state"));
    const char *w = json_string_value(json_object_get(e, "worker_id"));
    ferry__check_op(o,
                    ferry__list_shape_ok(arr) && e != NULL && !ferry__state_ending(state) &&
                        w != NULL && strcmp(w, worker) == 0,
                    "list of the daemon_id holds the instance, its worker_id and a live state");
    json_decref(arr);
    char *other = ferry_asprintf("%s-other", c->daemon_id);
    arr = ferry__list(c, other, &o);
    ferry__check_op(o, json_is_array(arr) && ferry__list_entry(arr, id) == NULL,
                    "list of another daemon_id leaves the instance out");
    json_decref(arr);
    free(other);
}

static void ferry__check_described(ferry__compute *c, const char *id)
{
    if (c->ops->describe == NULL) {
        ferry_conf_skip("describe is not provided", "compute: describe gives the instance's state");
        return;
    }
    ferry_conf_op *o = ferry__describe(c, id);
    json_t *obj = o->text ? json_loads(o->text, 0, NULL) : NULL;
    const char *got = json_string_value(json_object_get(obj, "instance_id"));
    ferry__check_op(o,
                    ferry_conf_op_result(o) == 0 && got != NULL && strcmp(got, id) == 0 &&
                        ferry__state_known(json_string_value(json_object_get(obj, "state"))),
                    "describe gives {instance_id, state} of the instance");
    json_decref(obj);
}

/* After terminate: gone from list and describe, or listed as ending. */
static void ferry__check_gone(ferry__compute *c, const char *id)
{
    if (c->ops->list != NULL) {
        ferry_conf_op *o;
        json_t *arr = ferry__list(c, c->daemon_id, &o);
        json_t *e = ferry__list_entry(arr, id);
        ferry__check_op(o,
                        json_is_array(arr) && (e == NULL || ferry__state_ending(json_string_value(
                                                                json_object_get(e, "state")))),
                        "after terminate, list shows the instance gone or ending");
        json_decref(arr);
    }
    if (c->ops->describe != NULL) {
        ferry_conf_op *o = ferry__describe(c, id);
        json_t *obj = o->text ? json_loads(o->text, 0, NULL) : NULL;
        int r = ferry_conf_op_result(o);
        ferry__check_op(
            o,
            r == FERRY_ENOENT ||
                (r == 0 && ferry__state_ending(json_string_value(json_object_get(obj, "state")))),
            "after terminate, describe gives FERRY_ENOENT or an ending state");
        json_decref(obj);
    }
}

/* ------------------------------------------------------------------------ */
/* Checks                                                                   */

static void ferry__check_agent(ferry__compute *c, int pid, const char *worker)
{
    char *argv = ferry__record(c, pid, "argv");
    char *env = ferry__record(c, pid, "env");
    int url = ferry__has_line(argv, c->server_url) || ferry__env_has_value(env, c->server_url);
    int id = ferry__has_line(argv, worker) || ferry__env_has_value(env, worker);
    if (!ferry_conf_check(url && id, "compute: the agent gets the server URL and its worker id"))
        ferry_conf_diag("argv: %s", argv);
    char *want = ferry_asprintf("FERRY_BOOTSTRAP_TOKEN=%s", c->token);
    ferry_conf_check(ferry__has_line(env, want),
                     "compute: the agent gets the bootstrap token in FERRY_BOOTSTRAP_TOKEN");
    ferry_conf_check(strstr(argv, c->token) == NULL,
                     "compute: the bootstrap token is not on the agent's command line");
    free(want);
    free(argv);
    free(env);
}

static void ferry__check_terminate(ferry__compute *c, const char *id, int pid)
{
    ferry_conf_op *o = ferry__terminate(c, id);
    ferry__check_op(o, ferry_conf_op_result(o) == 0, "terminate completes with 0");
    if (pid > 0) {
        int gone = ferry_conf_run_until(ferry__agent_gone, &pid, FERRY__AGENT_TIMEOUT_MS);
        ferry_conf_check(gone, "compute: after terminate, the agent process ends");
    }
    ferry__check_gone(c, id);
}

static void ferry__check_lifecycle(ferry__compute *c)
{
    const char *worker = "conformance-worker-1";
    ferry_launch_request req = ferry__request(c, worker, c->agent);
    ferry_conf_op *o = ferry__launch(c, &req);
    if (!ferry__check_op(
            o, ferry_conf_op_result(o) == 0 && o->instance_id != NULL && o->instance_id[0] != '\0',
            "launch completes with 0 and an instance_id"))
        return;
    char *id = ferry_strdup(o->instance_id);
    int pid = ferry__wait_agent(c);
    if (ferry_conf_check(pid != 0, "compute: the agent at agent_path starts"))
        ferry__check_agent(c, pid, worker);
    ferry__check_listed(c, id, worker);
    ferry__check_described(c, id);
    ferry__check_terminate(c, id, pid);
    free(id);
}

static void ferry__check_unknown_instance(ferry__compute *c)
{
    ferry_conf_op *o = ferry__terminate(c, "ferry-conformance-no-such-instance");
    int r = ferry_conf_op_result(o);
    ferry__check_op(o, r == 0 || r == FERRY_ENOENT,
                    "terminate of an unknown instance completes with 0 or FERRY_ENOENT");
}

/* A launch whose agent cannot start fails with a detail (that never holds
 * the token: the summary's secret check covers the message). */
static void ferry__check_bad_agent(ferry__compute *c)
{
    char *missing = ferry_asprintf("%s/no-such-agent", c->agents);
    ferry_launch_request req = ferry__request(c, "conformance-worker-2", missing);
    ferry_conf_op *o = ferry__launch(c, &req);
    ferry__check_op(o, o->rc < 0 || (o->done && o->status < 0 && o->plugin_detail),
                    "a launch whose agent_path does not exist fails with an error detail");
    if (ferry_conf_op_result(o) == 0 && o->instance_id != NULL)
        ferry__terminate(c, o->instance_id);
    free(missing);
}

/* A second instance freed right after a launch: the launch completes once
 * and nothing calls back after fini (the summary counts that). */
static void ferry__check_free_in_flight(ferry__compute *c, const ferry_settings *settings)
{
    ferry_conf_inst *ci = ferry_conf_instance_new(settings);
    if (!ferry_conf_check(ci->inst != NULL,
                          "compute: a second instance with the same settings inits"))
        return;
    ferry_launch_request req = ferry__request(c, "conformance-worker-3", c->agent);
    ferry_conf_op *o = ferry__launch_start(ci, &req);
    ferry_conf_instance_free(ci);
    if (!ferry_conf_check(o->rc < 0 || (o->done == 1 && o->completions <= 1),
                          "compute: freeing the instance right after a launch completes the "
                          "launch exactly once"))
        ferry_conf_diag("%d completion(s) by the plugin, %d done", o->completions, o->done);
}

/* Agents are children of this process: none may outlive the checks. */
static void ferry__kill_agents(ferry__compute *c)
{
    while (ferry__new_agent(c) != 0)
        ;
    for (int i = 0; i < c->n_pids; i++) {
        if (!ferry__alive(c->pids[i]))
            continue;
        printf("# agent %d still runs at the end; killing it\n", c->pids[i]);
        kill(c->pids[i], SIGKILL);
    }
}

static int ferry__write_agent(ferry__compute *c, const char *dir)
{
    c->agents = ferry_asprintf("%s/agents", dir);
    c->agent = ferry_asprintf("%s/fake-agent.sh", dir);
    if (strchr(c->agents, '\'') != NULL || ferry_file_mkdirs(c->agents, 0755) != 0)
        return -1;
    char *script = ferry_asprintf(ferry__agent_script, c->agents);
    int rc = ferry_write_file(c->agent, script, strlen(script));
    free(script);
    return rc == 0 ? chmod(c->agent, 0755) : rc;
}

void ferry_conf_compute(ferry_conf_inst *ci, const ferry_settings *settings, const char *dir)
{
    ferry__compute c = {.ci = ci,
                        .ops = &ferry_conf_plugin()->ops.compute,
                        .st = ferry_plugin_instance_state(ci->inst)};
    char hex[17];
    ferry_random_hex(hex, 8);
    snprintf(c.daemon_id, sizeof(c.daemon_id), "ferry-conformance-%s", hex);
    snprintf(c.server_url, sizeof(c.server_url), "http://127.0.0.1:9/ferry-conformance-%s", hex);
    ferry_random_hex(hex, 8);
    snprintf(c.token, sizeof(c.token), "conformance-token-%s", hex);
    ferry_conf_watch_secret(c.token);
    /* A plugin that hands the agent this process's environment as is must
     * not pass the token check by luck. */
    setenv("FERRY_BOOTSTRAP_TOKEN", "ferry-conformance-inherited-decoy", 1);
    if (ferry__write_agent(&c, dir) == 0) {
        ferry__check_lifecycle(&c);
        ferry__check_unknown_instance(&c);
        ferry__check_bad_agent(&c);
        ferry__check_free_in_flight(&c, settings);
        ferry__kill_agents(&c);
    } else {
        ferry_conf_check(0, "compute: the checks can write their fake agent to %s", c.agent);
    }
    free(c.agents);
    free(c.agent);
}
