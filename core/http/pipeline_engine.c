/* The pipeline engine (pipeline_engine.h).
 *
 * A pipeline's definition is kept as JSON (pipelinerows.h): nodes
 * [{name, type, step, on_error, merge, actions: [{when, if, then}], line}]
 * and edges [{source: {node, kind, name}, target: {...}, line}]. Each node
 * starts from its `base`, the creation body made once at creation (the
 * step, the snapshot, the node's override, the pipeline's parameters); its
 * edges add the data of its sources when it is created. */
#include "pipeline_engine.h"

#include <fnmatch.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "datumrows.h"
#include "db.h"
#include "exec.h"
#include "lifecycle.h"
#include "log.h"
#include "logstore.h"
#include "snapshots.h"
#include "stepfile.h"
#include "submit.h"
#include "util.h"
#include "views.h"

/* How many times a node with `on-error: retry` runs again after it failed:
 * once, as valohai does. */
#define ENGINE__RETRIES 1

/* What the engine keeps in ferryd (d->pipelines). */
typedef struct ferry_pipeline_engine {
    ferry_map live;  /* id -> ferry_pipeline, every unfinished one */
    ferry_map execs; /* execution id -> its ferry_pipeline */
    /* Pipelines that ended this loop turn: freed after it, since the
     * callers up the stack may still hold them. */
    ferry_pipeline **ended;
    size_t n_ended, cap_ended;
    uv_prepare_t reaper;
    /* Reentrance: advancing a pipeline creates executions, whose answers
     * (possibly at once) advance it again: the outer pass goes round once
     * more instead. */
    ferry_map advancing; /* id -> (void *)1 while its pass runs, 2: go again */
} ferry_pipeline_engine;

static const char *const engine__kinds[] = {
    [FERRY_EDGE_INPUT] = "input",
    [FERRY_EDGE_OUTPUT] = "output",
    [FERRY_EDGE_PARAMETER] = "parameter",
    [FERRY_EDGE_METADATA] = "metadata",
    [FERRY_EDGE_FILE] = "file",
    [FERRY_EDGE_DEPLOYMENT] = "deployment",
    [FERRY_EDGE_ENVIRONMENT_VARIABLE] = "environment-variable",
    [FERRY_EDGE_DEPENDENCY] = "dependency",
};

static const char *const engine__on_error[] = {
    [FERRY_ON_ERROR_STOP_ALL] = "stop-all",
    [FERRY_ON_ERROR_STOP_NEXT] = "stop-next",
    [FERRY_ON_ERROR_CONTINUE] = "continue",
    [FERRY_ON_ERROR_RETRY] = "retry",
};

static const char *engine__str(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

static int engine__is(const char *a, const char *b)
{
    return a && b && strcmp(a, b) == 0;
}

char *ferry_pipeline_edge_text(const json_t *end)
{
    return ferry_asprintf("%s.%s.%s", engine__str(end, "node"), engine__str(end, "kind"),
                          engine__str(end, "name"));
}

/* ---- the definition as JSON ---- */

static json_t *engine__strings(char **v, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, json_string(v[i]));
    return a;
}

static json_t *engine__edge_end_json(const ferry_edge_end *e)
{
    return json_pack("{s:s, s:s, s:s}", "node", e->node, "kind", engine__kinds[e->kind], "name",
                     e->name ? e->name : "*");
}

static json_t *engine__node_json(const ferry_pipeline_node *n)
{
    json_t *actions = json_array();
    for (size_t i = 0; i < n->n_actions; i++) {
        const ferry_node_action *a = &n->actions[i];
        json_array_append_new(
            actions, json_pack("{s:o, s:o, s:o, s:i}", "when", engine__strings(a->when, a->n_when),
                               "if", engine__strings(a->ifs, a->n_ifs), "then",
                               engine__strings(a->then, a->n_then), "line", a->line));
    }
    return json_pack("{s:s, s:s, s:s?, s:s, s:s, s:o, s:i}", "name", n->name, "type",
                     n->type ? n->type : "execution", "step", n->step, "on_error",
                     engine__on_error[n->on_error], "merge", n->merge_append ? "append" : "replace",
                     "actions", actions, "line", n->line);
}

static json_t *engine__definition_json(const ferry_pipeline_def *def)
{
    json_t *nodes = json_array(), *edges = json_array();
    for (size_t i = 0; i < def->n_nodes; i++)
        json_array_append_new(nodes, engine__node_json(&def->nodes[i]));
    for (size_t i = 0; i < def->n_edges; i++) {
        const ferry_pipeline_edge *e = &def->edges[i];
        json_array_append_new(edges, json_pack("{s:o, s:o, s:i}", "source",
                                               engine__edge_end_json(&e->source), "target",
                                               engine__edge_end_json(&e->target), "line", e->line));
    }
    return json_pack("{s:o, s:o}", "nodes", nodes, "edges", edges);
}

const json_t *ferry_pipeline_def_node(const ferry_pipeline *p, const char *name)
{
    size_t i;
    const json_t *n;
    json_array_foreach(json_object_get(p->definition, "nodes"), i,
                       n) if (engine__is(engine__str(n, "name"), name)) return n;
    return NULL;
}

/* ---- checks at creation ---- */

/* One creation being checked: where its messages point. */
typedef struct engine__check {
    const ferry_stepfile *sf;
    const ferry_flow *flow;
    char *err; /* the first refusal, "valohai.yaml:12: pipeline 'p': ..." */
    char *field;
} engine__check;

