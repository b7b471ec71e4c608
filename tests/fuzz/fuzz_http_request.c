/* Fuzz: what ferryd reads from a request's line before any handler runs
 * (core/http): the path split into percent-decoded segments and the query
 * parameters (request.c: ferry_http_req_parse, ferry_http_query,
 * ferry_http_join_segs), and the route table's matcher (routes.c, compiled
 * into this harness for its static routes__find).
 *
 * The input is "METHOD TARGET" ("GET /v1/executions?status=queued"); a
 * request is built as h2o hands one over (path with its query, query_at).
 * ferry_http_query_arg is ferry_http_query plus a 400 reply, which needs a
 * live connection: its parsing is what is fuzzed here. The handlers are not
 * run (they need a daemon). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../core/http/routes.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz__query(const ferry_http_req *r)
{
    static const char *const names[] = {"status", "project", "step", "limit", "follow",
                                        "since",  "token",   "",     "a b",   "x%41"};
    static const size_t caps[] = {1, 8, 32, 128, 256};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        for (size_t c = 0; c < sizeof(caps) / sizeof(caps[0]); c++) {
            char out[256];
            memset(out, 'x', sizeof(out));
            int rc = ferry_http_query(r, names[i], out, caps[c]);
            if (rc != 0 && rc != 1 && rc != FERRY_EINVAL && rc != FERRY_ETOOBIG)
                abort();
            /* "" unless found; found: a C string within the buffer. */
            if (rc != 1 ? out[0] != '\0' : strnlen(out, caps[c]) >= caps[c])
                abort();
        }
}

static void fuzz__request(const char *method, size_t mlen, char *target, size_t tlen)
{
    h2o_req_t req;
    memset(&req, 0, sizeof(req));
    h2o_mem_init_pool(&req.pool);
    req.method = h2o_iovec_init(method, mlen);
    req.path = h2o_iovec_init(target, tlen);
    const char *q = memchr(target, '?', tlen);
    req.query_at = q ? (size_t)(q - target) : SIZE_MAX;
    ferry_http_req r = {.req = &req};
    int rc = ferry_http_req_parse(&r);
    if (rc != 0 && rc != FERRY_ETOOBIG && rc != FERRY_EINVAL)
        abort();
    if (r.nsegs > FERRY_HTTP_MAX_SEGS)
        abort();
    if (rc == 0) {
        for (size_t i = 0; i < r.nsegs; i++)
            if (r.segs[i][0] == '\0')
                abort(); /* empty segments are skipped */
        (void)ferry_http_join_segs(&r, 0);
        (void)ferry_http_join_segs(&r, 2);
        const routes__route *route = routes__find(&r);
        /* Every /v1 path the table has no entry for goes to the web app. */
        if (route != NULL && (r.nsegs == 0 || strcmp(r.segs[0], "v1") != 0))
            abort();
        (void)ferry_http_method_is(&r, "POST");
    }
    fuzz__query(&r);
    h2o_mem_clear_pool(&req.pool);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* Copies the exact size, so ASan sees any read past the line. */
    const char *sp = memchr(data, ' ', size);
    size_t mlen = sp ? (size_t)(sp - (const char *)data) : 0;
    size_t tlen = sp ? size - mlen - 1 : size;
    /* h2o's parser (picohttpparser) refuses control characters in the
     * request target: such a path never reaches ferryd. */
    const uint8_t *t = sp ? (const uint8_t *)sp + 1 : data;
    for (size_t i = 0; i < tlen; i++)
        if (t[i] < 0x20 || t[i] == 0x7f)
            return 0;
    char *method = malloc(mlen ? mlen : 1);
    char *target = malloc(tlen ? tlen : 1);
    memcpy(method, data, mlen);
    memcpy(target, sp ? sp + 1 : (const char *)data, tlen);
    fuzz__request(sp ? method : "GET", sp ? mlen : 3, target, tlen);
    free(method);
    free(target);
    return 0;
}
