/* Growable strings: the step-file module's one buffer, behind a narrow API
 * (stepfile_int.h) so that the SDK's shared buffer can replace it. */
#include "stepfile_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

void ferry__buf_add(ferry__buf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->len + n + 1)
            cap *= 2;
        b->s = ferry_xrealloc(b->s, cap);
        b->cap = cap;
    }
    if (n)
        memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

void ferry__buf_puts(ferry__buf *b, const char *s)
{
    ferry__buf_add(b, s, strlen(s));
}

void ferry__buf_vprintf(ferry__buf *b, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n <= 0)
        return;
    char *tmp = ferry_xmalloc((size_t)n + 1);
    vsnprintf(tmp, (size_t)n + 1, fmt, ap);
    ferry__buf_add(b, tmp, (size_t)n);
    free(tmp);
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
    char *s = b->s ? b->s : ferry_strdup("");
    b->s = NULL;
    b->len = b->cap = 0;
    return s;
}
