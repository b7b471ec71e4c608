/* The agent's life: register with the bootstrap token (or join a static
 * environment with its join token), then keep exactly one long poll in
 * flight. The poll is the heartbeat: it carries the executions this agent
 * holds and its free slots, and brings work and stop orders.
 *
 * A restart picks up where the last run stopped: the agent's own token is
 * kept in <work-dir>/agent.json (0600; a bootstrap token is spent at the
 * first registration), and every folder left in <work-dir>/executions is
 * reported: its unsent events, its outputs, its result.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent.h"
#include "log.h"
#include "util.h"

#define AGENT_POLL_SLACK_S 30         /* how much longer than poll_timeout a poll may take */
#define AGENT_SHUTDOWN_EXTRA_MS 60000 /* reporting time after the grace on shutdown */
#define AGENT_LAST_DEADLINE_MS 15000  /* after giving up: time for the runs to end */

static void agent_poll(agent *a);
static void agent_close(agent *a);
static void agent_register(agent *a);

static int agent_busy_slots(agent *a)
{
    int n = 0;
    for (execution *ex = a->executions; ex; ex = execution_next(ex))
        n += execution_holds_slot(ex);
    return n;
}

static execution *agent_find(agent *a, const char *id)
{
    for (execution *ex = a->executions; ex; ex = execution_next(ex))
        if (strcmp(execution_id(ex), id) == 0)
            return ex;
    return NULL;
}

/* ---- the agent's token across restarts ---- */

static char *agent_creds_path(const agent *a)
{
    return ferry_asprintf("%s/agent.json", a->cfg.work_dir);
}

static int agent_same(const char *x, const char *y)
{
    return (x == NULL && y == NULL) || (x && y && strcmp(x, y) == 0);
}

/* The token of an earlier run against the same ferryd, as the same worker. */
static void agent_load_creds(agent *a)
{
    char *path = agent_creds_path(a);
    json_t *j = json_load_file(path, 0, NULL);
    free(path);
    const char *server = json_string_value(json_object_get(j, "server"));
    const char *token = json_string_value(json_object_get(j, "token"));
    const char *id = json_string_value(json_object_get(j, "agent_id"));
    if (server && token && id && strcmp(server, a->cfg.server_url) == 0 &&
        agent_same(json_string_value(json_object_get(j, "worker_id")), a->cfg.worker_id) &&
        agent_same(json_string_value(json_object_get(j, "environment")), a->cfg.environment)) {
        a->token = ferry_strdup(token);
        a->agent_id = ferry_strdup(id);
        a->saved_creds = 1;
    }
    json_decref(j);
}

static void agent_forget_creds(agent *a)
{
    char *path = agent_creds_path(a);
    if (unlink(path) != 0 && errno != ENOENT)
        ferry_warn("could not remove %s: %s", path, strerror(errno));
    free(path);
    a->saved_creds = 0;
}

/* Written atomically and synced: a registration is not repeated (the
 * bootstrap token is spent). Readable by this user only. */
static void agent_save_creds(agent *a)
{
    json_t *j =
        json_pack("{s:s, s:o, s:o, s:s, s:s}", "server", a->cfg.server_url, "worker_id",
                  a->cfg.worker_id ? json_string(a->cfg.worker_id) : json_null(), "environment",
                  a->cfg.environment ? json_string(a->cfg.environment) : json_null(), "agent_id",
                  a->agent_id, "token", a->token);
    char *text = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    char *path = agent_creds_path(a);
    char *tmp = ferry_asprintf("%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    size_t len = text ? strlen(text) : 0;
    int ok = fd >= 0 && text && write(fd, text, len) == (ssize_t)len && fsync(fd) == 0;
    if (fd >= 0 && close(fd) != 0)
        ok = 0;
    if (ok && rename(tmp, path) != 0)
        ok = 0;
    if (!ok) {
        ferry_warn("could not save the agent's token in %s (%s): a restart must register again",
                   path, strerror(errno));
        unlink(tmp);
    }
    if (text)
        memset(text, 0, len);
    free(text);
    free(tmp);
    free(path);
}

/* ---- executions an earlier run left ---- */

static void agent_add_execution(agent *a, execution *ex)
{
    execution_set_next(ex, a->executions);
    a->executions = ex;
    a->n_executions++;
}

static void agent_recover(agent *a)
{
    char *dir = ferry_asprintf("%s/executions", a->cfg.work_dir);
    DIR *d = opendir(dir);
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d)) != NULL;) {
        if (e->d_name[0] == '.')
            continue;
        execution *ex = execution_recover(a, e->d_name);
        if (ex == NULL) {
            ferry_warn("%s/%s is not an execution folder; leaving it alone", dir, e->d_name);
            continue;
        }
        agent_add_execution(a, ex);
        n++;
    }
    if (d)
        closedir(d);
    if (n > 0)
        ferry_info("%d execution%s left by an earlier run of ferry-agent: reporting %s", n,
                   n == 1 ? "" : "s", n == 1 ? "it" : "them");
    free(dir);
}

