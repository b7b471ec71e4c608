/* Fuzz: the bodies an agent POSTs to /v1/agent/executions/<uuid>/events
 * and /status (core/http/agentapi.c).
 *
 * The framed body (application/x-ferry-events) is walked as
 * agentapi__events_framed walks it, with the same head parser
 * (ferry_agentapi_event_head); the JSON bodies are read field by field as
 * agentapi__events_json and ferry_agentapi_status read them. What the
 * handlers then do (the log store, the lifecycle) is not parsing. */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "agentapi.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz__framed(const char *p, const char *end)
{
    while (p != NULL && p < end) {
        int64_t seq;
        char stream[16];
        double time;
        size_t len;
        const char *text;
        if (!ferry_agentapi_event_head(p, end, &seq, stream, &time, &len, &text))
            return;
        /* The text and its "\n" lie within the body; the stream fits. */
        if (text <= p || text > end || len >= (size_t)(end - text) || text[len] != '\n' ||
            memchr(stream, '\0', sizeof(stream)) == NULL)
            abort();
        double t = ferry_agentapi_event_time(time);
        if (!isfinite(t) || t <= 0)
            abort();
        p = text + len + 1;
    }
}

static void fuzz__json(const char *body, size_t size)
{
    json_t *j = json_loadb(body, size, 0, NULL);
    if (!json_is_object(j)) {
        json_decref(j);
        return;
    }
    size_t i;
    json_t *ev;
    json_array_foreach(json_object_get(j, "events"), i, ev)
    {
        json_t *text = json_object_get(ev, "text");
        if (!json_is_string(text))
            break;
        (void)json_integer_value(json_object_get(ev, "seq"));
        (void)json_string_value(json_object_get(ev, "stream"));
        (void)ferry_agentapi_event_time(json_number_value(json_object_get(ev, "time")));
        if (strlen(json_string_value(text)) > json_string_length(text))
            abort();
    }
    (void)json_string_value(json_object_get(j, "status"));
    (void)json_integer_value(json_object_get(j, "exit_code"));
    (void)json_string_value(json_object_get(j, "reason"));
    json_decref(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* The body exactly as h2o holds it: not NUL-terminated. */
    char *body = malloc(size ? size : 1);
    memcpy(body, data, size);
    fuzz__framed(body, body + size);
    fuzz__json(body, size);
    free(body);
    return 0;
}
