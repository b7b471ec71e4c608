/* A step's resources, mounts and environment-variable-groups act (issue
 * 18, point 9): the step file keeps them, ferryd's config reads
 * allowed_mounts and environment_variable_groups (errors naming the file
 * and the line), and local-docker's create body carries the limits and
 * the binds. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "body.h"
#include "config.h"
#include "config_fixture.h"
#include "stepfile.h"
#include "test.h"

static ferry_stepfile *parse(const char *yaml, char *err, size_t cap)
{
    ferry_stepfile *sf = NULL;
    err[0] = '\0';
    if (ferry_stepfile_parse_buffer("valohai.yaml", yaml, strlen(yaml), &sf, err, cap) < 0)
        return NULL;
    return sf;
}

static void test_step_resources(void)
{
    char err[1024];
    ferry_stepfile *sf = parse("- step:\n"
                               "    name: both\n"
                               "    image: busybox\n"
                               "    command: echo\n"
                               "    resources:\n"
                               "      cpu: {min: 0.1, max: 1.5}\n"
                               "      memory: {min: 50, max: 100}\n"
                               "      devices: {nvidia.com/gpu: 1}\n"
                               "- step:\n"
                               "    name: min-only\n"
                               "    image: busybox\n"
                               "    command: echo\n"
                               "    resources:\n"
                               "      cpu: {min: 2}\n"
                               "      memory: {min: 64.5}\n"
                               "- step:\n"
                               "    name: none\n"
                               "    image: busybox\n"
                               "    command: echo\n",
                               err, sizeof(err));
    CHECK(sf != NULL);
    if (sf == NULL) {
        fprintf(stderr, "%s\n", err);
        return;
    }
    const ferry_step *s = ferry_stepfile_find(sf, "both");
    CHECK(s->cpu_limit == 1.5);
    CHECK_INT(s->memory_limit_mb, 100);
    s = ferry_stepfile_find(sf, "min-only");
    CHECK(s->cpu_limit == 2);
    CHECK_INT(s->memory_limit_mb, 65); /* a fraction of a MB rounds up */
    s = ferry_stepfile_find(sf, "none");
    CHECK(s->cpu_limit == 0);
    CHECK_INT(s->memory_limit_mb, 0);
    ferry_stepfile_free(sf);
}

static void test_step_mounts(void)
{
    char err[1024];
    ferry_stepfile *sf = parse("- step:\n"
                               "    name: test\n"
                               "    image: busybox\n"
                               "    command: echo\n"
                               "    mounts:\n"
                               "      - /foo:/bar\n"
                               "      - source: /baz\n"
                               "        destination: /quux\n"
                               "        readonly: true\n"
                               "      - source: hal.local:/dave\n"
                               "        destination: /dave\n"
                               "        type: nfs\n"
                               "        options: {hot: true}\n",
                               err, sizeof(err));
    CHECK(sf != NULL);
    if (sf == NULL) {
        fprintf(stderr, "%s\n", err);
        return;
    }
    const ferry_step *s = ferry_stepfile_find(sf, "test");
    CHECK_INT(s->n_mounts, 3);
    CHECK_STR(s->mounts[0].source, "/foo");
    CHECK_STR(s->mounts[0].destination, "/bar");
    CHECK_INT(s->mounts[0].readonly, 0);
    CHECK(s->mounts[0].type == NULL);
    CHECK_STR(s->mounts[1].source, "/baz");
    CHECK_INT(s->mounts[1].readonly, 1);
    CHECK_STR(s->mounts[2].type, "nfs");
    CHECK_STR(s->mounts[2].source, "hal.local:/dave");
    ferry_stepfile_free(sf);

    CHECK(
        parse("- step:\n    name: a\n    image: b\n    command: c\n    mounts:\n      - nocolon\n",
              err, sizeof(err)) == NULL);
    CHECK_CONTAINS(err, "valohai.yaml:6:");
    CHECK_CONTAINS(err, "SOURCE:DESTINATION");
    CHECK(parse("- step:\n    name: a\n    image: b\n    command: c\n    mounts:\n"
                "      - source: /x\n",
                err, sizeof(err)) == NULL);
    CHECK_CONTAINS(err, "destination");
}

static void test_step_groups(void)
{
    char err[1024];
    ferry_stepfile *sf = parse("- step:\n"
                               "    name: test\n"
                               "    image: busybox\n"
                               "    command: echo\n"
                               "    environment-variable-groups: [aws, other]\n",
                               err, sizeof(err));
    CHECK(sf != NULL);
    if (sf == NULL) {
        fprintf(stderr, "%s\n", err);
        return;
    }
    const ferry_step *s = ferry_stepfile_find(sf, "test");
    CHECK_INT(s->n_env_groups, 2);
    CHECK_STR(s->env_groups[0], "aws");
    CHECK_STR(s->env_groups[1], "other");
    ferry_stepfile_free(sf);
    CHECK(parse("- step:\n    name: a\n    image: b\n    command: c\n"
                "    environment-variable-groups: [{a: 1}]\n",
                err, sizeof(err)) == NULL);
    CHECK_CONTAINS(err, "expected the name of a group");
}

