/* ferry list and ferry show: executions as tables and as one page. */
#include "cli.h"

#include "util.h"

#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define FERRY__COLS 8

static const char *const ferry__headings[FERRY__COLS] = {"#",      "STATUS",  "STEP",     "PROJECT",
                                                         "COMMIT", "CREATED", "DURATION", "ID"};

/* The execution's commit, short; "-" for an ad-hoc one. */
static char *ferry__short_commit(const json_t *exec)
{
    const char *sha = ferry_cli_str(json_object_get(exec, "commit"), "sha");
    return sha[0] != '\0' ? ferry_asprintf("%.7s", sha) : ferry_strdup("-");
}

/* One table row as texts; caller frees each. */
static void ferry__row(const json_t *exec, char *cells[FERRY__COLS])
{
    char created[64], duration[32];
    ferry_cli_format_local_time(ferry_cli_str(exec, "created_at"), created, sizeof(created));
    ferry_cli_format_duration(exec, duration, sizeof(duration));
    cells[0] =
        ferry_asprintf("%lld", (long long)json_integer_value(json_object_get(exec, "counter")));
    cells[1] = ferry_strdup(ferry_cli_str(exec, "status"));
    cells[2] = ferry_strdup(ferry_cli_str(exec, "step"));
    cells[3] = ferry_strdup(ferry_cli_str(exec, "project"));
    cells[4] = ferry__short_commit(exec);
    cells[5] = ferry_strdup(created);
    cells[6] = ferry_strdup(duration);
    /* The short id is enough to tell rows apart; show and --json give it whole. */
    cells[7] = ferry_asprintf("%.8s", ferry_cli_str(exec, "id"));
}

/* The table under the answer's "executions". */
static void ferry__print_list(const json_t *answer)
{
    ferry_cli_print_table(ferry__headings, FERRY__COLS, json_object_get(answer, "executions"),
                          ferry__row);
}

static const char ferry__list_usage[] =
    "usage: ferry list [--status STATUS] [--project NAME] [--commit SHA] [--tag TAG]\n"
    "                  [--json]\n"
    "\n"
    "List executions, newest first. COMMIT is the commit an execution ran (\"-\"\n"
    "for an ad-hoc one).\n"
    "\n"
    "  --status STATUS  only these (created, queued, started, stopping, stopped,\n"
    "                   error, complete)\n"
    "  --project NAME   only this project's\n"
    "  --commit SHA     only those of this commit (a sha or its first characters)\n"
    "  --tag TAG        only those tagged TAG\n"
    "  --json           print ferryd's answer as JSON\n";

/* list's own options. */
typedef struct ferry__list_args {
    const char *status, *commit, *tag;
} ferry__list_args;

static char *ferry__list_path(const ferry__list_args *l, const char *project)
{
    char *path = ferry_strdup("/v1/executions");
    path = ferry_cli_add_query(path, "status", l->status);
    path = ferry_cli_add_query(path, "project", project);
    path = ferry_cli_add_query(path, "commit", l->commit);
    return ferry_cli_add_query(path, "tag", l->tag);
}

static const struct option ferry__list_options[] = {
    {"status", required_argument, NULL, 's'},
    {"commit", required_argument, NULL, 'c'},
    {"tag", required_argument, NULL, 't'},
    {NULL, 0, NULL, 0},
};

static int ferry__list_option(void *ctx, int c, const char *arg)
{
    ferry__list_args *l = ctx;
    if (c == 's')
        l->status = arg;
    else if (c == 't')
        l->tag = arg;
    else
        l->commit = arg;
    return FERRY_EXIT_OK;
}

static const ferry_cli_syntax ferry__list_syntax = {
    .name = "list",
    .usage = ferry__list_usage,
    .project = 1,
    .json = 1,
    .options = ferry__list_options,
    .on_option = ferry__list_option,
};

int ferry_cmd_list(const ferry_cli *cli, int argc, char **argv)
{
    ferry__list_args l = {NULL, NULL, NULL};
    ferry_cli_args a;
    int rc = ferry_cli_parse_args(&ferry__list_syntax, &l, argc, argv, &a);
    if (rc != FERRY_CLI_GO_ON)
        return rc;
    char *path = ferry__list_path(&l, a.project);
    json_t *answer = NULL;
    rc = ferry_cli_call(cli, "GET", path, NULL, 60, &answer);
    free(path);
    return ferry_cli_finish(rc, a.json, answer, ferry__print_list);
}

/* ---- show ---- */

static void ferry__show_field(const char *label, const char *value)
{
    printf("  %-17s %s\n", label, value && value[0] ? value : "-");
}

static void ferry__show_value(const char *label, const json_t *v)
{
    char *text = ferry_cli_value_text(v);
    ferry__show_field(label, text);
    free(text);
}

