/* Every endpoint ferryd serves, in one table (routes.c) in the order of
 * docs/api.md. */
#ifndef FERRY_ROUTES_H
#define FERRY_ROUTES_H

#include "request.h"

/* Answer `r` by the first route that matches its method and path: 0, or 1
 * when none does (the server answers 404). */
int ferry_routes_dispatch(ferry_http_req *r);
/* The largest body `r`, of which only the head is in (method, path, query
 * and headers; no body), may send when its route takes a large one and the
 * credentials in its headers are good; else 0. Sends nothing. */
size_t ferry_routes_large_body(ferry_http_req *r);

#endif
