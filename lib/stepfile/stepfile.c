/* Step files: ferry.yaml / valohai.yaml (the valohai.yaml step schema).
 *
 * The file is loaded into a libyaml document tree and then walked: steps are
 * turned into ferry_step; pipelines, tasks and endpoints are checked and,
 * with deployments, counted in n_unsupported; a pipeline's definition is
 * kept (ferry_pipeline_def) for the pipeline engine. Every problem found
 * is collected with its line, so that one run of `ferry` shows all the
 * mistakes of a file at once, in file order. The files of the module are
 * listed in stepfile_int.h.
 *
 * Scalars follow YAML 1.1 as PyYAML reads them (what valohai itself uses):
 * `yes` is a boolean, `0755` is octal, `1_000` is an integer. Where the step
 * schema wants a string, such a value is an error with a hint to quote it,
 * just as valohai rejects `image: yes`.
 */
#include "stepfile_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <ferry/error.h>

#include "util.h"

/* ------------------------------------------------------------------------ */
/* The top level: a list of one-key mappings                                 */

static void ferry__add_step(ferry__ctx *c, yaml_node_t *key, yaml_node_t *val)
{
    ferry_stepfile *sf = c->sf;
    sf->steps = ferry_xrealloc(sf->steps, (sf->n_steps + 1) * sizeof(*sf->steps));
    ferry_step *s = &sf->steps[sf->n_steps++];
    memset(s, 0, sizeof(*s));
    ferry__parse_step(c, key, val, s);
    /* A name defined twice: valohai-yaml warns, and the other steps run;
     * running that name is refused (both definitions carry why). */
    for (size_t i = 0; s->name && i + 1 < sf->n_steps; i++)
        if (sf->steps[i].name && !strcmp(sf->steps[i].name, s->name)) {
            char *why = ferry_asprintf("%s:%d: step '%s' is defined twice (lines %d and %d)",
                                       c->path, s->line, s->name, sf->steps[i].line, s->line);
            free(sf->steps[i].broken);
            sf->steps[i].broken = ferry_strdup(why);
            free(s->broken);
            s->broken = why;
        }
}

/* Task names, known before any pipeline refers to one. */
static void ferry__add_task_name(ferry__ctx *c, yaml_node_t *key, yaml_node_t *val)
{
    (void)key;
    const char *name = ferry__peek_name(c, val);
    if (!name)
        return;
    c->task_names = ferry_xrealloc(c->task_names, (c->n_task_names + 1) * sizeof(*c->task_names));
    c->task_names[c->n_task_names++] = name;
}

typedef void (*ferry__item_fn)(ferry__ctx *c, yaml_node_t *key, yaml_node_t *val);

/* The kinds of item, in the order messages list them. `first` runs in a
 * first pass over the file, since pipelines may use steps and tasks defined
 * after them; `then` in a second, for the kinds we check but don't run. */
static const struct ferry__item_kind {
    const char *name;
    int runs; /* not counted in n_unsupported */
    ferry__item_fn first;
    ferry__item_fn then;
} ferry__kinds[] = {
    {"step", 1, ferry__add_step, NULL},
    {"pipeline", 0, NULL, ferry__parse_pipeline},
    {"task", 0, ferry__add_task_name, ferry__parse_task},
    {"endpoint", 0, NULL, ferry__parse_endpoint},
    {"deployment", 0, NULL, NULL},
    {NULL, 0, NULL, NULL},
};

typedef struct ferry__item_kind ferry__item_kind;

static const ferry__item_kind *ferry__kind_named(const char *name)
{
    for (const ferry__item_kind *k = ferry__kinds; k->name; k++)
        if (!strcmp(k->name, name))
            return k;
    return NULL;
}

/* "step, pipeline, task, endpoint, deployment" */
static char *ferry__kind_names(void)
{
    ferry__buf b = {0};
    for (const ferry__item_kind *k = ferry__kinds; k->name; k++)
        ferry__buf_printf(&b, "%s%s", k == ferry__kinds ? "" : ", ", k->name);
    return ferry__buf_take(&b);
}