static void engine__refuse(engine__check *c, const char *field, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void engine__refuse(engine__check *c, const char *field, int line, const char *fmt, ...)
{
    if (c->err)
        return; /* the first is the one said */
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    c->err = ferry_asprintf("%s:%d: pipeline '%s': %s", c->sf->path, line ? line : c->flow->line,
                            c->flow->name, msg);
    c->field = ferry_strdup(field);
}

static const ferry_param_def *engine__param(const ferry_step *s, const char *name)
{
    for (size_t i = 0; s && i < s->n_params; i++)
        if (strcmp(s->params[i].name, name) == 0)
            return &s->params[i];
    return NULL;
}

static const ferry_input_def *engine__input(const ferry_step *s, const char *name)
{
    for (size_t i = 0; s && i < s->n_inputs; i++)
        if (strcmp(s->inputs[i].name, name) == 0)
            return &s->inputs[i];
    return NULL;
}

static const ferry_pipeline_node *engine__node_def(const ferry_pipeline_def *def, const char *name)
{
    for (size_t i = 0; i < def->n_nodes; i++)
        if (strcmp(def->nodes[i].name, name) == 0)
            return &def->nodes[i];
    return NULL;
}

/* The node's step in the pipeline's own step file; NULL for a node of
 * another commit (whose step file is read when the node is created). */
static const ferry_step *engine__node_step(engine__check *c, const ferry_pipeline_node *n)
{
    return n && n->step && !n->commit ? ferry_stepfile_find(c->sf, n->step) : NULL;
}

/* Whether what the node's step declares can be checked at creation. */
static int engine__checkable(const ferry_pipeline_node *n)
{
    return n && !n->commit;
}

/* A node runs here: an execution node of a step of this file. */
static void engine__check_node(engine__check *c, const ferry_pipeline_node *n)
{
    const char *type = n->type ? n->type : "execution";
    if (strcmp(type, "task") == 0) {
        engine__refuse(c, "pipeline", n->line,
                       "node '%s' is a task node: ferry does not run tasks yet, so this "
                       "pipeline cannot run",
                       n->name);
        return;
    }
    if (strcmp(type, "deployment") == 0) {
        engine__refuse(c, "pipeline", n->line,
                       "node '%s' is a deployment node: deployments are parsed, not run by ferry",
                       n->name);
        return;
    }
    if (n->commit && strncmp(n->commit, "library:", 8) == 0) {
        engine__refuse(c, "pipeline", n->line,
                       "node '%s': commit '%s' names a step of a Valohai library, which ferry "
                       "cannot reach",
                       n->name, n->commit);
        return;
    }
    const ferry_step *step = engine__node_step(c, n);
    if (n->commit) /* its step is in that commit's file: checked when it is created */
        ;
    else if (step == NULL)
        engine__refuse(c, "pipeline", n->line, "node '%s': no step '%s' in %s", n->name,
                       n->step ? n->step : "", c->sf->path);
    else if (step->broken)
        engine__refuse(c, "pipeline", n->line, "node '%s': %s", n->name, step->broken);
    for (size_t i = 0; i < n->n_actions; i++)
        for (size_t j = 0; j < n->actions[i].n_then; j++) {
            const char *then = n->actions[i].then[j];
            if (strcmp(then, "stop-pipeline") && strcmp(then, "error-pipeline") &&
                strcmp(then, "require-approval") && strcmp(then, "noop"))
                engine__refuse(c, "pipeline", n->actions[i].line,
                               "node '%s': action 'then: %s' is not one ferry runs (it runs "
                               "stop-pipeline, error-pipeline, require-approval and noop)",
                               n->name, then);
        }
}

/* Which kind of source may feed which kind of target. */
static int engine__edge_pair_ok(ferry_edge_kind from, ferry_edge_kind to)
{
    switch (from) {
    case FERRY_EDGE_OUTPUT:
    case FERRY_EDGE_INPUT:
        return to == FERRY_EDGE_INPUT;
    case FERRY_EDGE_PARAMETER:
    case FERRY_EDGE_METADATA:
        return to == FERRY_EDGE_PARAMETER;
    case FERRY_EDGE_ENVIRONMENT_VARIABLE:
        return to == FERRY_EDGE_ENVIRONMENT_VARIABLE;
    case FERRY_EDGE_DEPENDENCY:
        return to == FERRY_EDGE_DEPENDENCY;
    default:
        return 0;
    }
}

static void engine__check_edge(engine__check *c, const ferry_pipeline_def *def,
                               const ferry_pipeline_edge *e)
{
    const ferry_edge_end *s = &e->source, *t = &e->target;
    const char *sk = engine__kinds[s->kind], *tk = engine__kinds[t->kind];
    if (s->kind == FERRY_EDGE_FILE || s->kind == FERRY_EDGE_DEPLOYMENT ||
        t->kind == FERRY_EDGE_FILE || t->kind == FERRY_EDGE_DEPLOYMENT) {
        engine__refuse(c, "pipeline", e->line,
                       "edge %s.%s -> %s.%s: %s edges feed deployments, which are parsed, not "
                       "run by ferry",
                       s->node, sk, t->node, tk, t->kind == FERRY_EDGE_FILE ? "file" : sk);
        return;
    }
    if (!engine__edge_pair_ok(s->kind, t->kind)) {
        engine__refuse(c, "pipeline", e->line, "edge %s.%s.%s -> %s.%s.%s: a %s cannot feed a %s",
                       s->node, sk, s->name, t->node, tk, t->name, sk, tk);
        return;
    }
    const ferry_pipeline_node *fn = engine__node_def(def, s->node),
                              *tn = engine__node_def(def, t->node);
    const ferry_step *from = engine__node_step(c, fn), *to = engine__node_step(c, tn);
    if (strcmp(s->node, t->node) == 0)
        engine__refuse(c, "pipeline", e->line, "edge %s.%s -> %s.%s: a node cannot feed itself",
                       s->node, sk, t->node, tk);
    else if (!engine__checkable(fn) || !engine__checkable(tn))
        return; /* a node of another commit: its step is checked when it is created */
    else if (t->kind == FERRY_EDGE_INPUT && !engine__input(to, t->name))
        engine__refuse(c, "pipeline", e->line, "edge into %s.input.%s: step '%s' has no input '%s'",
                       t->node, t->name, to ? to->name : "", t->name);
    else if (t->kind == FERRY_EDGE_PARAMETER && !engine__param(to, t->name))
        engine__refuse(c, "pipeline", e->line,
                       "edge into %s.parameter.%s: step '%s' has no parameter '%s'", t->node,
                       t->name, to ? to->name : "", t->name);
    else if (s->kind == FERRY_EDGE_PARAMETER && !engine__param(from, s->name))
        engine__refuse(c, "pipeline", e->line,
                       "edge from %s.parameter.%s: step '%s' has no parameter '%s'", s->node,
                       s->name, from ? from->name : "", s->name);
}

/* Edges must not loop: a node would wait for itself for ever. */
static void engine__check_acyclic(engine__check *c, const ferry_pipeline_def *def)
{
    size_t n = def->n_nodes, done = 0;
    char *finished = ferry_xcalloc(n ? n : 1, 1);
    for (int progress = 1; progress;) {
        progress = 0;
        for (size_t i = 0; i < n; i++) {
            int ready = !finished[i];
            for (size_t k = 0; ready && k < def->n_edges; k++) {
                const ferry_pipeline_edge *e = &def->edges[k];
                if (strcmp(e->target.node, def->nodes[i].name) != 0)
                    continue;
                const ferry_pipeline_node *src = engine__node_def(def, e->source.node);
                ready = src == NULL || finished[src - def->nodes];
            }
            if (ready) {
                finished[i] = 1;
                done++;
                progress = 1;
            }
        }
    }
    for (size_t i = 0; done < n && i < n; i++)
        if (!finished[i]) {
            engine__refuse(c, "pipeline", def->nodes[i].line,
                           "node '%s' is on a loop of edges: it would wait for itself",
                           def->nodes[i].name);
            break;
        }
    free(finished);
}

/* A `default` of an override's parameters or inputs, under `name`. */
static void engine__override_list(engine__check *c, const ferry_pipeline_node *n, const char *key,
                                  const ferry_step *step, json_t *into)
{
    const json_t *list = json_object_get(n->override, key);
    size_t i;
    const json_t *item;
    json_array_foreach(list, i, item)
    {
        const char *name = engine__str(item, "name");
        json_t *value = json_object_get(item, "default");
        int known = step == NULL                     ? 1 /* another commit's: checked later */
                    : strcmp(key, "parameters") == 0 ? engine__param(step, name ? name : "") != NULL
                    : strcmp(key, "inputs") == 0     ? engine__input(step, name ? name : "") != NULL
                                                     : 1;
        if (name == NULL || !known) {
            engine__refuse(c, "pipeline", n->line,
                           "node '%s': override of %s: step '%s' has no %.*s '%s'", n->name, key,
                           step ? step->name : n->step, (int)strlen(key) - 1, key,
                           name ? name : "");
            return;
        }
        if (value && !json_is_null(value))
            json_object_set(into, name, value);
    }
}

/* The node's `override:` as creation fields: image, command, environment,
 * and the defaults of parameters, inputs and environment variables. */
static void engine__apply_override(engine__check *c, const ferry_pipeline_node *n,
                                   const ferry_step *step, json_t *base)
{
    const char *key;
    json_t *value;
    json_object_foreach(n->override, key, value)
    {
        if (strcmp(key, "image") == 0 || strcmp(key, "environment") == 0) {
            if (!json_is_string(value)) {
                engine__refuse(c, "pipeline", n->line, "node '%s': override of %s: not a text",
                               n->name, key);
                return;
            }
            json_object_set(base, key, value);
        } else if (strcmp(key, "command") == 0) {
            json_object_set(base, "command", value);
        } else if (strcmp(key, "parameters") == 0 || strcmp(key, "inputs") == 0) {
            engine__override_list(c, n, key, step, json_object_get(base, key));
        } else if (strcmp(key, "environment-variables") == 0) {
            engine__override_list(c, n, key, step, json_object_get(base, "environment_variables"));
        } else if (strcmp(key, "name") != 0) {
            engine__refuse(c, "pipeline", n->line,
                           "node '%s': override of '%s' is not one ferry takes (it takes image, "
                           "command, environment, parameters, inputs, environment-variables)",
                           n->name, key);
            return;
        }
    }
}

/* An input an `append` edge feeds keeps its defaults: they go in the base,
 * as the override or the step gives them. */
static void engine__append_defaults(const ferry_pipeline_def *def, const ferry_pipeline_node *n,
                                    const ferry_step *step, json_t *inputs)
{
    if (!n->merge_append)
        return;
    for (size_t k = 0; k < def->n_edges; k++) {
        const ferry_edge_end *t = &def->edges[k].target;
        if (t->kind != FERRY_EDGE_INPUT || strcmp(t->node, n->name) != 0 ||
            json_object_get(inputs, t->name))
            continue;
        const ferry_input_def *in = engine__input(step, t->name);
        if (in && in->n_default_urls)
            json_object_set_new(inputs, t->name,
                                engine__strings(in->default_urls, in->n_default_urls));
    }
}

/* Splits "node.parameter.name" into its node and name; 0 when it has not
 * that shape. */
static int engine__split_target(const char *target, char *node, size_t cap, const char **name)
{
    const char *dot = strchr(target, '.');
    if (dot == NULL || (size_t)(dot - target) >= cap || strncmp(dot + 1, "parameter.", 10) != 0)
        return 0;
    snprintf(node, cap, "%.*s", (int)(dot - target), target);
    *name = dot + 11;
    return **name != '\0';
}

static json_t *engine__base_of(ferry_pipeline *p, const char *node)
{
    ferry_pnode *n = ferry_pipeline_find_node(p, node);
    return n ? n->base : NULL;
}

/* Whether an edge feeds `kind` `name` of node `node`. */
static int engine__edge_feeds(const ferry_pipeline_def *def, const char *node, ferry_edge_kind kind,
                              const char *name)
{
    for (size_t k = 0; k < def->n_edges; k++) {
        const ferry_edge_end *t = &def->edges[k].target;
        if (t->kind == kind && strcmp(t->node, node) == 0 && strcmp(t->name, name) == 0)
            return 1;
    }
    return 0;
}

/* Sets parameter `name` of `node` to `value`, checking both exist. */
static void engine__set_node_param(engine__check *c, ferry_pipeline *p, const char *node,
                                   const char *name, json_t *value, int line, const char *what)
{
    const ferry_pipeline_node *n = engine__node_def(c->flow->pipeline, node);
    const ferry_step *step = engine__node_step(c, n);
    if (n == NULL || (engine__checkable(n) && !engine__param(step, name))) {
        engine__refuse(c, "parameters", line, "%s: %s", what,
                       n ? "the node's step has no such parameter" : "no such node");
        return;
    }
    if (engine__edge_feeds(c->flow->pipeline, node, FERRY_EDGE_PARAMETER, name)) {
        engine__refuse(c, "parameters", line, "%s: an edge feeds %s.parameter.%s already", what,
                       node, name);
        return;
    }
    json_object_set(json_object_get(engine__base_of(p, node), "parameters"), name, value);
}

/* Every required parameter and input of each node has a value: a default,
 * an override, a pipeline parameter, a given one or an edge; else the
 * node could never be created. */
static void engine__check_required(engine__check *c, ferry_pipeline *p)
{
    const ferry_pipeline_def *def = c->flow->pipeline;
    for (size_t i = 0; i < def->n_nodes && !c->err; i++) {
        const ferry_pipeline_node *n = &def->nodes[i];
        const ferry_step *step = engine__node_step(c, n);
        const json_t *base = p->nodes[i].base;
        for (size_t k = 0; step && k < step->n_params; k++) {
            const ferry_param_def *pd = &step->params[k];
            if (pd->default_value || pd->optional || pd->type == FERRY_PARAM_FLAG ||
                json_object_get(json_object_get(base, "parameters"), pd->name) ||
                engine__edge_feeds(def, n->name, FERRY_EDGE_PARAMETER, pd->name))
                continue;
            engine__refuse(c, "parameters", n->line,
                           "node '%s': parameter '%s' of step '%s' has no value (no default, "
                           "pipeline parameter or edge): give it (-p %s.%s=VALUE)",
                           n->name, pd->name, step->name, n->name, pd->name);
            break;
        }
        for (size_t k = 0; step && !c->err && k < step->n_inputs; k++) {
            const ferry_input_def *in = &step->inputs[k];
            if (in->n_default_urls || in->optional ||
                json_object_get(json_object_get(base, "inputs"), in->name) ||
                engine__edge_feeds(def, n->name, FERRY_EDGE_INPUT, in->name))
                continue;
            engine__refuse(c, "pipeline", n->line,
                           "node '%s': input '%s' of step '%s' has no file (no default, override "
                           "or edge)",
                           n->name, in->name, step->name);
        }
    }
}

/* The pipeline's parameters (given, else their defaults) go to their
 * targets; then the given "NODE.PARAM" values. */
static void engine__apply_parameters(engine__check *c, ferry_pipeline *p)
{
    const ferry_pipeline_def *def = c->flow->pipeline;
    char node[256], what[512];
    const char *name;
    for (size_t i = 0; i < def->n_params; i++) {
        const ferry_pipeline_param *pp = &def->params[i];
        json_t *value = json_object_get(p->parameters, pp->name);
        if (value == NULL)
            value = pp->default_value;
        if (value == NULL) {
            engine__refuse(c, "parameters", pp->line,
                           "parameter '%s' has no default: give it (-p %s=VALUE)", pp->name,
                           pp->name);
            return;
        }
        for (size_t t = 0; t < pp->n_targets; t++) {
            snprintf(what, sizeof(what), "parameter '%s': target '%s'", pp->name, pp->targets[t]);
            if (!engine__split_target(pp->targets[t], node, sizeof(node), &name))
                engine__refuse(c, "parameters", pp->line, "%s: not NODE.parameter.NAME", what);
            else
                engine__set_node_param(c, p, node, name, value, pp->line, what);
        }
    }
    const char *key;
    json_t *value;
    json_object_foreach(p->parameters, key, value)
    {
        const char *dot = strchr(key, '.');
        snprintf(what, sizeof(what), "parameter '%s'", key);
        if (dot == NULL) {
            int known = 0;
            for (size_t i = 0; i < def->n_params; i++)
                known |= strcmp(def->params[i].name, key) == 0;
            if (!known)
                engine__refuse(c, "parameters", 0,
                               "%s: the pipeline has no such parameter (give NODE.PARAM for a "
                               "node's)",
                               what);
            continue;
        }
        snprintf(node, sizeof(node), "%.*s", (int)(dot - key), key);
        engine__set_node_param(c, p, node, dot + 1, value, 0, what);
    }
}

/* ---- creation ---- */

static ferry_pipeline_engine *engine__of(ferryd *d)
{
    return d->pipelines;
}

/* The base creation body of each node: the step and snapshot, the
 * pipeline's title and tags, the override, then the parameters. */
static void engine__make_nodes(engine__check *c, ferry_pipeline *p, const char *title)
{
    const ferry_pipeline_def *def = c->flow->pipeline;
    p->nodes = ferry_xcalloc(def->n_nodes ? def->n_nodes : 1, sizeof(*p->nodes));
    p->n_nodes = def->n_nodes;
    for (size_t i = 0; i < def->n_nodes; i++) {
        const ferry_pipeline_node *n = &def->nodes[i];
        ferry_pnode *pn = &p->nodes[i];
        pn->name = ferry_strdup(n->name);
        pn->status = ferry_strdup(FERRY_NODE_PENDING);
        char *node_title = ferry_asprintf("%s: %s", title ? title : p->name, n->name);
        pn->base =
            json_pack("{s:s, s:s, s:s, s:{}, s:{}, s:{}, s:s, s:O}", "project", p->project, "step",
                      n->step ? n->step : "", "snapshot", p->snapshot, "parameters", "inputs",
                      "environment_variables", "title", node_title, "tags", p->tags);
        free(node_title);
        if (n->commit) { /* that commit of the project, resolved when the node is created */
            json_object_del(pn->base, "snapshot");
            json_object_set_new(pn->base, "commit", json_string(n->commit));
        }
        const ferry_step *step = engine__node_step(c, n);
        if (step == NULL && n->commit == NULL)
            continue; /* refused by engine__check_node */
        engine__apply_override(c, n, step, pn->base);
        engine__append_defaults(def, n, step, json_object_get(pn->base, "inputs"));
    }
    engine__apply_parameters(c, p);
    engine__check_required(c, p);
}

/* Whether `v` is of JSON type `type` (JSON_TRUE standing for a boolean). */
static int engine__typed(const json_t *v, json_type type)
{
    return type == JSON_TRUE ? json_is_boolean(v) : json_typeof(v) == type;
}

/* Checks the request's own fields: 0, or FERRY_REPLIED. */
static int engine__body_ok(ferry_reply *reply, const json_t *body)
{
    static const struct {
        const char *name;
        json_type type;
        const char *what;
    } fields[] = {
        {"pipeline", JSON_STRING, "the name of a pipeline of the step file"},
        {"parameters", JSON_OBJECT, "an object of \"NODE.PARAM\" or \"PARAM\": value"},
        {"reuse", JSON_TRUE, "true or false"},
        {"reuse_from", JSON_STRING, "the id of an earlier pipeline"},
        {"title", JSON_STRING, "a text"},
        {"tags", JSON_ARRAY, "a list of texts"},
    };
    const char *project = engine__str(body, "project");
    const char *sha = engine__str(body, "snapshot");
    if (!ferry_submit_project_ok(project)) {
        ferry_reply_error(reply, 400, "project",
                          "'project' must be 1-100 characters of letters, digits, '.', '_', '-'");
        return FERRY_REPLIED;
    }
    if (sha == NULL || !ferry_is_sha256_hex(sha)) {
        ferry_reply_error(reply, 400, "snapshot",
                          "'snapshot' must be a sha256 (64 hex digits), or give 'commit'");
        return FERRY_REPLIED;
    }
    /* Each node's title is "TITLE: NODE", and an execution's is at most
     * 500 characters: a longer one would fail the nodes one by one. */
    const json_t *title = json_object_get(body, "title");
    if (json_is_string(title) &&
        (json_string_length(title) == 0 || json_string_length(title) > 400)) {
        ferry_reply_error(reply, 400, "title", "'title' must be a text of 1 to 400 characters");
        return FERRY_REPLIED;
    }
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        const json_t *v = json_object_get(body, fields[i].name);
        if ((v || i == 0) && (v == NULL || !engine__typed(v, fields[i].type))) {
            ferry_reply_error(reply, 400, fields[i].name, "'%s' must be %s", fields[i].name,
                              fields[i].what);
            return FERRY_REPLIED;
        }
    }
    return 0;
}

