/* ferry-mountns: runs a program in a private mount namespace that sees the
 * host's file system plus folders bind-mounted at paths the host need not
 * have (/valohai/inputs, /ferry/outputs...), so that a project which
 * hard-codes Valohai's paths runs unchanged without a container.
 *
 *   ferry-mountns --check
 *   ferry-mountns -r ROOT [-C DIR] [-e NAME=VALUE]... [-b|-B SOURCE TARGET]...
 *                 [-F FILE TARGET]... -- PROGRAM [ARG]...
 *
 * --check says (exit 0) whether this process may make such a namespace, or
 * why not on stderr (exit 1). A run makes its own mount namespace and binds
 * each SOURCE at TARGET (-B: read-only), then changes to DIR, sets the -e
 * variables and executes PROGRAM. Nothing is mounted in the host's
 * namespace: "/" is made private before the first mount.
 *
 * -F binds a regular FILE read-only onto TARGET, an existing file (the
 * worker's cached copy of a large input onto its empty stand-in in the
 * inputs folder: no copy). Those go first, onto the host's own paths, so
 * that the folder binds and the root of our own carry them (a bind is
 * recursive); one that fails ends ferry-mountns (exit 126), since the
 * commands would read an empty file.
 *
 * Where the mounts go: as root, onto the host's own folders (a step mount's
 * destination that exists; /valohai/... and /ferry/..., made once, left
 * empty), which takes a millisecond. Otherwise, or for a destination the
 * host lacks, the namespace gets a root of its own in ROOT (an empty folder
 * it may create, the execution's own): every top-level entry of "/" bound
 * (recursively) or recreated there, each TARGET made inside it, then
 * entered (chroot): a few milliseconds.
 *
 * As root (CAP_SYS_ADMIN) only a mount namespace is made; otherwise a user
 * namespace too, mapping the caller's own uid and gid to themselves, so the
 * commands keep their identity and their files their owner. When the
 * namespace cannot be made, one line on stderr says why and PROGRAM runs
 * as it would have without it (the paths are missing; nothing else is).
 *
 * A program of its own, not code in the plugin: the namespace must be made
 * between fork and exec, which uv_spawn leaves no room for. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#define MNS_MAX_BINDS 40

typedef struct mns_bind {
    const char *source, *target;
    int readonly;
} mns_bind;

typedef struct mns_args {
    const char *root;
    const char *dir;
    char **env;
    size_t n_env;
    mns_bind binds[MNS_MAX_BINDS];
    size_t n_binds;
    mns_bind files[MNS_MAX_BINDS]; /* -F */
    size_t n_files;
    char **program;
} mns_args;

static char mns_why[512];

static int mns_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int mns_fail(const char *fmt, ...)
{
    int e = errno;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(mns_why, sizeof(mns_why), fmt, ap);
    va_end(ap);
    if (n >= 0 && (size_t)n < sizeof(mns_why))
        snprintf(mns_why + n, sizeof(mns_why) - (size_t)n, ": %s", strerror(e));
    return -1;
}

static int mns_write_file(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t len = strlen(text);
    ssize_t w = write(fd, text, len);
    int e = errno;
    close(fd);
    errno = e;
    return w == (ssize_t)len ? 0 : -1;
}

/* A user namespace where the caller keeps its own uid and gid. */
static int mns_user_namespace(void)
{
    uid_t uid = geteuid();
    gid_t gid = getegid();
    if (unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0)
        return mns_fail("unshare of a user and mount namespace (needs root, or user namespaces "
                        "allowed: sysctl user.max_user_namespaces)");
    char map[64];
    snprintf(map, sizeof(map), "%u %u 1\n", (unsigned)uid, (unsigned)uid);
    if (mns_write_file("/proc/self/uid_map", map) != 0)
        return mns_fail("writing /proc/self/uid_map");
    /* setgroups must be denied before an unprivileged gid_map. */
    if (mns_write_file("/proc/self/setgroups", "deny") != 0 && errno != ENOENT)
        return mns_fail("writing /proc/self/setgroups");
    snprintf(map, sizeof(map), "%u %u 1\n", (unsigned)gid, (unsigned)gid);
    if (mns_write_file("/proc/self/gid_map", map) != 0)
        return mns_fail("writing /proc/self/gid_map");
    return 0;
}

/* A mount namespace of our own, "/" private in it: no mount made here can
 * reach the host's namespace. */
static int mns_namespace(int *in_userns)
{
    *in_userns = 0;
    if (unshare(CLONE_NEWNS) != 0) {
        if (errno != EPERM)
            return mns_fail("unshare of a mount namespace");
        if (mns_user_namespace() != 0)
            return -1;
        *in_userns = 1;
    }
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0)
        return mns_fail("making / private in the new mount namespace");
    return 0;
}

