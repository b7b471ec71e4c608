/* Task definitions (ferry_task_def, issue 21): what the valohai-yaml
 * examples' tasks hold once parsed, normalised as valohai-yaml normalises
 * them, and the bad fields refused at their lines. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <ferry/error.h>

#include "unit/stepfile_fixture.h"

static char errbuf[8192];

static ferry_stepfile *parse_vector(const char *name)
{
    return stepfile_fixture_vector(name, errbuf, sizeof(errbuf));
}

/* The task's definition; NULL (a failed check) when there is none. */
static const ferry_task_def *task(const ferry_stepfile *sf, const char *name)
{
    const ferry_flow *fl = stepfile_fixture_flow(sf, "task", name);
    if (fl)
        CHECK(fl->broken == NULL);
    return fl ? fl->task : NULL;
}

static void test_task_example(void)
{
    ferry_stepfile *sf = parse_vector("task-example.yaml");
    if (!sf)
        return;
    const ferry_task_def *t = task(sf, "task 1 single");
    if (t) {
        CHECK_INT(ferry_stepfile_find_task(sf, "task 1 single")->line, 16);
        CHECK_STR(t->step, "run training");
        CHECK_INT(t->type, FERRY_TASK_BAYESIAN_TPE);
        CHECK_STR(ferry_task_type_name(t->type), "bayesian_tpe");
        CHECK_STR(t->optimization_target_metric, "goodness");
        CHECK_INT(t->has_optimization_target_value, 1);
        CHECK(t->optimization_target_value == 7.2);
        CHECK_INT(t->on_child_error, FERRY_CHILD_ERROR_UNSET);
        CHECK(ferry_child_error_name(t->on_child_error) == NULL);
        CHECK_INT(t->execution_count, 0);
        CHECK_INT(t->reuse_children, 0);
        CHECK(t->parameter_sets == NULL);
        CHECK(t->stop_condition == NULL);
        CHECK_INT(t->n_params, 1);
        if (t->n_params == 1) {
            CHECK_STR(t->params[0].name, "A");
            CHECK_INT(t->params[0].style, FERRY_STYLE_SINGLE);
            CHECK_JSON(t->params[0].rules, "{\"value\": 25}");
            CHECK_INT(t->params[0].line, 25);
        }
    }
    t = task(sf, "task 2 linear");
    if (t && t->n_params == 1) {
        CHECK_INT(t->type, FERRY_TASK_MANUAL_SEARCH);
        CHECK_INT(t->params[0].style, FERRY_STYLE_LINEAR);
        CHECK_JSON(t->params[0].rules, "{\"end\": 25, \"start\": 25, \"step\": 1}");
        CHECK_INT(t->has_optimization_target_value, 0);
    }
    t = task(sf, "task 3 multiple");
    if (t && t->n_params == 1) {
        CHECK_INT(t->type, FERRY_TASK_GRID_SEARCH);
        CHECK_INT(t->params[0].style, FERRY_STYLE_MULTIPLE);
        CHECK_JSON(t->params[0].rules, "{\"items\": [25, 26]}");
        /* the grid it gives, typed by the step */
        ferry_sweep_param p = {t->params[0].name, {0}};
        CHECK_INT(ferry_task_param_values(&t->params[0], &p.values, errbuf, sizeof(errbuf)), 0);
        json_t *points = NULL;
        CHECK_INT(ferry_sweep_grid(&p, 1, ferry_stepfile_find(sf, t->step), 1, 100, &points, errbuf,
                                   sizeof(errbuf)),
                  0);
        CHECK_JSON(points, "[{\"A\": 25}, {\"A\": 26}]");
        json_decref(points);
        ferry_sweep_values_clear(&p.values);
    }
    /* "RANDOM-SEARCH" and "stop_all-AND_error", normalised */
    t = task(sf, "task 4 logspace");
    if (t && t->n_params == 1) {
        CHECK_INT(t->type, FERRY_TASK_RANDOM_SEARCH);
        CHECK_STR(ferry_task_type_name(t->type), "random_search");
        CHECK_INT(t->execution_batch_size, 42);
        CHECK_INT(t->execution_count, 420);
        CHECK_INT(t->maximum_queued_executions, 17);
        CHECK_INT(t->on_child_error, FERRY_CHILD_ERROR_STOP_ALL_AND_ERROR);
        CHECK_STR(ferry_child_error_name(t->on_child_error), "stop-all-and-error");
        CHECK_INT(t->reuse_children, 1);
        CHECK_INT(t->params[0].style, FERRY_STYLE_LOGSPACE);
        CHECK_JSON(t->params[0].rules, "{\"start\": 25, \"end\": 25, \"count\": 4, \"base\": 10, "
                                       "\"integerify\": false}");
        ferry_sweep_values v;
        CHECK_INT(ferry_task_param_values(&t->params[0], &v, errbuf, sizeof(errbuf)), 0);
        CHECK_INT(v.kind, FERRY_SWEEP_LIST);
        CHECK_JSON(v.values, "[1e25, 1e25, 1e25, 1e25]");
        ferry_sweep_values_clear(&v);
    }
    t = task(sf, "task 5 random");
    if (t && t->n_params == 1) {
        CHECK_INT(t->type, FERRY_TASK_DISTRIBUTED);
        CHECK_INT(t->params[0].style, FERRY_STYLE_RANDOM);
        ferry_sweep_values v;
        CHECK_INT(ferry_task_param_values(&t->params[0], &v, errbuf, sizeof(errbuf)), 0);
        CHECK_INT(v.kind, FERRY_SWEEP_RANDOM);
        CHECK_INT(v.distribution, FERRY_DIST_UNIFORM);
        CHECK(v.min == 1 && v.max == 25);
        CHECK_INT(v.count, 10);
        CHECK_INT(v.has_seed, 0);
        ferry_sweep_values_clear(&v);
    }
    t = task(sf, "parameter sets");
    if (t) {
        CHECK_INT(t->type, FERRY_TASK_MANUAL_SEARCH);
        CHECK_INT(t->n_params, 0);
        CHECK_JSON(t->parameter_sets, "[{\"A\": 5, \"B\": 6}, {\"A\": 8, \"B\": 9}, "
                                      "{\"A\": 72, \"B\": 42}]");
    }
    CHECK(ferry_stepfile_find_task(sf, "task 1") == NULL);
    CHECK(ferry_stepfile_find_task(sf, "run training") == NULL);
    CHECK(ferry_stepfile_find_pipeline(sf, "task 1 single") == NULL);
    char *names = ferry_stepfile_task_names(sf);
    CHECK_STR(names, "known tasks: task 1 single, task 2 linear, task 3 multiple, task 4 "
                     "logspace, task 5 random, parameter sets");
    free(names);
    names = ferry_stepfile_pipeline_names(sf);
    CHECK_STR(names, "the file has no pipelines");
    free(names);
    ferry_stepfile_free(sf);
}

