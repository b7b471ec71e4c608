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
#include "util.h"
#include "views.h"

#define API__LIST_LIMIT 1000

/* --- creating executions --- */

static int api__valid_project(const char *p)
{
    size_t n = strlen(p);
    if (n == 0 || n > 100)
        return 0;
    for (; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              strchr("._-", *p)))
            return 0;
    return 1;
}

static const char *api__env_names(ferryd *d, char *buf, size_t cap)
{
    buf[0] = '\0';
    for (size_t i = 0; i < d->n_envs; i++) {
        size_t n = strlen(buf);
        snprintf(buf + n, cap - n, "%s%s", i ? ", " : "", d->envs[i]->cfg->name);
    }
    return buf;
}

static json_t *api__step_env(const ferry_step *step)
{
    json_t *env = json_object();
    for (size_t i = 0; i < step->n_env; i++)
        if (step->env[i].default_value)
            json_object_set_new(env, step->env[i].name, json_string(step->env[i].default_value));
    return env;
}

/* What a creation may set over the step's (as vh exec run's --title,
 * --image and --var do): "title", "image" (strings) and
 * "environment_variables" ({NAME: string}); 0, or FERRY_REPLIED. */
static int api__check_overrides(ferry_http_req *r, const json_t *body)
{
    static const char *const strings[] = {"title", "image"};
    for (size_t i = 0; i < 2; i++) {
        const json_t *v = json_object_get(body, strings[i]);
        if (v &&
            !(json_is_string(v) && json_string_length(v) > 0 && json_string_length(v) <= 500)) {
            ferry_http_error(r->req, 400, strings[i], "'%s' must be a text of 1 to 500 characters",
                             strings[i]);
            return FERRY_REPLIED;
        }
    }
    const json_t *vars = json_object_get(body, "environment_variables");
    if (vars == NULL)
        return 0;
    const char *name;
    const json_t *value;
    int ok = json_is_object(vars);
    json_object_foreach((json_t *)vars, name, value)
    {
        ok = ok && json_is_string(value) && name[0] != '\0' && !isdigit((unsigned char)name[0]) &&
             strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_") ==
                 strlen(name);
        if (!ok)
            break;
    }
    if (!ok) {
        ferry_http_error(r->req, 400, "environment_variables",
                         "'environment_variables' must map names (letters, digits, _) to texts%s%s",
                         json_is_object(vars) && name ? "; not: " : "",
                         json_is_object(vars) && name ? name : "");
        return FERRY_REPLIED;
    }
    return 0;
}

