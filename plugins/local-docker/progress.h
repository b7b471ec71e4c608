/* local-docker: one line of POST /images/create's answer, for people.
 *
 * The daemon streams newline-delimited JSON: {"status", "id", "progress",
 * "progressDetail"} objects, and, even inside a 200 answer, failures as
 * {"error", "errorDetail": {"message"}}. Pure: unit-tested on its own.
 */
#ifndef LD_PROGRESS_H
#define LD_PROGRESS_H

#include <stdarg.h>
#include <stddef.h>

typedef enum ld_progress_kind {
    LD_PROGRESS_NONE = 0, /* nothing to show (blank line, not an object) */
    LD_PROGRESS_STATUS,   /* a step: "abc123: Pull complete" */
    LD_PROGRESS_TICK,     /* a progress update ("Downloading 1MB/2MB"): may be thinned */
    LD_PROGRESS_ERROR,    /* the pull failed: `text` is the registry's message */
} ld_progress_kind;

/* A status line for people: `fmt` formatted into `text` (cap >= 2), cut to
 * fit, ending in a newline and NUL-terminated. Its length with the newline,
 * or 0 when nothing could be formatted. */
size_t ld_status_line(char *text, size_t cap, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

/* Reads one line (without its newline) into `text`, NUL-terminated. */
ld_progress_kind ld_progress_line(const char *line, size_t len, char *text, size_t cap);

#endif
