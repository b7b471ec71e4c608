/* The agent protocol (docs/api.md): registration, long polls that carry
 * work and stop orders, log events, status reports and output uploads. */
#include "agentapi.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "snapshots.h"
#include "blobs.h"
#include "datumrows.h"
#include "datums.h"
#include "db.h"
#include "exec.h"
#include "lifecycle.h"
#include "log.h"
#include "logstore.h"
#include "objinputs.h"
#include "scheduler.h"
#include "request.h"
#include "space.h"
#include "stepfile.h"
#include "store.h"
#include "uploads.h"
#include "util.h"
#include "views.h"

#define AGENTAPI__POLL_TIMEOUT_S 25

/* How long a poll is held: under half of worker_lost_timeout, so that a live
 * agent always polls again in time and a silent one (its machine gone from
 * the network, its connection never closed) is lost on time. */
static int agentapi__poll_hold_s(const ferryd *d)
{
    int half = d->cfg.worker_lost_timeout_s / 2;
    return half < 1 ? 1 : half < AGENTAPI__POLL_TIMEOUT_S ? half : AGENTAPI__POLL_TIMEOUT_S;
}

static ferry_worker *agentapi__worker(ferry_http_req *r)
{
    char buf[128];
    const char *token = ferry_http_bearer(r, buf, sizeof(buf));
    ferry_worker *w = token ? ferry_workers_by_token(r->d, token) : NULL;
    if (w == NULL) {
        ferry_http_error(r->req, 401, NULL, "unknown or missing agent token");
        return NULL;
    }
    ferry_workers_heard(r->d, w);
    return w;
}

/* A stable UUID-shaped id for a name ferry keeps no id for (a project, an
 * environment): Valohai's ids are UUIDs, and code may store them. */
static json_t *agentapi__name_id(const char *kind, const char *name)
{
    char *text = ferry_asprintf("%s:%s", kind, name ? name : "");
    char hex[65], id[37];
    ferry_sha256_hex(text, strlen(text), hex);
    free(text);
    snprintf(id, sizeof(id), "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12, hex + 16,
             hex + 20);
    return json_string(id);
}

/* The execution as its config/execution.json shows it: the API's object
 * (ferry's keys, kept), and the keys Valohai writes there
 * (docs.valohai.com, "File-based configuration"; valohai-utils'
 * valohai.execution().config reads -id, -counter and -title). The commit
 * is the sha, or "~" and the snapshot for an ad-hoc one, as Valohai's
 * ad-hoc commits read. What ferry has no notion of (pipelines, tasks,
 * creator ids) is null, as on Valohai outside a pipeline or task. */
static json_t *agentapi__execution_json(ferryd *d, const ferry_exec *e)
{
    json_t *j = ferry_view_exec(d, e);
    const char *sha = json_string_value(json_object_get(e->git_commit, "sha"));
    char adhoc[80];
    snprintf(adhoc, sizeof(adhoc), "~%s", e->snapshot ? e->snapshot : "");
    json_object_set_new(j, "valohai.commit-identifier", json_string(sha ? sha : adhoc));
    json_object_set_new(j, "valohai.creator-email", json_null());
    json_object_set_new(j, "valohai.creator-id", json_null());
    json_object_set_new(j, "valohai.creator-name", e->owner ? json_string(e->owner) : json_null());
    json_object_set_new(j, "valohai.environment-id", agentapi__name_id("env", e->environment));
    json_object_set_new(j, "valohai.environment-name", json_string(e->environment));
    json_object_set_new(j, "valohai.environment-slug", json_string(e->environment));
    json_object_set_new(j, "valohai.execution-counter", json_integer(e->counter));
    json_object_set(j, "valohai.execution-ctime", json_object_get(j, "created_at"));
    json_object_set_new(j, "valohai.execution-duration", json_null());
    json_object_set_new(j, "valohai.execution-id", json_string(e->id));
    json_object_set_new(j, "valohai.execution-image",
                        e->image ? json_string(e->image) : json_null());
    json_object_set(j, "valohai.execution-qtime", json_object_get(j, "queued_at"));
    json_object_set_new(j, "valohai.execution-status", json_string(ferry_status_name(e->status)));
    json_object_set_new(j, "valohai.execution-step", json_string(e->step));
    json_object_set(j, "valohai.execution-tags", e->tags ? e->tags : json_array());
    json_t *title = json_object_get(j, "title"); /* when executions have one */
    json_object_set(j, "valohai.execution-title", json_is_string(title) ? title : json_null());
    const char *none[] = {"valohai.pipeline-counter", "valohai.pipeline-id",
                          "valohai.pipeline-node-id", "valohai.pipeline-title",
                          "valohai.task-counter",     "valohai.task-id"};
    for (size_t i = 0; i < sizeof(none) / sizeof(none[0]); i++)
        json_object_set_new(j, none[i], json_null());
    json_object_set_new(j, "valohai.pipeline-tags", json_array());
    json_object_set_new(j, "valohai.project-id", agentapi__name_id("project", e->project));
    json_object_set_new(j, "valohai.project-name", json_string(e->project));
    return j;
}

