/* Pipelines, tasks, endpoints: checked within reason, so that a file
 * valohai would refuse is refused here too. Their tables are open: keys we
 * don't know are left to valohai. A pipeline's definition is kept as plain
 * structs (ferry_pipeline_def) for the pipeline engine, which then needs no
 * YAML: names are copied, `override:`, an edge's `configuration:` and a
 * deployment node are kept as JSON typed as ferry_yaml_to_json types it.
 */
#include "stepfile_int.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include <ferry/error.h>

#include "util.h"

static const char *const ferry__edge_types[] = {
    "input",      "output", "parameter", "metadata", "file", "deployment", "environment-variable",
    "dependency", NULL};
static const char *const ferry__on_error[] = {"stop-all", "stop-next", "continue", "retry", NULL};

/* A pipeline node, or a task: what its fields tell the ones after them. */
typedef struct ferry__node_rec {
    const char *name; /* first, for the list's "defined twice" */
    const char *type;
    const ferry_step *step;
    int has_task;
    const char *step_name, *task_name; /* as written, in the document */
    /* A pipeline node's definition: what it owns (override, actions, ...)
     * is moved into the pipeline's when the walk is done. */
    ferry_pipeline_node out;
} ferry__node_rec;

typedef struct ferry__pipeline {
    const char *name;
    ferry__node_rec *nodes;
    size_t n_nodes;
    ferry_pipeline_def def; /* all but the nodes, which are built from the records */
} ferry__pipeline;

#define FERRY__REC(member) offsetof(ferry__node_rec, member)

/* ------------------------------------------------------------------------ */
/* Values kept as they are written                                           */

/* The value as JSON, typed as ferry_yaml_to_json types it (the one typer of
 * the module); NULL, reported, when it is too large or too deep. */
static json_t *ferry__value_json(ferry__walk *w, const char *key, yaml_node_t *node, int line)
{
    json_t *j = ferry__to_json(w->c, node, 0);
    if (!j)
        ferry__err(w->c, line, w->label, "%s: too deeply nested or too large", key);
    return j;
}

/* Checks a word may have to pass before it is kept: 0 when it is refused (reported). */
typedef int (*ferry__word_fn)(ferry__walk *w, const ferry__field *f, const char *word, int line);

/* A string or a list of strings (valohai's listify), appended to the char **
 * at f->offset with its count at f->count_offset; with f->values, each must
 * be one of them. A null is nothing, unless the key is required. */
static void ferry__words(ferry__walk *w, const ferry__field *f, const ferry__value *v,
                         ferry__word_fn ok)
{
    char what[80];
    ferry__kind k = ferry__kind_of(v->node);
    if (k == FERRY__NULL && !(f->flags & FERRY__REQUIRED))
        return;
    char ***list = (char ***)(void *)((char *)w->obj + f->offset);
    size_t *count = (size_t *)(void *)((char *)w->obj + f->count_offset);
    size_t n = k == FERRY__SEQ ? ferry__seq_len(v->node) : 1;
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *item = k == FERRY__SEQ ? ferry__seq_item(w->c, v->node, i) : v->node;
        int line = item ? ferry__line(item) : v->line;
        if (!item || item->type != YAML_SCALAR_NODE || ferry__kind_of(item) == FERRY__NULL) {
            ferry__err(w->c, line, w->label, "%s: expected a string or a list of strings, got %s",
                       f->key, ferry__describe(item, what, sizeof(what)));
            continue;
        }
        const char *word = ferry__text(item);
        if (f->values && !ferry__in_list(word, f->values)) {
            char *known = ferry__join_list(f->values);
            ferry__err(w->c, line, w->label, "unknown %s '%s' (expected %s)", f->key, word, known);
            free(known);
            continue;
        }
        if (ok && !ok(w, f, word, line))
            continue;
        *list = ferry_xrealloc(*list, (*count + 1) * sizeof(**list));
        (*list)[(*count)++] = ferry_strdup(word);
    }
}

static void ferry__keep_words(ferry__walk *w, const ferry__field *f, const ferry__value *v)
{
    ferry__words(w, f, v, NULL);
}

static void ferry__free_words(char **words, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(words[i]);
    free(words);
}

/* ------------------------------------------------------------------------ */
/* override: the step's own inputs and parameters, an environment's preset   */

static void ferry__override_name(ferry__walk *w, const ferry__value *v, const char *what, int known)
{
    const ferry_step *s = w->arg;
    if (!known)
        ferry__err(w->c, v->line, w->label, "override: %s '%s' does not exist in step '%s'", what,
                   v->text, s->name);
}

static void ferry__override_input(ferry__walk *w, const ferry__field *f, const ferry__value *v)
{
    (void)f;
    if (w->arg)
        ferry__override_name(w, v, "input", ferry__find_input(w->arg, v->text) != NULL);
}

static void ferry__override_param(ferry__walk *w, const ferry__field *f, const ferry__value *v)
{
    (void)f;
    if (w->arg)
        ferry__override_name(w, v, "parameter", ferry__find_param(w->arg, v->text) != NULL);
}

