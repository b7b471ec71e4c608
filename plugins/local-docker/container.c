/* local-docker: container calls (container.h). */
#include "container.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "body.h"

/* Requests that answer at once; a daemon this slow is stuck. */
#define LD_QUICK_MS 60000
/* Creating or starting may wait on the disk, a slow runtime, a hook. */
#define LD_SLOW_MS (5 * 60000)

static int ld_post(ld_state *st, const char *path, long timeout_ms, ld_done_fn done, void *arg,
                   ferry_http_request **out)
{
    ld_call c = {.method = "POST", .path = path, .timeout_ms = timeout_ms};
    return ld_api_start(st, &c, done, arg, out);
}

int ld_container_create(ld_state *st, json_t *body, const char *name, ld_done_fn done, void *arg,
                        ferry_http_request **out)
{
    char *text = json_dumps(body, JSON_COMPACT);
    char *path = NULL;
    int rc = FERRY_ENOMEM;
    if (text != NULL &&
        asprintf(&path, "/containers/create%s%s", name ? "?name=" : "", name ? name : "") >= 0) {
        ld_call c = {.method = "POST", .path = path, .body = text, .timeout_ms = LD_SLOW_MS};
        rc = ld_api_start(st, &c, done, arg, out);
    }
    free(text);
    free(path);
    return rc;
}

int ld_container_stat(ld_state *st, const char *id, const char *path, ld_done_fn done, void *arg,
                      ferry_http_request **out)
{
    char *escaped = ld_api_escape(path), *url = NULL;
    int rc = FERRY_ENOMEM;
    if (escaped != NULL && asprintf(&url, "/containers/%s/archive?path=%s", id, escaped) >= 0) {
        ld_call c = {.method = "HEAD", .path = url, .timeout_ms = LD_QUICK_MS};
        rc = ld_api_start(st, &c, done, arg, out);
    }
    free(escaped);
    free(url);
    return rc;
}

int ld_container_attach(ld_state *st, const char *id, ferry_http_headers_fn on_headers,
                        ferry_http_data_fn on_data, ld_done_fn done, void *arg,
                        ferry_http_request **out)
{
    char path[160];
    snprintf(path, sizeof(path), "/containers/%s/attach?stream=1&stdout=1&stderr=1", id);
    ld_call c = {.method = "POST", .path = path, .on_headers = on_headers, .on_data = on_data};
    return ld_api_start(st, &c, done, arg, out);
}

int ld_container_start(ld_state *st, const char *id, ld_done_fn done, void *arg,
                       ferry_http_request **out)
{
    char path[160];
    snprintf(path, sizeof(path), "/containers/%s/start", id);
    return ld_post(st, path, LD_SLOW_MS, done, arg, out);
}

int ld_container_wait(ld_state *st, const char *id, ld_done_fn done, void *arg,
                      ferry_http_request **out)
{
    char path[160];
    snprintf(path, sizeof(path), "/containers/%s/wait?condition=not-running", id);
    return ld_post(st, path, 0, done, arg, out);
}

int ld_container_inspect(ld_state *st, const char *id, ld_done_fn done, void *arg,
                         ferry_http_request **out)
{
    char path[160];
    snprintf(path, sizeof(path), "/containers/%s/json", id);
    ld_call c = {.path = path, .timeout_ms = LD_QUICK_MS};
    return ld_api_start(st, &c, done, arg, out);
}

int ld_container_stop(ld_state *st, const char *id, int seconds, ld_done_fn done, void *arg,
                      ferry_http_request **out)
{
    char path[160];
    snprintf(path, sizeof(path), "/containers/%s/stop?t=%d", id, seconds);
    return ld_post(st, path, (long)seconds * 1000 + LD_QUICK_MS, done, arg, out);
}

int ld_container_kill(ld_state *st, const char *id, const char *signal, ld_done_fn done, void *arg,
                      ferry_http_request **out)
{
    char path[160];
    snprintf(path, sizeof(path), "/containers/%s/kill?signal=%s", id, signal);
    return ld_post(st, path, LD_QUICK_MS, done, arg, out);
}

int ld_container_remove(ld_state *st, const char *id, ld_done_fn done, void *arg,
                        ferry_http_request **out)
{
    char path[160];
    snprintf(path, sizeof(path), "/containers/%s?force=1&v=1", id);
    ld_call c = {.method = "DELETE", .path = path, .timeout_ms = LD_SLOW_MS};
    return ld_api_start(st, &c, done, arg, out);
}

int ld_container_list_ours(ld_state *st, ld_done_fn done, void *arg, ferry_http_request **out)
{
    char *filter = ld_api_escape("{\"label\":[\"" LD_LABEL_EXECUTION "\"]}");
    char *path = NULL;
    int rc = FERRY_ENOMEM;
    if (filter != NULL && asprintf(&path, "/containers/json?all=1&filters=%s", filter) >= 0) {
        ld_call c = {.path = path, .timeout_ms = LD_QUICK_MS};
        rc = ld_api_start(st, &c, done, arg, out);
    }
    free(filter);
    free(path);
    return rc;
}