/* The variables of the step's environment-variable-groups, resolved now
 * from ferryd's config (secret values are never stored with the
 * execution): later groups over earlier ones. Each secret's value goes to
 * `secrets` too, for the agent to mask in the log; a group no longer
 * configured is a notice. */
static json_t *agentapi__group_env(const ferry_config *cfg, const ferry_step *step, json_t *secrets,
                                   json_t *notices)
{
    json_t *env = json_object();
    for (size_t i = 0; step && i < step->n_env_groups; i++) {
        const ferry_env_group *g = ferry_config_env_group(cfg, step->env_groups[i]);
        if (g == NULL) {
            json_array_append_new(notices,
                                  json_sprintf("environment variable group '%s' is no longer in "
                                               "ferryd's configuration: its variables are not set",
                                               step->env_groups[i]));
            continue;
        }
        for (size_t k = 0; k < g->n_vars; k++) {
            json_object_set_new(env, g->vars[k].name, json_string(g->vars[k].value));
            if (g->vars[k].secret)
                json_array_append_new(secrets, json_string(g->vars[k].value));
        }
    }
    return env;
}

/* What the commands' environment holds beyond the runtime's folders: the
 * step's variables, and, where the step sets none of that name, the
 * variables Valohai documents (VH_JOB_ID, VH_EXECUTION_ID,
 * VH_PROJECT_ID: code checks them to know it runs on Valohai; only for a
 * valohai.yaml project, as the runtimes' VH_*_DIR), ferry's
 * own (the agent sets them again, and wins) and PYTHONUNBUFFERED=1, so
 * that a Python script's lines and metadata arrive as it prints them.
 * `groups` (taken): the groups' variables, under the step's and the user's. */
static json_t *agentapi__env(const ferry_exec *e, json_t *groups)
{
    json_t *env = groups;
    if (json_is_object(e->env))
        json_object_update(env, e->env);
    char counter[24];
    snprintf(counter, sizeof(counter), "%lld", (long long)e->counter);
    char *job = ferry_asprintf("exec-%s", e->id);
    json_t *project_id = agentapi__name_id("project", e->project);
    struct {
        const char *name, *value;
    } defaults[] = {
        {"VH_JOB_ID", job},
        {"VH_EXECUTION_ID", e->id},
        {"VH_PROJECT_ID", json_string_value(project_id)},
        {"FERRY_EXECUTION_ID", e->id},
        {"FERRY_EXECUTION_COUNTER", counter},
        {"FERRY_PROJECT", e->project},
        {"PYTHONUNBUFFERED", "1"},
    };
    for (size_t i = 0; i < sizeof(defaults) / sizeof(defaults[0]); i++)
        if (json_object_get(env, defaults[i].name) == NULL && defaults[i].value &&
            (e->valohai || strncmp(defaults[i].name, "VH_", 3) != 0))
            json_object_set_new(env, defaults[i].name, json_string(defaults[i].value));
    json_decref(project_id);
    free(job);
    return env;
}

