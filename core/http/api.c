/* The user API (docs/api.md): snapshots, executions, logs, outputs. */
#include "api.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unistd.h>

#include "uploadrows.h"
#include "commits.h"
#include "db.h"
#include "exec.h"
#include "lifecycle.h"
#include "log.h"
#include "logstore.h"
#include "datumrows.h"
#include "datums.h"
#include "objinputs.h"
#include "scheduler.h"
#include "request.h"
#include "snapshots.h"
#include "space.h"
#include "stepfile.h"
#include "store.h"
#include "submit.h"
#include "util.h"
#include "views.h"

#define API__LIST_LIMIT 1000

/* --- creating executions (submit.c) --- */

void ferry_api_create_with(ferry_http_req *r, ferry_commit_ready_fn create)
{
    /* New work brings logs and outputs: none while the data folder is
     * under its reserve (space.c). */
    char msg[PATH_MAX + 128];
    if (ferry_space_check(r->d, msg, sizeof(msg)) < 0) {
        ferry_http_code_error(r->req, FERRY_ENOSPC, "%s", msg);
        return;
    }
    json_t *body = ferry_http_body_object(r);
    if (body == NULL)
        return;
    if (json_object_get(body, "commit")) {
        ferry_commit_prepare(r, body, create); /* once its snapshot is in the store */
        return;
    }
    create(r->d, r->user, body, NULL, ferry_http_reply(r->d, r->req));
}

void ferry_api_create(ferry_http_req *r)
{
    ferry_api_create_with(r, ferry_submit);
}

/* The creation body of a copy of `e`: the same step, snapshot, parameters
 * and inputs (as resolved), environment, variables, tags, title, image and
 * limits; `over`'s parameters, environment and title win. */
static json_t *api__rerun_body(const ferry_exec *e, const json_t *over)
{
    json_t *params = json_deep_copy(e->parameters ? e->parameters : json_object());
    json_t *given = json_object_get(over, "parameters");
    if (json_is_object(given))
        json_object_update(params, given);
    const char *env = json_string_value(json_object_get(over, "environment"));
    const char *title = json_string_value(json_object_get(over, "title"));
    json_t *body =
        json_pack("{s:s, s:s, s:s, s:o, s:s, s:O, s:O, s:I, s:I, s:b}", "project", e->project,
                  "step", e->step, "snapshot", e->snapshot, "parameters", params, "environment",
                  env ? env : e->environment, "environment_variables", e->env, "tags", e->tags,
                  "time_limit", (json_int_t)e->time_limit, "no_output_timeout",
                  (json_int_t)e->no_output_timeout, "priority", e->priority);
    json_object_set_new(body, "autorestart", json_boolean(e->autorestart));
    /* A copy starts afresh: the outputs an auto-restart handed on are not
     * one of the step's inputs. */
    json_t *inputs = json_deep_copy(e->inputs ? e->inputs : json_object());
    json_object_del(inputs, "_restart");
    json_object_set_new(body, "inputs", inputs);
    if (title || e->title)
        json_object_set_new(body, "title", json_string(title ? title : e->title));
    if (e->image)
        json_object_set_new(body, "image", json_string(e->image));
    if (e->based_on)
        json_object_set_new(body, "based_on", json_string(e->based_on));
    return body;
}

/* POST /v1/executions/ID/rerun {parameters?, environment?, title?}: a new
 * execution of what ID ran (issue 19, point 6), checked as any creation is
 * (the step file, the parameters with their overrides, the inputs). Of a
 * commit, the same commit. Its owner is who asks. */
void ferry_api_rerun(ferry_http_req *r)
{
    json_t *over = ferry_http_body_object(r);
    if (over == NULL)
        return;
    const json_t *given = json_object_get(over, "parameters");
    const json_t *env = json_object_get(over, "environment");
    if ((given && !json_is_object(given)) || (env && !json_is_string(env))) {
        ferry_http_error(r->req, 400,
                         given && !json_is_object(given) ? "parameters" : "environment",
                         "'parameters' must be an object and 'environment' a name");
        json_decref(over);
        return;
    }
    json_t *body = api__rerun_body(r->exec, over);
    json_decref(over);
    ferry_commit_info commit = {.json = r->exec->git_commit, .lfs_files = 0};
    ferry_submit(r->d, r->user, body, r->exec->git_commit ? &commit : NULL,
                 ferry_http_reply(r->d, r->req));
}

/* --- users --- */

