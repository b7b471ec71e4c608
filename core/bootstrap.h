/* Bootstrap of remote workers: the agent bundle and the script a new machine
 * runs to fetch, verify and start it (core/bootstrap.c, docs/api.md). */
#ifndef FERRY_BOOTSTRAP_H
#define FERRY_BOOTSTRAP_H

#include "server.h"

/* GET /v1/agent/{binary,bundle.tar.gz,bundle.sha256,bootstrap.sh}: answers
 * (0) or declines (1). Needs no token. */
int ferry_bootstrap_route(ferry_http_req *r);

/* The bootstrap script for `env` (a configured environment), fetching from
 * `server_url` a bundle whose SHA-256 is `bundle_sha256`, verifying ferryd
 * with `ca_pem` (PEM text, or NULL: the system's CAs). Malloc'd. For a
 * compute plugin's user-data too: the machine brings the token in
 * FERRY_BOOTSTRAP_TOKEN (with FERRY_WORKER_ID) or as the first argument. */
char *ferry_bootstrap_script(const ferry_env_config *env, const char *server_url,
                             const char *bundle_sha256, const char *ca_pem);

#endif
