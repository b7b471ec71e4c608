/* ferry_strerror() and the error detail helper: the one list of codes. */
#include "ferry/error.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Each code is minus its place in the list: a code inserted, renumbered or
 * skipped, or a FERRY_ERRNO_LAST_ left behind, stops the build here. */
enum {
    FERRY__ERR_PLACE_0,
#define FERRY__ERR_PLACE(name, value, text) FERRY__ERR_PLACE_##name,
    FERRY_ERRNO_MAP(FERRY__ERR_PLACE)
#undef FERRY__ERR_PLACE
        FERRY__ERR_COUNT_PLUS_1
};
#define FERRY__ERR_CHECK(name, value, text)                                                        \
    _Static_assert(FERRY__ERR_PLACE_##name == -(value),                                            \
                   "FERRY_" #name " is not minus its place in FERRY_ERRNO_MAP (append only)");
FERRY_ERRNO_MAP(FERRY__ERR_CHECK)
#undef FERRY__ERR_CHECK
_Static_assert(FERRY__ERR_COUNT_PLUS_1 == -FERRY_ERRNO_LAST_,
               "FERRY_ERRNO_LAST_ must be one past the last code of FERRY_ERRNO_MAP");

/* Indexed by -code; the checks above make it dense. */
static const char *const ferry__err_text[] = {[0] = "success",
#define FERRY__ERR_TEXT(name, value, text) [-(value)] = text,
                                              FERRY_ERRNO_MAP(FERRY__ERR_TEXT)
#undef FERRY__ERR_TEXT
};
static const char *const ferry__err_names[] = {[0] = "FERRY_OK",
#define FERRY__ERR_NAME(name, value, text) [-(value)] = "FERRY_" #name,
                                               FERRY_ERRNO_MAP(FERRY__ERR_NAME)
#undef FERRY__ERR_NAME
};
_Static_assert(sizeof(ferry__err_text) / sizeof(ferry__err_text[0]) == -FERRY_ERRNO_LAST_,
               "one text for each code");
_Static_assert(sizeof(ferry__err_names) / sizeof(ferry__err_names[0]) == -FERRY_ERRNO_LAST_,
               "one name for each code");

static int ferry__err_known(int code)
{
    return code <= 0 && code > FERRY_ERRNO_LAST_;
}

const char *ferry_strerror(int code)
{
    return ferry__err_known(code) ? ferry__err_text[-code] : "unknown error";
}

const char *ferry_err_name(int code)
{
    return ferry__err_known(code) ? ferry__err_names[-code] : "FERRY_UNKNOWN";
}

int ferry_from_errno(int err)
{
    switch (err < 0 ? -err : err) {
    case EINVAL:
    case EBADF:
    case EFAULT:
    case ERANGE:
    case EDOM:
        return FERRY_EINVAL;
    case ENOMEM:
    case ENOBUFS:
        return FERRY_ENOMEM;
    case ENOENT:
    case ESRCH:
    case ENXIO:
    case ENODEV:
        return FERRY_ENOENT;
    case EEXIST:
        return FERRY_EEXIST;
    case ENOTSUP:
#if EOPNOTSUPP != ENOTSUP
    case EOPNOTSUPP:
#endif
    case ENOSYS:
    case EXDEV:
        return FERRY_ENOTSUP;
    case ETIMEDOUT:
        return FERRY_ETIMEDOUT;
    case ECANCELED:
        return FERRY_ECANCELED;
    case EAGAIN:
#if EWOULDBLOCK != EAGAIN
    case EWOULDBLOCK:
#endif
    case EINTR:
    case EBUSY:
    case EINPROGRESS:
    case EALREADY:
        return FERRY_EAGAIN;
    case EPERM:
    case EACCES:
    case EROFS:
        return FERRY_EPERM;
    case ECONNREFUSED:
    case ECONNRESET:
    case ECONNABORTED:
    case ENOTCONN:
    case EPIPE:
    case EHOSTUNREACH:
    case ENETUNREACH:
    case ENETDOWN:
    case EADDRINUSE:
    case EADDRNOTAVAIL:
        return FERRY_ECONN;
    case EPROTO:
    case EBADMSG:
    case EILSEQ:
        return FERRY_EPROTO;
    case EDQUOT:
        return FERRY_EQUOTA;
    case ENOEXEC:
        return FERRY_ESPAWN;
    case E2BIG:
    case EFBIG:
    case EOVERFLOW:
    case EMSGSIZE:
        return FERRY_ETOOBIG;
    case ELOOP:
        return FERRY_EUNSAFE;
    case ENOSPC:
        return FERRY_ENOSPC;
    case ENAMETOOLONG:
        return FERRY_ENAMETOOLONG;
    case ENOTDIR:
        return FERRY_ENOTDIR;
    case EISDIR:
        return FERRY_EISDIR;
    case EMFILE:
    case ENFILE:
        return FERRY_EMFILE;
    default:
        return FERRY_EIO;
    }
}

int ferry_error_set(ferry_error_detail *d, int code, int retryable, const char *provider_code,
                    const char *fmt, ...)
{
    if (d == NULL)
        return code;
    d->struct_size = sizeof(*d);
    d->code = code;
    d->retryable = retryable;
    snprintf(d->provider_code, sizeof(d->provider_code), "%s", provider_code ? provider_code : "");
    if (fmt != NULL) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(d->message, sizeof(d->message), fmt, ap);
        va_end(ap);
    } else {
        snprintf(d->message, sizeof(d->message), "%s", ferry_strerror(code));
    }
    return code;
}