/* A launched machine registers with its one-time bootstrap token; a machine
 * of a static environment joins with the environment's join token. */
void ferry_agentapi_register(ferry_http_req *r)
{
    json_t *body = ferry_http_body_object(r);
    if (body == NULL)
        return;
    const char *worker_id = json_string_value(json_object_get(body, "worker_id"));
    const char *bootstrap = json_string_value(json_object_get(body, "bootstrap_token"));
    const char *join = json_string_value(json_object_get(body, "join_token"));
    const char *env = json_string_value(json_object_get(body, "environment"));
    int slots = (int)json_integer_value(json_object_get(body, "slots"));
    char *token = NULL, *joined_id = NULL;
    int rc = join ? ferry_workers_join(r->d, env, join, slots, &joined_id, &token)
                  : ferry_workers_register(r->d, worker_id, bootstrap, slots, &token);
    if (rc < 0) {
        ferry_http_error(r->req, 401, join ? "join_token" : "bootstrap_token", "%s",
                         join ? "joining refused: unknown static environment or wrong join token"
                              : "registration refused: unknown worker or invalid/spent "
                                "bootstrap token");
    } else {
        const char *id = joined_id ? joined_id : worker_id;
        ferry_http_json(r->req, 200,
                        json_pack("{s:s, s:s, s:i}", "agent_id", id, "token", token, "poll_timeout",
                                  agentapi__poll_hold_s(r->d)));
        ferry_info("worker %s registered", id);
    }
    free(token);
    free(joined_id);
    json_decref(body);
}

static char *agentapi__basename(const char *url)
{
    const char *end = url + strcspn(url, "?#");
    const char *slash = end;
    while (slash > url && slash[-1] != '/')
        slash--;
    if (slash == end)
        return ferry_strdup("input");
    return strndup(slash, (size_t)(end - slash));
}

/* `base`, or "data-2.csv", "data-3.csv"... when a file of the same input
 * has that name already: two URLs ending in the same name are both kept
 * (issue 18, point 14). Takes `base`; the result is malloc'd. */
static char *agentapi__unique_name(json_t *seen, char *base)
{
    if (json_object_get(seen, base) == NULL) {
        json_object_set_new(seen, base, json_true());
        return base;
    }
    const char *dot = strrchr(base, '.');
    int stem = dot && dot != base ? (int)(dot - base) : (int)strlen(base);
    for (int n = 2;; n++) {
        char *name = ferry_asprintf("%.*s-%d%s", stem, base, n, base + stem);
        if (json_object_get(seen, name) == NULL) {
            json_object_set_new(seen, name, json_true());
            free(base);
            return name;
        }
        free(name);
    }
}

static json_t *agentapi__inputs(ferryd *d, ferry_exec *e)
{
    int loading;
    const ferry_step *step = ferry_snapshot_find_step(d, e->snapshot, e->step, &loading);
    json_t *out = json_array();
    const char *name;
    json_t *urls;
    json_object_foreach(e->inputs, name, urls)
    {
        const char *filename = NULL;
        int on_demand = 0;
        for (size_t i = 0; step && i < step->n_inputs; i++)
            if (strcmp(step->inputs[i].name, name) == 0) {
                filename = step->inputs[i].filename;
                on_demand = step->inputs[i].on_demand;
            }
        json_t *files = json_array(), *seen = json_object();
        size_t k;
        json_t *u;
        json_array_foreach(urls, k, u)
        {
            const char *url = json_string_value(u);
            char *base = agentapi__unique_name(
                seen, filename && json_array_size(urls) == 1 ? ferry_strdup(filename)
                      : ferry_datum_ref(url)                 ? ferry_http_datums_basename(d, url)
                                                             : agentapi__basename(url));
            if (ferry_datum_ref(url)) /* a stored output's URL for the worker, and its sha256 */
                json_array_append_new(files, ferry_http_datums_input_file(d, url, base));
            else if (ferry_objinputs_is_url(url)) /* presigned, with size and ETag */
                json_array_append_new(files, ferry_objinputs_file(d, e->id, url, base));
            else
                json_array_append_new(files, json_pack("{s:s, s:s}", "url", url, "filename", base));
            free(base);
        }
        json_decref(seen);
        json_array_append_new(out, json_pack("{s:s, s:o, s:b}", "name", name, "files", files,
                                             "on_demand", on_demand));
    }
    return out;
}