/* With users configured, every call names its user with a bearer token;
 * 0, or FERRY_REPLIED (a 401 was sent). */
/* The user the request's token names: 0 and r->user (NULL without users),
 * FERRY_EAUTH without a token, FERRY_EPERM for one no user has. */
static int api__token_user(ferry_http_req *r)
{
    r->user = NULL;
    if (r->d->cfg.n_users == 0)
        return 0;
    char buf[256], hash[65];
    const char *token = ferry_http_bearer(r, buf, sizeof(buf));
    if (token == NULL)
        return FERRY_EAUTH;
    ferry_sha256_hex(token, strlen(token), hash);
    r->user = ferry_config_user_by_hash(&r->d->cfg, hash);
    return r->user ? 0 : FERRY_EPERM;
}

static int api__authenticate(ferry_http_req *r)
{
    int rc = api__token_user(r);
    if (rc == FERRY_EAUTH)
        ferry_http_error(r->req, 401, NULL,
                         "this ferryd requires a token: send Authorization: Bearer <token>");
    else if (rc < 0)
        ferry_http_error(r->req, 401, NULL, "the token is not valid");
    return rc < 0 ? FERRY_REPLIED : 0;
}

int ferry_api_token_ok(ferry_http_req *r)
{
    return api__token_user(r) == 0;
}

static int api__is_admin(const ferry_http_req *r)
{
    return r->d->cfg.n_users == 0 || (r->user && r->user->admin);
}

static int api__may_see(const ferry_http_req *r, const ferry_exec *e)
{
    return api__is_admin(r) || (r->user && e->owner && strcmp(e->owner, r->user->name) == 0);
}

static const char *api__owner_filter(const ferry_http_req *r)
{
    return api__is_admin(r) ? NULL : r->user->name;
}

const char *ferry_api_owner_filter(const ferry_http_req *r)
{
    return api__owner_filter(r);
}

void ferry_api_whoami(ferry_http_req *r)
{
    json_t *who =
        json_pack("{s:s?, s:b}", "user", r->user ? r->user->name : NULL, "admin", api__is_admin(r));
    ferry_http_json(r->req, 200, who);
}

/* --- one execution --- */

/* Resolve the <ID> of the path; 0, or a reply was sent. */
static int api__find(ferry_http_req *r, const char *ref, ferry_exec **e, int *owned)
{
    char project[128];
    int has_project = ferry_http_query_arg(r, "project", project, sizeof(project));
    if (has_project < 0)
        return has_project;
    int rc =
        ferry_exec_find(r->d, ref, has_project ? project : NULL, api__owner_filter(r), e, owned);
    if (rc == 0 && !api__may_see(r, *e)) {
        /* Another user's execution does not exist, as far as this user knows. */
        ferry_exec_release(*e, *owned);
        rc = FERRY_ENOENT;
    }
    if (rc == FERRY_EEXIST)
        ferry_http_error(r->req, 409, NULL,
                         "execution #%s exists in several projects; give the project or the id",
                         ref);
    else if (rc < 0)
        ferry_http_error(r->req, 404, NULL, "no execution '%s'", ref);
    return rc;
}

/* A commit filter: 4 to 40 hex digits, lowercased; 0 or FERRY_REPLIED. */
static int api__commit_arg(ferry_http_req *r, char *commit)
{
    size_t n = strlen(commit);
    int ok = n >= 4 && n <= 40;
    for (size_t i = 0; ok && i < n; i++) {
        commit[i] = (char)tolower((unsigned char)commit[i]);
        ok = isxdigit((unsigned char)commit[i]);
    }
    if (!ok) {
        ferry_http_error(r->req, 400, "commit",
                         "commit must be a sha or a prefix of one (4 to 40 hex digits), not '%s'",
                         commit);
        return FERRY_REPLIED;
    }
    return 0;
}