static int mns_mkdirs(char *path)
{
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        int rc = mkdir(path, 0755);
        *p = '/';
        if (rc != 0 && errno != EEXIST)
            return mns_fail("creating %s", path);
    }
    if (mkdir(path, 0755) != 0 && errno != EEXIST)
        return mns_fail("creating %s", path);
    return 0;
}

/* One top-level entry of "/" as it is in the new root. */
static int mns_copy_entry(const char *root, const char *name)
{
    char from[PATH_MAX], to[PATH_MAX];
    snprintf(from, sizeof(from), "/%s", name);
    if ((size_t)snprintf(to, sizeof(to), "%s/%s", root, name) >= sizeof(to))
        return mns_fail("%s/%s: path too long", root, name);
    struct stat sb;
    if (lstat(from, &sb) != 0)
        return 0; /* gone meanwhile */
    if (S_ISLNK(sb.st_mode)) {
        char target[PATH_MAX];
        ssize_t n = readlink(from, target, sizeof(target) - 1);
        if (n < 0)
            return mns_fail("reading the link %s", from);
        target[n] = '\0';
        if (symlink(target, to) != 0 && errno != EEXIST)
            return mns_fail("creating the link %s", to);
        return 0;
    }
    if (S_ISDIR(sb.st_mode)) {
        if (mkdir(to, 0755) != 0 && errno != EEXIST)
            return mns_fail("creating %s", to);
    } else if (S_ISREG(sb.st_mode)) {
        int fd = open(to, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0)
            return mns_fail("creating %s", to);
        close(fd);
    } else {
        return 0; /* a socket or device at the top level: nothing runs from there */
    }
    if (mount(from, to, NULL, MS_BIND | MS_REC, NULL) != 0)
        return mns_fail("bind-mounting %s", from);
    return 0;
}

