/* local-docker: reading the daemon's answers (answers.h). */
#include "answers.h"

#include <stdio.h>
#include <string.h>

#include <jansson.h>

int ld_created_id(const ferry_http_response *res, char *id, size_t cap)
{
    json_t *j = json_loadb(res->body, res->body_len, 0, NULL);
    const char *v = json_string_value(json_object_get(j, "Id"));
    /* It goes into URL paths: hex only. */
    size_t len = v ? strlen(v) : 0;
    int rc = len > 0 && len < cap && strspn(v, "0123456789abcdef") == len ? 0 : -1;
    if (rc == 0)
        snprintf(id, cap, "%s", v);
    json_decref(j);
    return rc;
}

int ld_wait_code(const ferry_http_response *res)
{
    json_t *j = json_loadb(res->body, res->body_len, 0, NULL);
    json_t *code = json_object_get(j, "StatusCode");
    int rc = json_is_integer(code) ? (int)json_integer_value(code) : -1;
    json_decref(j);
    return rc;
}

int ld_inspect_oom_killed(const ferry_http_response *res)
{
    json_t *j = json_loadb(res->body, res->body_len, 0, NULL);
    int oom = json_is_true(json_object_get(json_object_get(j, "State"), "OOMKilled"));
    json_decref(j);
    return oom;
}