static const ferry__field ferry__override_input_fields[] = {
    {"name", FERRY__F_STR, .flags = FERRY__REQUIRED, .fn = ferry__override_input},
    FERRY__FIELDS_END,
};
static const ferry__field ferry__override_param_fields[] = {
    {"name", FERRY__F_STR, .flags = FERRY__REQUIRED, .fn = ferry__override_param},
    FERRY__FIELDS_END,
};
static const ferry__object ferry__override_input_object = {.fields = ferry__override_input_fields};
static const ferry__object ferry__override_param_object = {.fields = ferry__override_param_fields};

/* Items that aren't mappings are left to valohai; messages name the node. */
static void ferry__override_items(ferry__walk *w, const ferry__value *v, const ferry__object *o)
{
    for (size_t i = 0; i < ferry__seq_len(v->node); i++) {
        yaml_node_t *item = ferry__seq_item(w->c, v->node, i);
        if (ferry__kind_of(item) == FERRY__MAP)
            ferry__walk_node(w->c, item, 0, w->label, o, NULL, w->arg);
    }
}

static void ferry__override_inputs(ferry__walk *w, const ferry__field *f, const ferry__value *v)
{
    (void)f;
    ferry__override_items(w, v, &ferry__override_input_object);
}

static void ferry__override_params(ferry__walk *w, const ferry__field *f, const ferry__value *v)
{
    (void)f;
    ferry__override_items(w, v, &ferry__override_param_object);
}

static void ferry__override_preset(ferry__walk *w, const ferry__field *f, const ferry__value *v)
{
    if (ferry__kind_of(v->node) != FERRY__NULL && !ferry__map_get(&w->m, "environment"))
        ferry__err(w->c, v->line, w->label,
                   "override: %s needs 'environment' in the same override "
                   "(a preset belongs to an environment)",
                   f->key);
}

static const ferry__field ferry__override_fields[] = {
    {"runtime-config-preset", FERRY__F_ANY, .fn = ferry__override_preset},
    {"inputs", FERRY__F_SEQ, .fn = ferry__override_inputs},
    {"parameters", FERRY__F_SEQ, .fn = ferry__override_params},
    FERRY__FIELDS_END,
};
static const ferry__object ferry__override_object = {.fields = ferry__override_fields};

static void ferry__node_override(ferry__walk *w, const ferry__field *f, const ferry__value *v)
{
    ferry__node_rec *rec = w->obj;
    ferry__walk_node(w->c, v->node, 0, w->label, &ferry__override_object, NULL, rec->step);
    json_decref(rec->out.override);
    rec->out.override = ferry__value_json(w, f->key, v->node, v->line);
}

/* ------------------------------------------------------------------------ */
/* Nodes                                                                     */

/* The step an execution or task node runs: it must exist, unless the node
 * names another commit, which we can't see. */
static void ferry__node_step(ferry__walk *w, const ferry__field *f, const ferry__value *v)
{
    (void)f;
    ferry__node_rec *rec = w->obj;
    rec->step_name = v->text;
    rec->step = ferry_stepfile_find(w->c->sf, v->text);
    if (!rec->step && !ferry__map_get(&w->m, "commit")) {
        char *known = ferry_stepfile_step_names(w->c->sf);
        ferry__broken(w->c, v->line, w->label, "step '%s' does not exist (%s)", v->text, known);
        free(known);
    }
}

static void ferry__node_task(ferry__walk *w, const ferry__field *f, const ferry__value *v)
{
    (void)f;
    ferry__node_rec *rec = w->obj;
    rec->has_task = 1;
    rec->task_name = v->text;
    for (size_t i = 0; i < w->c->n_task_names; i++)
        if (!strcmp(w->c->task_names[i], v->text))
            return;
    ferry__err(w->c, v->line, w->label, "task '%s' does not exist", v->text);
}

static const ferry__field ferry__execution_fields[] = {
    {"step", FERRY__F_STR, .flags = FERRY__REQUIRED, .fn = ferry__node_step},
    {"override", FERRY__F_MAP, .fn = ferry__node_override},
    FERRY__FIELDS_END,
};

static const ferry__field ferry__task_node_fields[] = {
    {"task", FERRY__F_STR, .fn = ferry__node_task},
    {"step", FERRY__F_STR, .fn = ferry__node_step},
    {"override", FERRY__F_MAP, .fn = ferry__node_override},
    FERRY__FIELDS_END,
};

/* What else a node holds depends on its type. A deployment node is kept
 * whole, as JSON: parsed, not run. */
static void ferry__node_done(ferry__walk *w)
{
    ferry__node_rec *rec = w->obj;
    rec->out.line = w->m.line;
    if (rec->type && !strcmp(rec->type, "deployment")) {
        rec->out.deployment = ferry__value_json(w, "deployment", w->node, w->m.line);
    } else if (rec->type && !strcmp(rec->type, "execution")) {
        ferry__walk_fields(w, ferry__execution_fields);
    } else if (rec->type && !strcmp(rec->type, "task")) {
        ferry__walk_fields(w, ferry__task_node_fields);
        if (!rec->has_task && !ferry__map_get(&w->m, "step"))
            ferry__err(w->c, w->m.line, w->label, "a task node needs 'step' or 'task'");
    }
}

