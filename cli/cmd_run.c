/* ferry run: validate locally, pack and upload the snapshot (or name a
 * commit), create the execution, and optionally watch it.
 *
 * What runs is a commit or a snapshot. A commit: --commit REF, or HEAD of
 * a git working copy one of whose remotes is a project's repository (as
 * `vh exec run` does); ferryd builds the snapshot from the commit, nothing
 * is uploaded. A snapshot (ad hoc): --adhoc, or anywhere else; DIR is
 * packed as it is and uploaded.
 *
 * Everything that can be checked without ferryd (the step file, the step,
 * parameter values, required inputs) is checked first, so a typo costs
 * neither an upload nor a round trip. ferryd validates again: it is the
 * authority, and the CLI sends the values as the user typed them. */
#include "source.h"

#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct ferry__run_args {
    const char *step_name;
    char *step_chosen;   /* the step a unique prefix named (owned), or NULL */
    int list_steps;      /* no STEP given: list them */
    ferry_cli_code code; /* what runs: --adhoc [DIR], --commit REF, --project */
    const char **params; /* "NAME=VALUE" as given, in order */
    size_t n_params;
    const char **inputs; /* "NAME=URL" */
    size_t n_inputs;
    const char *environment;
    json_t *tags;
    const char *param_file;    /* --parameter-file FILE, or NULL */
    const char *title, *image; /* --title, --image, or NULL */
    json_t *vars;              /* --var NAME=VALUE: {NAME: VALUE} */
    char **rewritten;          /* argv with --NAME=VALUE turned into -p NAME=VALUE (owned) */
    char **made;               /* the "NAME=VALUE" strings of it (owned) */
    size_t n_made;
    int watch, json;
    int priority;
    int autorestart; /* --autorestart */
    /* Seconds; -1 when not given, so that the step's own limit applies. */
    int64_t time_limit, no_output_timeout;
    /* The command line, for a value of --adhoc that stands apart. */
    int argc;
    char **argv;
} ferry__run_args;

static const char ferry__run_usage[] =
    "usage: ferry run STEP [--commit REF | --adhoc [DIR]] [-p NAME=VALUE]...\n"
    "                 [--NAME=VALUE]... [--parameter-file FILE] [--title TITLE]\n"
    "                 [--image IMAGE] [--var NAME=VALUE]...\n"
    "                 [--input NAME=URL]... [-e ENV] [--tag TAG]... [--project NAME]\n"
    "                 [--priority] [--autorestart] [--time-limit DURATION]\n"
    "                 [--no-output-timeout DURATION] [--watch] [--json]\n"
    "\n"
    "Start an execution of STEP from the step file, ferry.yaml (or valohai.yaml).\n"
    "What runs is one of:\n"
    "  a commit   with --commit REF; or, without --commit or --adhoc, in a git\n"
    "             working copy one of whose remotes is a project's repository\n"
    "             (ferry projects): its HEAD, as committed. Changes not committed\n"
    "             are not included (ferry run says how many); the commit must be\n"
    "             pushed. ferryd takes the files from the commit; nothing is\n"
    "             uploaded.\n"
    "  ad hoc     with --adhoc, and anywhere else: the folder DIR as it is, packed\n"
    "             (honouring .gitignore, leaving out .git/) and uploaded unless\n"
    "             ferryd has that snapshot already.\n"
    "The step file, the step and the values are checked here first (against the\n"
    "commit's step file when this working copy has the commit), then the\n"
    "execution is created.\n"
    "\n"
    "  --commit REF        run this commit of the project's repository: a sha (or\n"
    "                      its first characters), a branch or a tag, as ferryd\n"
    "                      knows them\n"
    "STEP may be the first characters of one step's name; without STEP, the steps\n"
    "of the step file are listed. Ignored when packing: what .gitignore, .vhignore\n"
    "and .ferryignore say.\n"
    "\n"
    "  -a, --adhoc [DIR]   run the folder DIR as it is (default: .); DIR is taken\n"
    "                      when the next argument is an existing folder, or write\n"
    "                      --adhoc=DIR\n"
    "  -p, --param NAME=VALUE\n"
    "                      a parameter value; repeat a multiple parameter's NAME for\n"
    "                      a list\n"
    "  --NAME=VALUE, --NAME VALUE\n"
    "                      the same, for a NAME that is not one of run's options\n"
    "                      (as vh exec run takes them); --NAME alone is NAME=true\n"
    "  --parameter-file FILE\n"
    "                      parameter values from a JSON or YAML object; -p and\n"
    "                      --NAME=VALUE win over it\n"
    "  --title TITLE       the execution's title\n"
    "  --image IMAGE       run in this image instead of the step's\n"
    "  --var NAME=VALUE    an environment variable of the commands; repeatable\n"
    "  --input NAME=URL    an input's URL; repeat for several files\n"
    "  -e, --environment ENV\n"
    "                      where to run (default: the step's, else ferryd's default)\n"
    "  --tag TAG           a tag; repeatable\n"
    "  --project NAME      project name (default: $FERRY_PROJECT, else the project\n"
    "                      whose repository is a remote of DIR's working copy, else\n"
    "                      DIR's name)\n"
    "  --priority          queue ahead of normal executions in the environment\n"
    "  --autorestart       when its worker is lost (a spot interruption), run it again\n"
    "                      at once, with its outputs so far as the input _restart\n"
    "                      (running work is never pre-empted)\n"
    "  --time-limit DURATION\n"
    "                      stop the execution after this long (overrides the\n"
    "                      step's time-limit; 0 means none); DURATION is seconds\n"
    "                      (90) or units: 10m, 1h10m, 2d\n"
    "  --no-output-timeout DURATION\n"
    "                      stop it when the commands print nothing for this long\n"
    "                      (overrides the step's no-output-timeout; 0 means none)\n"
    "  --watch             follow the log until the execution ends; exit status 0\n"
    "                      complete, 1 error, 2 stopped\n"
    "  --json              print the created execution as JSON\n";