/* `- step:` with the step's keys beside it instead of under it: valid YAML,
 * the most common indentation slip; say so rather than "step is null". */
static void ferry__item_shape_error(ferry__ctx *c, yaml_node_t *item, const ferry__map *m)
{
    const ferry__pair *kind = NULL;
    for (size_t i = 0; i < m->n && !kind; i++)
        if (ferry__kind_named(m->p[i].key))
            kind = &m->p[i];
    int line = ferry__line(item);
    if (m->n == 0) {
        ferry__err(c, line, NULL, "empty item: expected '- step:' (or pipeline, task, endpoint)");
        return;
    }
    ferry__buf others = {0};
    for (size_t i = 0; i < m->n; i++)
        if (&m->p[i] != kind)
            ferry__buf_printf(&others, "%s'%s'", others.len ? ", " : "", m->p[i].key);
    char *list = ferry__buf_take(&others), *kinds = ferry__kind_names();
    if (kind && ferry__kind_of(kind->value) == FERRY__NULL)
        ferry__err(c, line, NULL,
                   "'%s:' is empty and %s sit beside it: indent the %s's properties under "
                   "'%s:' (check the indentation)",
                   kind->key, list, kind->key, kind->key);
    else
        ferry__err(c, line, NULL,
                   "each top-level item has exactly one key (%s), this one has %s%s%s%s (check "
                   "the indentation)",
                   kinds, kind ? "'" : "", kind ? kind->key : "", kind ? "' and " : "", list);
    free(kinds);
    free(list);
}

/* The item's kind, key and value, or NULL (reported). */
static const ferry__item_kind *ferry__item(ferry__ctx *c, yaml_node_t *item, yaml_node_t **key,
                                           yaml_node_t **val)
{
    char what[80];
    if (ferry__kind_of(item) != FERRY__MAP) {
        ferry__err(c, item ? ferry__line(item) : 1, NULL,
                   "expected a mapping like '- step: ...', got %s",
                   ferry__describe(item, what, sizeof(what)));
        return NULL;
    }
    ferry__map m;
    ferry__map_load(c, item, NULL, &m);
    const ferry__item_kind *kind = m.n == 1 ? ferry__kind_named(m.p[0].key) : NULL;
    if (m.n != 1) {
        ferry__item_shape_error(c, item, &m);
    } else if (!kind) {
        char *kinds = ferry__kind_names();
        ferry__err(c, ferry__line(m.p[0].knode), NULL, "unknown item '%s' (expected %s)",
                   m.p[0].key, kinds);
        free(kinds);
    } else if (ferry__kind_of(m.p[0].value) != FERRY__MAP) {
        ferry__err(c, ferry__line(m.p[0].knode), NULL,
                   "%s: expected a mapping of the %s's properties, got %s (check the "
                   "indentation)",
                   m.p[0].key, m.p[0].key, ferry__describe(m.p[0].value, what, sizeof(what)));
        kind = NULL;
    } else {
        *key = m.p[0].knode;
        *val = m.p[0].value;
    }
    ferry__map_free(&m);
    return kind;
}

/* The same as ferry__item, quietly, for the second pass. */
static const ferry__item_kind *ferry__item_peek(ferry__ctx *c, yaml_node_t *item, yaml_node_t **key,
                                                yaml_node_t **val)
{
    if (ferry__kind_of(item) != FERRY__MAP ||
        item->data.mapping.pairs.top - item->data.mapping.pairs.start != 1)
        return NULL;
    *key = ferry__node(c, item->data.mapping.pairs.start->key);
    *val = ferry__node(c, item->data.mapping.pairs.start->value);
    if (!*key || (*key)->type != YAML_SCALAR_NODE || ferry__kind_of(*val) != FERRY__MAP)
        return NULL;
    return ferry__kind_named(ferry__text(*key));
}

