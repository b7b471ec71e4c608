/* Step files: parsing (every valohai-yaml example and error example), value
 * validation, command building, inputs, environment variables, durations.
 * Expected results come from tests/vectors/valohai-yaml/README.md. */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>

#include <ferry/error.h>

#include "stepfile.h"
#include "unit/test.h"

static char errbuf[8192];

static const char *vectors_dir(void)
{
    const char *dir = getenv("FERRY_VECTORS_DIR");
    if (!dir) {
        fprintf(stderr, "FERRY_VECTORS_DIR is not set (CTest sets it)\n");
        exit(2);
    }
    return dir;
}

static char *vector_path(const char *sub, const char *name)
{
    size_t n = strlen(vectors_dir()) + strlen(sub) + strlen(name) + 32;
    char *p = malloc(n);
    snprintf(p, n, "%s/valohai-yaml/%s/%s", vectors_dir(), sub, name);
    return p;
}

static ferry_stepfile *parse_vector(const char *name)
{
    char *path = vector_path("examples", name);
    ferry_stepfile *sf = NULL;
    int rc = ferry_stepfile_parse_file(path, &sf, errbuf, sizeof(errbuf));
    if (rc != 0)
        fprintf(stderr, "%s: %s\n", name, errbuf);
    CHECK_INT(rc, 0);
    free(path);
    return sf;
}

static ferry_stepfile *parse_yaml(const char *yaml)
{
    ferry_stepfile *sf = NULL;
    int rc =
        ferry_stepfile_parse_buffer("ferry.yaml", yaml, strlen(yaml), &sf, errbuf, sizeof(errbuf));
    if (rc != 0)
        fprintf(stderr, "unexpected parse error: %s\n", errbuf);
    CHECK_INT(rc, 0);
    return sf;
}

/* The parse error of a file that must not parse (in errbuf). */
static const char *yaml_error(const char *yaml)
{
    ferry_stepfile *sf = NULL;
    int rc =
        ferry_stepfile_parse_buffer("ferry.yaml", yaml, strlen(yaml), &sf, errbuf, sizeof(errbuf));
    CHECK(rc < 0);
    CHECK(sf == NULL);
    ferry_stepfile_free(sf);
    return errbuf;
}

static json_t *json(const char *text)
{
    json_error_t e;
    json_t *v = json_loads(text, JSON_DECODE_ANY, &e);
    if (!v)
        fprintf(stderr, "bad JSON in test: %s: %s\n", text, e.text);
    return v;
}

static const ferry_step *step_of(const ferry_stepfile *sf, const char *name)
{
    const ferry_step *s = sf ? ferry_stepfile_find(sf, name) : NULL;
    CHECK(s != NULL);
    return s;
}

/* Resolve `params` (JSON) and build the step's command; NULL on a resolve
 * error (message in errbuf). */
static char *command_with(const ferry_step *s, const char *params)
{
    if (!s)
        return NULL;
    json_t *given = params ? json(params) : NULL, *resolved = NULL;
    int rc = ferry_step_resolve_parameters(s, given, &resolved, errbuf, sizeof(errbuf));
    json_decref(given);
    if (rc != 0)
        return NULL;
    char *cmd = ferry_step_build_command(s, resolved);
    json_decref(resolved);
    return cmd;
}

/* The command with an already resolved object (to bypass validation). */
static char *command_raw(const ferry_step *s, const char *resolved)
{
    json_t *r = json(resolved);
    char *cmd = ferry_step_build_command(s, r);
    json_decref(r);
    return cmd;
}

#define CHECK_CMD(step, params, expected)                                                          \
    do {                                                                                           \
        char *cmd_ = command_with(step, params);                                                   \
        if (!cmd_)                                                                                 \
            fprintf(stderr, "%s:%d: resolve failed: %s\n", __FILE__, __LINE__, errbuf);            \
        CHECK_STR(cmd_, expected);                                                                 \
        free(cmd_);                                                                                \
    } while (0)

/* Resolving must fail with a message containing `needle`. */
#define CHECK_RESOLVE_ERR(step, params, needle)                                                    \
    do {                                                                                           \
        char *cmd_ = command_with(step, params);                                                   \
        CHECK(cmd_ == NULL);                                                                       \
        CHECK_CONTAINS(errbuf, needle);                                                            \
        free(cmd_);                                                                                \
    } while (0)

/* Replace a step's commands, to try placeholders on real parameter lists. */
static void set_commands(ferry_step *s, const char *const *cmds, size_t n)
{
    for (size_t i = 0; i < s->n_commands; i++)
        free(s->commands[i]);
    free(s->commands);
    s->commands = calloc(n, sizeof(char *));
    for (size_t i = 0; i < n; i++)
        s->commands[i] = strdup(cmds[i]);
    s->n_commands = n;
}

static int is_yaml(const char *name)
{
    size_t n = strlen(name);
    return n > 5 && strcmp(name + n - 5, ".yaml") == 0;
}

/* ------------------------------------------------------------------------ */

static void test_every_example_parses(void)
{
    char *dir_path = vector_path("examples", "");
    DIR *dir = opendir(dir_path);
    CHECK(dir != NULL);
    int count = 0;
    for (struct dirent *de; dir && (de = readdir(dir));) {
        if (!is_yaml(de->d_name))
            continue;
        char *path = vector_path("examples", de->d_name);
        ferry_stepfile *sf = NULL;
        int rc = ferry_stepfile_parse_file(path, &sf, errbuf, sizeof(errbuf));
        if (rc != 0)
            fprintf(stderr, "example %s does not parse: %s\n", de->d_name, errbuf);
        CHECK_INT(rc, 0);
        CHECK(sf && sf->n_steps + sf->n_unsupported > 0);
        ferry_stepfile_free(sf);
        free(path);
        count++;
    }
    if (dir)
        closedir(dir);
    free(dir_path);
    CHECK_INT(count, 32);
}

/* What each error example is about, and what the message must say. */
static const struct {
    const char *file;
    const char *needles[4];
} error_examples[] = {
    {"endpoint-names-invalid.yaml",
     {"endpoint-names-invalid.yaml:2: endpoint 'Server-endpoint': name 'Server-endpoint' is not "
      "valid",
      ":8: endpoint '3-server-endpoint'", ":14: endpoint 'server@endpoint'",
      ":20: endpoint 'wsgi_endpoint'"}},
    {"input-name-too-long.yaml",
     {"input-name-too-long.yaml:6: step 'very-bad-example': input "
      "'this-input-name-is-way-too-long-and-will-cause-the-validation-to-fail'",
      "name is too long", "at most 64"}},
    {"invalid-YAML-indentation.yaml",
     {"invalid-YAML-indentation.yaml:3: mapping values are not allowed in this context",
      "check the indentation"}},
    {"invalid-edge-parts.yaml",
     {"invalid-edge-parts.yaml:19: pipeline 'Mipeline': edge target 'batch2.input' must have 3 "
      "parts",
      "it has 2"}},
    {"invalid-indentation-with-valid-YAML.yaml",
     {"invalid-indentation-with-valid-YAML.yaml:1: 'step:' is empty",
      "'name', 'image', 'inputs', 'command' sit beside it", "indent"}},
    {"invalid-on-error-value.yaml",
     {"invalid-on-error-value.yaml:24: pipeline 'dynamic-task': node 'train-with-errors': "
      "unknown on-error 'report-to-sentry'",
      "expected stop-all, stop-next, continue"}},
    {"invalid-pipeline-with-override-example.yaml",
     {"invalid-pipeline-with-override-example.yaml:48: pipeline 'My overriden input pipeline': "
      "node 'merged': override: input 'training-labels-error' does not exist in step 'base step'",
      ":53: pipeline 'My overriden input pipeline': node 'merged': override: parameter 'd' does "
      "not exist in step 'base step'",
      ":57: pipeline 'My overriden input pipeline': node 'overridden': step 'secon step' does "
      "not exist"}},
    {"invalid-shorthand-edge.yaml",
     {"invalid-shorthand-edge.yaml:16: pipeline 'Mipeline': malformed edge",
      "[source, target], got 1 item"}},
    {"invalid-task-blueprint-reference.yaml",
     {"invalid-task-blueprint-reference.yaml:25: pipeline 'invalid-task-pipeline': node "
      "'task-node': task 'my-non-existent-task' does not exist"}},
    {"invalid-upload-store-value.yaml",
     {"invalid-upload-store-value.yaml:4: step 'preprocess': upload-store is too long (65 "
      "characters, at most 64)"}},
    {"pipeline-with-preset-override-without-environment.yaml",
     {"pipeline-with-preset-override-without-environment.yaml:16: pipeline 'Training pipeline': "
      "node 'train-node': override: runtime-config-preset needs 'environment'"}},
    {"step-invalid-resources.yaml",
     {"step-invalid-resources.yaml:7: step 'contains partial workload resources': resources: "
      "cpu: min: expected a number",
      "'Not a number'"}},
    {"step-missing-required-properties.yaml",
     {"step-missing-required-properties.yaml:1: step at line 1: missing required 'name'",
      ":1: step at line 1: missing required 'command'",
      ":2: step at line 1: image: expected a string, got a boolean (yes); put it in quotes",
      ":6: step 'hiiii': command: expected a string or a list of strings, got an integer (8)"}},
    {"step-preset-without-environment.yaml",
     {"step-preset-without-environment.yaml:5: step 'preset without environment': "
      "runtime-config-preset needs 'environment'"}},
    {"step-stop-condition.yaml",
     {"step-stop-condition.yaml:5: step 'no-stop': stop-condition: 'stop me if you can' is not a "
      "valid expression",
      "unexpected 'me'"}},
    {"step-with-error-tasks.yaml",
     {"step-with-error-tasks.yaml:16: task at line 16: missing required 'name'",
      ":22: task at line 16: parameter 'A': rules: expected a mapping, got nothing",
      ":29: task 'task 2 linear': parameter #1: name: expected a string, got nothing",
      ":43: task 'task 4 logspace': missing required 'step'"}},
    {"task-stop-condition.yaml",
     {"task-stop-condition.yaml:10: task 'no-stop': stop-condition: 'can't stop me now' is not a "
      "valid expression",
      "unterminated string"}},
    {"wrong-edge-merge-mode.yaml",
     {"wrong-edge-merge-mode.yaml:15: pipeline 'bad-pp': node 'bad-pn': unknown edge-merge-mode "
      "'boo-boo' (expected replace, append)"}},
};

