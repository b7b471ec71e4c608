/* Growable strings for the step-file module: the SDK's ferry_buf with the
 * host's policy that running out of memory aborts (ferry_xcheck). */
#include "stepfile_int.h"

#include <stdarg.h>
#include <string.h>

#include "ferry/error.h"
#include "util.h"

void ferry__buf_add(ferry__buf *b, const char *s, size_t n)
{
    ferry_xcheck(ferry_buf_append(b, s, n));
}

void ferry__buf_puts(ferry__buf *b, const char *s)
{
    ferry_xcheck(ferry_buf_append_str(b, s));
}

void ferry__buf_vprintf(ferry__buf *b, const char *fmt, va_list ap)
{
    ferry_xcheck(ferry_buf_vappendf(b, fmt, ap));
}

void ferry__buf_printf(ferry__buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ferry__buf_vprintf(b, fmt, ap);
    va_end(ap);
}

char *ferry__buf_take(ferry__buf *b)
{
    char *s = ferry_buf_take(b, NULL);
    if (s == NULL)
        ferry_xcheck(FERRY_ENOMEM);
    return s;
}