static void ferry__parse_root(ferry__ctx *c, yaml_node_t *root)
{
    char what[80];
    yaml_node_t *key, *val;
    const ferry__item_kind *kind;
    if (ferry__kind_of(root) != FERRY__SEQ) {
        ferry__err(c, ferry__line(root), NULL,
                   "expected a list of items like '- step: ...' at the top level, got %s",
                   ferry__describe(root, what, sizeof(what)));
        return;
    }
    for (size_t i = 0; i < ferry__seq_len(root); i++)
        if ((kind = ferry__item(c, ferry__seq_item(c, root, i), &key, &val)) && kind->first)
            kind->first(c, key, val);
    for (size_t i = 0; i < ferry__seq_len(root); i++) {
        kind = ferry__item_peek(c, ferry__seq_item(c, root, i), &key, &val);
        if (!kind || kind->runs)
            continue;
        c->sf->n_unsupported++;
        if (kind->then)
            kind->then(c, key, val);
    }
}

static int ferry__basename_is(const char *path, const char *name)
{
    const char *slash = strrchr(path, '/');
    return !strcmp(slash ? slash + 1 : path, name);
}

int ferry_stepfile_parse_buffer(const char *path, const char *buf, size_t len, ferry_stepfile **out,
                                char *err, size_t err_cap)
{
    *out = NULL;
    if (err && err_cap)
        err[0] = '\0';
    if (!path)
        path = "ferry.yaml";
    ferry_stepfile *sf = ferry_xcalloc(1, sizeof(*sf));
    sf->path = ferry_strdup(path);
    sf->valohai =
        ferry__basename_is(path, "valohai.yaml") || ferry__basename_is(path, "valohai.yml");
    yaml_document_t doc;
    ferry__ctx c = {.path = path, .doc = &doc, .sf = sf, .budget = 100000};
    if (ferry__load(&c, buf ? buf : "", buf ? len : 0, &doc) == 0) {
        yaml_node_t *root = yaml_document_get_root_node(&doc);
        if (!root)
            ferry__err(&c, 1, NULL,
                       "the file is empty: expected a list of steps like '- step: ...'");
        else
            ferry__parse_root(&c, root);
        if (!c.n_errors && sf->n_steps == 0 && sf->n_unsupported == 0)
            ferry__err(&c, 1, NULL, "no steps: expected a list of steps like '- step: ...'");
        yaml_document_delete(&doc);
    }
    if (c.n_errors) {
        ferry__report(&c, err, err_cap);
        ferry__ctx_free(&c);
        ferry_stepfile_free(sf);
        return FERRY_EINVAL;
    }
    ferry__ctx_free(&c);
    *out = sf;
    return 0;
}

json_t *ferry_yaml_to_json(const char *path, const char *buf, size_t len, char *err, size_t err_cap)
{
    if (err && err_cap)
        err[0] = '\0';
    yaml_document_t doc;
    ferry__ctx c = {.path = path ? path : "-", .doc = &doc, .budget = 100000};
    json_t *out = NULL;
    if (ferry__load(&c, buf ? buf : "", buf ? len : 0, &doc) == 0) {
        yaml_node_t *root = yaml_document_get_root_node(&doc);
        out = root ? ferry__to_json(&c, root, 0) : json_null();
        yaml_document_delete(&doc);
    }
    if (c.n_errors) {
        ferry__report(&c, err, err_cap);
        json_decref(out);
        out = NULL;
    }
    ferry__ctx_free(&c);
    return out;
}

int ferry_stepfile_parse_file(const char *path, ferry_stepfile **out, char *err, size_t err_cap)
{
    size_t len = 0;
    *out = NULL;
    char *buf = ferry_read_file(path, &len);
    if (!buf) {
        int e = errno;
        return ferry__fail(err, err_cap, e == ENOENT ? FERRY_ENOENT : FERRY_EIO, "%s: %s", path,
                           strerror(e));
    }
    int rc = ferry_stepfile_parse_buffer(path, buf, len, out, err, err_cap);
    free(buf);
    return rc;
}