static ferry_pipeline *engine__new_pipeline(const ferry_user *user, const json_t *body,
                                            const ferry_commit_info *commit)
{
    ferry_pipeline *p = ferry_xcalloc(1, sizeof(*p));
    ferry_uuid(p->id);
    p->project = ferry_strdup(engine__str(body, "project"));
    p->name = ferry_strdup(engine__str(body, "pipeline"));
    p->owner = user ? ferry_strdup(user->name) : NULL;
    p->status = ferry_strdup("created");
    p->snapshot = ferry_strdup(engine__str(body, "snapshot"));
    p->git_commit = commit ? json_incref(commit->json) : NULL;
    const json_t *params = json_object_get(body, "parameters");
    p->parameters = params ? json_deep_copy(params) : json_object();
    p->reuse = json_is_true(json_object_get(body, "reuse"));
    p->reuse_from = ferry_strdup(engine__str(body, "reuse_from"));
    p->title = ferry_strdup(engine__str(body, "title"));
    const json_t *tags = json_object_get(body, "tags");
    p->tags = tags ? json_deep_copy(tags) : json_array();
    p->created_at = ferry_now();
    return p;
}

/* Reuse: every node's creation may answer with an earlier execution of
 * the same work; with reuse_from, only with one of that pipeline's nodes.
 * 0, or FERRY_REPLIED. */
