/* ferry envs and ferry whoami: what ferryd offers, and who it takes us for. */
#include "cli.h"

#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A command that takes only --json and GETs one path: envs, whoami. */
static int ferry__get_command(const ferry_cli *cli, const ferry_cli_syntax *syntax, int argc,
                              char **argv, const char *path, ferry_cli_print_fn print)
{
    ferry_cli_args a;
    int rc = ferry_cli_parse_args(syntax, NULL, argc, argv, &a);
    if (rc != FERRY_CLI_GO_ON)
        return rc;
    json_t *answer = NULL;
    rc = ferry_cli_call(cli, "GET", path, NULL, 60, &answer);
    return ferry_cli_finish(rc, a.json, answer, print);
}

/* ---- envs ---- */

#define FERRY__ENV_COLS 7

static const char *const ferry__env_headings[FERRY__ENV_COLS] = {
    "NAME", "COMPUTE", "WORKERS", "MIN", "MAX", "QUEUED", "GPUS"};

static long long ferry__int(const json_t *obj, const char *key)
{
    return (long long)json_integer_value(json_object_get(obj, key));
}

/* One row as texts; caller frees each. WORKERS is idle/busy/launching, the
 * three numbers that tell whether new work starts now, soon, or waits. */
static void ferry__env_row(const json_t *env, char *cells[FERRY__ENV_COLS])
{
    const json_t *w = json_object_get(env, "workers");
    long long prio = ferry__int(env, "queued_priority");
    const json_t *gpus = json_object_get(env, "gpus");
    cells[0] = ferry_strdup(ferry_cli_str(env, "name"));
    cells[1] = ferry_strdup(ferry_cli_str(env, "compute"));
    cells[2] = ferry_asprintf("%lld/%lld/%lld", ferry__int(w, "idle"), ferry__int(w, "busy"),
                              ferry__int(w, "launching"));
    cells[3] = ferry_asprintf("%lld", ferry__int(env, "min_workers"));
    cells[4] = ferry_asprintf("%lld", ferry__int(env, "max_workers"));
    cells[5] = prio > 0 ? ferry_asprintf("%lld (%lld)", ferry__int(env, "queued"), prio)
                        : ferry_asprintf("%lld", ferry__int(env, "queued"));
    cells[6] =
        ferry_cli_value_text(json_is_integer(gpus) && json_integer_value(gpus) == 0 ? NULL : gpus);
}

/* A failing launch is why queued work does not start: say so under the table. */
static void ferry__env_launch_errors(const json_t *list)
{
    size_t i;
    json_t *env;
    json_array_foreach(list, i, env)
    {
        const char *err = ferry_cli_str(env, "last_launch_error");
        const char *broken = ferry_cli_str(env, "broken");
        if (broken[0] != '\0')
            printf("%s: BROKEN, no launches until an operator fixes it: %s\n",
                   ferry_cli_str(env, "name"), broken);
        else if (err[0] != '\0')
            printf("%s: the last launch failed: %s\n", ferry_cli_str(env, "name"), err);
    }
}

static const char ferry__envs_usage[] =
    "usage: ferry envs [--json]\n"
    "\n"
    "List the environments executions can run in: compute plugin, workers\n"
    "(idle/busy/launching), the pool's min and max, queued executions (of which\n"
    "high-priority ones in brackets) and GPUs per worker.\n"
    "\n"
    "  --json  print ferryd's answer as JSON\n";

static void ferry__print_envs(const json_t *answer)
{
    const json_t *list = json_object_get(answer, "environments");
    ferry_cli_print_table(ferry__env_headings, FERRY__ENV_COLS, list, ferry__env_row);
    ferry__env_launch_errors(list);
}

static const ferry_cli_syntax ferry__envs_syntax = {
    .name = "envs",
    .usage = ferry__envs_usage,
    .json = 1,
};

int ferry_cmd_envs(const ferry_cli *cli, int argc, char **argv)
{
    return ferry__get_command(cli, &ferry__envs_syntax, argc, argv, "/v1/environments",
                              ferry__print_envs);
}

/* ---- whoami ---- */

static const char ferry__whoami_usage[] =
    "usage: ferry whoami [--json]\n"
    "\n"
    "Print the user ferryd knows FERRY_TOKEN as (\"(admin)\" after an admin).\n"
    "\n"
    "  --json  print ferryd's answer as JSON\n";

static void ferry__print_whoami(const json_t *answer)
{
    const char *user = ferry_cli_str(answer, "user");
    /* A null user: ferryd runs without users, on loopback, and needs no token. */
    if (user[0] == '\0')
        printf("anonymous (no users configured)\n");
    else
        printf("%s%s\n", user, json_is_true(json_object_get(answer, "admin")) ? " (admin)" : "");
}

static const ferry_cli_syntax ferry__whoami_syntax = {
    .name = "whoami",
    .usage = ferry__whoami_usage,
    .json = 1,
};

int ferry_cmd_whoami(const ferry_cli *cli, int argc, char **argv)
{
    return ferry__get_command(cli, &ferry__whoami_syntax, argc, argv, "/v1/whoami",
                              ferry__print_whoami);
}