/* Checks the request's shape; 0, or FERRY_REPLIED (a 400 was sent). */
static int api__create_fields(ferry_http_req *r, json_t *body, const char **project,
                              const char **step, const char **sha)
{
    *project = json_string_value(json_object_get(body, "project"));
    *step = json_string_value(json_object_get(body, "step"));
    *sha = json_string_value(json_object_get(body, "snapshot"));
    const json_t *params = json_object_get(body, "parameters");
    const json_t *inputs = json_object_get(body, "inputs");
    const json_t *tags = json_object_get(body, "tags");
    if (*project == NULL || !api__valid_project(*project)) {
        ferry_http_error(r->req, 400, "project",
                         "'project' must be 1-100 characters of letters, digits, '.', '_', '-'");
        return FERRY_REPLIED;
    }
    if (*step == NULL || **step == '\0') {
        ferry_http_error(r->req, 400, "step", "'step' is required");
        return FERRY_REPLIED;
    }
    if (*sha == NULL || !ferry_is_sha256_hex(*sha)) {
        ferry_http_error(r->req, 400, "snapshot", "'snapshot' must be a sha256 (64 hex digits)");
        return FERRY_REPLIED;
    }
    if ((params && !json_is_object(params)) || (inputs && !json_is_object(inputs))) {
        ferry_http_error(r->req, 400, params && !json_is_object(params) ? "parameters" : "inputs",
                         "'parameters' and 'inputs' must be JSON objects");
        return FERRY_REPLIED;
    }
    const json_t *based_on = json_object_get(body, "based_on");
    if (based_on && !json_is_null(based_on) &&
        !(json_is_string(based_on) && strlen(json_string_value(based_on)) == 40 &&
          ferry_is_hex(json_string_value(based_on), 40))) {
        ferry_http_error(r->req, 400, "based_on",
                         "'based_on' must be the sha of a commit (40 hex digits) or null");
        return FERRY_REPLIED;
    }
    if (tags && !json_is_array(tags)) {
        ferry_http_error(r->req, 400, "tags", "'tags' must be a list of strings");
        return FERRY_REPLIED;
    }
    if (api__check_overrides(r, body) < 0)
        return FERRY_REPLIED;
    static const char *const flags[] = {"priority", "autorestart"};
    for (size_t i = 0; i < 2; i++) {
        const json_t *v = json_object_get(body, flags[i]);
        if (v && !json_is_boolean(v)) {
            ferry_http_error(r->req, 400, flags[i], "'%s' must be true or false", flags[i]);
            return FERRY_REPLIED;
        }
    }
    static const char *const limits[] = {"time_limit", "no_output_timeout"};
    for (size_t i = 0; i < 2; i++) {
        const json_t *v = json_object_get(body, limits[i]);
        if (v && (!json_is_integer(v) || json_integer_value(v) < 0)) {
            ferry_http_error(r->req, 400, limits[i], "'%s' must be a number of seconds (0: none)",
                             limits[i]);
            return FERRY_REPLIED;
        }
    }
    return 0;
}

/* The request's time limits override the step's. */
static void api__limits(const json_t *body, ferry_exec *e)
{
    const json_t *t = json_object_get(body, "time_limit");
    const json_t *o = json_object_get(body, "no_output_timeout");
    if (t)
        e->time_limit = json_integer_value(t);
    if (o)
        e->no_output_timeout = json_integer_value(o);
}

/* A creation on its way: the object inputs (a store's scheme://) as
 * checked (NULL until then), and the commit it runs (NULL: ad hoc). */
typedef struct api__creation {
    const json_t *objects;
    const ferry_commit_info *commit;
} api__creation;

static int api__check_objects(ferry_http_req *r, json_t *body, const json_t *inputs,
                              const api__creation *c);
static void api__load_stepfile(ferry_http_req *r, json_t *body, const api__creation *c,
                               const char *sha);

/* Where a step file's error is: "5d6e7f8:" before "valohai.yaml:12: ..."
 * for a commit's, nothing for an uploaded snapshot's. */
static const char *api__where(const api__creation *c, char *buf, size_t cap)
{
    const char *sha = c->commit ? json_string_value(json_object_get(c->commit->json, "sha")) : NULL;
    snprintf(buf, cap, "%.7s%s", sha ? sha : "", sha ? ":" : "");
    return buf;
}

/* A step file that could not be read, as the user sees it: a commit's
 * names the commit ("commit 5d6e7f8 has no ferry.yaml ...",
 * "5d6e7f8:valohai.yaml:12: ..."). */
static void api__stepfile_error(ferry_http_req *r, const api__creation *c, int rc, const char *err)
{
    char where[16];
    const char *sha = c->commit ? json_string_value(json_object_get(c->commit->json, "sha")) : NULL;
    if (sha && strncmp(err, "the snapshot ", 13) == 0)
        ferry_http_error(r->req, 400, "commit", "commit %.7s %s", sha, err + 13);
    else
        ferry_http_error(r->req, rc == FERRY_ENOENT ? 404 : 400, sha ? "commit" : "snapshot",
                         "%s%s", api__where(c, where, sizeof(where)), err);
}

/* The execution's own log says, once, that its commit's Git LFS files are
 * pointers: what the user's code reads there is not the data. */
