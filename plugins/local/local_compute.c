/* local: a compute plugin whose "instances" are ferry-agent processes on the
 * daemon's own host. Local executions thereby take the same path as cloud
 * ones: launch, register with a bootstrap token, long-poll, terminate.
 *
 * Settings: `work_dir` (each agent works in <work_dir>/<worker_id>; default
 * $TMPDIR/ferry-local-<uid>), `runtime` (default "local-process"),
 * `terminate_grace_ms` (SIGTERM to SIGKILL, default 10000), `agent_env`
 * (comma-separated names of more variables to pass to agents), and
 * `runtime_settings`, which ferryd fills in: the environment's settings of
 * its runtime plugin as "KEY=VALUE" lines, each an agent --runtime-setting.
 *
 * The agent inherits stdout/stderr, so its log lines land in ferryd's log;
 * it runs in its own session and outlives a stop of ferryd, which leaves it
 * running unless the host's "retire_workers_on_stop" is "true".
 * The bootstrap token travels in its environment only: argv is visible to
 * every user through ps. The rest of its environment is an allowlist of
 * ferryd's (see lc_env_keep): no cloud credentials reach a worker.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <uv.h>

#include "ferry/agentproc.h"
#include "ferry/ferry.h"
#include "ferry/file.h"

#define LC_DEFAULT_GRACE_MS 10000

typedef struct lc_state {
    ferry_plugin_ctx *ctx;
    const ferry_host_api *host;
    char *work_dir;
    char *runtime;
    char *runtime_settings; /* "KEY=VALUE" lines for the agents, or NULL */
    ferry_agentproc *agents;
} lc_state;

/* Variables an agent needs to run, find its plugins, Docker, proxies and
 * CA bundles. FERRY_* settings pass too (env_ferry), except secrets; the
 * `agent_env` setting names more. */
static const char lc_env_keep[] =
    "PATH,HOME,USER,LOGNAME,SHELL,LANG,LANGUAGE,TZ,TMPDIR,LD_LIBRARY_PATH,XDG_RUNTIME_DIR,"
    "DOCKER_HOST,DOCKER_CONFIG,DOCKER_CERT_PATH,DOCKER_TLS_VERIFY,SSL_CERT_FILE,SSL_CERT_DIR,"
    "CURL_CA_BUNDLE,http_proxy,https_proxy,no_proxy,HTTP_PROXY,HTTPS_PROXY,NO_PROXY,"
    "ASAN_OPTIONS,UBSAN_OPTIONS,LSAN_OPTIONS";

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

static void lc_state_free(lc_state *st)
{
    free(st->work_dir);
    free(st->runtime);
    free(st->runtime_settings);
    free(st);
}

/* ------------------------------------------------------------------------ */
/* Launching                                                                */

/* `slots` was appended to the request: an older host's ends before it.
 * 0 (unset) means one, the agent's own default. */
static int lc_slots(const ferry_launch_request *req)
{
    if (!FERRY_HAS_FIELD(req, ferry_launch_request, slots))
        return 1;
    return req->slots > 1 ? req->slots : 1;
}

static int lc_check_request(const ferry_launch_request *req)
{
    if (req == NULL || req->agent_path == NULL || req->agent_path[0] == '\0' ||
        req->server_url == NULL || req->bootstrap_token == NULL)
        return FERRY_EINVAL;
    if (!ferry_agentproc_worker_id_ok(req->worker_id))
        return FERRY_EUNSAFE;
    return 0;
}

