/* ferry: the user's command line. Parses the options every command shares,
 * then hands the rest to the command. */
#include "cli.h"

#include "util.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct ferry__command {
    const char *name;
    int (*fn)(const ferry_cli *cli, int argc, char **argv);
    const char *summary;
} ferry__command;

static const ferry__command ferry__commands[] = {
    {"run", ferry_cmd_run, "start an execution of a step"},
    {"rerun", ferry_cmd_rerun, "run an execution again: same step, code, parameters, inputs"},
    {"wait", ferry_cmd_wait, "wait until an execution ends"},
    {"list", ferry_cmd_list, "list executions"},
    {"show", ferry_cmd_show, "show one execution"},
    {"logs", ferry_cmd_logs, "print (or follow) an execution's log"},
    {"stop", ferry_cmd_stop, "stop an execution"},
    {"outputs", ferry_cmd_outputs, "list or download an execution's outputs"},
    {"envs", ferry_cmd_envs, "list environments: workers, queues, GPUs; drain, undrain one"},
    {"projects", ferry_cmd_projects, "list projects and the git repositories they link"},
    {"project", ferry_cmd_project, "fetch a project's repository: ferry project fetch PROJECT"},
    {"whoami", ferry_cmd_whoami, "print the user ferryd knows FERRY_TOKEN as"},
    {"alias", ferry_cmd_alias, "set, list an alias (a name for a datum); its history"},
    {"datum", ferry_cmd_datum, "show a datum (a stored output): producer, consumers"},
    {"pipeline", ferry_cmd_pipeline,
     "run and follow pipelines: run, list, show, stop, logs, approve"},
};
#define FERRY__N_COMMANDS (sizeof(ferry__commands) / sizeof(ferry__commands[0]))

static void ferry__usage(FILE *out)
{
    fprintf(out, "usage: ferry [--server URL] [--ca FILE] COMMAND [ARGS...]\n\ncommands:\n");
    for (size_t i = 0; i < FERRY__N_COMMANDS; i++)
        fprintf(out, "  %-9s %s\n", ferry__commands[i].name, ferry__commands[i].summary);
    fprintf(out,
            "\n'ferry COMMAND --help' tells more about one. ID is an execution's uuid or its\n"
            "counter (7 or #7).\n"
            "\n"
            "options:\n"
            "  --server URL   ferryd's address (default: $FERRY_SERVER, else %s)\n"
            "  --ca FILE      CA certificates (PEM) that https:// ferryd is verified with\n"
            "                 (default: $FERRY_CA, else the system's store)\n"
            "  --version      print the version\n"
            "  -h, --help     this text\n"
            "\n"
            "environment:\n"
            "  FERRY_SERVER   ferryd's address\n"
            "  FERRY_CA       CA file, as --ca\n"
            "  FERRY_TOKEN    API token, sent as 'Authorization: Bearer'\n"
            "  FERRY_PROJECT  default project name for 'ferry run'\n"
            "\n"
            "exit status:\n"
            "  0  success; the execution completed (wait, run --watch)\n"
            "  1  the execution ended in error; or a local failure\n"
            "  2  bad command line or step file (nothing was sent); the execution was stopped\n"
            "  3  'wait --timeout' ran out\n"
            "  4  ferryd could not be reached, its certificate could not be verified, or\n"
            "     the connection to it was lost\n"
            "  5  ferryd refused the request (its error is printed)\n"
            "  6  ferryd wants a valid token (HTTP 401): set FERRY_TOKEN\n",
            FERRY_DEFAULT_SERVER);
}

/* The options every command shares. */
typedef struct ferry__globals {
    const char *server, *ca;
} ferry__globals;

/* "--NAME VALUE" or "--NAME=VALUE" at argv[*i]: 1 and *value set (*i moved
 * past it), 0 when argv[*i] is another word, FERRY_EINVAL when the value is missing. */
static int ferry__global(int argc, char **argv, int *i, const char *name, const char *what,
                         const char **value)
{
    size_t n = strlen(name);
    if (strncmp(argv[*i], name, n) != 0)
        return 0;
    if (argv[*i][n] == '=') {
        *value = argv[*i] + n + 1;
        return 1;
    }
    if (argv[*i][n] != '\0')
        return 0;
    if (*i + 1 >= argc) {
        fprintf(stderr, "ferry: %s needs %s\n", name, what);
        return FERRY_EINVAL;
    }
    *value = argv[++*i];
    return 1;
}

