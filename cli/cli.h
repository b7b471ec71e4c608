/* ferry, the command line: what the commands share. */
#ifndef FERRY_CLI_H
#define FERRY_CLI_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "ferry/error.h"

/* Exit statuses, documented in `ferry --help`. The execution outcomes
 * (complete, error, stopped) double as the status of wait, run --watch and
 * logs -f, so a script can branch on them. */
enum {
    FERRY_EXIT_OK = 0,          /* done; the execution completed */
    FERRY_EXIT_FAILED = 1,      /* the execution ended in error; or a local failure */
    FERRY_EXIT_USAGE = 2,       /* bad command line or step file, before contacting ferryd */
    FERRY_EXIT_STOPPED = 2,     /* the execution was stopped */
    FERRY_EXIT_NOT_PUSHED = 2,  /* run: the working copy's HEAD is not on ferryd's server */
    FERRY_EXIT_TIMEOUT = 3,     /* wait --timeout ran out */
    FERRY_EXIT_UNREACHABLE = 4, /* ferryd unreachable or unverified, or the connection lost */
    FERRY_EXIT_REFUSED = 5,     /* ferryd answered with an error (4xx/5xx) */
    FERRY_EXIT_AUTH = 6,        /* ferryd wants a (valid) token: HTTP 401 */
};

#define FERRY_DEFAULT_SERVER "http://127.0.0.1:8470"

typedef struct ferry_cli {
    char *server; /* base URL, no trailing "/" */
    char *token;  /* FERRY_TOKEN, or NULL */
    char *ca;     /* --ca / FERRY_CA: CA file for https://; NULL: the system store */
} ferry_cli;

/* ---- args.c: the command line of one command ---- */

struct option; /* <getopt.h> */

/* Which operands follow a command's options. */
typedef enum ferry_cli_operands {
    FERRY_CLI_NO_OPERAND, /* none: "unexpected argument" */
    FERRY_CLI_ONE_ID,     /* exactly one execution ID */
    FERRY_CLI_OPERANDS,   /* the command checks them itself */
} ferry_cli_operands;

/* A command's own option (not --project, --json or --help): getopt_long()'s
 * value for it and its argument. Returns FERRY_EXIT_OK, or the exit status
 * of a usage error it printed. */
typedef int (*ferry_cli_option_fn)(void *ctx, int c, const char *arg);

/* What one command accepts. The shared options come after its own, and
 * --help is always there. */
typedef struct ferry_cli_syntax {
    const char *name;  /* "show", for messages */
    const char *usage; /* its --help text */
    ferry_cli_operands operands;
    int project, json;             /* takes --project NAME, --json */
    const struct option *options;  /* its own long options, or NULL */
    const char *short_options;     /* its own short ones ("p:e:"), or NULL */
    ferry_cli_option_fn on_option; /* called for each of its own */
} ferry_cli_syntax;

/* The command line as parsed. */
typedef struct ferry_cli_args {
    const char *id;      /* with FERRY_CLI_ONE_ID */
    const char *project; /* --project, or NULL */
    int json;            /* --json */
    char **rest;         /* the operands */
    int n_rest;
} ferry_cli_args;

/* Not an exit status: what ferry_cli_parse_args() returns to go on. */
#define FERRY_CLI_GO_ON (-1)

/* Parse a command's argv (argv[0] its name); its own options go to
 * syntax->on_option with ctx. Returns FERRY_CLI_GO_ON, or the exit status to
 * end the command with: FERRY_EXIT_OK after --help, FERRY_EXIT_USAGE after a
 * usage error. */
int ferry_cli_parse_args(const ferry_cli_syntax *syntax, void *ctx, int argc, char **argv,
                         ferry_cli_args *args);
/* Whether --NAME (the `n` bytes of `name`) is one of the command's long
 * options or a shared one it takes; *takes_value when it needs a value. */
int ferry_cli_known_option(const ferry_cli_syntax *syntax, const char *name, size_t n,
                           int *takes_value);
/* An on_option for a command whose only own option takes a value: stores
 * it in *(const char **)ctx. */
