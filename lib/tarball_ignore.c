/* Snapshot archives: the .gitignore rules that packing honours. */
#include "tarball_int.h"

#include "ferry/error.h"
#include "util.h"

#include <sched.h>

#include <archive.h>
#include <archive_entry.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static int ferry__fnmatch_n(const char *pat, size_t plen, const char *s, size_t slen)
{
    char *p = tarball__strndup(pat, plen);
    char *t = tarball__strndup(s, slen);
    /* No FNM_PERIOD: git lets "*" match a leading dot. */
    int ok = fnmatch(p, t, 0) == 0;
    free(p);
    free(t);
    return ok;
}

/* Match "/"-separated `pat` against `path` segment by segment, so that "*"
 * never crosses a "/" and a "**" segment spans any number of folders. */
static int ferry__glob_match(const char *pat, const char *path)
{
    const char *pend = strchr(pat, '/');
    size_t plen = pend ? (size_t)(pend - pat) : strlen(pat);
    if (plen == 2 && pat[0] == '*' && pat[1] == '*') {
        if (pend == NULL) /* a trailing "**": everything inside, not the folder */
            return path[0] != '\0';
        for (const char *p = path;;) {
            if (ferry__glob_match(pend + 1, p))
                return 1;
            const char *slash = strchr(p, '/');
            if (slash == NULL)
                return 0;
            p = slash + 1;
        }
    }
    const char *send = strchr(path, '/');
    size_t slen = send ? (size_t)(send - path) : strlen(path);
    if (!ferry__fnmatch_n(pat, plen, path, slen))
        return 0;
    if (pend == NULL || send == NULL)
        return pend == NULL && send == NULL;
    return ferry__glob_match(pend + 1, send + 1);
}

/* Parse one line of a .gitignore into `rule`; 0 when it holds no pattern. */
static int ferry__parse_ignore_line(char *line, tarball__ignore_rule *rule)
{
    size_t len = strlen(line);
    if (len > 0 && line[len - 1] == '\r')
        line[--len] = '\0';
    if (len == 0 || line[0] == '#')
        return 0;
    /* Trailing spaces are dropped unless escaped with a backslash. */
    while (len > 0 && line[len - 1] == ' ' && !(len >= 2 && line[len - 2] == '\\'))
        line[--len] = '\0';
    memset(rule, 0, sizeof(*rule));
    char *p = line;
    if (*p == '!') {
        rule->negate = 1;
        p++;
        len--;
    }
    while (len > 0 && p[len - 1] == '/') {
        rule->dir_only = 1;
        p[--len] = '\0';
    }
    if (*p == '/') {
        rule->anchored = 1;
        p++;
    }
    if (*p == '\0')
        return 0;
    if (strchr(p, '/') != NULL)
        rule->anchored = 1;
    rule->pattern = ferry_strdup(p);
    return 1;
}

void tarball__load_ignore_file(tarball__ignore_file *f, const char *base, char *text)
{
    f->base = ferry_strdup(base);
    f->rules = NULL;
    f->n_rules = 0;
    size_t cap = 0;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        tarball__ignore_rule rule;
        if (!ferry__parse_ignore_line(line, &rule))
            continue;
        FERRY_XGROW(f->rules, cap, f->n_rules + 1);
        f->rules[f->n_rules++] = rule;
    }
}

void tarball__free_ignore_file(tarball__ignore_file *f)
{
    for (size_t i = 0; i < f->n_rules; i++)
        free(f->rules[i].pattern);
    free(f->rules);
    free(f->base);
}

static int ferry__rule_matches(const tarball__ignore_rule *r, const char *sub, const char *name,
                               int is_dir)
{
    if (r->dir_only && !is_dir)
        return 0;
    if (!r->anchored)
        return fnmatch(r->pattern, name, 0) == 0;
    return ferry__glob_match(r->pattern, sub);
}

/* git's rule: the last matching pattern wins, and a deeper .gitignore comes
 * after the ones above it. */
int tarball__is_ignored(const tarball__ignore_file *files, size_t n, const char *rel,
                        const char *name, int is_dir)
{
    int ignored = 0;
    for (size_t i = 0; i < n; i++) {
        size_t blen = strlen(files[i].base);
        const char *sub = blen ? rel + blen + 1 : rel;
        for (size_t j = 0; j < files[i].n_rules; j++) {
            const tarball__ignore_rule *r = &files[i].rules[j];
            if (ferry__rule_matches(r, sub, name, is_dir))
                ignored = !r->negate;
        }
    }
    return ignored;
}
