/* Pipeline definitions (ferry_pipeline_def): what the valohai-yaml examples'
 * pipelines hold once parsed, value by value, and the checks that come with
 * them (an action's `when` and `if`, a parameter's targets). */
#include <stdlib.h>
#include <string.h>

#include <ferry/error.h>

#include "unit/stepfile_fixture.h"

static char errbuf[8192];

static ferry_stepfile *parse_vector(const char *name)
{
    return stepfile_fixture_vector(name, errbuf, sizeof(errbuf));
}

/* The pipeline's definition; NULL (a failed check) when there is none. */
static const ferry_pipeline_def *pipeline(const ferry_stepfile *sf, const char *name)
{
    const ferry_flow *fl = stepfile_fixture_flow(sf, "pipeline", name);
    return fl ? fl->pipeline : NULL;
}

static void check_end(const ferry_edge_end *e, const char *node, ferry_edge_kind kind,
                      const char *name)
{
    CHECK_STR(e->node, node);
    CHECK_INT(e->kind, kind);
    CHECK_STR(e->name, name);
}

static void test_pipeline_example(void)
{
    ferry_stepfile *sf = parse_vector("pipeline-example.yaml");
    if (!sf)
        return;
    const ferry_pipeline_def *p = pipeline(sf, "My little pipeline");
    if (p) {
        CHECK_INT(ferry_stepfile_find_pipeline(sf, "My little pipeline")->line, 27);
        CHECK_INT(p->n_nodes, 3);
        CHECK_INT(p->n_edges, 6);
        CHECK_INT(p->n_params, 0);
        CHECK_INT(p->reuse_executions, 1);
        CHECK_STR(p->nodes[0].name, "batch1");
        CHECK_STR(p->nodes[0].type, "execution");
        CHECK_STR(p->nodes[0].step, "Batch feature extraction");
        CHECK(p->nodes[0].task == NULL);
        CHECK(p->nodes[0].commit == NULL);
        CHECK(p->nodes[0].override == NULL);
        CHECK(p->nodes[0].deployment == NULL);
        CHECK_INT(p->nodes[0].on_error, FERRY_ON_ERROR_STOP_ALL);
        CHECK_INT(p->nodes[0].merge_append, 0);
        CHECK_INT(p->nodes[0].line, 30);
        CHECK_STR(p->nodes[2].name, "train");
        CHECK_STR(p->nodes[2].step, "Train model");
        CHECK_INT(p->nodes[2].line, 36);
        check_end(&p->edges[0].source, "batch1", FERRY_EDGE_INPUT, "training-labels*");
        check_end(&p->edges[0].target, "batch2", FERRY_EDGE_INPUT, "training-labels");
        CHECK_INT(p->edges[0].line, 41);
        CHECK(p->edges[0].configuration == NULL);
        check_end(&p->edges[1].source, "batch1", FERRY_EDGE_OUTPUT, "processed-images*");
        check_end(&p->edges[2].source, "batch1", FERRY_EDGE_PARAMETER, "aspect-ratio");
        check_end(&p->edges[4].source, "batch2", FERRY_EDGE_METADATA, "optimal_learning_rate");
        check_end(&p->edges[4].target, "train", FERRY_EDGE_PARAMETER, "learning_rate");
        CHECK_INT(p->edges[5].line, 46);
    }

    p = pipeline(sf, "My medium pipeline");
    if (p) {
        CHECK_INT(p->n_nodes, 4);
        CHECK_INT(p->n_edges, 7);
        CHECK_INT(p->reuse_executions, 0);
        /* the map-form edges */
        check_end(&p->edges[0].source, "batch1", FERRY_EDGE_PARAMETER, "aspect-ratio");
        check_end(&p->edges[0].target, "batch2", FERRY_EDGE_PARAMETER, "aspect-ratio");
        CHECK_INT(p->edges[0].line, 95);
        CHECK(p->edges[0].configuration == NULL);
        check_end(&p->edges[4].source, "batch1", FERRY_EDGE_INPUT, "training-labels*");
        CHECK_JSON(p->edges[4].configuration, "{\"hello\": \"world\"}");
        CHECK_INT(p->edges[4].line, 103);
        /* a name with a dot, in a short edge after map-form ones */
        check_end(&p->edges[6].source, "train", FERRY_EDGE_OUTPUT, "model.pb");
        check_end(&p->edges[6].target, "test", FERRY_EDGE_INPUT, "model");
        CHECK_STR(p->nodes[1].name, "batch2");
        CHECK_JSON(p->nodes[1].override,
                   "{\"command\": \"python batch_feature_extraction.py --minify\"}");
        CHECK_JSON(p->nodes[2].override, "{\"inputs\": [{\"name\": \"training-images\"}]}");
        CHECK(p->nodes[3].override == NULL);
    }

    p = pipeline(sf, "Last action pipeline");
    if (p) {
        CHECK_INT(p->n_nodes, 3);
        const ferry_pipeline_node *n = &p->nodes[0];
        CHECK_INT(n->n_actions, 1);
        if (n->n_actions == 1) {
            const ferry_node_action *a = &n->actions[0];
            CHECK_INT(a->n_when, 1);
            CHECK_STR(a->when[0], "node-complete");
            CHECK_INT(a->n_ifs, 1);
            CHECK_STR(a->ifs[0], "metadata.accuracy < .8");
            CHECK_INT(a->n_then, 1);
            CHECK_STR(a->then[0], "stop-pipeline");
            CHECK_INT(a->line, 117);
        }
        n = &p->nodes[1];
        CHECK_INT(n->n_actions, 2);
        if (n->n_actions == 2) {
            CHECK_INT(n->actions[0].n_when, 1);
            CHECK_INT(n->actions[0].n_ifs, 0);
            CHECK(n->actions[0].ifs == NULL);
            CHECK_INT(n->actions[0].n_then, 3);
            if (n->actions[0].n_then == 3)
                CHECK_STR(n->actions[0].then[2], "noop");
            const ferry_node_action *a = &n->actions[1];
            CHECK_INT(a->n_when, 2);
            if (a->n_when == 2) {
                CHECK_STR(a->when[0], "node-starting");
                CHECK_STR(a->when[1], "node-complete");
            }
            CHECK_INT(a->n_ifs, 3);
            if (a->n_ifs == 3) {
                CHECK_STR(a->ifs[0], "a");
                CHECK_STR(a->ifs[2], "c");
            }
            CHECK_INT(a->n_then, 1);
            CHECK_STR(a->then[0], "noop");
            CHECK_INT(a->line, 129);
        }
        CHECK_INT(p->nodes[2].n_actions, 1);
        if (p->nodes[2].n_actions == 1)
            CHECK_STR(p->nodes[2].actions[0].then[0], "error-pipeline");
    }

    /* deployment nodes are kept whole */
    p = pipeline(sf, "My deployment pipeline");
    if (p) {
        CHECK_INT(p->n_nodes, 4);
        CHECK_STR(p->nodes[2].type, "deployment");
        CHECK(p->nodes[2].step == NULL);
        CHECK_JSON(p->nodes[2].deployment,
                   "{\"name\": \"deploy-predictor\", \"type\": \"deployment\", \"deployment\": "
                   "\"MyDeployment\", \"aliases\": [\"predictor-staging\"], \"endpoints\": "
                   "[\"predict-digit\"]}");
        CHECK_JSON(p->nodes[3].deployment, "{\"name\": \"deploy-no-presets\", \"type\": "
                                           "\"deployment\", \"deployment\": \"MyDeployment\"}");
        CHECK(p->nodes[0].deployment == NULL);
        check_end(&p->edges[3].target, "deploy-predictor", FERRY_EDGE_FILE, "predict-digit.model");
    }

    CHECK(ferry_stepfile_find_pipeline(sf, "My little") == NULL);
    CHECK(ferry_stepfile_find_pipeline(sf, "predict-digit") == NULL);
    char *names = ferry_stepfile_pipeline_names(sf);
    CHECK_STR(names, "known pipelines: My little pipeline, My deployment pipeline, My medium "
                     "pipeline, Last action pipeline");
    free(names);
    ferry_stepfile_free(sf);
}