static const char *const ferry__node_types[] = {"execution", "task", "deployment", NULL};

/* ferry__on_error is in ferry_on_error's order. */
static void ferry__node_on_error(ferry__walk *w, const ferry__field *f, const ferry__value *v)
{
    (void)f;
    ((ferry__node_rec *)w->obj)->out.on_error = (ferry_on_error)v->index;
}

static void ferry__node_merge_mode(ferry__walk *w, const ferry__field *f, const ferry__value *v)
{
    ((ferry__node_rec *)w->obj)->out.merge_append = !strcmp(f->values[v->index], "append");
}

/* actions: when (one of these), if and then, each a string or a list. The
 * `then`s are left alone: valohai has more than the engine runs, and the
 * engine refuses the others when it meets them. */
static const char *const ferry__action_whens[] = {"node-starting", "node-complete", "node-error",
                                                  NULL};

static void ferry__action_done(ferry__walk *w)
{
    ((ferry_node_action *)w->obj)->line = w->m.line;
}

/* An `if:` (the string, or each item of the list) is an expression as a
 * stop-condition is: one that does not parse is refused now, at its own
 * line, rather than when the node reaches it. */
static int ferry__action_if_ok(ferry__walk *w, const ferry__field *f, const char *word, int line)
{
    return ferry__expression_valid(w, f->key, word, line);
}

static void ferry__keep_ifs(ferry__walk *w, const ferry__field *f, const ferry__value *v)
{
    ferry__words(w, f, v, ferry__action_if_ok);
}

#define FERRY__WORDS(key, flags_, fn_, member, count, values_)                                     \
    {                                                                                              \
        key, FERRY__F_ANY, flags_, fn_, offsetof(ferry_node_action, member), values_, NULL,        \
            offsetof(ferry_node_action, count)                                                     \
    }

static const ferry__field ferry__action_fields[] = {
    FERRY__WORDS("when", FERRY__REQUIRED, ferry__keep_words, when, n_when, ferry__action_whens),
    FERRY__WORDS("if", 0, ferry__keep_ifs, ifs, n_ifs, NULL),
    FERRY__WORDS("then", 0, ferry__keep_words, then, n_then, NULL),
    FERRY__FIELDS_END,
};

static const ferry__object ferry__action_object = {
    .what = "action",
    .fields = ferry__action_fields,
    .shape = "a mapping",
    .size = sizeof(ferry_node_action),
    .done = ferry__action_done,
};

static const ferry__field ferry__node_fields[] = {
    {"name", FERRY__F_STR, .flags = FERRY__REQUIRED, .fn = ferry__keep_ref,
     .offset = FERRY__REC(name)},
    {"type", FERRY__F_ENUM, .flags = FERRY__REQUIRED, .fn = ferry__keep_ref,
     .offset = FERRY__REC(type), .values = ferry__node_types},
    {"on-error", FERRY__F_ENUM, .fn = ferry__node_on_error, .values = ferry__on_error},
    {"edge-merge-mode", FERRY__F_ENUM, .fn = ferry__node_merge_mode, .values = ferry__merge_modes},
    {"commit", FERRY__F_TEXT, .fn = ferry__keep_str, .offset = FERRY__REC(out.commit)},
    FERRY__LIST("actions", ferry__node_rec, out.actions, out.n_actions, &ferry__action_object),
    FERRY__FIELDS_END,
};

static const ferry__object ferry__node_object = {
    .what = "node",
    .fields = ferry__node_fields,
    .unique = 1,
    .shape = "a mapping",
    .size = sizeof(ferry__node_rec),
    .done = ferry__node_done,
};

/* ------------------------------------------------------------------------ */
/* Edges: [source, target] or {source, target}, each "node.type.name"        */

typedef struct ferry__edge {
    const char *ends[2];
    yaml_node_t *configuration;
    int configuration_line;
} ferry__edge;

static void ferry__edge_configuration(ferry__walk *w, const ferry__field *f, const ferry__value *v)
{
    (void)f;
    ferry__edge *edge = w->obj;
    edge->configuration = v->node;
    edge->configuration_line = v->line;
}

static const ferry__field ferry__edge_fields[] = {
    {"source", FERRY__F_STR, .flags = FERRY__REQUIRED, .fn = ferry__keep_ref,
     .offset = offsetof(ferry__edge, ends[0])},
    {"target", FERRY__F_STR, .flags = FERRY__REQUIRED, .fn = ferry__keep_ref,
     .offset = offsetof(ferry__edge, ends[1])},
    {"configuration", FERRY__F_MAP, .fn = ferry__edge_configuration},
    FERRY__FIELDS_END,
};
static const ferry__object ferry__edge_object = {.fields = ferry__edge_fields};

static int ferry__pipeline_has_node(const ferry__pipeline *pl, const char *name)
{
    for (size_t i = 0; i < pl->n_nodes; i++)
        if (pl->nodes[i].name && !strcmp(pl->nodes[i].name, name))
            return 1;
    return 0;
}

