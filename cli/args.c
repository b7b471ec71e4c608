/* The command line of one command: the options most commands share
 * (--project NAME, --json, --help) and the operands, parsed in one place so
 * that every command accepts and words them alike. */
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Room for the command with the most options (run) plus the shared ones. */
#define FERRY__MAX_OPTIONS 24

int ferry_cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "ferry %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\nTry 'ferry %s --help'.\n", cmd);
    va_end(ap);
    return FERRY_EXIT_USAGE;
}

long ferry_cli_parse_count(const char *s)
{
    if (s == NULL || *s == '\0')
        return FERRY_EINVAL;
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < 0)
        return FERRY_EINVAL;
    return v;
}

int ferry_cli_bad_option(const char *cmd, int c, char **argv)
{
    const char *arg = optind > 0 ? argv[optind - 1] : "?";
    if (c == ':')
        return ferry_cli_usage_error(cmd, "option '%s' needs a value", arg);
    if (optopt != 0 && optopt != '?')
        return ferry_cli_usage_error(cmd, "unknown option '-%c'", optopt);
    return ferry_cli_usage_error(cmd, "unknown option '%s'", arg);
}

int ferry_cli_store_arg(void *ctx, int c, const char *arg)
{
    (void)c;
    *(const char **)ctx = arg;
    return FERRY_EXIT_OK;
}

/* The command's own long options, then the shared ones it takes. */
static void ferry__long_options(const ferry_cli_syntax *syntax, struct option *all)
{
    size_t n = 0;
    for (const struct option *o = syntax->options; o != NULL && o->name != NULL; o++) {
        if (n + 4 >= FERRY__MAX_OPTIONS)
            abort(); /* a command outgrew the table: raise FERRY__MAX_OPTIONS */
        all[n++] = *o;
    }
    if (syntax->project)
        all[n++] = (struct option){"project", required_argument, NULL, 'P'};
    if (syntax->json)
        all[n++] = (struct option){"json", no_argument, NULL, 'j'};
    all[n++] = (struct option){"help", no_argument, NULL, 'h'};
    all[n] = (struct option){NULL, 0, NULL, 0};
}

int ferry_cli_known_option(const ferry_cli_syntax *syntax, const char *name, size_t n,
                           int *takes_value)
{
    struct option all[FERRY__MAX_OPTIONS];
    ferry__long_options(syntax, all);
    for (const struct option *o = all; o->name; o++)
        if (strlen(o->name) == n && strncmp(o->name, name, n) == 0) {
            *takes_value = o->has_arg == required_argument;
            return 1;
        }
    return 0;
}

/* One option as getopt_long() returned it: a shared one, a mistake, or the
 * command's own. */
static int ferry__option(const ferry_cli_syntax *syntax, void *ctx, int c, char **argv,
                         ferry_cli_args *args)
{
    switch (c) {
    case 'P':
        args->project = optarg;
        return FERRY_CLI_GO_ON;
    case 'j':
        args->json = 1;
        return FERRY_CLI_GO_ON;
    case 'h':
        fputs(syntax->usage, stdout);
        return FERRY_EXIT_OK;
    case '?':
    case ':':
        return ferry_cli_bad_option(syntax->name, c, argv);
    default: {
        int rc = syntax->on_option(ctx, c, optarg);
        return rc == FERRY_EXIT_OK ? FERRY_CLI_GO_ON : rc;
    }
    }
}

/* What follows the options. */
static int ferry__operands(const ferry_cli_syntax *syntax, int argc, char **argv,
                           ferry_cli_args *args)
{
    args->rest = argv + optind;
    args->n_rest = argc - optind;
    if (syntax->operands == FERRY_CLI_ONE_ID && args->n_rest != 1)
        return ferry_cli_usage_error(syntax->name, "expected one execution ID");
    if (syntax->operands == FERRY_CLI_ONE_ID)
        args->id = args->rest[0];
    if (syntax->operands == FERRY_CLI_NO_OPERAND && args->n_rest != 0)
        return ferry_cli_usage_error(syntax->name, "unexpected argument '%s'", args->rest[0]);
    return FERRY_CLI_GO_ON;
}

int ferry_cli_parse_args(const ferry_cli_syntax *syntax, void *ctx, int argc, char **argv,
                         ferry_cli_args *args)
{
    struct option longopts[FERRY__MAX_OPTIONS];
    char shortopts[32];
    ferry__long_options(syntax, longopts);
    /* The leading ':' tells a missing value from an unknown option. */
    snprintf(shortopts, sizeof(shortopts), ":%sh",
             syntax->short_options ? syntax->short_options : "");
    *args = (ferry_cli_args){0};
    /* optind 0 makes glibc start afresh; opterr 0 leaves the messages to us. */
    optind = 0;
    opterr = 0;
    int c, rc = FERRY_CLI_GO_ON;
    while (rc == FERRY_CLI_GO_ON && (c = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1)
        rc = ferry__option(syntax, ctx, c, argv, args);
    return rc == FERRY_CLI_GO_ON ? ferry__operands(syntax, argc, argv, args) : rc;
}