static void lc_launch_spawn(lc_state *st, const ferry_launch_request *req, const char *work_dir,
                            ferry_op *op)
{
    ferry_agentproc_spawn_args a = {
        .file = req->agent_path,
        .server_url = req->server_url,
        .worker_id = req->worker_id,
        .daemon_id = req->daemon_id,
        .bootstrap_token = req->bootstrap_token,
        .ca_file = req->ca_file,
        .work_dir = work_dir,
        .runtime = st->runtime,
        /* One slot is the agent's default: its command line stays as it was. */
        .slots = lc_slots(req) > 1 ? lc_slots(req) : 0,
        .runtime_settings = st->runtime_settings,
    };
    const char *id = NULL;
    int uv_error = 0;
    int rc = ferry_agentproc_spawn(st->agents, &a, &id, &uv_error);
    if (rc == FERRY_ENOMEM) {
        lc_fail(st, op, FERRY_ENOMEM, "launch %s: out of memory", req->worker_id);
        return;
    }
    if (rc < 0) {
        lc_fail(st, op, FERRY_ESPAWN, "could not start %s: %s", req->agent_path,
                uv_strerror(uv_error));
        return;
    }
    st->host->log(st->ctx, FERRY_LOG_INFO, "launched agent %s for worker %s", id, req->worker_id);
    lc_complete(st, op, 0, id, NULL, NULL);
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
    if (ferry_file_mkdirs(work_dir, 0700) != 0) {
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
    int rc = ferry_agentproc_terminate(st->agents, instance_id, op);
    if (rc == FERRY_ENOENT) {
        lc_fail(st, op, FERRY_ENOENT, "no running agent %s", instance_id ? instance_id : "");
        return 0;
    }
    return rc;
}

static int lc_list(void *state, const char *daemon_id, ferry_op *op)
{
    lc_state *st = state;
    return ferry_agentproc_list(st->agents, daemon_id, op);
}

static int lc_describe(void *state, const char *instance_id, ferry_op *op)
{
    lc_state *st = state;
    int rc = ferry_agentproc_describe(st->agents, instance_id, NULL, op);
    if (rc == FERRY_ENOENT) {
        lc_fail(st, op, FERRY_ENOENT, "no running agent %s", instance_id ? instance_id : "");
        return 0;
    }
    return rc;
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
    long grace_ms = LC_DEFAULT_GRACE_MS;
    const char *grace = host->config_get(ctx, "terminate_grace_ms");
    if (grace != NULL) {
        char *end;
        grace_ms = strtol(grace, &end, 10);
        if (grace[0] == '\0' || *end != '\0' || grace_ms < 0) {
            free(st);
            return ferry_error_set(err, FERRY_ECONFIG, 0, NULL,
                                   "local: terminate_grace_ms must be a number of milliseconds, "
                                   "not \"%s\"",
                                   grace);
        }
    }
    ferry_agentproc_config cfg = {
        .ctx = ctx,
        .host = host,
        .loop = host->loop(ctx),
        .id_prefix = "local",
        .grace_ms = grace_ms,
        .env_keep = lc_env_keep,
        .env_extra = agent_env,
        .env_ferry = 1,
    };
    st->work_dir = work_dir && work_dir[0] ? strdup(work_dir) : lc_default_work_dir();
    st->runtime = strdup(runtime && runtime[0] ? runtime : "local-process");
    const char *rt_settings = host->config_get(ctx, "runtime_settings");
    st->runtime_settings = rt_settings && rt_settings[0] ? strdup(rt_settings) : NULL;
    st->agents = ferry_agentproc_new(&cfg);
    if (st->work_dir == NULL || st->runtime == NULL || st->agents == NULL ||
        (rt_settings && rt_settings[0] && st->runtime_settings == NULL)) {
        ferry_agentproc_fini(st->agents);
        lc_state_free(st);
        return ferry_error_set(err, FERRY_ENOMEM, 0, NULL, "local: out of memory");
    }
    *state = st;
    return 0;
}

/* Asks every agent to end (when retire_workers_on_stop is set; otherwise
 * leaves them running, see below). Ops still waiting are dropped (the host cancels
 * them) and the host is never called again; while the loop keeps running,
 * agents that ignore SIGTERM are killed after the usual delay (the agent
 * table outlives this state for that). */
static void lc_fini(void *state)
{
    lc_state *st = state;
    /* ferryd's stop keeps the work unless the operator asked otherwise:
     * the agents then go on and the next ferryd takes them back. */
    const char *retire = st->host->config_get(st->ctx, "retire_workers_on_stop");
    if (retire != NULL && strcmp(retire, "false") == 0)
        ferry_agentproc_release(st->agents);
    else
        ferry_agentproc_fini(st->agents);
    lc_state_free(st);
}

static const char *const lc_settings[] = {"work_dir",           "runtime",          "agent_env",
                                          "terminate_grace_ms", "runtime_settings", NULL};

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