/* One end of an edge into `out` (0), or FERRY_EINVAL, reported. The name
 * may hold dots (an output "model.pb"). */
static int ferry__check_socket(ferry__walk *w, int line, const char *end, const char *spec,
                               ferry_edge_end *out)
{
    const char *dot1 = strchr(spec, '.'), *dot2 = dot1 ? strchr(dot1 + 1, '.') : NULL;
    if (!dot2) {
        ferry__err(w->c, line, w->label,
                   "edge %s '%s' must have 3 parts (node.type.name), it has %d", end, spec,
                   dot1 ? 2 : 1);
        return FERRY_EINVAL;
    }
    char *node = ferry_strdup(spec), *type = node + (dot1 - spec) + 1;
    node[dot1 - spec] = '\0';
    node[dot2 - spec] = '\0';
    int rc = 0;
    if (!ferry__pipeline_has_node(w->obj, node)) {
        ferry__err(w->c, line, w->label, "edge %s '%s': node '%s' does not exist", end, spec, node);
        rc = FERRY_EINVAL;
    }
    size_t kind = 0;
    while (ferry__edge_types[kind] && strcmp(ferry__edge_types[kind], type))
        kind++;
    if (!ferry__edge_types[kind]) {
        char *list = ferry__join_list(ferry__edge_types);
        ferry__err(w->c, line, w->label, "edge %s '%s': unknown type '%s' (expected %s)", end, spec,
                   type, list);
        free(list);
        rc = FERRY_EINVAL;
    }
    if (rc == 0) /* ferry__edge_types is in ferry_edge_kind's order, from 1 */
        *out = (ferry_edge_end){ferry_strdup(node), (ferry_edge_kind)(kind + 1),
                                ferry_strdup(dot2 + 1)};
    free(node);
    return rc;
}

static void ferry__free_end(ferry_edge_end *e)
{
    free(e->node);
    free(e->name);
}

/* A short edge's two ends into `edge`; FERRY_EINVAL when it is malformed (reported). */
static int ferry__short_edge(ferry__walk *w, yaml_node_t *e, ferry__edge *edge)
{
    char what[80];
    size_t n = ferry__seq_len(e);
    if (n != 2) {
        ferry__err(w->c, ferry__line(e), w->label,
                   "malformed edge: a short edge is [source, target], got %zu item%s", n,
                   n == 1 ? "" : "s");
        return FERRY_EINVAL;
    }
    for (size_t i = 0; i < 2; i++) {
        yaml_node_t *v = ferry__seq_item(w->c, e, i);
        if (ferry__kind_of(v) == FERRY__STR)
            edge->ends[i] = ferry__text(v);
        else
            ferry__err(w->c, ferry__line(e), w->label, "edge: expected 'node.type.name', got %s",
                       ferry__describe(v, what, sizeof(what)));
    }
    return 0;
}

static void ferry__parse_edge(ferry__walk *w, yaml_node_t *e)
{
    static const char *const end_names[2] = {"source", "target"};
    ferry__edge edge = {{NULL, NULL}, NULL, 0};
    char what[80];
    int line = e ? ferry__line(e) : 1;
    if (ferry__kind_of(e) == FERRY__SEQ) {
        if (ferry__short_edge(w, e, &edge) != 0)
            return;
    } else if (ferry__kind_of(e) == FERRY__MAP) {
        ferry__walk_node(w->c, e, 0, w->label, &ferry__edge_object, &edge, NULL);
    } else {
        ferry__err(w->c, line, w->label, "edge: expected [source, target] or a mapping, got %s",
                   ferry__describe(e, what, sizeof(what)));
        return;
    }
    ferry_pipeline_edge out = {.line = line};
    ferry_edge_end *ends[2] = {&out.source, &out.target};
    int ok = 1;
    for (int i = 0; i < 2; i++)
        ok &=
            edge.ends[i] && ferry__check_socket(w, line, end_names[i], edge.ends[i], ends[i]) == 0;
    if (edge.configuration)
        out.configuration =
            ferry__value_json(w, "configuration", edge.configuration, edge.configuration_line);
    if (!ok || (edge.configuration && !out.configuration)) { /* the file is refused */
        ferry__free_end(&out.source);
        ferry__free_end(&out.target);
        json_decref(out.configuration);
        return;
    }
    ferry_pipeline_def *def = &((ferry__pipeline *)w->obj)->def;
    def->edges = ferry_xrealloc(def->edges, (def->n_edges + 1) * sizeof(*def->edges));
    def->edges[def->n_edges++] = out;
}

/* ------------------------------------------------------------------------ */
/* Pipelines                                                                 */

static void ferry__pipeline_edges(ferry__walk *w, const ferry__field *f, const ferry__value *v)
{
    (void)f;
    for (size_t i = 0; i < ferry__seq_len(v->node); i++)
        ferry__parse_edge(w, ferry__seq_item(w->c, v->node, i));
}

/* Pipeline parameters: each sets parameters of nodes, "node.parameter.name". */