static void ferry__push(const char ***list, size_t *n, const char *item)
{
    *list = ferry_xrealloc(*list, (*n + 1) * sizeof(**list));
    (*list)[(*n)++] = item;
}

/* A duration option's value in seconds; a usage error names the option. */
static int ferry__parse_duration(const char *opt, const char *text, int64_t *seconds)
{
    if (ferry_duration_parse(text, seconds) != 0)
        return ferry_cli_usage_error(
            "run", "%s wants a duration such as 90, 10m or 1h10m, not '%s'", opt, text);
    return FERRY_EXIT_OK;
}

enum {
    FERRY__OPT_PRIORITY = 256,
    FERRY__OPT_TIME_LIMIT,
    FERRY__OPT_NO_OUTPUT,
    FERRY__OPT_PARAM_FILE,
    FERRY__OPT_TITLE,
    FERRY__OPT_IMAGE,
    FERRY__OPT_VAR,
    FERRY__OPT_AUTORESTART
};

static const struct option ferry__run_options[] = {
    {"adhoc", optional_argument, NULL, FERRY_CLI_OPT_ADHOC},
    {"commit", required_argument, NULL, FERRY_CLI_OPT_COMMIT},
    {"parameter-file", required_argument, NULL, FERRY__OPT_PARAM_FILE},
    {"title", required_argument, NULL, FERRY__OPT_TITLE},
    {"image", required_argument, NULL, FERRY__OPT_IMAGE},
    {"var", required_argument, NULL, FERRY__OPT_VAR},
    {"param", required_argument, NULL, 'p'},
    {"input", required_argument, NULL, 'i'},
    {"environment", required_argument, NULL, 'e'},
    {"tag", required_argument, NULL, 't'},
    {"watch", no_argument, NULL, 'w'},
    {"priority", no_argument, NULL, FERRY__OPT_PRIORITY},
    {"autorestart", no_argument, NULL, FERRY__OPT_AUTORESTART},
    {"time-limit", required_argument, NULL, FERRY__OPT_TIME_LIMIT},
    {"no-output-timeout", required_argument, NULL, FERRY__OPT_NO_OUTPUT},
    {NULL, 0, NULL, 0},
};

