/* Creating an execution (submit.h): the checks of a request's fields,
 * the step file of its snapshot, parameters, inputs (datums, store
 * objects), environment, mounts and variable groups, then the record. */
#include "submit.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "datumrows.h"
#include "datums.h"
#include "db.h"
#include "exec.h"
#include "lifecycle.h"
#include "logstore.h"
#include "objinputs.h"
#include "scheduler.h"
#include "snapshots.h"
#include "stepfile.h"
#include "util.h"
#include "views.h"

/* One creation: whose, and where its answer goes (NULL once handed on). */
typedef struct submit__req {
    ferryd *d;
    const ferry_user *user;
    ferry_reply *reply;
} submit__req;

static void submit__error(submit__req *r, int status, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void submit__error(submit__req *r, int status, const char *field, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    ferry_reply_error(r->reply, status, field, "%s", msg);
}

int ferry_submit_project_ok(const char *p)
{
    size_t n = p ? strlen(p) : 0;
    if (n == 0 || n > 100)
        return 0;
    for (; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              strchr("._-", *p)))
            return 0;
    return 1;
}

static const char *submit__env_names(ferryd *d, char *buf, size_t cap)
{
    buf[0] = '\0';
    for (size_t i = 0; i < d->n_envs; i++) {
        size_t n = strlen(buf);
        snprintf(buf + n, cap - n, "%s%s", i ? ", " : "", d->envs[i]->cfg->name);
    }
    return buf;
}

