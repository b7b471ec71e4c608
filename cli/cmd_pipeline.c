/* ferry pipeline: run a pipeline of the step file and follow it (issue 20).
 *
 * `pipeline run` chooses the code as `ferry run` does (source.c: a commit,
 * or the folder packed and uploaded) and checks locally that the pipeline
 * exists; ferryd checks everything else (parameters, edges) and runs the
 * nodes. The other subcommands read and act on ferryd's pipeline object:
 * {"id", "counter", "name", "status", "nodes": [{"name", "step", "status",
 * "execution": {"id", "counter", "status"} | null, ...}], ...}. */
#include "source.h"

#include "util.h"

#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* How often --watch asks ferryd how the pipeline is doing. */
#define FERRY__POLL_MS 500

static const char ferry__pipeline_usage[] =
    "usage: ferry pipeline COMMAND [ARGS...]\n"
    "\n"
    "Run a pipeline of the step file (ferry.yaml or valohai.yaml) and follow it:\n"
    "its nodes are executions that ferryd starts as their edges allow.\n"
    "\n"
    "commands:\n"
    "  run NAME           start pipeline NAME (--watch: follow it to its end)\n"
    "  list               list pipelines, newest first\n"
    "  show ID            one pipeline and its nodes\n"
    "  stop ID            stop a pipeline and the executions of its nodes\n"
    "  logs ID NODE       print (or follow, -f) the log of a node's execution\n"
    "  approve ID NODE    approve a node that waits for approval (--reject: refuse)\n"
    "\n"
    "'ferry pipeline COMMAND --help' tells more about one. ID is a pipeline's uuid\n"
    "or its counter (7 or #7).\n";

/* ---- printing a pipeline ---- */

static long long ferry__counter(const json_t *obj)
{
    return (long long)json_integer_value(json_object_get(obj, "counter"));
}

/* "#12", or "-" for a node without an execution yet. */
static char *ferry__node_exec(const json_t *node)
{
    const json_t *exec = json_object_get(node, "execution");
    return json_is_object(exec) ? ferry_asprintf("#%lld", ferry__counter(exec)) : ferry_strdup("-");
}

/* What a node's line says besides its status: reused, waiting for approval. */
static char *ferry__node_notes(const json_t *node)
{
    const char *approval = ferry_cli_str(node, "approval");
    int reused = json_is_true(json_object_get(node, "reused"));
    char *notes =
        ferry_asprintf("%s%s%s%s", reused ? "reused" : "", reused && approval[0] ? ", " : "",
                       approval[0] ? "approval: " : "", approval);
    const char *reason = ferry_cli_str(node, "reason");
    if (reason[0] != '\0') {
        char *with = ferry_asprintf("%s%s%s", notes, notes[0] ? "; " : "", reason);
        free(notes);
        notes = with;
    }
    return notes;
}

#define FERRY__NODE_COLS 6

static const char *const ferry__node_headings[FERRY__NODE_COLS] = {
    "NODE", "STEP", "STATUS", "EXECUTION", "ATTEMPTS", "NOTES"};

static void ferry__node_row(const json_t *node, char **cells)
{
    const char *step = ferry_cli_str(node, "step");
    cells[0] = ferry_strdup(ferry_cli_str(node, "name"));
    cells[1] = ferry_strdup(step[0] ? step : "-");
    cells[2] = ferry_strdup(ferry_cli_str(node, "status"));
    cells[3] = ferry__node_exec(node);
    cells[4] =
        ferry_asprintf("%lld", (long long)json_integer_value(json_object_get(node, "attempts")));
    cells[5] = ferry__node_notes(node);
}

static void ferry__print_nodes(const json_t *pl)
{
    ferry_cli_print_table(ferry__node_headings, FERRY__NODE_COLS, json_object_get(pl, "nodes"),
                          ferry__node_row);
}

static void ferry__field(const char *label, const char *value)
{
    printf("  %-10s %s\n", label, value && value[0] ? value : "-");
}

static void ferry__time_field(const char *label, const json_t *pl, const char *key)
{
    char buf[64];
    ferry_cli_format_local_time(ferry_cli_str(pl, key), buf, sizeof(buf));
    ferry__field(label, buf);
}