/* One of run's own options into the ferry__run_args ctx points at. */
static int ferry__run_option(void *ctx, int c, const char *arg)
{
    ferry__run_args *r = ctx;
    if (ferry_cli_code_option(&r->code, c, arg, r->argc, r->argv))
        return FERRY_EXIT_OK;
    switch (c) {
    case 'p':
        ferry__push(&r->params, &r->n_params, arg);
        return FERRY_EXIT_OK;
    case 'i':
        ferry__push(&r->inputs, &r->n_inputs, arg);
        return FERRY_EXIT_OK;
    case 'e':
        r->environment = arg;
        return FERRY_EXIT_OK;
    case 't':
        json_array_append_new(r->tags, json_string(arg));
        return FERRY_EXIT_OK;
    case 'w':
        r->watch = 1;
        return FERRY_EXIT_OK;
    case FERRY__OPT_PRIORITY:
        r->priority = 1;
        return FERRY_EXIT_OK;
    case FERRY__OPT_AUTORESTART:
        r->autorestart = 1;
        return FERRY_EXIT_OK;
    case FERRY__OPT_PARAM_FILE:
        r->param_file = arg;
        return FERRY_EXIT_OK;
    case FERRY__OPT_TITLE:
        r->title = arg;
        return FERRY_EXIT_OK;
    case FERRY__OPT_IMAGE:
        r->image = arg;
        return FERRY_EXIT_OK;
    case FERRY__OPT_VAR: {
        const char *eq = strchr(arg, '=');
        if (eq == NULL || eq == arg)
            return ferry_cli_usage_error("run", "--var wants NAME=VALUE, not '%s'", arg);
        char *name = ferry_asprintf("%.*s", (int)(eq - arg), arg);
        json_object_set_new(r->vars, name, json_string(eq + 1));
        free(name);
        return FERRY_EXIT_OK;
    }
    case FERRY__OPT_TIME_LIMIT:
        return ferry__parse_duration("--time-limit", arg, &r->time_limit);
    default: /* FERRY__OPT_NO_OUTPUT */
        return ferry__parse_duration("--no-output-timeout", arg, &r->no_output_timeout);
    }
}

static const ferry_cli_syntax ferry__run_syntax = {
    .name = "run",
    .usage = ferry__run_usage,
    .operands = FERRY_CLI_OPERANDS,
    .project = 1,
    .json = 1,
    .options = ferry__run_options,
    .short_options = "p:e:a::w",
    .on_option = ferry__run_option,
};

/* An argument that is a value, not an option: "5", "-0.1", "x". */
static int ferry__is_value(const char *s)
{
    return s[0] != '-' || isdigit((unsigned char)s[1]) ||
           (s[1] == '.' && isdigit((unsigned char)s[2]));
}

/* argv with every --NAME=VALUE, --NAME VALUE or --NAME (=true) whose NAME
 * is not an option of run turned into -p NAME=VALUE, as `vh exec run STEP
 * --epochs=5` takes parameters. Until a "--". */
static void ferry__rewrite_params(ferry__run_args *r, int argc, char **argv)
{
    r->rewritten = ferry_xcalloc((size_t)argc * 2 + 1, sizeof(char *));
    r->made = ferry_xcalloc((size_t)argc + 1, sizeof(char *));
    int n = 0, done = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        int takes_value = 0;
        size_t len = a[0] == '-' && a[1] == '-' ? strcspn(a + 2, "=") : 0;
        if (i == 0 || done || len == 0 ||
            ferry_cli_known_option(&ferry__run_syntax, a + 2, len, &takes_value)) {
            done = done || strcmp(a, "--") == 0;
            r->rewritten[n++] = argv[i];
            if (takes_value && a[2 + len] == '\0' && i + 1 < argc)
                r->rewritten[n++] = argv[++i]; /* its value, whatever it looks like */
            continue;
        }
        const char *value = "true";
        if (a[2 + len] == '=')
            value = a + 3 + len;
        else if (i + 1 < argc && ferry__is_value(argv[i + 1]))
            value = argv[++i];
        char *pair = ferry_asprintf("%.*s=%s", (int)len, a + 2, value);
        r->made[r->n_made++] = pair;
        r->rewritten[n++] = "-p";
        r->rewritten[n++] = pair;
    }
    r->rewritten[n] = NULL;
    r->argc = n;
    r->argv = r->rewritten;
}

/* Returns FERRY_CLI_GO_ON, or the exit status to end with. */
static int ferry__parse_args(ferry__run_args *r, int argc, char **argv)
{
    ferry_cli_args a;
    ferry__rewrite_params(r, argc, argv);
    int rc = ferry_cli_parse_args(&ferry__run_syntax, r, r->argc, r->argv, &a);
    if (rc != FERRY_CLI_GO_ON)
        return rc;
    r->code.project = a.project;
    r->json = a.json;
    if (a.n_rest < 1) {
        r->list_steps = 1; /* `ferry run` alone lists the steps, as `vh exec run` does */
        return ferry_cli_is_dir(r->code.dir)
                   ? FERRY_CLI_GO_ON
                   : ferry_cli_usage_error("run", "%s is not a folder", r->code.dir);
    }
    if (a.n_rest > 1)
        return ferry_cli_usage_error("run", "unexpected argument '%s'", a.rest[1]);
    r->step_name = a.rest[0];
    return ferry_cli_code_check("run", &r->code) == FERRY_EXIT_OK ? FERRY_CLI_GO_ON
                                                                  : FERRY_EXIT_USAGE;
}

