/* local-docker: image pull progress lines (progress.h). */
#include "progress.h"

#include <stdio.h>
#include <string.h>

#include <jansson.h>

/* "[=====>     ]  11.5MB/28.57MB" -> "11.5MB/28.57MB": the bar is for
 * terminals, the numbers are for logs. */
static const char *ld_progress_numbers(const char *progress)
{
    const char *end = progress ? strrchr(progress, ']') : NULL;
    const char *p = end ? end + 1 : progress;
    while (p && *p == ' ')
        p++;
    return p;
}

ld_progress_kind ld_progress_line(const char *line, size_t len, char *text, size_t cap)
{
    text[0] = '\0';
    json_t *j = json_loadb(line, len, 0, NULL);
    if (!json_is_object(j)) {
        json_decref(j);
        return LD_PROGRESS_NONE;
    }
    ld_progress_kind kind = LD_PROGRESS_NONE;
    const char *error = json_string_value(json_object_get(j, "error"));
    const char *detail =
        json_string_value(json_object_get(json_object_get(j, "errorDetail"), "message"));
    const char *status = json_string_value(json_object_get(j, "status"));
    if (error != NULL || detail != NULL) {
        snprintf(text, cap, "%s", detail ? detail : error);
        kind = LD_PROGRESS_ERROR;
    } else if (status != NULL) {
        const char *id = json_string_value(json_object_get(j, "id"));
        const char *numbers =
            ld_progress_numbers(json_string_value(json_object_get(j, "progress")));
        json_t *current = json_object_get(json_object_get(j, "progressDetail"), "current");
        snprintf(text, cap, "%s%s%s%s%s", id ? id : "", id ? ": " : "", status,
                 numbers && numbers[0] ? " " : "", numbers ? numbers : "");
        kind = current != NULL ? LD_PROGRESS_TICK : LD_PROGRESS_STATUS;
    }
    json_decref(j);
    return kind;
}

size_t ld_status_line(char *text, size_t cap, const char *fmt, va_list ap)
{
    int n = vsnprintf(text, cap - 1, fmt, ap);
    if (n < 0)
        return 0;
    if ((size_t)n > cap - 2)
        n = (int)cap - 2;
    text[n++] = '\n';
    text[n] = '\0';
    return (size_t)n;
}