/* The agent holds a token: report what was left, then poll. */
static void agent_ready(agent *a)
{
    for (execution *ex = a->executions; ex; ex = execution_next(ex))
        if (execution_is_waiting_recovery(ex))
            execution_resume(ex);
    agent_poll(a);
}

/* ---- registration ---- */

static void agent_on_registered(void *arg, const agent_reply *r)
{
    agent *a = arg;
    a->register_call = NULL;
    if (!r->ok) {
        if (r->code != FERRY_ECANCELED) { /* cancelled: already shutting down */
            char why[512];
            ferry_error("ferryd refused the registration: %s",
                        agent_reply_text(r, why, sizeof(why)));
            agent_shutdown(a, 1, "not registered");
        }
        return;
    }
    const char *token = json_string_value(json_object_get(r->json, "token"));
    const char *id = json_string_value(json_object_get(r->json, "agent_id"));
    json_t *pt = json_object_get(r->json, "poll_timeout");
    if (id == NULL || token == NULL) {
        ferry_error("ferryd's registration answer has no agent_id or token");
        agent_shutdown(a, 1, "bad registration answer");
        return;
    }
    a->token = ferry_strdup(token);
    a->agent_id = ferry_strdup(id);
    if (json_is_integer(pt) && json_integer_value(pt) > 0 && json_integer_value(pt) <= 600)
        a->poll_timeout_s = (int)json_integer_value(pt);
    /* The bootstrap token is spent: do not keep it around. */
    if (a->bootstrap_token) {
        memset(a->bootstrap_token, 0, strlen(a->bootstrap_token));
        free(a->bootstrap_token);
        a->bootstrap_token = NULL;
    }
    ferry_info("%s %s as agent %s (%d slot%s, runtime %s)",
               a->join_token ? "joined" : "registered with", a->cfg.server_url, a->agent_id,
               a->cfg.slots, a->cfg.slots == 1 ? "" : "s", a->cfg.runtime);
    agent_save_creds(a);
    agent_ready(a);
}

static void agent_register(agent *a)
{
    json_t *body = json_object();
    json_object_set_new(body, "bootstrap_token",
                        a->bootstrap_token ? json_string(a->bootstrap_token) : json_null());
    /* A machine of a static environment joins with the environment's
     * reusable join token; ferryd makes it a worker record. */
    if (a->join_token)
        json_object_set_new(body, "join_token", json_string(a->join_token));
    else if (a->bootstrap_token == NULL)
        ferry_warn("neither FERRY_BOOTSTRAP_TOKEN nor a join token is set: registering without "
                   "a token");
    json_object_set_new(body, "worker_id",
                        a->cfg.worker_id ? json_string(a->cfg.worker_id) : json_null());
    json_object_set_new(body, "hostname", json_string(a->hostname));
    json_object_set_new(body, "runtime", json_string(a->cfg.runtime));
    json_object_set_new(body, "slots", json_integer(a->cfg.slots));
    if (a->cfg.environment)
        json_object_set_new(body, "environment", json_string(a->cfg.environment));
    agent_call_spec s = {.path = "/v1/agent/register", .body = body};
    a->register_call = agent_call_start(a, &s, agent_on_registered, a);
    json_decref(body);
}

/* ---- the poll ---- */

static void agent_take_work(agent *a, json_t *spec)
{
    const char *id = json_string_value(json_object_get(spec, "id"));
    if (id && agent_find(a, id)) {
        ferry_warn("execution %s was handed out again; it is already here", id);
        return;
    }
    execution *ex = execution_new(a, spec);
    if (ex == NULL)
        return;
    agent_add_execution(a, ex);
    if (agent_busy_slots(a) > a->cfg.slots)
        ferry_warn("ferryd handed out more work than free slots (%d running)", agent_busy_slots(a));
    ferry_info("execution %s: received", id);
    execution_start(ex);
}

