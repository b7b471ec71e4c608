/* ferryd's routes: one table, tried in order, first match wins.
 *
 * A path is segments; ":name" matches any one segment, a last "**" any
 * number of them, none included. A NULL method matches every method (the
 * handler answers what it does not take). The guard runs first and stops
 * the request when it has answered (401, 404, 410). The later entries of an
 * area answer what its endpoints did not match, once the caller is known,
 * so that a wrong path tells an unauthenticated caller nothing.
 *
 * The `large` column names the only routes that take a large body, with the
 * check of the credentials their headers carry: every other request's body
 * is refused past a small limit before it is read (server.c).
 *
 * docs/api.md lists the same endpoints: keep them in step. */
#include "routes.h"

#include <string.h>

#include "agentapi.h"
#include "api.h"
#include "projects.h"
#include "blobapi.h"
#include "bootstrap.h"
#include "datums.h"
#include "pipelines.h"
#include "exec.h"
#include "snapshots.h"
#include "web.h"

typedef struct routes__route {
    const char *method; /* "GET", or NULL: any */
    const char *path;
    int (*guard)(ferry_http_req *r); /* NULL: open */
    void (*handler)(ferry_http_req *r);
    /* NULL: a small body only; else the largest body the headers alone
     * (no body yet) earn on this route, 0 when their credentials do not
     * hold; it answers nothing. */
    size_t (*large)(ferry_http_req *r);
} routes__route;

/* How large a body the head of a request may announce, for routes that
 * take more than the server's small limit: 0 (the small limit) unless its
 * credentials hold. A snapshot is at most what it may expand to (a tar.gz
 * of incompressible files is barely larger: 1 MiB covers its headers). */
static size_t routes__snapshot_body(ferry_http_req *r)
{
    return ferry_api_token_ok(r) ? ((size_t)r->d->cfg.max_snapshot_mb << 20) + ((size_t)1 << 20)
                                 : 0;
}

/* Outputs can be as large as a worker writes them. */
static size_t routes__blob_body(ferry_http_req *r)
{
    return ferry_blobapi_put_ok(r) ? (size_t)1 << 40 : 0;
}

