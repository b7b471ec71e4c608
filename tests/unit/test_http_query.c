/* ferryd's request line (core/http/request.c): path segments and query
 * parameters (found by tests/fuzz/fuzz_http_request: a request without a
 * query computed NULL + 0, undefined in C; clang's UBSan reports it, so
 * this test fails before the fix when built with clang -fsanitize=undefined). */
#include "test.h"

#include <string.h>

#include "request.h"

static void with_target(const char *target, void (*check)(ferry_http_req *r))
{
    h2o_req_t req;
    memset(&req, 0, sizeof(req));
    h2o_mem_init_pool(&req.pool);
    req.method = h2o_iovec_init(H2O_STRLIT("GET"));
    req.path = h2o_iovec_init(target, strlen(target));
    const char *q = strchr(target, '?');
    req.query_at = q ? (size_t)(q - target) : SIZE_MAX;
    ferry_http_req r = {.req = &req};
    CHECK_INT(ferry_http_req_parse(&r), 0);
    check(&r);
    h2o_mem_clear_pool(&req.pool);
}

static void no_query(ferry_http_req *r)
{
    char out[32] = "x";
    CHECK(r->query == NULL);
    CHECK_INT(ferry_http_query(r, "status", out, sizeof(out)), 0);
    CHECK_STR(out, "");
    CHECK_INT((int)r->nsegs, 2);
}

static void some_query(ferry_http_req *r)
{
    char out[32];
    CHECK_INT(ferry_http_query(r, "status", out, sizeof(out)), 1);
    CHECK_STR(out, "queued");
    CHECK_INT(ferry_http_query(r, "project", out, sizeof(out)), 1);
    CHECK_STR(out, "a b/c");
    CHECK_INT(ferry_http_query(r, "bad", out, sizeof(out)), FERRY_EINVAL);
    CHECK_INT(ferry_http_query(r, "status", out, 3), FERRY_ETOOBIG);
    CHECK_INT(ferry_http_query(r, "step", out, sizeof(out)), 0);
}

static void empty_query(ferry_http_req *r)
{
    char out[32];
    CHECK_INT(ferry_http_query(r, "status", out, sizeof(out)), 0);
}

int main(void)
{
    with_target("/v1/whoami", no_query);
    with_target("/v1/executions?status=queued&project=a+b%2Fc&bad=%zz", some_query);
    with_target("/v1/executions?", empty_query);
    TEST_MAIN_END();
}
