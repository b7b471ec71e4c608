/* Steps: the tables of a step's keys, of its inputs and environment
 * variables, and freeing a step.
 */
#include "stepfile_int.h"

#include <stdlib.h>
#include <string.h>

#include <ferry/error.h>

#include "util.h"

const char *const ferry__merge_modes[] = {"replace", "append", NULL};

/* ------------------------------------------------------------------------ */
/* Inputs                                                                    */

/* Input names and file names become folders and files under inputs/: they
 * must not be able to point anywhere else. */
static int ferry__plain_file_name(const char *s)
{
    return *s && strcmp(s, ".") != 0 && strcmp(s, "..") != 0 && !strchr(s, '/') && !strchr(s, '\\');
}

static void ferry__input_name(ferry__walk *w, const ferry__field *f, const ferry__value *v)
{
    ferry__keep_str(w, f, v);
    if (strlen(v->text) > 64)
        ferry__err(w->c, v->line, w->label, "name is too long (%zu characters, at most 64)",
                   strlen(v->text));
    else if (!ferry__plain_file_name(v->text))
        ferry__err(w->c, v->line, w->label,
                   "name can't be empty, '.', '..' or contain '/' or '\\' "
                   "(it names a folder under inputs/)");
}

/* A URL or a list of URLs; empty ones are dropped. */
static void ferry__input_defaults(ferry__walk *w, const ferry__field *f, const ferry__value *v)
{
    ferry_input_def *in = w->obj;
    yaml_node_t *n = v->node;
    if (ferry__kind_of(n) == FERRY__NULL)
        return;
    int list = n->type == YAML_SEQUENCE_NODE;
    size_t count = list ? ferry__seq_len(n) : 1;
    in->default_urls = ferry_xcalloc(count ? count : 1, sizeof(char *));
    for (size_t i = 0; i < count; i++) {
        yaml_node_t *u = list ? ferry__seq_item(w->c, n, i) : n;
        char what[80];
        if (!u || u->type != YAML_SCALAR_NODE || ferry__kind_of(u) == FERRY__NULL) {
            ferry__err(w->c, u ? ferry__line(u) : v->line, w->label,
                       "%s: expected a URL or a list of URLs, got %s", f->key,
                       ferry__describe(u, what, sizeof(what)));
            continue;
        }
        if (*ferry__text(u))
            in->default_urls[in->n_default_urls++] = ferry_strdup(ferry__text(u));
    }
}

static void ferry__input_filename(ferry__walk *w, const ferry__field *f, const ferry__value *v)
{
    if (ferry__plain_file_name(v->text))
        ferry__keep_str(w, f, v);
    else
        ferry__err(w->c, v->line, w->label, "filename '%s' must be a plain file name, without '/'",
                   v->text);
}

/* keep-directories: a boolean, or one of the modes. */
static void ferry__input_keep_dirs(ferry__walk *w, const ferry__field *f, const ferry__value *v)
{
    static const char *const modes[] = {"none", "full", "suffix", NULL};
    const ferry__field as_mode = {f->key, FERRY__F_ENUM, .values = modes};
    ferry__kind k = ferry__kind_of(v->node);
    if (k != FERRY__BOOL && k != FERRY__NULL)
        ferry__walk_field(w, &as_mode);
}

#define FERRY__INPUT(member) offsetof(ferry_input_def, member)

/* download: always (before the commands start) or on-demand (never by
 * ferry: inputs.json holds a URL the code fetches itself). */
static const char *const ferry__download_modes[] = {"always", "on-demand", NULL};

static void ferry__input_download(ferry__walk *w, const ferry__field *f, const ferry__value *v)
{
    (void)f;
    ((ferry_input_def *)w->obj)->on_demand = v->index == 1;
}

static const ferry__field ferry__input_fields[] = {
    {"name", FERRY__F_STR, .flags = FERRY__REQUIRED, .fn = ferry__input_name,
     .offset = FERRY__INPUT(name)},
    {"default", FERRY__F_ANY, .fn = ferry__input_defaults},
    {"optional", FERRY__F_BOOL, .fn = ferry__keep_bool, .offset = FERRY__INPUT(optional)},
    {"filename", FERRY__F_TEXT, .fn = ferry__input_filename, .offset = FERRY__INPUT(filename)},
    {"keep-directories", FERRY__F_ANY, .flags = FERRY__UNUSED, .fn = ferry__input_keep_dirs},
    {"edge-merge-mode", FERRY__F_ENUM, .flags = FERRY__UNUSED, .values = ferry__merge_modes},
    {"override-mode", FERRY__F_ENUM, .flags = FERRY__UNUSED, .values = ferry__merge_modes},
    {"download", FERRY__F_ENUM, .fn = ferry__input_download, .values = ferry__download_modes},
    FERRY__CHECKED("description", FERRY__F_TEXT),
    FERRY__FIELDS_END,
};

