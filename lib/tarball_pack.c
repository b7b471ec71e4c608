/* Snapshot archives: packing a directory, deterministically (tarball.h). */
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

typedef struct ferry__pack {
    struct archive *a;
    const char *root;
    struct stat out_st; /* the archive being written, in case it lies inside root */
    tarball__ignore_file *ignores;
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
        return tarball__fail(pk->err, pk->err_cap, FERRY_EIO, "cannot read folder %s: %s", abs,
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

/* The ignore files of folder `rel`, each with .gitignore's syntax: git's own,
 * Valohai's (.vhignore, which `vh exec run --adhoc` honours) and ferry's. */
static void ferry__push_ignore(ferry__pack *pk, const char *rel, const char *abs)
{
    static const char *const names[] = {".gitignore", ".vhignore", ".ferryignore"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        char *path = ferry_asprintf("%s/%s", abs, names[i]);
        struct stat st;
        char *text = NULL;
        if (stat(path, &st) == 0 && S_ISREG(st.st_mode))
            text = ferry_read_file(path, NULL);
        free(path);
        if (text == NULL)
            continue;
        FERRY_XGROW(pk->ignores, pk->cap_ignores, pk->n_ignores + 1);
        tarball__load_ignore_file(&pk->ignores[pk->n_ignores++], rel, text);
        free(text);
    }
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
        return tarball__fail(pk->err, pk->err_cap, FERRY_EIO, "cannot pack %s: %s", rel,
                             archive_error_string(pk->a));
    return 0;
}

static int ferry__pack_file(ferry__pack *pk, const char *rel, const char *abs)
{
    int fd = open(abs, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return tarball__fail(pk->err, pk->err_cap, FERRY_EIO, "cannot read %s: %s", abs,
                             strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return tarball__fail(pk->err, pk->err_cap, FERRY_EIO, "%s changed while packing", abs);
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
            rc = tarball__fail(pk->err, pk->err_cap, FERRY_EIO, "cannot read %s: %s", abs,
                               n < 0 ? strerror(errno) : "file shrank while packing");
            break;
        }
        if (archive_write_data(pk->a, buf, (size_t)n) != n)
            rc = tarball__fail(pk->err, pk->err_cap, FERRY_EIO, "cannot pack %s: %s", rel,
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
        return tarball__fail(pk->err, pk->err_cap, FERRY_EIO, "cannot read link %s: %s", abs,
                             strerror(errno));
    target[len] = '\0';
    if (!tarball__link_stays_inside(pk->root, rel, target))
        return 0;
    struct archive_entry *e = ferry__new_entry(rel, AE_IFLNK, st->st_mode);
    archive_entry_set_symlink(e, target);
    return ferry__write_header(pk, e, rel);
}

static int ferry__pack_walk(ferry__pack *pk, const char *rel);

static int ferry__pack_one(ferry__pack *pk, const char *dir_rel, const char *name)
{
    char *rel = tarball__join(dir_rel, name);
    char *abs = ferry_asprintf("%s/%s", pk->root, rel);
    struct stat st;
    int rc = 0;
    if (lstat(abs, &st) != 0) {
        rc = tarball__fail(pk->err, pk->err_cap, FERRY_EIO, "cannot stat %s: %s", abs,
                           strerror(errno));
    } else if (st.st_dev == pk->out_st.st_dev && st.st_ino == pk->out_st.st_ino) {
        /* The archive we are writing: never pack it into itself. */
    } else if (tarball__is_ignored(pk->ignores, pk->n_ignores, rel, name, S_ISDIR(st.st_mode))) {
        /* Left out by a .gitignore (.vhignore, .ferryignore). */
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
        tarball__free_ignore_file(&pk->ignores[--pk->n_ignores]);
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
        tarball__fail(err, err_cap, FERRY_EIO, "cannot start archive: %s", archive_error_string(a));
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
        return tarball__fail(err, err_cap, FERRY_ENOENT, "%s is not a folder", dir);
    int fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return tarball__fail(err, err_cap, FERRY_EIO, "cannot create %s: %s", out_path,
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
            rc = tarball__fail(err, err_cap, FERRY_EIO, "cannot write %s: %s", out_path,
                               archive_error_string(pk.a));
        archive_write_free(pk.a);
    }
    free(pk.ignores);
    if (close(fd) != 0 && rc == 0)
        rc = tarball__fail(err, err_cap, FERRY_EIO, "cannot write %s: %s", out_path,
                           strerror(errno));
    if (rc != 0)
        unlink(out_path);
    return rc;
}