static int ferry__param_target_ok(ferry__walk *w, const ferry__field *f, const char *target,
                                  int line)
{
    const char *dot1 = strchr(target, '.'), *dot2 = dot1 ? strchr(dot1 + 1, '.') : NULL;
    if (!dot2 || dot1 == target || !dot2[1] || dot2 - dot1 - 1 != 9 ||
        strncmp(dot1 + 1, "parameter", 9)) {
        ferry__err(w->c, line, w->label, "%s '%s' must be node.parameter.name", f->key, target);
        return 0;
    }
    char *node = ferry_strdup(target);
    node[dot1 - target] = '\0';
    int known = ferry__pipeline_has_node(w->arg, node);
    if (!known)
        ferry__err(w->c, line, w->label, "%s '%s': node '%s' does not exist", f->key, target, node);
    free(node);
    return known;
}

static void ferry__param_targets(ferry__walk *w, const ferry__field *f, const ferry__value *v)
{
    ferry__words(w, f, v, ferry__param_target_ok);
}

static void ferry__param_default(ferry__walk *w, const ferry__field *f, const ferry__value *v)
{
    ferry_pipeline_param *p = w->obj;
    if (ferry__kind_of(v->node) != FERRY__NULL)
        p->default_value = ferry__value_json(w, f->key, v->node, v->line);
}

static void ferry__pipeline_param_done(ferry__walk *w)
{
    ((ferry_pipeline_param *)w->obj)->line = w->m.line;
}

#define FERRY__PARAM(member) offsetof(ferry_pipeline_param, member)

static const ferry__field ferry__pipeline_param_fields[] = {
    {"name", FERRY__F_STR, .flags = FERRY__REQUIRED, .fn = ferry__keep_str,
     .offset = FERRY__PARAM(name)},
    {"targets", FERRY__F_ANY, .fn = ferry__param_targets, .offset = FERRY__PARAM(targets),
     .count_offset = FERRY__PARAM(n_targets)},
    {"target", FERRY__F_ANY, .fn = ferry__param_targets, .offset = FERRY__PARAM(targets),
     .count_offset = FERRY__PARAM(n_targets)}, /* the short form */
    {"default", FERRY__F_ANY, .fn = ferry__param_default},
    FERRY__FIELDS_END,
};

static const ferry__object ferry__pipeline_param_object = {
    .what = "parameter",
    .fields = ferry__pipeline_param_fields,
    .shape = "a mapping",
    .size = sizeof(ferry_pipeline_param),
    .done = ferry__pipeline_param_done,
};

/* Items that see the object they are in as their arg: a pipeline's
 * parameters its nodes (for their targets), a task's its step. */
static void ferry__keep_items_seeing(ferry__walk *w, const ferry__field *f, const ferry__value *v)
{
    ferry__walk items = *w;
    items.arg = w->obj;
    ferry__keep_items(&items, f, v);
}

static const ferry__field ferry__pipeline_fields[] = {
    {"name", FERRY__F_STR, .flags = FERRY__REQUIRED, .fn = ferry__keep_ref,
     .offset = offsetof(ferry__pipeline, name)},
    {"nodes", FERRY__F_SEQ, .flags = FERRY__REQUIRED, .fn = ferry__keep_items,
     .offset = offsetof(ferry__pipeline, nodes), .object = &ferry__node_object,
     .count_offset = offsetof(ferry__pipeline, n_nodes)},
    {"edges", FERRY__F_SEQ, .fn = ferry__pipeline_edges}, /* after the nodes they join */
    {"parameters", FERRY__F_SEQ, .fn = ferry__keep_items_seeing,
     .offset = offsetof(ferry__pipeline, def.params), .object = &ferry__pipeline_param_object,
     .count_offset = offsetof(ferry__pipeline, def.n_params)}, /* after the nodes too */
    {"reuse-executions", FERRY__F_BOOL, .fn = ferry__keep_bool,
     .offset = offsetof(ferry__pipeline, def.reuse_executions)},
    FERRY__FIELDS_END,
};
static const ferry__object ferry__pipeline_object = {.what = "pipeline",
                                                     .fields = ferry__pipeline_fields};

/* The pipeline or task just read, with what makes it unrunnable. */
static void ferry__add_flow(ferry__ctx *c, const char *kind, const char *name, yaml_node_t *key,
                            ferry_pipeline_def *def, ferry_task_def *task)
{
    ferry_stepfile *sf = c->sf;
    sf->flows = ferry_xrealloc(sf->flows, (sf->n_flows + 1) * sizeof(*sf->flows));
    sf->flows[sf->n_flows++] = (ferry_flow){.kind = kind,
                                            .name = ferry_strdup(name),
                                            .line = key ? ferry__line(key) : 0,
                                            .broken = c->flow_broken,
                                            .pipeline = def,
                                            .task = task};
    c->flow_broken = NULL;
}

