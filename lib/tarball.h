/* Snapshot archives: gzip'd tarballs of a project directory (libarchive). */
#ifndef FERRY_TARBALL_H
#define FERRY_TARBALL_H

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

/* Extract a .tar.gz into `dest` (must exist), safely: refuses absolute paths,
 * ".." components, hard links and symlinks whose target leaves `dest`, and
 * device files, with FERRY_EUNSAFE and a message naming the member. */
int ferry_archive_extract(const char *archive_path, const char *dest, char *err, size_t err_cap);

/* Read one member (exact path, "./" prefix ignored) of a .tar.gz into a
 * malloc'd NUL-terminated buffer. FERRY_ENOENT when it is not there. */
int ferry_archive_read_member(const char *archive_path, const char *member, char **data,
                              size_t *len, char *err, size_t err_cap);

#endif