/* ---- local validation ---- */

static const ferry_param_def *ferry__param_def(const ferry_step *step, const char *name)
{
    if (step == NULL)
        return NULL;
    for (size_t i = 0; i < step->n_params; i++)
        if (strcmp(step->params[i].name, name) == 0)
            return &step->params[i];
    return NULL;
}

/* Split "NAME=VALUE"; *name is malloc'd. */
static int ferry__split_pair(const char *opt, const char *pair, char **name, const char **value)
{
    const char *eq = strchr(pair, '=');
    if (eq == NULL || eq == pair)
        return ferry_cli_usage_error("run", "%s wants NAME=VALUE, not '%s'", opt, pair);
    *name = ferry_xmalloc((size_t)(eq - pair) + 1);
    memcpy(*name, pair, (size_t)(eq - pair));
    (*name)[eq - pair] = '\0';
    *value = eq + 1;
    return FERRY_EXIT_OK;
}

/* -p values as strings; a multiple parameter's values as a list. Without
 * the step (a commit only ferryd has), a repeated NAME is a list and
 * ferryd tells whether the parameter takes one. */
static int ferry__build_params(const ferry__run_args *r, const ferry_step *step, json_t *params)
{
    for (size_t i = 0; i < r->n_params; i++) {
        char *name = NULL;
        const char *value = NULL;
        if (ferry__split_pair("-p", r->params[i], &name, &value) != FERRY_EXIT_OK)
            return FERRY_EXIT_USAGE;
        const ferry_param_def *def = ferry__param_def(step, name);
        json_t *have = json_object_get(params, name);
        int rc = FERRY_EXIT_OK;
        if (def != NULL && def->multiple != FERRY_MULTIPLE_NONE) {
            if (have == NULL)
                json_object_set_new(params, name, have = json_array());
            json_array_append_new(have, json_string(value));
        } else if (have != NULL && step == NULL) {
            if (!json_is_array(have)) {
                json_t *list = json_pack("[O]", have);
                json_object_set_new(params, name, list);
                have = list;
            }
            json_array_append_new(have, json_string(value));
        } else if (have != NULL) {
            fprintf(stderr,
                    "ferry: parameter '%s' is given more than once, but it takes one "
                    "value\n",
                    name);
            rc = FERRY_EXIT_USAGE;
        } else {
            json_object_set_new(params, name, json_string(value));
        }
        free(name);
        if (rc != FERRY_EXIT_OK)
            return rc;
    }
    return FERRY_EXIT_OK;
}

static int ferry__build_inputs(const ferry__run_args *r, json_t *inputs)
{
    for (size_t i = 0; i < r->n_inputs; i++) {
        char *name = NULL;
        const char *url = NULL;
        if (ferry__split_pair("--input", r->inputs[i], &name, &url) != FERRY_EXIT_OK)
            return FERRY_EXIT_USAGE;
        json_t *have = json_object_get(inputs, name);
        if (have == NULL)
            json_object_set_new(inputs, name, have = json_array());
        json_array_append_new(have, json_string(url));
        free(name);
    }
    return FERRY_EXIT_OK;
}

/* The checks ferryd will make, made here first so that mistakes show
 * before anything is packed or sent. */
/* --parameter-file: a JSON or YAML object of values, under those given one
 * by one (-p, --NAME=VALUE), which win. */
