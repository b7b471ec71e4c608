/* Projects linked to git repositories (docs/api.md, "User API"): their
 * list and fetches, answered from core/git/. */
#ifndef FERRY_PROJECTS_H
#define FERRY_PROJECTS_H

#include "request.h"

/* GET /v1/projects and POST /v1/projects/<name>/fetch (routes.c). */
void ferry_projects_list(ferry_http_req *r);
void ferry_projects_fetch(ferry_http_req *r);

#endif
