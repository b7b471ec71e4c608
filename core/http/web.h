/* The web UI that ferryd serves at / (web/static, embedded at build time by
 * core/http/web_embed.cmake). */
#ifndef FERRY_WEB_H
#define FERRY_WEB_H

#include <stddef.h>

#include "request.h"

typedef struct ferry_web_asset {
    const char *path; /* relative to web/static: "js/app.js" */
    const unsigned char *data;
    size_t len;
    const char *etag; /* quoted, from the file's SHA-256 */
} ferry_web_asset;

/* Generated (web_assets.c), sorted by path. */
extern const ferry_web_asset ferry_web_assets[];
extern const size_t ferry_web_n_assets;

/* Every path outside /v1 is a page or file of the web app: answers (0) or
 * declines (1). */
int ferry_web_route(ferry_http_req *r);

/* The embedded file at `path`, or NULL. */
const ferry_web_asset *ferry_web_find(const char *path);

#endif
