/* Snapshot archives: extracting a hostile archive safely (tarball.h). */
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
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct ferry__extract {
    struct archive *in;
    struct archive *out;
    char **links; /* symlinks written, checked again at the end */
    size_t n_links, cap_links;
    char *err;
    size_t err_cap;
    /* the bounds, and what was written so far */
    int64_t max_bytes, max_members;
    atomic_int *cancel;
    int links_may_leave; /* ferry_extract_opts */
    int64_t bytes, members;
} ferry__extract;

static int ferry__canceled(const ferry__extract *x)
{
    return x->cancel != NULL && atomic_load(x->cancel) != 0;
}

static int ferry__fail_canceled(ferry__extract *x)
{
    return tarball__fail(x->err, x->err_cap, FERRY_ECANCELED, "extraction canceled");
}

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
        return tarball__fail(x->err, x->err_cap, FERRY_EUNSAFE,
                             "archive member '%s': hard links are not allowed", raw);
    if (type != AE_IFREG && type != AE_IFDIR && type != AE_IFLNK)
        return tarball__fail(x->err, x->err_cap, FERRY_EUNSAFE,
                             "archive member '%s': a %s is not allowed", raw,
                             ferry__type_name(type));
    char buf[PATH_MAX];
    const char *via = ferry__through_symlink(rel, buf, sizeof(buf));
    if (via != NULL)
        return tarball__fail(x->err, x->err_cap, FERRY_EUNSAFE,
                             "archive member '%s': goes through the symlink '%s'", raw, via);
    if (type == AE_IFLNK) {
        const char *target = archive_entry_symlink(e);
        if (target == NULL ||
            (!x->links_may_leave && !tarball__link_stays_inside(".", rel, target)))
            return tarball__fail(x->err, x->err_cap, FERRY_EUNSAFE,
                                 "archive member '%s': symlink to '%s' leaves the destination", raw,
                                 target ? target : "");
    }
    return 0;
}

/* The size bound is checked on the bytes as they come out of the
 * decompressor, before they are written: a member's header may claim a few
 * bytes and carry gigabytes. A sparse member's offset counts too, so holes
 * cannot make a file larger than the bound either. */
static int ferry__copy_data(ferry__extract *x, const char *raw)
{
    for (;;) {
        const void *block;
        size_t size;
        la_int64_t offset;
        if (ferry__canceled(x))
            return ferry__fail_canceled(x);
        int r = archive_read_data_block(x->in, &block, &size, &offset);
        if (r == ARCHIVE_EOF)
            return 0;
        if (r < ARCHIVE_WARN)
            return tarball__fail(x->err, x->err_cap, FERRY_EIO, "archive member '%s': %s", raw,
                                 archive_error_string(x->in));
        if ((int64_t)size > x->max_bytes - x->bytes || offset < 0 ||
            offset > x->max_bytes - (int64_t)size)
            return tarball__fail(x->err, x->err_cap, FERRY_ETOOBIG,
                                 "archive member '%s': the archive expands to more than %lld "
                                 "bytes (its bound on uncompressed size)",
                                 raw, (long long)x->max_bytes);
        x->bytes += (int64_t)size;
        if (archive_write_data_block(x->out, block, size, offset) < ARCHIVE_WARN)
            return tarball__fail(x->err, x->err_cap, FERRY_EIO, "archive member '%s': %s", raw,
                                 archive_error_string(x->out));
    }
}