static json_t *submit__step_env(const ferry_step *step)
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
static int submit__check_overrides(submit__req *r, const json_t *body)
{
    static const char *const strings[] = {"title", "image"};
    for (size_t i = 0; i < 2; i++) {
        const json_t *v = json_object_get(body, strings[i]);
        if (v &&
            !(json_is_string(v) && json_string_length(v) > 0 && json_string_length(v) <= 500)) {
            submit__error(r, 400, strings[i], "'%s' must be a text of 1 to 500 characters",
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
        submit__error(r, 400, "environment_variables",
                      "'environment_variables' must map names (letters, digits, _) to texts%s%s",
                      json_is_object(vars) && name ? "; not: " : "",
                      json_is_object(vars) && name ? name : "");
        return FERRY_REPLIED;
    }
    return 0;
}

/* Checks the request's shape; 0, or FERRY_REPLIED (a 400 was sent). */
static int submit__create_fields(submit__req *r, json_t *body, const char **project,
                                 const char **step, const char **sha)
{
    *project = json_string_value(json_object_get(body, "project"));
    *step = json_string_value(json_object_get(body, "step"));
    *sha = json_string_value(json_object_get(body, "snapshot"));
    const json_t *params = json_object_get(body, "parameters");
    const json_t *inputs = json_object_get(body, "inputs");
    const json_t *tags = json_object_get(body, "tags");
    if (*project == NULL || !ferry_submit_project_ok(*project)) {
        submit__error(r, 400, "project",
                      "'project' must be 1-100 characters of letters, digits, '.', '_', '-'");
        return FERRY_REPLIED;
    }
    if (*step == NULL || **step == '\0') {
        submit__error(r, 400, "step", "'step' is required");
        return FERRY_REPLIED;
    }
    if (*sha == NULL || !ferry_is_sha256_hex(*sha)) {
        submit__error(r, 400, "snapshot", "'snapshot' must be a sha256 (64 hex digits)");
        return FERRY_REPLIED;
    }
    if ((params && !json_is_object(params)) || (inputs && !json_is_object(inputs))) {
        submit__error(r, 400, params && !json_is_object(params) ? "parameters" : "inputs",
                      "'parameters' and 'inputs' must be JSON objects");
        return FERRY_REPLIED;
    }
    const json_t *based_on = json_object_get(body, "based_on");
    if (based_on && !json_is_null(based_on) &&
        !(json_is_string(based_on) && strlen(json_string_value(based_on)) == 40 &&
          ferry_is_hex(json_string_value(based_on), 40))) {
        submit__error(r, 400, "based_on",
                      "'based_on' must be the sha of a commit (40 hex digits) or null");
        return FERRY_REPLIED;
    }
    const json_t *only = json_object_get(body, "reuse_only");
    if (only && !json_is_array(only)) {
        submit__error(r, 400, "reuse_only", "'reuse_only' must be a list of execution ids");
        return FERRY_REPLIED;
    }
    if (tags && !json_is_array(tags)) {
        submit__error(r, 400, "tags", "'tags' must be a list of strings");
        return FERRY_REPLIED;
    }
    if (submit__check_overrides(r, body) < 0)
        return FERRY_REPLIED;
    static const char *const flags[] = {"priority", "autorestart", "reuse"};
    for (size_t i = 0; i < 3; i++) {
        const json_t *v = json_object_get(body, flags[i]);
        if (v && !json_is_boolean(v)) {
            submit__error(r, 400, flags[i], "'%s' must be true or false", flags[i]);
            return FERRY_REPLIED;
        }
    }
    static const char *const limits[] = {"time_limit", "no_output_timeout"};
    for (size_t i = 0; i < 2; i++) {
        const json_t *v = json_object_get(body, limits[i]);
        if (v && (!json_is_integer(v) || json_integer_value(v) < 0)) {
            submit__error(r, 400, limits[i], "'%s' must be a number of seconds (0: none)",
                          limits[i]);
            return FERRY_REPLIED;
        }
    }
    return 0;
}

/* The request's time limits override the step's. */
static void submit__limits(const json_t *body, ferry_exec *e)
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
typedef struct submit__creation {
    const json_t *objects;
    const ferry_commit_info *commit;
} submit__creation;

static int submit__check_objects(submit__req *r, json_t *body, const json_t *inputs,
                                 const submit__creation *c);
static void submit__load_stepfile(submit__req *r, json_t *body, const submit__creation *c,
                                  const char *sha);

/* Where a step file's error is: "5d6e7f8:" before "valohai.yaml:12: ..."
 * for a commit's, nothing for an uploaded snapshot's. */
static const char *submit__where(const submit__creation *c, char *buf, size_t cap)
{
    const char *sha = c->commit ? json_string_value(json_object_get(c->commit->json, "sha")) : NULL;
    snprintf(buf, cap, "%.7s%s", sha ? sha : "", sha ? ":" : "");
    return buf;
}

/* A step file that could not be read, as the user sees it: a commit's
 * names the commit ("commit 5d6e7f8 has no ferry.yaml ...",
 * "5d6e7f8:valohai.yaml:12: ..."). */
static void submit__stepfile_error(submit__req *r, const submit__creation *c, int rc,
                                   const char *err)
{
    char where[16];
    const char *sha = c->commit ? json_string_value(json_object_get(c->commit->json, "sha")) : NULL;
    if (sha && strncmp(err, "the snapshot ", 13) == 0)
        submit__error(r, 400, "commit", "commit %.7s %s", sha, err + 13);
    else
        submit__error(r, rc == FERRY_ENOENT ? 404 : 400, sha ? "commit" : "snapshot", "%s%s",
                      submit__where(c, where, sizeof(where)), err);
}

/* The execution's own log says, once, that its commit's Git LFS files are
 * pointers: what the user's code reads there is not the data. */
static void submit__note_lfs(ferryd *d, ferry_exec *e, const ferry_commit_info *commit)
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
static const char *submit__choose_env(ferryd *d, json_t *body, const ferry_step *step,
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
static void submit__note_env(ferryd *d, ferry_exec *e, const char *asked, const char *env_name)
{
    if (e == NULL || asked == NULL)
        return;
    char names[512], text[1024];
    snprintf(text, sizeof(text),
             "environment '%s' is not one of ferryd's (known: %s): running on '%s'", asked,
             submit__env_names(d, names, sizeof(names)), env_name);
    ferry_logstore_append(d, e, "status", ferry_now(), text, strlen(text), 0);
}

/* One warning for the keys of the step ferry accepts but does not act on
 * (issue 18, point 8): never silently ignored. */
static void submit__note_unused(ferryd *d, ferry_exec *e, const ferry_stepfile *sf,
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
static int submit__check_mounts(submit__req *r, const ferry_step *step, const char *env_name)
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
        submit__error(r, 400, "mounts",
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
static int submit__check_env_groups(submit__req *r, const ferry_step *step)
{
    for (size_t i = 0; i < step->n_env_groups; i++) {
        if (ferry_config_env_group(&r->d->cfg, step->env_groups[i]))
            continue;
        char *known = ferry_config_env_group_names(&r->d->cfg);
        submit__error(r, 400, "environment-variable-groups",
                      "step '%s': environment variable group '%s' is not in ferryd's "
                      "configuration (known groups: %s)",
                      step->name, step->env_groups[i], known);
        free(known);
        return FERRY_REPLIED;
    }
    return 0;
}

/* "command": a text or a list of texts run in place of the step's
 * commands (a pipeline node's override). 0 when not given; 1 with `copy`
 * the step with them (*cmds, freed by the caller, borrows body's texts);
 * FERRY_REPLIED. */
static int submit__command(submit__req *r, const json_t *body, const ferry_step *step,
                           ferry_step *copy, char ***cmds)
{
    const json_t *c = json_object_get(body, "command");
    if (c == NULL)
        return 0;
    size_t n = json_is_array(c) ? json_array_size(c) : 1;
    int ok = json_is_string(c) || (json_is_array(c) && n > 0);
    for (size_t i = 0; ok && json_is_array(c) && i < n; i++)
        ok = json_is_string(json_array_get(c, i));
    if (!ok) {
        submit__error(r, 400, "command", "'command' must be a text or a list of texts");
        return FERRY_REPLIED;
    }
    *cmds = ferry_xcalloc(n, sizeof(**cmds));
    for (size_t i = 0; i < n; i++)
        (*cmds)[i] = (char *)json_string_value(json_is_array(c) ? json_array_get(c, i) : c);
    *copy = *step;
    copy->commands = *cmds;
    copy->n_commands = n;
    return 1;
}

/* Sorts a JSON array of texts in place. */
static int submit__text_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* What identifies one input file's content: a datum's sha256, a store
 * object's ETag and size, else its URL. */
static json_t *submit__input_identity(ferryd *d, const char *url, const json_t *objects)
{
    ferry_datum dt;
    const char *ref = ferry_datum_ref(url);
    if (ref && ferry_datums_find(d, ref, &dt))
        return json_sprintf("sha256:%s", dt.sha256);
    const json_t *obj = json_object_get(objects, url);
    const char *etag = json_string_value(json_object_get(obj, "etag"));
    if (obj && etag)
        return json_sprintf("etag:%s:%lld", etag,
                            (long long)json_integer_value(json_object_get(obj, "size")));
    return json_string(url);
}

/* The execution's reuse key: sha256 over what makes two executions the
 * same run (the project, step, snapshot, image, command, parameters,
 * environment variables and, per input, its files' contents, sorted). */
static char *submit__reuse_key(ferryd *d, const ferry_exec *e, const json_t *objects)
{
    json_t *inputs = json_object();
    const char *name;
    json_t *urls;
    json_object_foreach(e->inputs, name, urls)
    {
        size_t n = json_array_size(urls);
        json_t *ids = json_array();
        for (size_t i = 0; i < n; i++)
            json_array_append_new(ids, submit__input_identity(
                                           d, json_string_value(json_array_get(urls, i)), objects));
        const char **texts = ferry_xcalloc(n ? n : 1, sizeof(*texts));
        for (size_t i = 0; i < n; i++)
            texts[i] = json_string_value(json_array_get(ids, i));
        qsort(texts, n, sizeof(*texts), submit__text_cmp);
        json_t *sorted = json_array();
        for (size_t i = 0; i < n; i++)
            json_array_append_new(sorted, json_string(texts[i] ? texts[i] : ""));
        free(texts);
        json_decref(ids);
        json_object_set_new(inputs, name, sorted);
    }
    json_t *what =
        json_pack("{s:s, s:s, s:s, s:s?, s:s?, s:O, s:O, s:o}", "project", e->project, "step",
                  e->step, "snapshot", e->snapshot, "image", e->image, "command", e->command,
                  "parameters", e->parameters, "environment", e->env, "inputs", inputs);
    char *text = json_dumps(what, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(what);
    char *key = ferry_xcalloc(65, 1);
    ferry_sha256_hex(text, strlen(text), key);
    free(text);
    return key;
}

/* With "reuse": true, an earlier complete execution of the same work (of
 * "reuse_only"'s ids when given) answers in place of a new one: 200 with
 * its view and "reused": true. 1 when so. */
static int submit__reuse(submit__req *r, const json_t *body, const ferry_exec *e)
{
    char id[37];
    if (!json_is_true(json_object_get(body, "reuse")))
        return 0;
    const json_t *only = json_object_get(body, "reuse_only");
    if (ferry_exec_find_reusable(r->d, e->project, e->reuse_key, json_is_array(only) ? only : NULL,
                                 id) < 0)
        return 0;
    int owned;
    ferry_exec *found;
    if (ferry_exec_find(r->d, id, NULL, NULL, &found, &owned) < 0)
        return 0;
    json_t *view = ferry_view_exec(r->d, found);
    json_object_set_new(view, "reused", json_true());
    ferry_exec_release(found, owned);
    ferry_reply_json(r->reply, 200, view);
    return 1;
}

static void submit__create_checked(submit__req *r, json_t *body, const submit__creation *c)
{
    const char *project, *step_name, *sha;
    char err[1024], names[512], where[16];
    ferry_stepfile *sf = NULL;
    json_t *params = NULL, *inputs = NULL, *datums = NULL;
    ferry_step with_command;
    char **commands = NULL;
    if (submit__create_fields(r, body, &project, &step_name, &sha) < 0)
        goto done;
    int rc = ferry_snapshot_stepfile(r->d, sha, &sf, NULL, NULL, err, sizeof(err));
    if (rc == FERRY_EAGAIN) { /* read on the thread pool; the reply waits */
        submit__load_stepfile(r, body, c, sha);
        goto done;
    }
    if (rc < 0) {
        submit__stepfile_error(r, c, rc, err);
        goto done;
    }
    const ferry_step *step = ferry_stepfile_find(sf, step_name);
    if (step == NULL) {
        char *known = ferry_stepfile_step_names(sf);
        submit__error(r, 400, "step", "unknown step '%s' in %s%s; %s", step_name,
                      submit__where(c, where, sizeof(where)), sf->path, known);
        free(known);
        goto done;
    }
    if (step->broken) { /* the file is usable; this step is not */
        submit__error(r, 400, "step", "%s%s", submit__where(c, where, sizeof(where)), step->broken);
        goto done;
    }
    int own_command = submit__command(r, body, step, &with_command, &commands);
    if (own_command < 0)
        goto done;
    if (own_command)
        step = &with_command;
    if (ferry_step_resolve_parameters(step, json_object_get(body, "parameters"), &params, err,
                                      sizeof(err)) < 0) {
        submit__error(r, 400, "parameters", "%s", err);
        goto done;
    }
    if (ferry_step_resolve_inputs(step, json_object_get(body, "inputs"), &inputs, err,
                                  sizeof(err)) < 0) {
        submit__error(r, 400, "inputs", "%s", err);
        goto done;
    }
    if (ferry_http_datums_resolve(r->d, r->user, r->reply, inputs, &datums) <
        0) /* datum:// URLs, in place */
        goto done;
    const char *asked = NULL;
    const char *env_name = submit__choose_env(r->d, body, step, &asked);
    if (env_name == NULL) {
        submit__error(r, 400, "environment", "unknown environment '%s'; known: %s", asked,
                      submit__env_names(r->d, names, sizeof(names)));
        goto done;
    }
    if (submit__check_mounts(r, step, env_name) < 0 || submit__check_env_groups(r, step) < 0)
        goto done;
    if (c->objects == NULL && submit__check_objects(r, body, inputs, c) != 1)
        goto done; /* refused, or the reply waits for the check */
    ferry_exec *e = ferry_exec_new();
    ferry_uuid(e->id);
    e->project = ferry_strdup(project);
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
    e->env = submit__step_env(step);
    json_object_update(e->env, json_object_get(body, "environment_variables")); /* given win */
    json_t *tags = json_object_get(body, "tags");
    e->tags = tags ? json_incref(tags) : json_array();
    e->time_limit = step->time_limit_s;
    e->no_output_timeout = step->no_output_timeout_s;
    submit__limits(body, e);
    e->priority = json_is_true(json_object_get(body, "priority"));
    e->owner = r->user ? ferry_strdup(r->user->name) : NULL;
    e->valohai = sf->valohai;
    e->git_commit = c->commit ? json_incref(c->commit->json) : NULL;
    e->based_on = ferry_strdup(json_string_value(json_object_get(body, "based_on")));
    e->reuse_key = submit__reuse_key(r->d, e, c->objects);
    if (submit__reuse(r, body, e)) {
        ferry_exec_free(e);
        goto done;
    }
    e->counter = ferry_exec_next_counter(r->d, project); /* a reused run takes none */
    char id[37];
    memcpy(id, e->id, sizeof(id));
    if (c->objects) /* before it exists: a worker may get it at once */
        ferry_objinputs_save(r->d, id, c->objects);
    ferry_http_datums_save(r->d, id, datums);
    if (ferry_lifecycle_create(r->d, e) < 0) {
        submit__error(r, 500, NULL, "the execution could not be stored");
        goto done;
    }
    ferry_exec *live = ferry_map_get(&r->d->active, id);
    submit__note_lfs(r->d, live, c->commit);
    submit__note_env(r->d, live, asked, env_name);
    submit__note_unused(r->d, live, sf, step);
    ferry_http_datums_note(r->d, live, datums);
    ferry_db_commit(r->d); /* the client may act on the reply at once */
    if (live) {
        ferry_reply_json(r->reply, 201, ferry_view_exec(r->d, live));
    } else {
        int owned;
        ferry_exec *found;
        if (ferry_exec_find(r->d, id, NULL, NULL, &found, &owned) == 0) {
            ferry_reply_json(r->reply, 201, ferry_view_exec(r->d, found));
            ferry_exec_release(found, owned);
        } else {
            submit__error(r, 500, NULL, "the execution vanished");
        }
    }
done:
    ferry_reply_release(r->reply); /* NULL when a pending creation took it */
    r->reply = NULL;
    free(commands);
    json_decref(params);
    json_decref(inputs);
    json_decref(datums);
    json_decref(body);
}

/* A creation waiting for its object inputs to be checked, or for its
 * snapshot's step file to be read: it holds the reply meanwhile. */
typedef struct submit__pending {
    ferry_reply *reply;
    json_t *body;
    json_t *objects;          /* the object inputs already checked, or NULL */
    ferry_commit_info commit; /* .json NULL: ad hoc */
    const ferry_user *user;
} submit__pending;

static void submit__pending_free(submit__pending *p)
{
    ferry_reply_release(p->reply);
    json_decref(p->body);
    json_decref(p->objects);
    json_decref(p->commit.json);
    free(p);
}

/* Takes r's reply. */
static submit__pending *submit__pending_new(submit__req *r, json_t *body, const submit__creation *c)
{
    submit__pending *p = ferry_xcalloc(1, sizeof(*p));
    p->reply = r->reply;
    r->reply = NULL;
    p->body = json_incref(body);
    p->objects = c->objects ? json_deep_copy(c->objects) : NULL;
    if (c->commit) {
        p->commit.json = json_incref(c->commit->json);
        p->commit.lfs_files = c->commit->lfs_files;
    }
    p->user = r->user;
    return p;
}

/* Goes on with the creation `p` waited for, `objects` as checked now; the
 * creation takes the reply. A client that went away meanwhile gets none. */
static void submit__resume(ferryd *d, submit__pending *p, const json_t *objects)
{
    if (ferry_reply_gone(p->reply))
        return;
    submit__req r = {.d = d, .user = p->user, .reply = p->reply};
    p->reply = NULL;
    submit__creation c = {.objects = objects, .commit = p->commit.json ? &p->commit : NULL};
    submit__create_checked(&r, json_incref(p->body), &c);
}

static void submit__objects_checked(ferryd *d, void *arg, int rc, const json_t *objects,
                                    const char *err)
{
    submit__pending *p = arg;
    if (rc < 0)
        ferry_reply_error(p->reply, 400, "inputs", "%s", err);
    else /* validated again: the step file may have left the cache meanwhile */
        submit__resume(d, p, objects);
    submit__pending_free(p);
}

/* The step file is in the cache now (or its failure is): go on. */
static void submit__stepfile_loaded(ferryd *d, void *arg)
{
    submit__pending *p = arg;
    submit__resume(d, p, p->objects);
    submit__pending_free(p);
}

static void submit__load_stepfile(submit__req *r, json_t *body, const submit__creation *c,
                                  const char *sha)
{
    submit__pending *p = submit__pending_new(r, body, c);
    ferry_stepfile *sf;
    char err[1024];
    int rc = ferry_snapshot_stepfile(r->d, sha, &sf, submit__stepfile_loaded, p, err, sizeof(err));
    if (rc != FERRY_EAGAIN) { /* cannot happen right after a FERRY_EAGAIN; answer anyway */
        ferry_reply_error(p->reply, 503, "snapshot", "%s", rc < 0 ? err : "try again");
        submit__pending_free(p);
    }
}

/* 1: no object input; else the check is under way (0: the reply went with
 * it) or refused (< 0, answered). */
static int submit__check_objects(submit__req *r, json_t *body, const json_t *inputs,
                                 const submit__creation *c)
{
    submit__creation unchecked = {.objects = NULL, .commit = c->commit};
    submit__pending *p = submit__pending_new(r, body, &unchecked);
    char err[1024];
    int rc = ferry_objinputs_check(r->d, inputs, submit__objects_checked, p, err, sizeof(err));
    if (rc != 0) { /* not under way: the reply comes back */
        r->reply = p->reply;
        p->reply = NULL;
        if (rc < 0)
            submit__error(r, 400, "inputs", "%s", err);
        submit__pending_free(p);
    }
    return rc;
}

void ferry_submit(ferryd *d, const ferry_user *user, json_t *body, const ferry_commit_info *commit,
                  ferry_reply *reply)
{
    submit__req r = {.d = d, .user = user, .reply = reply};
    submit__creation c = {.objects = NULL, .commit = commit};
    submit__create_checked(&r, body, &c);
}
