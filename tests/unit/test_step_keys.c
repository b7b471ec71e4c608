/* A step's resources act (issue 18, point 9): the step file keeps the
 * limits and local-docker's create body carries them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "body.h"
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

int main(void)
{
    setenv("FERRY_DATA_DIR", "/tmp/ferry-test-stepkeys-data", 1);
    test_step_resources();
    test_docker_limits();
    TEST_MAIN_END();
}