static const ferry__object ferry__input_object = {
    .what = "input",
    .fields = ferry__input_fields,
    .closed = 1,
    .unique = 1,
    .shape = "a mapping with at least 'name'",
    .size = sizeof(ferry_input_def),
};

/* ------------------------------------------------------------------------ */
/* Environment variables                                                     */

static void ferry__env_init(void *obj)
{
    ferry_env_def *e = obj;
    e->optional = 1; /* valohai: environment variables are optional by default */
}

static void ferry__env_name(ferry__walk *w, const ferry__field *f, const ferry__value *v)
{
    ferry__keep_str(w, f, v);
    if (!*v->text || strchr(v->text, '='))
        ferry__err(w->c, v->line, w->label, "name can't be empty or contain '='");
}

#define FERRY__ENV(member) offsetof(ferry_env_def, member)

static const ferry__field ferry__env_fields[] = {
    {"name", FERRY__F_STR, .flags = FERRY__REQUIRED, .fn = ferry__env_name,
     .offset = FERRY__ENV(name)},
    {"default", FERRY__F_TEXT, .fn = ferry__keep_str, .offset = FERRY__ENV(default_value)},
    {"optional", FERRY__F_BOOL, .fn = ferry__keep_bool, .offset = FERRY__ENV(optional)},
    FERRY__CHECKED("description", FERRY__F_TEXT),
    FERRY__FIELDS_END,
};

static const ferry__object ferry__env_object = {
    .what = "environment variable",
    .fields = ferry__env_fields,
    .closed = 1,
    .unique = 1,
    .shape = "a mapping with at least 'name'",
    .size = sizeof(ferry_env_def),
    .init = ferry__env_init,
};

/* ------------------------------------------------------------------------ */
/* Resources: {cpu: {min, max}, memory: {min, max}, devices: {name: count}}  */

/* What a {min, max} says; its limit is the max, else the min. */
typedef struct ferry__bounds {
    int has_min, has_max;
    double min, max;
} ferry__bounds;

static void ferry__bound_min(ferry__walk *w, const ferry__field *f, const ferry__value *v)
{
    (void)f;
    ferry__bounds *b = w->obj;
    if (b) {
        b->has_min = 1;
        b->min = v->number;
    }
}

static void ferry__bound_max(ferry__walk *w, const ferry__field *f, const ferry__value *v)
{
    (void)f;
    ferry__bounds *b = w->obj;
    if (b) {
        b->has_max = 1;
        b->max = v->number;
    }
}

static const ferry__field ferry__bounds_fields[] = {
    {"min", FERRY__F_NUMBER, .fn = ferry__bound_min},
    {"max", FERRY__F_NUMBER, .fn = ferry__bound_max},
    FERRY__FIELDS_END,
};

static const ferry__object ferry__bounds_object = {.fields = ferry__bounds_fields, .closed = 1};

/* The limit of a {min, max} under the key `f` of the resources; 0: none
 * (a bound of 0 or less limits nothing). */
static double ferry__bounds_limit(ferry__walk *w, const ferry__field *f, const ferry__value *v)
{
    ferry__bounds b = {0};
    char *label = ferry_asprintf("%s: %s", w->label, f->key);
    ferry__walk_node(w->c, v->node, 0, label, &ferry__bounds_object, &b, w->arg);
    free(label);
    double limit = b.has_max ? b.max : b.has_min ? b.min : 0;
    return limit > 0 ? limit : 0;
}

static void ferry__resources_cpu(ferry__walk *w, const ferry__field *f, const ferry__value *v)
{
    ferry_step *s = w->obj;
    s->cpu_limit = ferry__bounds_limit(w, f, v);
}

/* Megabytes, as Valohai's; a fraction of one rounds up. Capped at 2^40 MB
 * so that the bytes fit an int64_t. */
static void ferry__resources_memory(ferry__walk *w, const ferry__field *f, const ferry__value *v)
{
    ferry_step *s = w->obj;
    double mb = ferry__bounds_limit(w, f, v), cap = (double)((int64_t)1 << 40);
    s->memory_limit_mb = mb >= cap ? (int64_t)cap : (int64_t)mb + (mb > (double)(int64_t)mb);
}

static void ferry__device_count(ferry__walk *w, const ferry__field *f, const ferry__value *v)
{
    if (v->number < 1)
        ferry__err(w->c, v->line, w->label, "%s: must be at least 1", f->key);
}

