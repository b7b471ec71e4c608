/* Signed URLs that ferryd serves itself, for stores that cannot presign:
 *   GET|PUT /v1/blobs/<key>?expires=<unix>[&sha256=<hex>]&sig=<hex>
 * sig = HMAC-SHA256(daemon secret, "METHOD\nkey\nexpires\nsha256"). A PUT
 * must carry a body with that sha256; a PUT to an output key records the
 * output once the store holds it. */
#ifndef FERRY_BLOBS_H
#define FERRY_BLOBS_H

#include "daemon.h"

char *ferry_blobs_url(ferryd *d, const char *method, const char *key, int expires_s,
                      const char *sha256);

#include <h2o.h>

/* Store a request body under `key` (the body was already checked). `done`
 * runs once the store answered, with the request (NULL if the client went
 * away) so it can reply. */
typedef void (*ferry_blobs_done_fn)(ferryd *d, h2o_req_t *req, int status, void *arg);
int ferry_blobs_store_body(ferryd *d, h2o_req_t *req, const char *key, ferry_blobs_done_fn done,
                           void *arg);
#endif
