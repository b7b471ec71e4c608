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

const ferry_archive_limits ferry_archive_default_limits = {
    .max_bytes = (int64_t)FERRY_ARCHIVE_MAX_MB << 20,
    .max_members = FERRY_ARCHIVE_MAX_MEMBERS,
    .max_ratio = FERRY_ARCHIVE_MAX_RATIO,
};

/* What one read of an archive has cost so far, against its limits. The
 * bytes are what the decompressor handed the tar reader (measured, not
 * taken from headers) plus the holes of sparse members we filled in. */
typedef struct ferry__budget {
    ferry_archive_limits *lim;
    struct archive *a;
    int64_t base;    /* bytes of earlier scans (symlink hops) */
    int64_t holes;   /* zeros we wrote for sparse members */
    int64_t members; /* headers read */
} ferry__budget;

static int64_t ferry__expanded(const ferry__budget *b)
{
    return b->base + archive_filter_bytes(b->a, 0) + b->holes;
}

/* Checked after every header and every block of data. */
static int ferry__within(ferry__budget *b, char *err, size_t err_cap)
{
    ferry_archive_limits *lim = b->lim;
    int64_t out = ferry__expanded(b);
    int64_t in = archive_filter_bytes(b->a, -1);
    if (lim->max_bytes > 0 && out > lim->max_bytes) {
        lim->broken = FERRY_ARCHIVE_BROKE_BYTES;
        return tarball__fail(err, err_cap, FERRY_ETOOBIG,
                             "the archive expands to more than %lld MiB",
                             (long long)(lim->max_bytes >> 20));
    }
    if (lim->max_members > 0 && b->members > lim->max_members) {
        lim->broken = FERRY_ARCHIVE_BROKE_MEMBERS;
        return tarball__fail(err, err_cap, FERRY_ETOOBIG, "the archive has more than %lld members",
                             (long long)lim->max_members);
    }
    /* Small archives may compress as well as they like: only what expands
     * past the floor is held to the ratio. */
    if (lim->max_ratio > 0 && out - b->base > FERRY_ARCHIVE_RATIO_FLOOR && in > 0 &&
        (out - b->base) / in > lim->max_ratio) {
        lim->broken = FERRY_ARCHIVE_BROKE_RATIO;
        return tarball__fail(err, err_cap, FERRY_ETOOBIG,
                             "the archive expands more than %lld times its compressed size",
                             (long long)lim->max_ratio);
    }
    return 0;
}

/* Read the current member's data block by block, into `f` when it is not
 * NULL, else only to get past it (archive_read_data_skip would decompress
 * the whole member unchecked). */
static int ferry__read_data(ferry__budget *b, const char *member, ferry__found *f, char *err,
                            size_t err_cap)
{
    size_t cap = 0;
    if (f != NULL)
        f->len = 0;
    for (;;) {
        const void *buf;
        size_t n;
        la_int64_t off;
        int r = archive_read_data_block(b->a, &buf, &n, &off);
        if (r == ARCHIVE_EOF)
            break;
        if (r < ARCHIVE_WARN)
            return tarball__fail(err, err_cap, FERRY_EIO, "archive member '%s': %s", member,
                                 archive_error_string(b->a));
        if (f != NULL) {
            /* A sparse member's hole comes back as a jump in the offset. */
            if (off < 0 || (uint64_t)off > FERRY__MAX_MEMBER || n > FERRY__MAX_MEMBER ||
                (size_t)off + n > FERRY__MAX_MEMBER)
                return tarball__fail(err, err_cap, FERRY_ETOOBIG,
                                     "archive member '%s' is larger than %d MiB", member,
                                     FERRY__MAX_MEMBER >> 20);
            size_t end = (size_t)off + n;
            FERRY_XGROW(f->data, cap, end + 1);
            if ((size_t)off > f->len) {
                memset(f->data + f->len, 0, (size_t)off - f->len);
                b->holes += (int64_t)((size_t)off - f->len);
            }
            memcpy(f->data + off, buf, n);
            if (end > f->len)
                f->len = end;
        }
        int rc = ferry__within(b, err, err_cap);
        if (rc < 0)
            return rc;
    }
    if (f != NULL) {
        FERRY_XGROW(f->data, cap, f->len + 1);
        f->data[f->len] = '\0';
    }
    return 0;
}