static int engine__set_reuse(ferryd *d, const ferry_user *user, ferry_pipeline *p,
                             ferry_reply *reply)
{
    json_t *only = NULL;
    if (p->reuse_from) {
        ferry_pipeline *from;
        const char *owner = user && !user->admin ? user->name : NULL;
        int rc = ferry_pipelines_find(d, p->reuse_from, p->project, owner, &from);
        if (rc < 0) {
            ferry_reply_error(reply, rc == FERRY_EEXIST ? 409 : 404, "reuse_from",
                              "no pipeline '%s' of project '%s' to reuse from", p->reuse_from,
                              p->project);
            return FERRY_REPLIED;
        }
        only = json_array();
        for (size_t i = 0; i < from->n_nodes; i++)
            if (from->nodes[i].exec_id[0])
                json_array_append_new(only, json_string(from->nodes[i].exec_id));
        free(p->reuse_from);
        p->reuse_from = ferry_strdup(from->id);
        ferry_pipeline_free(from);
        p->reuse = 1;
    }
    for (size_t i = 0; p->reuse && i < p->n_nodes; i++) {
        json_object_set_new(p->nodes[i].base, "reuse", json_true());
        if (only)
            json_object_set(p->nodes[i].base, "reuse_only", only);
    }
    json_decref(only);
    return 0;
}

/* The pipeline `body` asks for, checked against its step file: NULL with
 * the refusal sent. */
static ferry_pipeline *engine__build(ferryd *d, const ferry_user *user, json_t *body,
                                     const ferry_commit_info *commit, const ferry_stepfile *sf,
                                     ferry_reply *reply)
{
    const char *name = engine__str(body, "pipeline");
    const ferry_flow *flow = ferry_stepfile_find_pipeline(sf, name);
    if (flow == NULL) {
        char *known = ferry_stepfile_pipeline_names(sf);
        ferry_reply_error(reply, 400, "pipeline", "no pipeline '%s' in %s; %s", name, sf->path,
                          known);
        free(known);
        return NULL;
    }
    if (flow->broken) {
        ferry_reply_error(reply, 400, "pipeline", "%s", flow->broken);
        return NULL;
    }
    engine__check c = {.sf = sf, .flow = flow};
    const ferry_pipeline_def *def = flow->pipeline;
    for (size_t i = 0; i < def->n_nodes; i++)
        engine__check_node(&c, &def->nodes[i]);
    for (size_t i = 0; i < def->n_edges; i++)
        engine__check_edge(&c, def, &def->edges[i]);
    engine__check_acyclic(&c, def);
    ferry_pipeline *p = engine__new_pipeline(user, body, commit);
    p->definition = engine__definition_json(def);
    engine__make_nodes(&c, p, p->title);
    if (c.err) {
        ferry_reply_error(reply, 400, c.field, "%s", c.err);
        free(c.err);
        free(c.field);
        ferry_pipeline_free(p);
        return NULL;
    }
    free(c.field);
    if (def->reuse_executions && !json_is_false(json_object_get(body, "reuse")))
        p->reuse = 1;
    if (engine__set_reuse(d, user, p, reply) < 0) {
        ferry_pipeline_free(p);
        return NULL;
    }
    return p;
}

/* ---- running ---- */

static void engine__advance(ferryd *d, ferry_pipeline *p);