/* Device names are the cloud's ("nvidia.com/gpu"): each key a count. */
static void ferry__devices_done(ferry__walk *w)
{
    for (size_t i = 0; i < w->m.n; i++) {
        const ferry__field count = {w->m.p[i].key, FERRY__F_NUMBER, .fn = ferry__device_count};
        ferry__walk_field(w, &count);
    }
}

static const ferry__field ferry__no_fields[] = {FERRY__FIELDS_END};

static const ferry__object ferry__devices_object = {.fields = ferry__no_fields,
                                                    .done = ferry__devices_done};

static const ferry__field ferry__resources_fields[] = {
    {"cpu", FERRY__F_MAP, .fn = ferry__resources_cpu},
    {"memory", FERRY__F_MAP, .fn = ferry__resources_memory},
    {"ephemeral-storage", FERRY__F_MAP, .fn = ferry__walk_object, .object = &ferry__bounds_object},
    /* GPUs come from the environment (gpus = N), not from the step */
    {"devices", FERRY__F_MAP, .flags = FERRY__UNUSED, .fn = ferry__walk_object,
     .object = &ferry__devices_object},
    FERRY__FIELDS_END,
};

static const ferry__object ferry__resources_object = {.fields = ferry__resources_fields,
                                                      .closed = 1};

/* Walked with the step as the object: cpu and memory keep their limits in it. */
static void ferry__step_resources(ferry__walk *w, const ferry__field *f, const ferry__value *v)
{
    char *label = ferry_asprintf("%s: %s", w->label, f->key);
    ferry__walk_node(w->c, v->node, 0, label, &ferry__resources_object, w->obj, w->arg);
    free(label);
}

/* ------------------------------------------------------------------------ */
/* Mounts: "source:destination", or {source, destination, readonly, type,    */
/* options}, as valohai-yaml reads them                                      */

#define FERRY__MOUNT(member) offsetof(ferry_mount_def, member)

static const ferry__field ferry__mount_fields[] = {
    {"source", FERRY__F_STR, .flags = FERRY__REQUIRED, .fn = ferry__keep_str,
     .offset = FERRY__MOUNT(source)},
    {"destination", FERRY__F_STR, .flags = FERRY__REQUIRED, .fn = ferry__keep_str,
     .offset = FERRY__MOUNT(destination)},
    {"readonly", FERRY__F_BOOL, .fn = ferry__keep_bool, .offset = FERRY__MOUNT(readonly)},
    {"type", FERRY__F_TEXT, .fn = ferry__keep_str, .offset = FERRY__MOUNT(type)},
    FERRY__CHECKED("options", FERRY__F_MAP),
    FERRY__FIELDS_END,
};

static const ferry__object ferry__mount_object = {.fields = ferry__mount_fields, .closed = 1};

/* "source:destination": split at the first ':', as valohai-yaml does. */
static void ferry__mount_text(ferry__walk *w, const char *label, yaml_node_t *item,
                              ferry_mount_def *m)
{
    const char *text = ferry__text(item), *colon = strchr(text, ':');
    if (colon == NULL || colon == text || colon[1] == '\0') {
        ferry__err(w->c, m->line, label, "expected \"SOURCE:DESTINATION\", got '%s'", text);
        return;
    }
    m->source = strndup(text, (size_t)(colon - text));
    m->destination = ferry_strdup(colon + 1);
}

static void ferry__step_mounts(ferry__walk *w, const ferry__field *f, const ferry__value *v)
{
    ferry_step *s = w->obj;
    size_t n = ferry__seq_len(v->node);
    s->mounts = ferry_xcalloc(n ? n : 1, sizeof(*s->mounts));
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *item = ferry__seq_item(w->c, v->node, i);
        ferry_mount_def *m = &s->mounts[s->n_mounts++];
        m->line = item ? ferry__line(item) : v->line;
        char *label = ferry_asprintf("%s: %s #%zu", w->label, f->key, i + 1);
        char what[80];
        if (ferry__kind_of(item) == FERRY__STR)
            ferry__mount_text(w, label, item, m);
        else if (ferry__kind_of(item) == FERRY__MAP)
            ferry__walk_node(w->c, item, m->line, label, &ferry__mount_object, m, w->arg);
        else
            ferry__err(w->c, m->line, label,
                       "expected \"SOURCE:DESTINATION\" or a mapping with 'source' and "
                       "'destination', got %s",
                       ferry__describe(item, what, sizeof(what)));
        free(label);
    }
}