static int ferry__extract_member(ferry__extract *x, struct archive_entry *e)
{
    const char *raw = archive_entry_pathname(e);
    const char *why = NULL;
    if (++x->members > x->max_members)
        return tarball__fail(x->err, x->err_cap, FERRY_ETOOBIG,
                             "archive member '%s': the archive has more than %lld members (its "
                             "bound on members)",
                             raw ? raw : "", (long long)x->max_members);
    char *rel = tarball__normalize_member(raw, &why);
    if (rel == NULL)
        return tarball__fail(x->err, x->err_cap, FERRY_EUNSAFE, "archive member '%s': %s",
                             raw ? raw : "", why);
    int rc = 0;
    if (rel[0] == '\0') {
        /* "./": the destination itself, which exists already. */
        if (archive_entry_filetype(e) != AE_IFDIR)
            rc = tarball__fail(x->err, x->err_cap, FERRY_EUNSAFE,
                               "archive member '%s': not a folder", raw);
        free(rel);
        return rc;
    }
    rc = ferry__check_member(x, e, raw, rel);
    if (rc == 0) {
        char *shown = ferry_strdup(raw); /* raw belongs to e, renamed next */
        archive_entry_set_pathname(e, rel);
        archive_entry_set_perm(e, archive_entry_perm(e) & 0777);
        if (archive_write_header(x->out, e) < ARCHIVE_WARN)
            rc = tarball__fail(x->err, x->err_cap, FERRY_EUNSAFE, "archive member '%s': %s", shown,
                               archive_error_string(x->out));
        if (rc == 0 && archive_entry_filetype(e) == AE_IFREG)
            rc = ferry__copy_data(x, shown);
        if (rc == 0 && archive_write_finish_entry(x->out) < ARCHIVE_WARN)
            rc = tarball__fail(x->err, x->err_cap, FERRY_EIO, "archive member '%s': %s", shown,
                               archive_error_string(x->out));
        free(shown);
    }
    if (rc == 0 && archive_entry_filetype(e) == AE_IFLNK && !x->links_may_leave) {
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
        if (!tarball__link_stays_inside(".", x->links[i], target)) {
            unlink(x->links[i]);
            return tarball__fail(x->err, x->err_cap, FERRY_EUNSAFE,
                                 "archive member '%s': symlink to '%s' leaves the destination",
                                 x->links[i], target);
        }
    }
    return 0;
}

/* The caller's bounds, the defaults where it names none. */
typedef struct ferry__bounds {
    int64_t max_bytes, max_members;
    atomic_int *cancel;
    int links_may_leave;
} ferry__bounds;

/* Runs in the child, whose working folder is the destination. */
static int ferry__extract_here(int archive_fd, const ferry__bounds *b, char *err, size_t err_cap)
{
    ferry__extract x = {.err = err,
                        .err_cap = err_cap,
                        .max_bytes = b->max_bytes,
                        .max_members = b->max_members,
                        .cancel = b->cancel,
                        .links_may_leave = b->links_may_leave};
    x.in = tarball__new_reader();
    x.out = archive_write_disk_new();
    if (x.out == NULL)
        abort();
    archive_write_disk_set_options(x.out, ARCHIVE_EXTRACT_SECURE_NODOTDOT |
                                              ARCHIVE_EXTRACT_SECURE_SYMLINKS |
                                              ARCHIVE_EXTRACT_SECURE_NOABSOLUTEPATHS);
    int rc = 0;
    if (archive_read_open_fd(x.in, archive_fd, FERRY__BLOCK) != ARCHIVE_OK)
        rc = tarball__fail(err, err_cap, FERRY_EIO, "cannot read archive: %s",
                           archive_error_string(x.in));
    while (rc == 0) {
        struct archive_entry *e;
        if (ferry__canceled(&x)) {
            rc = ferry__fail_canceled(&x);
            break;
        }
        int r = archive_read_next_header(x.in, &e);
        if (r == ARCHIVE_EOF)
            break;
        if (r < ARCHIVE_WARN)
            rc = tarball__fail(err, err_cap, FERRY_EIO, "cannot read archive: %s",
                               archive_error_string(x.in));
        else
            rc = ferry__extract_member(&x, e);
    }
    if (rc == 0)
        rc = ferry__recheck_links(&x);
    if (archive_write_close(x.out) != ARCHIVE_OK && rc == 0)
        rc = tarball__fail(err, err_cap, FERRY_EIO, "cannot finish extraction: %s",
                           archive_error_string(x.out));
    archive_write_free(x.out);
    archive_read_free(x.in);
    for (size_t i = 0; i < x.n_links; i++)
        free(x.links[i]);
    free(x.links);
    return rc;
}

/* The child's answer; while it is not in, a cancel is looked at every
 * FERRY__CANCEL_POLL_MS, and the child is killed on one (*canceled set): the
 * child's copy of the flag would never change. */
#define FERRY__CANCEL_POLL_MS 50

