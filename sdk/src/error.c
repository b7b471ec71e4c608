/* ferry_strerror() and the error detail helper: the one list of codes. */
#include "ferry/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *ferry_strerror(int code)
{
    switch (code) {
    case 0:
        return "success";
#define FERRY__ERR_TEXT(name, value, text)                                                         \
    case value:                                                                                    \
        return text;
        FERRY_ERRNO_MAP(FERRY__ERR_TEXT)
#undef FERRY__ERR_TEXT
    default:
        return "unknown error";
    }
}

const char *ferry_err_name(int code)
{
    switch (code) {
    case 0:
        return "FERRY_OK";
#define FERRY__ERR_NAME(name, value, text)                                                         \
    case value:                                                                                    \
        return "FERRY_" #name;
        FERRY_ERRNO_MAP(FERRY__ERR_NAME)
#undef FERRY__ERR_NAME
    default:
        return "FERRY_UNKNOWN";
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
