/* ferry-fake-agent: an agent that runs nothing.
 *
 * It speaks the agent protocol of docs/api.md (register, one long poll
 * always in flight, status reports) and finishes every execution it is given
 * at once: `started`, then `finished` with exit code 0, no events, no
 * outputs, no files. What remains is ferryd's own cost per execution, which
 * is what the throughput benchmark and the scheduler tests measure.
 *
 *   ferry-fake-agent --server URL [--worker-id ID] [--slots N] [--environment NAME]
 *                    [--runtime-setting hold_file=PATH] [--runtime-setting run_ms=N]
 *
 * run_ms=N keeps each execution running N ms after its `started` is taken
 * (a stop order ends it sooner), so that executions are running when ferryd
 * restarts: the restart benchmark measures how fast they are taken back.
 *
 * hold_file=PATH freezes it the way a machine freezes: the first time it is
 * handed work while PATH exists, it removes PATH (of several agents, the one
 * whose unlink succeeds) and stops itself with SIGSTOP before it starts that
 * work or polls again, so that ferryd has handed out an execution that
 * never starts, to an agent that goes silent without closing anything.
 *
 * The bootstrap token comes from FERRY_BOOTSTRAP_TOKEN, as for ferry-agent.
 * It exits on SIGTERM/SIGINT (0) and when ferryd answers 401: its worker was
 * retired or never known (0 after a retirement, 1 when registration fails).
 */
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <uv.h>

#include "ferry/error.h"
#include "ferry/http.h"

/* Comfortably above ferryd's 25 s poll hold: a poll that outlives it means
 * the connection is dead. */
#define FA_POLL_TIMEOUT_MS 60000
#define FA_CALL_TIMEOUT_MS 30000
#define FA_RETRY_FIRST_MS 50
#define FA_RETRY_MAX_MS 5000
/* About a minute of backoff. */
#define FA_MAX_POLL_FAILURES 16

typedef struct fa_exec fa_exec;

typedef struct fa_agent {
    uv_loop_t loop;
    ferry_http_client *http;
    uv_signal_t sigterm, sigint;
    uv_timer_t poll_retry;
    const char *server, *worker_id, *environment;
    const char *hold_file; /* see the top of the file; NULL: none */
    long run_ms;           /* see the top of the file; 0: finish at once */
    int slots;
    char *token;       /* the agent token, after registration */
    char auth[160];    /* "Authorization: Bearer <token>" */
    int poll_attempts; /* consecutive failed polls */
    int polling;
    int stopping;
    int exit_code;
    fa_exec *running;
    int n_running;
} fa_agent;

/* One execution between the work spec and the acknowledged `finished`. */
struct fa_exec {
    fa_agent *a;
    fa_exec *prev, *next;
    char id[40];
    int finishing; /* 0: reporting started, 1: reporting finished */
    int in_run;    /* run_ms: started is taken, finished not yet due */
    int attempts;
    uv_timer_t retry; /* a report's retry, or run_ms's end */
    ferry_http_request *req;
};

static void fa_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void fa_log(const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    fprintf(stderr, "ferry-fake-agent[%d]: %s\n", (int)getpid(), line);
}

static uint64_t fa_backoff_ms(int attempt)
{
    uint64_t ms = FA_RETRY_FIRST_MS;
    for (int i = 1; i < attempt && ms < FA_RETRY_MAX_MS; i++)
        ms *= 2;
    return ms < FA_RETRY_MAX_MS ? ms : FA_RETRY_MAX_MS;
}

static int fa_transient(const ferry_http_response *res)
{
    if (res->code != 0)
        return res->code == FERRY_ECONN || res->code == FERRY_ETIMEDOUT;
    return res->status == 408 || res->status == 429 || res->status >= 500;
}

static void fa_stop(fa_agent *a, int exit_code);

