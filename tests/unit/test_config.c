/* core/config.c: environment_aliases (issue 18, point 7): a Valohai slug
 * maps to one of ferryd's environments; a wrong type or an alias naming
 * no environment is refused, naming the file, the line and the alias. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "config.h"
#include "config_fixture.h"
#include "test.h"

static int load(const char *text, ferry_config *c, char *err, size_t cap)
{
    return config_fixture_load(text, c, err, cap);
}

static const char *ENVS =
    "environments = (\n"
    "  { name = \"local\"; compute = \"local\"; runtime = \"local-process\"; },\n"
    "  { name = \"aws-gpu\"; compute = \"local\"; runtime = \"local-process\"; }\n"
    ");\n";

static void test_good(void)
{
    char text[1024], err[512];
    snprintf(text, sizeof(text),
             "%senvironment_aliases = {\n  aws-eu-west-1-g4dn-xlarge = \"aws-gpu\";\n"
             "  azure-westeurope-f2sv2 = \"local\";\n};\n",
             ENVS);
    ferry_config c;
    CHECK_INT(load(text, &c, err, sizeof(err)), 0);
    if (err[0])
        fprintf(stderr, "config: %s\n", err);
    CHECK_INT(c.n_aliases, 2);
    CHECK_STR(ferry_config_env_alias(&c, "aws-eu-west-1-g4dn-xlarge"), "aws-gpu");
    CHECK_STR(ferry_config_env_alias(&c, "azure-westeurope-f2sv2"), "local");
    CHECK(ferry_config_env_alias(&c, "aws-gpu") == NULL);
    CHECK(ferry_config_env_alias(&c, NULL) == NULL);
    ferry_config_free(&c);
}

static void test_bad_type(void)
{
    char text[1024], err[512];
    ferry_config c;
    snprintf(text, sizeof(text), "%senvironment_aliases = {\n  aws-eu-west-1 = 3;\n};\n", ENVS);
    CHECK_INT(load(text, &c, err, sizeof(err)), FERRY_ECONFIG);
    CHECK_CONTAINS(err, ":6: setting 'environment_aliases': alias 'aws-eu-west-1': expected");
    ferry_config_free(&c);
    snprintf(text, sizeof(text), "%senvironment_aliases = \"aws-gpu\";\n", ENVS);
    CHECK_INT(load(text, &c, err, sizeof(err)), FERRY_ECONFIG);
    CHECK_CONTAINS(err, ":5: setting 'environment_aliases': expected a group");
    ferry_config_free(&c);
}

static void test_unknown_target(void)
{
    char text[1024], err[512];
    ferry_config c;
    snprintf(text, sizeof(text), "%senvironment_aliases = {\n  aws-eu-west-1 = \"gpu-farm\";\n};\n",
             ENVS);
    CHECK_INT(load(text, &c, err, sizeof(err)), FERRY_ECONFIG);
    CHECK_CONTAINS(err, "/tmp/ferry-test-config-");
    CHECK_CONTAINS(err, ":6: setting 'environment_aliases': alias 'aws-eu-west-1' names "
                        "'gpu-farm', which is not an environment");
    ferry_config_free(&c);
}

int main(void)
{
    setenv("FERRY_DATA_DIR", "/tmp/ferry-test-config-data", 1);
    test_good();
    test_bad_type();
    test_unknown_target();
    TEST_MAIN_END();
}