static void check_error_example(const char *file)
{
    size_t n = sizeof(error_examples) / sizeof(error_examples[0]);
    for (size_t i = 0; i < n; i++) {
        if (strcmp(error_examples[i].file, file) != 0)
            continue;
        char *path = vector_path("error_examples", file);
        ferry_stepfile *sf = NULL;
        int rc = ferry_stepfile_parse_file(path, &sf, errbuf, sizeof(errbuf));
        CHECK(rc < 0);
        CHECK(sf == NULL);
        for (int j = 0; j < 4 && error_examples[i].needles[j]; j++)
            CHECK_CONTAINS(errbuf, error_examples[i].needles[j]);
        CHECK_CONTAINS(errbuf, path); /* the file is named as given */
        ferry_stepfile_free(sf);
        free(path);
        return;
    }
    fprintf(stderr, "error example %s has no expectation in the test\n", file);
    CHECK(0);
}

static void test_every_error_example_fails_clearly(void)
{
    char *dir_path = vector_path("error_examples", "");
    DIR *dir = opendir(dir_path);
    CHECK(dir != NULL);
    int count = 0;
    for (struct dirent *de; dir && (de = readdir(dir));) {
        if (!is_yaml(de->d_name))
            continue;
        check_error_example(de->d_name);
        count++;
    }
    if (dir)
        closedir(dir);
    free(dir_path);
    CHECK_INT(count, 18);
}

/* ------------------------------------------------------------------------ */

static void test_parse_example1(void)
{
    ferry_stepfile *sf = parse_vector("example1.yaml");
    const ferry_step *s = step_of(sf, "run training");
    if (!s)
        goto out;
    CHECK_INT(sf->valohai, 0);
    CHECK_INT(s->line, 1);
    CHECK_STR(s->image, "busybox");
    CHECK_INT(s->n_commands, 9);
    CHECK_STR(s->commands[4], "echo \"data_path: /root/ladder\" > /root/.fuelrc");
    CHECK_INT(s->n_params, 9);
    static const char *const order[] = {"num-epochs",        "seed",           "labeled-samples",
                                        "unlabeled-samples", "encoder-layers", "denoising-cost-x",
                                        "decoder-spec",      "sql-query",      "output-alias"};
    for (size_t i = 0; i < 9 && i < s->n_params; i++)
        CHECK_STR(s->params[i].name, order[i]);
    const ferry_param_def *epochs = &s->params[0], *seed = &s->params[1];
    CHECK_INT(epochs->type, FERRY_PARAM_INTEGER);
    CHECK_INT(epochs->optional, 1);
    CHECK(epochs->has_min && epochs->min == 1 && !epochs->has_max);
    CHECK(epochs->default_value == NULL);
    CHECK(json_is_integer(seed->default_value) && json_integer_value(seed->default_value) == 1);
    CHECK_STR(s->params[6].pass_as, "--decoder-spec {v}");
    CHECK(s->params[0].pass_as == NULL);
    CHECK_STR(s->params[6].multiple_separator, ",");
    CHECK_CONTAINS(s->params[3].description, "unsupervised samples");
out:
    ferry_stepfile_free(sf);
}

static void test_command_quoting_and_order(void)
{
    ferry_stepfile *sf = parse_vector("example1.yaml");
    const ferry_step *s = step_of(sf, "run training");
    char *cmd = command_with(s, "{\"decoder-spec\": \"foo bar\\\"\\\"'\\\"'\\\"; quux\"}");
    CHECK_CONTAINS(cmd, "--decoder-spec 'foo bar\"\"'\"'\"'\"'\"'\"'\"; quux'");
    /* every parameter with a value, in declaration order; num-epochs is
     * unset and left out */
    CHECK_CONTAINS(cmd, "\npython run.py train --seed=1 --labeled-samples=60000 "
                        "--unlabeled-samples=60000 --encoder-layers=1000-500-250-250-250-10 "
                        "--denoising-cost-x=1000,1,0.01,0.01,0.01,0.01,0.01 --decoder-spec ");
    CHECK_CONTAINS(cmd, "'--sql-query=SELECT * FROM mytable' --output-alias=my-alias -- "
                        "mnist_all_full");
    const char *head = "cd /tmp/code\nconda env create -q\n";
    CHECK(cmd && strncmp(cmd, head, strlen(head)) == 0);
    CHECK(cmd && strstr(cmd, "num-epochs") == NULL);
    free(cmd);
    ferry_stepfile_free(sf);
}

static void test_parameter_placeholders(void)
{
    ferry_stepfile *sf = parse_vector("example1.yaml");
    ferry_step *s = sf ? (ferry_step *)step_of(sf, "run training") : NULL;
    if (!s)
        goto out;
    const char *values = "{\"decoder-spec\": \"hello\", \"num-epochs\": 840}";

    static const char *const one[] = {"asdf {params}"};
    set_commands(s, one, 1);
    char *cmd = command_with(s, values);
    CHECK(cmd && strncmp(cmd, "asdf --num-epochs=840 --seed=1", 30) == 0);
    CHECK_CONTAINS(cmd, "--decoder-spec hello");
    free(cmd);

    static const char *const by_name[] = {
        "asdf {parameter:decoder-spec} {parameter:hello} {parameter:decoder-spec}"};
    set_commands(s, by_name, 1);
    CHECK_CMD(s, values, "asdf --decoder-spec hello {parameter:hello} --decoder-spec hello");

    static const char *const by_value[] = {
        "asdf {parameter-value:decoder-spec} {parameter-value:hello} "
        "{parameter-value:decoder-spec}",
        "dsfargeg {parameter-value:num-epochs}", "{parameter-value:decoder-spec}"};
    set_commands(s, by_value, 3);
    CHECK_CMD(s, values, "asdf hello {parameter-value:hello} hello\ndsfargeg 840\nhello");

    /* empty and zero values are kept and quoted (0 would fail min: 1, so
     * this builds from a resolved object directly) */
    static const char *const falsy[] = {
        "env ds={parameter-value:decoder-spec} eps={parameter-value:num-epochs} runrunrun"};
    set_commands(s, falsy, 1);
    cmd = command_raw(s, "{\"decoder-spec\": \"\", \"num-epochs\": 0}");
    CHECK_STR(cmd, "env ds='' eps=0 runrunrun");
    free(cmd);
    CHECK_RESOLVE_ERR(s, "{\"num-epochs\": 0}",
                      "parameter 'num-epochs': 0 is less than the minimum 1");

    /* None: left out of {parameters} and of {parameter:NAME} */
    static const char *const none[] = {"echo {parameters}; echo {parameter:num-epochs}"};
    set_commands(s, none, 1);
    cmd = command_with(s, "{\"num-epochs\": null}");
    CHECK(cmd && strstr(cmd, "num-epochs") == NULL);
    CHECK_CONTAINS(cmd, "; echo");
    free(cmd);

    /* {parameter-value:NAME} of an unset parameter stays as written */
    static const char *const unset[] = {"x {parameter-value:num-epochs}"};
    set_commands(s, unset, 1);
    CHECK_CMD(s, NULL, "x {parameter-value:num-epochs}");
out:
    ferry_stepfile_free(sf);
}

