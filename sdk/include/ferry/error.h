/* ferry plugin SDK: error codes.
 *
 * Every ferry function returns 0 or a negative code from this one list.
 * Codes are never renumbered and never reused; new ones are appended, and
 * FERRY_ERRNO_LAST_ moves with them (error.c refuses to compile otherwise).
 */
#ifndef FERRY_ERROR_H
#define FERRY_ERROR_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define FERRY_ERRNO_MAP(XX)                                                                        \
    XX(EINVAL, -1, "invalid argument")                                                             \
    XX(ENOMEM, -2, "out of memory")                                                                \
    XX(ENOENT, -3, "not found")                                                                    \
    XX(EEXIST, -4, "already exists")                                                               \
    XX(EIO, -5, "input/output error")                                                              \
    XX(ENOTSUP, -6, "operation not supported")                                                     \
    XX(ETIMEDOUT, -7, "timed out")                                                                 \
    XX(ECANCELED, -8, "operation canceled")                                                        \
    XX(EAGAIN, -9, "resource temporarily unavailable")                                             \
    XX(EPERM, -10, "permission denied")                                                            \
    XX(EAUTH, -11, "authentication failed")                                                        \
    XX(ECONN, -12, "connection failed")                                                            \
    XX(EPROTO, -13, "protocol error")                                                              \
    XX(ETHROTTLED, -14, "request throttled by provider")                                           \
    XX(ECAPACITY, -15, "insufficient capacity")                                                    \
    XX(EQUOTA, -16, "quota exceeded")                                                              \
    XX(EABI, -17, "plugin ABI mismatch")                                                           \
    XX(ECONFIG, -18, "configuration error")                                                        \
    XX(ESTATE, -19, "invalid state for this operation")                                            \
    XX(EPROVIDER, -20, "provider error")                                                           \
    XX(ESPAWN, -21, "process could not be started")                                                \
    XX(ETOOBIG, -22, "too large")                                                                  \
    XX(EUNSAFE, -23, "unsafe path or archive member")                                              \
    XX(ENOSPC, -24, "no space left on device")                                                     \
    XX(ENAMETOOLONG, -25, "name too long")                                                         \
    XX(ENOTDIR, -26, "not a directory")                                                            \
    XX(EISDIR, -27, "is a directory")                                                              \
    XX(EMFILE, -28, "too many open files")

typedef enum {
#define FERRY__ERR_ENUM(name, value, text) FERRY_##name = value,
    FERRY_ERRNO_MAP(FERRY__ERR_ENUM)
#undef FERRY__ERR_ENUM
        FERRY_ERRNO_LAST_ = -29
} ferry_errno_t;

/* Text for a code; never NULL ("unknown error" for codes not in the list). */
const char *ferry_strerror(int code);
/* The code's symbolic name ("FERRY_ENOENT"). */
const char *ferry_err_name(int code);
/* The ferry code for an errno value from a failed call: ENOENT gives
 * FERRY_ENOENT, EACCES FERRY_EPERM, and so on; what has no closer code
 * gives FERRY_EIO, and so does 0 (a failure that set no errno), so the
 * result is always < 0. A negative `err` is read as -errno (libuv's codes
 * on Unix). Use it where errno is the source: `return ferry_from_errno(errno);` */
int ferry_from_errno(int err);

/* Detail that travels with a negative code: what the provider said.
 * The scheduler decides on `code` and `retryable`, never on `message`. */
typedef struct ferry_error_detail {
    size_t struct_size;
    int code;               /* one of ferry_errno_t */
    int retryable;          /* non-zero: the same call may succeed later */
    char provider_code[64]; /* e.g. "InsufficientInstanceCapacity", "NoSuchKey" */
    char message[512];      /* human text; never contains secrets */
} ferry_error_detail;

/* Fill `d` (may be NULL) and return `code`, so callers can `return ferry_error_set(...)`. */
int ferry_error_set(ferry_error_detail *d, int code, int retryable, const char *provider_code,
                    const char *fmt, ...) __attribute__((format(printf, 5, 6)));

#ifdef __cplusplus
}
#endif
#endif