/* The step's limits (resources), for the runtime: a step's own win over
 * the worker's settings (docker_cpus, docker_memory). */
static void agentapi__resources(json_t *spec, const ferry_step *step)
{
    if (step && step->cpu_limit > 0)
        json_object_set_new(spec, "cpus", json_real(step->cpu_limit));
    if (step && step->memory_limit_mb > 0)
        json_object_set_new(spec, "memory_bytes", json_integer(step->memory_limit_mb * 1048576));
}

/* The step's mounts the environment allows (checked at submission, again
 * now: the config may have changed), and its allowed_mounts, which the
 * agent checks the source's real path against on the worker. */
static void agentapi__mounts(ferryd *d, json_t *spec, const ferry_exec *e, const ferry_step *step,
                             json_t *notices)
{
    const ferry_env_config *env = ferry_config_env(&d->cfg, e->environment);
    if (step == NULL || step->n_mounts == 0 || env == NULL)
        return;
    json_t *mounts = json_array(), *allowed = json_array();
    for (size_t i = 0; i < step->n_mounts; i++) {
        const ferry_mount_def *m = &step->mounts[i];
        if ((m->type && strcmp(m->type, "bind") != 0) || m->destination[0] != '/' ||
            !ferry_env_mount_allowed(env, m->source)) {
            json_array_append_new(notices,
                                  json_sprintf("mount '%s:%s' is no longer allowed in environment "
                                               "'%s': not mounted",
                                               m->source, m->destination, env->name));
            continue;
        }
        char *source = ferry_config_path_normal(m->source);
        json_array_append_new(mounts, json_pack("{s:s, s:s, s:b}", "source", source, "destination",
                                                m->destination, "readonly", m->readonly));
        free(source);
    }
    for (size_t i = 0; i < env->n_allowed_mounts; i++)
        json_array_append_new(allowed, json_string(env->allowed_mounts[i]));
    json_object_set_new(spec, "mounts", mounts);
    json_object_set_new(spec, "allowed_mounts", allowed);
}

static json_t *agentapi__spec(ferryd *d, ferry_exec *e)
{
    int loading;
    const ferry_step *step = ferry_snapshot_find_step(d, e->snapshot, e->step, &loading);
    json_t *secrets = json_array(), *notices = json_array();
    char key[128];
    snprintf(key, sizeof(key), "snapshots/%s.tar.gz", e->snapshot);
    char *url = ferry_blobs_worker_url(d, "GET", key, d->cfg.presigned_url_ttl_s, NULL, NULL);
    json_t *spec = json_object();
    json_object_set_new(spec, "id", json_string(e->id));
    json_object_set_new(spec, "counter", json_integer(e->counter));
    json_object_set_new(spec, "project", json_string(e->project));
    json_object_set_new(spec, "step", json_string(e->step));
    json_object_set_new(spec, "image", e->image ? json_string(e->image) : json_null());
    /* Only the credentials of the image's own registry, for its pull. */
    const ferry_registry *reg = ferry_config_registry_for(&d->cfg, e->image);
    if (reg)
        json_object_set_new(spec, "registry_auth",
                            json_pack("{s:s, s:s, s:s}", "server", reg->server, "username",
                                      reg->username, "password", reg->password));
    json_object_set_new(spec, "command", json_string(e->command));
    json_object_set_new(spec, "env",
                        agentapi__env(e, agentapi__group_env(&d->cfg, step, secrets, notices)));
    json_object_set_new(spec, "secrets", secrets);
    agentapi__resources(spec, step);
    agentapi__mounts(d, spec, e, step, notices);
    json_object_set_new(spec, "notices", notices);
    json_object_set_new(spec, "valohai", json_boolean(e->valohai));
    json_object_set_new(spec, "time_limit", json_integer(e->time_limit));
    json_object_set_new(spec, "no_output_timeout", json_integer(e->no_output_timeout));
    json_object_set_new(spec, "gpus", e->gpus ? json_string(e->gpus) : json_null());
    json_object_set(spec, "parameters", e->parameters);
    /* The agent extracts within the bounds the upload was checked against. */
    ferry_archive_limits lim = ferry_snapshot_limits(d);
    json_object_set_new(spec, "snapshot",
                        json_pack("{s:s, s:s, s:I, s:I}", "url", url, "sha256", e->snapshot,
                                  "max_bytes", (json_int_t)lim.max_bytes, "max_members",
                                  (json_int_t)lim.max_members));
    json_object_set_new(spec, "inputs", agentapi__inputs(d, e));
    json_object_set_new(spec, "execution", agentapi__execution_json(d, e));
    free(url);
    return spec;
}