static void test_placeholder_edge_cases(void)
{
    ferry_stepfile *sf =
        parse_yaml("- step:\n"
                   "    name: plain\n"
                   "    image: busybox\n"
                   "    command: \"Where are the ${shell_unicorns}? The {parameters} "
                   "are here!\"\n"
                   "- step:\n"
                   "    name: odd\n"
                   "    image: busybox\n"
                   "    command:\n"
                   "      - \"awk '{print $1}' {{parameters}} a {} b {unknown:x}\"\n"
                   "      - \"{param\\neters} {parameter:x}\"\n"
                   "      - \"{parameter-value:x}{parameter-value:x}\"\n"
                   "    parameters:\n"
                   "      - name: x\n"
                   "        default: hello world\n"
                   "- step:\n"
                   "    name: templates\n"
                   "    image: busybox\n"
                   "    command: run {parameters}\n"
                   "    parameters:\n"
                   "      - name: braces\n"
                   "        pass-as: --b={{{v}}}\n"
                   "        default: x\n"
                   "      - name: other\n"
                   "        pass-as: -o {other} {name}\n"
                   "        default: y\n"
                   "      - name: words\n"
                   "        pass-as: \"  --w   {value}  \"\n"
                   "        default: a b\n"
                   "      - name: plain\n"
                   "        default: a b\n"
                   "      - name: empty\n"
                   "        default: \"\"\n"
                   "      - name: unicode\n"
                   "        pass-as: \"{v}\"\n"
                   "        default: héllo\n"
                   "      - name: empty-pass-as\n"
                   "        pass-as: \"\"\n"
                   "        default: z\n");
    const ferry_step *s = step_of(sf, "plain");
    /* {parameters} with no parameters is nothing; ${...} is the shell's */
    CHECK_CMD(s, NULL, "Where are the ${shell_unicorns}? The  are here!");
    s = step_of(sf, "odd");
    CHECK_CMD(s, NULL,
              "awk '{print $1}' {{parameters}} a {} b {unknown:x}\n{param\neters} "
              "'--x=hello world'\n'hello world''hello world'");
    s = step_of(sf, "templates");
    CHECK_CMD(s, NULL,
              "run '--b={x}' -o '{other}' other --w 'a b' '--plain=a b' --empty= 'héllo' "
              "--empty-pass-as=z");
    ferry_stepfile_free(sf);
}

static void test_shebang_and_joining(void)
{
    ferry_stepfile *sf = parse_vector("shebang-example.yaml");
    CHECK_CMD(step_of(sf, "Do a thing"), "{\"wibble\": 3}",
              "#!/bin/bash\necho \"The wibble is --wibble=3 today.\"\n"
              "if [[ -z \"$1\" ]]; then echo \"No arguments provided\"; fi");
    CHECK_CMD(step_of(sf, "Do the same thing in another way"), "{\"wibble\": \"3\"}",
              "#!/bin/bash\necho \"The wibble is --wibble=3 today.\"\n"
              "if [[ -z \"$1\" ]]; then echo \"No arguments provided\"; fi");
    ferry_stepfile_free(sf);

    sf = parse_yaml("- step:\n    name: a\n    image: i\n"
                    "    command: ['#!/bin/sh', foo, '', '  bar  ']\n"
                    "- step:\n    name: b\n    image: i\n    command: [foo, '#!/bin/sh']\n"
                    "- step:\n    name: c\n    image: i\n    command: ['#!/bin/sh']\n"
                    "- step:\n    name: d\n    image: i\n    command: []\n");
    /* empty commands are dropped, each one is stripped */
    CHECK_CMD(step_of(sf, "a"), NULL, "#!/bin/sh\nfoo\nbar");
    CHECK_CMD(step_of(sf, "b"), NULL, "foo\n#!/bin/sh"); /* only a first line is one */
    CHECK_CMD(step_of(sf, "c"), NULL, "#!/bin/sh");
    CHECK_CMD(step_of(sf, "d"), NULL, "");
    ferry_stepfile_free(sf);
}

static void test_multiple(void)
{
    ferry_stepfile *sf = parse_vector("multiple-param.yaml");
    const ferry_step *s = step_of(sf, "example");
    if (!s)
        goto out;
    CHECK_INT(s->params[1].multiple, FERRY_MULTIPLE_SEPARATE);
    CHECK_STR(s->params[1].multiple_separator, "-");
    CHECK_INT(s->params[3].multiple, FERRY_MULTIPLE_REPEAT);
    CHECK_INT(json_array_size(s->params[3].choices), 4);
    CHECK_CMD(s, NULL,
              "echo --unlabeled-samples=60000 --encoder-layers=1000-500-250-250-250-10 "
              "--denoising-cost-x=1000,1,0.01,0.01,0.01,0.01,0.01 --decoder-spec gauss "
              "--decoder-spec railgun");
    /* an empty list leaves the parameter out; a single value is a list of one */
    CHECK_CMD(s, "{\"encoder-layers\": [], \"denoising-cost-x\": \"0.5\", \"decoder-spec\": []}",
              "echo --unlabeled-samples=60000 --denoising-cost-x=0.5");
    CHECK_CMD(s, "{\"encoder-layers\": [\"7\", 8], \"decoder-spec\": [\"marshmallow\"]}",
              "echo --unlabeled-samples=60000 --encoder-layers=7-8 "
              "--denoising-cost-x=1000,1,0.01,0.01,0.01,0.01,0.01 --decoder-spec marshmallow");
    CHECK_RESOLVE_ERR(s, "{\"unlabeled-samples\": [1, 2]}",
                      "parameter 'unlabeled-samples': expected a single value, got a list");
    CHECK_RESOLVE_ERR(s, "{\"decoder-spec\": [\"gauss\", \"nope\"]}",
                      "parameter 'decoder-spec': 'nope' is not one of: gauss, railgun, "
                      "marshmallow, scaffolding");
    CHECK_RESOLVE_ERR(s, "{\"encoder-layers\": [1, \"x\"]}",
                      "parameter 'encoder-layers': x is not an integer");
    CHECK_RESOLVE_ERR(s, "{\"encoder-layers\": [[1]]}", "nested lists");

    /* resolved values are typed lists */
    json_t *resolved = NULL;
    CHECK_INT(ferry_step_resolve_parameters(s, NULL, &resolved, errbuf, sizeof(errbuf)), 0);
    json_t *layers = json_object_get(resolved, "encoder-layers");
    CHECK(json_is_array(layers) && json_array_size(layers) == 6);
    CHECK(json_is_integer(json_array_get(layers, 0)));
    /* a float parameter's values are numbers, an integer kept one (1000, as
     * valohai-yaml keeps it: its command says 1000, not 1000.0) */
    json_t *cost = json_object_get(resolved, "denoising-cost-x");
    CHECK(json_is_integer(json_array_get(cost, 0)));
    CHECK(json_is_real(json_array_get(cost, 2)));
    json_decref(resolved);
out:
    ferry_stepfile_free(sf);
}

static void test_flags(void)
{
    ferry_stepfile *sf = parse_vector("flag-param-example.yaml");
    const ferry_step *s = step_of(sf, "test");
    if (s) {
        CHECK_INT(s->params[0].type, FERRY_PARAM_FLAG);
        CHECK_INT(s->params[0].optional, 1);
        CHECK(json_is_true(s->params[1].default_value));
    }
    CHECK_CMD(s, "{\"case-insensitive\": true, \"defaults-to-true\": true}",
              "foo --case-insensitive --defaults-to-true");
    CHECK_CMD(s, "{\"case-insensitive\": false, \"defaults-to-true\": false}", "foo");
    /* an unset flag is off, its default applies: valohai's UI submits both */
    CHECK_CMD(s, NULL, "foo --defaults-to-true");
    CHECK_CMD(s, "{\"case-insensitive\": \"yes\", \"defaults-to-true\": \"0\"}",
              "foo --case-insensitive");
    CHECK_CMD(s, "{\"case-insensitive\": \"TRUE\", \"defaults-to-true\": \"off\"}",
              "foo --case-insensitive");
    CHECK_CMD(s, "{\"case-insensitive\": 1, \"defaults-to-true\": null}", "foo --case-insensitive");
    CHECK_RESOLVE_ERR(s, "{\"case-insensitive\": \"maybe\"}",
                      "parameter 'case-insensitive': maybe is not a flag value");
    ferry_stepfile_free(sf);

    sf = parse_vector("flag-param-pass-as-example.yaml");
    s = step_of(sf, "test");
    /* valohai's own vectors, with the other flags unset (null) */
    CHECK_CMD(s, "{\"case-insensitive\": true, \"nice\": null, \"naughty\": null}",
              "foo --ignore-case");
    CHECK_CMD(s, "{\"case-insensitive\": false, \"nice\": null, \"naughty\": null}",
              "foo --case-sensitive");
    /* with only pass-false-as set, true passes nothing (as in valohai) */
    CHECK_CMD(s, "{\"case-insensitive\": null, \"nice\": true, \"naughty\": true}",
              "foo --behave-nice");
    CHECK_CMD(s, "{\"case-insensitive\": null, \"nice\": false, \"naughty\": true}", "foo");
    /* placeholders work in pass-false-as; unset flags count as false */
    CHECK_CMD(s, NULL, "foo --case-sensitive --naughty=not-naughty");
    ferry_stepfile_free(sf);

    sf = parse_yaml("- step:\n    name: f\n    image: i\n"
                    "    command: run {parameters} v={parameter-value:verbose}\n"
                    "    parameters:\n"
                    "      - {name: verbose, type: flag, pass-as: -v}\n");
    CHECK_CMD(step_of(sf, "f"), "{\"verbose\": true}", "run -v v=True");
    /* valohai doesn't squeeze the blank an empty {parameters} leaves */
    CHECK_CMD(step_of(sf, "f"), "{\"verbose\": false}", "run  v=False");
    ferry_stepfile_free(sf);
}