static void test_parameters(void)
{
    ferry_stepfile *sf = parse_vector("pipeline-with-parameters-example.yaml");
    if (!sf)
        return;
    const ferry_pipeline_def *p = pipeline(sf, "Example Pipeline with Parameters");
    if (p && p->n_params == 6) {
        const ferry_pipeline_param *id = &p->params[0];
        CHECK_STR(id->name, "id");
        CHECK_INT(id->line, 28);
        CHECK_INT(id->n_targets, 2);
        if (id->n_targets == 2) {
            CHECK_STR(id->targets[0], "train.parameter.id");
            CHECK_STR(id->targets[1], "train_parallel.parameter.id");
        }
        CHECK(json_is_integer(id->default_value));
        CHECK_INT(json_integer_value(id->default_value), 123);
        CHECK(json_is_real(p->params[1].default_value));
        CHECK(json_is_integer(p->params[2].default_value));
        CHECK_JSON(p->params[3].default_value, "\"\"");
        CHECK(json_is_false(p->params[4].default_value));
        CHECK_JSON(p->params[5].default_value, "[\"abc\", \"def\", \"ghi\"]");
        CHECK_INT(p->params[5].n_targets, 2);
    } else {
        CHECK(p && p->n_params == 6);
    }
    const char *shorts[] = {"Short hand parameter target", "Short hand parameter target 2"};
    for (int i = 0; i < 2; i++) {
        p = pipeline(sf, shorts[i]);
        if (!p)
            continue;
        CHECK_INT(p->n_params, 1);
        if (p->n_params != 1)
            continue;
        CHECK_INT(p->params[0].n_targets, 1);
        if (p->params[0].n_targets == 1)
            CHECK_STR(p->params[0].targets[0], "train.parameter.id");
        CHECK(p->params[0].default_value == NULL);
        CHECK_INT(p->n_edges, 0);
    }
    ferry_stepfile_free(sf);
}