/* Each example task's points, by its type. */
static void test_points(void)
{
    ferry_stepfile *sf = parse_vector("task-example.yaml");
    if (!sf)
        return;
    const ferry_step *step = ferry_stepfile_find(sf, "run training");
    struct {
        const char *task;
        int rc;
        const char *want; /* JSON, or what the message says */
    } cases[] = {
        {"task 2 linear", 0, "[{\"A\": 25}]"}, /* manual without sets: the grid */
        {"task 3 multiple", 0, "[{\"A\": 25}, {\"A\": 26}]"},
        {"parameter sets", 0,
         "[{\"A\": 5, \"B\": 6}, {\"A\": 8, \"B\": 9}, {\"A\": 72, \"B\": 42}]"},
        {"task 1 single", FERRY_ENOTSUP,
         "a bayesian_tpe task proposes its points as results arrive"},
        {"task 5 random", FERRY_ENOTSUP, "a distributed task runs members together"},
        /* 1e25 for an integer parameter */
        {"task 4 logspace", FERRY_EINVAL, "parameter 'A': 1e+25 is not an integer"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const ferry_task_def *t = task(sf, cases[i].task);
        json_t *points = NULL;
        errbuf[0] = '\0';
        int rc = t ? ferry_task_points(t, step, 1, 1000, &points, errbuf, sizeof(errbuf)) : -99;
        if (rc != cases[i].rc)
            fprintf(stderr, "%s: %s\n", cases[i].task, errbuf);
        CHECK_INT(rc, cases[i].rc);
        if (cases[i].rc == 0)
            CHECK_JSON(points, cases[i].want);
        else
            CHECK_CONTAINS(errbuf, cases[i].want);
        json_decref(points);
    }
    /* random search: execution-count draws, under the cap */
    const ferry_task_def *t = task(sf, "task 4 logspace");
    if (t) {
        json_t *points = NULL;
        CHECK_INT(ferry_task_points(t, NULL, 1, 1000, &points, errbuf, sizeof(errbuf)), 0);
        CHECK_INT(json_array_size(points), 420);
        CHECK_JSON(json_array_get(points, 419), "{\"A\": 1e25}");
        json_decref(points);
        CHECK_INT(ferry_task_points(t, NULL, 1, 400, &points, errbuf, sizeof(errbuf)),
                  FERRY_ETOOBIG);
        CHECK_STR(errbuf, "an execution-count of 420 is more than the limit of 400");
    }
    ferry_stepfile_free(sf);
}

/* A task blueprint beside a pipeline: each flow has its own definition only. */
static void test_blueprint(void)
{
    ferry_stepfile *sf = parse_vector("pipeline-with-task-blueprint-example.yaml");
    if (!sf)
        return;
    const ferry_task_def *t = task(sf, "my-sweep");
    if (t) {
        CHECK_STR(t->step, "train-model");
        CHECK_INT(t->type, FERRY_TASK_GRID_SEARCH);
        CHECK_INT(t->maximum_queued_executions, 2);
        CHECK_INT(t->on_child_error, FERRY_CHILD_ERROR_STOP_ALL_AND_ERROR);
    }
    const ferry_flow *pl = ferry_stepfile_find_pipeline(sf, "train-pipeline");
    CHECK(pl != NULL);
    if (pl)
        CHECK(pl->task == NULL && pl->pipeline != NULL);
    CHECK(ferry_stepfile_find_task(sf, "train-pipeline") == NULL);
    char *names = ferry_stepfile_task_names(sf);
    CHECK_STR(names, "known tasks: my-sweep");
    free(names);
    ferry_stepfile_free(sf);
}

static const char steps_yaml[] = "- step:\n"
                                 "    name: s\n"
                                 "    image: busybox\n"
                                 "    command: \"true\"\n"
                                 "    parameters:\n"
                                 "      - name: A\n"
                                 "        type: integer\n"
                                 "      - name: lr\n"
                                 "        type: float\n";

static ferry_stepfile *parse_tasks(const char *tasks_yaml, int *rc)
{
    return stepfile_fixture_join(steps_yaml, tasks_yaml, rc, errbuf, sizeof(errbuf));
}

/* Lines 10 on are the task's. */
static void check_refused(const char *tasks_yaml, const char *want)
{
    stepfile_fixture_refused(steps_yaml, tasks_yaml, want, errbuf, sizeof(errbuf));
}

static void test_errors(void)
{
    check_refused("- task:\n"
                  "    name: t\n"
                  "    step: s\n"
                  "    parameters:\n"
                  "      - name: A\n"
                  "        style: x\n"
                  "        rules: {value: 1}\n",
                  "valohai.yaml:15: task 't': parameter 'A': unknown style 'x' (expected single, "
                  "multiple, linear, logspace, random)");
    check_refused("- task:\n"
                  "    name: t\n"
                  "    step: s\n"
                  "    type: grid\n",
                  "valohai.yaml:13: task 't': unknown type 'grid' (expected grid_search, "
                  "random_search, manual_search, bayesian_tpe, distributed)");
    check_refused("- task:\n"
                  "    name: t\n"
                  "    step: s\n"
                  "    on-child-error: stop-all\n",
                  "valohai.yaml:13: task 't': unknown on-child-error 'stop-all' (expected "
                  "continue-and-complete, continue-and-error, stop-all-and-error)");
    check_refused("- task:\n"
                  "    name: t\n"
                  "    step: s\n"
                  "    execution-count: 4.5\n",
                  "valohai.yaml:13: task 't': execution-count: expected a whole number of at "
                  "least 1, got a number (4.5)");
    check_refused("- task:\n"
                  "    name: t\n"
                  "    step: s\n"
                  "    maximum-queued-executions: 0\n",
                  "valohai.yaml:13: task 't': maximum-queued-executions: expected a whole number "
                  "of at least 1, got an integer (0)");
    check_refused("- task:\n"
                  "    name: t\n"
                  "    step: s\n"
                  "    execution-batch-size: ten\n",
                  "valohai.yaml:13: task 't': execution-batch-size: expected a number, got a "
                  "string ('ten')");
    check_refused("- task:\n"
                  "    name: t\n"
                  "    step: s\n"
                  "    reuse-children: sometimes\n",
                  "valohai.yaml:13: task 't': reuse-children: expected true or false");
    /* rules: at the line of the rule at fault */
    check_refused("- task:\n"
                  "    name: t\n"
                  "    step: s\n"
                  "    parameters:\n"
                  "      - name: A\n"
                  "        style: linear\n"
                  "        rules:\n"
                  "          start: 1\n"
                  "          end: 5\n"
                  "          step: 0\n",
                  "valohai.yaml:19: task 't': parameter 'A': rules: step must not be 0 (style "
                  "linear)");
    check_refused("- task:\n"
                  "    name: t\n"
                  "    step: s\n"
                  "    parameters:\n"
                  "      - name: A\n"
                  "        style: linear\n"
                  "        rules:\n"
                  "          start: 1\n"
                  "          end: 5\n"
                  "          stpe: 1\n",
                  "valohai.yaml:19: task 't': parameter 'A': rules: unknown key 'stpe' (did you "
                  "mean 'step'?)");
    check_refused("- task:\n"
                  "    name: t\n"
                  "    step: s\n"
                  "    parameters:\n"
                  "      - name: A\n"
                  "        style: linear\n"
                  "        rules:\n"
                  "          start: 1\n"
                  "          end: 5\n",
                  "valohai.yaml:17: task 't': parameter 'A': rules: missing required 'step' "
                  "(style linear)");
    check_refused("- task:\n"
                  "    name: t\n"
                  "    step: s\n"
                  "    parameters:\n"
                  "      - name: A\n"
                  "        style: logspace\n"
                  "        rules:\n"
                  "          start: 1\n"
                  "          end: 5\n"
                  "          count: many\n",
                  "valohai.yaml:19: task 't': parameter 'A': rules: count: expected a number, "
                  "got a string ('many')");
    check_refused("- task:\n"
                  "    name: t\n"
                  "    step: s\n"
                  "    parameters:\n"
                  "      - name: A\n"
                  "        style: logspace\n"
                  "        rules:\n"
                  "          start: 1\n"
                  "          end: 5\n"
                  "          count: 0\n",
                  "valohai.yaml:19: task 't': parameter 'A': rules: count must be a whole number "
                  "of at least 1 (style logspace)");
    check_refused("- task:\n"
                  "    name: t\n"
                  "    step: s\n"
                  "    parameters:\n"
                  "      - name: lr\n"
                  "        style: random\n"
                  "        rules:\n"
                  "          min: 0\n"
                  "          max: 1\n"
                  "          distribution: loguniform\n",
                  "valohai.yaml:17: task 't': parameter 'lr': rules: loguniform needs a min above "
                  "0, got 0 (style random)");
    check_refused("- task:\n"
                  "    name: t\n"
                  "    step: s\n"
                  "    parameters:\n"
                  "      - name: lr\n"
                  "        style: random\n"
                  "        rules:\n"
                  "          min: 0\n"
                  "          max: 1\n"
                  "          distribution: gauss\n",
                  "valohai.yaml:19: task 't': parameter 'lr': rules: unknown distribution 'gauss' "
                  "(expected uniform, loguniform, normal) (style random)");
    check_refused("- task:\n"
                  "    name: t\n"
                  "    step: s\n"
                  "    parameters:\n"
                  "      - name: A\n"
                  "        style: multiple\n"
                  "        rules:\n"
                  "          items: []\n",
                  "valohai.yaml:17: task 't': parameter 'A': rules: items: expected a list of at "
                  "least one value (style multiple)");
    check_refused("- task:\n"
                  "    name: t\n"
                  "    step: s\n"
                  "    parameters:\n"
                  "      - name: A\n"
                  "        style: single\n"
                  "        rules: {start: 1}\n",
                  "valohai.yaml:16: task 't': parameter 'A': rules: missing required 'value' "
                  "(style single)");
    check_refused("- task:\n"
                  "    name: t\n"
                  "    step: s\n"
                  "    type: manual_search\n"
                  "    parameter-sets:\n"
                  "      - {A: 1}\n"
                  "      - 5\n",
                  "valohai.yaml:16: task 't': parameter-sets #2: expected a mapping, got an "
                  "integer (5)");
    check_refused("- task:\n"
                  "    name: t\n"
                  "    step: s\n"
                  "    stop-condition: \"loss <\"\n",
                  "valohai.yaml:13: task 't': stop-condition: 'loss <' is not a valid expression");
}

/* What valohai-yaml accepts is kept: lower-cased styles, the default type,
 * a stop-condition; a parameter the step lacks makes the task unrunnable,
 * not the file. */
static void test_normalised(void)
{
    int rc;
    ferry_stepfile *sf = parse_tasks("- task:\n"
                                     "    name: t\n"
                                     "    step: s\n"
                                     "    on-child-error: Continue_And_Error\n"
                                     "    stop-condition: loss < 0.1\n"
                                     "    parameters:\n"
                                     "      - name: lr\n"
                                     "        style: Linear\n"
                                     "        rules: {start: 0.1, end: 0.3, step: 0.1}\n"
                                     "- task:\n"
                                     "    name: u\n"
                                     "    step: s\n"
                                     "    parameters:\n"
                                     "      - name: C\n"
                                     "        style: single\n"
                                     "        rules: {value: 1}\n"
                                     "- task:\n"
                                     "    name: v\n"
                                     "    step: s\n"
                                     "    parameter-sets:\n"
                                     "      - {}\n"
                                     "      - {A: 1, D: 2}\n",
                                     &rc);
    if (rc != 0)
        fprintf(stderr, "%s\n", errbuf);
    CHECK_INT(rc, 0);
    if (!sf)
        return;
    const ferry_task_def *t = task(sf, "t");
    if (t && t->n_params == 1) {
        CHECK_INT(t->type, FERRY_TASK_GRID_SEARCH); /* no type: valohai's default */
        CHECK_INT(t->on_child_error, FERRY_CHILD_ERROR_CONTINUE_AND_ERROR);
        CHECK_STR(t->stop_condition, "loss < 0.1");
        CHECK_INT(t->params[0].style, FERRY_STYLE_LINEAR);
        CHECK_INT(t->params[0].line, 16);
        ferry_sweep_param p = {"lr", {0}};
        CHECK_INT(ferry_task_param_values(&t->params[0], &p.values, errbuf, sizeof(errbuf)), 0);
        json_t *points = NULL;
        CHECK_INT(ferry_sweep_grid(&p, 1, ferry_stepfile_find(sf, "s"), 0, 10, &points, errbuf,
                                   sizeof(errbuf)),
                  0);
        CHECK_JSON(points, "[{\"lr\": 0.1}, {\"lr\": 0.2}, {\"lr\": 0.3}]");
        json_decref(points);
        ferry_sweep_values_clear(&p.values);
    }
    const ferry_flow *u = ferry_stepfile_find_task(sf, "u");
    CHECK(u != NULL);
    if (u) {
        CHECK_CONTAINS(u->broken, "valohai.yaml:23: task 'u': parameter 'C': step 's' has no "
                                  "parameter 'C'");
        CHECK(u->task != NULL);
    }
    const ferry_flow *v = ferry_stepfile_find_task(sf, "v");
    CHECK(v != NULL);
    if (v) {
        CHECK_CONTAINS(v->broken, "valohai.yaml:31: task 'v': parameter-sets #2: step 's' has "
                                  "no parameter 'D'");
        CHECK(v->task != NULL);
        if (v->task)
            CHECK_JSON(v->task->parameter_sets, "[{\"A\": 1, \"D\": 2}]"); /* {} dropped */
    }
    ferry_stepfile_free(sf);
}

int main(void)
{
    test_task_example();
    test_points();
    test_blueprint();
    test_errors();
    test_normalised();
    TEST_MAIN_END();
}
