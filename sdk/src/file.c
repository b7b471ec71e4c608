/* ferry plugin SDK: reading a small file whole (ferry/file.h). */
#include "ferry/file.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ferry/error.h"

static void file__wipe(char *buf, size_t n)
{
    if (buf)
        memset(buf, 0, n);
    free(buf);
}

/* A buffer twice the size with the first `n` bytes of `buf`, which is
 * wiped and freed (realloc would leave a copy of a secret in the heap);
 * NULL when out of memory. */
static char *file__grow(char *buf, size_t n, size_t *cap)
{
    char *grown = malloc(*cap * 2);
    if (grown) {
        memcpy(grown, buf, n);
        *cap *= 2;
    }
    file__wipe(buf, n);
    return grown;
}

/* Reads `f` to its end: *n bytes into *out. */
static int file__slurp(FILE *f, size_t max, char **out, size_t *n)
{
    size_t cap = 4096;
    char *buf = malloc(cap);
    *n = 0;
    errno = 0; /* what fread's failure leaves says why */
    while (buf) {
        size_t got = fread(buf + *n, 1, cap - *n - 1, f);
        *n += got;
        if (*n > max) {
            file__wipe(buf, *n);
            return FERRY_ETOOBIG;
        }
        if (got == 0)
            break;
        if (*n + 1 == cap)
            buf = file__grow(buf, *n, &cap);
    }
    if (buf == NULL)
        return FERRY_ENOMEM;
    if (ferror(f)) {
        file__wipe(buf, *n);
        if (errno == 0)
            errno = EIO;
        return FERRY_EIO;
    }
    buf[*n] = '\0';
    *out = buf;
    return 0;
}

int ferry_file_read(const char *path, size_t max, char **text, size_t *len)
{
    *text = NULL;
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return FERRY_EIO;
    size_t n = 0;
    int rc = file__slurp(f, max, text, &n);
    int saved = errno;
    fclose(f);
    errno = saved;
    if (rc == 0 && len)
        *len = n;
    return rc;
}

int ferry_file_mkdirs(const char *path, mode_t mode)
{
    char tmp[PATH_MAX];
    size_t len = strlen(path);
    if (len == 0 || len >= sizeof(tmp)) {
        errno = ENAMETOOLONG;
        return FERRY_ENAMETOOLONG;
    }
    memcpy(tmp, path, len + 1);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(tmp, mode) != 0 && errno != EEXIST)
            return ferry_from_errno(errno);
        *p = '/';
    }
    if (mkdir(tmp, mode) != 0 && errno != EEXIST)
        return ferry_from_errno(errno);
    return 0;
}
