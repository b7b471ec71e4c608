/* Snapshot archives: gzip'd tarballs of a project directory (libarchive). */
#ifndef FERRY_TARBALL_H
#define FERRY_TARBALL_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* Pack `dir` into a .tar.gz at `out_path`, honouring .gitignore files (and
 * always leaving out .git/). Regular files, folders and symlinks that stay
 * inside are kept with their modes. On error returns a negative ferry code and
 * writes a message into err. `progress` (may be NULL) is called with the
 * bytes packed so far. */
int ferry_archive_pack_dir(const char *dir, const char *out_path,
                           void (*progress)(void *arg, int64_t bytes), void *arg, char *err,
                           size_t err_cap);

/* What an extraction may write when its caller names nothing: generous for
 * a project's code, small enough that a gzip bomb (kilobytes that expand to
 * terabytes) cannot fill a worker's disk. */
#define FERRY_EXTRACT_DEFAULT_MAX_BYTES ((int64_t)16 * 1024 * 1024 * 1024)
#define FERRY_EXTRACT_DEFAULT_MAX_MEMBERS 1000000

typedef struct ferry_extract_opts {
    /* Bounds on the archive's content as it is written (headers can lie:
     * the bytes are counted block by block). 0: the defaults above. */
    int64_t max_bytes;   /* uncompressed data bytes of all members together */
    int64_t max_members; /* entries of any kind */
    /* Set non-zero (from any thread) to stop the extraction at the next
     * block or member; may be NULL. */
    atomic_int *cancel;
    /* Non-zero: a symlink whose target leaves `dest` is kept as a symlink
     * (a repository's `data -> /mnt/datasets`) instead of refused. It is
     * never followed: a member written through any symlink is still
     * refused, so nothing is written outside `dest` either way. */
    int links_may_leave;
} ferry_extract_opts;

/* Extract a .tar.gz into `dest` (must exist), safely: refuses absolute paths,
 * ".." components, hard links and symlinks whose target leaves `dest`, and
 * device files, with FERRY_EUNSAFE and a message naming the member. The
 * default bounds apply. */
int ferry_archive_extract(const char *archive_path, const char *dest, char *err, size_t err_cap);
/* The same within `opts` (NULL: the defaults): over a bound is FERRY_ETOOBIG
 * with a message naming it, a cancel FERRY_ECANCELED. What was written by
 * then stays in `dest`: the caller removes it. */
int ferry_archive_extract_opts(const char *archive_path, const char *dest,
                               const ferry_extract_opts *opts, char *err, size_t err_cap);

/* What reading an untrusted archive may cost (docs: README.md,
 * max_snapshot_mb): bytes it expands to (measured as they come out of the
 * decompressor, checked per block, never taken from headers), members, and
 * expansion per compressed byte once past FERRY_ARCHIVE_RATIO_FLOOR. 0: no
 * bound. `broken` says which bound stopped a read (FERRY_ETOOBIG). */
#define FERRY_ARCHIVE_MAX_MB 1024
#define FERRY_ARCHIVE_MAX_MEMBERS 100000
#define FERRY_ARCHIVE_MAX_RATIO 200
#define FERRY_ARCHIVE_RATIO_FLOOR ((int64_t)16 << 20)
enum {
    FERRY_ARCHIVE_BROKE_NONE,
    FERRY_ARCHIVE_BROKE_BYTES,
    FERRY_ARCHIVE_BROKE_MEMBERS,
    FERRY_ARCHIVE_BROKE_RATIO
};
typedef struct ferry_archive_limits {
    int64_t max_bytes;
    int64_t max_members;
    int64_t max_ratio;
    int broken; /* out */
} ferry_archive_limits;
extern const ferry_archive_limits ferry_archive_default_limits;

/* Read one member (exact path, "./" prefix ignored) of a .tar.gz into a
 * malloc'd NUL-terminated buffer. FERRY_ENOENT when it is not there,
 * FERRY_ETOOBIG when the archive breaks `lim` (NULL: the defaults) before
 * its end (a later member of the same name wins, so it is read whole). */
int ferry_archive_read_member_limited(const char *archive_path, const char *member,
                                      ferry_archive_limits *lim, char **data, size_t *len,
                                      char *err, size_t err_cap);
/* The same with the default limits. */
int ferry_archive_read_member(const char *archive_path, const char *member, char **data,
                              size_t *len, char *err, size_t err_cap);
/* Read a whole .tar.gz held in memory against `lim` (NULL: the defaults):
 * 0, FERRY_ETOOBIG (lim->broken says which bound) or FERRY_EIO. */
int ferry_archive_check(const void *data, size_t len, ferry_archive_limits *lim, char *err,
                        size_t err_cap);

#endif