/* What ran: "commit 5d6e7f8", or "snapshot 3f2a...". */
static char *ferry__code_text(const json_t *pl)
{
    const char *sha = ferry_cli_str(json_object_get(pl, "commit"), "sha");
    if (sha[0] != '\0')
        return ferry_asprintf("commit %.7s", sha);
    const char *snap = ferry_cli_str(pl, "snapshot");
    return snap[0] ? ferry_asprintf("snapshot %.12s", snap) : ferry_strdup("");
}

static void ferry__print_pipeline(const json_t *pl)
{
    printf("Pipeline #%lld (%s)\n", ferry__counter(pl), ferry_cli_str(pl, "id"));
    ferry__field("name", ferry_cli_str(pl, "name"));
    ferry__field("project", ferry_cli_str(pl, "project"));
    ferry__field("status", ferry_cli_str(pl, "status"));
    if (ferry_cli_str(pl, "reason")[0] != '\0')
        ferry__field("reason", ferry_cli_str(pl, "reason"));
    if (ferry_cli_str(pl, "title")[0] != '\0')
        ferry__field("title", ferry_cli_str(pl, "title"));
    if (ferry_cli_str(pl, "owner")[0] != '\0')
        ferry__field("owner", ferry_cli_str(pl, "owner"));
    char *code = ferry__code_text(pl);
    ferry__field("code", code);
    free(code);
    if (json_array_size(json_object_get(pl, "tags")) > 0) {
        char *tags = ferry_cli_value_text(json_object_get(pl, "tags"));
        ferry__field("tags", tags);
        free(tags);
    }
    ferry__time_field("created", pl, "created_at");
    ferry__time_field("started", pl, "started_at");
    ferry__time_field("ended", pl, "ended_at");
    ferry__print_nodes(pl);
}

/* "Pipeline #3 (uuid): complete", with the reason when there is one. */
static void ferry__print_outcome(FILE *out, const json_t *pl)
{
    const char *reason = ferry_cli_str(pl, "reason");
    fprintf(out, "Pipeline #%lld (%s): %s%s%s\n", ferry__counter(pl), ferry_cli_str(pl, "id"),
            ferry_cli_str(pl, "status"), reason[0] ? ": " : "", reason);
}

static void ferry__print_outcome_stdout(const json_t *pl)
{
    ferry__print_outcome(stdout, pl);
}

/* ---- finding a pipeline and its nodes ---- */

/* "/v1/pipelines/<id><suffix>". */
static char *ferry__pipeline_path(const char *id, const char *suffix)
{
    return ferry_cli_id_path("pipelines", id, suffix);
}

/* GET the pipeline ID names; a counter is looked up in --project (or the
 * project a counter names here, as `ferry show` does). */
static int ferry__get_pipeline(const ferry_cli *cli, const char *id, const char *project,
                               json_t **pl)
{
    char *here = ferry_cli_id_project(id, project);
    char *path = ferry_cli_add_query(ferry__pipeline_path(id, NULL), "project", here);
    free(here);
    int rc = ferry_cli_call(cli, "GET", path, NULL, 60, pl);
    free(path);
    return rc;
}

/* The node named `name`; NULL, with a usage error that lists the nodes,
 * when there is none. */
static const json_t *ferry__find_node(const char *cmd, const json_t *pl, const char *name)
{
    size_t i;
    json_t *node;
    json_t *nodes = json_object_get(pl, "nodes");
    json_array_foreach(nodes, i, node)
    {
        if (strcmp(ferry_cli_str(node, "name"), name) == 0)
            return node;
    }
    char *known = ferry_strdup("");
    json_array_foreach(nodes, i, node)
    {
        char *more = ferry_asprintf("%s%s%s", known, i ? ", " : "", ferry_cli_str(node, "name"));
        free(known);
        known = more;
    }
    fprintf(stderr, "ferry %s: pipeline #%lld (%s) has no node '%s'; its nodes: %s\n", cmd,
            ferry__counter(pl), ferry_cli_str(pl, "name"), name, known[0] ? known : "none");
    free(known);
    return NULL;
}

/* ---- run ---- */

