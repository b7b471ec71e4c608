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

/* The agent bundle's sha256, for a launch's user-data: 0 and *sha (valid
 * until the bundle changes), FERRY_EAGAIN while it is (re)built, after which
 * `built` runs on the loop thread with 0 or FERRY_EIO, or FERRY_ENOENT when
 * there is no ferry-agent next to ferryd. */
int ferry_bootstrap_bundle(ferryd *d, const char **sha, void (*built)(ferryd *d, int status));
/* A launched worker's user-data: the bootstrap script for `env` from
 * d->server_url (with tls.ca), preceded by FERRY_WORKER_ID and the one-time
 * FERRY_BOOTSTRAP_TOKEN. Malloc'd; it holds the token: never log it. */
char *ferry_bootstrap_user_data(ferryd *d, const ferry_env_config *env, const char *worker_id,
                                const char *token, const char *bundle_sha256);

#endif
