/* Pipelines, tasks, endpoints: not run (yet), but checked within reason, so
 * that a file valohai would refuse is refused here too. Their tables are
 * open: keys we don't know are left to valohai.
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
} ferry__node_rec;

typedef struct ferry__pipeline {
    const char *name;
    ferry__node_rec *nodes;
    size_t n_nodes;
} ferry__pipeline;

#define FERRY__REC(member) offsetof(ferry__node_rec, member)

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
    (void)f;
    const ferry__node_rec *rec = w->obj;
    ferry__walk_node(w->c, v->node, 0, w->label, &ferry__override_object, NULL, rec->step);
}

/* ------------------------------------------------------------------------ */
/* Nodes                                                                     */

/* The step an execution or task node runs: it must exist, unless the node
 * names another commit, which we can't see. */
static void ferry__node_step(ferry__walk *w, const ferry__field *f, const ferry__value *v)
{
    (void)f;
    ferry__node_rec *rec = w->obj;
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

/* What else a node holds depends on its type. */
static void ferry__node_done(ferry__walk *w)
{
    const ferry__node_rec *rec = w->obj;
    if (rec->type && !strcmp(rec->type, "execution")) {
        ferry__walk_fields(w, ferry__execution_fields);
    } else if (rec->type && !strcmp(rec->type, "task")) {
        ferry__walk_fields(w, ferry__task_node_fields);
        if (!rec->has_task && !ferry__map_get(&w->m, "step"))
            ferry__err(w->c, w->m.line, w->label, "a task node needs 'step' or 'task'");
    }
}

static const char *const ferry__node_types[] = {"execution", "task", "deployment", NULL};

static const ferry__field ferry__node_fields[] = {
    {"name", FERRY__F_STR, .flags = FERRY__REQUIRED, .fn = ferry__keep_ref,
     .offset = FERRY__REC(name)},
    {"type", FERRY__F_ENUM, .flags = FERRY__REQUIRED, .fn = ferry__keep_ref,
     .offset = FERRY__REC(type), .values = ferry__node_types},
    {"on-error", FERRY__F_ENUM, .values = ferry__on_error},
    {"edge-merge-mode", FERRY__F_ENUM, .values = ferry__merge_modes},
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
} ferry__edge;

static const ferry__field ferry__edge_fields[] = {
    {"source", FERRY__F_STR, .flags = FERRY__REQUIRED, .fn = ferry__keep_ref,
     .offset = offsetof(ferry__edge, ends[0])},
    {"target", FERRY__F_STR, .flags = FERRY__REQUIRED, .fn = ferry__keep_ref,
     .offset = offsetof(ferry__edge, ends[1])},
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

/* The name may hold dots (an output "model.pb"). */
static void ferry__check_socket(ferry__walk *w, int line, const char *end, const char *spec)
{
    const char *dot1 = strchr(spec, '.'), *dot2 = dot1 ? strchr(dot1 + 1, '.') : NULL;
    if (!dot2) {
        ferry__err(w->c, line, w->label,
                   "edge %s '%s' must have 3 parts (node.type.name), it has %d", end, spec,
                   dot1 ? 2 : 1);
        return;
    }
    char *node = ferry_strdup(spec), *type = node + (dot1 - spec) + 1;
    node[dot1 - spec] = '\0';
    node[dot2 - spec] = '\0';
    if (!ferry__pipeline_has_node(w->obj, node))
        ferry__err(w->c, line, w->label, "edge %s '%s': node '%s' does not exist", end, spec, node);
    if (!ferry__in_list(type, ferry__edge_types)) {
        char *list = ferry__join_list(ferry__edge_types);
        ferry__err(w->c, line, w->label, "edge %s '%s': unknown type '%s' (expected %s)", end, spec,
                   type, list);
        free(list);
    }
    free(node);
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
    ferry__edge edge = {{NULL, NULL}};
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
    for (int i = 0; i < 2; i++)
        if (edge.ends[i])
            ferry__check_socket(w, line, end_names[i], edge.ends[i]);
}

/* ------------------------------------------------------------------------ */
/* Pipelines                                                                 */

static void ferry__pipeline_edges(ferry__walk *w, const ferry__field *f, const ferry__value *v)
{
    (void)f;
    for (size_t i = 0; i < ferry__seq_len(v->node); i++)
        ferry__parse_edge(w, ferry__seq_item(w->c, v->node, i));
}

static const ferry__field ferry__pipeline_fields[] = {
    {"name", FERRY__F_STR, .flags = FERRY__REQUIRED, .fn = ferry__keep_ref,
     .offset = offsetof(ferry__pipeline, name)},
    {"nodes", FERRY__F_SEQ, .flags = FERRY__REQUIRED, .fn = ferry__keep_items,
     .offset = offsetof(ferry__pipeline, nodes), .object = &ferry__node_object,
     .count_offset = offsetof(ferry__pipeline, n_nodes)},
    {"edges", FERRY__F_SEQ, .fn = ferry__pipeline_edges}, /* after the nodes they join */
    FERRY__CHECKED("parameters", FERRY__F_SEQ),
    FERRY__FIELDS_END,
};
static const ferry__object ferry__pipeline_object = {.what = "pipeline",
                                                     .fields = ferry__pipeline_fields};

/* The pipeline or task just read, with what makes it unrunnable. */
static void ferry__add_flow(ferry__ctx *c, const char *kind, const char *name, yaml_node_t *key)
{
    ferry_stepfile *sf = c->sf;
    sf->flows = ferry_xrealloc(sf->flows, (sf->n_flows + 1) * sizeof(*sf->flows));
    sf->flows[sf->n_flows++] = (ferry_flow){.kind = kind,
                                            .name = ferry_strdup(name),
                                            .line = key ? ferry__line(key) : 0,
                                            .broken = c->flow_broken};
    c->flow_broken = NULL;
}

void ferry__parse_pipeline(ferry__ctx *c, yaml_node_t *key, yaml_node_t *val)
{
    ferry__pipeline pl = {NULL, NULL, 0};
    ferry__walk_top(c, key, val, &ferry__pipeline_object, &pl);
    ferry__add_flow(c, "pipeline", pl.name, key);
    free(pl.nodes);
}

/* ------------------------------------------------------------------------ */
/* Tasks                                                                     */

static const char *const ferry__task_styles[] = {"single",   "linear", "logspace",
                                                 "multiple", "random", NULL};

static const ferry__field ferry__task_param_fields[] = {
    {"name", FERRY__F_STR, .flags = FERRY__REQUIRED},
    {"style", FERRY__F_ENUM, .flags = FERRY__REQUIRED, .values = ferry__task_styles},
    {"rules", FERRY__F_MAP, .flags = FERRY__REQUIRED},
    FERRY__FIELDS_END,
};
static const ferry__object ferry__task_param_object = {
    .what = "parameter", .fields = ferry__task_param_fields, .shape = "a mapping"};

static const ferry__field ferry__task_fields[] = {
    {"name", FERRY__F_STR, .flags = FERRY__REQUIRED, .fn = ferry__keep_ref,
     .offset = FERRY__REC(name)},
    {"step", FERRY__F_STR, .flags = FERRY__REQUIRED, .fn = ferry__node_step},
    {"parameters", FERRY__F_SEQ, .fn = ferry__keep_items, .object = &ferry__task_param_object},
    FERRY__CHECKED("parameter-sets", FERRY__F_SEQ),
    {"stop-condition", FERRY__F_TEXT, .fn = ferry__check_expression},
    FERRY__FIELDS_END,
};
static const ferry__object ferry__task_object = {.what = "task", .fields = ferry__task_fields};

void ferry__parse_task(ferry__ctx *c, yaml_node_t *key, yaml_node_t *val)
{
    ferry__node_rec rec = {NULL, NULL, NULL, 0};
    ferry__walk_top(c, key, val, &ferry__task_object, &rec);
    ferry__add_flow(c, "task", rec.name, key);
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