/* The pipeline ends now: stored, out of the maps, freed after this turn. */
static void engine__finish(ferryd *d, ferry_pipeline *p, const char *status, const char *reason)
{
    ferry_pipeline_engine *g = engine__of(d);
    free(p->status);
    p->status = ferry_strdup(status);
    if (reason && !p->reason)
        p->reason = ferry_strdup(reason);
    free(p->ending);
    p->ending = NULL;
    p->ended_at = ferry_now();
    ferry_pipelines_save(d, p);
    /* p->status, not status: that may be p->ending, freed above. */
    ferry_info("pipeline #%lld (%s) of %s: %s%s%s", (long long)p->counter, p->name, p->project,
               p->status, p->reason ? ": " : "", p->reason ? p->reason : "");
    for (size_t i = 0; i < p->n_nodes; i++)
        if (p->nodes[i].exec_id[0] && ferry_map_get(&g->execs, p->nodes[i].exec_id) == p)
            ferry_map_del(&g->execs, p->nodes[i].exec_id);
    ferry_map_del(&g->live, p->id);
    if (g->n_ended == g->cap_ended) {
        g->cap_ended = g->cap_ended ? g->cap_ended * 2 : 8;
        g->ended = ferry_xrealloc(g->ended, g->cap_ended * sizeof(*g->ended));
    }
    g->ended[g->n_ended++] = p;
}

static void engine__set_node(ferryd *d, ferry_pipeline *p, ferry_pnode *n, const char *status,
                             const char *reason)
{
    free(n->status);
    n->status = ferry_strdup(status);
    if (reason) {
        free(n->reason);
        n->reason = ferry_strdup(reason);
    }
    ferry_pipelines_save_node(d, p, n);
}

static ferry_exec *engine__active_exec(ferryd *d, const ferry_pnode *n)
{
    return n->exec_id[0] ? ferry_map_get(&d->active, n->exec_id) : NULL;
}

/* The pipeline is to end `status`: what was not created never will be,
 * what runs is asked to stop; it ends once nothing runs (engine__advance). */
static void engine__end_with(ferryd *d, ferry_pipeline *p, const char *status, const char *reason)
{
    if (p->ending || ferry_pipeline_status_final(p->status))
        return;
    p->ending = ferry_strdup(status);
    free(p->reason);
    p->reason = ferry_strdup(reason);
    ferry_pipelines_save(d, p);
    for (size_t i = 0; i < p->n_nodes; i++) {
        ferry_pnode *n = &p->nodes[i];
        if (engine__is(n->status, FERRY_NODE_PENDING) || engine__is(n->status, FERRY_NODE_APPROVAL))
            engine__set_node(d, p, n, FERRY_NODE_STOPPED, "the pipeline ended first");
        ferry_exec *e = engine__active_exec(d, n);
        if (e && engine__is(n->status, FERRY_NODE_RUNNING))
            ferry_lifecycle_request_stop(d, e);
    }
}

/* Whether every `if:` of an action holds for the node's execution. */
static int engine__action_holds(const json_t *action, const ferry_exec *e)
{
    size_t i;
    const json_t *cond;
    json_array_foreach(json_object_get(action, "if"), i, cond)
    {
        json_t *empty = json_object();
        int holds =
            ferry_condition_eval(json_string_value(cond), e && e->metadata ? e->metadata : empty,
                                 e && e->parameters ? e->parameters : empty, NULL, 0);
        json_decref(empty);
        if (holds != 1)
            return 0;
    }
    return 1;
}

static int engine__has(const json_t *strings, const char *value)
{
    size_t i;
    const json_t *s;
    json_array_foreach(strings, i, s) if (engine__is(json_string_value(s), value)) return 1;
    return 0;
}

/* Runs the node's actions for `when`: 1 when one asks for an approval. */
static int engine__run_actions(ferryd *d, ferry_pipeline *p, const ferry_pnode *n, const char *when,
                               const ferry_exec *e)
{
    const json_t *def = ferry_pipeline_def_node(p, n->name);
    int approval = 0;
    size_t i;
    const json_t *a;
    json_array_foreach(json_object_get(def, "actions"), i, a)
    {
        if (!engine__has(json_object_get(a, "when"), when) || !engine__action_holds(a, e))
            continue;
        const json_t *then = json_object_get(a, "then");
        char why[512];
        snprintf(why, sizeof(why), "node '%s': action at line %d (%s)", n->name,
                 (int)json_integer_value(json_object_get(a, "line")), when);
        if (engine__has(then, "require-approval"))
            approval = 1;
        if (engine__has(then, "error-pipeline"))
            engine__end_with(d, p, "error", why);
        else if (engine__has(then, "stop-pipeline"))
            engine__end_with(d, p, "stopped", why);
    }
    return approval;
}

/* Whether a node's requirement to wait is met: a source's state. */
enum { ENGINE__WAIT, ENGINE__READY, ENGINE__BLOCKED };

static int engine__source_state(const ferry_pipeline *p, const ferry_pnode *src)
{
    if (engine__is(src->status, FERRY_NODE_COMPLETE))
        return ENGINE__READY;
    if (engine__is(src->status, FERRY_NODE_ERROR) &&
        engine__is(engine__str(ferry_pipeline_def_node(p, src->name), "on_error"), "continue"))
        return ENGINE__READY;
    if (engine__is(src->status, FERRY_NODE_ERROR) || engine__is(src->status, FERRY_NODE_STOPPED) ||
        engine__is(src->status, FERRY_NODE_SKIPPED))
        return ENGINE__BLOCKED;
    return ENGINE__WAIT;
}

/* The node's sources: READY when all are done, BLOCKED (with the one) when
 * one failed, else WAIT. */
static int engine__sources(const ferry_pipeline *p, const ferry_pnode *n, const ferry_pnode **bad)
{
    int state = ENGINE__READY;
    size_t i;
    const json_t *edge;
    json_array_foreach(json_object_get(p->definition, "edges"), i, edge)
    {
        const json_t *t = json_object_get(edge, "target");
        if (!engine__is(engine__str(t, "node"), n->name))
            continue;
        const ferry_pnode *src =
            ferry_pipeline_find_node(p, engine__str(json_object_get(edge, "source"), "node"));
        int s = src ? engine__source_state(p, src) : ENGINE__READY;
        if (s == ENGINE__BLOCKED) {
            *bad = src;
            return s;
        }
        if (s == ENGINE__WAIT)
            state = s;
    }
    return state;
}

/* ---- a node's creation ---- */

/* An answer ferry_submit gives the engine: which node it is for. */
typedef struct engine__reply {
    ferry_reply base;
    ferryd *d;
    char pipeline_id[37];
    char *node;
    int answered;
} engine__reply;

static void engine__node_created(ferryd *d, ferry_pipeline *p, ferry_pnode *n, const json_t *view);
static void engine__node_ended(ferryd *d, ferry_pipeline *p, ferry_pnode *n, const ferry_exec *e);

/* The node this answer is for, while its creation is still wanted. */
static ferry_pnode *engine__reply_node(engine__reply *r, ferry_pipeline **pp)
{
    ferry_pipeline_engine *g = engine__of(r->d); /* NULL once closed (shutdown) */
    ferry_pipeline *p = g ? ferry_map_get(&g->live, r->pipeline_id) : NULL;
    ferry_pnode *n = p ? ferry_pipeline_find_node(p, r->node) : NULL;
    if (n == NULL || !engine__is(n->status, FERRY_NODE_RUNNING) || n->exec_id[0])
        return NULL;
    *pp = p;
    return n;
}

static int engine__reply_json(ferry_reply *base, int status, json_t *body)
{
    engine__reply *r = (engine__reply *)base;
    ferry_pipeline *p;
    ferry_pnode *n = engine__reply_node(r, &p);
    r->answered = 1;
    if (n && (status == 201 || status == 200)) {
        n->reused = json_is_true(json_object_get(body, "reused"));
        engine__node_created(r->d, p, n, body);
    }
    json_decref(body);
    return 0;
}

static int engine__reply_error(ferry_reply *base, int status, const char *field,
                               const char *message)
{
    engine__reply *r = (engine__reply *)base;
    ferry_pipeline *p;
    ferry_pnode *n = engine__reply_node(r, &p);
    r->answered = 1;
    (void)status;
    if (n == NULL)
        return 0;
    char *why = ferry_asprintf("node '%s' could not be created: %s%s%s", n->name,
                               field ? field : "", field ? ": " : "", message);
    engine__set_node(r->d, p, n, FERRY_NODE_ERROR, why);
    engine__end_with(r->d, p, "error", why);
    free(why);
    engine__advance(r->d, p);
    return 0;
}

