/* ferry wait and ferry stop: an execution's end, awaited or brought about. */
#include "cli.h"

#include "util.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Each long-poll asks ferryd for at most this many seconds, so that a
 * dropped connection or a proxy's idle timeout costs little. */
#define FERRY__WAIT_SLICE_S 30

static const char ferry__wait_usage[] =
    "usage: ferry wait ID [--timeout SECONDS] [--project NAME] [--json]\n"
    "\n"
    "Wait until an execution ends and print how it ended. Exit status: 0 complete,\n"
    "1 error, 2 stopped, 3 when --timeout ran out first.\n"
    "\n"
    "  --timeout SECONDS  give up after this long (default: wait as long as it takes)\n"
    "  --project NAME     look a counter ID up in this project\n"
    "  --json             print the execution object\n";

/* One long-poll; *exec is the execution as ferryd answered. With no time
 * left, a plain look is enough. */
static int ferry__wait_once(const ferry_cli *cli, const char *id, long slice, json_t **exec)
{
    char suffix[64] = "";
    if (slice > 0)
        snprintf(suffix, sizeof(suffix), "/wait?timeout=%ld", slice);
    return ferry_cli_exec_call(cli, "GET", id, suffix, slice + 30, exec);
}

/* ferry_cli_print_outcome() as a ferry_cli_print_fn: wait and stop print to stdout. */
static void ferry__print_outcome(const json_t *exec)
{
    ferry_cli_print_outcome(stdout, exec);
}

static int ferry__wait(const ferry_cli *cli, const char *id, double timeout_s, int json)
{
    double deadline = timeout_s >= 0 ? ferry_now() + timeout_s : -1;
    json_t *exec = NULL;
    for (;;) {
        long slice = FERRY__WAIT_SLICE_S;
        if (deadline >= 0) {
            double left = deadline - ferry_now();
            if (left < slice)
                slice = left > 0 ? (long)left + (left > (double)(long)left) : 0;
        }
        json_decref(exec);
        exec = NULL;
        int rc = ferry__wait_once(cli, id, slice, &exec);
        if (rc != FERRY_EXIT_OK)
            return rc;
        const char *status = ferry_cli_str(exec, "status");
        if (ferry_cli_is_terminal(status)) {
            ferry_cli_print_answer(json, exec, ferry__print_outcome);
            rc = ferry_cli_exit_for(status);
            json_decref(exec);
            return rc;
        }
        if (deadline >= 0 && ferry_now() >= deadline) {
            if (json)
                ferry_cli_print_json(exec);
            fprintf(stderr, "ferry: timed out; execution #%lld (%s) is still %s\n",
                    (long long)json_integer_value(json_object_get(exec, "counter")),
                    ferry_cli_str(exec, "id"), status);
            json_decref(exec);
            return FERRY_EXIT_TIMEOUT;
        }
    }
}

/* --timeout SECONDS into the double ctx points at. */
static int ferry__wait_option(void *ctx, int c, const char *arg)
{
    (void)c; /* --timeout is wait's only own option */
    double *timeout_s = ctx;
    char *end = NULL;
    *timeout_s = strtod(arg, &end);
    if (end == arg || *end != '\0' || !(*timeout_s >= 0 && *timeout_s < 1e9))
        return ferry_cli_usage_error("wait", "--timeout wants seconds, not '%s'", arg);
    return FERRY_EXIT_OK;
}

static const struct option ferry__wait_options[] = {
    {"timeout", required_argument, NULL, 't'},
    {NULL, 0, NULL, 0},
};

static const ferry_cli_syntax ferry__wait_syntax = {
    .name = "wait",
    .usage = ferry__wait_usage,
    .operands = FERRY_CLI_ONE_ID,
    .project = 1,
    .json = 1,
    .options = ferry__wait_options,
    .on_option = ferry__wait_option,
};

int ferry_cmd_wait(const ferry_cli *cli, int argc, char **argv)
{
    double timeout_s = -1;
    ferry_cli_args a;
    int rc = ferry_cli_parse_args(&ferry__wait_syntax, &timeout_s, argc, argv, &a);
    if (rc != FERRY_CLI_GO_ON)
        return rc;
    char *uuid = NULL;
    rc = ferry_cli_resolve_id(cli, a.id, a.project, &uuid);
    if (rc == FERRY_EXIT_OK)
        rc = ferry__wait(cli, uuid, timeout_s, a.json);
    free(uuid);
    return rc;
}

static const char ferry__stop_usage[] =
    "usage: ferry stop ID [--project NAME] [--json]\n"
    "\n"
    "Stop an execution. One that has not started yet is stopped at once; a running\n"
    "one goes to 'stopping' until its worker has ended it ('ferry wait ID').\n"
    "\n"
    "  --project NAME  look a counter ID up in this project\n"
    "  --json          print the execution object\n";

static const ferry_cli_syntax ferry__stop_syntax = {
    .name = "stop",
    .usage = ferry__stop_usage,
    .operands = FERRY_CLI_ONE_ID,
    .project = 1,
    .json = 1,
};

int ferry_cmd_stop(const ferry_cli *cli, int argc, char **argv)
{
    ferry_cli_args a;
    int rc = ferry_cli_parse_args(&ferry__stop_syntax, NULL, argc, argv, &a);
    if (rc != FERRY_CLI_GO_ON)
        return rc;
    json_t *exec = NULL;
    rc = ferry_cli_fetch_exec(cli, &a, "POST", "/stop", NULL, &exec);
    return ferry_cli_finish(rc, a.json, exec, ferry__print_outcome);
}