void ferry_api_list(ferry_http_req *r)
{
    char status[32], project[128], step[256], limit_s[32], commit[64], tag[256];
    int has_status, has_project, has_step, has_limit, has_commit, has_tag;
    if ((has_status = ferry_http_query_arg(r, "status", status, sizeof(status))) < 0 ||
        (has_project = ferry_http_query_arg(r, "project", project, sizeof(project))) < 0 ||
        (has_step = ferry_http_query_arg(r, "step", step, sizeof(step))) < 0 ||
        (has_limit = ferry_http_query_arg(r, "limit", limit_s, sizeof(limit_s))) < 0 ||
        (has_commit = ferry_http_query_arg(r, "commit", commit, sizeof(commit))) < 0 ||
        (has_tag = ferry_http_query_arg(r, "tag", tag, sizeof(tag))) < 0)
        return;
    long limit = API__LIST_LIMIT;
    if (has_limit) {
        char *end;
        limit = strtol(limit_s, &end, 10);
        if (end == limit_s || *end != '\0' || limit < 1 || limit > API__LIST_LIMIT) {
            ferry_http_error(r->req, 400, "limit", "limit must be 1 to %d, not '%s'",
                             API__LIST_LIMIT, limit_s);
            return;
        }
    }
    ferry_status s;
    if (has_status && ferry_status_parse(status, &s) < 0) {
        ferry_http_error(r->req, 400, "status",
                         "unknown status '%s' (created, queued, started, stopping, stopped, "
                         "error, complete)",
                         status);
        return;
    }
    if (has_commit && api__commit_arg(r, commit) < 0)
        return;
    ferry_exec_filter f = {.status = has_status ? status : NULL,
                           .project = has_project ? project : NULL,
                           .step = has_step ? step : NULL,
                           .owner = api__owner_filter(r),
                           .commit = has_commit ? commit : NULL,
                           .tag = has_tag ? tag : NULL,
                           .limit = (int)limit};
    json_t *list = ferry_view_exec_list(r->d, &f);
    ferry_http_json(r->req, 200, json_pack("{s:o}", "executions", list));
}

void ferry_api_stop(ferry_http_req *r)
{
    ferry_exec *e = r->exec;
    if (!e->active) {
        ferry_http_error(r->req, 409, NULL, "execution #%lld already ended: %s",
                         (long long)e->counter, ferry_status_name(e->status));
        return;
    }
    ferry_lifecycle_request_stop(r->d, e);
    ferry_http_json(r->req, 200, ferry_view_exec(r->d, e));
}

/* GET .../wait: answered at the terminal status or at the timeout. */
typedef struct api__waiter {
    ferry_exec_watcher w;
    ferryd *d;
    ferry_held *held;
    ferry_exec *e; /* NULL once it ended */
    char id[37];
} api__waiter;

static void api__waiter_reply(api__waiter *wt, ferryd *d)
{
    h2o_req_t *req = ferry_held_req(wt->held);
    if (req) {
        int owned = 0;
        ferry_exec *e = wt->e;
        if (e == NULL && ferry_exec_find(d, wt->id, NULL, NULL, &e, &owned) < 0)
            e = NULL;
        if (e)
            ferry_http_json(req, 200, ferry_view_exec(d, e));
        else
            ferry_http_error(req, 404, NULL, "no execution '%s'", wt->id);
        ferry_exec_release(e, owned);
    }
    if (wt->e)
        ferry_exec_unwatch(wt->e, &wt->w);
    ferry_held_release(wt->held);
    free(wt);
}

static void api__waiter_end(ferry_exec_watcher *w, ferry_exec *e)
{
    api__waiter *wt = (api__waiter *)w;
    (void)e;
    /* Called with e still readable: reply with its final state now. */
    h2o_req_t *req = ferry_held_req(wt->held);
    if (req)
        ferry_http_json(req, 200, ferry_view_exec(wt->d, e));
    wt->e = NULL;
    ferry_held_release(wt->held);
    free(wt);
}

static void api__waiter_timeout(ferry_held *h, void *arg)
{
    (void)h;
    api__waiter *wt = arg;
    api__waiter_reply(wt, wt->d);
}

static void api__waiter_gone(ferry_held *h, void *arg)
{
    (void)h;
    api__waiter *wt = arg;
    if (wt->e)
        ferry_exec_unwatch(wt->e, &wt->w);
    wt->e = NULL;
    ferry_held_release(wt->held);
    free(wt);
}

void ferry_api_wait(ferry_http_req *r)
{
    ferry_exec *e = r->exec;
    char t[32];
    double timeout = 30;
    int has_timeout = ferry_http_query_arg(r, "timeout", t, sizeof(t));
    if (has_timeout < 0)
        return;
    if (has_timeout) {
        char *end;
        timeout = strtod(t, &end);
        if (end == t || *end != '\0' || timeout != timeout) {
            ferry_http_error(r->req, 400, "timeout",
                             "timeout must be a number of seconds, not '%s'", t);
            return;
        }
    }
    if (timeout < 0)
        timeout = 0;
    if (timeout > 600)
        timeout = 600;
    if (!e->active || timeout == 0) {
        ferry_http_json(r->req, 200, ferry_view_exec(r->d, e));
        return;
    }
    api__waiter *wt = ferry_xcalloc(1, sizeof(*wt));
    wt->e = e;
    wt->d = r->d;
    memcpy(wt->id, e->id, sizeof(wt->id));
    wt->w.on_end = api__waiter_end;
    ferry_exec_watch(e, &wt->w);
    wt->held = ferry_http_hold(r->d, r->req, (uint64_t)(timeout * 1000), api__waiter_timeout,
                               api__waiter_gone, wt);
}