static int mns_copy_root(const char *root)
{
    DIR *d = opendir("/");
    if (d == NULL)
        return mns_fail("reading /");
    int rc = 0;
    struct dirent *e;
    while (rc == 0 && (e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        rc = mns_copy_entry(root, e->d_name);
    }
    closedir(d);
    return rc;
}

/* A bind mount made read-only: a remount that keeps the flags the source's
 * mount has (in a user namespace they are locked: dropping one fails). */
static int mns_read_only(const char *path, const char *target)
{
    struct statvfs sv;
    if (statvfs(path, &sv) != 0)
        return mns_fail("reading the flags of %s", target);
    static const struct {
        unsigned long st, ms;
    } keep[] = {{ST_NOSUID, MS_NOSUID},         {ST_NODEV, MS_NODEV},
                {ST_NOEXEC, MS_NOEXEC},         {ST_NOATIME, MS_NOATIME},
                {ST_NODIRATIME, MS_NODIRATIME}, {ST_RELATIME, MS_RELATIME}};
    unsigned long flags = MS_BIND | MS_REMOUNT | MS_RDONLY;
    for (size_t i = 0; i < sizeof(keep) / sizeof(keep[0]); i++)
        if (sv.f_flag & keep[i].st)
            flags |= keep[i].ms;
    if (mount(NULL, path, NULL, flags, NULL) != 0)
        return mns_fail("making %s read-only", target);
    return 0;
}

static int mns_bind_one(const char *root, const mns_bind *b)
{
    char to[PATH_MAX];
    if ((size_t)snprintf(to, sizeof(to), "%s%s", root, b->target) >= sizeof(to))
        return mns_fail("%s: path too long", b->target);
    if (mns_mkdirs(to) != 0)
        return -1;
    if (mount(b->source, to, NULL, MS_BIND | MS_REC, NULL) != 0)
        return mns_fail("bind-mounting %s at %s", b->source, b->target);
    return b->readonly ? mns_read_only(to, b->target) : 0;
}

/* The -F files, in place: each a read-only bind of a regular file onto an
 * existing regular file (never a folder: a cached input replaces only its
 * own stand-in). */
static int mns_bind_files(const mns_args *a)
{
    for (size_t i = 0; i < a->n_files; i++) {
        const mns_bind *f = &a->files[i];
        struct stat src, dst;
        if (stat(f->source, &src) != 0 || !S_ISREG(src.st_mode))
            return mns_fail("the input file %s", f->source);
        if (lstat(f->target, &dst) != 0 || !S_ISREG(dst.st_mode))
            return mns_fail("the input's place %s", f->target);
        if (mount(f->source, f->target, NULL, MS_BIND, NULL) != 0)
            return mns_fail("bind-mounting %s at %s", f->source, f->target);
        if (mns_read_only(f->target, f->target) != 0)
            return -1;
    }
    return 0;
}

/* Whether every target can be a folder of the host itself: one that is
 * there, or one of the execution's own mount points (/valohai/..., /ferry/...,
 * made once, empty). A step's mount onto a path the host lacks needs the
 * root of our own: nothing else is ever created on the host. */
static int mns_in_place_ok(const mns_args *a)
{
    for (size_t i = 0; i < a->n_binds; i++) {
        const char *t = a->binds[i].target;
        struct stat sb;
        if (stat(t, &sb) == 0 ? !S_ISDIR(sb.st_mode)
                              : strncmp(t, "/valohai/", 9) != 0 && strncmp(t, "/ferry/", 7) != 0)
            return 0;
    }
    return 1;
}

/* The mounts, on the host's own folders (`root` "") or in the new root. */
static int mns_bind_all(const mns_args *a, const char *root)
{
    for (size_t i = 0; i < a->n_binds; i++)
        if (mns_bind_one(root, &a->binds[i]) != 0)
            return -1;
    return 0;
}

/* As root (no user namespace), the mounts go straight onto the host's
 * folders in this namespace: a millisecond. Otherwise (mkdir on the host
 * is not ours to do) a root of our own is made, each top-level entry of
 * "/" bound into it, and entered: a few. */
static int mns_mount(const mns_args *a)
{
    int in_userns;
    if (mns_namespace(&in_userns) != 0)
        return -1;
    if (mns_bind_files(a) != 0)
        return -2;
    if (!in_userns && mns_in_place_ok(a))
        return mns_bind_all(a, "");
    char root[PATH_MAX];
    snprintf(root, sizeof(root), "%s", a->root);
    if (mns_mkdirs(root) != 0 || mns_copy_root(a->root) != 0 || mns_bind_all(a, a->root) != 0)
        return -1;
    if (chroot(a->root) != 0)
        return mns_fail("changing the root to %s", a->root);
    return 0;
}

/* 0; -1 when the folders could not be made (the commands run without
 * them); -2 when an input file could not be bound (they must not run). */
static int mns_build(const mns_args *a)
{
    int rc = mns_mount(a);
    if (rc != 0)
        return rc;
    if (chdir(a->dir ? a->dir : "/") != 0)
        return mns_fail("changing to %s", a->dir ? a->dir : "/");
    for (size_t i = 0; i < a->n_env; i++)
        if (putenv(a->env[i]) != 0)
            return mns_fail("setting %s", a->env[i]);
    return 0;
}

static int mns_usage(void)
{
    fprintf(stderr, "usage: ferry-mountns --check\n"
                    "       ferry-mountns -r ROOT [-C DIR] [-e NAME=VALUE]... "
                    "[-b|-B SOURCE TARGET]... [-F FILE TARGET]... -- PROGRAM [ARG]...\n");
    return 2;
}

static int mns_parse(int argc, char **argv, mns_args *a)
{
    static char *env[MNS_MAX_BINDS];
    a->env = env;
    int i = 1;
    for (; i < argc && strcmp(argv[i], "--") != 0; i++) {
        const char *opt = argv[i];
        int bind = strcmp(opt, "-b") == 0 || strcmp(opt, "-B") == 0 || strcmp(opt, "-F") == 0;
        int need = bind ? 2 : 1;
        if (i + need >= argc)
            return -1;
        if (strcmp(opt, "-r") == 0) {
            a->root = argv[++i];
        } else if (strcmp(opt, "-C") == 0) {
            a->dir = argv[++i];
        } else if (strcmp(opt, "-e") == 0 && a->n_env < MNS_MAX_BINDS) {
            a->env[a->n_env++] = argv[++i];
        } else if (opt[1] == 'F' && a->n_files < MNS_MAX_BINDS && argv[i + 2][0] == '/') {
            a->files[a->n_files].source = argv[i + 1];
            a->files[a->n_files++].target = argv[i + 2];
            i += 2;
        } else if (bind && opt[1] != 'F' && a->n_binds < MNS_MAX_BINDS && argv[i + 2][0] == '/') {
            a->binds[a->n_binds].source = argv[i + 1];
            a->binds[a->n_binds].target = argv[i + 2];
            a->binds[a->n_binds++].readonly = opt[1] == 'B';
            i += 2;
        } else {
            return -1;
        }
    }
    if (i + 1 >= argc || a->root == NULL || a->root[0] != '/')
        return -1;
    a->program = argv + i + 1;
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "--check") == 0) {
        int in_userns;
        if (mns_namespace(&in_userns) == 0)
            return 0;
        fprintf(stderr, "%s\n", mns_why);
        return 1;
    }
    mns_args a = {0};
    if (mns_parse(argc, argv, &a) != 0)
        return mns_usage();
    int rc = mns_build(&a);
    if (rc == -2) {
        fprintf(stderr, "ferry: the inputs cannot be placed: %s\n", mns_why);
        return 126;
    }
    if (rc != 0)
        fprintf(stderr, "ferry: the /valohai and /ferry folders are missing: %s\n", mns_why);
    execvp(a.program[0], a.program);
    fprintf(stderr, "ferry-mountns: %s: %s\n", a.program[0], strerror(errno));
    return 127;
}