static void test_optional_and_defaults(void)
{
    ferry_stepfile *sf = parse_vector("optional-default-param.yaml");
    const ferry_step *s = step_of(sf, "test");
    CHECK_CMD(s, "{\"varA\": 666, \"varD\": 1}", "foo --varA=666 --varC=456 --varD=1");
    CHECK_CMD(s, "{\"varB\": 666, \"varD\": \"2\"}",
              "foo --varA=123 --varB=666 --varC=456 --varD=2");
    /* null unsets an optional parameter, default or not */
    CHECK_CMD(s, "{\"varA\": null, \"varD\": 1}", "foo --varC=456 --varD=1");
    CHECK_RESOLVE_ERR(s, NULL, "parameter 'varD': No value supplied");
    CHECK_RESOLVE_ERR(s, "{\"varC\": null, \"varD\": 1}", "parameter 'varC': No value supplied");
    ferry_stepfile_free(sf);
}

static void test_validation_messages(void)
{
    ferry_stepfile *sf = parse_yaml("- step:\n"
                                    "    name: v\n"
                                    "    image: i\n"
                                    "    command: run {parameters}\n"
                                    "    parameters:\n"
                                    "      - {name: epochs, type: integer, min: 1, max: 100, "
                                    "optional: true}\n"
                                    "      - {name: lr, type: float, optional: true}\n"
                                    "      - {name: opt, choices: [adam, sgd], optional: true}\n"
                                    "      - {name: x}\n");
    const ferry_step *s = step_of(sf, "v");
    CHECK_RESOLVE_ERR(s, "{\"x\": 1, \"epochs\": \"5.3\"}",
                      "parameter 'epochs': 5.3 is not an integer");
    CHECK_RESOLVE_ERR(s, "{\"x\": 1, \"epochs\": 5.3}",
                      "parameter 'epochs': 5.3 is not an integer");
    CHECK_RESOLVE_ERR(s, "{\"x\": 1, \"epochs\": \"hello\"}",
                      "parameter 'epochs': hello is not an integer");
    CHECK_RESOLVE_ERR(s, "{\"x\": 1, \"epochs\": true}", "true is not an integer");
    CHECK_RESOLVE_ERR(s, "{\"x\": 1, \"epochs\": \"\"}", "parameter 'epochs': No value supplied");
    CHECK_RESOLVE_ERR(s, "{\"x\": 1, \"epochs\": 0}",
                      "parameter 'epochs': 0 is less than the minimum 1");
    CHECK_RESOLVE_ERR(s, "{\"x\": 1, \"epochs\": \"101\"}",
                      "parameter 'epochs': 101 is greater than the maximum 100");
    CHECK_RESOLVE_ERR(s, "{\"x\": 1, \"lr\": \"hello\"}",
                      "parameter 'lr': hello is not a floating-point number");
    CHECK_RESOLVE_ERR(s, "{\"x\": 1, \"lr\": \"inf\"}", "inf is not a floating-point number");
    CHECK_RESOLVE_ERR(s, "{\"x\": 1, \"lr\": \"0x10\"}", "0x10 is not a floating-point number");
    CHECK_RESOLVE_ERR(s, "{\"x\": 1, \"opt\": \"adamw\"}",
                      "parameter 'opt': 'adamw' is not one of: adam, sgd");
    CHECK_RESOLVE_ERR(s, "{}", "parameter 'x': No value supplied");
    CHECK_RESOLVE_ERR(s, "{\"x\": [\"a\"]}", "parameter 'x': expected a single value, got a list");
    CHECK_RESOLVE_ERR(s, "{\"x\": {\"a\": 1}}", "parameter 'x': expected a value, got a mapping");
    CHECK_RESOLVE_ERR(s, "{\"x\": 1, \"bogus\": 2}",
                      "unknown parameter 'bogus' (known parameters: epochs, lr, opt, x)");
    CHECK_RESOLVE_ERR(s, "[1]", "expected an object");

    /* strings from the command line become typed values, in declaration order */
    json_t *given = json("{\"x\": 7, \"opt\": \"sgd\", \"lr\": \" 1e-3 \", \"epochs\": \"3\"}");
    json_t *resolved = NULL;
    CHECK_INT(ferry_step_resolve_parameters(s, given, &resolved, errbuf, sizeof(errbuf)), 0);
    CHECK(json_integer_value(json_object_get(resolved, "epochs")) == 3);
    CHECK(json_is_real(json_object_get(resolved, "lr")));
    CHECK_STR(json_string_value(json_object_get(resolved, "x")), "7");
    const char *expected_order[] = {"epochs", "lr", "opt", "x"};
    const char *key;
    json_t *value;
    int i = 0;
    json_object_foreach(resolved, key, value)
    {
        if (i < 4)
            CHECK_STR(key, expected_order[i]);
        i++;
    }
    CHECK_INT(i, 4);
    char *cmd = ferry_step_build_command(s, resolved);
    CHECK_STR(cmd, "run --epochs=3 --lr=0.001 --opt=sgd --x=7");
    free(cmd);
    json_decref(resolved);
    json_decref(given);
    CHECK_CMD(s, "{\"x\": \"\", \"epochs\": 3.0, \"lr\": 3}", "run --epochs=3 --lr=3 --x=");
    /* a boolean given to a string parameter is Python's str() of it */
    CHECK_CMD(s, "{\"x\": true, \"lr\": 0.1}", "run --lr=0.1 --x=True");
    CHECK_CMD(s, "{\"x\": false, \"lr\": 0.1}", "run --lr=0.1 --x=False");
    CHECK_CMD(s, "{\"x\": 2.0, \"lr\": 0.1}", "run --lr=0.1 --x=2.0");
    /* floats as Python prints them (issue 18, point 10): valohai builds
     * commands in Python, so 1.0 keeps its .0 and small or large ones go
     * to scientific notation the way repr() writes it */
    CHECK_CMD(s, "{\"x\": 1, \"lr\": 1.0}", "run --lr=1.0 --x=1");
    CHECK_CMD(s, "{\"x\": 1, \"lr\": 1000.0}", "run --lr=1000.0 --x=1");
    CHECK_CMD(s, "{\"x\": 1, \"lr\": 1e-5}", "run --lr=1e-05 --x=1");
    CHECK_CMD(s, "{\"x\": 1, \"lr\": 0.0001}", "run --lr=0.0001 --x=1");
    CHECK_CMD(s, "{\"x\": 1, \"lr\": 2.5e-7}", "run --lr=2.5e-07 --x=1");
    CHECK_CMD(s, "{\"x\": 1, \"lr\": 1e16}", "run --lr=1e+16 --x=1");
    CHECK_CMD(s, "{\"x\": 1, \"lr\": 123456.789}", "run --lr=123456.789 --x=1");
    CHECK_CMD(s, "{\"x\": 1, \"lr\": -0.5}", "run --lr=-0.5 --x=1");
    CHECK_CMD(s, "{\"x\": 1, \"lr\": \"2\"}", "run --lr=2.0 --x=1");
    ferry_stepfile_free(sf);

    /* a number PyYAML leaves a string (an exponent without a '.' before it
     * or a sign after it) stays as written in the command, as valohai-yaml
     * passes it on; the value is still the number, and one given by a user
     * is printed as Python prints it */
    sf = parse_yaml("- step:\n    name: t\n    image: i\n    command: run {parameters}\n"
                    "    parameters:\n"
                    "      - {name: a, type: float, default: 1e-5}\n"
                    "      - {name: b, type: float, default: 2.5e3}\n"
                    "      - {name: c, type: float, default: 1.0e-5}\n"
                    "      - {name: d, default: 1e-5}\n"
                    "      - {name: e, type: float, default: 1E-05}\n");
    s = step_of(sf, "t");
    if (s) {
        CHECK(json_real_value(s->params[0].default_value) == 1e-5);
        CHECK_STR(s->params[0].default_text, "1e-5");
        CHECK(s->params[2].default_text == NULL); /* PyYAML's float: repr() */
        CHECK_CMD(s, NULL, "run --a=1e-5 --b=2.5e3 --c=1e-05 --d=1e-5 --e=1E-05");
        CHECK_CMD(s, "{\"a\": 0.001, \"b\": \"2400\"}",
                  "run --a=0.001 --b=2400.0 --c=1e-05 --d=1e-5 --e=1E-05");
    }
    ferry_stepfile_free(sf);

    /* {parameter-value:NAME} of a multiple parameter is valohai-yaml's
     * quote(str(value)): the list as Python prints it */
    sf = parse_yaml("- step:\n    name: m\n    image: i\n"
                    "    command: run {parameter-value:n} {parameter-value:w}\n"
                    "    parameters:\n"
                    "      - {name: n, type: integer, multiple: separate, default: [1000, 500]}\n"
                    "      - {name: w, multiple: repeat, default: [a, \"it's\"]}\n");
    s = step_of(sf, "m");
    if (s)
        CHECK_CMD(s, NULL, "run '[1000, 500]' '['\"'\"'a'\"'\"', \"it'\"'\"'s\"]'");
    ferry_stepfile_free(sf);

    sf = parse_yaml("- step:\n    name: none\n    image: i\n    command: run\n");
    CHECK_RESOLVE_ERR(step_of(sf, "none"), "{\"a\": 1}",
                      "unknown parameter 'a' (this step has no parameters)");
    ferry_stepfile_free(sf);
}

