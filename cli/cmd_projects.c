/* ferry projects and ferry project fetch: the projects ferryd links to git
 * repositories, and fetching one. */
#include "cli.h"

#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- projects ---- */

#define FERRY__PROJECT_COLS 4

static const char *const ferry__project_headings[FERRY__PROJECT_COLS] = {
    "NAME", "REPOSITORY", "DEFAULT REF", "LAST FETCH"};

static const char ferry__projects_usage[] =
    "usage: ferry projects [--json]\n"
    "\n"
    "List the projects of ferryd's config: the git repository each links (\"-\" for\n"
    "one that runs ad-hoc snapshots only), its default ref, and its last fetch\n"
    "(\"never\", \"ok\" or the error).\n"
    "\n"
    "  --json  print ferryd's answer as JSON\n";

/* One row as texts; caller frees each. */
static void ferry__project_row(const json_t *p, char *cells[FERRY__PROJECT_COLS])
{
    const json_t *repo = json_object_get(p, "repository");
    const json_t *err = json_object_get(p, "last_fetch_error");
    cells[0] = ferry_strdup(ferry_cli_str(p, "name"));
    cells[1] = ferry_strdup(json_is_string(repo) ? json_string_value(repo) : "-");
    cells[2] = ferry_strdup(json_is_string(repo) ? ferry_cli_str(p, "default_ref") : "-");
    if (json_is_string(err))
        cells[3] = ferry_asprintf("failed: %s", json_string_value(err));
    else
        cells[3] = ferry_strdup(json_is_number(json_object_get(p, "fetched_at")) ? "ok" : "never");
}

static void ferry__print_projects(const json_t *answer)
{
    ferry_cli_print_table(ferry__project_headings, FERRY__PROJECT_COLS,
                          json_object_get(answer, "projects"), ferry__project_row);
}

static const ferry_cli_syntax ferry__projects_syntax = {
    .name = "projects",
    .usage = ferry__projects_usage,
    .json = 1,
};

int ferry_cmd_projects(const ferry_cli *cli, int argc, char **argv)
{
    return ferry_cli_get_command(cli, &ferry__projects_syntax, argc, argv, "/v1/projects",
                                 ferry__print_projects);
}

/* ---- project fetch ---- */

static const char ferry__project_usage[] =
    "usage: ferry project fetch PROJECT [--json]\n"
    "\n"
    "Fetch every branch and tag of PROJECT's repository into ferryd's mirror and\n"
    "print what changed: \"main: 1a2b3c4 -> 5d6e7f8\", \"new: v1.1 5d6e7f8\",\n"
    "\"gone: old-branch 1a2b3c4\", or \"up to date\". ferryd fetches by itself\n"
    "when an execution names a commit it does not have.\n"
    "\n"
    "  --json  print ferryd's answer as JSON\n";

static const char *ferry__short(const json_t *sha)
{
    static char buf[8];
    snprintf(buf, sizeof(buf), "%.7s", json_is_string(sha) ? json_string_value(sha) : "");
    return buf;
}

static void ferry__print_fetched(const json_t *answer)
{
    const json_t *changes = json_object_get(answer, "changes");
    const json_t *errors = json_object_get(answer, "errors");
    size_t i;
    const json_t *c;
    json_array_foreach(changes, i, c)
    {
        const char *ref = ferry_cli_str(c, "ref");
        const json_t *old = json_object_get(c, "old"), *new = json_object_get(c, "new");
        if (!json_is_string(old))
            printf("new: %s %s\n", ref, ferry__short(new));
        else if (!json_is_string(new))
            printf("gone: %s %s\n", ref, ferry__short(old));
        else {
            printf("%s: %s", ref, ferry__short(old));
            printf(" -> %s\n", ferry__short(new));
        }
    }
    json_array_foreach(errors, i, c)
    {
        printf("error: %s: %s\n", ferry_cli_str(c, "ref"), ferry_cli_str(c, "error"));
    }
    if (json_array_size(changes) == 0 && json_array_size(errors) == 0)
        printf("%s: up to date\n", ferry_cli_str(answer, "project"));
}

int ferry_cmd_project(const ferry_cli *cli, int argc, char **argv)
{
    ferry_cli_syntax syntax = {
        .name = "project",
        .usage = ferry__project_usage,
        .operands = FERRY_CLI_OPERANDS,
        .json = 1,
    };
    ferry_cli_args a;
    int rc = ferry_cli_parse_args(&syntax, NULL, argc, argv, &a);
    if (rc != FERRY_CLI_GO_ON)
        return rc;
    if (a.n_rest == 0 || strcmp(a.rest[0], "fetch") != 0)
        return ferry_cli_usage_error("project",
                                     a.n_rest == 0 ? "expected: fetch PROJECT"
                                                   : "unknown subcommand '%s' (known: fetch)",
                                     a.n_rest ? a.rest[0] : "");
    if (a.n_rest != 2)
        return a.n_rest == 1
                   ? ferry_cli_usage_error("project fetch", "expected the project: PROJECT")
                   : ferry_cli_usage_error("project fetch", "unexpected argument '%s'", a.rest[2]);
    char *name = ferry_cli_escape(a.rest[1]);
    char *path = ferry_asprintf("/v1/projects/%s/fetch", name);
    free(name);
    json_t *answer = NULL;
    /* A first fetch of a big repository takes a while. */
    rc = ferry_cli_call(cli, "POST", path, NULL, 3600, &answer);
    free(path);
    return ferry_cli_finish(rc, a.json, answer, ferry__print_fetched);
}
