/* Snapshot archives: gzip'd tarballs of a project directory (libarchive).
 *
 * Packing is deterministic (names sorted, times and owners zeroed, no gzip
 * timestamp), so an unchanged directory packs to the same bytes and the CLI
 * can skip uploading a snapshot ferryd already has.
 *
 * Extraction treats the archive as hostile: every member is checked before it
 * is written, libarchive's own SECURE_* checks run as a second line, and
 * symlinks are checked once more after the last member, when every link they
 * might pass through exists. */
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

int tarball__fail(char *err, size_t cap, int code, const char *fmt, ...)
{
    if (err != NULL && cap > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, cap, fmt, ap);
        va_end(ap);
    }
    return code;
}

char *tarball__join(const char *dir, const char *name)
{
    if (dir == NULL || dir[0] == '\0')
        return ferry_strdup(name);
    return ferry_asprintf("%s/%s", dir, name);
}

char *tarball__strndup(const char *s, size_t n)
{
    char *d = strndup(s, n);
    if (d == NULL)
        abort();
    return d;
}

/* The folder part of a relative path ("" at the top). Caller frees. */
char *tarball__dirname(const char *rel)
{
    const char *slash = strrchr(rel, '/');
    if (slash == NULL)
        return ferry_strdup("");
    return tarball__strndup(rel, (size_t)(slash - rel));
}

/* ------------------------------------------------------------------------ */
/* Symlink targets                                                          */
/* ------------------------------------------------------------------------ */

/* Whether the symlink at `link_rel` (relative to `root`) with `target` ends up
 * inside `root`. Symlinks met on the way are followed as the kernel would,
 * reading them from disk under `root`, because a lexical check alone is fooled
 * by "b -> ." plus "a -> b/c/../..". Components that do not exist are taken
 * lexically. The link's own folder must contain no symlinks (true for what
 * the walk or the extraction created). */
int tarball__link_stays_inside(const char *root, const char *link_rel, const char *target)
{
    if (target[0] == '\0' || target[0] == '/')
        return 0;
    char *cur = tarball__dirname(link_rel);
    char *todo = ferry_strdup(target);
    size_t pos = 0;
    int hops = 0, inside = 1;
    while (todo[pos] != '\0') {
        char *end = strchr(todo + pos, '/');
        size_t n = end ? (size_t)(end - (todo + pos)) : strlen(todo + pos);
        char *comp = tarball__strndup(todo + pos, n);
        pos += n + (end ? 1 : 0);
        if (n == 0 || strcmp(comp, ".") == 0) {
            free(comp);
            continue;
        }
        if (strcmp(comp, "..") == 0) {
            free(comp);
            if (cur[0] == '\0') {
                inside = 0;
                break;
            }
            char *up = tarball__dirname(cur);
            free(cur);
            cur = up;
            continue;
        }
        char *cand = tarball__join(cur, comp);
        free(comp);
        char *abs = ferry_asprintf("%s/%s", root, cand);
        struct stat st;
        char hop[PATH_MAX];
        ssize_t len = -1;
        if (lstat(abs, &st) == 0 && S_ISLNK(st.st_mode))
            len = readlink(abs, hop, sizeof(hop) - 1);
        free(abs);
        if (len < 0) {
            /* A folder, a file or nothing yet: it stands for itself. */
            free(cur);
            cur = cand;
            continue;
        }
        free(cand);
        hop[len] = '\0';
        if (++hops > FERRY__MAX_HOPS || hop[0] == '/' || len == 0) {
            inside = 0;
            break;
        }
        /* Replace the link by its target; the rest of the path follows it. */
        char *next = ferry_asprintf("%s/%s", hop, todo + pos);
        free(todo);
        todo = next;
        pos = 0;
    }
    free(cur);
    free(todo);
    return inside;
}

/* ------------------------------------------------------------------------ */
/* Reading                                                                  */
/* ------------------------------------------------------------------------ */

struct archive *tarball__new_reader(void)
{
    struct archive *a = archive_read_new();
    if (a == NULL)
        abort();
    archive_read_support_filter_gzip(a);
    archive_read_support_format_tar(a);
    return a;
}

/* A member's name without "./", doubled or trailing "/"; NULL and a reason
 * for an absolute name or one with a ".." component. "" is the top folder. */
char *tarball__normalize_member(const char *name, const char **why)
{
    if (name == NULL || name[0] == '\0') {
        *why = "empty name";
        return NULL;
    }
    if (name[0] == '/') {
        *why = "absolute path";
        return NULL;
    }
    char *out = ferry_xmalloc(strlen(name) + 1);
    size_t o = 0;
    for (const char *p = name; *p;) {
        const char *end = strchr(p, '/');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (n == 2 && p[0] == '.' && p[1] == '.') {
            free(out);
            *why = "'..' component";
            return NULL;
        }
        if (n > 0 && !(n == 1 && p[0] == '.')) {
            if (o > 0)
                out[o++] = '/';
            memcpy(out + o, p, n);
            o += n;
        }
        p += n + (end ? 1 : 0);
    }
    out[o] = '\0';
    return out;
}

/* `target` taken from the folder `dir`, with ".." applied lexically (inside
 * an archive there is no disk to follow links on); NULL when it climbs above
 * the top or is absolute. */