/* A step file an execution handed to worker `arg` (its id) waits for is
 * in the cache now: answer the worker's poll if it waits. */
static void agentapi__step_loaded(ferryd *d, void *arg)
{
    ferry_worker *w = ferry_map_get(&d->workers_by_id, arg);
    free(arg);
    if (w)
        ferry_agentapi_wake(d, w);
}

/* Whether execution `e` can be handed out now: its step file (for the
 * inputs' file names) is read on the thread pool, never here; while it is
 * being read, the execution waits for a later poll, which the end of the
 * read wakes. */
static int agentapi__deliverable(ferryd *d, ferry_worker *w, const ferry_exec *e)
{
    ferry_stepfile *sf;
    char err[256];
    char *id = ferry_strdup(w->id);
    int rc =
        ferry_snapshot_stepfile(d, e->snapshot, &sf, agentapi__step_loaded, id, err, sizeof(err));
    if (rc != FERRY_EAGAIN)
        free(id); /* no read under way: nobody calls back */
    return rc != FERRY_EAGAIN;
}

/* News the worker can be given now: stop orders, or work that is deliverable. */
static int agentapi__has_ready_news(ferryd *d, ferry_worker *w)
{
    if (w->stop_orders && json_array_size(w->stop_orders) > 0)
        return 1;
    int ready = 0;
    for (size_t i = 0; i < w->n_assigned; i++)
        if (!w->assigned[i]->delivered && agentapi__deliverable(d, w, w->assigned[i]))
            ready = 1;
    return ready;
}

/* Answer the poll with whatever the worker should know; release it. */
static void agentapi__answer(ferryd *d, ferry_worker *w, h2o_req_t *req)
{
    ferry_exec **work;
    size_t n;
    json_t *stop;
    ferry_scheduler_take_news(d, w, &work, &n, &stop);
    json_t *specs = json_array();
    for (size_t i = 0; i < n; i++) {
        int loading;
        ferry_snapshot_find_step(d, work[i]->snapshot, work[i]->step, &loading);
        if (loading) {
            work[i]->delivered = 0; /* for a later poll */
            continue;
        }
        json_array_append_new(specs, agentapi__spec(d, work[i]));
        ferry_exec_save_progress(d, work[i]); /* records the worker */
    }
    free(work);
    ferry_http_json(req, 200, json_pack("{s:o, s:o}", "work", specs, "stop", stop));
}

static void agentapi__poll_timeout(ferry_held *h, void *arg)
{
    ferry_worker *w = arg;
    h2o_req_t *req = ferry_held_req(h);
    w->poll = NULL;
    if (req)
        ferry_http_json(req, 200, json_pack("{s:[], s:[]}", "work", "stop"));
    ferry_held_release(h);
}