/* Step files that must not parse, and what the message must say: each of
 * `expect` (in that order, where `in_order` is set) and, where set, `starts`
 * at its very start. */
static const struct {
    const char *yaml;
    const char *expect[3];
    int in_order;
    const char *starts;
} schema_errors[] = {
    {"- step:\n"
     "    name: train\n"
     "    image: python\n"
     "    command: run\n"
     "    parameters:\n"
     "      - name: epochs\n"
     "        type: int32\n",
     .expect =
         {"ferry.yaml:7: step 'train': parameter 'epochs': unknown type 'int32' (expected string, "
          "integer, float, flag)"}},
    /* in file order, one a line */
    {"- step:\n    name: train\n    imgae: python\n    command: run\n",
     .expect = {"ferry.yaml:1: step 'train': missing required 'image'", "\n",
                "ferry.yaml:3: step 'train': unknown key 'imgae' (did you mean 'image'?)"},
     .in_order = 1},
    {"- step:\n    image: python\n    command: run\n",
     .expect = {"ferry.yaml:1: step at line 1: missing required 'name'"}},
    {"- step:\n    name: x\n    image: python\n",
     .expect = {"ferry.yaml:1: step 'x': missing required 'command'"}},
    {"- step:\n    name: x\n    image: i\n    command: [echo, on]\n",
     .expect = {"ferry.yaml:4: step 'x': command: expected a string, got a boolean (on); put it in "
                "quotes"}},
    {"- step:\n    name: x\n    image: 3.10\n    command: run\n",
     .expect = {"image: expected a string, got a number (3.10); put it in quotes"}},
    {"step:\n  name: x\n", .expect = {"ferry.yaml:1: expected a list of items like '- step: ...' "
                                      "at the top level, got a mapping"}},
    {"", .expect = {"ferry.yaml:1: the file is empty"}},
    {"# only a comment\n", .expect = {"the file is empty"}},
    {"[]\n", .expect = {"no steps"}},
    {"- stepp:\n    name: x\n", .expect = {"ferry.yaml:1: unknown item 'stepp'"}},
    {"- step: hello\n",
     .expect = {"ferry.yaml:1: step: expected a mapping of the step's properties, got a string"}},
    /* malformed YAML: libyaml's problem, at its line */
    {"- step:\n    name: \"unclosed\n    image: x\n",
     .expect = {"ferry.yaml:4: found unexpected end of stream",
                "while scanning a quoted scalar at line 2"}},
    {"- step: {name: a\n", .starts = "ferry.yaml:2: "},
    {"- step:\n    name: a\n---\n- step:\n    name: b\n",
     .expect = {"ferry.yaml:4: a step file holds one YAML document"}},
    /* duplicates (a step name defined twice is not an error of the file:
     * test_duplicate_step) */
    {"- step:\n    name: a\n    image: i\n    image: j\n    command: x\n",
     .expect = {"ferry.yaml:4: step 'a': duplicate key 'image' (also on line 3)"}},
    {"- step:\n    name: a\n    image: i\n    command: x\n    parameters:\n"
     "      - name: p\n      - name: p\n",
     .expect = {"ferry.yaml:7: step 'a': parameter 'p' is defined twice"}},
    /* parameters (a default that is not a valid value is not an error of
     * the file: test_bad_default) */
    {"- step:\n    name: a\n    image: i\n    command: x\n    parameters:\n"
     "      - {name: v, default: [1, 2]}\n",
     .expect = {"parameter 'v': default: a list needs 'multiple: repeat' or 'multiple: separate'"}},
    {"- step:\n    name: a\n    image: i\n    command: x\n    parameters:\n"
     "      - {name: v, type: flag, multiple: repeat}\n",
     .expect = {"parameter 'v': a flag can't take multiple values"}},
    {"- step:\n    name: a\n    image: i\n    command: x\n    parameters:\n"
     "      - {name: v, multiple: sometimes}\n",
     .expect = {"unknown multiple 'sometimes' (expected none, repeat, separate)"}},
    {"- step:\n    name: a\n    image: i\n    command: x\n    parameters:\n"
     "      - {name: v, type: integer, min: low}\n",
     .expect = {"parameter 'v': min: expected a number, got a string ('low')"}},
    {"- step:\n    name: a\n    image: i\n    command: x\n    parameters:\n"
     "      - {name: v, type: integer, choices: [1, two]}\n",
     .expect = {"parameter 'v': choices: two is not an integer"}},
    {"- step:\n    name: a\n    image: i\n    command: x\n    parameters:\n"
     "      - {name: v, optional: maybe}\n",
     .expect = {"parameter 'v': optional: expected true or false, got a string ('maybe')"}},
    {"- step:\n    name: a\n    image: i\n    command: x\n    parameters:\n"
     "      - {name: v, pas-as: x}\n",
     .expect = {"parameter 'v': unknown key 'pas-as' (did you mean 'pass-as'?)"}},
    {"- step:\n    name: a\n    image: i\n    command: x\n    parameters: [v]\n",
     .expect = {"step 'a': parameter #1: expected a mapping with at least 'name'"}},
    /* inputs can't point outside inputs/ */
    {"- step:\n    name: a\n    image: i\n    command: x\n    inputs:\n"
     "      - name: ../etc\n",
     .expect = {"input '../etc': name can't be empty, '.', '..' or contain '/'"}},
    {"- step:\n    name: a\n    image: i\n    command: x\n    inputs:\n"
     "      - {name: m, filename: ../../x}\n",
     .expect = {"input 'm': filename '../../x' must be a plain file name"}},
    {"- step:\n    name: a\n    image: i\n    command: x\n    inputs:\n"
     "      - {name: m, keep-directories: some}\n",
     .expect = {"unknown keep-directories 'some' (expected none, full, suffix)"}},
    /* durations and other typed keys */
    {"- step:\n    name: a\n    image: i\n    command: x\n    time-limit: soon\n",
     .expect = {"ferry.yaml:5: step 'a': time-limit: can't read a string ('soon') as a duration"}},
    {"- step:\n    name: a\n    image: i\n    command: x\n"
     "    autorestart: true\n",
     .expect = {"autorestart needs 'environment'"}},
    {"- step:\n    name: a\n    image: i\n    command: x\n"
     "    resources: {devices: {nvidia.com/gpu: 0}}\n",
     .expect = {"resources: devices: nvidia.com/gpu: must be at least 1"}},
    {"- step:\n    name: a\n    image: i\n    command: x\n"
     "    stop-condition: \"metadata.loss < \"\n",
     .expect = {"unexpected end of expression"}},
    /* nested aliases can't blow up memory: conversion has a budget */
    {"- step:\n    name: a\n    image: i\n    command: x\n    parameters:\n"
     "      - name: p\n        multiple: repeat\n        default:\n"
     "          - &a [x, x, x, x, x, x, x, x, x, x]\n"
     "          - &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
     "          - &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
     "          - &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
     "          - &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
     "          - &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
     "          - &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]\n",
     .expect = {"default: too deeply nested or too large"}},
};