static void test_node_options(void)
{
    ferry_stepfile *sf = parse_vector("edge-merge-mode.yaml");
    const ferry_pipeline_def *p = sf ? pipeline(sf, "check-edge-merge-mode") : NULL;
    if (p && p->n_nodes == 3) {
        CHECK_INT(p->nodes[0].merge_append, 0);
        CHECK_INT(p->nodes[1].merge_append, 0);
        CHECK_INT(p->nodes[2].merge_append, 1);
        CHECK_INT(p->n_edges, 0);
    } else {
        CHECK(p && p->n_nodes == 3);
    }
    ferry_stepfile_free(sf);

    sf = parse_vector("pipeline-execution-retry-example.yaml");
    p = sf ? pipeline(sf, "pipe") : NULL;
    if (p && p->n_nodes == 1)
        CHECK_INT(p->nodes[0].on_error, FERRY_ON_ERROR_RETRY);
    ferry_stepfile_free(sf);

    sf = parse_vector("pipeline-with-tasks-example.yaml");
    p = sf ? pipeline(sf, "dynamic-task") : NULL;
    if (p && p->n_nodes == 4) {
        CHECK_INT(p->nodes[0].on_error, FERRY_ON_ERROR_STOP_ALL);
        CHECK_INT(p->nodes[1].on_error, FERRY_ON_ERROR_CONTINUE);
        CHECK_INT(p->nodes[2].on_error, FERRY_ON_ERROR_STOP_NEXT);
        CHECK_INT(p->nodes[3].on_error, FERRY_ON_ERROR_STOP_ALL);
        CHECK_STR(p->nodes[1].type, "task");
        CHECK_STR(p->nodes[1].step, "train");
    }
    ferry_stepfile_free(sf);

    sf = parse_vector("pipeline-with-task-blueprint-example.yaml");
    p = sf ? pipeline(sf, "train-pipeline") : NULL;
    if (p && p->n_nodes == 2) {
        CHECK_STR(p->nodes[1].task, "my-sweep");
        CHECK(p->nodes[1].step == NULL);
        check_end(&p->edges[0].source, "preprocess", FERRY_EDGE_OUTPUT, "*");
    }
    ferry_stepfile_free(sf);

    sf = parse_vector("pipeline-with-different-commit.yaml");
    p = sf ? pipeline(sf, "Commits Specified") : NULL;
    if (p && p->n_nodes == 2) {
        CHECK_STR(p->nodes[0].commit, "library:generic-preprocessors/csv-into-parquet");
        CHECK_STR(p->nodes[0].step, "parquetify");
        CHECK_STR(p->nodes[1].commit, "1240727603076510911526043033166");
    }
    p = sf ? pipeline(sf, "One Library Step, One Local Step") : NULL;
    if (p && p->n_nodes == 2)
        CHECK(p->nodes[1].commit == NULL);
    ferry_stepfile_free(sf);

    sf = parse_vector("pipeline-with-runtime-config-preset.yaml");
    p = sf ? pipeline(sf, "Training pipeline") : NULL;
    if (p && p->n_nodes == 1)
        CHECK_JSON(p->nodes[0].override,
                   "{\"environment\": \"aws-p3-2xlarge\", \"runtime-config-preset\": "
                   "\"preset-xyz789\"}");
    ferry_stepfile_free(sf);
}

