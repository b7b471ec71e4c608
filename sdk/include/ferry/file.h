/* ferry plugin SDK: files: a small file a plugin's settings name (a key
 * file, a certificate) read whole in one call, and folders made with their
 * parents.
 */
#ifndef FERRY_FILE_H
#define FERRY_FILE_H

#include <stddef.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The whole of `path`, NUL-terminated, into *text (malloc'd; *len bytes,
 * `len` may be NULL). 0; FERRY_EIO when it cannot be opened or read (errno
 * says why); FERRY_ETOOBIG when it holds more than `max` bytes;
 * FERRY_ENOMEM. On failure *text is NULL, and what was read has been wiped:
 * such files hold secrets. */
int ferry_file_read(const char *path, size_t max, char **text, size_t *len);

/* mkdir -p: `path` and the folders above it, each with `mode` when it is
 * made. 0, or a FERRY_E* code (errno says why). */
int ferry_file_mkdirs(const char *path, mode_t mode);

#ifdef __cplusplus
}
#endif

#endif
