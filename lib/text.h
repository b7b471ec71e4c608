/* Text as ferry ships and stores it: valid UTF-8, and JSON string content.
 * Shared by the agent (names, error bodies) and ferryd (the log store). */
#ifndef FERRY_TEXT_H
#define FERRY_TEXT_H

#include <stddef.h>

/* Valid UTF-8 copy of `len` bytes (invalid sequences become U+FFFD); malloc'd. */
char *ferry_utf8_clean(const char *data, size_t len, size_t *out_len);
/* Longest prefix of data[0..max) that does not split a UTF-8 sequence. */
size_t ferry_utf8_cut(const char *data, size_t len, size_t max);
/* `len` bytes as the content of a JSON string (valid UTF-8, escaped) into
 * `out`, which has room for len * 6; returns the length written. Invalid
 * UTF-8 and NUL (which jansson refuses) become U+FFFD. */
size_t ferry_json_escape(const char *data, size_t len, char *out);
/* How many bytes of data[0..len) are `c` (lines of a log: its newlines),
 * 16 bytes at a time where the CPU has SSE2. */
size_t ferry_count_byte(const char *data, size_t len, char c);

#endif
