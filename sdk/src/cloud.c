/* ferry plugin SDK: what compute plugins for clouds share (ferry/cloud.h). */
#include "ferry/cloud.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void ferry_cloud_note(char *note, size_t cap, const char *place, const char *fmt, ...)
{
    size_t n = strlen(note);
    if (n + 4 >= cap)
        return;
    n += (size_t)snprintf(note + n, cap - n, "%s%s: ", n ? "; " : "", place);
    if (n >= cap)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(note + n, cap - n, fmt, ap);
    va_end(ap);
}

void ferry_cloud_note_error(char *note, size_t cap, const char *place,
                            const ferry_error_detail *err)
{
    const char *code = err->provider_code[0] ? err->provider_code : ferry_strerror(err->code);
    /* The message names the code first ("Code: text"): the text alone,
     * shortened, so that the note fits every zone. */
    const char *msg = strstr(err->message, code);
    if (msg && strncmp(msg + strlen(code), ": ", 2) == 0)
        msg += strlen(code) + 2;
    else
        msg = "";
    ferry_cloud_note(note, cap, place, "%s%s%.120s%s", code, msg[0] ? " (" : "", msg,
                     msg[0] ? ")" : "");
}

void ferry_cloud_launch_error(ferry_error_detail *out, const ferry_error_detail *last,
                              const char *what, const char *note)
{
    *out = *last;
    if (last->code == FERRY_ECAPACITY)
        /* Capacity comes back: ferryd's backoff tries again later. */
        ferry_error_set(out, FERRY_ECAPACITY, 1, last->provider_code,
                        "no zone could launch a %s: %s", what, note);
    else
        snprintf(out->message, sizeof(out->message), "%s", note);
    if (last->code == FERRY_ETHROTTLED || last->code == FERRY_EQUOTA ||
        last->code == FERRY_EPROVIDER || last->code == FERRY_ECONN ||
        last->code == FERRY_ETIMEDOUT || last->code == FERRY_EPROTO)
        out->retryable = 1;
}

ferry_cloud_task *ferry_cloud_task_new(void *state, ferry_op *op, const char *instance_id,
                                       const char *daemon_id)
{
    ferry_cloud_task *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return NULL;
    t->state = state;
    t->op = op;
    t->instance_id = instance_id ? strdup(instance_id) : NULL;
    t->daemon_id = daemon_id ? strdup(daemon_id) : NULL;
    if ((instance_id && !t->instance_id) || (daemon_id && !t->daemon_id)) {
        ferry_cloud_task_free(t);
        return NULL;
    }
    return t;
}

void ferry_cloud_task_free(ferry_cloud_task *t)
{
    if (t == NULL)
        return;
    free(t->instance_id);
    free(t->daemon_id);
    json_decref(t->list);
    free(t);
}
