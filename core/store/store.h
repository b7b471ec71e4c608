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
/* Whether workers talk to the store itself (the plugin presigns). */
int ferry_store_can_presign(ferryd *d);
/* The plugin's own presigned URL (the worker talks to the store, not to
 * ferryd), or NULL when it cannot presign (message in `err`). Caller frees. */
char *ferry_store_presign(ferryd *d, const char *method, const char *key, int expires_s,
                          ferry_error_detail *err);

/* Uploads a worker drives in parts (store ops upload_*). The part size for
 * an object of `size` bytes: 0 when one PUT suits it or the store takes no
 * parts, else > 0; FERRY_ETOOBIG when the store cannot take it at all. */
int ferry_store_part_size(ferryd *d, int64_t size, int64_t *part_size);
/* Completes with result->text = the upload id. */
int ferry_store_upload_begin(ferryd *d, const char *key, ferry_op_done_fn done, void *arg);
/* A URL for PUT of part `n` (1-based); caller frees; NULL with `err` filled. */
char *ferry_store_part_url(ferryd *d, const char *key, const char *upload_id, int n, int expires_s,
                           ferry_error_detail *err);
/* `parts`: JSON [{"part": n, "etag": "..."}]; completes with result->size. */
int ferry_store_upload_complete(ferryd *d, const char *key, const char *upload_id,
                                const char *parts, ferry_op_done_fn done, void *arg);
int ferry_store_upload_abort(ferryd *d, const char *key, const char *upload_id,
                             ferry_op_done_fn done, void *arg);

#endif