static void api__note_lfs(ferryd *d, ferry_exec *e, const ferry_commit_info *commit)
{
    if (e == NULL || commit == NULL || commit->lfs_files <= 0)
        return;
    char text[256];
    snprintf(text, sizeof(text),
             "commit %.7s holds %lld Git LFS pointer file%s, kept as they are (the files they "
             "point to are not fetched)",
             json_string_value(json_object_get(commit->json, "sha")), (long long)commit->lfs_files,
             commit->lfs_files == 1 ? "" : "s");
    ferry_logstore_append(d, e, "status", ferry_now(), text, strlen(text), 0);
}

/* The environment an execution runs on: the request's "environment", else
 * the step's, else the default. A name ferryd does not know (a Valohai
 * slug: aws-eu-west-1-g4dn-xlarge) goes through environment_aliases; a
 * step's that no alias maps runs on the default environment, *asked then
 * being the name (for the log's note), as a project written for Valohai
 * names Valohai's environments. A request's is the user's own choice: an
 * unknown one is refused (NULL), as it is without a default. */
static const char *api__choose_env(ferryd *d, json_t *body, const ferry_step *step,
                                   const char **asked)
{
    const char *requested = json_string_value(json_object_get(body, "environment"));
    const char *name = requested;
    if (name == NULL)
        name = step->environment ? step->environment : d->cfg.default_environment;
    *asked = name;
    const char *alias = ferry_config_env_alias(&d->cfg, name);
    if (ferry_scheduler_env(d, name) == NULL && alias && ferry_scheduler_env(d, alias))
        name = alias;
    if (ferry_scheduler_env(d, name)) {
        *asked = NULL;
        return name;
    }
    const char *fallback = d->cfg.default_environment;
    if (requested == NULL && fallback && ferry_scheduler_env(d, fallback))
        return fallback;
    return NULL;
}

/* The execution's own log says, once, that the environment its step (or
 * request) named is not one of ferryd's and which one it runs on. */
static void api__note_env(ferryd *d, ferry_exec *e, const char *asked, const char *env_name)
{
    if (e == NULL || asked == NULL)
        return;
    char names[512], text[1024];
    snprintf(text, sizeof(text),
             "environment '%s' is not one of ferryd's (known: %s): running on '%s'", asked,
             api__env_names(d, names, sizeof(names)), env_name);
    ferry_logstore_append(d, e, "status", ferry_now(), text, strlen(text), 0);
}

/* One warning for the keys of the step ferry accepts but does not act on
 * (issue 18, point 8): never silently ignored. */
static void api__note_unused(ferryd *d, ferry_exec *e, const ferry_stepfile *sf,
                             const ferry_step *step)
{
    if (e == NULL || step->unused_keys == NULL)
        return;
    char *text = ferry_asprintf("%s: step '%s': accepted but not acted on by ferry: %s", sf->path,
                                step->name, step->unused_keys);
    ferry_logstore_append(d, e, "status", ferry_now(), text, strlen(text), 0);
    free(text);
}

/* Takes `body`. */
/* A step's mounts are host paths the chosen environment's allowed_mounts
 * lists (issue 18): 0, or FERRY_REPLIED with a 400 naming the mount, the
 * environment and what it allows. */
static int api__check_mounts(ferry_http_req *r, const ferry_step *step, const char *env_name)
{
    const ferry_env_config *env = ferry_config_env(&r->d->cfg, env_name);
    for (size_t i = 0; env && i < step->n_mounts; i++) {
        const ferry_mount_def *m = &step->mounts[i];
        const char *why = NULL;
        if (m->type && strcmp(m->type, "bind") != 0)
            why = "its type is not 'bind': ferry mounts host paths only";
        else if (m->destination[0] != '/')
            why = "its destination is not an absolute path in the container";
        else if (m->source[0] != '/')
            why = "its source is not an absolute host path";
        else if (!ferry_env_mount_allowed(env, m->source))
            why = "its source is not under the environment's allowed_mounts";
        if (why == NULL)
            continue;
        char *allowed = ferry_env_allowed_mounts_text(env);
        ferry_http_error(r->req, 400, "mounts",
                         "step '%s': mount '%s:%s' is refused in environment '%s': %s "
                         "(allowed_mounts: %s)",
                         step->name, m->source, m->destination, env->name, why, allowed);
        free(allowed);
        return FERRY_REPLIED;
    }
    return 0;
}

