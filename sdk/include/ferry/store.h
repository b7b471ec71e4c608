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

/* How to read one input URL of a scheme the store claims, as its url_input
 * op says (ABI 1.3). The host fills struct_size, settings, get and set;
 * url_input fills location and key. Fields only ever grow at the end: a
 * plugin reads or writes a later one only when struct_size covers it. */
typedef struct ferry_store_url {
    size_t struct_size;
    /* Which instance reads the object: the host makes one instance per
     * location, the first time, and keeps it for every URL of that
     * location (S3: the bucket). Printable text, for labels and logs. */
    char location[256];
    /* The object's key within that instance: a pointer into the URL. The
     * host checks it like every key it hands a store (no "..", no leading
     * "/"), but the plugin owns which keys its URLs may name. */
    const char *key;
    /* The settings of the instance that will read `location`: at first a
     * copy of the configured store's own (inputs are read with the store's
     * endpoint and credentials), which url_input changes for the location
     * with set (a NULL value removes the setting) and reads with get (NULL:
     * not set). */
    void *settings;
    const char *(*get)(void *settings, const char *name);
    void (*set)(void *settings, const char *name, const char *value);
} ferry_store_url;

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
    /* Optional, appended in ABI 1.3 (both or neither): inputs given as URLs
     * of the store's own scheme ("s3://BUCKET/KEY").
     *
     * url_schemes: the schemes the store reads, lower case, without "://",
     * NULL-terminated: {"s3", NULL}. ferryd hands every input URL
     * "<scheme>://..." to the loaded store that claims its scheme (matched
     * without regard to case); http, https and file URLs are fetched by the
     * worker itself and never handed over. The loader refuses a store that
     * declares schemes without url_input, or a scheme that is not
     * [a-z][a-z0-9+.-]*. An input of a scheme no store claims is refused. */
    const char *const *url_schemes;
    /* Synchronous and state-free (the host calls it before any instance of
     * this plugin reads that URL, and when the configured store is another
     * plugin): check `url`, of one of url_schemes, and fill `in` (see
     * ferry_store_url): which location's instance reads it, its key there,
     * and that instance's settings. 0, or FERRY_EINVAL with err->message
     * naming the form such a URL must have, "s3://BUCKET/KEY (a key of
     * safe path segments)": ferryd answers "input 'data': <url> is not
     * <message>". The host then reads the object through that instance:
     * head at submission, presign "GET" for the worker. */
    int (*url_input)(const char *url, ferry_store_url *in, ferry_error_detail *err);
} ferry_store_ops;

#ifdef __cplusplus
}
#endif
#endif
