/* ferry logs: an execution's log, streamed as NDJSON and printed line by
 * line as it arrives (no buffering of the whole answer, no polling). */
#include "cli.h"

#include "util.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* How long reconnecting to ferryd may fail before the stream gives up. */
#define FERRY__RECONNECT_FOR_MS 60000

typedef struct ferry__logs {
    const ferry_cli_log_options *opt;
    int64_t last_i; /* highest event printed: where a reconnect resumes */
    char *line;     /* bytes of the line still arriving */
    size_t len, cap;
    int warned_bad;
} ferry__logs;

static void ferry__print_event(ferry__logs *lg, const json_t *ev)
{
    json_t *ji = json_object_get(ev, "i");
    if (json_is_integer(ji)) {
        /* After a reconnect ferryd starts past last_i; this guards anyway. */
        if (json_integer_value(ji) <= lg->last_i)
            return;
        lg->last_i = json_integer_value(ji);
    }
    const char *stream = ferry_cli_str(ev, "stream");
    FILE *out = strcmp(stream, "stdout") == 0 ? stdout : stderr;
    if (out == stderr)
        fflush(stdout); /* keep the two streams in the order they were logged */
    if (lg->opt->timestamps)
        fprintf(out, "%s ", ferry_cli_str(ev, "time"));
    if (strcmp(stream, "status") == 0)
        fputs("--- ", out);
    fputs(ferry_cli_str(ev, "text"), out);
    fputc('\n', out);
}

static void ferry__handle_line(ferry__logs *lg, const char *text, size_t n)
{
    if (n == 0 || (n == 1 && text[0] == '\r'))
        return;
    json_t *ev = json_loadb(text, n, 0, NULL);
    if (json_is_object(ev)) {
        ferry__print_event(lg, ev);
    } else if (!lg->warned_bad) {
        fprintf(stderr, "ferry: skipping a log line from ferryd that is not a JSON object\n");
        lg->warned_bad = 1;
    }
    json_decref(ev);
}

/* curl hands over whatever arrived; split it into lines, keep the tail. */
static int ferry__on_log_data(void *arg, const char *data, size_t n)
{
    ferry__logs *lg = arg;
    FERRY_XGROW(lg->line, lg->cap, lg->len + n);
    memcpy(lg->line + lg->len, data, n);
    lg->len += n;
    size_t start = 0;
    for (size_t i = 0; i < lg->len; i++) {
        if (lg->line[i] != '\n')
            continue;
        ferry__handle_line(lg, lg->line + start, i - start);
        start = i + 1;
    }
    memmove(lg->line, lg->line + start, lg->len - start);
    lg->len -= start;
    fflush(stdout);
    return 0;
}

static char *ferry__logs_path(const char *id, const ferry_cli_log_options *opt, int64_t after,
                              int nothing_yet)
{
    char query[128];
    int n = snprintf(query, sizeof(query), "/logs?after=%lld%s", (long long)after,
                     opt->follow ? "&follow=1" : "");
    /* The tail applies until a line came; after that, resume at `after`. */
    if (nothing_yet && opt->tail >= 0)
        snprintf(query + n, sizeof(query) - (size_t)n, "&tail=%ld", opt->tail);
    return ferry_cli_exec_path(id, query);
}

static void ferry__sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* The stream ended cleanly: ferryd ends a followed stream after the
 * terminal status event, but also when it shuts down. Ask which. */
static int ferry__ended(const ferry_cli *cli, const char *id, json_t **final, int *done)
{
    char *path = ferry_cli_exec_path(id, NULL);
    json_t *exec = NULL;
    int rc = ferry_cli_call(cli, "GET", path, NULL, 60, &exec);
    free(path);
    *done = rc != FERRY_EXIT_OK || ferry_cli_is_terminal(ferry_cli_str(exec, "status"));
    if (rc == FERRY_EXIT_OK && *done && final != NULL)
        *final = json_incref(exec);
    json_decref(exec);
    return rc;
}

