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
#include "cli.h"
#include "worktree.h"

#include "tarball.h"
#include "stepfile.h"
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

/* Below this an upload is over before a progress bar would be read. */
#define FERRY__PROGRESS_MIN_BYTES (1024 * 1024)

typedef struct ferry__run_args {
    const char *step_name;
    char *step_chosen; /* the step a unique prefix named (owned), or NULL */
    int list_steps;    /* no STEP given: list them */
    const char *dir;
    const char **params; /* "NAME=VALUE" as given, in order */
    size_t n_params;
    const char **inputs; /* "NAME=URL" */
    size_t n_inputs;
    const char *environment;
    json_t *tags;
    const char *project;
    const char *commit;        /* --commit REF, or NULL */
    const char *param_file;    /* --parameter-file FILE, or NULL */
    const char *title, *image; /* --title, --image, or NULL */
    json_t *vars;              /* --var NAME=VALUE: {NAME: VALUE} */
    char **rewritten;          /* argv with --NAME=VALUE turned into -p NAME=VALUE (owned) */
    char **made;               /* the "NAME=VALUE" strings of it (owned) */
    size_t n_made;
    int adhoc; /* --adhoc given */
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

static int ferry__is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

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
    FERRY__OPT_COMMIT,
    FERRY__OPT_PARAM_FILE,
    FERRY__OPT_TITLE,
    FERRY__OPT_IMAGE,
    FERRY__OPT_VAR,
    FERRY__OPT_AUTORESTART
};

