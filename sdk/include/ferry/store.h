/* ferry plugin SDK: store plugins keep snapshots, inputs and outputs.
 *
 * Keys are relative paths ("executions/<uuid>/outputs/model.bin"); the host
 * has already checked that they hold no "..", no leading "/" and no NUL.
 */
#ifndef FERRY_STORE_H
#define FERRY_STORE_H

#include "ferry/plugin.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ferry_store_ops {
    size_t struct_size;
    /* Required. Store the local file at `path` under `key`, atomically: a
     * reader never sees a partial object. Completes with result->size. */
    int (*put_file)(void *state, const char *key, const char *path, ferry_op *op);
    /* Required. Copy the object to the local file `path` (created/truncated). */
    int (*get_file)(void *state, const char *key, const char *path, ferry_op *op);
    /* Optional. Completes with result->size, or FERRY_ENOENT. */
    int (*head)(void *state, const char *key, ferry_op *op);
    /* Optional. Completes with result->text = JSON array of {"key","size"}. */
    int (*list)(void *state, const char *prefix, ferry_op *op);
    /* Optional. */
    int (*remove)(void *state, const char *key, ferry_op *op);
    /* Optional, synchronous: a URL a worker can use without credentials for
     * `method` ("GET"/"PUT") on `key` until `expires_s` seconds from now.
     * NULL: the host serves the object itself through signed URLs. */
    int (*presign)(void *state, const char *method, const char *key, int expires_s, char *url,
                   size_t url_cap, ferry_error_detail *err);
    /* Optional, synchronous: the local filesystem path of the object, when the
     * store is a local directory (lets ferryd stream it without a copy). */
    int (*local_path)(void *state, const char *key, char *path, size_t path_cap);
} ferry_store_ops;

#ifdef __cplusplus
}
#endif
#endif