/* POST a JSON body to ferryd. The body is copied by the client. */
static int fa_post(fa_agent *a, const char *path, json_t *body, long timeout_ms,
                   ferry_http_done_fn done, void *arg, ferry_http_request **out)
{
    char url[1024];
    snprintf(url, sizeof(url), "%s%s", a->server, path);
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    if (text == NULL)
        return FERRY_ENOMEM;
    const char *headers[] = {"Content-Type: application/json", a->token ? a->auth : NULL, NULL};
    ferry_http_options o;
    memset(&o, 0, sizeof(o));
    o.struct_size = sizeof(o);
    o.method = "POST";
    o.url = url;
    o.headers = headers;
    o.body = text;
    o.body_len = strlen(text);
    o.timeout_ms = timeout_ms;
    o.connect_timeout_ms = 10000;
    o.done = done;
    o.arg = arg;
    int rc = ferry_http_request_start(a->http, &o, out);
    free(text);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Executions                                                               */

static void fa_exec_closed(uv_handle_t *h)
{
    free(h->data);
}

static void fa_exec_end(fa_exec *x)
{
    fa_agent *a = x->a;
    if (x->prev)
        x->prev->next = x->next;
    else
        a->running = x->next;
    if (x->next)
        x->next->prev = x->prev;
    a->n_running--;
    uv_close((uv_handle_t *)&x->retry, fa_exec_closed);
}

static void fa_exec_report(fa_exec *x);

static void fa_exec_on_retry(uv_timer_t *t)
{
    fa_exec_report(t->data);
}

/* run_ms is over, or a stop order came: report `finished`. */
static void fa_exec_on_run_end(uv_timer_t *t)
{
    fa_exec *x = t->data;
    x->in_run = 0;
    fa_exec_report(x);
}

static void fa_exec_done(void *arg, const ferry_http_response *res)
{
    fa_exec *x = arg;
    fa_agent *a = x->a;
    x->req = NULL;
    if (res->code == FERRY_ECANCELED || a->stopping)
        return;
    if (res->code == 0 && res->status == 401) {
        fa_log("ferryd no longer knows this worker (401); exiting");
        fa_stop(a, 0);
        return;
    }
    if (res->code == 0 && res->status >= 200 && res->status < 300) {
        x->attempts = 0;
        if (x->finishing) {
            fa_exec_end(x);
            return;
        }
        x->finishing = 1;
        if (a->run_ms > 0) {
            x->in_run = 1;
            uv_timer_start(&x->retry, fa_exec_on_run_end, (uint64_t)a->run_ms, 0);
            return;
        }
        fa_exec_report(x);
        return;
    }
    if (fa_transient(res)) {
        uv_timer_start(&x->retry, fa_exec_on_retry, fa_backoff_ms(++x->attempts), 0);
        return;
    }
    /* 410: ferryd ended it meanwhile (a stop while queued); anything else is
     * a refusal that a retry would not change. Either way the slot is free. */
    if (res->status != 410)
        fa_log("execution %s: status report refused: HTTP %ld %.200s", x->id, res->status,
               res->body ? res->body : "");
    fa_exec_end(x);
}

static void fa_exec_report(fa_exec *x)
{
    fa_agent *a = x->a;
    char path[128];
    snprintf(path, sizeof(path), "/v1/agent/executions/%s/status", x->id);
    json_t *body =
        x->finishing ? json_pack("{s:s, s:i, s:n}", "status", "finished", "exit_code", 0, "reason")
                     : json_pack("{s:s}", "status", "started");
    int rc = fa_post(a, path, body, FA_CALL_TIMEOUT_MS, fa_exec_done, x, &x->req);
    if (rc < 0) {
        fa_log("execution %s: could not send a status report: %s", x->id, ferry_strerror(rc));
        fa_stop(a, 1);
    }
}

static void fa_exec_start(fa_agent *a, const char *id)
{
    for (fa_exec *x = a->running; x; x = x->next)
        if (strcmp(x->id, id) == 0)
            return; /* handed out again (a resent poll answer): already on it */
    if (strlen(id) >= sizeof(((fa_exec *)0)->id)) {
        fa_log("work spec with an over-long id; ignored");
        return;
    }
    fa_exec *x = calloc(1, sizeof(*x));
    if (x == NULL) {
        fa_log("out of memory");
        fa_stop(a, 1);
        return;
    }
    x->a = a;
    strcpy(x->id, id);
    uv_timer_init(&a->loop, &x->retry);
    x->retry.data = x;
    x->next = a->running;
    if (a->running)
        a->running->prev = x;
    a->running = x;
    a->n_running++;
    fa_exec_report(x);
}

/* ------------------------------------------------------------------------ */
/* Polling                                                                  */

static void fa_poll(fa_agent *a);

static void fa_on_poll_retry(uv_timer_t *t)
{
    fa_poll(t->data);
}

/* hold_file: freeze with the work just handed over, neither started nor
 * reported; SIGCONT (or ferryd's SIGKILL) ends the stop. */
static void fa_maybe_hold(fa_agent *a, const json_t *work)
{
    if (a->hold_file == NULL || json_array_size(work) == 0 || unlink(a->hold_file) != 0)
        return;
    fa_log("handed %zu execution(s); holding them and stopping (hold_file)", json_array_size(work));
    raise(SIGSTOP);
}

static void fa_poll_done(void *arg, const ferry_http_response *res)
{
    fa_agent *a = arg;
    a->polling = 0;
    if (res->code == FERRY_ECANCELED || a->stopping)
        return;
    if (res->code == 0 && res->status == 401) {
        fa_log("worker %s was retired (401); exiting", a->worker_id ? a->worker_id : "-");
        fa_stop(a, 0);
        return;
    }
    json_t *j = NULL;
    if (res->code == 0 && res->status >= 200 && res->status < 300)
        j = json_loadb(res->body, res->body_len, 0, NULL);
    if (!json_is_object(j)) {
        json_decref(j);
        if (res->code == 0 && !fa_transient(res))
            fa_log("poll refused: HTTP %ld %.200s", res->status, res->body ? res->body : "");
        if (a->poll_attempts >= FA_MAX_POLL_FAILURES) {
            /* ferryd is gone (it would have terminated us otherwise): an
             * agent must not outlive it for long in a test run. */
            fa_log("%d polls in a row failed; ferryd is gone, exiting", a->poll_attempts);
            fa_stop(a, 1);
            return;
        }
        uv_timer_start(&a->poll_retry, fa_on_poll_retry, fa_backoff_ms(++a->poll_attempts), 0);
        return;
    }
    a->poll_attempts = 0;
    fa_maybe_hold(a, json_object_get(j, "work"));
    size_t i;
    json_t *spec;
    json_array_foreach(json_object_get(j, "work"), i, spec)
    {
        const char *id = json_string_value(json_object_get(spec, "id"));
        if (id != NULL && !a->stopping)
            fa_exec_start(a, id);
    }
    json_array_foreach(json_object_get(j, "stop"), i, spec)
    {
        const char *id = json_string_value(spec);
        for (fa_exec *x = a->running; id && x; x = x->next)
            if (x->in_run && strcmp(x->id, id) == 0) {
                uv_timer_stop(&x->retry);
                fa_exec_on_run_end(&x->retry);
            }
    }
    /* Without run_ms, stop orders need nothing: every execution finishes at once. The
     * next poll goes out right away, so that ferryd always holds one, and
     * after the new work is taken on: ferryd reads its `running` list as
     * what this agent holds, and would count work it handed out but does
     * not see there as lost. */
    fa_poll(a);
    json_decref(j);
}

static void fa_poll(fa_agent *a)
{
    if (a->stopping || a->polling)
        return;
    json_t *running = json_array();
    for (fa_exec *x = a->running; x; x = x->next)
        json_array_append_new(running, json_string(x->id));
    int free_slots = a->slots - a->n_running;
    json_t *body =
        json_pack("{s:o, s:i}", "running", running, "free_slots", free_slots > 0 ? free_slots : 0);
    int rc = fa_post(a, "/v1/agent/poll", body, FA_POLL_TIMEOUT_MS, fa_poll_done, a, NULL);
    if (rc < 0) {
        fa_log("could not send a poll: %s", ferry_strerror(rc));
        fa_stop(a, 1);
        return;
    }
    a->polling = 1;
}

/* ------------------------------------------------------------------------ */
/* Registration, shutdown                                                   */

static void fa_register(fa_agent *a);

static void fa_on_register_retry(uv_timer_t *t)
{
    fa_register(t->data);
}

static void fa_register_done(void *arg, const ferry_http_response *res)
{
    fa_agent *a = arg;
    if (res->code == FERRY_ECANCELED || a->stopping)
        return;
    if (fa_transient(res) && a->poll_attempts < FA_MAX_POLL_FAILURES) {
        uv_timer_start(&a->poll_retry, fa_on_register_retry, fa_backoff_ms(++a->poll_attempts), 0);
        return;
    }
    json_t *j = NULL;
    if (res->code == 0 && res->status == 200)
        j = json_loadb(res->body, res->body_len, 0, NULL);
    const char *token = json_string_value(json_object_get(j, "token"));
    if (token == NULL || strlen(token) > 100) {
        fa_log("registration failed: %s HTTP %ld %.200s", res->code ? res->error : "", res->status,
               res->body ? res->body : "");
        json_decref(j);
        fa_stop(a, 1);
        return;
    }
    a->token = strdup(token);
    snprintf(a->auth, sizeof(a->auth), "Authorization: Bearer %s", token);
    json_decref(j);
    a->poll_attempts = 0;
    fa_poll(a);
}

static void fa_register(fa_agent *a)
{
    char host[256] = "";
    gethostname(host, sizeof(host) - 1);
    const char *bootstrap = getenv("FERRY_BOOTSTRAP_TOKEN");
    json_t *body = json_pack("{s:s?, s:s?, s:s, s:s, s:i, s:s?}", "bootstrap_token", bootstrap,
                             "worker_id", a->worker_id, "hostname", host, "runtime", "fake",
                             "slots", a->slots, "environment", a->environment);
    int rc = fa_post(a, "/v1/agent/register", body, FA_CALL_TIMEOUT_MS, fa_register_done, a, NULL);
    if (rc < 0) {
        fa_log("could not send the registration: %s", ferry_strerror(rc));
        fa_stop(a, 1);
    }
}

static void fa_stop(fa_agent *a, int exit_code)
{
    if (a->stopping)
        return;
    a->stopping = 1;
    a->exit_code = exit_code;
    uv_close((uv_handle_t *)&a->sigterm, NULL);
    uv_close((uv_handle_t *)&a->sigint, NULL);
    uv_close((uv_handle_t *)&a->poll_retry, NULL);
    while (a->running)
        fa_exec_end(a->running);
    /* Cancels what is in flight (done callbacks see `stopping`). */
    ferry_http_client_close(a->http, NULL, NULL);
}

static void fa_on_signal(uv_signal_t *s, int signum)
{
    (void)signum;
    fa_stop(s->data, 0);
}

static void fa_usage(FILE *out)
{
    fprintf(out, "usage: ferry-fake-agent --server URL [--worker-id ID] [--slots N (default 64)]\n"
                 "                        [--environment NAME] [--work-dir DIR (ignored)]\n"
                 "                        [--runtime-setting hold_file=PATH]\n"
                 "                        [--runtime-setting run_ms=N]\n"
                 "Registers with ferryd (token in FERRY_BOOTSTRAP_TOKEN) and finishes every\n"
                 "execution it is given, with exit code 0: at once, or N ms after it started.\n");
}

static int fa_runtime_setting(fa_agent *a, const char *kv)
{
    if (strncmp(kv, "hold_file=", 10) == 0 && kv[10] != '\0') {
        a->hold_file = kv + 10;
        return 0;
    }
    if (strncmp(kv, "run_ms=", 7) == 0) {
        char *end;
        long ms = strtol(kv + 7, &end, 10);
        if (kv[7] != '\0' && *end == '\0' && ms >= 0 && ms <= 86400000L) {
            a->run_ms = ms;
            return 0;
        }
    }
    fprintf(stderr,
            "ferry-fake-agent: runtime settings are hold_file=PATH and run_ms=N (0 to 86400000), "
            "not '%s'\n",
            kv);
    return -1;
}

static int fa_parse_args(fa_agent *a, int argc, char **argv)
{
    static const struct option opts[] = {
        {"server", required_argument, NULL, 's'},
        {"worker-id", required_argument, NULL, 'w'},
        {"slots", required_argument, NULL, 'n'},
        {"environment", required_argument, NULL, 'e'},
        {"work-dir", required_argument, NULL, 'd'},
        {"runtime-setting", required_argument, NULL, 'r'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 's':
            a->server = optarg;
            break;
        case 'w':
            a->worker_id = optarg;
            break;
        case 'e':
            a->environment = optarg;
            break;
        case 'd':
            break; /* accepted so that it can stand in for ferry-agent; it writes nothing */
        case 'r':
            if (fa_runtime_setting(a, optarg) < 0)
                return -1;
            break;
        case 'n': {
            char *end;
            long n = strtol(optarg, &end, 10);
            if (optarg[0] == '\0' || *end != '\0' || n < 1 || n > 1024) {
                fprintf(stderr, "ferry-fake-agent: --slots must be 1 to 1024, not '%s'\n", optarg);
                return -1;
            }
            a->slots = (int)n;
            break;
        }
        case 'h':
            fa_usage(stdout);
            exit(0);
        default:
            fa_usage(stderr);
            return -1;
        }
    }
    if (a->server == NULL || optind != argc) {
        fa_usage(stderr);
        return -1;
    }
    /* ferryd's paths are appended to it. */
    size_t n = strlen(a->server);
    if (n > 0 && a->server[n - 1] == '/') {
        char *s = strdup(a->server);
        s[n - 1] = '\0';
        a->server = s;
    }
    return 0;
}

int main(int argc, char **argv)
{
    static fa_agent a;
    a.slots = 64;
    if (fa_parse_args(&a, argc, argv) < 0)
        return 2;
    signal(SIGPIPE, SIG_IGN);
    uv_loop_init(&a.loop);
    if (ferry_http_client_new(&a.loop, &a.http) < 0) {
        fa_log("could not create the HTTP client");
        return 1;
    }
    uv_signal_init(&a.loop, &a.sigterm);
    uv_signal_init(&a.loop, &a.sigint);
    uv_timer_init(&a.loop, &a.poll_retry);
    a.sigterm.data = a.sigint.data = a.poll_retry.data = &a;
    uv_signal_start(&a.sigterm, fa_on_signal, SIGTERM);
    uv_signal_start(&a.sigint, fa_on_signal, SIGINT);
    fa_register(&a);
    uv_run(&a.loop, UV_RUN_DEFAULT);
    uv_loop_close(&a.loop);
    free(a.token);
    return a.exit_code;
}