static void ferry__show_time(const char *label, const json_t *exec, const char *key)
{
    char buf[64];
    ferry_cli_format_local_time(ferry_cli_str(exec, key), buf, sizeof(buf));
    ferry__show_field(label, buf);
}

/* "name = value" lines of an object, under a heading; nothing when empty. */
static void ferry__show_object(const char *heading, const json_t *obj)
{
    if (!json_is_object(obj) || json_object_size(obj) == 0)
        return;
    printf("%s:\n", heading);
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)obj, key, v)
    {
        char *text = ferry_cli_value_text(v);
        printf("  %s = %s\n", key, text);
        free(text);
    }
}

static void ferry__show_outputs(const json_t *outputs)
{
    if (json_array_size(outputs) == 0)
        return;
    printf("Outputs:\n");
    size_t i;
    json_t *o;
    json_array_foreach(outputs, i, o)
    {
        char size[32];
        ferry_cli_format_size(json_integer_value(json_object_get(o, "size")), size, sizeof(size));
        const char *datum = ferry_cli_str(o, "datum");
        printf("  %s  %s  sha256:%s%s%s\n", ferry_cli_str(o, "name"), size,
               ferry_cli_str(o, "sha256"), datum[0] ? "  " : "", datum);
    }
}

/* The inputs that came from datums, and what made each: lineage. */
static void ferry__show_input_datums(const json_t *list)
{
    if (json_array_size(list) == 0)
        return;
    printf("Input datums:\n");
    size_t i;
    json_t *in;
    json_array_foreach(list, i, in)
    {
        const json_t *p = json_object_get(in, "producer");
        const char *alias = ferry_cli_str(in, "alias");
        char *from =
            json_is_object(p)
                ? ferry_asprintf("output %s of #%lld (%s) %s/%s", ferry_cli_str(in, "output"),
                                 (long long)json_integer_value(json_object_get(p, "counter")),
                                 ferry_cli_str(p, "id"), ferry_cli_str(p, "project"),
                                 ferry_cli_str(p, "step"))
                : ferry_strdup("producer unknown");
        printf("  %s = %s%s%s%s  from %s\n", ferry_cli_str(in, "input"), ferry_cli_str(in, "datum"),
               alias[0] ? " (alias " : "", alias, alias[0] ? ")" : "", from);
        free(from);
    }
}

/* What ran: "5d6e7f8 (main) Fix the loss — Ada <ada@x>", or the ad-hoc
 * snapshot and the commit its working copy was based on. */
static void ferry__show_source(const json_t *exec)
{
    const json_t *commit = json_object_get(exec, "commit");
    const json_t *adhoc = json_object_get(exec, "adhoc");
    if (json_is_object(commit)) {
        const char *sha = ferry_cli_str(commit, "sha"), *ref = ferry_cli_str(commit, "ref");
        /* The ref is worth showing when it is a name, not the sha (or a prefix) again. */
        int named = ref[0] != '\0' && strncmp(sha, ref, strlen(ref)) != 0;
        const char *author = ferry_cli_str(commit, "author");
        char *text = ferry_asprintf("%.7s%s%s%s %s%s%s", sha, named ? " (" : "", named ? ref : "",
                                    named ? ")" : "", ferry_cli_str(commit, "message"),
                                    author[0] ? " \u2014 " : "", author);
        ferry__show_field("commit", text);
        free(text);
        ferry__show_field("repository", ferry_cli_str(commit, "repository"));
        const json_t *date = json_object_get(commit, "date");
        if (json_is_integer(date)) {
            time_t t = (time_t)json_integer_value(date);
            struct tm tm;
            char buf[64] = "";
            if (localtime_r(&t, &tm) != NULL)
                strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S", &tm);
            ferry__show_field("committed", buf);
        }
    } else if (json_is_object(adhoc)) {
        const char *based = ferry_cli_str(adhoc, "based_on");
        char *text = based[0] ? ferry_asprintf("snapshot %.12s (based on %.7s)",
                                               ferry_cli_str(adhoc, "snapshot"), based)
                              : ferry_asprintf("snapshot %.12s", ferry_cli_str(adhoc, "snapshot"));
        ferry__show_field("ad hoc", text);
        free(text);
    }
}

/* A limit in seconds: "none" for 0 or absent, else "1h10m". */
static void ferry__show_limit(const char *label, const json_t *exec, const char *key)
{
    json_int_t secs = json_integer_value(json_object_get(exec, key));
    char buf[32] = "none";
    if (secs > 0)
        ferry_cli_format_seconds((long)secs, buf, sizeof(buf));
    ferry__show_field(label, buf);
}