static void test_schema_errors(void)
{
    for (size_t i = 0; i < sizeof(schema_errors) / sizeof(schema_errors[0]); i++) {
        int failures = ferry_test_failures;
        const char *e = yaml_error(schema_errors[i].yaml), *from = e;
        for (size_t j = 0; j < 3 && schema_errors[i].expect[j]; j++) {
            const char *needle = schema_errors[i].expect[j];
            CHECK_CONTAINS(from, needle);
            if (schema_errors[i].in_order && strstr(from, needle))
                from = strstr(from, needle) + strlen(needle);
        }
        const char *starts = schema_errors[i].starts;
        if (starts)
            CHECK(strncmp(e, starts, strlen(starts)) == 0);
        if (ferry_test_failures != failures)
            fprintf(stderr, "schema_errors[%zu]: %s\n", i, schema_errors[i].yaml);
    }
}

static void test_expressions_that_are_fine(void)
{
    ferry_stepfile *sf = parse_yaml(
        "- step:\n    name: a\n    image: i\n    command: x\n"
        "    stop-condition: \"metadata.accuracy >= .95 and not (loss > 1e-3 or epoch in [1, "
        "2])\"\n"
        "- step:\n    name: b\n    image: i\n    command: x\n"
        "    stop-condition: \"x is not None and abs(y - 2) ** 2 < 'z' if q else -w // 3 != 4\"\n");
    CHECK(sf && sf->n_steps == 2);
    ferry_stepfile_free(sf);
}

static void test_yaml_details(void)
{
    /* anchors and merge keys, as PyYAML reads them */
    ferry_stepfile *sf = parse_yaml("- step: &base\n"
                                    "    name: a\n"
                                    "    image: busybox\n"
                                    "    command: echo a\n"
                                    "- step:\n"
                                    "    <<: *base\n"
                                    "    name: b\n"
                                    "    time-limit: 0x10\n");
    const ferry_step *b = step_of(sf, "b");
    if (b) {
        CHECK_STR(b->image, "busybox");
        CHECK_STR(b->commands[0], "echo a");
        CHECK_INT(b->line, 5);
        CHECK_INT(b->time_limit_s, 16);
    }
    ferry_stepfile_free(sf);

    /* YAML 1.1 scalars: a string parameter's default of 5 is "5"; octal */
    sf = parse_yaml("- step:\n    name: a\n    image: i\n    command: x\n    parameters:\n"
                    "      - {name: s, default: 5}\n"
                    "      - {name: o, type: integer, default: 0755}\n"
                    "      - {name: u, type: integer, default: 1_000}\n"
                    "      - {name: f, type: float, default: 1e-3}\n"
                    "      - {name: q, default: '0755'}\n"
                    "      - {name: b, default: yes}\n"
                    "      - {name: g, default: 2.50}\n");
    const ferry_step *s = step_of(sf, "a");
    if (s) {
        CHECK_STR(json_string_value(s->params[0].default_value), "5");
        CHECK_INT(json_integer_value(s->params[1].default_value), 493);
        CHECK_INT(json_integer_value(s->params[2].default_value), 1000);
        CHECK(json_real_value(s->params[3].default_value) == 0.001);
        CHECK_STR(json_string_value(s->params[4].default_value), "0755");
        /* PyYAML reads yes as True and 2.50 as 2.5: str() of them */
        CHECK_STR(json_string_value(s->params[5].default_value), "True");
        CHECK_STR(json_string_value(s->params[6].default_value), "2.5");
    }
    ferry_stepfile_free(sf);

    /* a file name decides valohai mode, not the content */
    const char *yaml = "- step: {name: a, image: i, command: x}\n";
    CHECK_INT(ferry_stepfile_parse_buffer("some/dir/valohai.yaml", yaml, strlen(yaml), &sf, errbuf,
                                          sizeof(errbuf)),
              0);
    CHECK(sf && sf->valohai == 1);
    CHECK(sf && strcmp(sf->path, "some/dir/valohai.yaml") == 0);
    ferry_stepfile_free(sf);
}

/* Issue 25 #2: numbers too long for the float scanner's buffer. Every write
 * of the scanner (digits, '.', 'e', the exponent's sign) is bounded; a number
 * longer than 78 characters is a string, one that fits is still a number. */
static void test_long_numbers(void)
{
    static const struct {
        const char *sign;
        size_t digits;
        const char *tail;
        int number;
    } cases[] = {
        {"", 79, ".e+1", 0}, {"", 79, ".E-1", 0},   {"", 78, ".e+1", 0},  {"", 77, ".e1", 0},
        {"-", 78, ".e1", 0}, {"", 79, ".5e+10", 0}, {"", 150, ".e+1", 0}, {"", 78, ".", 0},
        {"", 0, ".", 0},     {"", 70, ".5e+3", 1},  {"-", 70, ".e-3", 1}, {"", 76, ".e", 0},
        {"", 77, ".", 1},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char text[200], yaml[400];
        size_t n = strlen(cases[i].sign), d = cases[i].digits;
        memcpy(text, cases[i].sign, n);
        memset(text + n, '1', d);
        snprintf(text + n + d, sizeof(text) - n - d, "%s", cases[i].tail);
        int failures = ferry_test_failures;
        if (cases[i].number) {
            snprintf(yaml, sizeof(yaml), "- step:\n    name: a\n    image: %s\n    command: x\n",
                     text);
            CHECK_CONTAINS(yaml_error(yaml), "image: expected a string, got a number");
        } else {
            /* a parameter's default: the path the overflow was found on */
            snprintf(yaml, sizeof(yaml),
                     "- step:\n    name: a\n    image: i\n    command: x\n    parameters:\n"
                     "      - {name: p, default: %s}\n",
                     text);
            ferry_stepfile *sf = parse_yaml(yaml);
            const ferry_step *s = step_of(sf, "a");
            if (s)
                CHECK_STR(json_string_value(s->params[0].default_value), text);
            ferry_stepfile_free(sf);
        }
        if (ferry_test_failures != failures)
            fprintf(stderr, "long_numbers[%zu]: %s\n", i, text);
    }
}

static void test_find_and_names(void)
{
    ferry_stepfile *sf = parse_vector("pipeline-example.yaml");
    CHECK(sf && sf->n_steps == 3 && sf->n_unsupported == 5);
    CHECK(ferry_stepfile_find(sf, "Train model") != NULL);
    CHECK(ferry_stepfile_find(sf, "train model") == NULL);
    CHECK(ferry_stepfile_find(sf, NULL) == NULL);
    char *names = ferry_stepfile_step_names(sf);
    CHECK_STR(names, "known steps: Batch feature extraction, Train model, Test model");
    free(names);
    const ferry_step *t = step_of(sf, "Train model");
    if (t)
        CHECK_INT(t->no_output_timeout_s, 6 * 3600);
    ferry_stepfile_free(sf);

    names = ferry_stepfile_step_names(NULL);
    CHECK_STR(names, "known steps: (none)");
    free(names);

    sf = NULL;
    int rc = ferry_stepfile_parse_file("/nonexistent/ferry.yaml", &sf, errbuf, sizeof(errbuf));
    CHECK_INT(rc, FERRY_ENOENT);
    CHECK_CONTAINS(errbuf, "/nonexistent/ferry.yaml");
    CHECK(sf == NULL);
}

