/* The host's logger: timestamped lines on stderr. */
#ifndef FERRY_LOG_H
#define FERRY_LOG_H

#include "ferry/plugin.h"

void ferry_log_set_level(ferry_log_level level);
void ferry_log_set_name(const char *program);
void ferry_log(ferry_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void ferry_vlog(ferry_log_level level, const char *prefix, const char *fmt, va_list ap);

#define ferry_error(...) ferry_log(FERRY_LOG_ERROR, __VA_ARGS__)
#define ferry_warn(...) ferry_log(FERRY_LOG_WARN, __VA_ARGS__)
#define ferry_info(...) ferry_log(FERRY_LOG_INFO, __VA_ARGS__)
#define ferry_debug(...) ferry_log(FERRY_LOG_DEBUG, __VA_ARGS__)

#endif