static const routes__route routes__table[] = {
    /* The user API (docs/api.md, "User API"). */
    {"POST", "/v1/snapshots", ferry_api_guard_user, ferry_snapshots_upload, routes__snapshot_body},
    {"HEAD", "/v1/snapshots/:sha256", ferry_api_guard_user, ferry_snapshots_head, NULL},
    {"GET", "/v1/snapshots/:sha256", ferry_api_guard_user, ferry_snapshots_head, NULL},
    {"POST", "/v1/executions", ferry_api_guard_user, ferry_api_create, NULL},
    {"GET", "/v1/executions", ferry_api_guard_user, ferry_api_list, NULL},
    {"GET", "/v1/executions/:id", ferry_api_guard_exec, ferry_api_show, NULL},
    {"POST", "/v1/executions/:id/stop", ferry_api_guard_exec, ferry_api_stop, NULL},
    {"POST", "/v1/executions/:id/rerun", ferry_api_guard_exec, ferry_api_rerun, NULL},
    {"GET", "/v1/executions/:id/wait", ferry_api_guard_exec, ferry_api_wait, NULL},
    {"GET", "/v1/executions/:id/logs", ferry_api_guard_exec, ferry_api_logs, NULL},
    {"GET", "/v1/executions/:id/outputs", ferry_api_guard_exec, ferry_api_outputs, NULL},
    {"GET", "/v1/executions/:id/outputs/:name/**", ferry_api_guard_exec, ferry_api_output_download,
     NULL},
    {"GET", "/v1/environments", ferry_api_guard_user, ferry_api_environments, NULL},
    {"POST", "/v1/environments/:name/drain", ferry_api_guard_user, ferry_api_env_drain, NULL},
    {"POST", "/v1/environments/:name/undrain", ferry_api_guard_user, ferry_api_env_undrain, NULL},
    {"GET", "/v1/projects", ferry_api_guard_user, ferry_projects_list, NULL},
    {"POST", "/v1/projects/:name/fetch", ferry_api_guard_user, ferry_projects_fetch, NULL},
    {"GET", "/v1/whoami", ferry_api_guard_user, ferry_api_whoami, NULL},
    {"GET", "/v1/aliases", ferry_api_guard_user, ferry_api_alias_list, NULL},
    {"PUT", "/v1/aliases/:name", ferry_api_guard_user, ferry_api_alias_set, NULL},
    {"GET", "/v1/aliases/:name/history", ferry_api_guard_user, ferry_api_alias_history, NULL},
    {"GET", "/v1/datums/:ref", ferry_api_guard_user, ferry_api_datum_show, NULL},
    {"POST", "/v1/pipelines", ferry_api_guard_user, ferry_pipelines_create, NULL},
    {"GET", "/v1/pipelines", ferry_api_guard_user, ferry_pipelines_list, NULL},
    {"GET", "/v1/pipelines/:id", ferry_api_guard_user, ferry_pipelines_show, NULL},
    {"POST", "/v1/pipelines/:id/stop", ferry_api_guard_user, ferry_pipelines_stop, NULL},
    {"POST", "/v1/pipelines/:id/nodes/:node/approve", ferry_api_guard_user, ferry_pipelines_approve,
     NULL},
    {"POST", "/v1/pipelines/:id/nodes/:node/reject", ferry_api_guard_user, ferry_pipelines_reject,
     NULL},
    {NULL, "/v1/snapshots/**", ferry_api_guard_user, ferry_api_no_endpoint, NULL},
    {NULL, "/v1/executions", ferry_api_guard_user, ferry_api_no_endpoint, NULL},
    {NULL, "/v1/executions/:id/**", ferry_api_guard_exec, ferry_api_no_endpoint, NULL},
    {NULL, "/v1/environments/**", ferry_api_guard_user, ferry_api_no_endpoint, NULL},
    {NULL, "/v1/whoami/**", ferry_api_guard_user, ferry_api_no_endpoint, NULL},
    {NULL, "/v1/aliases/**", ferry_api_guard_user, ferry_api_no_endpoint, NULL},
    {NULL, "/v1/datums/**", ferry_api_guard_user, ferry_api_no_endpoint, NULL},
    {NULL, "/v1/pipelines/**", ferry_api_guard_user, ferry_api_no_endpoint, NULL},

    /* The agent protocol (docs/api.md, "Agent protocol"); the bootstrap
     * files need no token (a new machine has none yet). */
    {"POST", "/v1/agent/register", NULL, ferry_agentapi_register, NULL},
    {"POST", "/v1/agent/poll", ferry_agentapi_guard_worker, ferry_agentapi_poll, NULL},
    {"POST", "/v1/agent/executions/:uuid/events", ferry_agentapi_guard_exec, ferry_agentapi_events,
     NULL},
    {"POST", "/v1/agent/executions/:uuid/status", ferry_agentapi_guard_exec, ferry_agentapi_status,
     NULL},
    {"POST", "/v1/agent/executions/:uuid/outputs", ferry_agentapi_guard_exec,
     ferry_agentapi_outputs, NULL},
    {"POST", "/v1/agent/executions/:uuid/uploaded", ferry_agentapi_guard_exec,
     ferry_agentapi_uploaded, NULL},
    {NULL, "/v1/agent/binary", NULL, ferry_bootstrap_serve, NULL},
    {NULL, "/v1/agent/bundle.tar.gz", NULL, ferry_bootstrap_serve, NULL},
    {NULL, "/v1/agent/bundle.sha256", NULL, ferry_bootstrap_serve, NULL},
    {NULL, "/v1/agent/bootstrap.sh", NULL, ferry_bootstrap_serve, NULL},
    {"POST", "/v1/agent/executions/:uuid/:what", ferry_agentapi_guard_exec,
     ferry_agentapi_no_endpoint, NULL},
    {"POST", "/v1/agent/:what/**", ferry_agentapi_guard_worker, ferry_agentapi_no_endpoint, NULL},
    {NULL, "/v1/agent/:what/**", NULL, ferry_agentapi_not_post, NULL},

    /* Signed blob URLs (docs/api.md, "Signed blob URLs"); the signature is
     * the credential. */
    {NULL, "/v1/blobs/:key/**", NULL, ferry_blobapi_serve, routes__blob_body},
};

/* The next segment of `*pattern` (without its '/'), advancing it. */
static size_t routes__next(const char **pattern, const char **seg)
{
    const char *p = *pattern;
    while (*p == '/')
        p++;
    const char *end = strchr(p, '/');
    size_t n = end ? (size_t)(end - p) : strlen(p);
    *seg = p;
    *pattern = p + n;
    return n;
}

static int routes__path_matches(const char *pattern, const ferry_http_req *r)
{
    size_t i = 0;
    for (;;) {
        const char *seg;
        size_t n = routes__next(&pattern, &seg);
        if (n == 0)
            return i == r->nsegs;
        if (n == 2 && memcmp(seg, "**", 2) == 0)
            return 1;
        if (i == r->nsegs)
            return 0;
        if (seg[0] != ':' && (strlen(r->segs[i]) != n || memcmp(seg, r->segs[i], n) != 0))
            return 0;
        i++;
    }
}

static void routes__run(const routes__route *route, ferry_http_req *r)
{
    if (route->guard == NULL || route->guard(r) == 0)
        route->handler(r);
    if (r->exec) /* the handler took what it keeps */
        ferry_exec_release(r->exec, r->exec_owned);
    r->exec = NULL;
}

static const routes__route *routes__find(const ferry_http_req *r)
{
    for (size_t i = 0; i < sizeof(routes__table) / sizeof(routes__table[0]); i++) {
        const routes__route *route = &routes__table[i];
        if ((route->method == NULL || ferry_http_method_is(r, route->method)) &&
            routes__path_matches(route->path, r))
            return route;
    }
    return NULL;
}

size_t ferry_routes_large_body(ferry_http_req *r)
{
    const routes__route *route = routes__find(r);
    return route != NULL && route->large != NULL ? route->large(r) : 0;
}

int ferry_routes_dispatch(ferry_http_req *r)
{
    const routes__route *route = routes__find(r);
    if (route != NULL) {
        routes__run(route, r);
        return 0;
    }
    /* Every path outside /v1 is a page or file of the web app. */
    return ferry_web_route(r);
}