/* Each of a step's environment-variable-groups is one of ferryd's: 0, or
 * FERRY_REPLIED with a 400 naming it and the known groups. */
static int api__check_env_groups(ferry_http_req *r, const ferry_step *step)
{
    for (size_t i = 0; i < step->n_env_groups; i++) {
        if (ferry_config_env_group(&r->d->cfg, step->env_groups[i]))
            continue;
        char *known = ferry_config_env_group_names(&r->d->cfg);
        ferry_http_error(r->req, 400, "environment-variable-groups",
                         "step '%s': environment variable group '%s' is not in ferryd's "
                         "configuration (known groups: %s)",
                         step->name, step->env_groups[i], known);
        free(known);
        return FERRY_REPLIED;
    }
    return 0;
}

static void api__create_checked(ferry_http_req *r, json_t *body, const api__creation *c)
{
    const char *project, *step_name, *sha;
    char err[1024], names[512], where[16];
    ferry_stepfile *sf = NULL;
    json_t *params = NULL, *inputs = NULL, *datums = NULL;
    if (api__create_fields(r, body, &project, &step_name, &sha) < 0)
        goto done;
    int rc = ferry_snapshot_stepfile(r->d, sha, &sf, NULL, NULL, err, sizeof(err));
    if (rc == FERRY_EAGAIN) { /* read on the thread pool; the reply waits */
        api__load_stepfile(r, body, c, sha);
        goto done;
    }
    if (rc < 0) {
        api__stepfile_error(r, c, rc, err);
        goto done;
    }
    const ferry_step *step = ferry_stepfile_find(sf, step_name);
    if (step == NULL) {
        char *known = ferry_stepfile_step_names(sf);
        ferry_http_error(r->req, 400, "step", "unknown step '%s' in %s%s; %s", step_name,
                         api__where(c, where, sizeof(where)), sf->path, known);
        free(known);
        goto done;
    }
    if (step->broken) { /* the file is usable; this step is not */
        ferry_http_error(r->req, 400, "step", "%s%s", api__where(c, where, sizeof(where)),
                         step->broken);
        goto done;
    }
    if (ferry_step_resolve_parameters(step, json_object_get(body, "parameters"), &params, err,
                                      sizeof(err)) < 0) {
        ferry_http_error(r->req, 400, "parameters", "%s", err);
        goto done;
    }
    if (ferry_step_resolve_inputs(step, json_object_get(body, "inputs"), &inputs, err,
                                  sizeof(err)) < 0) {
        ferry_http_error(r->req, 400, "inputs", "%s", err);
        goto done;
    }
    if (ferry_http_datums_resolve(r, inputs, &datums) < 0) /* datum:// URLs, in place */
        goto done;
    const char *asked = NULL;
    const char *env_name = api__choose_env(r->d, body, step, &asked);
    if (env_name == NULL) {
        ferry_http_error(r->req, 400, "environment", "unknown environment '%s'; known: %s", asked,
                         api__env_names(r->d, names, sizeof(names)));
        goto done;
    }
    if (api__check_mounts(r, step, env_name) < 0 || api__check_env_groups(r, step) < 0)
        goto done;
    if (c->objects == NULL && api__check_objects(r, body, inputs, c) != 1)
        goto done; /* refused, or the reply waits for the check */
    ferry_exec *e = ferry_exec_new();
    ferry_uuid(e->id);
    e->project = ferry_strdup(project);
    e->counter = ferry_exec_next_counter(r->d, project);
    e->step = ferry_strdup(step->name);
    e->environment = ferry_strdup(env_name);
    const char *image = json_string_value(json_object_get(body, "image"));
    e->image = ferry_strdup(image ? image : step->image);
    e->title = ferry_strdup(json_string_value(json_object_get(body, "title")));
    e->stop_condition = ferry_strdup(step->stop_condition);
    /* the request's autorestart, else the step's (ferry.yaml) */
    const json_t *restart = json_object_get(body, "autorestart");
    e->autorestart = restart ? json_is_true(restart) : step->auto_restart;
    e->snapshot = ferry_strdup(sha);
    e->command = ferry_step_build_command(step, params);
    e->parameters = params;
    e->inputs = inputs;
    params = inputs = NULL;
    e->env = api__step_env(step);
    json_object_update(e->env, json_object_get(body, "environment_variables")); /* given win */
    json_t *tags = json_object_get(body, "tags");
    e->tags = tags ? json_incref(tags) : json_array();
    e->time_limit = step->time_limit_s;
    e->no_output_timeout = step->no_output_timeout_s;
    api__limits(body, e);
    e->priority = json_is_true(json_object_get(body, "priority"));
    e->owner = r->user ? ferry_strdup(r->user->name) : NULL;
    e->valohai = sf->valohai;
    e->git_commit = c->commit ? json_incref(c->commit->json) : NULL;
    e->based_on = ferry_strdup(json_string_value(json_object_get(body, "based_on")));
    char id[37];
    memcpy(id, e->id, sizeof(id));
    if (c->objects) /* before it exists: a worker may get it at once */
        ferry_objinputs_save(r->d, id, c->objects);
    ferry_http_datums_save(r->d, id, datums);
    if (ferry_lifecycle_create(r->d, e) < 0) {
        ferry_http_error(r->req, 500, NULL, "the execution could not be stored");
        goto done;
    }
    ferry_exec *live = ferry_map_get(&r->d->active, id);
    api__note_lfs(r->d, live, c->commit);
    api__note_env(r->d, live, asked, env_name);
    api__note_unused(r->d, live, sf, step);
    ferry_http_datums_note(r->d, live, datums);
    ferry_db_commit(r->d); /* the client may act on the reply at once */
    if (live) {
        ferry_http_json(r->req, 201, ferry_view_exec(r->d, live));
    } else {
        int owned;
        ferry_exec *found;
        if (ferry_exec_find(r->d, id, NULL, NULL, &found, &owned) == 0) {
            ferry_http_json(r->req, 201, ferry_view_exec(r->d, found));
            ferry_exec_release(found, owned);
        } else {
            ferry_http_error(r->req, 500, NULL, "the execution vanished");
        }
    }
done:
    json_decref(params);
    json_decref(inputs);
    json_decref(datums);
    json_decref(body);
}