static size_t ferry__read_answer(int fd, void *data, size_t cap, pid_t pid, atomic_int *cancel,
                                 int *canceled)
{
    char *p = data;
    size_t got = 0;
    *canceled = 0;
    while (got < cap) {
        if (cancel != NULL) {
            if (atomic_load(cancel) != 0) {
                kill(pid, SIGKILL);
                *canceled = 1;
                break;
            }
            struct pollfd pfd = {.fd = fd, .events = POLLIN};
            int ready = poll(&pfd, 1, FERRY__CANCEL_POLL_MS);
            if (ready < 0 && errno != EINTR)
                break;
            if (ready <= 0)
                continue;
        }
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
static int ferry__extract_forked(int fd, const char *archive_path, const char *dest,
                                 const ferry__bounds *b, char *err, size_t err_cap)
{
    int pipefd[2];
    if (pipe2(pipefd, O_CLOEXEC) != 0)
        return tarball__fail(err, err_cap, FERRY_EIO, "pipe: %s", strerror(errno));
    pid_t pid = fork();
    if (pid == 0) {
        struct {
            int rc;
            char msg[1024];
        } res = {0, ""};
        close(pipefd[0]);
        if (chdir(dest) != 0)
            res.rc = tarball__fail(res.msg, sizeof(res.msg), FERRY_EIO, "cannot enter %s: %s", dest,
                                   strerror(errno));
        else {
            ferry__bounds mine = *b;
            mine.cancel = NULL; /* the parent watches the flag */
            res.rc = ferry__extract_here(fd, &mine, res.msg, sizeof(res.msg));
        }
        (void)ferry_write_all(pipefd[1], &res, sizeof(res)); /* a short answer reads as a death */
        _exit(0);
    }
    close(pipefd[1]);
    if (pid < 0) {
        close(pipefd[0]);
        return tarball__fail(err, err_cap, FERRY_EIO, "fork: %s", strerror(errno));
    }
    struct {
        int rc;
        char msg[1024];
    } res;
    int canceled = 0;
    size_t got = ferry__read_answer(pipefd[0], &res, sizeof(res), pid, b->cancel, &canceled);
    close(pipefd[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (canceled)
        return tarball__fail(err, err_cap, FERRY_ECANCELED, "extraction canceled");
    if (got != sizeof(res) || !WIFEXITED(status))
        return tarball__fail(err, err_cap, FERRY_EIO, "extracting %s: the extraction process died",
                             archive_path);
    res.msg[sizeof(res.msg) - 1] = '\0';
    if (res.rc != 0)
        tarball__fail(err, err_cap, res.rc, "%s", res.msg);
    return res.rc;
}

/* In this thread, after unshare(CLONE_FS) gave it a working folder of its
 * own: chdir() here moves no other thread. The folder is restored after. */
static int ferry__extract_in_thread(int fd, const char *dest, const ferry__bounds *b, char *err,
                                    size_t err_cap)
{
    int here = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (here < 0)
        return tarball__fail(err, err_cap, FERRY_EIO, "cannot open the working folder: %s",
                             strerror(errno));
    int rc;
    if (chdir(dest) != 0)
        rc = tarball__fail(err, err_cap, FERRY_EIO, "cannot enter %s: %s", dest, strerror(errno));
    else
        rc = ferry__extract_here(fd, b, err, err_cap);
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
int ferry_archive_extract_opts(const char *archive_path, const char *dest,
                               const ferry_extract_opts *opts, char *err, size_t err_cap)
{
    ferry__bounds b = {FERRY_EXTRACT_DEFAULT_MAX_BYTES, FERRY_EXTRACT_DEFAULT_MAX_MEMBERS, NULL, 0};
    if (opts != NULL) {
        if (opts->max_bytes > 0)
            b.max_bytes = opts->max_bytes;
        if (opts->max_members > 0)
            b.max_members = opts->max_members;
        b.cancel = opts->cancel;
        b.links_may_leave = opts->links_may_leave;
    }
    if (b.cancel != NULL && atomic_load(b.cancel) != 0)
        return tarball__fail(err, err_cap, FERRY_ECANCELED, "extraction canceled");
    struct stat st;
    if (stat(dest, &st) != 0 || !S_ISDIR(st.st_mode))
        return tarball__fail(err, err_cap, FERRY_ENOENT, "%s is not a folder", dest);
    int fd = open(archive_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return tarball__fail(err, err_cap, errno == ENOENT ? FERRY_ENOENT : FERRY_EIO,
                             "cannot open %s: %s", archive_path, strerror(errno));
    int rc = unshare(CLONE_FS) == 0
                 ? ferry__extract_in_thread(fd, dest, &b, err, err_cap)
                 : ferry__extract_forked(fd, archive_path, dest, &b, err, err_cap);
    close(fd);
    return rc;
}

int ferry_archive_extract(const char *archive_path, const char *dest, char *err, size_t err_cap)
{
    return ferry_archive_extract_opts(archive_path, dest, NULL, err, err_cap);
}