static const char ferry__prun_usage[] =
    "usage: ferry pipeline run NAME [--commit REF | --adhoc [DIR]]\n"
    "                          [-p NODE.PARAM=VALUE | -p PARAM=VALUE]... [--tag TAG]...\n"
    "                          [--title TITLE] [--reuse] [--reuse-from ID] [--watch]\n"
    "                          [--project NAME] [--json]\n"
    "\n"
    "Start pipeline NAME of the step file, ferry.yaml (or valohai.yaml). What runs\n"
    "is chosen as 'ferry run' chooses it: a commit (--commit REF, or the HEAD of a\n"
    "git working copy linked to a project), else the folder as it is (--adhoc),\n"
    "packed and uploaded. Where the step file is here, the pipeline is checked to\n"
    "be in it before anything is sent.\n"
    "\n"
    "  --commit REF        run this commit of the project's repository\n"
    "  -a, --adhoc [DIR]   run the folder DIR as it is (default: .)\n"
    "  -p, --param NODE.PARAM=VALUE\n"
    "                      a value for the parameter PARAM of node NODE\n"
    "  -p, --param PARAM=VALUE\n"
    "                      a value for the pipeline's parameter PARAM; values are\n"
    "                      sent as text and typed by ferryd as their parameters are\n"
    "  --tag TAG           a tag; repeatable\n"
    "  --title TITLE       the pipeline's title\n"
    "  --reuse             reuse the executions of an earlier pipeline run of the\n"
    "                      same code and parameters instead of running them again\n"
    "  --reuse-from ID     reuse the executions of this pipeline\n"
    "  --watch             follow the pipeline until it ends, a line per change of\n"
    "                      a node; exit status 0 complete, 1 error, 2 stopped\n"
    "  --project NAME      project name (as for ferry run)\n"
    "  --json              print the created pipeline as JSON\n";

typedef struct ferry__prun_args {
    ferry_cli_code code;
    const char **params; /* "NAME=VALUE" as given */
    size_t n_params;
    json_t *tags;
    const char *title, *reuse_from;
    int reuse, watch;
    /* The command line, for a value of --adhoc that stands apart. */
    int argc;
    char **argv;
} ferry__prun_args;

enum { FERRY__OPT_TITLE = 256, FERRY__OPT_REUSE, FERRY__OPT_REUSE_FROM };

static const struct option ferry__prun_options[] = {
    {"adhoc", optional_argument, NULL, FERRY_CLI_OPT_ADHOC},
    {"commit", required_argument, NULL, FERRY_CLI_OPT_COMMIT},
    {"param", required_argument, NULL, 'p'},
    {"tag", required_argument, NULL, 't'},
    {"title", required_argument, NULL, FERRY__OPT_TITLE},
    {"reuse", no_argument, NULL, FERRY__OPT_REUSE},
    {"reuse-from", required_argument, NULL, FERRY__OPT_REUSE_FROM},
    {"watch", no_argument, NULL, 'w'},
    {NULL, 0, NULL, 0},
};

/* An option of pipeline run into its ferry__prun_args. */
static int ferry__prun_option(void *ctx, int c, const char *arg)
{
    ferry__prun_args *r = ctx;
    if (ferry_cli_code_option(&r->code, c, arg, r->argc, r->argv))
        return FERRY_EXIT_OK;
    switch (c) {
    case 'p':
        r->params = ferry_xrealloc(r->params, (r->n_params + 1) * sizeof(*r->params));
        r->params[r->n_params++] = arg;
        break;
    case 't':
        json_array_append_new(r->tags, json_string(arg));
        break;
    case 'w':
        r->watch = 1;
        break;
    case FERRY__OPT_TITLE:
        r->title = arg;
        break;
    case FERRY__OPT_REUSE:
        r->reuse = 1;
        break;
    default: /* FERRY__OPT_REUSE_FROM */
        if (arg[0] == '\0')
            return ferry_cli_usage_error("pipeline run", "--reuse-from wants a pipeline ID");
        r->reuse_from = arg;
        break;
    }
    return FERRY_EXIT_OK;
}

static const ferry_cli_syntax ferry__prun_syntax = {
    .name = "pipeline run",
    .usage = ferry__prun_usage,
    .operands = FERRY_CLI_OPERANDS,
    .project = 1,
    .json = 1,
    .options = ferry__prun_options,
    .short_options = "p:a::w",
    .on_option = ferry__prun_option,
};