static void agentapi__poll_gone(ferry_held *h, void *arg)
{
    ferry_worker *w = arg;
    if (w->poll == h)
        w->poll = NULL;
    ferry_held_release(h);
}

void ferry_agentapi_wake(ferryd *d, ferry_worker *w)
{
    ferry_held *h = w->poll;
    int gone = w->state == FERRY_WORKER_GONE;
    if (h == NULL || (!gone && !agentapi__has_ready_news(d, w)))
        return;
    w->poll = NULL;
    h2o_req_t *req = ferry_held_req(h);
    if (req && gone)
        ferry_http_error(req, 401, NULL, "this worker was retired");
    else if (req)
        agentapi__answer(d, w, req);
    ferry_held_release(h);
}

void ferry_agentapi_poll(ferry_http_req *r)
{
    ferry_worker *w = r->worker;
    json_t *body = ferry_http_body_object(r);
    if (body == NULL)
        return;
    json_t *running = json_object_get(body, "running");
    if (json_is_array(running))
        ferry_scheduler_reconcile(r->d, w, running);
    json_decref(body);
    if (w->poll) { /* a newer poll replaces one the agent gave up on */
        ferry_held *old = w->poll;
        w->poll = NULL;
        if (ferry_held_req(old))
            ferry_http_json(ferry_held_req(old), 200, json_pack("{s:[], s:[]}", "work", "stop"));
        ferry_held_release(old);
    }
    if (agentapi__has_ready_news(r->d, w)) {
        agentapi__answer(r->d, w, r->req);
        return;
    }
    w->poll = ferry_http_hold(r->d, r->req, (uint64_t)agentapi__poll_hold_s(r->d) * 1000,
                              agentapi__poll_timeout, agentapi__poll_gone, w);
}

/* The worker's own execution, or a reply was sent. An execution that ended
 * meanwhile (a stop while queued) answers 410, so the agent drops it. */
static ferry_exec *agentapi__exec(ferry_http_req *r, ferry_worker *w)
{
    ferry_exec *e = ferry_map_get(&r->d->active, r->segs[3]);
    if (e && e->worker == w)
        return e;
    ferry_http_error(r->req, 410, NULL, "execution %s is not running on this worker", r->segs[3]);
    return NULL;
}

static int agentapi__stream_ok(const char *s)
{
    return s && (strcmp(s, "stdout") == 0 || strcmp(s, "stderr") == 0 || strcmp(s, "status") == 0);
}

double ferry_agentapi_event_time(double t)
{
    /* 0 (or none) is "no time"; 253402300800 is 10000-01-01T00:00:00Z. */
    return isfinite(t) && t > 0 && t < 253402300800.0 ? t : ferry_now();
}

/* One event from the agent: stored unless ferryd holds it already. 1 to go
 * on with the next, 0 to stop here (a gap or a bad event: the reply
 * acknowledges what is stored and the agent resends the rest), or the code
 * of a log that could not be written (the reply is a 5xx, which the agent
 * retries: an answer that acknowledges nothing new would make it drop the
 * batch after a few tries). */
static int agentapi__store_event(ferryd *d, ferry_exec *e, int64_t seq, const char *stream,
                                 double time, const char *text, size_t len)
{
    if (seq <= e->agent_seq)
        return 1; /* a resent event we already hold */
    if (seq != e->agent_seq + 1 || !agentapi__stream_ok(stream))
        return 0;
    int rc = ferry_logstore_append(d, e, stream, ferry_agentapi_event_time(time), text, len, seq);
    if (rc == FERRY_ENOSPC || rc == FERRY_EIO)
        return rc;
    if (rc < 0)
        return 0;
    e->agent_seq = seq;
    return 1;
}

/* The events could not all be stored for want of room (507) or a failed
 * write (503): what was stored is acknowledged, the agent keeps the rest
 * in its spool and sends it again. FERRY_REPLIED. */
