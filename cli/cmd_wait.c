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
    char *path = ferry_cli_exec_path(id, suffix);
    int rc = ferry_cli_call(cli, "GET", path, NULL, slice + 30, exec);
    free(path);
    return rc;
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
            if (json)
                ferry_cli_print_json(exec);
            else
                ferry_cli_print_outcome(stdout, exec);
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

int ferry_cmd_wait(const ferry_cli *cli, int argc, char **argv)
{
    static const struct option longopts[] = {
        {"timeout", required_argument, NULL, 't'},
        {"project", required_argument, NULL, 'P'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    double timeout_s = -1;
    const char *project = NULL;
    int json = 0, c;
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        switch (c) {
        case 't': {
            char *end = NULL;
            timeout_s = strtod(optarg, &end);
            if (end == optarg || *end != '\0' || !(timeout_s >= 0 && timeout_s < 1e9))
                return ferry_cli_usage_error("wait", "--timeout wants seconds, not '%s'", optarg);
            break;
        }
        case 'P':
            project = optarg;
            break;
        case 'j':
            json = 1;
            break;
        case 'h':
            fputs(ferry__wait_usage, stdout);
            return FERRY_EXIT_OK;
        default:
            return ferry_cli_bad_option("wait", c, argv);
        }
    }
    if (argc - optind != 1)
        return ferry_cli_usage_error("wait", "expected one execution ID");
    char *uuid = NULL;
    int rc = ferry_cli_resolve_id(cli, argv[optind], project, &uuid);
    if (rc == FERRY_EXIT_OK)
        rc = ferry__wait(cli, uuid, timeout_s, json);
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

int ferry_cmd_stop(const ferry_cli *cli, int argc, char **argv)
{
    static const struct option longopts[] = {
        {"project", required_argument, NULL, 'P'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *project = NULL;
    int json = 0, c;
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        switch (c) {
        case 'P':
            project = optarg;
            break;
        case 'j':
            json = 1;
            break;
        case 'h':
            fputs(ferry__stop_usage, stdout);
            return FERRY_EXIT_OK;
        default:
            return ferry_cli_bad_option("stop", c, argv);
        }
    }
    if (argc - optind != 1)
        return ferry_cli_usage_error("stop", "expected one execution ID");
    char *uuid = NULL;
    int rc = ferry_cli_resolve_id(cli, argv[optind], project, &uuid);
    json_t *exec = NULL;
    if (rc == FERRY_EXIT_OK) {
        char *path = ferry_cli_exec_path(uuid, "/stop");
        rc = ferry_cli_call(cli, "POST", path, NULL, 60, &exec);
        free(path);
    }
    if (rc == FERRY_EXIT_OK && json)
        ferry_cli_print_json(exec);
    else if (rc == FERRY_EXIT_OK)
        ferry_cli_print_outcome(stdout, exec);
    json_decref(exec);
    free(uuid);
    return rc;
}
