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
#include "tarball.h"

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

/* Symlink hops followed when resolving a link target (as Linux's MAXSYMLINKS). */
#define FERRY__MAX_HOPS 40
/* read_member serves step files to ferryd from untrusted snapshots: a cap
 * keeps a hostile archive from making it allocate without bound. */
#define FERRY__MAX_MEMBER (64 * 1024 * 1024)
#define FERRY__BLOCK 65536

static int ferry__fail(char *err, size_t cap, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int ferry__fail(char *err, size_t cap, int code, const char *fmt, ...)
{
    if (err != NULL && cap > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, cap, fmt, ap);
        va_end(ap);
    }
    return code;
}

static char *ferry__join(const char *dir, const char *name)
{
    if (dir == NULL || dir[0] == '\0')
        return ferry_strdup(name);
    return ferry_asprintf("%s/%s", dir, name);
}

static char *ferry__strndup(const char *s, size_t n)
{
    char *d = strndup(s, n);
    if (d == NULL)
        abort();
    return d;
}

/* The folder part of a relative path ("" at the top). Caller frees. */
static char *ferry__dirname(const char *rel)
{
    const char *slash = strrchr(rel, '/');
    if (slash == NULL)
        return ferry_strdup("");
    return ferry__strndup(rel, (size_t)(slash - rel));
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
static int ferry__link_stays_inside(const char *root, const char *link_rel, const char *target)
{
    if (target[0] == '\0' || target[0] == '/')
        return 0;
    char *cur = ferry__dirname(link_rel);
    char *todo = ferry_strdup(target);
    size_t pos = 0;
    int hops = 0, inside = 1;
    while (todo[pos] != '\0') {
        char *end = strchr(todo + pos, '/');
        size_t n = end ? (size_t)(end - (todo + pos)) : strlen(todo + pos);
        char *comp = ferry__strndup(todo + pos, n);
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
            char *up = ferry__dirname(cur);
            free(cur);
            cur = up;
            continue;
        }
        char *cand = ferry__join(cur, comp);
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
/* .gitignore                                                               */
/* ------------------------------------------------------------------------ */

typedef struct ferry__ignore_rule {
    char *pattern; /* without "!", the anchoring "/" and the trailing "/" */
    int negate;
    int dir_only;
    int anchored; /* has a "/": matched against the path below the file's folder */
} ferry__ignore_rule;

typedef struct ferry__ignore_file {
    char *base; /* folder of the .gitignore, relative to the packed root */
    ferry__ignore_rule *rules;
    size_t n_rules;
} ferry__ignore_file;

static int ferry__fnmatch_n(const char *pat, size_t plen, const char *s, size_t slen)
{
    char *p = ferry__strndup(pat, plen);
    char *t = ferry__strndup(s, slen);
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
static int ferry__parse_ignore_line(char *line, ferry__ignore_rule *rule)
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

static void ferry__load_ignore_file(ferry__ignore_file *f, const char *base, char *text)
{
    f->base = ferry_strdup(base);
    f->rules = NULL;
    f->n_rules = 0;
    size_t cap = 0;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        ferry__ignore_rule rule;
        if (!ferry__parse_ignore_line(line, &rule))
            continue;
        FERRY_XGROW(f->rules, cap, f->n_rules + 1);
        f->rules[f->n_rules++] = rule;
    }
}

static void ferry__free_ignore_file(ferry__ignore_file *f)
{
    for (size_t i = 0; i < f->n_rules; i++)
        free(f->rules[i].pattern);
    free(f->rules);
    free(f->base);
}

static int ferry__rule_matches(const ferry__ignore_rule *r, const char *sub, const char *name,
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
static int ferry__is_ignored(const ferry__ignore_file *files, size_t n, const char *rel,
                             const char *name, int is_dir)
{
    int ignored = 0;
    for (size_t i = 0; i < n; i++) {
        size_t blen = strlen(files[i].base);
        const char *sub = blen ? rel + blen + 1 : rel;
        for (size_t j = 0; j < files[i].n_rules; j++) {
            const ferry__ignore_rule *r = &files[i].rules[j];
            if (ferry__rule_matches(r, sub, name, is_dir))
                ignored = !r->negate;
        }
    }
    return ignored;
}

/* ------------------------------------------------------------------------ */
/* Packing                                                                  */
/* ------------------------------------------------------------------------ */

typedef struct ferry__pack {
    struct archive *a;
    const char *root;
    struct stat out_st; /* the archive being written, in case it lies inside root */
    ferry__ignore_file *ignores;
    size_t n_ignores, cap_ignores;
    void (*progress)(void *arg, int64_t bytes);
    void *progress_arg;
    int64_t bytes;
    char *err;
    size_t err_cap;
} ferry__pack;

static int ferry__cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The names in a folder, sorted, without ".", ".." and ".git". */
static int ferry__list_dir(ferry__pack *pk, const char *abs, char ***names, size_t *n)
{
    DIR *d = opendir(abs);
    if (d == NULL)
        return ferry__fail(pk->err, pk->err_cap, FERRY_EIO, "cannot read folder %s: %s", abs,
                           strerror(errno));
    size_t cap = 0;
    *names = NULL;
    *n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        const char *nm = de->d_name;
        if (strcmp(nm, ".") == 0 || strcmp(nm, "..") == 0 || strcmp(nm, ".git") == 0)
            continue;
        FERRY_XGROW(*names, cap, *n + 1);
        (*names)[(*n)++] = ferry_strdup(nm);
    }
    closedir(d);
    if (*n > 1)
        qsort(*names, *n, sizeof(**names), ferry__cmp_names);
    return 0;
}

static void ferry__push_ignore(ferry__pack *pk, const char *rel, const char *abs)
{
    char *path = ferry_asprintf("%s/.gitignore", abs);
    struct stat st;
    char *text = NULL;
    if (stat(path, &st) == 0 && S_ISREG(st.st_mode))
        text = ferry_read_file(path, NULL);
    free(path);
    if (text == NULL)
        return;
    FERRY_XGROW(pk->ignores, pk->cap_ignores, pk->n_ignores + 1);
    ferry__load_ignore_file(&pk->ignores[pk->n_ignores++], rel, text);
    free(text);
}

/* A header with everything that would make two packs differ zeroed. */
static struct archive_entry *ferry__new_entry(const char *rel, mode_t type, mode_t perm)
{
    struct archive_entry *e = archive_entry_new();
    if (e == NULL)
        abort();
    archive_entry_set_pathname(e, rel);
    archive_entry_set_filetype(e, (unsigned)type);
    archive_entry_set_perm(e, perm & 0777);
    archive_entry_set_mtime(e, 0, 0);
    archive_entry_set_uid(e, 0);
    archive_entry_set_gid(e, 0);
    return e;
}

static int ferry__write_header(ferry__pack *pk, struct archive_entry *e, const char *rel)
{
    /* ARCHIVE_WARN: e.g. a name that could not be converted; still written. */
    int r = archive_write_header(pk->a, e);
    archive_entry_free(e);
    if (r < ARCHIVE_WARN)
        return ferry__fail(pk->err, pk->err_cap, FERRY_EIO, "cannot pack %s: %s", rel,
                           archive_error_string(pk->a));
    return 0;
}

static int ferry__pack_file(ferry__pack *pk, const char *rel, const char *abs)
{
    int fd = open(abs, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return ferry__fail(pk->err, pk->err_cap, FERRY_EIO, "cannot read %s: %s", abs,
                           strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return ferry__fail(pk->err, pk->err_cap, FERRY_EIO, "%s changed while packing", abs);
    }
    struct archive_entry *e = ferry__new_entry(rel, AE_IFREG, st.st_mode);
    archive_entry_set_size(e, st.st_size);
    int rc = ferry__write_header(pk, e, rel);
    char *buf = ferry_xmalloc(FERRY__BLOCK);
    int64_t left = st.st_size;
    while (rc == 0 && left > 0) {
        ssize_t n = read(fd, buf, left < FERRY__BLOCK ? (size_t)left : FERRY__BLOCK);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            rc = ferry__fail(pk->err, pk->err_cap, FERRY_EIO, "cannot read %s: %s", abs,
                             n < 0 ? strerror(errno) : "file shrank while packing");
            break;
        }
        if (archive_write_data(pk->a, buf, (size_t)n) != n)
            rc = ferry__fail(pk->err, pk->err_cap, FERRY_EIO, "cannot pack %s: %s", rel,
                             archive_error_string(pk->a));
        left -= n;
        pk->bytes += n;
        if (pk->progress)
            pk->progress(pk->progress_arg, pk->bytes);
    }
    free(buf);
    close(fd);
    return rc;
}

/* Symlinks are kept as links when they stay inside the packed folder; one
 * that leaves it would be refused on extraction, so it is left out here. */
static int ferry__pack_symlink(ferry__pack *pk, const char *rel, const char *abs,
                               const struct stat *st)
{
    char target[PATH_MAX];
    ssize_t len = readlink(abs, target, sizeof(target) - 1);
    if (len < 0)
        return ferry__fail(pk->err, pk->err_cap, FERRY_EIO, "cannot read link %s: %s", abs,
                           strerror(errno));
    target[len] = '\0';
    if (!ferry__link_stays_inside(pk->root, rel, target))
        return 0;
    struct archive_entry *e = ferry__new_entry(rel, AE_IFLNK, st->st_mode);
    archive_entry_set_symlink(e, target);
    return ferry__write_header(pk, e, rel);
}

static int ferry__pack_walk(ferry__pack *pk, const char *rel);

static int ferry__pack_one(ferry__pack *pk, const char *dir_rel, const char *name)
{
    char *rel = ferry__join(dir_rel, name);
    char *abs = ferry_asprintf("%s/%s", pk->root, rel);
    struct stat st;
    int rc = 0;
    if (lstat(abs, &st) != 0) {
        rc = ferry__fail(pk->err, pk->err_cap, FERRY_EIO, "cannot stat %s: %s", abs,
                         strerror(errno));
    } else if (st.st_dev == pk->out_st.st_dev && st.st_ino == pk->out_st.st_ino) {
        /* The archive we are writing: never pack it into itself. */
    } else if (ferry__is_ignored(pk->ignores, pk->n_ignores, rel, name, S_ISDIR(st.st_mode))) {
        /* Left out by a .gitignore. */
    } else if (S_ISDIR(st.st_mode)) {
        rc = ferry__write_header(pk, ferry__new_entry(rel, AE_IFDIR, st.st_mode), rel);
        if (rc == 0)
            rc = ferry__pack_walk(pk, rel);
    } else if (S_ISREG(st.st_mode)) {
        rc = ferry__pack_file(pk, rel, abs);
    } else if (S_ISLNK(st.st_mode)) {
        rc = ferry__pack_symlink(pk, rel, abs, &st);
    }
    /* Sockets, fifos and devices are not project files: left out. */
    free(abs);
    free(rel);
    return rc;
}

static int ferry__pack_walk(ferry__pack *pk, const char *rel)
{
    char *abs = rel[0] ? ferry_asprintf("%s/%s", pk->root, rel) : ferry_strdup(pk->root);
    char **names = NULL;
    size_t n = 0;
    int rc = ferry__list_dir(pk, abs, &names, &n);
    size_t pushed = pk->n_ignores;
    if (rc == 0)
        ferry__push_ignore(pk, rel, abs);
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = ferry__pack_one(pk, rel, names[i]);
    while (pk->n_ignores > pushed)
        ferry__free_ignore_file(&pk->ignores[--pk->n_ignores]);
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    free(abs);
    return rc;
}

static struct archive *ferry__new_writer(int fd, char *err, size_t err_cap)
{
    struct archive *a = archive_write_new();
    if (a == NULL)
        abort();
    /* pax only where ustar cannot say it (long names); no gzip timestamp,
     * so that the same tree always gives the same bytes. */
    if (archive_write_set_format_pax_restricted(a) != ARCHIVE_OK ||
        archive_write_add_filter_gzip(a) != ARCHIVE_OK ||
        archive_write_set_filter_option(a, "gzip", "timestamp", NULL) != ARCHIVE_OK ||
        archive_write_open_fd(a, fd) != ARCHIVE_OK) {
        ferry__fail(err, err_cap, FERRY_EIO, "cannot start archive: %s", archive_error_string(a));
        archive_write_free(a);
        return NULL;
    }
    return a;
}

int ferry_archive_pack_dir(const char *dir, const char *out_path,
                           void (*progress)(void *arg, int64_t bytes), void *arg, char *err,
                           size_t err_cap)
{
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return ferry__fail(err, err_cap, FERRY_ENOENT, "%s is not a folder", dir);
    int fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return ferry__fail(err, err_cap, FERRY_EIO, "cannot create %s: %s", out_path,
                           strerror(errno));
    ferry__pack pk = {
        .root = dir, .progress = progress, .progress_arg = arg, .err = err, .err_cap = err_cap};
    fstat(fd, &pk.out_st);
    int rc = FERRY_EIO;
    pk.a = ferry__new_writer(fd, err, err_cap);
    if (pk.a != NULL) {
        rc = ferry__pack_walk(&pk, "");
        /* Closing flushes the gzip trailer; a failure there is a failure. */
        if (archive_write_close(pk.a) != ARCHIVE_OK && rc == 0)
            rc = ferry__fail(err, err_cap, FERRY_EIO, "cannot write %s: %s", out_path,
                             archive_error_string(pk.a));
        archive_write_free(pk.a);
    }
    free(pk.ignores);
    if (close(fd) != 0 && rc == 0)
        rc = ferry__fail(err, err_cap, FERRY_EIO, "cannot write %s: %s", out_path, strerror(errno));
    if (rc != 0)
        unlink(out_path);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Reading                                                                  */
/* ------------------------------------------------------------------------ */

static struct archive *ferry__new_reader(void)
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
static char *ferry__normalize_member(const char *name, const char **why)
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
static char *ferry__lexical_join(const char *dir, const char *target)
{
    if (target[0] == '/')
        return NULL;
    char *joined = ferry__join(dir, target);
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
/* Extraction                                                               */
/* ------------------------------------------------------------------------ */

typedef struct ferry__extract {
    struct archive *in;
    struct archive *out;
    char **links; /* symlinks written, checked again at the end */
    size_t n_links, cap_links;
    char *err;
    size_t err_cap;
} ferry__extract;

static const char *ferry__type_name(mode_t type)
{
    switch (type) {
    case AE_IFCHR:
        return "character device";
    case AE_IFBLK:
        return "block device";
    case AE_IFIFO:
        return "fifo";
    case AE_IFSOCK:
        return "socket";
    default:
        return "special file";
    }
}

/* A member may not be written through a symlink an earlier member made. */
static const char *ferry__through_symlink(const char *rel, char *buf, size_t cap)
{
    for (const char *p = strchr(rel, '/'); p; p = strchr(p + 1, '/')) {
        struct stat st;
        snprintf(buf, cap, "%.*s", (int)(p - rel), rel);
        if (lstat(buf, &st) == 0 && S_ISLNK(st.st_mode))
            return buf;
    }
    return NULL;
}

/* Our own checks of one member, before libarchive sees it. The working
 * folder is the destination. */
static int ferry__check_member(ferry__extract *x, struct archive_entry *e, const char *raw,
                               const char *rel)
{
    mode_t type = archive_entry_filetype(e);
    if (archive_entry_hardlink(e) != NULL)
        return ferry__fail(x->err, x->err_cap, FERRY_EUNSAFE,
                           "archive member '%s': hard links are not allowed", raw);
    if (type != AE_IFREG && type != AE_IFDIR && type != AE_IFLNK)
        return ferry__fail(x->err, x->err_cap, FERRY_EUNSAFE,
                           "archive member '%s': a %s is not allowed", raw, ferry__type_name(type));
    char buf[PATH_MAX];
    const char *via = ferry__through_symlink(rel, buf, sizeof(buf));
    if (via != NULL)
        return ferry__fail(x->err, x->err_cap, FERRY_EUNSAFE,
                           "archive member '%s': goes through the symlink '%s'", raw, via);
    if (type == AE_IFLNK) {
        const char *target = archive_entry_symlink(e);
        if (target == NULL || !ferry__link_stays_inside(".", rel, target))
            return ferry__fail(x->err, x->err_cap, FERRY_EUNSAFE,
                               "archive member '%s': symlink to '%s' leaves the destination", raw,
                               target ? target : "");
    }
    return 0;
}

static int ferry__copy_data(ferry__extract *x, const char *raw)
{
    for (;;) {
        const void *block;
        size_t size;
        la_int64_t offset;
        int r = archive_read_data_block(x->in, &block, &size, &offset);
        if (r == ARCHIVE_EOF)
            return 0;
        if (r < ARCHIVE_WARN)
            return ferry__fail(x->err, x->err_cap, FERRY_EIO, "archive member '%s': %s", raw,
                               archive_error_string(x->in));
        if (archive_write_data_block(x->out, block, size, offset) < ARCHIVE_WARN)
            return ferry__fail(x->err, x->err_cap, FERRY_EIO, "archive member '%s': %s", raw,
                               archive_error_string(x->out));
    }
}

static int ferry__extract_member(ferry__extract *x, struct archive_entry *e)
{
    const char *raw = archive_entry_pathname(e);
    const char *why = NULL;
    char *rel = ferry__normalize_member(raw, &why);
    if (rel == NULL)
        return ferry__fail(x->err, x->err_cap, FERRY_EUNSAFE, "archive member '%s': %s",
                           raw ? raw : "", why);
    int rc = 0;
    if (rel[0] == '\0') {
        /* "./": the destination itself, which exists already. */
        if (archive_entry_filetype(e) != AE_IFDIR)
            rc = ferry__fail(x->err, x->err_cap, FERRY_EUNSAFE, "archive member '%s': not a folder",
                             raw);
        free(rel);
        return rc;
    }
    rc = ferry__check_member(x, e, raw, rel);
    if (rc == 0) {
        char *shown = ferry_strdup(raw); /* raw belongs to e, renamed next */
        archive_entry_set_pathname(e, rel);
        archive_entry_set_perm(e, archive_entry_perm(e) & 0777);
        if (archive_write_header(x->out, e) < ARCHIVE_WARN)
            rc = ferry__fail(x->err, x->err_cap, FERRY_EUNSAFE, "archive member '%s': %s", shown,
                             archive_error_string(x->out));
        if (rc == 0 && archive_entry_filetype(e) == AE_IFREG)
            rc = ferry__copy_data(x, shown);
        if (rc == 0 && archive_write_finish_entry(x->out) < ARCHIVE_WARN)
            rc = ferry__fail(x->err, x->err_cap, FERRY_EIO, "archive member '%s': %s", shown,
                             archive_error_string(x->out));
        free(shown);
    }
    if (rc == 0 && archive_entry_filetype(e) == AE_IFLNK) {
        FERRY_XGROW(x->links, x->cap_links, x->n_links + 1);
        x->links[x->n_links++] = rel;
        rel = NULL;
    }
    free(rel);
    return rc;
}

/* Later members may have turned a folder an earlier link passes through into
 * a link itself; now that everything exists, resolve each link once more. */
static int ferry__recheck_links(ferry__extract *x)
{
    for (size_t i = 0; i < x->n_links; i++) {
        char target[PATH_MAX];
        ssize_t len = readlink(x->links[i], target, sizeof(target) - 1);
        if (len < 0)
            continue; /* replaced by a later member, which was checked itself */
        target[len] = '\0';
        if (!ferry__link_stays_inside(".", x->links[i], target)) {
            unlink(x->links[i]);
            return ferry__fail(x->err, x->err_cap, FERRY_EUNSAFE,
                               "archive member '%s': symlink to '%s' leaves the destination",
                               x->links[i], target);
        }
    }
    return 0;
}

/* Runs in the child, whose working folder is the destination. */
static int ferry__extract_here(int archive_fd, char *err, size_t err_cap)
{
    ferry__extract x = {.err = err, .err_cap = err_cap};
    x.in = ferry__new_reader();
    x.out = archive_write_disk_new();
    if (x.out == NULL)
        abort();
    archive_write_disk_set_options(x.out, ARCHIVE_EXTRACT_SECURE_NODOTDOT |
                                              ARCHIVE_EXTRACT_SECURE_SYMLINKS |
                                              ARCHIVE_EXTRACT_SECURE_NOABSOLUTEPATHS);
    int rc = 0;
    if (archive_read_open_fd(x.in, archive_fd, FERRY__BLOCK) != ARCHIVE_OK)
        rc = ferry__fail(err, err_cap, FERRY_EIO, "cannot read archive: %s",
                         archive_error_string(x.in));
    while (rc == 0) {
        struct archive_entry *e;
        int r = archive_read_next_header(x.in, &e);
        if (r == ARCHIVE_EOF)
            break;
        if (r < ARCHIVE_WARN)
            rc = ferry__fail(err, err_cap, FERRY_EIO, "cannot read archive: %s",
                             archive_error_string(x.in));
        else
            rc = ferry__extract_member(&x, e);
    }
    if (rc == 0)
        rc = ferry__recheck_links(&x);
    if (archive_write_close(x.out) != ARCHIVE_OK && rc == 0)
        rc = ferry__fail(err, err_cap, FERRY_EIO, "cannot finish extraction: %s",
                         archive_error_string(x.out));
    archive_write_free(x.out);
    archive_read_free(x.in);
    for (size_t i = 0; i < x.n_links; i++)
        free(x.links[i]);
    free(x.links);
    return rc;
}

static size_t ferry__read_all(int fd, void *data, size_t cap)
{
    char *p = data;
    size_t got = 0;
    while (got < cap) {
        ssize_t n = read(fd, p + got, cap - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    return got;
}

/* In a child process whose working folder is the destination; the code and
 * message come back through a pipe. The fallback where unshare() is denied. */
static int ferry__extract_forked(int fd, const char *archive_path, const char *dest, char *err,
                                 size_t err_cap)
{
    int pipefd[2];
    if (pipe2(pipefd, O_CLOEXEC) != 0)
        return ferry__fail(err, err_cap, FERRY_EIO, "pipe: %s", strerror(errno));
    pid_t pid = fork();
    if (pid == 0) {
        struct {
            int rc;
            char msg[1024];
        } res = {0, ""};
        close(pipefd[0]);
        if (chdir(dest) != 0)
            res.rc = ferry__fail(res.msg, sizeof(res.msg), FERRY_EIO, "cannot enter %s: %s", dest,
                                 strerror(errno));
        else
            res.rc = ferry__extract_here(fd, res.msg, sizeof(res.msg));
        (void)ferry_write_all(pipefd[1], &res, sizeof(res)); /* a short answer reads as a death */
        _exit(0);
    }
    close(pipefd[1]);
    if (pid < 0) {
        close(pipefd[0]);
        return ferry__fail(err, err_cap, FERRY_EIO, "fork: %s", strerror(errno));
    }
    struct {
        int rc;
        char msg[1024];
    } res;
    size_t got = ferry__read_all(pipefd[0], &res, sizeof(res));
    close(pipefd[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (got != sizeof(res) || !WIFEXITED(status))
        return ferry__fail(err, err_cap, FERRY_EIO, "extracting %s: the extraction process died",
                           archive_path);
    res.msg[sizeof(res.msg) - 1] = '\0';
    if (res.rc != 0)
        ferry__fail(err, err_cap, res.rc, "%s", res.msg);
    return res.rc;
}

/* In this thread, after unshare(CLONE_FS) gave it a working folder of its
 * own: chdir() here moves no other thread. The folder is restored after. */
static int ferry__extract_in_thread(int fd, const char *dest, char *err, size_t err_cap)
{
    int here = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (here < 0)
        return ferry__fail(err, err_cap, FERRY_EIO, "cannot open the working folder: %s",
                           strerror(errno));
    int rc;
    if (chdir(dest) != 0)
        rc = ferry__fail(err, err_cap, FERRY_EIO, "cannot enter %s: %s", dest, strerror(errno));
    else
        rc = ferry__extract_here(fd, err, err_cap);
    if (fchdir(here) != 0)
        abort(); /* the old folder is held open: cannot fail */
    close(here);
    return rc;
}

/* libarchive's SECURE_NODOTDOT and SECURE_NOABSOLUTEPATHS only work on names
 * relative to the working folder, so extraction runs with the destination as
 * its working folder: in this thread when it can have a working folder of its
 * own (unshare(CLONE_FS), cheap), else in a child process (seccomp profiles
 * may deny unshare). */
int ferry_archive_extract(const char *archive_path, const char *dest, char *err, size_t err_cap)
{
    struct stat st;
    if (stat(dest, &st) != 0 || !S_ISDIR(st.st_mode))
        return ferry__fail(err, err_cap, FERRY_ENOENT, "%s is not a folder", dest);
    int fd = open(archive_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return ferry__fail(err, err_cap, errno == ENOENT ? FERRY_ENOENT : FERRY_EIO,
                           "cannot open %s: %s", archive_path, strerror(errno));
    int rc = unshare(CLONE_FS) == 0 ? ferry__extract_in_thread(fd, dest, err, err_cap)
                                    : ferry__extract_forked(fd, archive_path, dest, err, err_cap);
    close(fd);
    return rc;
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
            return ferry__fail(err, err_cap, FERRY_EIO, "archive member '%s': %s", member,
                               archive_error_string(a));
        f->len += (size_t)n;
        if (f->len > FERRY__MAX_MEMBER)
            return ferry__fail(err, err_cap, FERRY_ETOOBIG,
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
    struct archive *a = ferry__new_reader();
    int rc = 0;
    if (archive_read_open_filename(a, path, FERRY__BLOCK) != ARCHIVE_OK)
        rc = ferry__fail(err, err_cap, FERRY_EIO, "cannot read %s: %s", path,
                         archive_error_string(a));
    while (rc == 0) {
        struct archive_entry *e;
        int r = archive_read_next_header(a, &e);
        if (r == ARCHIVE_EOF)
            break;
        if (r < ARCHIVE_WARN) {
            rc = ferry__fail(err, err_cap, FERRY_EIO, "cannot read %s: %s", path,
                             archive_error_string(a));
            break;
        }
        const char *why;
        char *rel = ferry__normalize_member(archive_entry_pathname(e), &why);
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
    char *name = ferry__normalize_member(member, &why);
    if (name == NULL || name[0] == '\0') {
        free(name);
        return ferry__fail(err, err_cap, FERRY_EINVAL, "bad member name '%s'", member);
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
            rc = ferry__fail(err, err_cap, FERRY_ENOENT, "'%s' not found in %s", member,
                             archive_path);
            break;
        }
        if (f.type != AE_IFLNK || hops >= FERRY__MAX_HOPS) {
            rc = ferry__fail(err, err_cap, FERRY_ENOENT, "'%s' in %s is not a regular file", member,
                             archive_path);
            break;
        }
        char *dir = ferry__dirname(name);
        char *next = ferry__lexical_join(dir, f.target);
        free(dir);
        free(name);
        name = next;
        if (name == NULL || name[0] == '\0')
            rc = ferry__fail(err, err_cap, FERRY_ENOENT,
                             "'%s' in %s is a symlink that leaves the archive", member,
                             archive_path);
    }
    ferry__found_reset(&f);
    free(name);
    return rc;
}
