/* ferry alias and ferry datum: the names that point at stored outputs
 * (datums), and where a datum came from and went. */
#include "cli.h"

#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* "datum://X" or "X" as the path segment X. */
static char *ferry__datum_segment(const char *ref)
{
    if (strncmp(ref, "datum://", 8) == 0)
        ref += 8;
    return ferry_cli_escape(ref);
}

/* ---- alias ---- */

static const char ferry__alias_usage[] =
    "usage: ferry alias set NAME datum://ID [--json]\n"
    "       ferry alias list [--json]\n"
    "       ferry alias history NAME [--json]\n"
    "\n"
    "An alias is a name that points at one datum (a stored output) and moves:\n"
    "--input model=datum://NAME resolves it when the execution is created, and\n"
    "the execution keeps the datum it resolved to. Names are\n"
    "[a-z0-9][a-z0-9._-]{0,63}. There is one namespace of aliases per ferryd;\n"
    "you see and resolve those that point at your own outputs (an admin: all).\n"
    "An output whose <file>.metadata.json has \"ferry.alias\" (or Valohai's\n"
    "\"valohai.alias\") sets that alias when it is stored.\n"
    "\n"
    "  set NAME datum://ID  point NAME at that datum (or at another alias's)\n"
    "  list                 the aliases and what they point at\n"
    "  history NAME         every move of NAME, oldest first\n"
    "  --json               print ferryd's answer as JSON\n";

#define FERRY__ALIAS_COLS 5

static const char *const ferry__alias_headings[FERRY__ALIAS_COLS] = {"NAME", "DATUM", "OUTPUT",
                                                                     "SET BY", "SET AT"};

static void ferry__alias_row(const json_t *a, char **cells)
{
    cells[0] = ferry_strdup(ferry_cli_str(a, "name"));
    cells[1] = ferry_strdup(json_is_string(json_object_get(a, "datum")) ? ferry_cli_str(a, "datum")
                                                                        : "(not yours)");
    cells[2] = ferry_strdup(ferry_cli_str(a, "output"));
    cells[3] = ferry_strdup(ferry_cli_str(a, "set_by")[0] ? ferry_cli_str(a, "set_by") : "-");
    char when[64];
    ferry_cli_format_local_time(ferry_cli_str(a, "set_at"), when, sizeof(when));
    cells[4] = ferry_strdup(when);
}

static void ferry__print_aliases(const json_t *answer)
{
    ferry_cli_print_table(ferry__alias_headings, FERRY__ALIAS_COLS,
                          json_object_get(answer, "aliases"), ferry__alias_row);
}

static void ferry__print_history(const json_t *answer)
{
    ferry_cli_print_table(ferry__alias_headings, FERRY__ALIAS_COLS,
                          json_object_get(answer, "history"), ferry__alias_row);
}

static void ferry__print_alias_set(const json_t *a)
{
    printf("alias %s -> %s (%s)\n", ferry_cli_str(a, "name"), ferry_cli_str(a, "datum"),
           ferry_cli_str(a, "output"));
}

static const ferry_cli_syntax ferry__alias_syntax = {
    .name = "alias",
    .usage = ferry__alias_usage,
    .operands = FERRY_CLI_OPERANDS,
    .json = 1,
};

int ferry_cmd_alias(const ferry_cli *cli, int argc, char **argv)
{
    ferry_cli_args a;
    int rc = ferry_cli_parse_args(&ferry__alias_syntax, NULL, argc, argv, &a);
    if (rc != FERRY_CLI_GO_ON)
        return rc;
    const char *what = a.n_rest > 0 ? a.rest[0] : "";
    int want = strcmp(what, "set") == 0 ? 3 : strcmp(what, "history") == 0 ? 2 : 1;
    if (strcmp(what, "set") != 0 && strcmp(what, "list") != 0 && strcmp(what, "history") != 0)
        return ferry_cli_usage_error("alias", "expected set, list or history");
    if (a.n_rest != want)
        return ferry_cli_usage_error("alias", "%s takes %s", what,
                                     want == 3   ? "NAME datum://ID"
                                     : want == 2 ? "NAME"
                                                 : "no argument");
    json_t *answer = NULL;
    if (want == 1) {
        rc = ferry_cli_call(cli, "GET", "/v1/aliases", NULL, 60, &answer);
        return ferry_cli_finish(rc, a.json, answer, ferry__print_aliases);
    }
    char *name = ferry_cli_escape(a.rest[1]);
    char *path = ferry_asprintf("/v1/aliases/%s%s", name, want == 2 ? "/history" : "");
    free(name);
    if (want == 2) {
        rc = ferry_cli_call(cli, "GET", path, NULL, 60, &answer);
        free(path);
        return ferry_cli_finish(rc, a.json, answer, ferry__print_history);
    }
    const char *target = a.rest[2];
    json_t *body = json_pack("{s:s}", "datum", target);
    rc = ferry_cli_call(cli, "PUT", path, body, 60, &answer);
    json_decref(body);
    free(path);
    return ferry_cli_finish(rc, a.json, answer, ferry__print_alias_set);
}