void ferry__parse_pipeline(ferry__ctx *c, yaml_node_t *key, yaml_node_t *val)
{
    ferry__pipeline pl = {0};
    ferry__walk_top(c, key, val, &ferry__pipeline_object, &pl);
    ferry_pipeline_def *def = ferry_xcalloc(1, sizeof(*def));
    *def = pl.def;
    def->nodes = ferry_xcalloc(pl.n_nodes ? pl.n_nodes : 1, sizeof(*def->nodes));
    def->n_nodes = pl.n_nodes;
    for (size_t i = 0; i < pl.n_nodes; i++) {
        const ferry__node_rec *rec = &pl.nodes[i];
        ferry_pipeline_node *n = &def->nodes[i];
        *n = rec->out; /* what it owns moves */
        n->name = ferry_strdup(rec->name);
        n->type = ferry_strdup(rec->type);
        n->step = ferry_strdup(rec->step_name);
        n->task = ferry_strdup(rec->task_name);
    }
    ferry__add_flow(c, "pipeline", pl.name, key, def, NULL);
    free(pl.nodes);
}

void ferry__free_pipeline_def(ferry_pipeline_def *def)
{
    if (!def)
        return;
    for (size_t i = 0; i < def->n_nodes; i++) {
        ferry_pipeline_node *n = &def->nodes[i];
        free(n->name);
        free(n->type);
        free(n->step);
        free(n->task);
        free(n->commit);
        json_decref(n->override);
        json_decref(n->deployment);
        for (size_t j = 0; j < n->n_actions; j++) {
            ferry__free_words(n->actions[j].when, n->actions[j].n_when);
            ferry__free_words(n->actions[j].ifs, n->actions[j].n_ifs);
            ferry__free_words(n->actions[j].then, n->actions[j].n_then);
        }
        free(n->actions);
    }
    free(def->nodes);
    for (size_t i = 0; i < def->n_edges; i++) {
        ferry__free_end(&def->edges[i].source);
        ferry__free_end(&def->edges[i].target);
        json_decref(def->edges[i].configuration);
    }
    free(def->edges);
    for (size_t i = 0; i < def->n_params; i++) {
        free(def->params[i].name);
        ferry__free_words(def->params[i].targets, def->params[i].n_targets);
        json_decref(def->params[i].default_value);
    }
    free(def->params);
    free(def);
}

/* ------------------------------------------------------------------------ */
/* Tasks: a definition (ferry_task_def) normalised as valohai-yaml's casts   */
/* normalise it, every rule checked for its style at its own line           */

typedef struct ferry__task_param_rec {
    ferry_task_param out; /* first: the item's name is its name */
    int style_ok;
    yaml_node_t *rules;
} ferry__task_param_rec;

typedef struct ferry__task_rec {
    ferry__node_rec node; /* first: ferry__node_step fills it */
    ferry_task_def def;   /* all but the step and the parameters */
    ferry__task_param_rec *params;
    size_t n_params;
} ferry__task_rec;

#define FERRY__TASK(member) offsetof(ferry__task_rec, member)

/* The rules valohai's schema knows, each of its type; which a style needs
 * and what values they may take is sweep.c's to say. */
static const ferry__field ferry__rule_fields[] = {
    FERRY__CHECKED("start", FERRY__F_NUMBER),      FERRY__CHECKED("end", FERRY__F_NUMBER),
    FERRY__CHECKED("step", FERRY__F_NUMBER),       FERRY__CHECKED("count", FERRY__F_NUMBER),
    FERRY__CHECKED("base", FERRY__F_NUMBER),       FERRY__CHECKED("min", FERRY__F_NUMBER),
    FERRY__CHECKED("max", FERRY__F_NUMBER),        FERRY__CHECKED("seed", FERRY__F_NUMBER),
    FERRY__CHECKED("value", FERRY__F_ANY),         FERRY__CHECKED("items", FERRY__F_SEQ),
    FERRY__CHECKED("distribution", FERRY__F_TEXT), FERRY__CHECKED("numberify", FERRY__F_BOOL),
    FERRY__CHECKED("integerify", FERRY__F_BOOL),   FERRY__FIELDS_END,
};
static const ferry__object ferry__rules_object = {.fields = ferry__rule_fields, .closed = 1};

static void ferry__task_style(ferry__walk *w, const ferry__field *f, const ferry__value *v)
{
    (void)f;
    ferry__task_param_rec *p = w->obj;
    p->out.style = (ferry_sweep_style)v->index;
    p->style_ok = 1;
}

static void ferry__task_rules(ferry__walk *w, const ferry__field *f, const ferry__value *v)
{
    (void)f;
    ((ferry__task_param_rec *)w->obj)->rules = v->node;
}

/* The line of `key` in the mapping `node`, else `line`. */
static int ferry__key_line(ferry__walk *w, yaml_node_t *node, const char *key, int line)
{
    ferry__map m;
    ferry__map_load(w->c, node, w->label, &m);
    const ferry__pair *p = key ? ferry__map_find(&m, key) : NULL;
    if (p)
        line = ferry__line(p->knode);
    ferry__map_free(&m);
    return line;
}