static void test_edge_kinds(void)
{
    ferry_stepfile *sf = parse_vector("pipeline-edge-types-example.yaml");
    const ferry_pipeline_def *p = sf ? pipeline(sf, "Edge types showcase") : NULL;
    if (p && p->n_edges == 5) {
        check_end(&p->edges[0].source, "preprocess", FERRY_EDGE_ENVIRONMENT_VARIABLE,
                  "DATA_VERSION");
        check_end(&p->edges[0].target, "train", FERRY_EDGE_ENVIRONMENT_VARIABLE, "DATA_VERSION");
        CHECK_INT(p->edges[0].line, 66);
        check_end(&p->edges[4].source, "evaluate", FERRY_EDGE_DEPENDENCY, "*");
        check_end(&p->edges[4].target, "report", FERRY_EDGE_DEPENDENCY, "*");
    } else {
        CHECK(p && p->n_edges == 5);
    }
    ferry_stepfile_free(sf);

    sf = parse_vector("pipeline-deployment-edge-example.yaml");
    p = sf ? pipeline(sf, "Deployment edge pipeline") : NULL;
    if (p && p->n_edges == 3) {
        check_end(&p->edges[1].source, "Deploy", FERRY_EDGE_DEPLOYMENT, "id");
        check_end(&p->edges[2].source, "Deploy", FERRY_EDGE_DEPLOYMENT, "version_id");
        CHECK_JSON(p->nodes[1].deployment,
                   "{\"name\": \"Deploy\", \"type\": \"deployment\", \"deployment\": "
                   "\"MyDeployment\", \"endpoints\": [\"predict-digit\"]}");
    }
    ferry_stepfile_free(sf);
}

/* A file with only tasks: no pipelines, and tasks have no definition. */
static void test_tasks_and_names(void)
{
    const char *yaml = "- step:\n"
                       "    name: s\n"
                       "    image: busybox\n"
                       "    command: \"true\"\n"
                       "- task:\n"
                       "    name: sweep\n"
                       "    step: s\n";
    ferry_stepfile *sf = NULL;
    CHECK_INT(ferry_stepfile_parse_buffer("valohai.yaml", yaml, strlen(yaml), &sf, errbuf,
                                          sizeof(errbuf)),
              0);
    if (!sf)
        return;
    CHECK_INT(sf->n_flows, 1);
    CHECK(sf->flows[0].pipeline == NULL);
    CHECK(ferry_stepfile_find_pipeline(sf, "sweep") == NULL);
    char *names = ferry_stepfile_pipeline_names(sf);
    CHECK_STR(names, "the file has no pipelines");
    free(names);
    ferry_stepfile_free(sf);
}