/* -p values into {"NODE.PARAM": "VALUE"}: as text, ferryd types them. */
static int ferry__build_params(const ferry__prun_args *r, json_t *params)
{
    for (size_t i = 0; i < r->n_params; i++) {
        const char *pair = r->params[i], *eq = strchr(pair, '=');
        if (eq == NULL || eq == pair)
            return ferry_cli_usage_error(
                "pipeline run", "-p wants NODE.PARAM=VALUE or PARAM=VALUE, not '%s'", pair);
        char *name = ferry_asprintf("%.*s", (int)(eq - pair), pair);
        int twice = json_object_get(params, name) != NULL;
        if (twice)
            fprintf(stderr, "ferry pipeline run: -p %s is given more than once\n", name);
        else
            json_object_set_new(params, name, json_string(eq + 1));
        free(name);
        if (twice)
            return FERRY_EXIT_USAGE;
    }
    return FERRY_EXIT_OK;
}

/* The pipeline is in the step file of what runs, and can run. A commit
 * only ferryd has is left to ferryd. */
static int ferry__check_pipeline(const ferry_cli_source *src, const ferry__prun_args *r,
                                 const char *name)
{
    ferry_stepfile *sf = NULL;
    int rc = ferry_cli_source_stepfile(src, r->code.dir, &sf);
    if (rc != FERRY_EXIT_OK || sf == NULL)
        return rc;
    const ferry_flow *flow = ferry_stepfile_find_pipeline(sf, name);
    if (flow == NULL) {
        char file[PATH_MAX];
        ferry_cli_source_file_name(src, sf, file, sizeof(file));
        char *known = ferry_stepfile_pipeline_names(sf);
        fprintf(stderr, "ferry pipeline run: no pipeline '%s' in %s; %s\n", name, file,
                known ? known : "");
        free(known);
        rc = FERRY_EXIT_USAGE;
    } else if (flow->broken != NULL) {
        fprintf(stderr, "ferry pipeline run: %s\n", flow->broken);
        rc = FERRY_EXIT_USAGE;
    }
    ferry_stepfile_free(sf);
    return rc;
}

static json_t *ferry__prun_body(const ferry__prun_args *r, const ferry_cli_source *src,
                                const char *name, const char *sha, json_t *params)
{
    json_t *body = json_pack("{s:s, s:s, s:O, s:O}", "project", src->project, "pipeline", name,
                             "parameters", params, "tags", r->tags);
    ferry_cli_source_set_code(src, sha, body);
    if (r->reuse)
        json_object_set_new(body, "reuse", json_true());
    if (r->reuse_from != NULL)
        json_object_set_new(body, "reuse_from", json_string(r->reuse_from));
    if (r->title != NULL)
        json_object_set_new(body, "title", json_string(r->title));
    return body;
}

static void ferry__sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* "started (execution #12)": a node's state as --watch says it. */
static char *ferry__node_state(const json_t *node)
{
    const json_t *exec = json_object_get(node, "execution");
    char *exec_text =
        json_is_object(exec) ? ferry_asprintf("execution #%lld", ferry__counter(exec)) : NULL;
    char *notes = ferry__node_notes(node);
    const char *status = ferry_cli_str(node, "status");
    char *state;
    if (exec_text != NULL || notes[0] != '\0')
        state = ferry_asprintf("%s (%s%s%s)", status, exec_text ? exec_text : "",
                               exec_text && notes[0] ? ", " : "", notes);
    else
        state = ferry_strdup(status);
    free(exec_text);
    free(notes);
    return state;
}

/* Print each node whose state differs from the one in `seen` (name ->
 * state), and remember it. */
static void ferry__print_changes(FILE *out, const json_t *pl, json_t *seen, int print)
{
    size_t i;
    json_t *node;
    json_array_foreach(json_object_get(pl, "nodes"), i, node)
    {
        const char *name = ferry_cli_str(node, "name");
        char *state = ferry__node_state(node);
        const char *was = json_string_value(json_object_get(seen, name));
        if (was == NULL || strcmp(was, state) != 0) {
            if (print)
                fprintf(out, "%s: %s\n", name, state);
            json_object_set_new(seen, name, json_string(state));
        }
        free(state);
    }
    fflush(out);
}