/* GET .../logs: a streamed response. What is stored goes first, read piece
 * by piece from `backlog` as h2o asks for more (a log of GBs is never whole
 * in memory); with ?follow=1, the execution's watchers feed it after that.
 * h2o allows one send in flight; lines arriving meanwhile wait in `pending`
 * and go out when h2o asks to proceed. */
#define API__LOG_PIECE (1024 * 1024)

typedef struct api__follow {
    h2o_generator_t gen;
    ferry_exec_watcher w;
    h2o_req_t *req;
    ferry_log_cursor *backlog; /* NULL once it is all sent */
    ferry_exec *e;             /* NULL once it ended */
    char *inflight;
    char *pending;
    size_t pending_len, pending_cap;
    int sending, ended, finished, gone;
    int metadata; /* ?metadata=1: only the lines that are metadata points */
} api__follow;

static void api__follow_send(api__follow *f, char *data, size_t len, int final)
{
    free(f->inflight);
    f->inflight = data;
    h2o_iovec_t buf = h2o_iovec_init(data, len);
    f->sending = 1;
    if (final)
        f->finished = 1;
    h2o_send(f->req, &buf, buf.len ? 1 : 0,
             final ? H2O_SEND_STATE_FINAL : H2O_SEND_STATE_IN_PROGRESS);
}

/* The next piece of the stored log; 1 when one was sent. A read error ends
 * the response early (the status line went out long ago). */
static int api__follow_backlog(api__follow *f)
{
    char *piece = NULL;
    size_t len = 0;
    int rc = ferry_logstore_cursor_next(f->backlog, API__LOG_PIECE, &piece, &len);
    if (rc <= 0) {
        ferry_logstore_cursor_close(f->backlog);
        f->backlog = NULL;
    }
    if (rc < 0) { /* the response ends with what was sent */
        if (f->e)
            ferry_exec_unwatch(f->e, &f->w);
        f->e = NULL;
        f->ended = 1;
    }
    if (len == 0) {
        free(piece);
        return 0;
    }
    api__follow_send(f, piece, len, 0);
    return 1;
}

static void api__follow_flush(api__follow *f)
{
    if (f->sending || f->finished || f->gone)
        return;
    if (f->backlog && api__follow_backlog(f))
        return;
    if (f->pending_len == 0 && !f->ended)
        return;
    char *data = f->pending;
    size_t len = f->pending_len;
    f->pending = NULL;
    f->pending_len = f->pending_cap = 0;
    api__follow_send(f, data, len, f->ended);
}

static void api__follow_append(api__follow *f, const char *data, size_t len)
{
    FERRY_XGROW(f->pending, f->pending_cap, f->pending_len + len);
    memcpy(f->pending + f->pending_len, data, len);
    f->pending_len += len;
}

static void api__follow_event(ferry_exec_watcher *w, ferry_exec *e, const char *line, size_t len)
{
    (void)e;
    api__follow *f = (api__follow *)((char *)w - offsetof(api__follow, w));
    if (!f->metadata) {
        api__follow_append(f, line, len);
    } else {
        /* `line` holds one or more NDJSON lines, each ending in '\n'. */
        for (const char *p = line, *end = line + len, *nl; p < end; p = nl + 1) {
            nl = memchr(p, '\n', (size_t)(end - p));
            if (nl == NULL)
                break;
            if (ferry_logstore_line_is_metadata(p, (size_t)(nl - p)))
                api__follow_append(f, p, (size_t)(nl - p) + 1);
        }
    }
    api__follow_flush(f);
}

static void api__follow_end(ferry_exec_watcher *w, ferry_exec *e)
{
    (void)e;
    api__follow *f = (api__follow *)((char *)w - offsetof(api__follow, w));
    f->e = NULL;
    f->ended = 1;
    api__follow_flush(f);
}