/* ---- datum ---- */

static const char ferry__datum_usage[] =
    "usage: ferry datum show datum://ID|datum://ALIAS [--json]\n"
    "\n"
    "Show a datum (a stored output): its file, size and sha256, the aliases that\n"
    "point at it, the execution that produced it (counter, project, step, commit\n"
    "or snapshot, parameters) and the executions that used it as an input.\n"
    "\n"
    "  --json  print ferryd's answer as JSON\n";

static void ferry__print_datum(const json_t *dt)
{
    char size[32];
    ferry_cli_format_size(json_integer_value(json_object_get(dt, "size")), size, sizeof(size));
    printf("%s\n", ferry_cli_str(dt, "datum"));
    printf("  %-12s %s\n", "file", ferry_cli_str(dt, "name"));
    printf("  %-12s %s\n", "size", size);
    printf("  %-12s %s\n", "sha256", ferry_cli_str(dt, "sha256"));
    char *aliases = ferry_cli_value_text(json_object_get(dt, "aliases"));
    printf("  %-12s %s\n", "aliases",
           json_array_size(json_object_get(dt, "aliases")) ? aliases : "-");
    free(aliases);
    const json_t *p = json_object_get(dt, "producer");
    printf("Producer:\n");
    if (!json_is_object(p)) {
        printf("  -\n");
    } else {
        printf("  #%lld %s  %s/%s  %s\n",
               (long long)json_integer_value(json_object_get(p, "counter")), ferry_cli_str(p, "id"),
               ferry_cli_str(p, "project"), ferry_cli_str(p, "step"), ferry_cli_str(p, "status"));
        const json_t *commit = json_object_get(p, "commit");
        if (json_is_object(commit))
            printf("  commit %s\n", ferry_cli_str(commit, "sha"));
        else
            printf("  snapshot %s\n", ferry_cli_str(p, "snapshot"));
        char *params = ferry_cli_value_text(json_object_get(p, "parameters"));
        printf("  parameters %s\n", params);
        free(params);
    }
    const json_t *consumers = json_object_get(dt, "consumers");
    printf("Consumers:\n");
    if (json_array_size(consumers) == 0)
        printf("  -\n");
    size_t i;
    json_t *c;
    json_array_foreach(consumers, i, c)
    {
        const char *alias = ferry_cli_str(c, "alias");
        printf("  #%lld %s  %s/%s  %s  input %s%s%s\n",
               (long long)json_integer_value(json_object_get(c, "counter")), ferry_cli_str(c, "id"),
               ferry_cli_str(c, "project"), ferry_cli_str(c, "step"), ferry_cli_str(c, "status"),
               ferry_cli_str(c, "input"), alias[0] ? " via alias " : "", alias);
    }
}

static const ferry_cli_syntax ferry__datum_syntax = {
    .name = "datum",
    .usage = ferry__datum_usage,
    .operands = FERRY_CLI_OPERANDS,
    .json = 1,
};

int ferry_cmd_datum(const ferry_cli *cli, int argc, char **argv)
{
    ferry_cli_args a;
    int rc = ferry_cli_parse_args(&ferry__datum_syntax, NULL, argc, argv, &a);
    if (rc != FERRY_CLI_GO_ON)
        return rc;
    if (a.n_rest != 2 || strcmp(a.rest[0], "show") != 0)
        return ferry_cli_usage_error("datum", "expected: show datum://ID");
    char *seg = ferry__datum_segment(a.rest[1]);
    char *path = ferry_asprintf("/v1/datums/%s", seg);
    free(seg);
    json_t *answer = NULL;
    rc = ferry_cli_call(cli, "GET", path, NULL, 60, &answer);
    free(path);
    return ferry_cli_finish(rc, a.json, answer, ferry__print_datum);
}