static int agentapi__events_unstored(ferry_http_req *r, ferry_exec *e, int code)
{
    char msg[PATH_MAX + 128];
    ferry_space_forget(r->d);
    if (code != FERRY_ENOSPC || ferry_space_check(r->d, msg, sizeof(msg)) == 0)
        snprintf(msg, sizeof(msg), "the log of %s cannot be written in %s: %s; retry later", e->id,
                 r->d->data_dir, ferry_strerror(code));
    ferry_exec_save_progress(r->d, e);
    ferry_http_json(r->req, code == FERRY_ENOSPC ? 507 : 503,
                    json_pack("{s:s, s:I}", "error", msg, "acked", (json_int_t)e->agent_seq));
    return FERRY_REPLIED;
}

/* {"events":[{"seq","stream","time","text"}...]}: simple to write by hand.
 * 0, or FERRY_REPLIED. */
static int agentapi__events_json(ferry_http_req *r, ferry_exec *e)
{
    json_t *body = ferry_http_body_object(r);
    if (body == NULL)
        return FERRY_REPLIED;
    size_t i;
    json_t *ev;
    int rc = 1;
    json_array_foreach(json_object_get(body, "events"), i, ev)
    {
        json_t *text = json_object_get(ev, "text");
        if (!json_is_string(text) ||
            (rc = agentapi__store_event(r->d, e, json_integer_value(json_object_get(ev, "seq")),
                                        json_string_value(json_object_get(ev, "stream")),
                                        json_number_value(json_object_get(ev, "time")),
                                        json_string_value(text), json_string_length(text))) <= 0)
            break;
    }
    json_decref(body);
    return rc < 0 ? agentapi__events_unstored(r, e, rc) : 0;
}

int ferry_agentapi_event_head(const char *p, const char *end, int64_t *seq, char *stream,
                              double *time, size_t *len, const char **text)
{
    const char *nl = memchr(p, '\n', (size_t)(end - p) < 100 ? (size_t)(end - p) : 100);
    if (nl == NULL)
        return 0;
    char head[100];
    memcpy(head, p, (size_t)(nl - p));
    head[nl - p] = '\0';
    long long s;
    unsigned long long n;
    int used = 0;
    if (sscanf(head, "%lld %15s %lf %llu%n", &s, stream, time, &n, &used) != 4 ||
        head[used] != '\0' || n >= (unsigned long long)(end - nl - 1) || nl[1 + n] != '\n')
        return 0;
    *seq = s;
    *len = (size_t)n;
    *text = nl + 1;
    return 1;
}

/* The agent's bulk format: no JSON to parse for the bytes of the log.
 * 0, or FERRY_REPLIED (what came before a bad event is kept). */
static int agentapi__events_framed(ferry_http_req *r, ferry_exec *e)
{
    const char *p = r->req->entity.base, *end = p + r->req->entity.len;
    for (int k = 1; p != NULL && p < end; k++) {
        int64_t seq;
        char stream[16];
        double time;
        size_t len;
        const char *text;
        if (!ferry_agentapi_event_head(p, end, &seq, stream, &time, &len, &text)) {
            ferry_exec_save_progress(r->d, e);
            ferry_http_error(r->req, 400, NULL,
                             "event %d of the body is not \"<seq> <stream> "
                             "<time> <length>\\n<text>\\n\"",
                             k);
            return FERRY_REPLIED;
        }
        int rc = agentapi__store_event(r->d, e, seq, stream, time, text, len);
        if (rc < 0)
            return agentapi__events_unstored(r, e, rc);
        if (rc == 0)
            break;
        p = text + len + 1;
    }
    return 0;
}

/* Whether the run's stop-condition holds for its latest metadata. */
static void agentapi__check_stop_condition(ferryd *d, ferry_exec *e)
{
    if (e->stop_condition == NULL || e->status != FERRY_STATUS_STARTED)
        return;
    /* A bad expression was refused when the step file was read; one that
     * cannot be told yet (a key with no value) is not met. */
    if (ferry_condition_eval(e->stop_condition, e->metadata, e->parameters, NULL, 0) == 1)
        ferry_lifecycle_stop_condition_met(d, e);
}