/* No execution is wanted once the pipeline ends or the node moved on. */
static int engine__reply_gone(ferry_reply *base)
{
    engine__reply *r = (engine__reply *)base;
    ferry_pipeline *p;
    return engine__reply_node(r, &p) == NULL || p->ending != NULL;
}

static void engine__reply_release(ferry_reply *base)
{
    engine__reply *r = (engine__reply *)base;
    ferry_pipeline *p;
    ferry_pnode *n = r->answered ? NULL : engine__reply_node(r, &p);
    if (n) { /* dropped unanswered: the pipeline was ending */
        engine__set_node(r->d, p, n, FERRY_NODE_STOPPED, "the pipeline ended first");
        engine__advance(r->d, p);
    }
    free(r->node);
    free(r);
}

static const ferry_reply_ops engine__reply_ops = {
    .send_json = engine__reply_json,
    .send_error = engine__reply_error,
    .release = engine__reply_release,
    .gone = engine__reply_gone,
};

/* The execution a node ran, as stored (the caller releases it). */
static ferry_exec *engine__node_exec(ferryd *d, const ferry_pnode *n, int *owned)
{
    ferry_exec *e = NULL;
    if (n->exec_id[0] == '\0' || ferry_exec_find(d, n->exec_id, NULL, NULL, &e, owned) < 0)
        return NULL;
    return e;
}

/* Adds `urls` to input `name` of the creation body: the first edge into
 * it replaces its defaults (unless the node appends), the next ones add. */
static void engine__feed_input(json_t *inputs, json_t *fed, const char *name, json_t *urls)
{
    json_t *list = json_object_get(inputs, name);
    if (!json_object_get(fed, name)) {
        json_object_set_new(fed, name, json_true());
        if (list && !json_is_array(list)) { /* a single default URL */
            json_t *one = json_array();
            json_array_append(one, list);
            json_object_set_new(inputs, name, one);
        } else if (list == NULL) {
            json_object_set_new(inputs, name, json_array());
        }
        list = json_object_get(inputs, name);
    }
    json_array_extend(list, urls);
    json_decref(urls);
}

/* The datum:// URLs of the source's outputs that match `glob`. */
static json_t *engine__output_urls(ferryd *d, const ferry_exec *src, const char *glob)
{
    json_t *outputs = ferry_exec_outputs_json(d, src->id);
    ferry_datums_annotate_outputs(d, src->id, outputs);
    json_t *urls = json_array();
    size_t i;
    const json_t *o;
    json_array_foreach(outputs, i, o)
    {
        const char *name = engine__str(o, "name"), *datum = engine__str(o, "datum");
        if (name && datum && fnmatch(glob, name, 0) == 0)
            json_array_append_new(urls, json_string(datum));
    }
    json_decref(outputs);
    return urls;
}

/* The URLs of the source's own inputs whose names match `glob`. */
static json_t *engine__input_urls(const ferry_exec *src, const char *glob)
{
    json_t *urls = json_array();
    const char *name;
    json_t *list;
    json_object_foreach(src->inputs, name, list)
    {
        if (name[0] != '_' && fnmatch(glob, name, 0) == 0)
            json_array_extend(urls, list);
    }
    return urls;
}

/* Adds what one edge carries from `src` to the creation body; NULL, or
 * why it cannot (the caller frees). */
static char *engine__carry(ferryd *d, const json_t *edge, const ferry_exec *src, json_t *body,
                           json_t *fed)
{
    const json_t *s = json_object_get(edge, "source"), *t = json_object_get(edge, "target");
    const char *kind = engine__str(s, "kind"), *name = engine__str(s, "name");
    const char *target = engine__str(t, "name");
    const json_t *value = NULL;
    const char *from = NULL;
    if (engine__is(kind, "output") || engine__is(kind, "input")) {
        json_t *urls = engine__is(kind, "output") ? engine__output_urls(d, src, name)
                                                  : engine__input_urls(src, name);
        if (json_array_size(urls) == 0) { /* an edge that carries nothing is a mistake */
            json_decref(urls);
            return ferry_asprintf("execution #%lld of node '%s' has no %s matching '%s' for the "
                                  "edge at line %d",
                                  (long long)src->counter, engine__str(s, "node"), kind, name,
                                  (int)json_integer_value(json_object_get(edge, "line")));
        }
        engine__feed_input(json_object_get(body, "inputs"), fed, target, urls);
        return NULL;
    }
    if (engine__is(kind, "parameter"))
        value = json_object_get(src->parameters, name), from = "parameter";
    else if (engine__is(kind, "metadata"))
        value = src->metadata ? json_object_get(src->metadata, name) : NULL, from = "metadata";
    else if (engine__is(kind, "environment-variable"))
        value = json_object_get(src->env, name), from = "environment variable";
    else
        return NULL; /* a dependency: order only */
    if (value == NULL)
        return ferry_asprintf("execution #%lld of node '%s' has no %s '%s' for the edge at line "
                              "%d",
                              (long long)src->counter, engine__str(s, "node"), from, name,
                              (int)json_integer_value(json_object_get(edge, "line")));
    json_object_set(json_object_get(body, engine__is(kind, "environment-variable")
                                              ? "environment_variables"
                                              : "parameters"),
                    target, (json_t *)value);
    return NULL;
}

/* The node's creation body: its base and what its edges carry; NULL with
 * *why when a source lacks what an edge needs. */
static json_t *engine__node_body(ferryd *d, ferry_pipeline *p, const ferry_pnode *n, char **why)
{
    json_t *body = json_deep_copy(n->base);
    json_t *fed = json_object();
    size_t i;
    const json_t *edge;
    json_array_foreach(json_object_get(p->definition, "edges"), i, edge)
    {
        if (*why || !engine__is(engine__str(json_object_get(edge, "target"), "node"), n->name))
            continue;
        const ferry_pnode *srcn =
            ferry_pipeline_find_node(p, engine__str(json_object_get(edge, "source"), "node"));
        int owned = 0;
        ferry_exec *src = srcn ? engine__node_exec(d, srcn, &owned) : NULL;
        if (src)
            *why = engine__carry(d, edge, src, body, fed);
        ferry_exec_release(src, owned);
    }
    json_decref(fed);
    if (*why) {
        json_decref(body);
        return NULL;
    }
    return body;
}

static const ferry_user *engine__owner(ferryd *d, const ferry_pipeline *p)
{
    return p->owner ? ferry_config_user(&d->cfg, p->owner) : NULL;
}

static void engine__create_node(ferryd *d, ferry_pipeline *p, ferry_pnode *n)
{
    char *why = NULL;
    json_t *body = engine__node_body(d, p, n, &why);
    if (body == NULL) {
        engine__set_node(d, p, n, FERRY_NODE_ERROR, why);
        engine__end_with(d, p, "error", why);
        free(why);
        return;
    }
    n->attempts++;
    n->exec_id[0] = '\0';
    engine__set_node(d, p, n, FERRY_NODE_RUNNING, NULL);
    engine__reply *r = ferry_xcalloc(1, sizeof(*r));
    r->base.ops = &engine__reply_ops;
    r->d = d;
    memcpy(r->pipeline_id, p->id, sizeof(r->pipeline_id));
    r->node = ferry_strdup(n->name);
    if (json_object_get(body, "commit")) { /* a node of its own commit */
        ferry_commit_resolve(d, engine__owner(d, p), body, &r->base, ferry_submit);
        return;
    }
    ferry_commit_info commit = {.json = p->git_commit, .lfs_files = 0};
    ferry_submit(d, engine__owner(d, p), body, p->git_commit ? &commit : NULL, &r->base);
}

/* ---- a node's execution: created, then ended ---- */