/* Follow the pipeline until it ends: a line per change of a node; the exit
 * status of its outcome. */
static int ferry__watch(const ferry_cli *cli, const json_t *created, FILE *out)
{
    json_t *seen = json_object();
    ferry__print_changes(out, created, seen, 0); /* shown already */
    char *path = ferry__pipeline_path(ferry_cli_str(created, "id"), NULL);
    json_t *pl = json_incref((json_t *)created);
    int rc = FERRY_EXIT_OK;
    while (!ferry_cli_is_terminal(ferry_cli_str(pl, "status"))) {
        ferry__sleep_ms(FERRY__POLL_MS);
        json_decref(pl);
        pl = NULL;
        rc = ferry_cli_call(cli, "GET", path, NULL, 60, &pl);
        if (rc != FERRY_EXIT_OK)
            break;
        ferry__print_changes(out, pl, seen, 1);
    }
    if (rc == FERRY_EXIT_OK) {
        ferry__print_outcome(stderr, pl);
        rc = ferry_cli_exit_for(ferry_cli_str(pl, "status"));
    }
    json_decref(pl);
    json_decref(seen);
    free(path);
    return rc;
}

static int ferry__run(const ferry_cli *cli, ferry__prun_args *r, const ferry_cli_args *a)
{
    const char *name = a->rest[0];
    json_t *params = json_object(), *pl = NULL;
    char sha[65] = "";
    ferry_cli_source src;
    memset(&src, 0, sizeof(src));
    int rc = ferry__build_params(r, params); /* before any contact */
    if (rc == FERRY_EXIT_OK)
        rc = ferry_cli_source_choose(cli, &r->code, &src);
    if (rc == FERRY_EXIT_OK)
        rc = ferry__check_pipeline(&src, r, name);
    if (rc == FERRY_EXIT_OK)
        rc = ferry_cli_source_send(cli, &r->code, &src, sha);
    if (rc == FERRY_EXIT_OK) {
        json_t *body = ferry__prun_body(r, &src, name, sha, params);
        rc = ferry_cli_source_create(cli, &src, "/v1/pipelines", body, &pl);
        json_decref(body);
    }
    if (rc == FERRY_EXIT_OK) {
        if (a->json) {
            ferry_cli_print_json(pl);
        } else {
            printf("pipeline #%lld (%s) created: %s\n", ferry__counter(pl), ferry_cli_str(pl, "id"),
                   ferry_cli_str(pl, "name"));
            ferry__print_nodes(pl);
        }
        if (r->watch)
            rc = ferry__watch(cli, pl, a->json ? stderr : stdout);
    }
    json_decref(pl);
    json_decref(params);
    ferry_cli_source_free(&src);
    return rc;
}

static int ferry__cmd_run(const ferry_cli *cli, int argc, char **argv)
{
    ferry__prun_args r = {.code = {.dir = "."}, .tags = json_array(), .argc = argc, .argv = argv};
    ferry_cli_args a;
    int rc = ferry_cli_parse_args(&ferry__prun_syntax, &r, argc, argv, &a);
    if (rc == FERRY_CLI_GO_ON) {
        r.code.project = a.project;
        if (a.n_rest != 1)
            rc = a.n_rest == 0
                     ? ferry_cli_usage_error("pipeline run", "expected a pipeline NAME")
                     : ferry_cli_usage_error("pipeline run", "unexpected argument '%s'", a.rest[1]);
        else if (ferry_cli_code_check("pipeline run", &r.code) != FERRY_EXIT_OK)
            rc = FERRY_EXIT_USAGE;
        else
            rc = ferry__run(cli, &r, &a);
    }
    free(r.params);
    json_decref(r.tags);
    return rc;
}

/* ---- list ---- */

static const char ferry__list_usage[] =
    "usage: ferry pipeline list [--project NAME] [--json]\n"
    "\n"
    "List pipelines, newest first. NODES is how many of its nodes ended\n"
    "(complete, error, stopped or skipped) of how many it has.\n"
    "\n"
    "  --project NAME  only this project's\n"
    "  --json          print ferryd's answer as JSON\n";

#define FERRY__LIST_COLS 7