/* The rules: their types key by key, then what the style makes of them. */
static void ferry__task_param_rules(ferry__walk *w, ferry__task_param_rec *p)
{
    char *label = ferry_asprintf("%s: rules", w->label);
    size_t errors = w->c->n_errors;
    int line = ferry__line(p->rules);
    ferry__walk_node(w->c, p->rules, 0, label, &ferry__rules_object, NULL, NULL);
    p->out.rules = ferry__value_json(w, "rules", p->rules, line);
    if (p->out.rules && p->style_ok && w->c->n_errors == errors) {
        ferry_sweep_values values;
        const char *bad = NULL;
        char why[512];
        if (ferry__sweep_from_rules(p->out.style, p->out.rules, &values, &bad, why, sizeof(why)))
            ferry__err(w->c, ferry__key_line(w, p->rules, bad, line), label, "%s (style %s)", why,
                       ferry_sweep_style_name(p->out.style));
        else
            ferry_sweep_values_clear(&values);
    }
    free(label);
}

static void ferry__task_param_done(ferry__walk *w)
{
    ferry__task_param_rec *p = w->obj;
    const ferry__task_rec *task = w->arg;
    p->out.line = w->m.line;
    if (p->rules)
        ferry__task_param_rules(w, p);
    if (p->out.name && task && task->node.step && !ferry__find_param(task->node.step, p->out.name))
        ferry__broken(w->c, w->m.line, w->label, "step '%s' has no parameter '%s'",
                      task->node.step->name, p->out.name);
}

static const ferry__field ferry__task_param_fields[] = {
    {"name", FERRY__F_STR, .flags = FERRY__REQUIRED, .fn = ferry__keep_str,
     .offset = offsetof(ferry__task_param_rec, out.name)},
    {"style", FERRY__F_ENUM, .flags = FERRY__REQUIRED | FERRY__NOCASE, .fn = ferry__task_style,
     .values = ferry__sweep_styles},
    {"rules", FERRY__F_MAP, .flags = FERRY__REQUIRED, .fn = ferry__task_rules},
    FERRY__FIELDS_END,
};
static const ferry__object ferry__task_param_object = {
    .what = "parameter",
    .fields = ferry__task_param_fields,
    .shape = "a mapping",
    .size = sizeof(ferry__task_param_rec),
    .done = ferry__task_param_done,
};

/* type and on-child-error: valohai-yaml's normalisation, then one of its values. */
static void ferry__task_enum_err(ferry__walk *w, const ferry__field *f, const ferry__value *v,
                                 const char *const *values)
{
    char *known = ferry__join_list(values);
    ferry__err(w->c, v->line, w->label, "unknown %s '%s' (expected %s)", f->key, v->text, known);
    free(known);
}

static void ferry__task_type(ferry__walk *w, const ferry__field *f, const ferry__value *v)
{
    ferry__task_rec *t = w->obj;
    if (ferry_task_type_parse(v->text, 0, &t->def.type) != 0)
        ferry__task_enum_err(w, f, v, ferry__task_type_names);
}

static void ferry__task_child_error(ferry__walk *w, const ferry__field *f, const ferry__value *v)
{
    ferry__task_rec *t = w->obj;
    if (ferry_child_error_parse(v->text, 0, &t->def.on_child_error) != 0)
        ferry__task_enum_err(w, f, v, ferry__child_error_names);
}

/* execution-count and the like: whole numbers of at least 1, at f->offset. */
static void ferry__task_count(ferry__walk *w, const ferry__field *f, const ferry__value *v)
{
    double d = v->number;
    if (!(d >= 1 && d <= 1e15 && d == (double)(int64_t)d)) {
        char what[80];
        ferry__err(w->c, v->line, w->label, "%s: expected a whole number of at least 1, got %s",
                   f->key, ferry__describe(v->node, what, sizeof(what)));
        return;
    }
    *(int64_t *)(void *)((char *)w->obj + f->offset) = (int64_t)d;
}

static void ferry__task_target_value(ferry__walk *w, const ferry__field *f, const ferry__value *v)
{
    (void)f;
    ferry__task_rec *t = w->obj;
    t->def.has_optimization_target_value = 1;
    t->def.optimization_target_value = v->number;
}

/* parameter-sets: mappings of the step's parameters; empty ones are
 * dropped, as valohai-yaml drops them. */
static void ferry__task_parameter_sets(ferry__walk *w, const ferry__field *f, const ferry__value *v)
{
    ferry__task_rec *t = w->obj;
    char what[80];
    json_t *sets = json_array();
    for (size_t i = 0; i < ferry__seq_len(v->node); i++) {
        yaml_node_t *item = ferry__seq_item(w->c, v->node, i);
        int line = item ? ferry__line(item) : v->line;
        if (ferry__kind_of(item) != FERRY__MAP) {
            ferry__err(w->c, line, w->label, "%s #%zu: expected a mapping, got %s", f->key, i + 1,
                       ferry__describe(item, what, sizeof(what)));
            continue;
        }
        json_t *set = ferry__value_json(w, f->key, item, line), *value;
        const char *name;
        json_object_foreach(set, name, value)
        {
            if (t->node.step && !ferry__find_param(t->node.step, name))
                ferry__broken(w->c, ferry__key_line(w, item, name, line), w->label,
                              "%s #%zu: step '%s' has no parameter '%s'", f->key, i + 1,
                              t->node.step->name, name);
        }
        if (set && json_object_size(set))
            json_array_append(sets, set);
        json_decref(set);
    }
    json_decref(t->def.parameter_sets);
    t->def.parameter_sets = json_array_size(sets) ? sets : NULL;
    if (!t->def.parameter_sets)
        json_decref(sets);
}