/* A creation waiting for its object inputs to be checked, or for its
 * snapshot's step file to be read. */
typedef struct api__pending {
    ferry_held *held;
    json_t *body;
    json_t *objects;          /* the object inputs already checked, or NULL */
    ferry_commit_info commit; /* .json NULL: ad hoc */
    const ferry_user *user;
} api__pending;

static void api__pending_free(api__pending *p)
{
    ferry_held_release(p->held);
    json_decref(p->body);
    json_decref(p->objects);
    json_decref(p->commit.json);
    free(p);
}

static api__pending *api__pending_new(ferry_http_req *r, json_t *body, const api__creation *c)
{
    api__pending *p = ferry_xcalloc(1, sizeof(*p));
    p->held = ferry_http_hold(r->d, r->req, 0, NULL, NULL, NULL);
    p->body = json_incref(body);
    p->objects = c->objects ? json_deep_copy(c->objects) : NULL;
    if (c->commit) {
        p->commit.json = json_incref(c->commit->json);
        p->commit.lfs_files = c->commit->lfs_files;
    }
    p->user = r->user;
    return p;
}

/* The creation a pending one goes on with, `objects` as checked now. */
static api__creation api__pending_creation(const api__pending *p, const json_t *objects)
{
    return (api__creation){.objects = objects, .commit = p->commit.json ? &p->commit : NULL};
}

