/* ferry plugin SDK: a growable byte buffer, and growing arrays.
 *
 * One mechanism for the whole tree: plugins, the SDK's own helpers and the
 * host (lib/, core/, the agent, the CLI) grow their buffers and arrays with
 * these. The functions never abort: they return 0 or FERRY_ENOMEM and leave
 * the buffer as it was, because a library must not decide for the process
 * it runs in. The host, where out-of-memory is fatal, wraps them in
 * ferry_xcheck() and FERRY_XGROW (lib/util.h), as ferry_xmalloc() aborts.
 */
#ifndef FERRY_BUF_H
#define FERRY_BUF_H

#include <stdarg.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* `data` holds `len` bytes in `cap`; after any ferry_buf_* call that adds
 * bytes, data[len] is '\0' (the NUL is not counted in len), so a text buffer
 * is always a C string. A zeroed ferry_buf is empty and valid. */
typedef struct ferry_buf {
    char *data;
    size_t len;
    size_t cap;
} ferry_buf;

#define FERRY_BUF_INIT                                                                             \
    {                                                                                              \
        NULL, 0, 0                                                                                 \
    }

void ferry_buf_init(ferry_buf *b);
/* Room for `more` bytes past len, and the NUL after them: a caller may then
 * write into data + len itself and add what it wrote to len. */
int ferry_buf_reserve(ferry_buf *b, size_t more);
int ferry_buf_append(ferry_buf *b, const void *data, size_t len);
int ferry_buf_append_str(ferry_buf *b, const char *s);
int ferry_buf_append_char(ferry_buf *b, char c);
int ferry_buf_appendf(ferry_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int ferry_buf_vappendf(ferry_buf *b, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));
/* Empties the buffer and keeps its memory for what comes next. */
void ferry_buf_reset(ferry_buf *b);
/* Hands the bytes (NUL-terminated, never NULL: "" when empty) to the
 * caller, who frees them; *len (may be NULL) gets their length and the
 * buffer is empty again. NULL only when an empty buffer could not get its
 * one byte (FERRY_ENOMEM). */
char *ferry_buf_take(ferry_buf *b, size_t *len);
void ferry_buf_free(ferry_buf *b);

/* Grows the array `*ptr` (a pointer to any object pointer: `T **`) to hold
 * at least `need` elements of `elem_size` bytes, doubling `*cap` (counted
 * in elements) so that appending one by one costs amortised O(1). 0, or
 * FERRY_ENOMEM with the array and *cap unchanged. Use FERRY_GROW. */
int ferry_grow(void *ptr, size_t *cap, size_t need, size_t elem_size);
/* FERRY_GROW(v, cap, n + 1) before v[n++] = x; `v` is a T *, `cap` a size_t. */
#define FERRY_GROW(ptr, cap, need) ferry_grow(&(ptr), &(cap), (need), sizeof(*(ptr)))

#ifdef __cplusplus
}
#endif
#endif