int ferry_cli_stream_logs(const ferry_cli *cli, const char *id, const ferry_cli_log_options *opt,
                          json_t **final)
{
    ferry__logs lg = {.opt = opt};
    int ever_connected = 0, rc = FERRY_EXIT_OK, warned = 0;
    uint64_t failing_since = 0;
    long backoff_ms = 250;
    for (;;) {
        char *path = ferry__logs_path(id, opt, lg.last_i, lg.last_i == 0);
        ferry_cli_request req = {
            .method = "GET", .path = path, .sink = ferry__on_log_data, .sink_arg = &lg};
        ferry_cli_response res;
        lg.len = 0; /* a line cut off by a dropped connection comes again */
        ferry_cli_http(cli, &req, &res);
        free(path);
        int ok_status = res.status >= 200 && res.status < 300;
        int first_try = !ever_connected;
        ever_connected |= res.connected;
        if (res.transport_ok && ok_status) {
            ferry__handle_line(&lg, lg.line, lg.len); /* a last line without "\n" */
            lg.len = 0;
            ferry_cli_response_free(&res);
            if (!opt->follow)
                break;
            int done = 0;
            rc = ferry__ended(cli, id, final, &done);
            if (done)
                break;
            ferry__sleep_ms(1000); /* ferryd went away cleanly; give it a moment */
            continue;
        }
        if (res.connected && !ok_status) { /* ferryd said no */
            rc = ferry_cli_report(cli, &res);
            ferry_cli_response_free(&res);
            break;
        }
        /* No answer, or the connection dropped mid-stream: resume at last_i. */
        uint64_t now = ferry_mono_ms();
        if (first_try && !res.connected) {
            rc = ferry_cli_report(cli, &res);
            ferry_cli_response_free(&res);
            break;
        }
        if (res.connected) {
            failing_since = 0;
            backoff_ms = 250;
        } else if (failing_since == 0) {
            failing_since = now;
        } else if (now - failing_since > FERRY__RECONNECT_FOR_MS) {
            rc = ferry_cli_report(cli, &res);
            ferry_cli_response_free(&res);
            break;
        }
        if (failing_since != 0 && !warned) {
            fprintf(stderr, "ferry: lost the connection to ferryd (%s); reconnecting\n",
                    res.reason);
            warned = 1;
        }
        ferry_cli_response_free(&res);
        ferry__sleep_ms(backoff_ms);
        backoff_ms = backoff_ms * 2 > 5000 ? 5000 : backoff_ms * 2;
    }
    fflush(stdout);
    free(lg.line);
    return rc;
}

static const char ferry__logs_usage[] =
    "usage: ferry logs ID [-f] [--tail N] [--timestamps] [--project NAME]\n"
    "\n"
    "Print an execution's log: its stdout lines to stdout, its stderr lines to\n"
    "stderr, and lifecycle events to stderr after \"--- \".\n"
    "\n"
    "  -f, --follow      keep printing until the execution ends\n"
    "  --tail N          start with the last N lines\n"
    "  --timestamps      put each line's time (UTC) in front of it\n"
    "  --project NAME    look a counter ID up in this project\n";

int ferry_cli_log_option(void *ctx, int c, const char *arg)
{
    ferry_cli_log_options *opt = ctx;
    if (c == 'f')
        opt->follow = 1;
    else if (c == 'T')
        opt->timestamps = 1;
    else if ((opt->tail = ferry_cli_parse_count(arg)) < 0)
        return ferry_cli_usage_error(opt->cmd, "--tail wants a number, not '%s'", arg);
    return FERRY_EXIT_OK;
}

static const struct option ferry__logs_options[] = {
    {"follow", no_argument, NULL, 'f'},
    {"tail", required_argument, NULL, 't'},
    {"timestamps", no_argument, NULL, 'T'},
    {NULL, 0, NULL, 0},
};
const struct option *const ferry_cli_log_long_options = ferry__logs_options;

static const ferry_cli_syntax ferry__logs_syntax = {
    .name = "logs",
    .usage = ferry__logs_usage,
    .operands = FERRY_CLI_ONE_ID,
    .project = 1,
    .options = ferry__logs_options,
    .short_options = FERRY_CLI_LOG_SHORT_OPTIONS,
    .on_option = ferry_cli_log_option,
};

int ferry_cmd_logs(const ferry_cli *cli, int argc, char **argv)
{
    ferry_cli_log_options opt = {.follow = 0, .tail = -1, .timestamps = 0, .cmd = "logs"};
    ferry_cli_args a;
    int rc = ferry_cli_parse_args(&ferry__logs_syntax, &opt, argc, argv, &a);
    if (rc != FERRY_CLI_GO_ON)
        return rc;
    char *uuid = NULL;
    rc = ferry_cli_resolve_id(cli, a.id, a.project, &uuid);
    if (rc == FERRY_EXIT_OK)
        rc = ferry_cli_stream_logs(cli, uuid, &opt, NULL);
    free(uuid);
    return rc;
}