static int ferry__merge_param_file(const ferry__run_args *r, json_t *params)
{
    if (r->param_file == NULL)
        return FERRY_EXIT_OK;
    size_t len = 0;
    char *text = ferry_read_file(r->param_file, &len);
    if (text == NULL) {
        fprintf(stderr, "ferry: cannot read %s: %s\n", r->param_file, strerror(errno));
        return FERRY_EXIT_USAGE;
    }
    char err[1024] = "";
    json_t *values = ferry_yaml_to_json(r->param_file, text, len, err, sizeof(err));
    free(text);
    if (values == NULL || !json_is_object(values)) {
        if (values)
            fprintf(stderr, "ferry: %s: expected an object of parameter values (name: value)\n",
                    r->param_file);
        else
            fprintf(stderr, "ferry: %s\n", err);
        json_decref(values);
        return FERRY_EXIT_USAGE;
    }
    const char *name;
    json_t *v;
    json_object_foreach(values, name, v)
    {
        if (json_object_get(params, name) == NULL)
            json_object_set(params, name, v);
    }
    json_decref(values);
    return FERRY_EXIT_OK;
}

static int ferry__validate(ferry__run_args *r, const ferry_cli_source *src, json_t *params,
                           json_t *inputs)
{
    ferry_stepfile *sf = NULL;
    int rc = ferry_cli_source_stepfile(src, r->code.dir, &sf);
    if (rc != FERRY_EXIT_OK)
        return rc;
    if (sf == NULL) {
        /* A commit this working copy does not have: ferryd reads its step file. */
        rc = ferry__build_params(r, NULL, params);
        if (rc == FERRY_EXIT_OK)
            rc = ferry__merge_param_file(r, params);
        return rc == FERRY_EXIT_OK ? ferry__build_inputs(r, inputs) : rc;
    }
    int ambiguous = 0;
    const ferry_step *step = ferry_stepfile_find_prefix(sf, r->step_name, &ambiguous);
    if (step != NULL && strcmp(step->name, r->step_name) != 0) {
        r->step_chosen = ferry_strdup(step->name); /* what ferryd is sent */
        r->step_name = r->step_chosen;
    }
    if (step == NULL) {
        char *known = ferry_stepfile_step_names(sf);
        char file[PATH_MAX];
        ferry_cli_source_file_name(src, sf, file, sizeof(file));
        fprintf(stderr, "ferry: %s step '%s' in %s; %s\n",
                ambiguous ? "more than one step starts with" : "unknown", r->step_name, file,
                known ? known : "");
        free(known);
        ferry_stepfile_free(sf);
        return FERRY_EXIT_USAGE;
    }
    if (step->broken) { /* valohai-yaml warns of it; running it is refused */
        fprintf(stderr, "ferry: %s\n", step->broken);
        ferry_stepfile_free(sf);
        return FERRY_EXIT_USAGE;
    }
    rc = ferry__build_params(r, step, params);
    if (rc == FERRY_EXIT_OK)
        rc = ferry__merge_param_file(r, params);
    if (rc == FERRY_EXIT_OK)
        rc = ferry__build_inputs(r, inputs);
    char err[1024] = "";
    json_t *resolved = NULL;
    if (rc == FERRY_EXIT_OK &&
        ferry_step_resolve_parameters(step, params, &resolved, err, sizeof(err)) != 0) {
        fprintf(stderr, "ferry: step '%s': %s\n", step->name, err);
        rc = FERRY_EXIT_USAGE;
    }
    json_decref(resolved);
    resolved = NULL;
    if (rc == FERRY_EXIT_OK &&
        ferry_step_resolve_inputs(step, inputs, &resolved, err, sizeof(err)) != 0) {
        fprintf(stderr, "ferry: step '%s': %s\n", step->name, err);
        rc = FERRY_EXIT_USAGE;
    }
    json_decref(resolved);
    ferry_stepfile_free(sf);
    return rc;
}

/* ---- the execution ---- */

static json_t *ferry__create_body(const ferry__run_args *r, const ferry_cli_source *src,
                                  const char *snapshot, json_t *params, json_t *inputs)
{
    json_t *body = json_pack("{s:s, s:s, s:O, s:O, s:O}", "project", src->project, "step",
                             r->step_name, "parameters", params, "inputs", inputs, "tags", r->tags);
    ferry_cli_source_set_code(src, snapshot, body);
    if (src->ref == NULL) {
        /* Which commit the working copy was based on, for the record. */
        const char *head = src->wt != NULL ? ferry_worktree_head(src->wt) : NULL;
        if (head != NULL)
            json_object_set_new(body, "based_on", json_string(head));
    }
    if (r->environment != NULL)
        json_object_set_new(body, "environment", json_string(r->environment));
    if (r->title != NULL)
        json_object_set_new(body, "title", json_string(r->title));
    if (r->image != NULL)
        json_object_set_new(body, "image", json_string(r->image));
    if (json_object_size(r->vars) > 0)
        json_object_set(body, "environment_variables", r->vars);
    /* Only what was asked for: an absent limit leaves the step's in force. */
    if (r->priority)
        json_object_set_new(body, "priority", json_true());
    if (r->autorestart)
        json_object_set_new(body, "autorestart", json_true());
    if (r->time_limit >= 0)
        json_object_set_new(body, "time_limit", json_integer((json_int_t)r->time_limit));
    if (r->no_output_timeout >= 0)
        json_object_set_new(body, "no_output_timeout",
                            json_integer((json_int_t)r->no_output_timeout));
    return body;
}