static void agent_on_poll(void *arg, const agent_reply *r)
{
    agent *a = arg;
    a->poll_call = NULL;
    if (!r->ok) {
        if (r->code == FERRY_ECANCELED)
            return;
        char why[512];
        ferry_error("ferryd refused the poll: %s", agent_reply_text(r, why, sizeof(why)));
        int token_refused = r->status == 401 || r->status == 403;
        int had_saved = a->saved_creds;
        if (token_refused)
            agent_forget_creds(a); /* a dead token must not be tried again */
        if (token_refused && had_saved && (a->bootstrap_token || a->join_token)) {
            ferry_warn("the token saved by an earlier run is refused; registering again");
            free(a->token);
            free(a->agent_id);
            a->token = a->agent_id = NULL;
            agent_register(a);
            return;
        }
        agent_shutdown(a, 1,
                       token_refused ? "ferryd no longer accepts this agent's token"
                                     : "ferryd refused the poll");
        return;
    }
    json_t *work = json_object_get(r->json, "work"), *item;
    size_t i;
    json_array_foreach(work, i, item)
    {
        agent_take_work(a, item);
    }
    json_t *stop = json_object_get(r->json, "stop");
    json_array_foreach(stop, i, item)
    {
        const char *id = json_string_value(item);
        execution *ex = id ? agent_find(a, id) : NULL;
        if (ex) {
            ferry_info("execution %s: stop ordered", id);
            execution_stop(ex, "stopped", -1);
        }
    }
    agent_poll(a);
}

static void agent_poll(agent *a)
{
    if (a->shutting_down || a->poll_call)
        return;
    json_t *running = json_array();
    for (execution *ex = a->executions; ex; ex = execution_next(ex))
        if (execution_holds_slot(ex))
            json_array_append_new(running, json_string(execution_id(ex)));
    int free_slots = a->cfg.slots - agent_busy_slots(a);
    json_t *body = json_object();
    json_object_set_new(body, "running", running);
    json_object_set_new(body, "free_slots", json_integer(free_slots > 0 ? free_slots : 0));
    agent_call_spec s = {.path = "/v1/agent/poll",
                         .body = body,
                         .timeout_ms = (long)(a->poll_timeout_s + AGENT_POLL_SLACK_S) * 1000};
    a->poll_call = agent_call_start(a, &s, agent_on_poll, a);
    json_decref(body);
}

/* ---- reachability, shutdown ---- */

void agent_note_server(agent *a, int reachable)
{
    uint64_t now = ferry_mono_ms();
    if (reachable) {
        if (a->unreachable)
            ferry_info("ferryd is reachable again");
        a->unreachable = 0;
        a->last_contact = now;
        return;
    }
    if (!a->unreachable) {
        a->unreachable = 1;
        ferry_warn("ferryd at %s is unreachable; retrying (running commands go on; giving up "
                   "after %d s with nothing running)",
                   a->cfg.server_url, a->cfg.give_up_s);
    }
    /* Commands keep running however long ferryd is away: their output waits
     * in the spools. Giving up is for an agent that has nothing else to do,
     * and what it could not report stays on disk for its next start. */
    for (execution *ex = a->executions; ex; ex = execution_next(ex)) {
        if (execution_commands_busy(ex)) {
            a->last_contact = now;
            return;
        }
    }
    /* Counted from the last answer, not the first failure: a server that
     * hangs costs a whole request timeout before it fails once. */
    if (!a->abandoning && now - a->last_contact > (uint64_t)a->cfg.give_up_s * 1000) {
        char why[128];
        snprintf(why, sizeof(why), "ferryd was unreachable for more than %d s", a->cfg.give_up_s);
        /* A shutdown asked for by a signal still ends with 0. */
        agent_abandon(a, a->shutting_down ? 0 : 1, why);
    }
}

static void agent_on_deadline(uv_timer_t *t)
{
    agent_abandon(t->data, 0, "reporting took too long after the stop");
}

/* After giving up, only the runs' ends are awaited; a runtime that never
 * reports one must not keep the agent alive for ever. */
static void agent_on_last_deadline(uv_timer_t *t)
{
    agent *a = t->data;
    ferry_error("%d execution(s) did not end after the stop; exiting anyway", a->n_executions);
    exit(a->exit_code);
}

void agent_shutdown(agent *a, int exit_code, const char *why)
{
    if (exit_code != 0 && a->exit_code == 0)
        a->exit_code = exit_code;
    if (a->shutting_down)
        return;
    a->shutting_down = 1;
    if (why && why[0])
        ferry_info("shutting down: %s", why);
    agent_call_cancel(a->register_call);
    a->register_call = NULL;
    agent_call_cancel(a->poll_call);
    a->poll_call = NULL;
    if (a->n_executions == 0) {
        agent_close(a);
        return;
    }
    for (execution *ex = a->executions, *next; ex; ex = next) {
        next = execution_next(ex);
        execution_stop(ex, "stopped", -1);
    }
    if (!a->abandoning && !a->closed)
        uv_timer_start(&a->deadline, agent_on_deadline,
                       (uint64_t)a->cfg.stop_grace_ms + AGENT_SHUTDOWN_EXTRA_MS, 0);
}