void ferry_agentapi_events(ferry_http_req *r)
{
    ferry_exec *e = r->exec;
    /* Log text is new data of any size (space.c): under the reserve the
     * agent keeps it spooled and sends it again (a 5xx is retried). */
    char msg[PATH_MAX + 128];
    if (ferry_space_check(r->d, msg, sizeof(msg)) < 0) {
        ferry_http_json(r->req, 507,
                        json_pack("{s:s, s:I}", "error", msg, "acked", (json_int_t)e->agent_seq));
        return;
    }
    ssize_t ct = h2o_find_header(&r->req->headers, H2O_TOKEN_CONTENT_TYPE, -1);
    int framed = ct >= 0 && h2o_memis(r->req->headers.entries[ct].value.base,
                                      r->req->headers.entries[ct].value.len,
                                      H2O_STRLIT("application/x-ferry-events"));
    if ((framed ? agentapi__events_framed(r, e) : agentapi__events_json(r, e)) < 0)
        return;
    if (e->metadata_dirty) /* new points; saving clears it */
        agentapi__check_stop_condition(r->d, e);
    ferry_exec_save_progress(r->d, e);
    ferry_http_json(r->req, 200, json_pack("{s:I}", "acked", (json_int_t)e->agent_seq));
}

void ferry_agentapi_status(ferry_http_req *r)
{
    ferry_exec *e = r->exec;
    json_t *body = ferry_http_body_object(r);
    if (body == NULL)
        return;
    const char *status = json_string_value(json_object_get(body, "status"));
    if (status && strcmp(status, "started") == 0) {
        if (e->status == FERRY_STATUS_QUEUED)
            ferry_lifecycle_transition(r->d, e, FERRY_STATUS_STARTED, NULL, FERRY_NO_EXIT_CODE);
        ferry_http_json(r->req, 200, json_object());
    } else if (status && strcmp(status, "finished") == 0) {
        json_t *code = json_object_get(body, "exit_code");
        const char *reason = json_string_value(json_object_get(body, "reason"));
        ferry_lifecycle_finished(
            r->d, e, json_is_integer(code) ? (int)json_integer_value(code) : -1, reason);
        ferry_db_commit(r->d); /* terminal: durable before the agent moves on */
        ferry_http_json(r->req, 200, json_object());
    } else {
        ferry_http_error(r->req, 400, "status", "status must be \"started\" or \"finished\"");
    }
    json_decref(body);
}

/* --- the handlers of routes.c --- */

int ferry_agentapi_guard_worker(ferry_http_req *r)
{
    r->worker = agentapi__worker(r);
    return r->worker ? 0 : FERRY_EAUTH;
}

int ferry_agentapi_guard_exec(ferry_http_req *r)
{
    int rc = ferry_agentapi_guard_worker(r);
    if (rc == 0 && (r->exec = agentapi__exec(r, r->worker)) == NULL)
        rc = FERRY_ENOENT;
    return rc;
}

/* The store's uploads answer with the body sent, through a reply. */
static void agentapi__uploads(ferry_http_req *r,
                              void (*answer)(ferryd *, ferry_exec *, const json_t *, ferry_reply *))
{
    json_t *body = ferry_http_body_object(r);
    if (body == NULL)
        return;
    answer(r->d, r->exec, body, ferry_http_reply(r->d, r->req));
    json_decref(body);
}

void ferry_agentapi_outputs(ferry_http_req *r)
{
    agentapi__uploads(r, ferry_uploads_answer);
}

void ferry_agentapi_uploaded(ferry_http_req *r)
{
    agentapi__uploads(r, ferry_uploads_report);
}

void ferry_agentapi_not_post(ferry_http_req *r)
{
    ferry_http_error(r->req, 405, NULL, "agent calls are POSTs");
}

void ferry_agentapi_no_endpoint(ferry_http_req *r)
{
    ferry_http_error(r->req, 404, NULL, "no such agent endpoint");
}
