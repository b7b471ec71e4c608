/* What a new machine needs to become a worker: the agent bundle and the
 * bootstrap script that fetches, verifies and starts it (sched/bundle.c);
 * http/bootstrap.c serves both. */
#ifndef FERRY_BUNDLE_H
#define FERRY_BUNDLE_H

#include "daemon.h"

typedef struct ferry_bundle_info {
    const char *sha256;       /* of bundle.tar.gz; valid until the bundle changes */
    const char *agent_sha256; /* of bin/ferry-agent */
    const char *agent_path;   /* the ferry-agent next to ferryd (also when missing) */
    const char *bundle_path;
    const char *error; /* ferry_bundle_last: why the last build failed, or NULL */
} ferry_bundle_info;

/* Runs on the loop thread once a build ends: 0, or FERRY_EIO. */
typedef void (*ferry_bundle_built_fn)(ferryd *d, int status, void *arg);

/* The bundle as built from the files now next to ferryd: 0 and *info;
 * FERRY_EAGAIN while it is (re)built, after which `built` runs once for
 * each (built, arg) that asked; FERRY_ENOENT when there is no ferry-agent
 * next to ferryd (info->agent_path says where it was looked for). */
int ferry_bundle_get(ferryd *d, ferry_bundle_info *info, ferry_bundle_built_fn built, void *arg);

/* The bundle last built, without looking at the files again (what a
 * `built` callback answers with; after a failed rebuild, the one before):
 * 0, or FERRY_ENOENT when none was ever built (info->error says why). */
int ferry_bundle_last(ferry_bundle_info *info);

/* The bootstrap script for `env` (a configured environment), fetching from
 * `server_url` a bundle whose SHA-256 is `bundle_sha256`, verifying ferryd
 * with `ca_pem` (PEM text, or NULL: the system's CAs). Malloc'd. For a
 * compute plugin's user-data too: the machine brings the token in
 * FERRY_BOOTSTRAP_TOKEN (with FERRY_WORKER_ID) or as the first argument. */
char *ferry_bootstrap_script(const ferry_env_config *env, const char *server_url,
                             const char *bundle_sha256, const char *ca_pem);
/* A launched worker's user-data: the bootstrap script for `env` from
 * d->server_url (with tls.ca), preceded by FERRY_WORKER_ID and the one-time
 * FERRY_BOOTSTRAP_TOKEN. Malloc'd; it holds the token: never log it. */
char *ferry_bootstrap_user_data(ferryd *d, const ferry_env_config *env, const char *worker_id,
                                const char *token, const char *bundle_sha256);

#endif
