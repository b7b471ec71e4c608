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

/* Read one member (exact path, "./" prefix ignored) of a .tar.gz into a
 * malloc'd NUL-terminated buffer. FERRY_ENOENT when it is not there. */
int ferry_archive_read_member(const char *archive_path, const char *member, char **data,
                              size_t *len, char *err, size_t err_cap);

#endif