static void api__objects_checked(ferryd *d, void *arg, int rc, const json_t *objects,
                                 const char *err)
{
    api__pending *p = arg;
    h2o_req_t *req = ferry_held_req(p->held);
    if (req && rc < 0) {
        ferry_http_error(req, 400, "inputs", "%s", err);
    } else if (req) {
        /* Validated again: the step file may have left the cache meanwhile. */
        ferry_http_req r = {.d = d, .req = req, .user = p->user};
        api__creation c = api__pending_creation(p, objects);
        api__create_checked(&r, json_incref(p->body), &c);
    }
    api__pending_free(p);
}

/* The step file is in the cache now (or its failure is): go on. */
static void api__stepfile_loaded(ferryd *d, void *arg)
{
    api__pending *p = arg;
    h2o_req_t *req = ferry_held_req(p->held);
    if (req) {
        ferry_http_req r = {.d = d, .req = req, .user = p->user};
        api__creation c = api__pending_creation(p, p->objects);
        api__create_checked(&r, json_incref(p->body), &c);
    }
    api__pending_free(p);
}

static void api__load_stepfile(ferry_http_req *r, json_t *body, const api__creation *c,
                               const char *sha)
{
    api__pending *p = api__pending_new(r, body, c);
    ferry_stepfile *sf;
    char err[1024];
    int rc = ferry_snapshot_stepfile(r->d, sha, &sf, api__stepfile_loaded, p, err, sizeof(err));
    if (rc != FERRY_EAGAIN) { /* cannot happen right after a FERRY_EAGAIN; answer anyway */
        ferry_http_error(r->req, 503, "snapshot", "%s", rc < 0 ? err : "try again");
        api__pending_free(p);
    }
}

/* 1: no object input; else the check is under way (0) or refused (< 0),
 * the reply sent or to come. */
static int api__check_objects(ferry_http_req *r, json_t *body, const json_t *inputs,
                              const api__creation *c)
{
    api__creation unchecked = {.objects = NULL, .commit = c->commit};
    api__pending *p = api__pending_new(r, body, &unchecked);
    char err[1024];
    int rc = ferry_objinputs_check(r->d, inputs, api__objects_checked, p, err, sizeof(err));
    if (rc != 0) {
        if (rc < 0)
            ferry_http_error(r->req, 400, "inputs", "%s", err);
        api__pending_free(p);
    }
    return rc;
}

/* The snapshot of the commit is in the store (commits.c). */
static void api__commit_ready(ferry_http_req *r, json_t *body, const ferry_commit_info *commit)
{
    api__creation c = {.objects = NULL, .commit = commit};
    api__create_checked(r, body, &c);
}

void ferry_api_create(ferry_http_req *r)
{
    /* A new execution brings logs and outputs: none while the data folder
     * is under its reserve (space.c). */
    char msg[PATH_MAX + 128];
    if (ferry_space_check(r->d, msg, sizeof(msg)) < 0) {
        ferry_http_code_error(r->req, FERRY_ENOSPC, "%s", msg);
        return;
    }
    json_t *body = ferry_http_body_object(r);
    if (body == NULL)
        return;
    if (json_object_get(body, "commit")) {
        ferry_commit_prepare(r, body, api__commit_ready);
        return;
    }
    api__creation c = {.objects = NULL, .commit = NULL};
    api__create_checked(r, body, &c);
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
    api__creation c = {.objects = NULL, .commit = r->exec->git_commit ? &commit : NULL};
    api__create_checked(r, body, &c);
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
