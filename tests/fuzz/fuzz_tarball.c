/* Fuzz: snapshot tarballs (lib/tarball_extract.c, tarball.c).
 *
 * Each input is a .tar.gz (or anything) extracted into a fresh
 * BASE/root/target, within small bounds. Then nothing may have been written
 * outside target: BASE holds only the archive and root, root only target,
 * every symlink in target resolves inside it, no file in it has a second
 * name (a hard link). The tree is removed before the next input. The same
 * bytes go through ferry_archive_check and ferry_archive_read_member. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tarball.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char fuzz__base[PATH_MAX], fuzz__archive[PATH_MAX], fuzz__root[PATH_MAX],
    fuzz__target[PATH_MAX], fuzz__target_real[PATH_MAX];

static void fuzz__cleanup(void)
{
    unlink(fuzz__archive);
    rmdir(fuzz__base);
}

static void fuzz__setup(void)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(fuzz__base, sizeof(fuzz__base), "%s/ferry-fuzz-tar.XXXXXX", tmp ? tmp : "/tmp");
    if (mkdtemp(fuzz__base) == NULL)
        abort();
    snprintf(fuzz__archive, sizeof(fuzz__archive), "%s/in.tar.gz", fuzz__base);
    snprintf(fuzz__root, sizeof(fuzz__root), "%s/root", fuzz__base);
    snprintf(fuzz__target, sizeof(fuzz__target), "%s/root/target", fuzz__base);
    atexit(fuzz__cleanup);
}

/* The names in `dir` must be exactly `a` and `b` (b may be NULL). */
static void fuzz__only(const char *dir, const char *a, const char *b)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        abort();
    int seen = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (strcmp(de->d_name, a) != 0 && (b == NULL || strcmp(de->d_name, b) != 0)) {
            fprintf(stderr, "fuzz_tarball: %s/%s was written outside the target\n", dir,
                    de->d_name);
            abort();
        }
        seen++;
    }
    closedir(d);
    if (seen != (b ? 2 : 1))
        abort();
}

/* A dangling link, by its text: relative, never above the target. */
static int fuzz__lexically_inside(const char *rel, const char *text)
{
    if (text[0] == '/')
        return 0;
    int depth = 0;
    for (const char *p = rel; *p; p++)
        depth += *p == '/';
    for (const char *p = text; *p;) {
        size_t n = strcspn(p, "/");
        if (n == 2 && p[0] == '.' && p[1] == '.') {
            if (--depth < 0)
                return 0;
        } else if (n > 0 && !(n == 1 && p[0] == '.')) {
            depth++;
        }
        p += n + (p[n] == '/');
    }
    return 1;
}

static int fuzz__inside(const char *path)
{
    size_t n = strlen(fuzz__target_real);
    return strncmp(path, fuzz__target_real, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

static int fuzz__visit(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)flag;
    (void)ftw;
    if (S_ISLNK(st->st_mode)) {
        char real[PATH_MAX], text[PATH_MAX];
        ssize_t len = readlink(path, text, sizeof(text) - 1);
        if (len < 0)
            abort();
        text[len] = '\0';
        const char *rel = path + strlen(fuzz__target) + 1;
        int ok = realpath(path, real) ? fuzz__inside(real) : fuzz__lexically_inside(rel, text);
        if (!ok) {
            fprintf(stderr, "fuzz_tarball: symlink %s -> %s leaves the target\n", rel, text);
            abort();
        }
    } else if (S_ISREG(st->st_mode) && st->st_nlink != 1) {
        fprintf(stderr, "fuzz_tarball: %s has %lu names\n", path, (unsigned long)st->st_nlink);
        abort();
    } else if (!S_ISREG(st->st_mode) && !S_ISDIR(st->st_mode)) {
        fprintf(stderr, "fuzz_tarball: %s is a special file\n", path);
        abort();
    }
    return 0;
}

/* Folders may have come out without rwx for their owner. */
static int fuzz__open_up(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)ftw;
    if (flag == FTW_D || flag == FTW_DNR || S_ISDIR(st->st_mode))
        chmod(path, 0700);
    return 0;
}

static int fuzz__remove(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    if ((flag == FTW_DP ? rmdir(path) : unlink(path)) != 0)
        abort();
    return 0;
}

static void fuzz__write(const uint8_t *data, size_t size)
{
    int fd = open(fuzz__archive, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || (size && write(fd, data, size) != (ssize_t)size) || close(fd) != 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (fuzz__base[0] == '\0')
        fuzz__setup();
    fuzz__write(data, size);
    if (mkdir(fuzz__root, 0700) != 0 || mkdir(fuzz__target, 0700) != 0 ||
        realpath(fuzz__target, fuzz__target_real) == NULL)
        abort();

    char err[1024];
    ferry_extract_opts opts = {.max_bytes = 4 << 20, .max_members = 256};
    (void)ferry_archive_extract_opts(fuzz__archive, fuzz__target, &opts, err, sizeof(err));

    fuzz__only(fuzz__base, "in.tar.gz", "root");
    fuzz__only(fuzz__root, "target", NULL);
    if (nftw(fuzz__target, fuzz__visit, 16, FTW_PHYS) != 0)
        abort();
    (void)nftw(fuzz__root, fuzz__open_up, 16, FTW_PHYS);
    if (nftw(fuzz__root, fuzz__remove, 16, FTW_PHYS | FTW_DEPTH) != 0)
        abort();

    ferry_archive_limits lim = {.max_bytes = 4 << 20, .max_members = 256, .max_ratio = 200};
    (void)ferry_archive_check(data, size, &lim, err, sizeof(err));
    char *member = NULL;
    size_t len = 0;
    lim.broken = 0;
    if (ferry_archive_read_member_limited(fuzz__archive, "ferry.yaml", &lim, &member, &len, err,
                                          sizeof(err)) == 0 &&
        (member == NULL || member[len] != '\0'))
        abort();
    free(member);
    return 0;
}