static void test_inputs(void)
{
    ferry_stepfile *sf = parse_vector("example3.yaml");
    const ferry_step *s = step_of(sf, "batch inference");
    json_t *resolved = NULL, *given;
    if (!s)
        goto out;
    CHECK_STR(s->environment, "g2.superduperlarge");
    CHECK_INT(s->n_inputs, 2);
    CHECK_INT(s->inputs[1].n_default_urls, 2);
    CHECK_INT(ferry_step_resolve_inputs(s, NULL, &resolved, errbuf, sizeof(errbuf)), 0);
    CHECK_STR(json_string_value(json_array_get(json_object_get(resolved, "model"), 0)),
              "s3://foo/model.pb");
    CHECK_INT(json_array_size(json_object_get(resolved, "images")), 2);
    json_decref(resolved);
    /* given URLs replace the defaults */
    given = json("{\"images\": \"s3://x/y\", \"model\": [\"s3://a\", \"s3://b\", \"\"]}");
    CHECK_INT(ferry_step_resolve_inputs(s, given, &resolved, errbuf, sizeof(errbuf)), 0);
    CHECK_INT(json_array_size(json_object_get(resolved, "images")), 1);
    CHECK_INT(json_array_size(json_object_get(resolved, "model")), 2);
    json_decref(resolved);
    json_decref(given);
    ferry_stepfile_free(sf);

    sf = parse_vector("input-extras.yaml");
    s = step_of(sf, "example");
    if (s) {
        CHECK_STR(s->inputs[0].filename, "model.pb");
        CHECK(s->inputs[1].filename == NULL);
        CHECK_STR(s->inputs[1].default_urls[0], "s3://secret-bucket/foos/**.quux");
    }
    ferry_stepfile_free(sf);

    sf = parse_vector("example2.yaml");
    s = step_of(sf, "run training");
    CHECK_INT(ferry_step_resolve_inputs(s, NULL, &resolved, errbuf, sizeof(errbuf)), 0);
    CHECK_INT(json_object_size(resolved), 4); /* the optional extra-data is left out */
    CHECK(json_object_get(resolved, "extra-data") == NULL);
    json_decref(resolved);
    given = json("{\"extra-data\": [\"https://example.com/x.csv\"]}");
    CHECK_INT(ferry_step_resolve_inputs(s, given, &resolved, errbuf, sizeof(errbuf)), 0);
    CHECK_INT(json_object_size(resolved), 5);
    json_decref(resolved);
    json_decref(given);
    ferry_stepfile_free(sf);

    sf = parse_vector("keep-order.yaml");
    s = step_of(sf, "sing a melody");
    CHECK_INT(ferry_step_resolve_inputs(s, NULL, &resolved, errbuf, sizeof(errbuf)), FERRY_EINVAL);
    CHECK(resolved == NULL);
    CHECK_CONTAINS(errbuf, "input 'drums': No URL supplied");
    given = json("{\"piano\": \"s3://p\"}");
    CHECK(ferry_step_resolve_inputs(s, given, &resolved, errbuf, sizeof(errbuf)) < 0);
    CHECK_CONTAINS(errbuf, "unknown input 'piano' (known inputs: drums, bass, guitar, vocals)");
    json_decref(given);
    given = json("{\"drums\": [], \"bass\": \"b\", \"guitar\": \"g\", \"vocals\": \"v\"}");
    CHECK(ferry_step_resolve_inputs(s, given, &resolved, errbuf, sizeof(errbuf)) < 0);
    CHECK_CONTAINS(errbuf, "input 'drums': No URL supplied");
    json_decref(given);
    given = json("{\"drums\": 5}");
    CHECK(ferry_step_resolve_inputs(s, given, &resolved, errbuf, sizeof(errbuf)) < 0);
    CHECK_CONTAINS(errbuf, "input 'drums': expected a URL or a list of URLs");
    json_decref(given);
    /* parameters keep their order too */
    CHECK_CMD(s, "{\"ti\": 7, \"la\": 6, \"so\": 5, \"fa\": 4, \"mi\": 3, \"re\": 2, \"do\": 1}",
              "echo --do=1 --re=2 --mi=3 --fa=4 --so=5 --la=6 --ti=7");
out:
    ferry_stepfile_free(sf);
}

static void test_environment_variables(void)
{
    ferry_stepfile *sf = parse_vector("example3.yaml");
    const ferry_step *s = step_of(sf, "batch inference");
    json_t *resolved = NULL, *given;
    if (!s)
        goto out;
    CHECK_INT(s->n_env, 2);
    CHECK_STR(s->env[0].name, "foo");
    CHECK_STR(s->env[0].default_value, "bar");
    CHECK_INT(s->env[0].optional, 1); /* optional unless said otherwise */
    CHECK_STR(s->env[1].default_value, "850");
    CHECK_INT(s->env[1].optional, 0);
    CHECK_INT(ferry_step_resolve_env(s, NULL, &resolved, errbuf, sizeof(errbuf)), 0);
    CHECK_STR(json_string_value(json_object_get(resolved, "foo")), "bar");
    CHECK_STR(json_string_value(json_object_get(resolved, "baz")), "850");
    json_decref(resolved);

    given = json("{\"foo\": null, \"EXTRA\": 5, \"baz\": \"secret-value\"}");
    CHECK_INT(ferry_step_resolve_env(s, given, &resolved, errbuf, sizeof(errbuf)), 0);
    CHECK(json_object_get(resolved, "foo") == NULL);
    CHECK_STR(json_string_value(json_object_get(resolved, "EXTRA")), "5");
    CHECK_STR(json_string_value(json_object_get(resolved, "baz")), "secret-value");
    json_decref(resolved);
    json_decref(given);

    given = json("{\"baz\": null}");
    CHECK(ferry_step_resolve_env(s, given, &resolved, errbuf, sizeof(errbuf)) < 0);
    CHECK_CONTAINS(errbuf, "environment variable 'baz': No value supplied");
    json_decref(given);
    given = json("{\"A=B\": \"x\"}");
    CHECK(ferry_step_resolve_env(s, given, &resolved, errbuf, sizeof(errbuf)) < 0);
    CHECK_CONTAINS(errbuf, "environment variable name 'A=B' is not valid");
    json_decref(given);
    given = json("{\"TOKEN\": [\"hunter2\"]}");
    CHECK(ferry_step_resolve_env(s, given, &resolved, errbuf, sizeof(errbuf)) < 0);
    CHECK_CONTAINS(errbuf, "environment variable 'TOKEN': expected a string");
    CHECK(strstr(errbuf, "hunter2") == NULL); /* values may be secrets */
    json_decref(given);
    ferry_stepfile_free(sf);

    sf = parse_vector("pipeline-edge-types-example.yaml");
    s = step_of(sf, "Model training");
    if (s) {
        CHECK_STR(s->env[0].name, "DATA_VERSION");
        CHECK(s->env[0].default_value == NULL);
        CHECK_STR(s->env[1].default_value, "standard");
    }
out:
    ferry_stepfile_free(sf);
}

static void test_durations(void)
{
    static const struct {
        const char *text;
        int64_t seconds;
    } ok[] = {
        {"60 minutes", 3600},
        {"60 minutes  ", 3600},
        {"1h10m", 4200},
        {"2w", 1209600},
        {"1.5d", 129600},
        {"90", 90},
        {"", 0},
        {"   ", 0},
        {"1h 30m 5s", 5405},
        {"48h", 172800},
        {"2 hours", 7200},
        {"1H", 3600},
        {"0.2s", 1},
        {"1h, 30m", 5400},
        {"86400", 86400},
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        int64_t secs = -1;
        int rc = ferry_duration_parse(ok[i].text, &secs);
        if (rc != 0 || secs != ok[i].seconds)
            fprintf(stderr, "duration '%s'\n", ok[i].text);
        CHECK_INT(rc, 0);
        CHECK_INT(secs, ok[i].seconds);
    }
    static const char *const bad[] = {"soon", "5y", "1..5h", "-5", "1h!", ".", "1e5"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int64_t secs = -1;
        int rc = ferry_duration_parse(bad[i], &secs);
        if (rc != FERRY_EINVAL)
            fprintf(stderr, "duration '%s' should be refused\n", bad[i]);
        CHECK_INT(rc, FERRY_EINVAL);
    }
    int64_t secs = -1;
    CHECK_INT(ferry_duration_parse(NULL, &secs), 0);
    CHECK_INT(secs, 0);

    ferry_stepfile *sf = parse_vector("timeouts-example.yaml");
    const ferry_step *s = step_of(sf, "short-time-limit");
    if (s) {
        CHECK_INT(s->time_limit_s, 300);
        CHECK_INT(s->no_output_timeout_s, 0);
    }
    s = step_of(sf, "big-no-output-timeout");
    if (s) {
        CHECK_INT(s->time_limit_s, 0);
        CHECK_INT(s->no_output_timeout_s, 86400);
    }
    s = step_of(sf, "human-readable-time-limit");
    if (s) {
        CHECK_INT(s->time_limit_s, 5405);
        CHECK_INT(s->no_output_timeout_s, 2 * 86400);
    }
    ferry_stepfile_free(sf);
}

