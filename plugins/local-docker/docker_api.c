/* local-docker: Docker Engine API calls (docker_api.h). */
#include "docker_api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <jansson.h>

#include "image_ref.h"
#include "settings.h"

/* The host part of the URL is not used on a unix socket, but it is what
 * the daemon sees in Host:. */
#define LD_URL_BASE "http://docker"

int ld_api_start(ld_state *st, const ld_call *c, ld_done_fn done, void *arg,
                 ferry_http_request **out)
{
    char *url = NULL;
    if (asprintf(&url, "%s%s%s%s", LD_URL_BASE, c->unversioned ? "" : "/v",
                 c->unversioned ? "" : st->api, c->path) < 0)
        return FERRY_ENOMEM;
    char *auth = NULL;
    if (c->auth != NULL && asprintf(&auth, "X-Registry-Auth: %s", c->auth) < 0) {
        free(url);
        return FERRY_ENOMEM;
    }
    const char *headers[3] = {NULL, NULL, NULL};
    int n = 0;
    if (c->body != NULL)
        headers[n++] = "Content-Type: application/json";
    if (auth != NULL)
        headers[n++] = auth;
    ferry_http_options o = {
        .struct_size = sizeof(o),
        .method = c->method,
        .url = url,
        .headers = headers,
        .body = c->body,
        .body_len = c->body ? strlen(c->body) : 0,
        .on_data = c->on_data,
        .on_headers = c->on_headers,
        .timeout_ms = c->timeout_ms,
        .stall_timeout_ms = c->stall_ms,
        .connect_timeout_ms = 10000,
        .protocols = "http",
        .unix_socket = st->socket,
        .done = done,
        .arg = arg,
    };
    int rc = ferry_http_request_start(st->http, &o, out);
    free(url);
    if (auth != NULL) /* curl holds its own copy in the request's header list */
        ld_secret_free(auth);
    return rc;
}

int ld_api_ok(const ferry_http_response *res)
{
    return res->code == 0 && res->status >= 200 && res->status < 300;
}

const char *ld_api_why(ld_state *st, const ferry_http_response *res, char *buf, size_t cap)
{
    if (res->code != 0) {
        if (res->code == FERRY_ECONN)
            snprintf(buf, cap, "no Docker daemon answers at %s: %s", st->socket, res->error);
        else
            snprintf(buf, cap, "talking to the Docker daemon at %s: %s", st->socket,
                     res->error && res->error[0] ? res->error : ferry_strerror(res->code));
        return buf;
    }
    json_t *j = json_loadb(res->body, res->body_len, 0, NULL);
    const char *msg = json_string_value(json_object_get(j, "message"));
    if (msg != NULL) {
        snprintf(buf, cap, "%s", msg);
    } else {
        /* Not JSON: a proxy or another server on the socket. */
        size_t n = res->body_len < 200 ? res->body_len : 200;
        while (n > 0 && (res->body[n - 1] == '\n' || res->body[n - 1] == '\r'))
            n--;
        snprintf(buf, cap, "HTTP %ld%s%.*s", res->status, n ? ": " : "", (int)n, res->body);
    }
    json_decref(j);
    /* The daemon's messages sometimes end in a newline: reasons are one line. */
    size_t len = strlen(buf);
    while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == ' '))
        buf[--len] = '\0';
    return buf;
}

typedef struct ld_negotiation {
    ld_state *st;
    ld_ready_fn ready;
    void *arg;
} ld_negotiation;

static void ld_on_version(void *arg, const ferry_http_response *res)
{
    ld_negotiation *n = arg;
    ld_state *st = n->st;
    char why[600];
    int rc = 0;
    if (!ld_api_ok(res)) {
        rc = res->code != 0 ? res->code : FERRY_EPROVIDER;
        ld_api_why(st, res, why, sizeof(why));
    } else {
        char version[16];
        if (ld_api_version_pick(res->body, st->socket, version, sizeof(version), why, sizeof(why)) <
            0) {
            rc = FERRY_ENOTSUP;
        } else {
            if (strcmp(st->api, version) != 0 && !st->finishing)
                ld_log(st, FERRY_LOG_DEBUG, "Docker Engine API %s at %s", version, st->socket);
            snprintf(st->api, sizeof(st->api), "%s", version);
        }
    }
    n->ready(n->arg, rc, rc == 0 ? NULL : why);
    free(n);
}

int ld_api_negotiate(ld_state *st, ld_ready_fn ready, void *arg, ferry_http_request **out)
{
    ld_negotiation *n = calloc(1, sizeof(*n));
    if (n == NULL)
        return FERRY_ENOMEM;
    n->st = st;
    n->ready = ready;
    n->arg = arg;
    ld_call c = {.path = "/version", .unversioned = 1, .timeout_ms = 30000};
    int rc = ld_api_start(st, &c, ld_on_version, n, out);
    if (rc < 0)
        free(n);
    return rc;
}

char *ld_api_escape(const char *value)
{
    char *e = curl_easy_escape(NULL, value, 0);
    char *copy = e ? strdup(e) : NULL;
    curl_free(e);
    return copy;
}
