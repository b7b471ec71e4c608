/* The blob URLs ferryd serves itself (store/blobs.h), over HTTP. */
#ifndef FERRY_BLOBAPI_H
#define FERRY_BLOBAPI_H

#include "request.h"

/* GET|PUT /v1/blobs/<key> (routes.c). */
void ferry_blobapi_serve(ferry_http_req *r);
/* Whether the request is a PUT whose URL's signature holds, from its head
 * alone (sending nothing): for a body not read yet. */
int ferry_blobapi_put_ok(ferry_http_req *r);

#endif