static void test_shell_quote(void)
{
    static const char *const cases[][2] = {
        {"", "''"},
        {"abc", "abc"},
        {"--x=1,2/3.4:5@6%7+8", "--x=1,2/3.4:5@6%7+8"},
        {"a b", "'a b'"},
        {"it's", "'it'\"'\"'s'"},
        {"$HOME", "'$HOME'"},
        {"héllo", "'héllo'"},
        {"a\nb", "'a\nb'"},
        {"*", "'*'"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *q = ferry_shell_quote(cases[i][0]);
        CHECK_STR(q, cases[i][1]);
        free(q);
    }
    char *q = ferry_shell_quote(NULL);
    CHECK_STR(q, "''");
    free(q);
}

/* A step name defined twice: valohai-yaml only warns, so the file is
 * usable and its other steps run; the name itself says why it cannot run
 * (issue 18, point 8). */
static void test_duplicate_step(void)
{
    ferry_stepfile *sf = parse_yaml("- step: {name: a, image: i, command: x}\n"
                                    "- step: {name: b, image: i, command: z}\n"
                                    "- step: {name: a, image: i, command: y}\n");
    CHECK(sf != NULL);
    if (sf == NULL)
        return;
    const ferry_step *a = step_of(sf, "a"), *b = step_of(sf, "b");
    CHECK(b && b->broken == NULL);
    CHECK(a && a->broken);
    if (a && a->broken)
        CHECK_STR(a->broken, "ferry.yaml:3: step 'a' is defined twice (lines 1 and 3)");
    CHECK(sf->steps[2].broken != NULL);
    ferry_stepfile_free(sf);
}

/* What valohai-yaml only warns of (issue 18, point 8): a default outside
 * min/max, of the wrong type or not a choice leaves the file usable; a run
 * that gives a value works, one that needs the default is refused, naming
 * the file, the line and why. */
static void test_bad_default(void)
{
    ferry_stepfile *sf =
        parse_yaml("- step:\n    name: a\n    image: i\n    command: run {parameters}\n"
                   "    parameters:\n"
                   "      - name: zoom\n        type: integer\n        default: zoom\n"
                   "      - {name: v, type: integer, max: 100, default: 1337}\n"
                   "      - {name: c, choices: [x, y], default: z, optional: true}\n"
                   "- step:\n    name: b\n    image: i\n    command: fine\n");
    CHECK(sf != NULL);
    const ferry_step *s = step_of(sf, "a");
    if (s) {
        CHECK_RESOLVE_ERR(s, "{\"v\": 5, \"c\": \"x\"}",
                          "parameter 'zoom' needs a value: its default is not usable "
                          "(ferry.yaml:8: step 'a': parameter 'zoom': default: zoom is not an "
                          "integer)");
        CHECK_RESOLVE_ERR(s, "{\"zoom\": 1, \"c\": \"x\"}",
                          "ferry.yaml:9: step 'a': parameter 'v': default: 1337 is greater than "
                          "the maximum 100");
        CHECK_RESOLVE_ERR(s, "{\"zoom\": 1, \"v\": 2}", "parameter 'c' needs a value");
        CHECK_CMD(s, "{\"zoom\": 1, \"v\": 2, \"c\": \"y\"}", "run --zoom=1 --v=2 --c=y");
    }
    CHECK(step_of(sf, "b") != NULL);
    ferry_stepfile_free(sf);
}

/* A pipeline or task naming a step that does not exist is what valohai-yaml
 * only warns of (issue 18, point 8): the file is usable, its steps run, and
 * that pipeline or task is kept with why it cannot run. With errors of the
 * file, the warning is listed with them. */
static void test_broken_flows(void)
{
    ferry_stepfile *sf = parse_yaml("- step:\n    name: train\n    image: i\n    command: x\n"
                                    "- pipeline:\n    name: p\n    nodes:\n"
                                    "      - {name: a, type: execution, step: train}\n"
                                    "      - {name: b, type: execution, step: trian}\n"
                                    "- task:\n    name: sweep\n    step: nope\n"
                                    "- pipeline:\n    name: fine\n    nodes:\n"
                                    "      - {name: a, type: execution, step: train}\n");
    CHECK(sf != NULL);
    if (sf) {
        CHECK(step_of(sf, "train") != NULL);
        CHECK_INT((int)sf->n_flows, 3);
        CHECK_STR(sf->flows[0].kind, "pipeline");
        CHECK_STR(sf->flows[0].name, "p");
        CHECK_CONTAINS(sf->flows[0].broken,
                       "ferry.yaml:9: pipeline 'p': node 'b': step 'trian' does not exist");
        CHECK_STR(sf->flows[1].kind, "task");
        CHECK_STR(sf->flows[1].name, "sweep");
        CHECK_CONTAINS(sf->flows[1].broken, "task 'sweep': step 'nope' does not exist");
        CHECK(sf->flows[2].broken == NULL);
    }
    ferry_stepfile_free(sf);
    /* listed with a real error */
    const char *bad = "- step:\n    name: train\n    image: i\n    command: x\n"
                      "- pipeline:\n    name: p\n    nodes:\n"
                      "      - {name: b, type: execution, step: trian}\n"
                      "      - {name: c, type: nonsense}\n";
    CHECK_INT(
        ferry_stepfile_parse_buffer("ferry.yaml", bad, strlen(bad), &sf, errbuf, sizeof(errbuf)),
        FERRY_EINVAL);
    CHECK_CONTAINS(errbuf, "step 'trian' does not exist");
    CHECK_CONTAINS(errbuf, "nonsense");
}

/* Keys accepted but not acted on are listed, with their lines, for one
 * warning at submission (issue 18, point 8); keys that only describe and
 * the ones that act are not. */
static void test_unused_keys(void)
{
    ferry_stepfile *sf =
        parse_yaml("- step:\n    name: a\n    image: i\n    command: x\n"
                   "    description: only words\n"
                   "    cache-volumes: [/cache]\n"
                   "    resources:\n      cpu: {max: 2}\n"
                   "      devices: {nvidia.com/gpu: 1}\n"
                   "    inputs:\n      - name: data\n        keep-directories: full\n"
                   "    stop-condition: loss < 1\n"
                   "- step:\n    name: b\n    image: i\n    command: x\n"
                   "    description: nothing unused\n");
    const ferry_step *s = step_of(sf, "a");
    if (s)
        CHECK_STR(s->unused_keys, "input 'data': keep-directories (line 12), cache-volumes "
                                  "(line 6), resources: devices (line 9)");
    s = step_of(sf, "b");
    if (s)
        CHECK(s->unused_keys == NULL);
    ferry_stepfile_free(sf);
}

/* Stop-conditions evaluated against the latest metadata (issue 18, point
 * 9): Python's operators and their precedence, chained comparisons, `in`,
 * metadata.KEY and parameter.NAME; a key with no value yet (where Python
 * would raise) does not hold; a bad expression is an error. */
static void test_condition_eval(void)
{
    json_t *md = json("{\"loss\": 0.05, \"epoch\": 3, \"accuracy\": 0.97, \"phase\": \"train\","
                      " \"done\": false}");
    json_t *params = json("{\"target\": 0.95, \"mode\": \"fast\"}");
    struct {
        const char *expr;
        int want;
    } cases[] = {
        {"loss < 0.1", 1},
        {"loss < 0.01", 0},
        {"metadata.loss < 0.1", 1},
        {"metadata.accuracy >= parameter.target", 1},
        {"accuracy >= parameters.target and mode == 'fast'", 0}, /* mode: no metadata key */
        {"parameter.mode == 'fast'", 1},
        {"epoch >= 3 and loss < 0.1", 1},
        {"epoch > 3 or loss < 0.1", 1},
        {"not (epoch > 3)", 1},
        {"not epoch > 3", 1},
        {"0 < loss < 0.1", 1},
        {"0 < loss < 0.01", 0},
        {"epoch in [1, 2, 3]", 1},
        {"epoch not in [1, 2]", 1},
        {"phase == \"train\"", 1},
        {"phase != 'train'", 0},
        {"'rai' in phase", 1},
        {"phase < 'z'", 1},
        {"done", 0},
        {"done == False", 1},
        {"not done", 1},
        {"epoch * 2 + 1 == 7", 1},
        {"epoch ** 2 == 9 and epoch // 2 == 1 and epoch % 2 == 1", 1},
        {"-loss < 0", 1},
        {"~epoch == -4", 1},
        {"~loss", 0},         /* ~ of a float: TypeError */
        {"~1e300 < 0", 0},    /* no integer a double holds exactly */
        {"epoch / 0 > 1", 0}, /* ZeroDivisionError */
        {"missing > 1", 0},
        {"not (missing > 1)", 0},
        {"missing > 1 or loss < 0.1", 0}, /* Python raises on the left */
        {"loss < 0.1 or missing > 1", 1}, /* ... but not here */
        {"phase > 1", 0},                 /* TypeError */
        {"1 if loss < 0.1 else 0", 1},
        {"max(loss) > 0", 0}, /* calls: not evaluated */
        {"1_000 > 999", 1},
        {"1e-3 > loss", 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char why[160] = "";
        int got = ferry_condition_eval(cases[i].expr, md, params, why, sizeof(why));
        if (got != cases[i].want)
            fprintf(stderr, "condition %s: got %d (%s), expected %d\n", cases[i].expr, got, why,
                    cases[i].want);
        CHECK_INT(got, cases[i].want);
    }
    char why[160] = "";
    CHECK_INT(ferry_condition_eval("loss <", md, params, why, sizeof(why)), FERRY_EINVAL);
    CHECK_CONTAINS(why, "unexpected end");
    CHECK_INT(ferry_condition_eval("loss < 1", NULL, NULL, why, sizeof(why)), 0);
    json_decref(md);
    json_decref(params);
}

int main(void)
{
    test_every_example_parses();
    test_every_error_example_fails_clearly();
    test_parse_example1();
    test_command_quoting_and_order();
    test_parameter_placeholders();
    test_placeholder_edge_cases();
    test_shebang_and_joining();
    test_multiple();
    test_flags();
    test_optional_and_defaults();
    test_validation_messages();
    test_schema_errors();
    test_expressions_that_are_fine();
    test_yaml_details();
    test_long_numbers();
    test_find_and_names();
    test_inputs();
    test_environment_variables();
    test_durations();
    test_shell_quote();
    test_duplicate_step();
    test_condition_eval();
    test_bad_default();
    test_broken_flows();
    test_unused_keys();
    TEST_MAIN_END();
}