static void ferry__show(const json_t *exec)
{
    printf("Execution #%lld (%s)\n",
           (long long)json_integer_value(json_object_get(exec, "counter")),
           ferry_cli_str(exec, "id"));
    ferry__show_field("project", ferry_cli_str(exec, "project"));
    ferry__show_field("step", ferry_cli_str(exec, "step"));
    if (json_is_string(json_object_get(exec, "title")))
        ferry__show_field("title", ferry_cli_str(exec, "title"));
    ferry__show_field("status", ferry_cli_str(exec, "status"));
    ferry__show_field("status reason", ferry_cli_str(exec, "status_reason"));
    ferry__show_value("exit code", json_object_get(exec, "exit_code"));
    ferry__show_field("environment", ferry_cli_str(exec, "environment"));
    ferry__show_field("owner", ferry_cli_str(exec, "owner"));
    ferry__show_field("priority",
                      json_is_true(json_object_get(exec, "priority")) ? "high" : "normal");
    ferry__show_value("gpus", json_object_get(exec, "gpus"));
    ferry__show_limit("time limit", exec, "time_limit");
    ferry__show_limit("no-output timeout", exec, "no_output_timeout");
    ferry__show_field("image", ferry_cli_str(exec, "image"));
    ferry__show_source(exec);
    ferry__show_field("snapshot", ferry_cli_str(exec, "snapshot"));
    ferry__show_field("command", ferry_cli_str(exec, "command"));
    json_t *tags = json_object_get(exec, "tags");
    ferry__show_value("tags", json_array_size(tags) ? tags : NULL);
    ferry__show_time("created", exec, "created_at");
    ferry__show_time("queued", exec, "queued_at");
    ferry__show_time("started", exec, "started_at");
    ferry__show_time("ended", exec, "ended_at");
    char duration[32];
    ferry_cli_format_duration(exec, duration, sizeof(duration));
    ferry__show_field("duration", duration);
    ferry__show_object("Parameters", json_object_get(exec, "parameters"));
    ferry__show_object("Inputs", json_object_get(exec, "inputs"));
    ferry__show_input_datums(json_object_get(exec, "input_datums"));
    ferry__show_object("Metadata", json_object_get(exec, "metadata"));
    ferry__show_outputs(json_object_get(exec, "outputs"));
}

static const char ferry__show_usage[] =
    "usage: ferry show ID [--project NAME] [--json]\n"
    "\n"
    "Show one execution: status, what ran (the commit: sha, ref, message, author;\n"
    "or the ad-hoc snapshot and the commit its working copy was based on), times,\n"
    "command, parameters, inputs, metadata (the latest value of each key) and\n"
    "outputs.\n"
    "\n"
    "  --project NAME  look a counter ID up in this project (default:\n"
    "                  $FERRY_PROJECT, else in a folder with a ferry.yaml or\n"
    "                  valohai.yaml the folder's name, as ferry run names it)\n"
    "  --json          print the execution object as ferryd sent it\n";

static const ferry_cli_syntax ferry__show_syntax = {
    .name = "show",
    .usage = ferry__show_usage,
    .operands = FERRY_CLI_ONE_ID,
    .project = 1,
    .json = 1,
};

/* The project a counter is looked up in without --project: $FERRY_PROJECT,
 * else, in a project folder (a ferry.yaml or valohai.yaml here), the
 * folder's name, as `ferry run` there names it; else NULL (every project). */
char *ferry_cli_counter_project(void)
{
    const char *env = getenv("FERRY_PROJECT");
    if (env != NULL && env[0] != '\0')
        return ferry_strdup(env);
    char cwd[PATH_MAX];
    if ((access("ferry.yaml", F_OK) != 0 && access("valohai.yaml", F_OK) != 0) ||
        getcwd(cwd, sizeof(cwd)) == NULL)
        return NULL;
    const char *base = strrchr(cwd, '/');
    return base && base[1] ? ferry_strdup(base + 1) : NULL;
}

char *ferry_cli_id_project(const char *id, const char *project)
{
    if (project != NULL)
        return ferry_strdup(project);
    if (id[0] == '#')
        id++;
    return id[0] != '\0' && strspn(id, "0123456789") == strlen(id) ? ferry_cli_counter_project()
                                                                   : NULL;
}

int ferry_cmd_show(const ferry_cli *cli, int argc, char **argv)
{
    ferry_cli_args a;
    int rc = ferry_cli_parse_args(&ferry__show_syntax, NULL, argc, argv, &a);
    if (rc != FERRY_CLI_GO_ON)
        return rc;
    char *here = ferry_cli_id_project(a.id, a.project);
    /* The one request a counter in a project needs: no resolving first. */
    char *query = ferry_cli_add_query(ferry_strdup(""), "project", here);
    free(here);
    json_t *exec = NULL;
    rc = ferry_cli_exec_call(cli, "GET", a.id, query, 60, &exec);
    free(query);
    return ferry_cli_finish(rc, a.json, exec, ferry__show);
}