static void api__follow_proceed(h2o_generator_t *gen, h2o_req_t *req)
{
    (void)req;
    api__follow *f = (api__follow *)gen;
    f->sending = 0;
    api__follow_flush(f);
}

static void api__follow_stop(h2o_generator_t *gen, h2o_req_t *req)
{
    (void)req;
    api__follow *f = (api__follow *)gen;
    f->gone = 1;
    if (f->e)
        ferry_exec_unwatch(f->e, &f->w);
    f->e = NULL;
}

static void api__follow_dispose(void *p)
{
    api__follow *f = p;
    if (f->e)
        ferry_exec_unwatch(f->e, &f->w);
    ferry_logstore_cursor_close(f->backlog);
    free(f->inflight);
    free(f->pending);
}

void ferry_api_logs(ferry_http_req *r)
{
    ferry_exec *e = r->exec;
    char after[32], before[32], tail[32], metadata[32], follow_s[32];
    int has_after, has_before, has_tail, has_metadata, has_follow;
    if ((has_after = ferry_http_query_arg(r, "after", after, sizeof(after))) < 0 ||
        (has_before = ferry_http_query_arg(r, "before", before, sizeof(before))) < 0 ||
        (has_tail = ferry_http_query_arg(r, "tail", tail, sizeof(tail))) < 0 ||
        (has_metadata = ferry_http_query_arg(r, "metadata", metadata, sizeof(metadata))) < 0 ||
        (has_follow = ferry_http_query_arg(r, "follow", follow_s, sizeof(follow_s))) < 0)
        return;
    ferry_log_query q = {0};
    q.after = has_after ? strtoll(after, NULL, 10) : 0;
    /* before: only events with i < N (the web UI's "load earlier"). */
    q.before = has_before ? strtoll(before, NULL, 10) : 0;
    if (q.before < 0)
        q.before = 0;
    /* tail: the last N events; absent (-1) means all of them, 0 none. */
    q.tail = has_tail ? strtoll(tail, NULL, 10) : -1;
    if (q.tail < -1)
        q.tail = -1;
    q.metadata = has_metadata && strcmp(metadata, "0") != 0;
    /* A range that ends before the present has nothing to follow. */
    int follow = has_follow && strcmp(follow_s, "0") != 0 && !q.before;
    ferry_log_cursor *backlog = NULL;
    if (ferry_logstore_cursor_open(r->d, e->id, &q, &backlog) < 0) {
        ferry_http_error(r->req, 500, NULL, "the log could not be read");
        return;
    }
    r->req->res.status = 200;
    r->req->res.reason = "OK";
    h2o_add_header(&r->req->pool, &r->req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
                   H2O_STRLIT("application/x-ndjson"));
    api__follow *f = h2o_mem_alloc_shared(&r->req->pool, sizeof(*f), api__follow_dispose);
    memset(f, 0, sizeof(*f));
    f->gen.proceed = api__follow_proceed;
    f->gen.stop = api__follow_stop;
    f->req = r->req;
    f->backlog = backlog;
    f->metadata = q.metadata;
    if (follow && e->active) {
        f->e = e;
        f->w.on_event = api__follow_event;
        f->w.on_end = api__follow_end;
        ferry_exec_watch(e, &f->w);
    } else {
        f->ended = 1;
    }
    h2o_start_response(r->req, &f->gen);
    api__follow_flush(f);
}

void ferry_api_outputs(ferry_http_req *r)
{
    ferry_exec *e = r->exec;
    json_t *outputs = ferry_exec_outputs_json(r->d, e->id);
    ferry_datums_annotate_outputs(r->d, e->id, outputs);
    ferry_http_json(r->req, 200, json_pack("{s:o}", "outputs", outputs));
}

#define API__DOWNLOAD_TTL_S 300

/* A store that is no local directory: 302 to a short-lived presigned GET
 * (the bytes never pass through ferryd). 0 with a reply sent, or the
 * FERRY_E* code of a store that cannot presign (nothing sent). */