static void engine__node_created(ferryd *d, ferry_pipeline *p, ferry_pnode *n, const json_t *view)
{
    const char *id = engine__str(view, "id");
    if (id == NULL)
        return;
    snprintf(n->exec_id, sizeof(n->exec_id), "%s", id);
    ferry_map_put(&engine__of(d)->execs, n->exec_id, p);
    ferry_pipelines_save_node(d, p, n);
    if (engine__is(p->status, "created")) {
        free(p->status);
        p->status = ferry_strdup("started");
        p->started_at = ferry_now();
        ferry_pipelines_save(d, p);
    }
    /* It may have ended already (refused by the scheduler at once). */
    int owned;
    ferry_exec *e = engine__node_exec(d, n, &owned);
    if (e && ferry_status_is_terminal(e->status))
        engine__node_ended(d, p, n, e);
    ferry_exec_release(e, owned);
}

/* Whether the node may run once more after failing. */
static int engine__retries_left(const ferry_pipeline *p, const ferry_pnode *n)
{
    const char *policy = engine__str(ferry_pipeline_def_node(p, n->name), "on_error");
    return engine__is(policy, "retry") && n->attempts <= ENGINE__RETRIES;
}

static void engine__node_ended(ferryd *d, ferry_pipeline *p, ferry_pnode *n, const ferry_exec *e)
{
    if (!engine__is(n->status, FERRY_NODE_RUNNING) || strcmp(n->exec_id, e->id) != 0)
        return; /* taken already */
    ferry_map_del(&engine__of(d)->execs, e->id);
    char why[700];
    snprintf(why, sizeof(why), "execution #%lld %s%s%s", (long long)e->counter,
             ferry_status_name(e->status), e->status_reason ? ": " : "",
             e->status_reason ? e->status_reason : "");
    if (e->status == FERRY_STATUS_COMPLETE) {
        if (engine__run_actions(d, p, n, "node-complete", e) && !p->ending) {
            free(n->approval);
            n->approval = ferry_strdup("waiting");
            engine__set_node(d, p, n, FERRY_NODE_APPROVAL, NULL);
        } else {
            engine__set_node(d, p, n, FERRY_NODE_COMPLETE, NULL);
        }
    } else if (e->status == FERRY_STATUS_ERROR && !p->ending && engine__retries_left(p, n)) {
        ferry_info("pipeline #%lld: node '%s' failed (%s): retrying", (long long)p->counter,
                   n->name, why);
        engine__set_node(d, p, n, FERRY_NODE_PENDING, why);
    } else {
        const char *status =
            e->status == FERRY_STATUS_ERROR ? FERRY_NODE_ERROR : FERRY_NODE_STOPPED;
        engine__set_node(d, p, n, status, why);
        engine__run_actions(d, p, n, "node-error", e);
        const char *policy = engine__str(ferry_pipeline_def_node(p, n->name), "on_error");
        if (!engine__is(policy, "stop-next") && !engine__is(policy, "continue")) {
            char *reason = ferry_asprintf("node '%s' failed: %s", n->name, why);
            engine__end_with(d, p, "error", reason);
            free(reason);
        }
    }
    engine__advance(d, p);
}

/* Whether any node still runs or waits to run; *failed: the first that
 * failed (under stop-next: skipped ones count), or NULL. */
static int engine__busy(const ferry_pipeline *p, const ferry_pnode **failed)
{
    int busy = 0;
    for (size_t i = 0; i < p->n_nodes; i++) {
        const ferry_pnode *n = &p->nodes[i];
        if (engine__is(n->status, FERRY_NODE_RUNNING) ||
            engine__is(n->status, FERRY_NODE_PENDING) || engine__is(n->status, FERRY_NODE_APPROVAL))
            busy = 1;
        else if (*failed == NULL && !engine__is(n->status, FERRY_NODE_COMPLETE) &&
                 !(engine__is(n->status, FERRY_NODE_ERROR) &&
                   engine__is(engine__str(ferry_pipeline_def_node(p, n->name), "on_error"),
                              "continue")))
            *failed = n;
    }
    return busy;
}

/* Moves pending nodes on: skipped behind a failed source, waiting for
 * approval, or created; true when one changed. */
static int engine__pass(ferryd *d, ferry_pipeline *p)
{
    int changed = 0;
    for (size_t i = 0; i < p->n_nodes && !p->ending; i++) {
        ferry_pnode *n = &p->nodes[i];
        if (!engine__is(n->status, FERRY_NODE_PENDING))
            continue;
        const ferry_pnode *bad = NULL;
        int state = engine__sources(p, n, &bad);
        if (state == ENGINE__WAIT)
            continue;
        changed = 1;
        if (state == ENGINE__BLOCKED) {
            char *why = ferry_asprintf("its source node '%s' is %s", bad->name, bad->status);
            engine__set_node(d, p, n, FERRY_NODE_SKIPPED, why);
            free(why);
        } else if (!engine__is(n->approval, "approved") &&
                   engine__run_actions(d, p, n, "node-starting", NULL)) {
            free(n->approval);
            n->approval = ferry_strdup("waiting");
            engine__set_node(d, p, n, FERRY_NODE_APPROVAL, NULL);
        } else if (!p->ending) {
            engine__create_node(d, p, n);
        }
    }
    return changed;
}

static void engine__advance(ferryd *d, ferry_pipeline *p)
{
    ferry_pipeline_engine *g = engine__of(d);
    if (ferry_pipeline_status_final(p->status))
        return;
    if (ferry_map_get(&g->advancing, p->id)) {
        ferry_map_put(&g->advancing, p->id, (void *)2); /* the running pass goes round again */
        return;
    }
    ferry_map_put(&g->advancing, p->id, (void *)1);
    do
        ferry_map_put(&g->advancing, p->id, (void *)1);
    while (engine__pass(d, p) || ferry_map_get(&g->advancing, p->id) == (void *)2);
    ferry_map_del(&g->advancing, p->id);
    const ferry_pnode *failed = NULL;
    if (engine__busy(p, &failed))
        return;
    if (p->ending) {
        engine__finish(d, p, p->ending, NULL);
    } else if (failed) {
        char *why =
            ferry_asprintf("node '%s' is %s%s%s", failed->name, failed->status,
                           failed->reason ? ": " : "", failed->reason ? failed->reason : "");
        engine__finish(d, p, "error", why);
        free(why);
    } else
        engine__finish(d, p, "complete", NULL);
}

/* ---- the lifecycle's news ---- */

static void engine__on_transition(ferryd *d, ferry_exec *e, ferry_status from)
{
    (void)from;
    ferry_pipeline_engine *g = engine__of(d);
    ferry_pipeline *p = g ? ferry_map_get(&g->execs, e->id) : NULL;
    if (p == NULL)
        return;
    ferry_pnode *n = NULL;
    for (size_t i = 0; i < p->n_nodes && n == NULL; i++)
        if (strcmp(p->nodes[i].exec_id, e->id) == 0)
            n = &p->nodes[i];
    if (n == NULL)
        return;
    if (e->status == FERRY_STATUS_STARTED)
        engine__run_actions(d, p, n, "node-starting", e);
    if (ferry_status_is_terminal(e->status))
        engine__node_ended(d, p, n, e);
    else if (p->ending)
        engine__advance(d, p);
}

static const ferry_lifecycle_observer engine__observer = {.on_transition = engine__on_transition};

/* A pipeline taken back at start: what its executions did meanwhile. */
static void engine__restore(ferryd *d, ferry_pipeline *p)
{
    ferry_pipeline_engine *g = engine__of(d);
    ferry_map_put(&g->live, p->id, p);
    for (size_t i = 0; i < p->n_nodes; i++) {
        ferry_pnode *n = &p->nodes[i];
        if (!engine__is(n->status, FERRY_NODE_RUNNING))
            continue;
        if (n->exec_id[0] == '\0') { /* ferryd stopped before the creation answered */
            engine__set_node(d, p, n, FERRY_NODE_PENDING, NULL);
            n->attempts--;
            continue;
        }
        ferry_map_put(&g->execs, n->exec_id, p);
    }
    for (size_t i = 0; i < p->n_nodes && !ferry_pipeline_status_final(p->status); i++) {
        ferry_pnode *n = &p->nodes[i];
        int owned;
        ferry_exec *e =
            engine__is(n->status, FERRY_NODE_RUNNING) ? engine__node_exec(d, n, &owned) : NULL;
        if (e && ferry_status_is_terminal(e->status))
            engine__node_ended(d, p, n, e);
        ferry_exec_release(e, owned);
    }
    if (!ferry_pipeline_status_final(p->status))
        engine__advance(d, p);
}