static const char *const ferry__list_headings[FERRY__LIST_COLS] = {
    "#", "NAME", "PROJECT", "STATUS", "NODES", "CREATED", "ID"};

static int ferry__node_ended(const char *status)
{
    return ferry_cli_is_terminal(status) || strcmp(status, "skipped") == 0;
}

static void ferry__list_row(const json_t *pl, char **cells)
{
    const json_t *nodes = json_object_get(pl, "nodes");
    size_t i, ended = 0;
    json_t *node;
    json_array_foreach(nodes, i, node) ended += ferry__node_ended(ferry_cli_str(node, "status"));
    char created[64];
    ferry_cli_format_local_time(ferry_cli_str(pl, "created_at"), created, sizeof(created));
    cells[0] = ferry_asprintf("%lld", ferry__counter(pl));
    cells[1] = ferry_strdup(ferry_cli_str(pl, "name"));
    cells[2] = ferry_strdup(ferry_cli_str(pl, "project"));
    cells[3] = ferry_strdup(ferry_cli_str(pl, "status"));
    cells[4] = ferry_asprintf("%zu/%zu", ended, json_array_size(nodes));
    cells[5] = ferry_strdup(created);
    cells[6] = ferry_asprintf("%.8s", ferry_cli_str(pl, "id"));
}

static void ferry__print_list(const json_t *answer)
{
    ferry_cli_print_table(ferry__list_headings, FERRY__LIST_COLS,
                          json_object_get(answer, "pipelines"), ferry__list_row);
}

static const ferry_cli_syntax ferry__list_syntax = {
    .name = "pipeline list",
    .usage = ferry__list_usage,
    .operands = FERRY_CLI_NO_OPERAND,
    .project = 1,
    .json = 1,
};

static int ferry__cmd_list(const ferry_cli *cli, int argc, char **argv)
{
    ferry_cli_args a;
    int rc = ferry_cli_parse_args(&ferry__list_syntax, NULL, argc, argv, &a);
    if (rc != FERRY_CLI_GO_ON)
        return rc;
    char *path = ferry_cli_add_query(ferry_strdup("/v1/pipelines"), "project", a.project);
    json_t *answer = NULL;
    rc = ferry_cli_call(cli, "GET", path, NULL, 60, &answer);
    free(path);
    return ferry_cli_finish(rc, a.json, answer, ferry__print_list);
}

/* ---- show, stop ---- */

static const char ferry__show_usage[] =
    "usage: ferry pipeline show ID [--project NAME] [--json]\n"
    "\n"
    "Show a pipeline: its name, project, status (and why, when it failed), times,\n"
    "and a line per node: its step, status, execution, attempts, whether its\n"
    "execution was reused and whether it waits for approval.\n"
    "\n"
    "  --project NAME  look a counter ID up in this project (default as for\n"
    "                  ferry show)\n"
    "  --json          print the pipeline object as ferryd sent it\n";

static const char ferry__stop_usage[] =
    "usage: ferry pipeline stop ID [--project NAME] [--json]\n"
    "\n"
    "Stop a pipeline: nodes that did not start do not, and the executions of\n"
    "those that run are stopped.\n"
    "\n"
    "  --project NAME  look a counter ID up in this project\n"
    "  --json          print the pipeline object\n";

static const ferry_cli_syntax ferry__show_syntax = {
    .name = "pipeline show",
    .usage = ferry__show_usage,
    .operands = FERRY_CLI_OPERANDS,
    .project = 1,
    .json = 1,
};

static const ferry_cli_syntax ferry__stop_syntax = {
    .name = "pipeline stop",
    .usage = ferry__stop_usage,
    .operands = FERRY_CLI_OPERANDS,
    .project = 1,
    .json = 1,
};

/* Parse a command line of one operand, the pipeline ID (args->id). */
static int ferry__parse_one_id(const ferry_cli_syntax *syntax, int argc, char **argv,
                               ferry_cli_args *args)
{
    int rc = ferry_cli_parse_args(syntax, NULL, argc, argv, args);
    if (rc == FERRY_CLI_GO_ON && args->n_rest != 1)
        return ferry_cli_usage_error(syntax->name, "expected one pipeline ID");
    args->id = rc == FERRY_CLI_GO_ON ? args->rest[0] : NULL;
    return rc;
}