static const char steps_yaml[] = "- step:\n"
                                 "    name: s\n"
                                 "    image: busybox\n"
                                 "    command: \"true\"\n"
                                 "    parameters:\n"
                                 "      - name: id\n"
                                 "        type: integer\n";

/* The file is refused with `want` among the messages. */
static void check_refused(const char *pipeline_yaml, const char *want)
{
    stepfile_fixture_refused(steps_yaml, pipeline_yaml, want, errbuf, sizeof(errbuf));
}

static void test_errors(void)
{
    /* line 8 */
    check_refused("- pipeline:\n"
                  "    name: p\n"
                  "    nodes:\n"
                  "      - name: a\n"
                  "        type: execution\n"
                  "        step: s\n"
                  "        actions:\n"
                  "          - when: node-finished\n"
                  "            then: noop\n"
                  "    edges: []\n",
                  "valohai.yaml:15: pipeline 'p': node 'a': action #1: unknown when "
                  "'node-finished' (expected node-starting, node-complete, node-error)");
    /* a bad item of a list, at its own line */
    check_refused("- pipeline:\n"
                  "    name: p\n"
                  "    nodes:\n"
                  "      - name: a\n"
                  "        type: execution\n"
                  "        step: s\n"
                  "        actions:\n"
                  "          - then: noop\n"
                  "            when:\n"
                  "              - node-complete\n"
                  "              - on-complete\n",
                  "valohai.yaml:18: pipeline 'p': node 'a': action #1: unknown when "
                  "'on-complete'");
    check_refused("- pipeline:\n"
                  "    name: p\n"
                  "    nodes:\n"
                  "      - name: a\n"
                  "        type: execution\n"
                  "        step: s\n"
                  "        actions:\n"
                  "          - then: noop\n",
                  "valohai.yaml:15: pipeline 'p': node 'a': action #1: missing required 'when'");
    /* an `if:` that does not parse is refused when the file is read */
    check_refused("- pipeline:\n"
                  "    name: p\n"
                  "    nodes:\n"
                  "      - name: a\n"
                  "        type: execution\n"
                  "        step: s\n"
                  "        actions:\n"
                  "          - when: node-complete\n"
                  "            if: \"metadata.accuracy < \"\n"
                  "            then: stop-pipeline\n",
                  "valohai.yaml:16: pipeline 'p': node 'a': action #1: if: 'metadata.accuracy < ' "
                  "is not a valid expression: unexpected end of expression");
    /* in a list, the bad item at its own line; the action after is checked too */
    check_refused("- pipeline:\n"
                  "    name: p\n"
                  "    nodes:\n"
                  "      - name: a\n"
                  "        type: execution\n"
                  "        step: s\n"
                  "        actions:\n"
                  "          - when: node-complete\n"
                  "            then: noop\n"
                  "          - when: node-complete\n"
                  "            then: stop-pipeline\n"
                  "            if:\n"
                  "              - metadata.loss < 1\n"
                  "              - metadata.accuracy >\n"
                  "              - metadata.epochs == 3\n",
                  "valohai.yaml:21: pipeline 'p': node 'a': action #2: if: 'metadata.accuracy >' "
                  "is not a valid expression: unexpected end of expression");
    check_refused("- pipeline:\n"
                  "    name: p\n"
                  "    parameters:\n"
                  "      - name: id\n"
                  "        targets:\n"
                  "          - a.parameter.id\n"
                  "          - b.parameter.id\n"
                  "    nodes:\n"
                  "      - name: a\n"
                  "        type: execution\n"
                  "        step: s\n",
                  "valohai.yaml:14: pipeline 'p': parameter 'id': targets 'b.parameter.id': "
                  "node 'b' does not exist");
    check_refused("- pipeline:\n"
                  "    name: p\n"
                  "    parameters:\n"
                  "      - name: id\n"
                  "        target: nowhere.parameter.id\n"
                  "    nodes:\n"
                  "      - name: a\n"
                  "        type: execution\n"
                  "        step: s\n",
                  "valohai.yaml:12: pipeline 'p': parameter 'id': target 'nowhere.parameter.id': "
                  "node 'nowhere' does not exist");
    check_refused("- pipeline:\n"
                  "    name: p\n"
                  "    parameters:\n"
                  "      - name: id\n"
                  "        targets: a.input.id\n"
                  "    nodes:\n"
                  "      - name: a\n"
                  "        type: execution\n"
                  "        step: s\n",
                  "valohai.yaml:12: pipeline 'p': parameter 'id': targets 'a.input.id' must be "
                  "node.parameter.name");
    check_refused("- pipeline:\n"
                  "    name: p\n"
                  "    nodes:\n"
                  "      - name: a\n"
                  "        type: execution\n"
                  "        step: s\n"
                  "    edges:\n"
                  "      - source: a.output.x\n"
                  "        target: a.input.y\n"
                  "        configuration: 5\n",
                  "valohai.yaml:17: pipeline 'p': configuration: expected a mapping, got an "
                  "integer (5)");
    /* the edge checks that were there before keep their messages */
    check_refused("- pipeline:\n"
                  "    name: p\n"
                  "    nodes:\n"
                  "      - name: a\n"
                  "        type: execution\n"
                  "        step: s\n"
                  "    edges:\n"
                  "      - [a.output, b.input.y]\n",
                  "valohai.yaml:15: pipeline 'p': edge source 'a.output' must have 3 parts "
                  "(node.type.name), it has 2");
    check_refused("- pipeline:\n"
                  "    name: p\n"
                  "    nodes:\n"
                  "      - name: a\n"
                  "        type: execution\n"
                  "        step: s\n"
                  "    edges:\n"
                  "      - [a.output.x, b.input.y]\n",
                  "valohai.yaml:15: pipeline 'p': edge target 'b.input.y': node 'b' does not "
                  "exist");
}

