/* ferry rerun: an execution again (issue 19, point 6). ferryd copies what
 * it ran (POST /v1/executions/ID/rerun): the same step, snapshot or commit,
 * parameters and inputs as resolved, environment, with the overrides given
 * here. No step file is read: the run may be of another machine's folder. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "util.h"

typedef struct ferry__rerun_args {
    json_t *params; /* NAME -> value, or a list for a repeated NAME */
    const char *env, *title;
    int watch;
} ferry__rerun_args;

static const char ferry__rerun_usage[] =
    "usage: ferry rerun ID [-p NAME=VALUE]... [-e ENV] [--title TITLE] [--watch]\n"
    "                      [--project NAME] [--json]\n"
    "\n"
    "Run an execution again: the same step, code (snapshot or commit), parameters,\n"
    "inputs (as they were resolved), environment variables and environment, with\n"
    "the overrides given here. ID is its uuid or its counter (in a project folder,\n"
    "that project's).\n"
    "\n"
    "  -p, --param NAME=VALUE  a parameter's new value (repeat NAME for a list)\n"
    "  -e, --environment ENV   run on this environment instead\n"
    "  --title TITLE           the new execution's title\n"
    "  -w, --watch             follow the log until it ends (exit status as ferry wait)\n"
    "  --project NAME          look a counter ID up in this project\n"
    "  --json                  print the new execution object\n";

enum { FERRY__RERUN_TITLE = 1000 };

static const struct option ferry__rerun_options[] = {
    {"param", required_argument, NULL, 'p'},
    {"environment", required_argument, NULL, 'e'},
    {"title", required_argument, NULL, FERRY__RERUN_TITLE},
    {"watch", no_argument, NULL, 'w'},
    {NULL, 0, NULL, 0},
};

/* NAME=VALUE into params: a second value of NAME makes a list. */
static int ferry__rerun_param(ferry__rerun_args *r, const char *arg)
{
    const char *eq = strchr(arg, '=');
    if (eq == NULL || eq == arg)
        return ferry_cli_usage_error("rerun", "-p '%s': expected NAME=VALUE", arg);
    char *name = ferry_asprintf("%.*s", (int)(eq - arg), arg);
    json_t *value = json_string(eq + 1), *had = json_object_get(r->params, name);
    if (had == NULL) {
        json_object_set_new(r->params, name, value);
    } else if (json_is_array(had)) {
        json_array_append_new(had, value);
    } else {
        json_object_set_new(r->params, name, json_pack("[O, o]", had, value));
    }
    free(name);
    return FERRY_EXIT_OK;
}

static int ferry__rerun_option(void *ctx, int c, const char *arg)
{
    ferry__rerun_args *r = ctx;
    switch (c) {
    case 'p':
        return ferry__rerun_param(r, arg);
    case 'e':
        r->env = arg;
        return FERRY_EXIT_OK;
    case FERRY__RERUN_TITLE:
        r->title = arg;
        return FERRY_EXIT_OK;
    case 'w':
        r->watch = 1;
        return FERRY_EXIT_OK;
    default:
        return FERRY_EXIT_USAGE;
    }
}

static const ferry_cli_syntax ferry__rerun_syntax = {
    .name = "rerun",
    .usage = ferry__rerun_usage,
    .operands = FERRY_CLI_ONE_ID,
    .project = 1,
    .json = 1,
    .options = ferry__rerun_options,
    .short_options = "p:e:w",
    .on_option = ferry__rerun_option,
};

static json_t *ferry__rerun_body(const ferry__rerun_args *r)
{
    json_t *body = json_pack("{s:O}", "parameters", r->params);
    if (r->env)
        json_object_set_new(body, "environment", json_string(r->env));
    if (r->title)
        json_object_set_new(body, "title", json_string(r->title));
    return body;
}

int ferry_cmd_rerun(const ferry_cli *cli, int argc, char **argv)
{
    ferry__rerun_args r = {.params = json_object()};
    ferry_cli_args a;
    int rc = ferry_cli_parse_args(&ferry__rerun_syntax, &r, argc, argv, &a);
    if (rc == FERRY_CLI_GO_ON) {
        char *here = ferry_cli_id_project(a.id, a.project);
        char *uuid = NULL;
        rc = ferry_cli_resolve_id(cli, a.id, here, &uuid);
        free(here);
        json_t *exec = NULL;
        if (rc == FERRY_EXIT_OK) {
            char *path = ferry_cli_exec_path(uuid, "/rerun");
            json_t *body = ferry__rerun_body(&r);
            rc = ferry_cli_call(cli, "POST", path, body, 60, &exec);
            json_decref(body);
            free(path);
        }
        if (rc == FERRY_EXIT_OK && a.json)
            ferry_cli_print_json(exec);
        else if (rc == FERRY_EXIT_OK)
            printf("Execution #%lld (%s) created: %s, a rerun of %s\n",
                   (long long)json_integer_value(json_object_get(exec, "counter")),
                   ferry_cli_str(exec, "id"), ferry_cli_str(exec, "step"), uuid);
        if (rc == FERRY_EXIT_OK && r.watch)
            rc = ferry_cli_watch(cli, exec);
        json_decref(exec);
        free(uuid);
    }
    json_decref(r.params);
    return rc;
}