/* environment-variable-groups: names of groups, resolved by ferryd. */
static void ferry__step_env_groups(ferry__walk *w, const ferry__field *f, const ferry__value *v)
{
    ferry_step *s = w->obj;
    size_t n = ferry__seq_len(v->node);
    s->env_groups = ferry_xcalloc(n ? n : 1, sizeof(char *));
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *item = ferry__seq_item(w->c, v->node, i);
        char what[80];
        if (item && item->type == YAML_SCALAR_NODE && ferry__kind_of(item) != FERRY__NULL &&
            *ferry__text(item))
            s->env_groups[s->n_env_groups++] = ferry_strdup(ferry__text(item));
        else
            ferry__err(w->c, item ? ferry__line(item) : v->line, w->label,
                       "%s: expected the name of a group, got %s", f->key,
                       ferry__describe(item, what, sizeof(what)));
    }
}

/* ------------------------------------------------------------------------ */
/* The step                                                                  */

/* A string or a list of strings. */
static void ferry__step_command(ferry__walk *w, const ferry__field *f, const ferry__value *v)
{
    ferry_step *s = w->obj;
    yaml_node_t *n = v->node;
    char what[80];
    if (ferry__kind_of(n) == FERRY__STR) {
        s->commands = ferry_xcalloc(1, sizeof(char *));
        s->commands[s->n_commands++] = ferry_strdup(ferry__text(n));
        return;
    }
    if (ferry__kind_of(n) != FERRY__SEQ) {
        ferry__err(w->c, v->line, w->label, "%s: expected a string or a list of strings, got %s",
                   f->key, ferry__describe(n, what, sizeof(what)));
        return;
    }
    s->commands = ferry_xcalloc(ferry__seq_len(n) + 1, sizeof(char *));
    for (size_t i = 0; i < ferry__seq_len(n); i++) {
        yaml_node_t *item = ferry__seq_item(w->c, n, i);
        if (ferry__kind_of(item) == FERRY__STR)
            s->commands[s->n_commands++] = ferry_strdup(ferry__text(item));
        else
            ferry__err(w->c, item ? ferry__line(item) : w->m.line, w->label,
                       "%s: expected a string, got %s%s", f->key,
                       ferry__describe(item, what, sizeof(what)),
                       item && item->type == YAML_SCALAR_NODE ? "; put it in quotes" : "");
    }
}

static void ferry__step_upload_store(ferry__walk *w, const ferry__field *f, const ferry__value *v)
{
    if (strlen(v->text) > 64)
        ferry__err(w->c, v->line, w->label, "%s is too long (%zu characters, at most 64)", f->key,
                   strlen(v->text));
}

static void ferry__step_preset(ferry__walk *w, const ferry__field *f, const ferry__value *v)
{
    const ferry_step *s = w->obj;
    if (!s->environment)
        ferry__err(w->c, v->line, w->label,
                   "%s needs 'environment' too: a preset belongs to an environment", f->key);
}

static void ferry__step_autorestart(ferry__walk *w, const ferry__field *f, const ferry__value *v)
{
    const ferry_step *s = w->obj;
    if (v->boolean && !s->environment)
        ferry__err(w->c, v->line, w->label,
                   "%s needs 'environment' too (a spot instance environment)", f->key);
}

/* auto-restart: ferry.yaml's; Valohai sets it per run, not in the file. */
static void ferry__step_auto_restart(ferry__walk *w, const ferry__field *f, const ferry__value *v)
{
    if (w->c->sf && w->c->sf->valohai)
        ferry__err(w->c, v->line, w->label,
                   "%s is not a valohai.yaml key (Valohai sets it per run): use "
                   "`ferry run --autorestart`, or a ferry.yaml",
                   f->key);
    else
        ((ferry_step *)w->obj)->auto_restart = v->boolean;
}

#define FERRY__STEP(member) offsetof(ferry_step, member)

/* `environment` before the keys that need it. Keys without a handler are
 * accepted for valohai.yaml compatibility, not used, but still type-checked
 * where valohai's schema says what they must be. */