/* A list of valid `if:`s is kept, item by item, as written. */
static void test_action_ifs(void)
{
    static const char pipe_yaml[] = "- pipeline:\n"
                                    "    name: p\n"
                                    "    nodes:\n"
                                    "      - name: a\n"
                                    "        type: execution\n"
                                    "        step: s\n"
                                    "        actions:\n"
                                    "          - when: node-complete\n"
                                    "            then: stop-pipeline\n"
                                    "            if:\n"
                                    "              - metadata.accuracy < .8\n"
                                    "              - \"not (loss > 2 or epochs == 3)\"\n"
                                    "              - done\n";
    char yaml[1024];
    snprintf(yaml, sizeof(yaml), "%s%s", steps_yaml, pipe_yaml);
    ferry_stepfile *sf = stepfile_fixture_buffer(yaml, errbuf, sizeof(errbuf));
    if (!sf)
        return;
    const ferry_pipeline_def *p = pipeline(sf, "p");
    if (p && p->n_nodes == 1 && p->nodes[0].n_actions == 1) {
        const ferry_node_action *a = &p->nodes[0].actions[0];
        CHECK_INT(a->n_ifs, 3);
        if (a->n_ifs == 3) {
            CHECK_STR(a->ifs[0], "metadata.accuracy < .8");
            CHECK_STR(a->ifs[1], "not (loss > 2 or epochs == 3)");
            CHECK_STR(a->ifs[2], "done");
        }
    } else {
        CHECK(!"one node with one action");
    }
    ferry_stepfile_free(sf);
}

int main(void)
{
    test_pipeline_example();
    test_parameters();
    test_node_options();
    test_edge_kinds();
    test_tasks_and_names();
    test_errors();
    test_action_ifs();
    TEST_MAIN_END();
}