int ferry_cli_store_arg(void *ctx, int c, const char *arg);
/* Print "ferry CMD: message" and the hint to use --help; returns FERRY_EXIT_USAGE. */
int ferry_cli_usage_error(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* The message for what getopt_long() returned as '?' or ':' (the option
 * string starts with ':'); returns FERRY_EXIT_USAGE. */
int ferry_cli_bad_option(const char *cmd, int c, char **argv);
/* Parse a non-negative integer option; FERRY_EINVAL when it is not one. */
long ferry_cli_parse_count(const char *s);

/* ---- client.c: blocking HTTP to ferryd ---- */

/* Body bytes of a 2xx answer as they arrive; return 0 to go on, non-zero to
 * abort the transfer (the request then fails with `sink_failed` set). */
typedef int (*ferry_cli_sink_fn)(void *arg, const char *data, size_t len);
/* Upload progress: bytes sent so far of `total`. */
typedef void (*ferry_cli_progress_fn)(void *arg, int64_t sent, int64_t total);

typedef struct ferry_cli_request {
    const char *method;      /* GET, POST, HEAD */
    const char *path;        /* "/v1/...", query included, already escaped */
    const char *url;         /* or an absolute URL elsewhere (presigned): no token sent */
    json_t *json;            /* request body as JSON, or NULL */
    const char *upload_path; /* request body from this file, or NULL */
    const char *upload_type; /* its Content-Type */
    long timeout_s;          /* whole transfer; 0: none (streams, uploads) */
    ferry_cli_sink_fn sink;  /* NULL: keep the body in memory */
    void *sink_arg;
    ferry_cli_progress_fn progress;
    void *progress_arg;
} ferry_cli_request;

typedef struct ferry_cli_response {
    int transport_ok; /* an HTTP answer was received in full */
    int connected;    /* ferryd answered at all (a status line came) */
    int sink_failed;  /* the sink asked to stop */
    int cert_failed;  /* ferryd's TLS certificate could not be verified */
    long status;      /* HTTP status, 0 when none */
    char *body;       /* NUL-terminated; "" when sent to the sink */
    size_t body_len;
    char *location;   /* where a 3xx answer points (not followed), or NULL */
    char reason[256]; /* why transport_ok is 0: "Connection refused" */
} ferry_cli_response;

/* Perform one request. Never prints; inspect the response. */
void ferry_cli_http(const ferry_cli *cli, const ferry_cli_request *req, ferry_cli_response *res);
void ferry_cli_response_free(ferry_cli_response *res);
/* Print what went wrong with a response that is not a 2xx answer and
 * return the exit status for it (UNREACHABLE, AUTH or REFUSED). */
int ferry_cli_report(const ferry_cli *cli, const ferry_cli_response *res);
/* A JSON call: on success *out holds the parsed answer (may be NULL when
 * out is NULL); otherwise the failure is printed and its exit status
 * returned. */
int ferry_cli_call(const ferry_cli *cli, const char *method, const char *path, json_t *body,
                   long timeout_s, json_t **out);
/* One path segment, %-escaped. Caller frees. */
char *ferry_cli_escape(const char *s);
/* "/v1/<collection>/<escaped id><suffix>", "#7" taken as the counter 7.
 * Caller frees. */
char *ferry_cli_id_path(const char *collection, const char *id, const char *suffix);
/* "/v1/executions/<escaped id><suffix>". Caller frees. */
char *ferry_cli_exec_path(const char *id, const char *suffix);
/* Append "key=value" (value escaped) to a path, after "?" or "&"; nothing
 * when value is NULL. Takes path over and returns the new one. */
char *ferry_cli_add_query(char *path, const char *key, const char *value);
/* ferry_cli_call() on "/v1/executions/<id><suffix>". */
int ferry_cli_exec_call(const ferry_cli *cli, const char *method, const char *id,
                        const char *suffix, long timeout_s, json_t **out);
/* With `project`, look a counter up in it and give back the uuid; else the
 * id as given. *uuid is malloc'd. Returns an exit status. */
int ferry_cli_resolve_id(const ferry_cli *cli, const char *id, const char *project, char **uuid);
/* The project to look ID up in: `project` when given, else for a counter
 * (7 or #7) ferry_cli_counter_project()'s; else NULL. Caller frees. */
char *ferry_cli_id_project(const char *id, const char *project);
/* The project a bare counter names without --project: $FERRY_PROJECT, else
 * the project folder's name (a ferry.yaml or valohai.yaml here), as `ferry
 * run` there names it; else NULL (every project). Caller frees. */
char *ferry_cli_counter_project(void);
/* The execution args names (ID in --project), resolved, then METHOD on its
 * suffix ("/stop"). *uuid (when uuid is not NULL) receives the resolved id;
 * caller frees. Returns an exit status, the failure printed. */
int ferry_cli_fetch_exec(const ferry_cli *cli, const ferry_cli_args *args, const char *method,
                         const char *suffix, char **uuid, json_t **out);

/* ---- format.c: what the commands print ---- */

/* RFC 3339 ("2026-11-26T06:01:58.123Z") to epoch seconds; FERRY_CLI_NO_TIME
 * (below every time) when not a time. */
#define FERRY_CLI_NO_TIME (-1.0)
double ferry_cli_parse_time(const char *s);
/* Local time "2026-11-26 07:01:58" (or "-"). */
void ferry_cli_format_local_time(const char *rfc3339, char *buf, size_t cap);
/* "1h02m", "3m05s", "12s", or "-" when it did not start. */
void ferry_cli_format_duration(const json_t *exec, char *buf, size_t cap);
/* A number of seconds the same way: "1h02m", "3m05s", "12s". */
void ferry_cli_format_seconds(long seconds, char *buf, size_t cap);
/* "12 B", "3.4 KiB", "1.2 GiB". */
void ferry_cli_format_size(int64_t bytes, char *buf, size_t cap);
/* A field of an object as text ("" when missing or null). */
const char *ferry_cli_str(const json_t *obj, const char *key);
/* A JSON value as a short text; caller frees. */
char *ferry_cli_value_text(const json_t *v);
/* 1 for complete, error and stopped. */
int ferry_cli_is_terminal(const char *status);
/* The exit status for a terminal status. */
int ferry_cli_exit_for(const char *status);
/* "Execution #7 (uuid): complete", with exit code and reason when it failed. */
void ferry_cli_print_outcome(FILE *out, const json_t *exec);
/* Print a JSON value to stdout, indented, with a newline. */
void ferry_cli_print_json(const json_t *v);
/* How a command prints a successful answer for people. */
typedef void (*ferry_cli_print_fn)(const json_t *answer);
/* Print an answer as JSON (--json) or with print. */
void ferry_cli_print_answer(int json, const json_t *answer, ferry_cli_print_fn print);
/* How most commands end: print the answer when rc is FERRY_EXIT_OK, free
 * it, and return rc. */
int ferry_cli_finish(int rc, int json, json_t *answer, ferry_cli_print_fn print);
/* A command that takes only --json and GETs one path (envs, whoami,
 * projects): the answer printed with `print`, or as JSON. */
int ferry_cli_get_command(const ferry_cli *cli, const ferry_cli_syntax *syntax, int argc,
                          char **argv, const char *path, ferry_cli_print_fn print);
/* One table row: a malloc'd text for each column. */
typedef void (*ferry_cli_row_fn)(const json_t *item, char **cells);
/* The items of an array as a table under headings: columns as wide as
 * their widest cell, two spaces apart. */
void ferry_cli_print_table(const char *const *headings, size_t cols, const json_t *list,
                           ferry_cli_row_fn row);

/* ---- cmd_logs.c ---- */

typedef struct ferry_cli_log_options {
    int follow;
    long tail; /* -1: all */
    int timestamps;
    const char *cmd; /* the command, for usage errors: "logs" */
} ferry_cli_log_options;

/* The options of a command that prints a log (logs, pipeline logs): -f,
 * --follow, --tail N, --timestamps. ferry_cli_log_option is their
 * on_option, its ctx a ferry_cli_log_options. */
extern const struct option *const ferry_cli_log_long_options;
#define FERRY_CLI_LOG_SHORT_OPTIONS "f"
int ferry_cli_log_option(void *ctx, int c, const char *arg);

/* Stream an execution's log to stdout/stderr, reconnecting after a dropped
 * connection without losing or repeating a line. With follow, *final (may be
 * NULL) receives the execution once it ended. Returns an exit status. */
int ferry_cli_stream_logs(const ferry_cli *cli, const char *id, const ferry_cli_log_options *opt,
                          json_t **final);

/* ---- cmd_run.c ---- */

/* Follow a new execution's log until it ends (run --watch, rerun --watch);
 * the exit status of its outcome. */
int ferry_cli_watch(const ferry_cli *cli, const json_t *exec);

/* ---- the commands: argv[0] is the command's name ---- */

int ferry_cmd_run(const ferry_cli *cli, int argc, char **argv);
int ferry_cmd_rerun(const ferry_cli *cli, int argc, char **argv);
int ferry_cmd_wait(const ferry_cli *cli, int argc, char **argv);
int ferry_cmd_list(const ferry_cli *cli, int argc, char **argv);
int ferry_cmd_show(const ferry_cli *cli, int argc, char **argv);
int ferry_cmd_logs(const ferry_cli *cli, int argc, char **argv);
int ferry_cmd_stop(const ferry_cli *cli, int argc, char **argv);
int ferry_cmd_outputs(const ferry_cli *cli, int argc, char **argv);
int ferry_cmd_envs(const ferry_cli *cli, int argc, char **argv);
int ferry_cmd_whoami(const ferry_cli *cli, int argc, char **argv);
int ferry_cmd_projects(const ferry_cli *cli, int argc, char **argv);
int ferry_cmd_project(const ferry_cli *cli, int argc, char **argv);
int ferry_cmd_alias(const ferry_cli *cli, int argc, char **argv);
int ferry_cmd_datum(const ferry_cli *cli, int argc, char **argv);
int ferry_cmd_pipeline(const ferry_cli *cli, int argc, char **argv);

#endif
