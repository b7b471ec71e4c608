/* The growable byte buffer and array growth of ferry/buf.h. */
#include "ferry/buf.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ferry/error.h"

/* The first allocation of an array holds this many elements (or `need`). */
#define FERRY__GROW_MIN 16

int ferry_grow(void *ptr, size_t *cap, size_t need, size_t elem_size)
{
    if (need <= *cap)
        return 0;
    size_t n = *cap ? *cap : FERRY__GROW_MIN;
    while (n < need)
        n = n > SIZE_MAX / 2 ? need : n * 2;
    if (elem_size > 0 && n > SIZE_MAX / elem_size)
        return FERRY_ENOMEM;
    /* `ptr` is a T ** passed as void *: read and write the T * through
     * memcpy, which holds for any object pointer type. */
    void *old;
    memcpy(&old, ptr, sizeof(old));
    void *p = realloc(old, n * elem_size);
    if (p == NULL)
        return FERRY_ENOMEM;
    memcpy(ptr, &p, sizeof(p));
    *cap = n;
    return 0;
}

void ferry_buf_init(ferry_buf *b)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

int ferry_buf_reserve(ferry_buf *b, size_t more)
{
    if (more > SIZE_MAX - 1 - b->len)
        return FERRY_ENOMEM;
    return ferry_grow(&b->data, &b->cap, b->len + more + 1, 1);
}

int ferry_buf_append(ferry_buf *b, const void *data, size_t len)
{
    int rc = ferry_buf_reserve(b, len);
    if (rc != 0)
        return rc;
    if (len > 0)
        memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
    return 0;
}

int ferry_buf_append_str(ferry_buf *b, const char *s)
{
    return ferry_buf_append(b, s, strlen(s));
}

int ferry_buf_append_char(ferry_buf *b, char c)
{
    return ferry_buf_append(b, &c, 1);
}

int ferry_buf_vappendf(ferry_buf *b, const char *fmt, va_list ap)
{
    va_list again;
    va_copy(again, ap);
    /* Most appends fit what is already there: one vsnprintf then. */
    size_t room = b->cap > b->len ? b->cap - b->len : 0;
    int n = vsnprintf(room ? b->data + b->len : NULL, room, fmt, ap);
    int rc = n < 0 ? FERRY_EINVAL : 0;
    if (rc == 0 && (size_t)n >= room) {
        rc = ferry_buf_reserve(b, (size_t)n);
        if (rc == 0)
            vsnprintf(b->data + b->len, (size_t)n + 1, fmt, again);
    }
    va_end(again);
    if (rc != 0) {
        if (b->data)
            b->data[b->len] = '\0'; /* undo a partial write into the room */
        return rc;
    }
    b->len += (size_t)n;
    return 0;
}

int ferry_buf_appendf(ferry_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = ferry_buf_vappendf(b, fmt, ap);
    va_end(ap);
    return rc;
}

void ferry_buf_reset(ferry_buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

char *ferry_buf_take(ferry_buf *b, size_t *len)
{
    if (ferry_buf_reserve(b, 0) != 0)
        return NULL;
    b->data[b->len] = '\0'; /* the caller may have written past len itself */
    char *data = b->data;
    if (len)
        *len = b->len;
    ferry_buf_init(b);
    return data;
}

void ferry_buf_free(ferry_buf *b)
{
    free(b->data);
    ferry_buf_init(b);
}
