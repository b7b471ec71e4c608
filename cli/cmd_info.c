/* ferry envs and ferry whoami: what ferryd offers, and who it takes us for. */
#include "cli.h"

#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int ferry_cli_get_command(const ferry_cli *cli, const ferry_cli_syntax *syntax, int argc,
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
    /* The name's marker: a draining environment takes no new work. */
    cells[0] = ferry_asprintf("%s%s", ferry_cli_str(env, "name"),
                              json_is_true(json_object_get(env, "draining")) ? " (draining)" : "");
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

/* A draining environment or a failing launch is why queued work does not
 * start: say so under the table. */
static void ferry__env_notes(const json_t *list)
{
    size_t i;
    json_t *env;
    json_array_foreach(list, i, env)
    {
        const char *err = ferry_cli_str(env, "last_launch_error");
        const char *broken = ferry_cli_str(env, "broken");
        if (json_is_true(json_object_get(env, "draining")))
            printf("%s: draining: no new work starts there; its workers retire as they go idle "
                   "(ferry envs undrain %s resumes it)\n",
                   ferry_cli_str(env, "name"), ferry_cli_str(env, "name"));
        if (broken[0] != '\0')
            printf("%s: BROKEN, no launches until an operator fixes it: %s\n",
                   ferry_cli_str(env, "name"), broken);
        else if (err[0] != '\0')
            printf("%s: the last launch failed: %s\n", ferry_cli_str(env, "name"), err);
    }
}

static const char ferry__envs_usage[] =
    "usage: ferry envs [--json]\n"
    "       ferry envs drain ENV [--json]\n"
    "       ferry envs undrain ENV [--json]\n"
    "\n"
    "List the environments executions can run in: compute plugin, workers\n"
    "(idle/busy/launching), the pool's min and max, queued executions (of which\n"
    "high-priority ones in brackets) and GPUs per worker. A draining one is\n"
    "marked \"(draining)\".\n"
    "\n"
    "drain ENV: ENV gets no new work (an admin's command): its queued executions\n"
    "stay queued, no worker is launched for it, its idle workers retire now and\n"
    "busy ones when their execution ends. It stays so across restarts of ferryd.\n"
    "undrain ENV: back to normal; its queued executions start.\n"
    "\n"
    "  --json  print ferryd's answer as JSON\n";

static void ferry__print_envs(const json_t *answer)
{
    const json_t *list = json_object_get(answer, "environments");
    ferry_cli_print_table(ferry__env_headings, FERRY__ENV_COLS, list, ferry__env_row);
    ferry__env_notes(list);
}

static const ferry_cli_syntax ferry__envs_syntax = {
    .name = "envs",
    .usage = ferry__envs_usage,
    .json = 1,
};

/* ---- envs drain / envs undrain ---- */

static void ferry__print_drained(const json_t *env)
{
    const json_t *w = json_object_get(env, "workers");
    if (json_is_true(json_object_get(env, "draining")))
        printf("environment '%s' is draining: %lld queued execution(s) wait; %lld busy "
               "worker(s) retire when their execution ends\n",
               ferry_cli_str(env, "name"), ferry__int(env, "queued"), ferry__int(w, "busy"));
    else
        printf("environment '%s' takes work again (%lld queued)\n", ferry_cli_str(env, "name"),
               ferry__int(env, "queued"));
}

/* argv[0] is "drain" or "undrain". */
static int ferry__envs_drain(const ferry_cli *cli, int argc, char **argv)
{
    const char *what = argv[0];
    ferry_cli_syntax syntax = {
        .name = strcmp(what, "drain") == 0 ? "envs drain" : "envs undrain",
        .usage = ferry__envs_usage,
        .operands = FERRY_CLI_OPERANDS,
        .json = 1,
    };
    ferry_cli_args a;
    int rc = ferry_cli_parse_args(&syntax, NULL, argc, argv, &a);
    if (rc != FERRY_CLI_GO_ON)
        return rc;
    if (a.n_rest != 1)
        return a.n_rest == 0
                   ? ferry_cli_usage_error(syntax.name, "expected the environment: ENV")
                   : ferry_cli_usage_error(syntax.name, "unexpected argument '%s'", a.rest[1]);
    char *name = ferry_cli_escape(a.rest[0]);
    char *path = ferry_asprintf("/v1/environments/%s/%s", name, what);
    free(name);
    json_t *answer = NULL;
    rc = ferry_cli_call(cli, "POST", path, NULL, 60, &answer);
    free(path);
    return ferry_cli_finish(rc, a.json, answer, ferry__print_drained);
}

int ferry_cmd_envs(const ferry_cli *cli, int argc, char **argv)
{
    if (argc > 1 && (strcmp(argv[1], "drain") == 0 || strcmp(argv[1], "undrain") == 0))
        return ferry__envs_drain(cli, argc - 1, argv + 1);
    return ferry_cli_get_command(cli, &ferry__envs_syntax, argc, argv, "/v1/environments",
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
    return ferry_cli_get_command(cli, &ferry__whoami_syntax, argc, argv, "/v1/whoami",
                                 ferry__print_whoami);
}