static int api__output_redirect(ferry_http_req *r, ferry_exec *e, const char *name, const char *key)
{
    if (!ferry_exec_has_output(r->d, e->id, name, NULL)) {
        ferry_http_error(r->req, 404, NULL, "execution #%lld has no output '%s'",
                         (long long)e->counter, name);
        return 0;
    }
    int ttl = r->d->cfg.presigned_url_ttl_s < API__DOWNLOAD_TTL_S ? r->d->cfg.presigned_url_ttl_s
                                                                  : API__DOWNLOAD_TTL_S;
    ferry_error_detail err = {.struct_size = sizeof(err)};
    char *url = ferry_store_presign(r->d, "GET", key, ttl, &err);
    if (url == NULL)
        return err.code < 0 ? err.code : FERRY_ENOTSUP;
    size_t len = strlen(url);
    char *copy = h2o_mem_alloc_pool(&r->req->pool, len);
    memcpy(copy, url, len);
    free(url);
    r->req->res.status = 302;
    r->req->res.reason = "Found";
    h2o_add_header(&r->req->pool, &r->req->res.headers, H2O_TOKEN_LOCATION, NULL, copy, len);
    h2o_add_header(&r->req->pool, &r->req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL,
                   H2O_STRLIT("no-store"));
    r->req->res.content_length = 0;
    h2o_send_inline(r->req, "", 0);
    return 0;
}

void ferry_api_output_download(ferry_http_req *r)
{
    ferry_exec *e = r->exec;
    const char *name = ferry_http_join_segs(r, 4);
    char key[PATH_MAX], path[PATH_MAX];
    if (!ferry_safe_relpath(name)) {
        ferry_http_error(r->req, 400, NULL, "invalid output name");
        return;
    }
    snprintf(key, sizeof(key), "executions/%s/outputs/%s", e->id, name);
    int rc = ferry_store_local_path(r->d, key, path, sizeof(path));
    if (rc == 0 && h2o_file_send(r->req, 200, "OK", path,
                                 h2o_iovec_init(H2O_STRLIT("application/octet-stream")), 0) == 0)
        return;
    if (rc == FERRY_ENOTSUP && api__output_redirect(r, e, name, key) == 0)
        return;
    if (rc == FERRY_ENOTSUP)
        ferry_http_error(r->req, 501, NULL, "this store cannot serve outputs through ferryd");
    else
        ferry_http_error(r->req, 404, NULL, "execution #%lld has no output '%s'",
                         (long long)e->counter, name);
}

/* --- the handlers of routes.c --- */

int ferry_api_guard_user(ferry_http_req *r)
{
    return api__authenticate(r);
}

int ferry_api_guard_exec(ferry_http_req *r)
{
    int rc = api__authenticate(r);
    if (rc == 0)
        rc = api__find(r, r->segs[2], &r->exec, &r->exec_owned);
    if (rc < 0)
        r->exec = NULL; /* released, if it was found at all */
    return rc;
}

void ferry_api_environments(ferry_http_req *r)
{
    ferry_http_json(r->req, 200,
                    json_pack("{s:o}", "environments", ferry_scheduler_envs_json(r->d)));
}

/* POST .../drain and .../undrain: an operator's, so admins only (everyone
 * on the loopback default without users). Answers the environment. */
static void api__env_drain(ferry_http_req *r, int draining)
{
    const char *what = draining ? "drain" : "undrain";
    if (!api__is_admin(r)) {
        ferry_http_error(r->req, 403, NULL, "only an admin may %s an environment", what);
        return;
    }
    ferry_env *env = ferry_scheduler_env(r->d, r->segs[2]);
    if (env == NULL) {
        ferry_http_error(r->req, 404, NULL, "no environment '%s'", r->segs[2]);
        return;
    }
    /* An operator's word is stored before it is taken: refused whole, as
     * new work is, while the data folder is full (space.c). */
    char msg[PATH_MAX + 128];
    if (ferry_space_check(r->d, msg, sizeof(msg)) < 0) {
        ferry_http_code_error(r->req, FERRY_ENOSPC, "%s", msg);
        return;
    }
    if (ferry_drain_set(r->d, env, draining) < 0) {
        ferry_http_error(r->req, 500, NULL,
                         "environment '%s': cannot %s: its state could not be stored (see "
                         "ferryd's log)",
                         env->cfg->name, what);
        return;
    }
    ferry_http_json(r->req, 200, ferry_scheduler_env_json(env));
}

void ferry_api_env_drain(ferry_http_req *r)
{
    api__env_drain(r, 1);
}

void ferry_api_env_undrain(ferry_http_req *r)
{
    api__env_drain(r, 0);
}

void ferry_api_show(ferry_http_req *r)
{
    ferry_http_json(r->req, 200, ferry_view_exec(r->d, r->exec));
}

void ferry_api_no_endpoint(ferry_http_req *r)
{
    ferry_http_error(r->req, 404, NULL, "no such endpoint");
}
