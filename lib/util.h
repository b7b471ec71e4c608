/* Small helpers shared by ferryd, ferry-agent and the CLI. */
#ifndef FERRY_UTIL_H
#define FERRY_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "ferry/buf.h"
#include "ferry/file.h" /* ferry_file_mkdirs, ferry_file_read */

/* Wall-clock time in seconds since the epoch, with microseconds. */
double ferry_now(void);
/* Monotonic milliseconds. */
uint64_t ferry_mono_ms(void);
/* RFC 3339 UTC with milliseconds: "2026-11-26T06:01:58.123Z"; buf >= 32.
 * A time before 1970 (or NaN) is written as 1970-01-01T00:00:00.000Z, one
 * from the year 10000 on (or inf) as 9999-12-31T23:59:59.999Z. */
char *ferry_time_format(double t, char *buf, size_t cap);
/* A random version-4 UUID, lower case; buf >= 37. */
void ferry_uuid(char *buf);
/* `n` random bytes as 2n hex characters; buf >= 2n+1. 0 or a FERRY_E* code. */
int ferry_random_hex(char *buf, size_t n);
/* SHA-256 of a buffer / a file, as 64 hex characters; hex >= 65. The file's: 0 or a FERRY_E* code.
 */
void ferry_sha256_hex(const void *data, size_t len, char *hex);
/* Whether `s` is a SHA-256 as ferry writes it: 64 lower-case hex digits. */
int ferry_is_sha256_hex(const char *s);
/* Whether `s` is exactly `n` hex digits of either case (a digest as a
 * client may write it). */
int ferry_is_hex(const char *s, size_t n);
/* Whether `s` is one or more decimal digits (a counter, as a user gives one). */
int ferry_is_digits(const char *s);
int ferry_sha256_file(const char *path, char *hex, int64_t *size);
/* The md5 (33 bytes), sha1 (41) and sha256 (65) of a file in hex, in one
 * read of it; each may be NULL (not computed). 0 or a negative code. */
int ferry_file_digests(const char *path, char *md5, char *sha1, char *sha256, int64_t *size);
/* HMAC-SHA256 as hex; hex >= 65. */
void ferry_hmac_sha256_hex(const void *key, size_t key_len, const void *msg, size_t msg_len,
                           char *hex);
/* Constant-time comparison of two NUL-terminated strings. */
int ferry_secure_streq(const char *a, const char *b);

/* rm -rf; 0 or a FERRY_E* code. */
int ferry_rmtree(const char *path);
/* Read a whole file into a NUL-terminated malloc'd buffer; NULL and errno on failure. */
char *ferry_read_file(const char *path, size_t *len);
/* write(2) all of `len` bytes, through EINTR and short writes; 0 or a FERRY_E* code. */
int ferry_write_all(int fd, const void *data, size_t len);
/* Write a whole file atomically (temporary + rename); 0 or a FERRY_E* code. */
int ferry_write_file(const char *path, const void *data, size_t len);
/* Write `data` into a new file named from the mkstemp template `tmpl`
 * ("...XXXXXX", rewritten to the name): 0, or a code with nothing left. */
int ferry_write_temp(char *tmpl, const void *data, size_t len);
/* The directory that holds the running executable; buf >= PATH_MAX. 0 or a FERRY_E* code. */
int ferry_exe_dir(char *buf, size_t cap);
/* strdup that aborts on out-of-memory (all of ferry treats OOM as fatal). */
/* Log batches of a few MB pass through ferryd and the agent: keep such
 * blocks in the heap once freed, rather than mapping and faulting in fresh
 * pages for each one (call once, at start). */
void ferry_keep_large_blocks(void);

char *ferry_strdup(const char *s);
void *ferry_xmalloc(size_t n);
void *ferry_xcalloc(size_t n, size_t size);
void *ferry_xrealloc(void *p, size_t n);
/* ferry_buf and FERRY_GROW (ferry/buf.h) return FERRY_ENOMEM, as the SDK
 * must; ferry's own programs abort on it, as ferry_xmalloc does. */
void ferry_xcheck(int rc);
#define FERRY_XGROW(ptr, cap, need) ferry_xcheck(FERRY_GROW(ptr, cap, need))
/* asprintf that aborts on out-of-memory. */
char *ferry_asprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
char *ferry_vasprintf(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));

/* A relative name that stays inside its folder: no leading '/', no '..'
 * component, no empty component, no NUL, no backslash. */
int ferry_safe_relpath(const char *name);

#endif