static void engine__reap(uv_prepare_t *h)
{
    ferry_pipeline_engine *g = h->data;
    for (size_t i = 0; i < g->n_ended; i++)
        ferry_pipeline_free(g->ended[i]);
    g->n_ended = 0;
}

int ferry_pipeline_engine_init(ferryd *d)
{
    ferry_pipeline_engine *g = ferry_xcalloc(1, sizeof(*g));
    ferry_map_init(&g->live);
    ferry_map_init(&g->execs);
    ferry_map_init(&g->advancing);
    uv_prepare_init(d->loop, &g->reaper);
    g->reaper.data = g;
    uv_prepare_start(&g->reaper, engine__reap);
    d->pipelines = g;
    int rc = ferry_lifecycle_observe(d, &engine__observer);
    json_t *ids = ferry_pipelines_ids(d, NULL, NULL, 1, 0);
    size_t i;
    const json_t *id;
    json_array_foreach(ids, i, id)
    {
        ferry_pipeline *p;
        if (ferry_pipelines_find(d, json_string_value(id), NULL, NULL, &p) == 0)
            engine__restore(d, p);
    }
    if (json_array_size(ids))
        ferry_info("%zu unfinished pipeline%s taken back", json_array_size(ids),
                   json_array_size(ids) == 1 ? "" : "s");
    json_decref(ids);
    return rc;
}

static void engine__closed(uv_handle_t *h)
{
    free(h->data);
}

void ferry_pipeline_engine_close(ferryd *d)
{
    ferry_pipeline_engine *g = engine__of(d);
    if (g == NULL)
        return;
    engine__reap(&g->reaper);
    size_t it = 0;
    const char *k;
    void *v;
    while (ferry_map_next(&g->live, &it, &k, &v))
        ferry_pipeline_free(v);
    ferry_map_free(&g->live);
    ferry_map_free(&g->execs);
    ferry_map_free(&g->advancing);
    free(g->ended);
    d->pipelines = NULL;
    uv_prepare_stop(&g->reaper);
    uv_close((uv_handle_t *)&g->reaper, engine__closed);
}

ferry_pipeline *ferry_pipeline_live(ferryd *d, const char *id)
{
    return engine__of(d) ? ferry_map_get(&engine__of(d)->live, id) : NULL;
}

int ferry_pipeline_stop(ferryd *d, ferry_pipeline *p, const char *by)
{
    if (ferry_pipeline_status_final(p->status))
        return FERRY_ESTATE;
    char *why = ferry_asprintf("stopped by %s", by ? by : "user");
    engine__end_with(d, p, "stopped", why);
    free(why);
    engine__advance(d, p);
    return 0;
}

int ferry_pipeline_approve(ferryd *d, ferry_pipeline *p, const char *node, int approve,
                           const char *by)
{
    ferry_pnode *n = ferry_pipeline_find_node(p, node);
    if (n == NULL)
        return FERRY_ENOENT;
    if (!engine__is(n->status, FERRY_NODE_APPROVAL) || ferry_pipeline_status_final(p->status))
        return FERRY_ESTATE;
    free(n->approval);
    n->approval = ferry_strdup(approve ? "approved" : "rejected");
    free(n->approval_by);
    n->approval_by = ferry_strdup(by);
    n->approval_at = ferry_now();
    /* Approved before its execution: it is created now; after: it is done. */
    int after = n->exec_id[0] != '\0';
    if (!approve) {
        engine__set_node(d, p, n, after ? FERRY_NODE_COMPLETE : FERRY_NODE_STOPPED, NULL);
        char *why = ferry_asprintf("node '%s' was rejected by %s", node, by ? by : "user");
        engine__end_with(d, p, "stopped", why);
        free(why);
    } else {
        engine__set_node(d, p, n, after ? FERRY_NODE_COMPLETE : FERRY_NODE_PENDING, NULL);
    }
    engine__advance(d, p);
    return 0;
}

/* ---- POST /v1/pipelines ---- */

/* A creation waiting for its snapshot's step file to be read. */
typedef struct engine__pending {
    ferry_reply *reply;
    json_t *body;
    ferry_commit_info commit; /* .json NULL: ad hoc */
    const ferry_user *user;
} engine__pending;

static void engine__create_now(ferryd *d, const ferry_user *user, json_t *body,
                               const ferry_commit_info *commit, ferry_reply *reply);

static void engine__stepfile_loaded(ferryd *d, void *arg)
{
    engine__pending *w = arg;
    if (!ferry_reply_gone(w->reply)) {
        engine__create_now(d, w->user, w->body, w->commit.json ? &w->commit : NULL, w->reply);
        w->reply = NULL;
        w->body = NULL;
    }
    ferry_reply_release(w->reply);
    json_decref(w->body);
    json_decref(w->commit.json);
    free(w);
}

/* Takes body and reply. */
static void engine__create_now(ferryd *d, const ferry_user *user, json_t *body,
                               const ferry_commit_info *commit, ferry_reply *reply)
{
    ferry_stepfile *sf;
    char err[1024];
    const char *sha = engine__str(body, "snapshot");
    engine__pending *w = NULL;
    int rc = ferry_snapshot_stepfile(d, sha, &sf, NULL, NULL, err, sizeof(err));
    if (rc == FERRY_EAGAIN) {
        w = ferry_xcalloc(1, sizeof(*w));
        *w = (engine__pending){.reply = reply, .body = body, .user = user};
        if (commit)
            w->commit = (ferry_commit_info){json_incref(commit->json), commit->lfs_files};
        rc = ferry_snapshot_stepfile(d, sha, &sf, engine__stepfile_loaded, w, err, sizeof(err));
        if (rc == FERRY_EAGAIN)
            return;                  /* w answers */
        json_decref(w->commit.json); /* read meanwhile, or failed: go on here */
        free(w);
    }
    ferry_pipeline *p = NULL;
    if (rc < 0)
        ferry_reply_error(reply, rc == FERRY_ENOENT ? 404 : 400, "snapshot", "%s", err);
    else
        p = engine__build(d, user, body, commit, sf, reply);
    if (p && ferry_pipelines_insert(d, p) < 0) {
        ferry_reply_error(reply, 500, NULL, "the pipeline could not be stored");
        ferry_pipeline_free(p);
        p = NULL;
    }
    if (p) {
        ferry_map_put(&engine__of(d)->live, p->id, p);
        char id[37];
        memcpy(id, p->id, sizeof(id));
        ferry_info("pipeline #%lld (%s) of %s created: %zu nodes", (long long)p->counter, p->name,
                   p->project, p->n_nodes);
        engine__advance(d, p);
        ferry_db_commit(d);
        ferry_pipeline *live = ferry_pipeline_live(d, id);
        ferry_pipeline *found = NULL;
        if (live == NULL && ferry_pipelines_find(d, id, NULL, NULL, &found) < 0)
            ferry_reply_error(reply, 500, NULL, "the pipeline vanished");
        else
            ferry_reply_json(reply, 201, ferry_view_pipeline(d, live ? live : found));
        ferry_pipeline_free(found);
    }
    ferry_reply_release(reply);
    json_decref(body);
}

void ferry_pipeline_create(ferryd *d, const ferry_user *user, json_t *body,
                           const ferry_commit_info *commit, ferry_reply *reply)
{
    if (engine__body_ok(reply, body) < 0) {
        ferry_reply_release(reply);
        json_decref(body);
        return;
    }
    engine__create_now(d, user, body, commit, reply);
}
