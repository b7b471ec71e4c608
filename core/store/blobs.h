/* Signed URLs that ferryd serves itself, for stores that cannot presign:
 *   GET|PUT /v1/blobs/<key>?expires=<unix>[&sha256=<hex>]&sig=<hex>
 * sig = HMAC-SHA256(daemon secret, "METHOD\nkey\nexpires\nsha256"). A PUT
 * must carry a body with that sha256; a PUT to an output key records the
 * output once the store holds it. The HTTP side is http/blobapi.c. */
#ifndef FERRY_BLOBS_H
#define FERRY_BLOBS_H

#include <stddef.h>

#include "daemon.h"
#include "reply.h"

char *ferry_blobs_url(ferryd *d, const char *method, const char *key, int expires_s,
                      const char *sha256);
/* A URL a worker can use without credentials: the store's presigned URL
 * when it can presign (*presigned = 1; may be NULL), else one signed by
 * ferryd. `sha256` binds a PUT to its content (may be NULL). Caller frees. */
char *ferry_blobs_worker_url(ferryd *d, const char *method, const char *key, int expires_s,
                             const char *sha256, int *presigned);
/* Whether a URL's `sig` signs METHOD, key, expires (unix seconds, as text,
 * not yet past) and sha256 (NULL or "" when the URL has none). */
int ferry_blobs_signature_ok(ferryd *d, const char *method, const char *key, const char *expires,
                             const char *sha256, const char *sig);

/* Store `len` bytes under `key` (the bytes were already checked). `done`
 * runs once the store answered, to answer on `reply`, which is released
 * after it. 0, or a negative code (then `reply` is still the caller's). */
typedef void (*ferry_blobs_done_fn)(ferryd *d, ferry_reply *reply, int status, void *arg);
int ferry_blobs_store_bytes(ferryd *d, const void *data, size_t len, const char *key,
                            ferry_reply *reply, ferry_blobs_done_fn done, void *arg);
/* A signed PUT of an output of a running execution (key
 * executions/<uuid>/outputs/<name>): checked against `sha256`, stored and
 * recorded, answered on `reply` (taken). */
void ferry_blobs_put_output(ferryd *d, const char *key, const void *data, size_t len,
                            const char *sha256, ferry_reply *reply);
#endif
