/* The host's logger: timestamped lines on stderr, one write per line so
 * lines from several threads never interleave. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

static ferry_log_level log_level = FERRY_LOG_INFO;
static const char *log_name = "ferry";

void ferry_log_set_level(ferry_log_level level)
{
    log_level = level;
}

void ferry_log_set_name(const char *program)
{
    log_name = program;
}

void ferry_vlog(ferry_log_level level, const char *prefix, const char *fmt, va_list ap)
{
    static const char *names[] = {"error", "warn", "info", "debug"};
    if (level > log_level)
        return;
    char line[4096], when[40];
    ferry_time_format(ferry_now(), when, sizeof(when));
    int n = snprintf(line, sizeof(line), "%s %s[%d] %s: %s%s", when, log_name, (int)getpid(),
                     names[level], prefix ? prefix : "", prefix ? ": " : "");
    if (n < 0 || (size_t)n >= sizeof(line))
        n = 0;
    int m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    if (len > sizeof(line) - 2)
        len = sizeof(line) - 2;
    line[len++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w;
}

void ferry_log(ferry_log_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ferry_vlog(level, NULL, fmt, ap);
    va_end(ap);
}
