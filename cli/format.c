/* What the commands print: times, durations, sizes, tables, outcomes. */
#include "cli.h"

#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const char *ferry_cli_str(const json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));
    return s ? s : "";
}

double ferry_cli_parse_time(const char *s)
{
    if (s == NULL || s[0] == '\0')
        return FERRY_CLI_NO_TIME;
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    const char *rest = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (rest == NULL)
        return FERRY_CLI_NO_TIME;
    double frac = 0;
    if (*rest == '.')
        frac = strtod(rest, NULL); /* ".123Z" reads as 0.123 */
    return (double)timegm(&tm) + frac;
}

void ferry_cli_format_local_time(const char *rfc3339, char *buf, size_t cap)
{
    double t = ferry_cli_parse_time(rfc3339);
    if (t < 0) {
        snprintf(buf, cap, "-");
        return;
    }
    time_t secs = (time_t)t;
    struct tm tm;
    localtime_r(&secs, &tm);
    strftime(buf, cap, "%Y-%m-%d %H:%M:%S", &tm);
}

void ferry_cli_format_duration(const json_t *exec, char *buf, size_t cap)
{
    double start = ferry_cli_parse_time(ferry_cli_str(exec, "started_at"));
    double end = ferry_cli_parse_time(ferry_cli_str(exec, "ended_at"));
    if (start < 0) {
        snprintf(buf, cap, "-");
        return;
    }
    if (end < 0) /* still running */
        end = ferry_now();
    ferry_cli_format_seconds(end > start ? (long)(end - start + 0.5) : 0, buf, cap);
}

void ferry_cli_format_seconds(long s, char *buf, size_t cap)
{
    if (s >= 3600)
        snprintf(buf, cap, "%ldh%02ldm", s / 3600, (s % 3600) / 60);
    else if (s >= 60)
        snprintf(buf, cap, "%ldm%02lds", s / 60, s % 60);
    else
        snprintf(buf, cap, "%lds", s);
}

void ferry_cli_format_size(int64_t bytes, char *buf, size_t cap)
{
    static const char *units[] = {"KiB", "MiB", "GiB", "TiB"};
    if (bytes < 1024) {
        snprintf(buf, cap, "%lld B", (long long)bytes);
        return;
    }
    double v = (double)bytes / 1024.0;
    size_t u = 0;
    while (v >= 1024.0 && u + 1 < sizeof(units) / sizeof(units[0])) {
        v /= 1024.0;
        u++;
    }
    snprintf(buf, cap, "%.1f %s", v, units[u]);
}

char *ferry_cli_value_text(const json_t *v)
{
    if (v == NULL || json_is_null(v))
        return ferry_strdup("-");
    if (json_is_string(v))
        return ferry_strdup(json_string_value(v));
    char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(15));
    if (s == NULL)
        abort();
    char *out = ferry_strdup(s);
    free(s);
    return out;
}

int ferry_cli_is_terminal(const char *status)
{
    return strcmp(status, "complete") == 0 || strcmp(status, "error") == 0 ||
           strcmp(status, "stopped") == 0;
}

int ferry_cli_exit_for(const char *status)
{
    if (strcmp(status, "complete") == 0)
        return FERRY_EXIT_OK;
    if (strcmp(status, "stopped") == 0)
        return FERRY_EXIT_STOPPED;
    return FERRY_EXIT_FAILED;
}

void ferry_cli_print_outcome(FILE *out, const json_t *exec)
{
    const char *status = ferry_cli_str(exec, "status");
    fprintf(out, "Execution #%lld (%s): %s",
            (long long)json_integer_value(json_object_get(exec, "counter")),
            ferry_cli_str(exec, "id"), status);
    json_t *code = json_object_get(exec, "exit_code");
    if (json_is_integer(code) && json_integer_value(code) != 0)
        fprintf(out, ", exit code %lld", (long long)json_integer_value(code));
    const char *reason = ferry_cli_str(exec, "status_reason");
    if (reason[0] != '\0')
        fprintf(out, ": %s", reason);
    fputc('\n', out);
}

void ferry_cli_print_json(const json_t *v)
{
    json_dumpf(v, stdout, JSON_INDENT(2) | JSON_ENCODE_ANY);
    fputc('\n', stdout);
}

void ferry_cli_print_answer(int json, const json_t *answer, ferry_cli_print_fn print)
{
    if (json)
        ferry_cli_print_json(answer);
    else
        print(answer);
}

int ferry_cli_finish(int rc, int json, json_t *answer, ferry_cli_print_fn print)
{
    if (rc == FERRY_EXIT_OK)
        ferry_cli_print_answer(json, answer, print);
    json_decref(answer);
    return rc;
}

static void ferry__table_row(char *const *cells, const size_t *width, size_t cols)
{
    for (size_t c = 0; c < cols; c++) {
        if (c + 1 == cols)
            printf("%s\n", cells[c]);
        else
            printf("%-*s  ", (int)width[c], cells[c]);
    }
}

void ferry_cli_print_table(const char *const *headings, size_t cols, const json_t *list,
                           ferry_cli_row_fn row)
{
    size_t n = json_array_size(list);
    /* All rows first: a column is as wide as its widest cell. */
    char **cells = ferry_xcalloc((n ? n : 1) * cols, sizeof(*cells));
    size_t *width = ferry_xcalloc(cols, sizeof(*width));
    for (size_t c = 0; c < cols; c++)
        width[c] = strlen(headings[c]);
    for (size_t r = 0; r < n; r++) {
        row(json_array_get(list, r), cells + r * cols);
        for (size_t c = 0; c < cols; c++)
            if (strlen(cells[r * cols + c]) > width[c])
                width[c] = strlen(cells[r * cols + c]);
    }
    ferry__table_row((char *const *)headings, width, cols);
    for (size_t r = 0; r < n; r++)
        ferry__table_row(cells + r * cols, width, cols);
    for (size_t i = 0; i < n * cols; i++)
        free(cells[i]);
    free(cells);
    free(width);
}