static const struct option ferry__run_options[] = {
    {"adhoc", optional_argument, NULL, 'a'},
    {"commit", required_argument, NULL, FERRY__OPT_COMMIT},
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

/* --adhoc [DIR]. An optional value may stand apart ("--adhoc DIR") only
 * when it cannot be the step: it names an existing folder. */
static void ferry__adhoc(ferry__run_args *r, const char *arg)
{
    r->adhoc = 1;
    if (arg != NULL)
        r->dir = arg;
    else if (optind < r->argc && r->argv[optind][0] != '-' && ferry__is_dir(r->argv[optind]))
        r->dir = r->argv[optind++];
}

/* One of run's own options into the ferry__run_args ctx points at. */
static int ferry__run_option(void *ctx, int c, const char *arg)
{
    ferry__run_args *r = ctx;
    switch (c) {
    case 'a':
        ferry__adhoc(r, arg);
        return FERRY_EXIT_OK;
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
    case FERRY__OPT_COMMIT:
        r->commit = arg;
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
    r->project = a.project;
    r->json = a.json;
    if (a.n_rest < 1) {
        r->list_steps = 1; /* `ferry run` alone lists the steps, as `vh exec run` does */
        return ferry__is_dir(r->dir) ? FERRY_CLI_GO_ON
                                     : ferry_cli_usage_error("run", "%s is not a folder", r->dir);
    }
    if (a.n_rest > 1)
        return ferry_cli_usage_error("run", "unexpected argument '%s'", a.rest[1]);
    r->step_name = a.rest[0];
    if (r->commit != NULL && r->adhoc)
        return ferry_cli_usage_error("run", "--commit and --adhoc exclude each other: a commit "
                                            "or the working copy?");
    if (r->commit != NULL && r->commit[0] == '\0')
        return ferry_cli_usage_error("run", "--commit wants a sha, branch or tag");
    if (!ferry__is_dir(r->dir))
        return ferry_cli_usage_error("run", "%s is not a folder", r->dir);
    return FERRY_CLI_GO_ON;
}

/* ---- what runs: a commit, or the working copy as it is ---- */

typedef struct ferry__source {
    ferry_worktree *wt; /* DIR's git working copy, or NULL */
    const char *ref;    /* what "commit" sends; NULL: ad hoc */
    char local[41];     /* the commit's sha in wt; "" when wt does not know it */
    char *project;      /* the project the execution goes to */
    char *repository;   /* the project's repository (as ferryd shows it), or NULL */
    int head;           /* ref is wt's HEAD, chosen by the working copy's remote */
} ferry__source;

/* --project, else $FERRY_PROJECT, else NULL. */
static const char *ferry__named_project(const ferry__run_args *r)
{
    if (r->project != NULL && r->project[0] != '\0')
        return r->project;
    const char *env = getenv("FERRY_PROJECT");
    return env != NULL && env[0] != '\0' ? env : NULL;
}

/* DIR's folder name: the project of an ad-hoc run that names none. */
static char *ferry__folder_name(const char *dir)
{
    char abs[PATH_MAX];
    if (realpath(dir, abs) == NULL)
        return ferry_strdup("default");
    const char *base = strrchr(abs, '/');
    return ferry_strdup(base && base[1] ? base + 1 : "default");
}

/* The first of ferryd's projects (only `named`, when not NULL) whose
 * repository one of wt's remotes names: its name and repository, malloc'd,
 * or both left NULL. A ferryd that has no /v1/projects (404) has none.
 * Returns an exit status, the failure printed. */
static int ferry__linked_project(const ferry_cli *cli, const ferry_worktree *wt, const char *named,
                                 char **name, char **repository)
{
    *name = *repository = NULL;
    if (ferry_worktree_n_remotes(wt) == 0)
        return FERRY_EXIT_OK;
    ferry_cli_request req = {.method = "GET", .path = "/v1/projects", .timeout_s = 60};
    ferry_cli_response res;
    ferry_cli_http(cli, &req, &res);
    int rc = FERRY_EXIT_OK;
    json_t *answer = NULL;
    if (res.transport_ok && res.status == 200)
        answer = json_loadb(res.body, res.body_len, 0, NULL);
    else if (!(res.transport_ok && res.status == 404))
        rc = ferry_cli_report(cli, &res);
    ferry_cli_response_free(&res);
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(answer, "projects"), i, p)
    {
        const char *url = json_string_value(json_object_get(p, "repository"));
        if (url == NULL || (named != NULL && strcmp(named, ferry_cli_str(p, "name")) != 0))
            continue;
        for (size_t k = 0; k < ferry_worktree_n_remotes(wt) && *name == NULL; k++)
            if (ferry_url_same_repository(url, ferry_worktree_remote(wt, k))) {
                *name = ferry_strdup(ferry_cli_str(p, "name"));
                *repository = ferry_strdup(url);
            }
        if (*name != NULL)
            break;
    }
    json_decref(answer);
    return rc;
}

/* --commit REF: its project is the one named, else the one the working
 * copy is linked to, else the folder's name. */
static int ferry__choose_commit(const ferry_cli *cli, const ferry__run_args *r, ferry__source *src)
{
    src->ref = r->commit;
    if (src->wt != NULL && ferry_worktree_find_commit(src->wt, r->commit, src->local) != 0)
        src->local[0] = '\0';
    const char *named = ferry__named_project(r);
    if (named != NULL) {
        src->project = ferry_strdup(named);
        return FERRY_EXIT_OK;
    }
    int rc = FERRY_EXIT_OK;
    if (src->wt != NULL)
        rc = ferry__linked_project(cli, src->wt, NULL, &src->project, &src->repository);
    if (rc == FERRY_EXIT_OK && src->project == NULL)
        src->project = ferry__folder_name(r->dir);
    return rc;
}

/* Which it is, and in which project. Returns an exit status. */
static int ferry__choose(const ferry_cli *cli, const ferry__run_args *r, ferry__source *src)
{
    if (ferry_worktree_open(r->dir, &src->wt) != 0)
        src->wt = NULL;
    if (r->commit != NULL)
        return ferry__choose_commit(cli, r, src);
    const char *named = ferry__named_project(r);
    const char *head = src->wt != NULL ? ferry_worktree_head(src->wt) : NULL;
    if (!r->adhoc && head != NULL) {
        int rc = ferry__linked_project(cli, src->wt, named, &src->project, &src->repository);
        if (rc != FERRY_EXIT_OK)
            return rc;
        if (src->project != NULL) {
            src->ref = head;
            snprintf(src->local, sizeof(src->local), "%s", head);
            src->head = 1;
            return FERRY_EXIT_OK;
        }
    }
    src->project = named != NULL ? ferry_strdup(named) : ferry__folder_name(r->dir);
    return FERRY_EXIT_OK;
}

static void ferry__source_free(ferry__source *src)
{
    ferry_worktree_free(src->wt);
    free(src->project);
    free(src->repository);
}

/* What the working copy holds that HEAD does not, said once: it does not
 * run. */
static void ferry__note_changes(const ferry__source *src)
{
    if (!src->head)
        return;
    int n = ferry_worktree_changed(src->wt);
    if (n > 0)
        fprintf(stderr,
                "%d file%s changed since %.7s %s not included; --adhoc runs the working "
                "copy\n",
                n, n == 1 ? "" : "s", src->ref, n == 1 ? "is" : "are");
}

/* ---- local validation ---- */

static int ferry__load_stepfile(const char *dir, ferry_stepfile **sf)
{
    static const char *const names[] = {"ferry.yaml", "valohai.yaml"};
    for (size_t i = 0; i < 2; i++) {
        char *path = ferry_asprintf("%s/%s", dir, names[i]);
        if (access(path, F_OK) != 0) {
            free(path);
            continue;
        }
        char err[1024] = "";
        int rc = ferry_stepfile_parse_file(path, sf, err, sizeof(err));
        free(path);
        if (rc == 0)
            return FERRY_EXIT_OK;
        fprintf(stderr, "ferry: %s\n", err);
        return FERRY_EXIT_USAGE;
    }
    fprintf(stderr, "ferry: no ferry.yaml or valohai.yaml in %s\n", dir);
    return FERRY_EXIT_USAGE;
}

/* A step file's errors, each "NAME:LINE: ..." as "5d6e7f8:NAME:LINE: ...":
 * the file of that commit, not the one in the folder. */
static void ferry__print_commit_errors(const char *sha, const char *name, const char *err)
{
    size_t name_n = strlen(name);
    for (const char *line = err; *line != '\0';) {
        size_t n = strcspn(line, "\n");
        if (strncmp(line, name, name_n) == 0 && line[name_n] == ':')
            fprintf(stderr, "ferry: %.7s:%.*s\n", sha, (int)n, line);
        else
            fprintf(stderr, "ferry: %.*s\n", (int)n, line);
        line += n;
        if (*line == '\n')
            line++;
    }
}

/* The step file of commit SHA of the working copy, as ferryd will read it. */
static int ferry__load_commit_stepfile(ferry_worktree *wt, const char *sha, ferry_stepfile **sf)
{
    static const char *const names[] = {"ferry.yaml", "valohai.yaml"};
    for (size_t i = 0; i < 2; i++) {
        char *buf = NULL;
        size_t len = 0;
        int got = ferry_worktree_read_file(wt, sha, names[i], &buf, &len);
        if (got == FERRY_ENOENT)
            continue;
        if (got != 0) {
            fprintf(stderr, "ferry: cannot read %s of commit %.7s: %s\n", names[i], sha,
                    ferry_strerror(got));
            return FERRY_EXIT_FAILED;
        }
        char err[1024] = "";
        int rc = ferry_stepfile_parse_buffer(names[i], buf, len, sf, err, sizeof(err));
        free(buf);
        if (rc == 0)
            return FERRY_EXIT_OK;
        ferry__print_commit_errors(sha, names[i], err);
        return FERRY_EXIT_USAGE;
    }
    fprintf(stderr, "ferry: no ferry.yaml or valohai.yaml in commit %.7s\n", sha);
    return FERRY_EXIT_USAGE;
}

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

static int ferry__validate(ferry__run_args *r, const ferry__source *src, json_t *params,
                           json_t *inputs)
{
    if (src->ref != NULL && src->local[0] == '\0') {
        /* A commit this working copy does not have: ferryd reads its step file. */
        int rc = ferry__build_params(r, NULL, params);
        if (rc == FERRY_EXIT_OK)
            rc = ferry__merge_param_file(r, params);
        return rc == FERRY_EXIT_OK ? ferry__build_inputs(r, inputs) : rc;
    }
    ferry_stepfile *sf = NULL;
    int rc = src->ref != NULL ? ferry__load_commit_stepfile(src->wt, src->local, &sf)
                              : ferry__load_stepfile(r->dir, &sf);
    if (rc != FERRY_EXIT_OK)
        return rc;
    int ambiguous = 0;
    const ferry_step *step = ferry_stepfile_find_prefix(sf, r->step_name, &ambiguous);
    if (step != NULL && strcmp(step->name, r->step_name) != 0) {
        r->step_chosen = ferry_strdup(step->name); /* what ferryd is sent */
        r->step_name = r->step_chosen;
    }
    if (step == NULL) {
        char *known = ferry_stepfile_step_names(sf);
        const char *base = strrchr(sf->path, '/');
        char at[16] = "";
        if (src->ref != NULL)
            snprintf(at, sizeof(at), "%.7s:", src->local);
        fprintf(stderr, "ferry: %s step '%s' in %s%s; %s\n",
                ambiguous ? "more than one step starts with" : "unknown", r->step_name, at,
                base ? base + 1 : sf->path, known ? known : "");
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

/* ---- snapshot ---- */

static int ferry__pack(const char *dir, char **tmp_path)
{
    const char *tmp = getenv("TMPDIR");
    char *path = ferry_asprintf("%s/ferry-snapshot-XXXXXX.tar.gz", tmp && tmp[0] ? tmp : "/tmp");
    int fd = mkstemps(path, 7);
    if (fd < 0) {
        fprintf(stderr, "ferry: cannot create a temporary file %s: %s\n", path, strerror(errno));
        free(path);
        return FERRY_EXIT_FAILED;
    }
    close(fd);
    *tmp_path = path;
    char err[1024] = "";
    if (ferry_archive_pack_dir(dir, path, NULL, NULL, err, sizeof(err)) != 0) {
        fprintf(stderr, "ferry: cannot pack %s: %s\n", dir, err);
        return FERRY_EXIT_FAILED;
    }
    return FERRY_EXIT_OK;
}

typedef struct ferry__bar {
    uint64_t last_ms;
    int drawn;
} ferry__bar;

static void ferry__draw_bar(void *arg, int64_t sent, int64_t total)
{
    ferry__bar *bar = arg;
    uint64_t now = ferry_mono_ms();
    if (sent < total && now - bar->last_ms < 100)
        return;
    bar->last_ms = now;
    enum { WIDTH = 30 };
    int filled = total > 0 ? (int)(sent * WIDTH / total) : 0;
    char hashes[WIDTH + 1];
    for (int i = 0; i < WIDTH; i++)
        hashes[i] = i < filled ? '#' : ' ';
    hashes[WIDTH] = '\0';
    char a[32], b[32];
    ferry_cli_format_size(sent, a, sizeof(a));
    ferry_cli_format_size(total, b, sizeof(b));
    fprintf(stderr, "\rUploading snapshot [%s] %3d%%  %s / %s ", hashes,
            total > 0 ? (int)(sent * 100 / total) : 0, a, b);
    bar->drawn = 1;
}

/* HEAD first: an unchanged directory packs to the same bytes, so a rerun
 * usually uploads nothing. */
static int ferry__upload(const ferry_cli *cli, const char *path, const char *sha, int64_t size)
{
    char *head_path = ferry_asprintf("/v1/snapshots/%s", sha);
    ferry_cli_request head = {.method = "HEAD", .path = head_path, .timeout_s = 60};
    ferry_cli_response res;
    ferry_cli_http(cli, &head, &res);
    free(head_path);
    int rc = FERRY_EXIT_OK, have = res.transport_ok && res.status == 200;
    if (!have && !(res.transport_ok && res.status == 404))
        rc = ferry_cli_report(cli, &res);
    ferry_cli_response_free(&res);
    if (have || rc != FERRY_EXIT_OK)
        return rc;

    ferry__bar bar = {0, 0};
    int show = size > FERRY__PROGRESS_MIN_BYTES && isatty(STDERR_FILENO);
    ferry_cli_request post = {.method = "POST",
                              .path = "/v1/snapshots",
                              .upload_path = path,
                              .upload_type = "application/gzip",
                              .progress = show ? ferry__draw_bar : NULL,
                              .progress_arg = &bar};
    ferry_cli_http(cli, &post, &res);
    if (bar.drawn)
        fputc('\n', stderr);
    if (!res.transport_ok || res.status < 200 || res.status >= 300) {
        rc = ferry_cli_report(cli, &res);
    } else {
        json_t *answer = json_loadb(res.body, res.body_len, 0, NULL);
        const char *got = ferry_cli_str(answer, "snapshot");
        if (strcmp(got, sha) != 0) {
            fprintf(stderr, "ferry: ferryd stored the snapshot as '%s', but it is %s\n", got, sha);
            rc = FERRY_EXIT_FAILED;
        }
        json_decref(answer);
    }
    ferry_cli_response_free(&res);
    return rc;
}

static int ferry__send_snapshot(const ferry_cli *cli, const char *dir, char *sha)
{
    char *path = NULL;
    int rc = ferry__pack(dir, &path);
    int64_t size = 0;
    if (rc == FERRY_EXIT_OK && ferry_sha256_file(path, sha, &size) != 0) {
        fprintf(stderr, "ferry: cannot read back %s\n", path);
        rc = FERRY_EXIT_FAILED;
    }
    if (rc == FERRY_EXIT_OK)
        rc = ferry__upload(cli, path, sha, size);
    if (path != NULL)
        unlink(path);
    free(path);
    return rc;
}

/* ---- the execution ---- */

/* The answer that means "ferryd has no such commit, even after a fetch". */
static int ferry__no_such_commit(const ferry_cli_response *res)
{
    if (!res->transport_ok || res->status != 404)
        return 0;
    json_t *answer = json_loadb(res->body, res->body_len, 0, NULL);
    int is = strcmp(ferry_cli_str(answer, "field"), "commit") == 0;
    json_decref(answer);
    return is;
}

static json_t *ferry__create_body(const ferry__run_args *r, const ferry__source *src,
                                  const char *snapshot, json_t *params, json_t *inputs)
{
    json_t *body = json_pack("{s:s, s:s, s:O, s:O, s:O}", "project", src->project, "step",
                             r->step_name, "parameters", params, "inputs", inputs, "tags", r->tags);
    if (src->ref != NULL) {
        json_object_set_new(body, "commit", json_string(src->ref));
    } else {
        json_object_set_new(body, "snapshot", json_string(snapshot));
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

static int ferry__create(const ferry_cli *cli, const ferry__run_args *r, const ferry__source *src,
                         const char *snapshot, json_t *params, json_t *inputs, json_t **exec)
{
    json_t *body = ferry__create_body(r, src, snapshot, params, inputs);
    ferry_cli_request req = {
        .method = "POST", .path = "/v1/executions", .json = body, .timeout_s = 60};
    ferry_cli_response res;
    ferry_cli_http(cli, &req, &res);
    json_decref(body);
    int rc = FERRY_EXIT_OK;
    if (src->head && ferry__no_such_commit(&res)) {
        /* The user did not name the commit: say what to do about it. */
        fprintf(stderr, "ferry: commit %.7s is not in %s: push it, or run with --adhoc\n", src->ref,
                src->repository);
        rc = FERRY_EXIT_NOT_PUSHED;
    } else if (!res.transport_ok || res.status < 200 || res.status >= 300) {
        rc = ferry_cli_report(cli, &res);
    } else if ((*exec = json_loadb(res.body, res.body_len, 0, NULL)) == NULL) {
        fprintf(stderr, "ferry: ferryd's answer to POST /v1/executions is not JSON\n");
        rc = FERRY_EXIT_FAILED;
    }
    ferry_cli_response_free(&res);
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
    int rc = ferry__load_stepfile(r->dir, &sf);
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
    ferry__source src;
    memset(&src, 0, sizeof(src));
    int rc = ferry__choose(cli, r, &src);
    if (rc == FERRY_EXIT_OK)
        rc = ferry__validate(r, &src, params, inputs);
    if (rc == FERRY_EXIT_OK)
        ferry__note_changes(&src);
    if (rc == FERRY_EXIT_OK && src.ref == NULL)
        rc = ferry__send_snapshot(cli, r->dir, sha);
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
    ferry__source_free(&src);
    return rc;
}

int ferry_cmd_run(const ferry_cli *cli, int argc, char **argv)
{
    ferry__run_args r = {.dir = ".",
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