static int load(const char *text, ferry_config *c, char *err, size_t cap)
{
    return config_fixture_load(text, c, err, cap);
}

static void test_path_normal(void)
{
    const char *cases[][2] = {
        {"/data", "/data"},
        {"/data/", "/data"},
        {"//data//x/", "/data/x"},
        {"/data/x/../y", "/data/y"},
        {"/data/./x", "/data/x"},
        {"/data/../../etc", "/etc"},
        {"/", "/"},
        {"/..", "/"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *n = ferry_config_path_normal(cases[i][0]);
        CHECK_STR(n, cases[i][1]);
        free(n);
    }
    CHECK(ferry_config_path_normal("data") == NULL);
    CHECK(ferry_config_path_normal("") == NULL);
}

static void test_allowed_mounts(void)
{
    char err[512];
    ferry_config c;
    CHECK_INT(load("environments = ( { name = \"local\"; compute = \"local\";\n"
                   "  allowed_mounts = [ \"/data/\", \"/mnt/shared\" ]; } );\n",
                   &c, err, sizeof(err)),
              0);
    const ferry_env_config *e = ferry_config_env(&c, "local");
    CHECK_INT(e->n_allowed_mounts, 2);
    CHECK_STR(e->allowed_mounts[0], "/data");
    CHECK(ferry_env_mount_allowed(e, "/data"));
    CHECK(ferry_env_mount_allowed(e, "/data/"));
    CHECK(ferry_env_mount_allowed(e, "/data/sets/x"));
    CHECK(ferry_env_mount_allowed(e, "/mnt/shared/a/../b"));
    CHECK(!ferry_env_mount_allowed(e, "/database"));
    CHECK(!ferry_env_mount_allowed(e, "/data/../etc"));
    CHECK(!ferry_env_mount_allowed(e, "data/x"));
    CHECK(!ferry_env_mount_allowed(e, "/mnt"));
    char *text = ferry_env_allowed_mounts_text(e);
    CHECK_STR(text, "/data, /mnt/shared");
    free(text);
    ferry_config_free(&c);

    CHECK_INT(load("environments = ( { name = \"local\"; compute = \"local\"; } );\n", &c, err,
                   sizeof(err)),
              0);
    CHECK(!ferry_env_mount_allowed(ferry_config_env(&c, "local"), "/data"));
    text = ferry_env_allowed_mounts_text(ferry_config_env(&c, "local"));
    CHECK_STR(text, "nothing");
    free(text);
    ferry_config_free(&c);

    CHECK_INT(load("environments = ( { name = \"local\"; compute = \"local\";\n"
                   "  allowed_mounts = [ \"data\" ]; } );\n",
                   &c, err, sizeof(err)),
              FERRY_ECONFIG);
    CHECK_CONTAINS(err, ":2: setting 'allowed_mounts': each entry must be an absolute host path");
    ferry_config_free(&c);
    CHECK_INT(load("environments = ( { name = \"local\"; compute = \"local\";\n"
                   "  allowed_mounts = \"/data\"; } );\n",
                   &c, err, sizeof(err)),
              FERRY_ECONFIG);
    CHECK_CONTAINS(err, ":2: setting 'allowed_mounts': expected a list");
    ferry_config_free(&c);
}

static void test_env_groups(void)
{
    char err[512];
    ferry_config c;
    CHECK_INT(load("environment_variable_groups = (\n"
                   "  { name = \"aws\"; variables = { AWS_REGION = \"eu-west-1\"; N = 3; };\n"
                   "    secrets = { AWS_SECRET_ACCESS_KEY = \"s3cr3t\"; }; },\n"
                   "  { name = \"empty\"; }\n"
                   ");\n",
                   &c, err, sizeof(err)),
              0);
    if (err[0])
        fprintf(stderr, "%s\n", err);
    const ferry_env_group *g = ferry_config_env_group(&c, "aws");
    CHECK(g != NULL);
    if (g) {
        CHECK_INT(g->n_vars, 3);
        CHECK_STR(g->vars[0].name, "AWS_REGION");
        CHECK_STR(g->vars[0].value, "eu-west-1");
        CHECK_INT(g->vars[0].secret, 0);
        CHECK_STR(g->vars[1].value, "3");
        CHECK_STR(g->vars[2].name, "AWS_SECRET_ACCESS_KEY");
        CHECK_INT(g->vars[2].secret, 1);
    }
    CHECK(ferry_config_env_group(&c, "gcp") == NULL);
    char *names = ferry_config_env_group_names(&c);
    CHECK_STR(names, "aws, empty");
    free(names);
    ferry_config_free(&c);

    const char *bad[][2] = {
        {"environment_variable_groups = (\n  { variables = { A = \"1\"; }; }\n);\n",
         ":2: setting 'name': each environment variable group needs a "
         "name"},
        {"environment_variable_groups = (\n  { name = \"a\"; },\n  { name = \"a\"; }\n);\n",
         ":3: setting 'name': environment variable group named twice"},
        {"environment_variable_groups = (\n  { name = \"a\";\n    variables = { A = \"1\"; };\n"
         "    secrets = { A = \"2\"; }; }\n);\n",
         ":4: setting 'secrets': variable 'A' is given twice in group 'a'"},
        {"environment_variable_groups = (\n  { name = \"a\"; colour = \"red\"; }\n);\n",
         ":2: setting 'colour': unknown setting of an environment variable group"},
        {"environment_variable_groups = (\n  { name = \"a\";\n    variables = { A = [1]; }; "
         "}\n);\n",
         ":3: setting 'variables': variable 'A': expected a text"},
        {"environment_variable_groups = { name = \"a\"; };\n",
         ":1: setting 'environment_variable_groups': expected a list"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        CHECK_INT(load(bad[i][0], &c, err, sizeof(err)), FERRY_ECONFIG);
        CHECK_CONTAINS(err, "/tmp/ferry-test-config-");
        CHECK_CONTAINS(err, bad[i][1]);
        ferry_config_free(&c);
    }
}

static void test_docker_limits(void)
{
    const char *env[] = {NULL};
    ferry_run_spec spec = {
        .struct_size = sizeof(spec),
        .execution_id = "e1",
        .image = "busybox",
        .script = "true",
        .env = env,
        .cpus = 0.5,
        .memory_bytes = 100 * 1048576,
    };
    ld_run_opts o = {.owner = "o", .nano_cpus = 4000000000, .memory = 1 << 30};
    char why[256];
    json_t *body = ld_run_body(&spec, &o, why, sizeof(why));
    CHECK(body != NULL);
    json_t *hc = json_object_get(body, "HostConfig");
    CHECK_INT(json_integer_value(json_object_get(hc, "NanoCpus")), 500000000);
    CHECK_INT(json_integer_value(json_object_get(hc, "Memory")), 100 * 1048576);
    json_decref(body);
}

static void test_docker_mounts(void)
{
    const char *env[] = {NULL};
    ferry_mount mounts[] = {{"/data/sets", "/sets", 1}, {"/mnt/shared", "/shared", 0}};
    ferry_run_spec spec = {
        .struct_size = sizeof(spec),
        .execution_id = "e1",
        .image = "busybox",
        .script = "true",
        .env = env,
        .repository_dir = "/w/repository",
        .mounts = mounts,
        .n_mounts = 2,
    };
    ld_run_opts o = {.owner = "o"};
    char why[256];
    json_t *body = ld_run_body(&spec, &o, why, sizeof(why));
    CHECK(body != NULL);
    json_t *ms = json_object_get(json_object_get(body, "HostConfig"), "Mounts");
    int seen = 0;
    size_t i;
    json_t *m;
    json_array_foreach(ms, i, m)
    {
        const char *src = json_string_value(json_object_get(m, "Source"));
        const char *dst = json_string_value(json_object_get(m, "Target"));
        int ro = json_is_true(json_object_get(m, "ReadOnly"));
        if (strcmp(src, "/data/sets") == 0 && strcmp(dst, "/sets") == 0 && ro)
            seen |= 1;
        if (strcmp(src, "/mnt/shared") == 0 && strcmp(dst, "/shared") == 0 && !ro)
            seen |= 2;
        CHECK_STR(json_string_value(json_object_get(m, "Type")), "bind");
    }
    CHECK_INT(seen, 3);
    json_decref(body);

    /* A spec of a host built before mounts: only up to its struct_size. */
    spec.struct_size = offsetof(ferry_run_spec, mounts);
    body = ld_run_body(&spec, &o, why, sizeof(why));
    json_array_foreach(json_object_get(json_object_get(body, "HostConfig"), "Mounts"), i, m)
        CHECK(strcmp(json_string_value(json_object_get(m, "Source")), "/data/sets") != 0);
    json_decref(body);
}

int main(void)
{
    setenv("FERRY_DATA_DIR", "/tmp/ferry-test-stepkeys-data", 1);
    test_step_resources();
    test_docker_limits();
    test_step_mounts();
    test_path_normal();
    test_allowed_mounts();
    test_docker_mounts();
    test_step_groups();
    test_env_groups();
    TEST_MAIN_END();
}