/* In this order: the step before the parameters that name its parameters. */
static const ferry__field ferry__task_fields[] = {
    {"name", FERRY__F_STR, .flags = FERRY__REQUIRED, .fn = ferry__keep_ref,
     .offset = FERRY__TASK(node.name)},
    {"step", FERRY__F_STR, .flags = FERRY__REQUIRED, .fn = ferry__node_step},
    {"type", FERRY__F_TEXT, .fn = ferry__task_type},
    {"execution-count", FERRY__F_NUMBER, .fn = ferry__task_count,
     .offset = FERRY__TASK(def.execution_count)},
    {"execution-batch-size", FERRY__F_NUMBER, .fn = ferry__task_count,
     .offset = FERRY__TASK(def.execution_batch_size)},
    {"maximum-queued-executions", FERRY__F_NUMBER, .fn = ferry__task_count,
     .offset = FERRY__TASK(def.maximum_queued_executions)},
    {"on-child-error", FERRY__F_TEXT, .fn = ferry__task_child_error},
    {"optimization-target-metric", FERRY__F_STR, .fn = ferry__keep_str,
     .offset = FERRY__TASK(def.optimization_target_metric)},
    {"optimization-target-value", FERRY__F_NUMBER, .fn = ferry__task_target_value},
    {"engine", FERRY__F_TEXT, .fn = ferry__keep_str, .offset = FERRY__TASK(def.engine)},
    {"parameters", FERRY__F_SEQ, .fn = ferry__keep_items_seeing, .offset = FERRY__TASK(params),
     .object = &ferry__task_param_object, .count_offset = FERRY__TASK(n_params)},
    {"parameter-sets", FERRY__F_SEQ, .fn = ferry__task_parameter_sets},
    {"stop-condition", FERRY__F_TEXT, .fn = ferry__keep_expression,
     .offset = FERRY__TASK(def.stop_condition)},
    {"reuse-children", FERRY__F_BOOL, .fn = ferry__keep_bool,
     .offset = FERRY__TASK(def.reuse_children)},
    FERRY__FIELDS_END,
};
static const ferry__object ferry__task_object = {.what = "task", .fields = ferry__task_fields};

void ferry__parse_task(ferry__ctx *c, yaml_node_t *key, yaml_node_t *val)
{
    ferry__task_rec rec = {0};
    ferry__walk_top(c, key, val, &ferry__task_object, &rec);
    ferry_task_def *def = ferry_xcalloc(1, sizeof(*def));
    *def = rec.def;
    def->step = ferry_strdup(rec.node.step_name);
    def->params = ferry_xcalloc(rec.n_params ? rec.n_params : 1, sizeof(*def->params));
    def->n_params = rec.n_params;
    for (size_t i = 0; i < rec.n_params; i++)
        def->params[i] = rec.params[i].out; /* what it owns moves */
    free(rec.params);
    ferry__add_flow(c, "task", rec.node.name, key, NULL, def);
}

void ferry__free_task_def(ferry_task_def *def)
{
    if (!def)
        return;
    free(def->step);
    free(def->optimization_target_metric);
    free(def->engine);
    free(def->stop_condition);
    json_decref(def->parameter_sets);
    for (size_t i = 0; i < def->n_params; i++) {
        free(def->params[i].name);
        json_decref(def->params[i].rules);
    }
    free(def->params);
    free(def);
}

/* ------------------------------------------------------------------------ */
/* Endpoints                                                                 */

/* Endpoint names become part of a URL: ^[a-z][a-z0-9-]+$ as in valohai. */
static int ferry__endpoint_name_ok(const char *s)
{
    if (!(*s >= 'a' && *s <= 'z') || !s[1])
        return 0;
    for (s++; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || isdigit((unsigned char)*s) || *s == '-'))
            return 0;
    return 1;
}

static void ferry__endpoint_name(ferry__walk *w, const ferry__field *f, const ferry__value *v)
{
    (void)f;
    if (!ferry__endpoint_name_ok(v->text))
        ferry__err(w->c, v->line, w->label,
                   "name '%s' is not valid: it must start with a lower-case letter and hold "
                   "only lower-case letters, digits and dashes (^[a-z][a-z0-9-]+$)",
                   v->text);
}

static const ferry__field ferry__endpoint_fields[] = {
    {"name", FERRY__F_STR, .flags = FERRY__REQUIRED, .fn = ferry__endpoint_name},
    FERRY__FIELDS_END,
};
static const ferry__object ferry__endpoint_object = {.what = "endpoint",
                                                     .fields = ferry__endpoint_fields};

void ferry__parse_endpoint(ferry__ctx *c, yaml_node_t *key, yaml_node_t *val)
{
    ferry__walk_top(c, key, val, &ferry__endpoint_object, NULL);
}
