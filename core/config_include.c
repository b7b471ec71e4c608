/* ferryd's configuration: the `@include` directives, checked before
 * libconfig reads them (config.h). */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ferry/buf.h"
#include "util.h"

/* libconfig 1.5 reads an included path with fopen(), which opens a folder
 * too, and its flex scanner then exit()s the process ("input in flex scanner
 * failed") when the read fails. So ferry looks at every `@include` before
 * libconfig does: each must name a file that is there, and the error names
 * the file and line of the directive. libconfig nests includes at most 10
 * deep; deeper ones are left to its own error. */
#define CONFIG__INCLUDE_DEPTH 10

static int config__check_includes(const char *path, int depth, char *err, size_t err_cap);

/* Reads the string of a directive at *p (after its opening quote) into a
 * malloc'd path, with libconfig's escapes; NULL when it does not end on
 * this line. */
static char *config__include_path(const char **p)
{
    ferry_buf b = {0};
    for (const char *q = *p; *q && *q != '\n'; q++) {
        char c = *q;
        if (c == '"') {
            *p = q + 1;
            return b.data ? b.data : ferry_strdup("");
        }
        if (c == '\\' && q[1] && q[1] != '\n') {
            c = *++q;
            c = c == 'n' ? '\n' : c == 't' ? '\t' : c == 'r' ? '\r' : c == 'f' ? '\f' : c;
        }
        ferry_xcheck(ferry_buf_append_char(&b, c));
    }
    free(b.data);
    return NULL;
}

/* One `@include "PATH"` of `file` at `line`: PATH must be a file that is there. */
static int config__check_include(const char *file, int line, const char *inc, int depth, char *err,
                                 size_t err_cap)
{
    struct stat st;
    if (stat(inc, &st) != 0) {
        snprintf(err, err_cap, "%s:%d: cannot include '%s': %s", file, line, inc, strerror(errno));
        return FERRY_ECONFIG;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(err, err_cap, "%s:%d: cannot include '%s': %s", file, line, inc,
                 S_ISDIR(st.st_mode) ? "it is a folder, not a file" : "not a regular file");
        return FERRY_ECONFIG;
    }
    return depth < CONFIG__INCLUDE_DEPTH ? config__check_includes(inc, depth + 1, err, err_cap) : 0;
}

/* Scans `path` as libconfig's scanner does, just enough to find its
 * `@include` directives (at the start of a line, outside comments and
 * strings). A file that can't be read is left to libconfig's own error. */
/* A NUL byte: libconfig's flex scanner reads past it where ferry's C
 * strings stop, so an `@include ".<NUL>..."` would open "." (found by
 * fuzz_config) and exit() as above. Config files are text: refused. */
static int config__check_text(const char *path, const char *text, size_t len, char *err,
                              size_t err_cap)
{
    const char *nul = memchr(text, '\0', len);
    if (nul == NULL)
        return 0;
    int line = 1;
    for (const char *p = text; p < nul; p++)
        line += *p == '\n';
    snprintf(err, err_cap, "%s:%d: a NUL byte: a config file must be text", path, line);
    return FERRY_ECONFIG;
}

static int config__check_includes(const char *path, int depth, char *err, size_t err_cap)
{
    size_t len = 0;
    char *text = ferry_read_file(path, &len);
    if (!text)
        return 0;
    int rc = config__check_text(path, text, len, err, err_cap);
    if (rc != 0) {
        free(text);
        return rc;
    }
    int line = 1, bol = 1;
    for (const char *p = text; *p && rc == 0;) {
        if (*p == '\n') {
            line++, bol = 1, p++;
        } else if (bol && (*p == ' ' || *p == '\t')) {
            p++;
        } else if (bol && strncmp(p, "@include", 8) == 0 && (p[8] == ' ' || p[8] == '\t')) {
            p += 8;
            while (*p == ' ' || *p == '\t')
                p++;
            bol = 0;
            if (*p != '"')
                continue; /* libconfig's syntax error */
            p++;
            char *inc = config__include_path(&p);
            if (inc)
                rc = config__check_include(path, line, inc, depth, err, err_cap);
            free(inc);
        } else if (*p == '"') {
            bol = 0;
            /* libconfig's strings may span lines */
            for (p++; *p && *p != '"'; p++) {
                if (*p == '\\' && p[1])
                    p++;
                if (*p == '\n')
                    line++;
            }
            if (*p == '"')
                p++;
        } else if (*p == '#' || (p[0] == '/' && p[1] == '/')) {
            p += strcspn(p, "\n");
        } else if (p[0] == '/' && p[1] == '*') {
            for (p += 2; *p && !(p[0] == '*' && p[1] == '/'); p++)
                if (*p == '\n')
                    line++;
            p += *p ? 2 : 0;
            bol = 0;
        } else {
            bol = 0, p++;
        }
    }
    free(text);
    return rc;
}

int ferry_config_check_includes(const char *path, char *err, size_t err_cap)
{
    return config__check_includes(path, 0, err, err_cap);
}