static const ferry__field ferry__step_fields[] = {
    {"name", FERRY__F_STR, .flags = FERRY__REQUIRED, .fn = ferry__keep_str,
     .offset = FERRY__STEP(name)},
    {"image", FERRY__F_STR, .flags = FERRY__REQUIRED, .fn = ferry__keep_str,
     .offset = FERRY__STEP(image)},
    {"command", FERRY__F_ANY, .flags = FERRY__REQUIRED, .fn = ferry__step_command},
    {"environment", FERRY__F_TEXT, .fn = ferry__keep_str, .offset = FERRY__STEP(environment)},
    {"time-limit", FERRY__F_DURATION, .fn = ferry__keep_seconds,
     .offset = FERRY__STEP(time_limit_s)},
    {"no-output-timeout", FERRY__F_DURATION, .fn = ferry__keep_seconds,
     .offset = FERRY__STEP(no_output_timeout_s)},
    FERRY__LIST("parameters", ferry_step, params, n_params, &ferry__param_object),
    FERRY__LIST("inputs", ferry_step, inputs, n_inputs, &ferry__input_object),
    FERRY__LIST("environment-variables", ferry_step, env, n_env, &ferry__env_object),
    FERRY__CHECKED("description", FERRY__F_TEXT),
    FERRY__CHECKED("icon", FERRY__F_TEXT),
    FERRY__CHECKED("category", FERRY__F_TEXT),
    FERRY__CHECKED("source-path", FERRY__F_TEXT),
    {"upload-store", FERRY__F_TEXT, .flags = FERRY__UNUSED, .fn = ferry__step_upload_store},
    {"outputs", FERRY__F_SEQ, .flags = FERRY__UNUSED},
    {"mounts", FERRY__F_SEQ, .fn = ferry__step_mounts},
    {"cache-volumes", FERRY__F_SEQ, .flags = FERRY__UNUSED},
    {"environment-variable-groups", FERRY__F_SEQ, .fn = ferry__step_env_groups},
    {"runtime-config-preset", FERRY__F_TEXT, .flags = FERRY__UNUSED, .fn = ferry__step_preset},
    {"autorestart", FERRY__F_BOOL, .flags = FERRY__UNUSED, .fn = ferry__step_autorestart},
    {"resources", FERRY__F_MAP, .fn = ferry__step_resources},
    {"stop-condition", FERRY__F_TEXT, .fn = ferry__keep_expression,
     .offset = FERRY__STEP(stop_condition)},
    {"auto-restart", FERRY__F_BOOL, .fn = ferry__step_auto_restart},
    FERRY__FIELDS_END,
};

static const ferry__object ferry__step_object = {
    .what = "step",
    .fields = ferry__step_fields,
    .closed = 1,
};

void ferry__parse_step(ferry__ctx *c, yaml_node_t *key, yaml_node_t *val, ferry_step *s)
{
    s->line = ferry__line(key);
    c->step = s; /* where ferry__walk_field notes the keys it does not act on */
    ferry__walk_top(c, key, val, &ferry__step_object, s);
    c->step = NULL;
}

/* ------------------------------------------------------------------------ */
/* Looking up and freeing                                                    */

const ferry_param_def *ferry__find_param(const ferry_step *s, const char *name)
{
    for (size_t i = 0; i < s->n_params; i++)
        if (s->params[i].name && !strcmp(s->params[i].name, name))
            return &s->params[i];
    return NULL;
}

const ferry_input_def *ferry__find_input(const ferry_step *s, const char *name)
{
    for (size_t i = 0; i < s->n_inputs; i++)
        if (s->inputs[i].name && !strcmp(s->inputs[i].name, name))
            return &s->inputs[i];
    return NULL;
}

void ferry__free_step(ferry_step *s)
{
    free(s->name);
    free(s->image);
    for (size_t i = 0; i < s->n_commands; i++)
        free(s->commands[i]);
    free(s->commands);
    for (size_t i = 0; i < s->n_params; i++) {
        ferry_param_def *p = &s->params[i];
        free(p->name);
        json_decref(p->default_value);
        free(p->pass_as);
        free(p->pass_true_as);
        free(p->pass_false_as);
        json_decref(p->choices);
        free(p->multiple_separator);
        free(p->description);
        free(p->default_text);
        free(p->default_error);
    }
    free(s->params);
    for (size_t i = 0; i < s->n_inputs; i++) {
        free(s->inputs[i].name);
        for (size_t j = 0; j < s->inputs[i].n_default_urls; j++)
            free(s->inputs[i].default_urls[j]);
        free(s->inputs[i].default_urls);
        free(s->inputs[i].filename);
    }
    free(s->inputs);
    for (size_t i = 0; i < s->n_env; i++) {
        free(s->env[i].name);
        free(s->env[i].default_value);
    }
    free(s->env);
    free(s->environment);
    free(s->broken);
    free(s->stop_condition);
    free(s->unused_keys);
    for (size_t i = 0; i < s->n_mounts; i++) {
        free(s->mounts[i].source);
        free(s->mounts[i].destination);
        free(s->mounts[i].type);
    }
    free(s->mounts);
    for (size_t i = 0; i < s->n_env_groups; i++)
        free(s->env_groups[i]);
    free(s->env_groups);
}