static int ferry__create(const ferry_cli *cli, const ferry__run_args *r,
                         const ferry_cli_source *src, const char *snapshot, json_t *params,
                         json_t *inputs, json_t **exec)
{
    json_t *body = ferry__create_body(r, src, snapshot, params, inputs);
    int rc = ferry_cli_source_create(cli, src, "/v1/executions", body, exec);
    json_decref(body);
    return rc;
}

int ferry_cli_watch(const ferry_cli *cli, const json_t *exec)
{
    ferry_cli_log_options opt = {.follow = 1, .tail = -1, .timestamps = 0};
    json_t *final = NULL;
    fflush(stdout);
    int rc = ferry_cli_stream_logs(cli, ferry_cli_str(exec, "id"), &opt, &final);
    if (rc == FERRY_EXIT_OK && final != NULL) {
        ferry_cli_print_outcome(stderr, final);
        rc = ferry_cli_exit_for(ferry_cli_str(final, "status"));
    }
    json_decref(final);
    return rc;
}

/* `ferry run` without a step: the steps of DIR's step file, one a line. */
static int ferry__list_steps(const ferry__run_args *r)
{
    ferry_stepfile *sf = NULL;
    int rc = ferry_cli_load_stepfile(r->code.dir, &sf);
    if (rc != FERRY_EXIT_OK)
        return rc;
    const char *base = strrchr(sf->path, '/');
    printf("Steps in %s (ferry run STEP, or a prefix of it; --help for the options):\n",
           base ? base + 1 : sf->path);
    for (size_t i = 0; i < sf->n_steps; i++)
        if (sf->steps[i].name)
            printf("  %s\n", sf->steps[i].name);
    ferry_stepfile_free(sf);
    return FERRY_EXIT_OK;
}

static int ferry__run(const ferry_cli *cli, ferry__run_args *r)
{
    if (r->list_steps)
        return ferry__list_steps(r);
    json_t *params = json_object(), *inputs = json_object(), *exec = NULL;
    char sha[65] = "";
    ferry_cli_source src;
    memset(&src, 0, sizeof(src));
    int rc = ferry_cli_source_choose(cli, &r->code, &src);
    if (rc == FERRY_EXIT_OK)
        rc = ferry__validate(r, &src, params, inputs);
    if (rc == FERRY_EXIT_OK)
        rc = ferry_cli_source_send(cli, &r->code, &src, sha);
    if (rc == FERRY_EXIT_OK)
        rc = ferry__create(cli, r, &src, sha, params, inputs, &exec);
    if (rc == FERRY_EXIT_OK) {
        if (r->json)
            ferry_cli_print_json(exec);
        else
            printf("Execution #%lld (%s) created: %s\n",
                   (long long)json_integer_value(json_object_get(exec, "counter")),
                   ferry_cli_str(exec, "id"), ferry_cli_str(exec, "step"));
        if (r->watch)
            rc = ferry_cli_watch(cli, exec);
    }
    json_decref(exec);
    json_decref(params);
    json_decref(inputs);
    ferry_cli_source_free(&src);
    return rc;
}

int ferry_cmd_run(const ferry_cli *cli, int argc, char **argv)
{
    ferry__run_args r = {.code = {.dir = "."},
                         .tags = json_array(),
                         .vars = json_object(),
                         .time_limit = -1,
                         .no_output_timeout = -1};
    int rc = ferry__parse_args(&r, argc, argv);
    if (rc == FERRY_CLI_GO_ON)
        rc = ferry__run(cli, &r);
    free(r.params);
    free(r.inputs);
    free(r.step_chosen);
    for (size_t i = 0; i < r.n_made; i++)
        free(r.made[i]);
    free(r.made);
    free(r.rewritten);
    json_decref(r.tags);
    json_decref(r.vars);
    return rc;
}