static int ferry__cmd_show(const ferry_cli *cli, int argc, char **argv)
{
    ferry_cli_args a;
    int rc = ferry__parse_one_id(&ferry__show_syntax, argc, argv, &a);
    if (rc != FERRY_CLI_GO_ON)
        return rc;
    json_t *pl = NULL;
    rc = ferry__get_pipeline(cli, a.id, a.project, &pl);
    return ferry_cli_finish(rc, a.json, pl, ferry__print_pipeline);
}

/* POST to the pipeline's `suffix` ("/stop"), ID looked up first (so that a
 * counter works as it does for show). */
static int ferry__post(const ferry_cli *cli, const json_t *pl, const char *suffix, json_t **out)
{
    char *path = ferry__pipeline_path(ferry_cli_str(pl, "id"), suffix);
    int rc = ferry_cli_call(cli, "POST", path, NULL, 60, out);
    free(path);
    return rc;
}

static int ferry__cmd_stop(const ferry_cli *cli, int argc, char **argv)
{
    ferry_cli_args a;
    int rc = ferry__parse_one_id(&ferry__stop_syntax, argc, argv, &a);
    if (rc != FERRY_CLI_GO_ON)
        return rc;
    json_t *pl = NULL, *answer = NULL;
    rc = ferry__get_pipeline(cli, a.id, a.project, &pl);
    if (rc == FERRY_EXIT_OK)
        rc = ferry__post(cli, pl, "/stop", &answer);
    json_decref(pl);
    return ferry_cli_finish(rc, a.json, answer, ferry__print_outcome_stdout);
}

/* ---- the subcommands on one node: logs, approve ---- */

/* ID NODE as operands, the pipeline fetched and its node found. *pl is
 * the pipeline (caller frees), *node in it. Returns an exit status. */
static int ferry__get_node(const ferry_cli *cli, const ferry_cli_syntax *syntax,
                           const ferry_cli_args *a, json_t **pl, const json_t **node)
{
    *pl = NULL;
    if (a->n_rest != 2)
        return ferry_cli_usage_error(syntax->name, "expected a pipeline ID and a NODE");
    int rc = ferry__get_pipeline(cli, a->rest[0], a->project, pl);
    if (rc == FERRY_EXIT_OK && (*node = ferry__find_node(syntax->name, *pl, a->rest[1])) == NULL)
        rc = FERRY_EXIT_USAGE;
    return rc;
}

static const char ferry__logs_usage[] =
    "usage: ferry pipeline logs ID NODE [-f] [--tail N] [--timestamps] [--project NAME]\n"
    "\n"
    "Print the log of the execution of pipeline ID's node NODE, as 'ferry logs'\n"
    "prints it: stdout lines to stdout, stderr lines and lifecycle events to\n"
    "stderr.\n"
    "\n"
    "  -f, --follow      keep printing until the execution ends\n"
    "  --tail N          start with the last N lines\n"
    "  --timestamps      put each line's time (UTC) in front of it\n"
    "  --project NAME    look a counter ID up in this project\n";

static int ferry__cmd_logs(const ferry_cli *cli, int argc, char **argv)
{
    ferry_cli_log_options opt = {.follow = 0, .tail = -1, .timestamps = 0, .cmd = "pipeline logs"};
    const ferry_cli_syntax syntax = {
        .name = "pipeline logs",
        .usage = ferry__logs_usage,
        .operands = FERRY_CLI_OPERANDS,
        .project = 1,
        .options = ferry_cli_log_long_options,
        .short_options = FERRY_CLI_LOG_SHORT_OPTIONS,
        .on_option = ferry_cli_log_option,
    };
    ferry_cli_args a;
    int rc = ferry_cli_parse_args(&syntax, &opt, argc, argv, &a);
    if (rc != FERRY_CLI_GO_ON)
        return rc;
    json_t *pl = NULL;
    const json_t *node = NULL;
    rc = ferry__get_node(cli, &syntax, &a, &pl, &node);
    const json_t *exec = rc == FERRY_EXIT_OK ? json_object_get(node, "execution") : NULL;
    if (rc == FERRY_EXIT_OK && !json_is_object(exec)) {
        fprintf(stderr,
                "ferry pipeline logs: node '%s' of pipeline #%lld has no execution yet (%s)\n",
                a.rest[1], ferry__counter(pl), ferry_cli_str(node, "status"));
        rc = FERRY_EXIT_FAILED;
    } else if (rc == FERRY_EXIT_OK) {
        rc = ferry_cli_stream_logs(cli, ferry_cli_str(exec, "id"), &opt, NULL);
    }
    json_decref(pl);
    return rc;
}