void agent_abandon(agent *a, int exit_code, const char *why)
{
    if (exit_code != 0 && a->exit_code == 0)
        a->exit_code = exit_code;
    if (a->abandoning)
        return;
    ferry_error("giving up on reporting: %s", why);
    a->abandoning = 1;
    uv_timer_stop(&a->deadline);
    agent_shutdown(a, exit_code, NULL);
    agent_calls_abandon(a);
    if (!a->closed)
        uv_timer_start(&a->deadline, agent_on_last_deadline,
                       (uint64_t)a->cfg.stop_grace_ms + AGENT_LAST_DEADLINE_MS, 0);
}

void agent_execution_done(agent *a, execution *ex)
{
    if (a->executions == ex) {
        a->executions = execution_next(ex);
    } else {
        execution *prev = a->executions;
        while (prev && execution_next(prev) != ex)
            prev = execution_next(prev);
        if (prev)
            execution_set_next(prev, execution_next(ex));
    }
    a->n_executions--;
    execution_free(ex);
    if (a->shutting_down && a->n_executions == 0)
        agent_close(a);
}

static void agent_on_signal(uv_signal_t *s, int signum)
{
    agent *a = s->data;
    if (!a->shutting_down)
        agent_shutdown(a, 0, signum == SIGTERM ? "SIGTERM" : "SIGINT");
    else
        agent_abandon(a, 0, "a second signal");
}

/* Release the loop's handles so that uv_run() returns. */
static void agent_close(agent *a)
{
    if (a->closed)
        return;
    a->closed = 1;
    uv_close((uv_handle_t *)&a->sigterm, NULL);
    uv_close((uv_handle_t *)&a->sigint, NULL);
    uv_close((uv_handle_t *)&a->deadline, NULL);
    ferry_http_client_close(a->http, NULL, NULL);
    a->http = NULL;
    ferry_plugin_instance_free(a->runtime);
    a->runtime = NULL;
}

/* ---- setup ---- */

int agent_init(agent *a, uv_loop_t *loop, agent_config *cfg, ferry_plugin_instance *runtime,
               char *bootstrap_token, char *join_token)
{
    memset(a, 0, sizeof(*a));
    a->loop = loop;
    a->cfg = *cfg;
    a->runtime = runtime;
    a->rt = &ferry_plugin_instance_plugin(runtime)->ops.runtime;
    a->rt_state = ferry_plugin_instance_state(runtime);
    a->bootstrap_token = bootstrap_token;
    a->join_token = join_token;
    a->poll_timeout_s = 25;
    a->last_contact = ferry_mono_ms();
    if (gethostname(a->hostname, sizeof(a->hostname) - 1) != 0)
        snprintf(a->hostname, sizeof(a->hostname), "unknown");
    int rc = ferry_http_client_new(loop, &a->http);
    if (rc != 0)
        return rc;
    uv_signal_init(loop, &a->sigterm);
    uv_signal_init(loop, &a->sigint);
    uv_timer_init(loop, &a->deadline);
    a->sigterm.data = a->sigint.data = a->deadline.data = a;
    return 0;
}

static void agent_on_cleaned(void *arg, int status, const ferry_op_result *res)
{
    (void)arg;
    if (status < 0)
        ferry_warn("the runtime could not remove leftovers of earlier runs: %s",
                   res && res->error && res->error->message[0] ? res->error->message
                                                               : ferry_strerror(status));
    else if (res && res->text && res->text[0])
        ferry_info("the runtime removed leftovers of earlier runs: %s", res->text);
}

/* Containers (or the like) of an agent that died are no execution's now:
 * the runtime removes them (its own live runs and other agents' stay). */
static void agent_cleanup_runtime(agent *a)
{
    if (a->rt->cleanup == NULL)
        return;
    ferry_op *op = ferry_op_new(a->runtime, agent_on_cleaned, a);
    if (op && a->rt->cleanup(a->rt_state, op) < 0)
        ferry_op_abandon(op);
}

void agent_start(agent *a)
{
    agent_cleanup_runtime(a);
    uv_signal_start(&a->sigterm, agent_on_signal, SIGTERM);
    uv_signal_start(&a->sigint, agent_on_signal, SIGINT);
    agent_load_creds(a);
    agent_recover(a);
    if (a->token) {
        ferry_info("using the agent token saved by an earlier run (agent %s)", a->agent_id);
        agent_ready(a);
    } else {
        agent_register(a);
    }
}
