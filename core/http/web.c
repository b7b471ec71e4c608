/* The web UI: every GET outside /v1 belongs to the app. /assets/<path> is a
 * file of web/static; any other path is index.html, so that the app's own
 * URLs (/executions/7) survive a reload or a bookmark. The files need no
 * token (they hold no data); the app asks the API for everything. */
#include "web.h"

#include <stdlib.h>
#include <string.h>

#include "request.h"

/* Every answer revalidates (cheap with the ETag): file names carry no
 * version, so a long max-age would keep an old app after an upgrade. */
#define WEB__CACHE "no-cache"
/* The app loads only its own files and talks only to this server; uPlot
 * sets styles from script, hence 'unsafe-inline' for styles alone. */
#define WEB__CSP                                                                                   \
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "                    \
    "img-src 'self' data: blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; "         \
    "frame-ancestors 'none'"

static int web__cmp(const void *key, const void *elem)
{
    return strcmp(key, ((const ferry_web_asset *)elem)->path);
}

const ferry_web_asset *ferry_web_find(const char *path)
{
    return bsearch(path, ferry_web_assets, ferry_web_n_assets, sizeof(ferry_web_assets[0]),
                   web__cmp);
}

static const char *web__content_type(const char *path)
{
    static const char *const types[][2] = {
        {".html", "text/html; charset=utf-8"},
        {".js", "text/javascript; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},
        {".svg", "image/svg+xml"},
        {".png", "image/png"},
        {".json", "application/json"},
        {".txt", "text/plain; charset=utf-8"},
        {".ico", "image/x-icon"},
    };
    const char *dot = strrchr(path, '.');
    for (size_t i = 0; dot && i < sizeof(types) / sizeof(types[0]); i++)
        if (strcmp(dot, types[i][0]) == 0)
            return types[i][1];
    return "application/octet-stream";
}

/* If-None-Match names this version (a list, or "*"). */
static int web__not_modified(h2o_req_t *req, const char *etag)
{
    ssize_t i = h2o_find_header(&req->headers, H2O_TOKEN_IF_NONE_MATCH, -1);
    if (i < 0)
        return 0;
    h2o_iovec_t v = req->headers.entries[i].value;
    return (v.len == 1 && v.base[0] == '*') || memmem(v.base, v.len, etag, strlen(etag)) != NULL;
}

static void web__header(h2o_req_t *req, const char *name, const char *value)
{
    h2o_add_header_by_str(&req->pool, &req->res.headers, name, strlen(name), 1, NULL, value,
                          strlen(value));
}

static void web__send(h2o_req_t *req, const ferry_web_asset *a, int page)
{
    /* The data is static: no copy into the pool, no generator to resume. */
    static h2o_generator_t generator = {NULL, NULL};
    int fresh = !web__not_modified(req, a->etag);
    req->res.status = fresh ? 200 : 304;
    req->res.reason = fresh ? "OK" : "Not Modified";
    web__header(req, "content-type", web__content_type(a->path));
    web__header(req, "etag", a->etag);
    web__header(req, "cache-control", WEB__CACHE);
    web__header(req, "x-content-type-options", "nosniff");
    if (page) {
        web__header(req, "content-security-policy", WEB__CSP);
        web__header(req, "referrer-policy", "no-referrer");
    }
    h2o_iovec_t body = h2o_iovec_init(a->data, fresh ? a->len : 0);
    req->res.content_length = body.len;
    h2o_start_response(req, &generator);
    int head = h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD"));
    h2o_send(req, &body, head || body.len == 0 ? 0 : 1, H2O_SEND_STATE_FINAL);
}

int ferry_web_route(ferry_http_req *r)
{
    if (r->nsegs > 0 && strcmp(r->segs[0], "v1") == 0)
        return 1;
    if (!ferry_http_method_is(r, "GET") && !ferry_http_method_is(r, "HEAD"))
        return 1;
    if (r->nsegs > 0 && strcmp(r->segs[0], "assets") == 0) {
        const char *path = ferry_http_join_segs(r, 1);
        const ferry_web_asset *a = path ? ferry_web_find(path) : NULL;
        if (a == NULL)
            return 1; /* a missing script should fail loudly, not get a page */
        web__send(r->req, a, 0);
        return 0;
    }
    /* A file name the app does not have (/favicon.ico, /robots.txt): its
     * own URLs never hold a dot. */
    if (r->nsegs > 0 && strchr(r->segs[r->nsegs - 1], '.') != NULL)
        return 1;
    const ferry_web_asset *index = ferry_web_find("index.html");
    if (index == NULL)
        return 1;
    web__send(r->req, index, 1);
    return 0;
}