static struct archive *ferry__open(const char *path, const void *mem, size_t len, char *err,
                                   size_t err_cap, int *rc)
{
    struct archive *a = tarball__new_reader();
    int r = path ? archive_read_open_filename(a, path, FERRY__BLOCK)
                 : archive_read_open_memory(a, mem, len);
    *rc = 0;
    if (r != ARCHIVE_OK)
        *rc = tarball__fail(err, err_cap, FERRY_EIO, "cannot read %s: %s",
                            path ? path : "the archive", archive_error_string(a));
    return a;
}

/* Scan the whole archive for `member` (NULL: only check the limits); like
 * extraction, a later member of the same name replaces an earlier one. */
static int ferry__scan_member(const char *path, const void *mem, size_t len, const char *member,
                              ferry__found *f, ferry__budget *b, char *err, size_t err_cap)
{
    int rc;
    struct archive *a = ferry__open(path, mem, len, err, err_cap, &rc);
    b->a = a;
    b->holes = 0;
    b->members = 0;
    const char *label = path ? path : "the archive";
    while (rc == 0) {
        struct archive_entry *e;
        int r = archive_read_next_header(a, &e);
        if (r == ARCHIVE_EOF)
            break;
        if (r < ARCHIVE_WARN) {
            rc = tarball__fail(err, err_cap, FERRY_EIO, "cannot read %s: %s", label,
                               archive_error_string(a));
            break;
        }
        b->members++;
        if ((rc = ferry__within(b, err, err_cap)) < 0)
            break;
        const char *why;
        char *rel = member ? tarball__normalize_member(archive_entry_pathname(e), &why) : NULL;
        int match = rel != NULL && strcmp(rel, member) == 0;
        free(rel);
        if (!match) {
            rc = ferry__read_data(b, archive_entry_pathname(e) ? archive_entry_pathname(e) : "",
                                  NULL, err, err_cap);
            continue;
        }
        ferry__found_reset(f);
        f->type = archive_entry_filetype(e);
        if (archive_entry_hardlink(e) != NULL)
            f->type = AE_IFIFO; /* not something we serve */
        else if (f->type == AE_IFREG)
            rc = ferry__read_data(b, member, f, err, err_cap);
        else if (f->type == AE_IFLNK)
            f->target = ferry_strdup(archive_entry_symlink(e));
        if (rc == 0 && f->type != AE_IFREG)
            rc = ferry__read_data(b, member, NULL, err, err_cap);
    }
    b->base = ferry__expanded(b);
    b->a = NULL;
    archive_read_free(a);
    return rc;
}

int ferry_archive_check(const void *data, size_t len, ferry_archive_limits *lim, char *err,
                        size_t err_cap)
{
    ferry_archive_limits dflt = ferry_archive_default_limits;
    if (lim == NULL)
        lim = &dflt;
    lim->broken = FERRY_ARCHIVE_BROKE_NONE;
    ferry__budget b = {.lim = lim};
    return ferry__scan_member(NULL, data, len, NULL, NULL, &b, err, err_cap);
}

int ferry_archive_read_member_limited(const char *archive_path, const char *member,
                                      ferry_archive_limits *lim, char **data, size_t *len,
                                      char *err, size_t err_cap)
{
    ferry_archive_limits dflt = ferry_archive_default_limits;
    if (lim == NULL)
        lim = &dflt;
    lim->broken = FERRY_ARCHIVE_BROKE_NONE;
    const char *why;
    char *name = tarball__normalize_member(member, &why);
    if (name == NULL || name[0] == '\0') {
        free(name);
        return tarball__fail(err, err_cap, FERRY_EINVAL, "bad member name '%s'", member);
    }
    ferry__found f = {0};
    ferry__budget b = {.lim = lim};
    int rc = 0;
    /* A member that is a symlink (ferry.yaml -> conf/ferry.yaml) is followed
     * inside the archive, a few hops at most; each hop scans the archive
     * again, and all the scans share the one budget of bytes. */
    for (int hops = 0; rc == 0; hops++) {
        ferry__found_reset(&f);
        rc = ferry__scan_member(archive_path, NULL, 0, name, &f, &b, err, err_cap);
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

int ferry_archive_read_member(const char *archive_path, const char *member, char **data,
                              size_t *len, char *err, size_t err_cap)
{
    return ferry_archive_read_member_limited(archive_path, member, NULL, data, len, err, err_cap);
}
