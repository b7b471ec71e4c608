/* GET|PUT /v1/blobs/<key>: the signed blob URLs of store/blobs.c, served. */
#include "blobapi.h"

#include <limits.h>
#include <stdlib.h>

#include "blobs.h"
#include "store.h"
#include "util.h"

static int blobapi__signed(ferry_http_req *r, const char *method, const char *key, char *sha256,
                           size_t sha_cap)
{
    char expires[32], sig[80];
    if (ferry_http_query(r, "expires", expires, sizeof(expires)) != 1 ||
        ferry_http_query(r, "sig", sig, sizeof(sig)) != 1)
        return 0;
    int has_sha = ferry_http_query(r, "sha256", sha256, sha_cap);
    if (has_sha < 0)
        return 0; /* unreadable: it signs nothing */
    if (has_sha == 0)
        sha256[0] = '\0';
    return ferry_blobs_signature_ok(r->d, method, key, expires, sha256, sig);
}

static void blobapi__get(ferry_http_req *r, const char *key)
{
    char path[PATH_MAX];
    int rc = ferry_store_local_path(r->d, key, path, sizeof(path));
    if (rc == FERRY_ENOENT) {
        ferry_http_error(r->req, 404, NULL, "no such object");
        return;
    }
    if (rc < 0) {
        ferry_http_error(r->req, 501, NULL, "this store cannot serve objects through ferryd");
        return;
    }
    if (h2o_file_send(r->req, 200, "OK", path,
                      h2o_iovec_init(H2O_STRLIT("application/octet-stream")), 0) != 0)
        ferry_http_error(r->req, 404, NULL, "no such object");
}

int ferry_blobapi_put_ok(ferry_http_req *r)
{
    char *key = ferry_http_join_segs(r, 2);
    char sha256[80];
    return ferry_http_method_is(r, "PUT") && key && ferry_safe_relpath(key) &&
           blobapi__signed(r, "PUT", key, sha256, sizeof(sha256));
}

void ferry_blobapi_serve(ferry_http_req *r)
{
    char *key = ferry_http_join_segs(r, 2);
    char sha256[80];
    int is_get = ferry_http_method_is(r, "GET") || ferry_http_method_is(r, "HEAD");
    int is_put = ferry_http_method_is(r, "PUT");
    if (!is_get && !is_put) {
        ferry_http_error(r->req, 405, NULL, "blobs take GET or PUT");
        return;
    }
    if (!ferry_safe_relpath(key) ||
        !blobapi__signed(r, is_put ? "PUT" : "GET", key, sha256, sizeof(sha256))) {
        ferry_http_error(r->req, 403, NULL, "the URL's signature is invalid or has expired");
        return;
    }
    if (is_put)
        ferry_blobs_put_output(r->d, key, r->req->entity.base, r->req->entity.len, sha256,
                               ferry_http_reply(r->d, r->req));
    else
        blobapi__get(r, key);
}
