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
    /* Optional. Completes with result->size, or FERRY_ENOENT. A store that
     * tags versions also sets result->text to the object's tag (S3: the
     * ETag as sent, quotes included), so that a copy can be cached by it. */
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
    /* Optional, appended in ABI 1.1 (all four or none): a multipart upload
     * that a worker without credentials drives through presigned part URLs,
     * so that a large output goes up in parts, several at once (S3 takes at
     * most 5 GiB in one PUT). The host begins it, hands the worker one URL
     * per part, and completes it with the ETags the worker reports, or
     * aborts it on any failure so that no part lingers.
     *
     * upload_begin: start an upload for `key`; completes with result->text
     * = the upload id. */
    int (*upload_begin)(void *state, const char *key, ferry_op *op);
    /* Synchronous, like presign: a URL for PUT of part `part_number`
     * (1..10000) of the upload, valid `expires_s` seconds. Every part but
     * the last must be at least 5 MiB; the worker keeps each answer's ETag
     * header. */
    int (*presign_part)(void *state, const char *key, const char *upload_id, int part_number,
                        int expires_s, char *url, size_t url_cap, ferry_error_detail *err);
    /* Assemble the object from every part: `parts` is a JSON array of
     * {"part": n, "etag": "<ETag header as received>"}, in any order.
     * Atomic like put_file; completes with result->size. */
    int (*upload_complete)(void *state, const char *key, const char *upload_id, const char *parts,
                           ferry_op *op);
    /* Drop the upload and every part sent so far. */
    int (*upload_abort)(void *state, const char *key, const char *upload_id, ferry_op *op);
    /* Optional, appended in ABI 1.1 with the four above, synchronous: how a
     * worker should send an object of `size` bytes. Sets *part_size to 0
     * when one PUT suits it (at or below the store's multipart threshold),
     * else to the size of every part but the last (within the store's
     * limits on part size and count). FERRY_ETOOBIG when the store cannot
     * take that much. Without it the host has workers send one PUT. */
    int (*upload_part_size)(void *state, int64_t size, int64_t *part_size);
} ferry_store_ops;

#ifdef __cplusplus
}
#endif
#endif