char *tarball__lexical_join(const char *dir, const char *target)
{
    if (target[0] == '/')
        return NULL;
    char *joined = tarball__join(dir, target);
    char *out = ferry_xmalloc(strlen(joined) + 1);
    size_t o = 0;
    for (const char *p = joined; *p;) {
        const char *end = strchr(p, '/');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (n == 2 && p[0] == '.' && p[1] == '.') {
            if (o == 0) {
                free(out);
                out = NULL;
                break;
            }
            while (o > 0 && out[o - 1] != '/')
                o--;
            if (o > 0)
                o--; /* the separator before the dropped component */
        } else if (n > 0 && !(n == 1 && p[0] == '.')) {
            if (o > 0)
                out[o++] = '/';
            memcpy(out + o, p, n);
            o += n;
        }
        p += n + (end ? 1 : 0);
    }
    if (out != NULL)
        out[o] = '\0';
    free(joined);
    return out;
}

/* ------------------------------------------------------------------------ */
/* One member                                                               */
/* ------------------------------------------------------------------------ */

typedef struct ferry__found {
    mode_t type; /* 0: not seen */
    char *data;
    size_t len;
    char *target; /* for a symlink */
} ferry__found;

static void ferry__found_reset(ferry__found *f)
{
    free(f->data);
    free(f->target);
    memset(f, 0, sizeof(*f));
}

static int ferry__read_data(struct archive *a, const char *member, ferry__found *f, char *err,
                            size_t err_cap)
{
    size_t cap = 0;
    f->len = 0;
    for (;;) {
        FERRY_XGROW(f->data, cap, f->len + FERRY__BLOCK + 1);
        la_ssize_t n = archive_read_data(a, f->data + f->len, FERRY__BLOCK);
        if (n == 0)
            break;
        if (n < 0)
            return tarball__fail(err, err_cap, FERRY_EIO, "archive member '%s': %s", member,
                                 archive_error_string(a));
        f->len += (size_t)n;
        if (f->len > FERRY__MAX_MEMBER)
            return tarball__fail(err, err_cap, FERRY_ETOOBIG,
                                 "archive member '%s' is larger than %d MiB", member,
                                 FERRY__MAX_MEMBER >> 20);
    }
    f->data[f->len] = '\0';
    return 0;
}

/* Scan the whole archive for `member`; like extraction, a later member of the
 * same name replaces an earlier one. */
static int ferry__scan_member(const char *path, const char *member, ferry__found *f, char *err,
                              size_t err_cap)
{
    struct archive *a = tarball__new_reader();
    int rc = 0;
    if (archive_read_open_filename(a, path, FERRY__BLOCK) != ARCHIVE_OK)
        rc = tarball__fail(err, err_cap, FERRY_EIO, "cannot read %s: %s", path,
                           archive_error_string(a));
    while (rc == 0) {
        struct archive_entry *e;
        int r = archive_read_next_header(a, &e);
        if (r == ARCHIVE_EOF)
            break;
        if (r < ARCHIVE_WARN) {
            rc = tarball__fail(err, err_cap, FERRY_EIO, "cannot read %s: %s", path,
                               archive_error_string(a));
            break;
        }
        const char *why;
        char *rel = tarball__normalize_member(archive_entry_pathname(e), &why);
        int match = rel != NULL && strcmp(rel, member) == 0;
        free(rel);
        if (!match)
            continue;
        ferry__found_reset(f);
        f->type = archive_entry_filetype(e);
        if (archive_entry_hardlink(e) != NULL)
            f->type = AE_IFIFO; /* not something we serve */
        else if (f->type == AE_IFREG)
            rc = ferry__read_data(a, member, f, err, err_cap);
        else if (f->type == AE_IFLNK)
            f->target = ferry_strdup(archive_entry_symlink(e));
    }
    archive_read_free(a);
    return rc;
}

int ferry_archive_read_member(const char *archive_path, const char *member, char **data,
                              size_t *len, char *err, size_t err_cap)
{
    const char *why;
    char *name = tarball__normalize_member(member, &why);
    if (name == NULL || name[0] == '\0') {
        free(name);
        return tarball__fail(err, err_cap, FERRY_EINVAL, "bad member name '%s'", member);
    }
    ferry__found f = {0};
    int rc = 0;
    /* A member that is a symlink (ferry.yaml -> conf/ferry.yaml) is followed
     * inside the archive, a few hops at most. */
    for (int hops = 0; rc == 0; hops++) {
        ferry__found_reset(&f);
        rc = ferry__scan_member(archive_path, name, &f, err, err_cap);
        if (rc != 0)
            break;
        if (f.type == AE_IFREG) {
            *data = f.data;
            *len = f.len;
            f.data = NULL;
            break;
        }
        if (f.type == 0) {
            rc = tarball__fail(err, err_cap, FERRY_ENOENT, "'%s' not found in %s", member,
                               archive_path);
            break;
        }
        if (f.type != AE_IFLNK || hops >= FERRY__MAX_HOPS) {
            rc = tarball__fail(err, err_cap, FERRY_ENOENT, "'%s' in %s is not a regular file",
                               member, archive_path);
            break;
        }
        char *dir = tarball__dirname(name);
        char *next = tarball__lexical_join(dir, f.target);
        free(dir);
        free(name);
        name = next;
        if (name == NULL || name[0] == '\0')
            rc = tarball__fail(err, err_cap, FERRY_ENOENT,
                               "'%s' in %s is a symlink that leaves the archive", member,
                               archive_path);
    }
    ferry__found_reset(&f);
    free(name);
    return rc;
}
