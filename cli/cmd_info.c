/* ferry envs and ferry whoami: what ferryd offers, and who it takes us for. */
#include "cli.h"

#include "util.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Options of a command that takes only --json and --help. Returns -1 after
 * printing the help, else an exit status. */
static int ferry__json_only_args(const char *cmd, const char *usage, int argc, char **argv,
                                 int *json)
{
    static const struct option longopts[] = {
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        switch (c) {
        case 'j':
            *json = 1;
            break;
        case 'h':
            fputs(usage, stdout);
            return -1;
        default:
            return ferry_cli_bad_option(cmd, c, argv);
        }
    }
    if (optind != argc)
        return ferry_cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
    return FERRY_EXIT_OK;
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

static void ferry__env_print_row(char *const cells[FERRY__ENV_COLS],
                                 const size_t width[FERRY__ENV_COLS])
{
    for (size_t c = 0; c < FERRY__ENV_COLS; c++) {
        if (c + 1 == FERRY__ENV_COLS)
            printf("%s\n", cells[c]);
        else
            printf("%-*s  ", (int)width[c], cells[c]);
    }
}

static void ferry__env_table(const json_t *list)
{
    size_t n = json_array_size(list);
    char *(*rows)[FERRY__ENV_COLS] = ferry_xcalloc(n ? n : 1, sizeof(*rows));
    size_t width[FERRY__ENV_COLS];
    for (size_t c = 0; c < FERRY__ENV_COLS; c++)
        width[c] = strlen(ferry__env_headings[c]);
    for (size_t r = 0; r < n; r++) {
        ferry__env_row(json_array_get(list, r), rows[r]);
        for (size_t c = 0; c < FERRY__ENV_COLS; c++)
            if (strlen(rows[r][c]) > width[c])
                width[c] = strlen(rows[r][c]);
    }
    ferry__env_print_row((char *const *)ferry__env_headings, width);
    for (size_t r = 0; r < n; r++) {
        ferry__env_print_row(rows[r], width);
        for (size_t c = 0; c < FERRY__ENV_COLS; c++)
            free(rows[r][c]);
    }
    free(rows);
}

/* A failing launch is why queued work does not start: say so under the table. */
static void ferry__env_launch_errors(const json_t *list)
{
    size_t i;
    json_t *env;
    json_array_foreach(list, i, env)
    {
        const char *err = ferry_cli_str(env, "last_launch_error");
        if (err[0] != '\0')
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

int ferry_cmd_envs(const ferry_cli *cli, int argc, char **argv)
{
    int json = 0;
    int rc = ferry__json_only_args("envs", ferry__envs_usage, argc, argv, &json);
    if (rc != FERRY_EXIT_OK)
        return rc < 0 ? FERRY_EXIT_OK : rc;
    json_t *answer = NULL;
    rc = ferry_cli_call(cli, "GET", "/v1/environments", NULL, 60, &answer);
    if (rc == FERRY_EXIT_OK && json) {
        ferry_cli_print_json(answer);
    } else if (rc == FERRY_EXIT_OK) {
        const json_t *list = json_object_get(answer, "environments");
        ferry__env_table(list);
        ferry__env_launch_errors(list);
    }
    json_decref(answer);
    return rc;
}

/* ---- whoami ---- */

static const char ferry__whoami_usage[] =
    "usage: ferry whoami [--json]\n"
    "\n"
    "Print the user ferryd knows FERRY_TOKEN as (\"(admin)\" after an admin).\n"
    "\n"
    "  --json  print ferryd's answer as JSON\n";

int ferry_cmd_whoami(const ferry_cli *cli, int argc, char **argv)
{
    int json = 0;
    int rc = ferry__json_only_args("whoami", ferry__whoami_usage, argc, argv, &json);
    if (rc != FERRY_EXIT_OK)
        return rc < 0 ? FERRY_EXIT_OK : rc;
    json_t *answer = NULL;
    rc = ferry_cli_call(cli, "GET", "/v1/whoami", NULL, 60, &answer);
    if (rc == FERRY_EXIT_OK && json) {
        ferry_cli_print_json(answer);
    } else if (rc == FERRY_EXIT_OK) {
        const char *user = ferry_cli_str(answer, "user");
        /* A null user: ferryd runs without users, on loopback, and needs no token. */
        if (user[0] == '\0')
            printf("anonymous (no users configured)\n");
        else
            printf("%s%s\n", user,
                   json_is_true(json_object_get(answer, "admin")) ? " (admin)" : "");
    }
    json_decref(answer);
    return rc;
}
