/* GET /v1/agent/...: the agent bundle and bootstrap script (sched/bundle.h)
 * over HTTP (core/http/bootstrap.c, docs/api.md). */
#ifndef FERRY_BOOTSTRAP_H
#define FERRY_BOOTSTRAP_H

#include "request.h"

/* GET /v1/agent/{binary,bundle.tar.gz,bundle.sha256,bootstrap.sh}
 * (routes.c); 405 for another method. Needs no token. */
void ferry_bootstrap_serve(ferry_http_req *r);

#endif