/* Take --server and --ca out of argv wherever they stand, so that
 * "ferry list --server X" works as well as "ferry --server X list". */
static int ferry__take_globals(int *argc, char **argv, ferry__globals *g)
{
    int out = 0;
    for (int i = 0; i < *argc; i++) {
        if (strcmp(argv[i], "--") == 0) {
            while (i < *argc)
                argv[out++] = argv[i++];
            break;
        }
        int rc = ferry__global(*argc, argv, &i, "--server", "a URL", &g->server);
        if (rc == 0)
            rc = ferry__global(*argc, argv, &i, "--ca", "a file", &g->ca);
        if (rc < 0)
            return rc;
        if (rc == 0)
            argv[out++] = argv[i];
    }
    *argc = out;
    argv[out] = NULL;
    return 0;
}

/* --ca, else FERRY_CA; NULL: the system store. Checked here, so that a typo
 * reads as one and not as a certificate problem. */
static int ferry__ca_file(const char *given, char **out)
{
    const char *env = getenv("FERRY_CA");
    const char *ca = given && given[0] ? given : (env && env[0] ? env : NULL);
    *out = NULL;
    if (ca == NULL)
        return 0;
    FILE *f = fopen(ca, "r");
    if (f == NULL) {
        int e = errno;
        fprintf(stderr, "ferry: cannot read the CA file %s (%s): %s\n", ca,
                given && given[0] ? "--ca" : "FERRY_CA", strerror(e));
        return ferry_from_errno(e);
    }
    fclose(f);
    *out = ferry_strdup(ca);
    return 0;
}

static char *ferry__server_url(const char *given)
{
    const char *env = getenv("FERRY_SERVER");
    const char *url = given && given[0] ? given : (env && env[0] ? env : FERRY_DEFAULT_SERVER);
    char *s = ferry_strdup(url);
    size_t n = strlen(s);
    while (n > 0 && s[n - 1] == '/')
        s[--n] = '\0';
    return s;
}

static int ferry__dispatch(const ferry_cli *cli, int argc, char **argv)
{
    const char *name = argv[0];
    if (strcmp(name, "help") == 0) {
        if (argc < 2) {
            ferry__usage(stdout);
            return FERRY_EXIT_OK;
        }
        static char help[] = "--help";
        char *help_argv[] = {argv[1], help, NULL};
        return ferry__dispatch(cli, 2, help_argv);
    }
    for (size_t i = 0; i < FERRY__N_COMMANDS; i++)
        if (strcmp(name, ferry__commands[i].name) == 0)
            return ferry__commands[i].fn(cli, argc, argv);
    fprintf(stderr, "ferry: unknown command '%s'\nTry 'ferry --help'.\n", name);
    return FERRY_EXIT_USAGE;
}

int main(int argc, char **argv)
{
    ferry__globals g = {NULL, NULL};
    argc--; /* argv[0] is the program */
    argv++;
    if (ferry__take_globals(&argc, argv, &g) != 0)
        return FERRY_EXIT_USAGE;
    if (argc == 0) {
        ferry__usage(stderr);
        return FERRY_EXIT_USAGE;
    }
    if (strcmp(argv[0], "--version") == 0 || strcmp(argv[0], "version") == 0) {
        printf("ferry %s\n", FERRY_VERSION);
        return FERRY_EXIT_OK;
    }
    if (strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "-h") == 0) {
        ferry__usage(stdout);
        return FERRY_EXIT_OK;
    }
    if (argv[0][0] == '-') {
        fprintf(stderr, "ferry: unknown option '%s'\nTry 'ferry --help'.\n", argv[0]);
        return FERRY_EXIT_USAGE;
    }
    char *ca = NULL;
    if (ferry__ca_file(g.ca, &ca) != 0)
        return FERRY_EXIT_USAGE;
    const char *token = getenv("FERRY_TOKEN");
    ferry_cli cli = {.server = ferry__server_url(g.server),
                     .token = token && token[0] ? ferry_strdup(token) : NULL,
                     .ca = ca};
    curl_global_init(CURL_GLOBAL_DEFAULT);
    int rc = ferry__dispatch(&cli, argc, argv);
    curl_global_cleanup();
    free(cli.server);
    free(cli.token);
    free(cli.ca);
    fflush(stdout);
    return rc;
}
