/* The artifact store, through the configured store plugin. Keys:
 *   snapshots/<sha256>.tar.gz
 *   executions/<uuid>/outputs/<name> */
#ifndef FERRY_STORE_H_CORE
#define FERRY_STORE_H_CORE

#include "daemon.h"

int ferry_store_init(ferryd *d, char *err, size_t err_cap);
void ferry_store_close(ferryd *d);
int ferry_store_put(ferryd *d, const char *key, const char *path, ferry_op_done_fn done, void *arg);
int ferry_store_get(ferryd *d, const char *key, const char *path, ferry_op_done_fn done, void *arg);
/* A local path for the object when the store is a local directory and the
 * object exists: 0, else FERRY_ENOTSUP / FERRY_ENOENT. */
int ferry_store_local_path(ferryd *d, const char *key, char *path, size_t cap);
/* A URL a worker can use without credentials, from the plugin when it can
 * presign, else a URL signed by ferryd (blobs.c). `sha256` binds a PUT to
 * its content (may be NULL). Caller frees. */
char *ferry_store_worker_url(ferryd *d, const char *method, const char *key, int expires_s,
                             const char *sha256);

#endif
