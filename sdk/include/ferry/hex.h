/* ferry plugin SDK: hexadecimal digits, as hashes and URL escapes use them. */
#ifndef FERRY_HEX_H
#define FERRY_HEX_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* `n` bytes of `in` as 2n lower-case hex digits and a NUL at `out`. */
void ferry_hex_encode(const void *in, size_t n, char *out);
/* The value of one hex digit of either case, or -1 for another character. */
int ferry_hex_digit(int c);

#ifdef __cplusplus
}
#endif
#endif