void ferry_stepfile_free(ferry_stepfile *sf)
{
    if (!sf)
        return;
    for (size_t i = 0; i < sf->n_steps; i++)
        ferry__free_step(&sf->steps[i]);
    free(sf->steps);
    for (size_t i = 0; i < sf->n_flows; i++) {
        free(sf->flows[i].name);
        free(sf->flows[i].broken);
        ferry__free_pipeline_def(sf->flows[i].pipeline);
        ferry__free_task_def(sf->flows[i].task);
    }
    free(sf->flows);
    free(sf->path);
    free(sf);
}

const ferry_step *ferry_stepfile_find(const ferry_stepfile *sf, const char *name)
{
    for (size_t i = 0; sf && name && i < sf->n_steps; i++)
        if (sf->steps[i].name && !strcmp(sf->steps[i].name, name))
            return &sf->steps[i];
    return NULL;
}

const ferry_step *ferry_stepfile_find_prefix(const ferry_stepfile *sf, const char *name,
                                             int *ambiguous)
{
    *ambiguous = 0;
    const ferry_step *exact = ferry_stepfile_find(sf, name), *found = NULL;
    if (exact || sf == NULL || name == NULL || name[0] == '\0')
        return exact;
    size_t n = strlen(name);
    for (size_t i = 0; i < sf->n_steps; i++) {
        if (sf->steps[i].name == NULL || strncmp(sf->steps[i].name, name, n) != 0)
            continue;
        if (found) {
            *ambiguous = 1;
            return NULL;
        }
        found = &sf->steps[i];
    }
    return found;
}

char *ferry_stepfile_step_names(const ferry_stepfile *sf)
{
    ferry__buf b = {0};
    ferry__buf_puts(&b, "known steps: ");
    size_t n = 0;
    for (size_t i = 0; sf && i < sf->n_steps; i++)
        if (sf->steps[i].name)
            ferry__buf_printf(&b, "%s%s", n++ ? ", " : "", sf->steps[i].name);
    if (!n)
        ferry__buf_puts(&b, "(none)");
    return ferry__buf_take(&b);
}

/* The flow of `kind` ("pipeline" or "task") named `name`. */
static const ferry_flow *ferry__find_flow(const ferry_stepfile *sf, const char *kind,
                                          const char *name)
{
    for (size_t i = 0; sf && name && i < sf->n_flows; i++)
        if (!strcmp(sf->flows[i].kind, kind) && sf->flows[i].name &&
            !strcmp(sf->flows[i].name, name))
            return &sf->flows[i];
    return NULL;
}

/* "known pipelines: a, b", or "the file has no pipelines". */
static char *ferry__flow_names(const ferry_stepfile *sf, const char *kind)
{
    ferry__buf b = {0};
    size_t n = 0;
    for (size_t i = 0; sf && i < sf->n_flows; i++)
        if (!strcmp(sf->flows[i].kind, kind) && sf->flows[i].name)
            ferry__buf_printf(&b, "%s%s", n++ ? ", " : "", sf->flows[i].name);
    char *names = ferry__buf_take(&b);
    char *out = n ? ferry_asprintf("known %ss: %s", kind, names)
                  : ferry_asprintf("the file has no %ss", kind);
    free(names);
    return out;
}

const ferry_flow *ferry_stepfile_find_pipeline(const ferry_stepfile *sf, const char *name)
{
    return ferry__find_flow(sf, "pipeline", name);
}

char *ferry_stepfile_pipeline_names(const ferry_stepfile *sf)
{
    return ferry__flow_names(sf, "pipeline");
}

const ferry_flow *ferry_stepfile_find_task(const ferry_stepfile *sf, const char *name)
{
    return ferry__find_flow(sf, "task", name);
}

char *ferry_stepfile_task_names(const ferry_stepfile *sf)
{
    return ferry__flow_names(sf, "task");
}
