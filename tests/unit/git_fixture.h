/* For unit tests on real repositories made with the git CLI: R, the test's
 * folder (the test sets it), sh(), a shell command run in it, and sh_out(), what one prints, with a
 * fixed author and no user or system git config. Include once per test. */
#ifndef FERRY_TEST_GIT_FIXTURE_H
#define FERRY_TEST_GIT_FIXTURE_H

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "util.h"

static char R[PATH_MAX];

/* 0, or the command's status (printed). */
static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *cmd = ferry_vasprintf(fmt, ap);
    va_end(ap);
    char *full = ferry_asprintf("set -e; cd %s; export GIT_AUTHOR_NAME=Ada GIT_AUTHOR_EMAIL=ada@x "
                                "GIT_COMMITTER_NAME=Ada GIT_COMMITTER_EMAIL=ada@x "
                                "GIT_CONFIG_GLOBAL=/dev/null GIT_CONFIG_NOSYSTEM=1; %s",
                                R, cmd);
    int rc = system(full);
    if (rc != 0)
        fprintf(stderr, "command failed (%d): %s\n", rc, cmd);
    free(full);
    free(cmd);
    return rc;
}

/* What a command run in R prints, its last newlines cut (to free). */
static char *sh_out(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *sh_out(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *cmd = ferry_vasprintf(fmt, ap);
    va_end(ap);
    char *full = ferry_asprintf("cd %s && %s", R, cmd);
    FILE *p = popen(full, "r");
    char buf[4096] = "";
    size_t n = p ? fread(buf, 1, sizeof(buf) - 1, p) : 0;
    buf[n] = '\0';
    while (n > 0 && buf[n - 1] == '\n')
        buf[--n] = '\0';
    if (p)
        pclose(p);
    free(full);
    free(cmd);
    return ferry_strdup(buf);
}

#endif
