/* Inputs kept on the worker by ETag (s3:// inputs come with one): the
 * second execution that reads an unchanged object takes it from here
 * instead of downloading it again.
 *
 * Commands may write to their inputs/, and must not change what the next
 * execution reads, so an execution gets either its own copy or, for a
 * large file where the runtime can bind one (a GiB copies in a third of a
 * second), a read-only view of the cached file itself: a hard link in the
 * execution's folder (so that pruning the cache cannot take the file from
 * under a run) and an empty stand-in in inputs/, which the runtime binds
 * the link onto. A download becomes the cached file only once its size is
 * checked, by an atomic rename, so a reader never sees half of one.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent.h"
#include "util.h"

char *inputcache_path(const char *work_dir, const char *source, const char *etag)
{
    char *id = ferry_asprintf("%s\n%s", source, etag);
    char hex[65];
    ferry_sha256_hex(id, strlen(id), hex);
    free(id);
    return ferry_asprintf("%s/inputs-cache/%s", work_dir, hex);
}

static int inputcache_fail(char *err, size_t cap, int code, const char *what, const char *path)
{
    snprintf(err, cap, "%s %s: %s", what, path, strerror(errno));
    return code;
}

/* The kernel copies (or clones, on filesystems that can) without the bytes
 * passing through here; read/write where it cannot. */
static int inputcache_copy_fd(int in, int out, int64_t size)
{
    int64_t left = size;
    while (left > 0) {
        ssize_t n = copy_file_range(in, NULL, out, NULL, (size_t)left, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        left -= n;
    }
    if (left == 0)
        return 0;
    char buf[1 << 16];
    if (lseek(in, size - left, SEEK_SET) < 0 || lseek(out, size - left, SEEK_SET) < 0)
        return ferry_from_errno(errno);
    while (left > 0) {
        ssize_t n = read(in, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return n == 0 ? FERRY_EIO : ferry_from_errno(errno);
        int rc = ferry_write_all(out, buf, (size_t)n);
        if (rc < 0)
            return rc;
        left -= n;
    }
    return 0;
}

static int inputcache_copy_open(int in, int64_t size, const char *dest, char *err, size_t cap)
{
    int out = open(dest, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (out < 0)
        return inputcache_fail(err, cap, FERRY_EIO, "create", dest);
    int rc = inputcache_copy_fd(in, out, size);
    if (close(out) != 0 && rc == 0)
        rc = ferry_from_errno(errno);
    if (rc < 0) {
        snprintf(err, cap, "copy to %s: %s", dest, ferry_strerror(rc));
        unlink(dest);
        return FERRY_EIO;
    }
    return 0;
}

/* The link and the stand-in; FERRY_ENOTSUP where no hard link can be made
 * there (another file system): the caller copies instead. */
static int inputcache_link(const char *cache, const char *link_path, const char *dest, char *err,
                           size_t cap)
{
    unlink(link_path); /* a retried preparation's */
    if (link(cache, link_path) != 0) {
        if (errno == EXDEV || errno == EPERM || errno == EMLINK || errno == ENOTSUP)
            return FERRY_ENOTSUP;
        return inputcache_fail(err, cap, errno == ENOENT ? FERRY_ENOENT : FERRY_EIO, "link",
                               link_path);
    }
    int fd = open(dest, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0444);
    if (fd < 0) {
        int rc = inputcache_fail(err, cap, FERRY_EIO, "create", dest);
        unlink(link_path);
        return rc;
    }
    close(fd);
    return 0;
}

int inputcache_place(const char *cache, const char *dest, const char *link_path,
                     int64_t link_min_size, int64_t size, int *linked, char *err, size_t cap)
{
    *linked = 0;
    int in = open(cache, O_RDONLY | O_CLOEXEC);
    if (in < 0)
        return errno == ENOENT ? FERRY_ENOENT : inputcache_fail(err, cap, FERRY_EIO, "read", cache);
    struct stat st;
    if (fstat(in, &st) != 0 || (size >= 0 && st.st_size != size)) {
        /* Not what the ETag promised (a crash mid-write, by hand): drop it. */
        close(in);
        unlink(cache);
        return FERRY_ENOENT;
    }
    int rc = FERRY_ENOTSUP;
    if (link_path != NULL && link_min_size >= 0 && st.st_size >= link_min_size) {
        rc = inputcache_link(cache, link_path, dest, err, cap);
        *linked = rc == 0;
    }
    if (rc == FERRY_ENOTSUP)
        rc = inputcache_copy_open(in, (int64_t)st.st_size, dest, err, cap);
    close(in);
    return rc;
}

int inputcache_take(const char *part, const char *cache, const char *dest, const char *link_path,
                    int64_t link_min_size, int64_t size, int *linked, char *err, size_t cap)
{
    *linked = 0;
    struct stat st;
    if (stat(part, &st) != 0)
        return inputcache_fail(err, cap, FERRY_EIO, "read", part);
    if (size >= 0 && st.st_size != size) {
        snprintf(err, cap, "the download holds %lld bytes, the object %lld", (long long)st.st_size,
                 (long long)size);
        unlink(part);
        return FERRY_EPROTO;
    }
    if (cache == NULL)
        return strcmp(part, dest) == 0 || rename(part, dest) == 0
                   ? 0
                   : inputcache_fail(err, cap, FERRY_EIO, "rename", part);
    if (rename(part, cache) != 0) {
        int rc = inputcache_fail(err, cap, FERRY_EIO, "keep", part);
        unlink(part);
        return rc;
    }
    int rc = inputcache_place(cache, dest, link_path, link_min_size, size, linked, err, cap);
    if (rc == FERRY_ENOENT) {
        snprintf(err, cap, "the cached copy vanished");
        rc = FERRY_EIO;
    }
    return rc;
}

/* "<cache>.sums": the checksums of a cached file beside it, so that a copy
 * from the cache is never read again for inputs.json (a GiB costs seconds
 * of hashing). The file behind a cache name never changes (same source,
 * same ETag); the size is checked all the same. */
void inputcache_save_sums(const char *cache, int64_t size, const char *md5, const char *sha1,
                          const char *sha256)
{
    char *path = ferry_asprintf("%s.sums", cache);
    char *text = ferry_asprintf("%lld %s %s %s\n", (long long)size, md5, sha1, sha256);
    if (ferry_write_file(path, text, strlen(text)) != 0)
        unlink(path);
    free(text);
    free(path);
}

int inputcache_load_sums(const char *cache, int64_t size, char *md5, char *sha1, char *sha256)
{
    char *path = ferry_asprintf("%s.sums", cache);
    FILE *f = fopen(path, "r");
    free(path);
    if (f == NULL)
        return FERRY_ENOENT;
    long long got = -1;
    int n = fscanf(f, "%lld %32s %40s %64s", &got, md5, sha1, sha256);
    fclose(f);
    return n == 4 && got == size && strlen(md5) == 32 && strlen(sha1) == 40 && strlen(sha256) == 64
               ? 0
               : FERRY_ENOENT;
}