static const char ferry__approve_usage[] =
    "usage: ferry pipeline approve ID NODE [--reject] [--project NAME] [--json]\n"
    "\n"
    "Approve a node that waits for approval (its status is 'approval'), so that\n"
    "it runs; with --reject, refuse it.\n"
    "\n"
    "  --reject        refuse it instead\n"
    "  --project NAME  look a counter ID up in this project\n"
    "  --json          print the pipeline object\n";

static int ferry__approve_option(void *ctx, int c, const char *arg)
{
    (void)c; /* --reject is approve's only own option */
    (void)arg;
    *(int *)ctx = 1;
    return FERRY_EXIT_OK;
}

static const struct option ferry__approve_options[] = {
    {"reject", no_argument, NULL, 'r'},
    {NULL, 0, NULL, 0},
};

static const ferry_cli_syntax ferry__approve_syntax = {
    .name = "pipeline approve",
    .usage = ferry__approve_usage,
    .operands = FERRY_CLI_OPERANDS,
    .project = 1,
    .json = 1,
    .options = ferry__approve_options,
    .on_option = ferry__approve_option,
};

static int ferry__cmd_approve(const ferry_cli *cli, int argc, char **argv)
{
    int reject = 0;
    ferry_cli_args a;
    int rc = ferry_cli_parse_args(&ferry__approve_syntax, &reject, argc, argv, &a);
    if (rc != FERRY_CLI_GO_ON)
        return rc;
    json_t *pl = NULL, *answer = NULL;
    const json_t *node = NULL;
    rc = ferry__get_node(cli, &ferry__approve_syntax, &a, &pl, &node);
    if (rc == FERRY_EXIT_OK) {
        char *seg = ferry_cli_escape(a.rest[1]);
        char *suffix = ferry_asprintf("/nodes/%s/%s", seg, reject ? "reject" : "approve");
        rc = ferry__post(cli, pl, suffix, &answer);
        free(suffix);
        free(seg);
    }
    if (rc == FERRY_EXIT_OK && a.json)
        ferry_cli_print_json(answer);
    else if (rc == FERRY_EXIT_OK)
        printf("Pipeline #%lld (%s): node %s %s\n", ferry__counter(answer),
               ferry_cli_str(answer, "id"), a.rest[1], reject ? "rejected" : "approved");
    json_decref(answer);
    json_decref(pl);
    return rc;
}

/* ---- ferry pipeline SUBCOMMAND ---- */

typedef struct ferry__subcommand {
    const char *name;
    int (*fn)(const ferry_cli *cli, int argc, char **argv);
} ferry__subcommand;

static const ferry__subcommand ferry__subcommands[] = {
    {"run", ferry__cmd_run},   {"list", ferry__cmd_list}, {"show", ferry__cmd_show},
    {"stop", ferry__cmd_stop}, {"logs", ferry__cmd_logs}, {"approve", ferry__cmd_approve},
};

int ferry_cmd_pipeline(const ferry_cli *cli, int argc, char **argv)
{
    if (argc < 2) {
        fputs(ferry__pipeline_usage, stderr);
        return FERRY_EXIT_USAGE;
    }
    const char *sub = argv[1];
    if (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0 || strcmp(sub, "help") == 0) {
        fputs(ferry__pipeline_usage, stdout);
        return FERRY_EXIT_OK;
    }
    for (size_t i = 0; i < sizeof(ferry__subcommands) / sizeof(ferry__subcommands[0]); i++)
        if (strcmp(sub, ferry__subcommands[i].name) == 0)
            return ferry__subcommands[i].fn(cli, argc - 1, argv + 1);
    return ferry_cli_usage_error("pipeline",
                                 "unknown subcommand '%s': run, list, show, stop, "
                                 "logs or approve",
                                 sub);
}
