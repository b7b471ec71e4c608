/* s3-storage, loaded through the real loader and driven on a real loop:
 *
 *  - against s3rver (tests/services/s3rver.sh): the bucket check at start
 *    (NoSuchBucket, InvalidAccessKeyId, no server), round trips, multipart above the threshold,
 *    ranged parallel gets, listing with continuation, NoSuchKey, presigned
 *    GET/PUT URLs and uploads driven through presigned part URLs;
 *  - against tests/fakes/fake_s3.py, which misbehaves on purpose: 503
 *    SlowDown then success, throttling for good, dropped and stalled
 *    transfers (resumed), a 200 carrying an <Error>, a part failing for good
 *    (the upload is aborted: no object, no upload left);
 *  - against aws-cli when it is installed: what one wrote, the other reads.
 *
 * FERRY_TEST_S3_ENDPOINT, _BUCKET, _ACCESS_KEY_ID, _SECRET_ACCESS_KEY name
 * the s3rver (ctest's wrapper sources ${FERRY_TEST_SERVICES}/env); the test
 * fails, never skips, when they are missing or s3rver does not answer.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "plugin.h"
#include "util.h"
#include "plugins/harness.h"
#include "unit/test.h"

#define MIB (1024 * 1024)

static const char *s3_endpoint, *s3_bucket, *s3_key_id, *s3_secret;
static char run_prefix[64]; /* keys of this run on s3rver */
static int fake_port;
static pid_t fake_pid;

/* ------------------------------------------------------------------------ */
/* Instances                                                                */

/* An s3-storage instance with these settings ("key", "value" pairs), or
 * NULL with init's reason in *err. */
static ferry_plugin_instance *instance_try(const char *const *kv, ferry_error_detail *err)
{
    ferry_plugin_instance *inst = NULL;
    ferry_test_instance_try(FERRY_PLUGIN_STORE, "s3-storage", kv, &inst, err);
    return inst;
}

/* One that must start. */
static ferry_plugin_instance *instance(const char *const *kv)
{
    return ferry_test_instance(FERRY_PLUGIN_STORE, "s3-storage", kv);
}

static const ferry_store_ops *ops_of(ferry_plugin_instance *inst)
{
    return &ferry_plugin_instance_plugin(inst)->ops.store;
}

/* ------------------------------------------------------------------------ */
/* Files and plain HTTP                                                     */

static char *pattern(size_t n, unsigned seed)
{
    char *d = ferry_xmalloc(n ? n : 1);
    uint32_t x = seed * 2654435761u + 1;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        d[i] = (char)x;
    }
    return d;
}

static char *scratch_file(const char *name, const char *data, size_t n)
{
    char *path = ferry_test_tmp_path(name);
    CHECK_INT(ferry_write_file(path, data, n), 0);
    return path;
}

static int file_is(const char *path, const char *data, size_t n)
{
    size_t len = 0;
    char *got = ferry_read_file(path, &len);
    int same = got != NULL && len == n && memcmp(got, data, n) == 0;
    free(got);
    return same;
}

static size_t curl_sink(char *p, size_t size, size_t n, void *arg)
{
    char **buf = arg;
    size_t old = *buf ? strlen(*buf) : 0;
    *buf = ferry_xrealloc(*buf, old + size * n + 1);
    memcpy(*buf + old, p, size * n);
    (*buf)[old + size * n] = '\0';
    return size * n;
}

/* A blocking request outside the plugin (control of the fake, presigned
 * URLs); the HTTP status, or -1. Headers into *headers when asked. */
static long http(const char *method, const char *url, const char *body, size_t len, char **out,
                 char **headers)
{
    CURL *c = curl_easy_init();
    char *sink = NULL, *hsink = NULL;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, curl_sink);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &sink);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, curl_sink);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &hsink);
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type:");
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    if (strcmp(method, "HEAD") == 0)
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    }
    long status = -1;
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    if (out)
        *out = sink ? sink : ferry_strdup("");
    else
        free(sink);
    if (headers)
        *headers = hsink ? hsink : ferry_strdup("");
    else
        free(hsink);
    return status;
}

/* ------------------------------------------------------------------------ */
/* s3rver                                                                   */

static const char *const *s3rver_settings(const char *extra_k1, const char *extra_v1,
                                          const char *extra_k2, const char *extra_v2)
{
    static const char *kv[32];
    const char *base[] = {"bucket",
                          s3_bucket,
                          "endpoint",
                          s3_endpoint,
                          "access_key_id",
                          s3_key_id,
                          "secret_access_key",
                          s3_secret,
                          "multipart_threshold",
                          "6MiB",
                          "part_size",
                          "5MiB",
                          "parallel_parts",
                          "3",
                          "list_page_size",
                          "7"};
    size_t n = sizeof(base) / sizeof(base[0]);
    memcpy(kv, base, sizeof(base));
    kv[n++] = extra_k1;
    kv[n++] = extra_v1;
    kv[n++] = extra_k2;
    kv[n++] = extra_v2;
    kv[n] = NULL;
    for (size_t i = 0; i < n; i += 2) /* an unset pair ends the list */
        if (kv[i] == NULL) {
            kv[i] = NULL;
            break;
        }
    return kv;
}

static char *rkey(const char *name)
{
    return ferry_asprintf("%s%s", run_prefix, name);
}

/* Init fails with S3's own code: the bucket check at start. */
static void test_start_errors(void)
{
    ferry_error_detail err;
    const char *nobucket[] = {
        "bucket",  "ferry-no-such-bucket", "endpoint", s3_endpoint, "access_key_id",
        s3_key_id, "secret_access_key",    s3_secret,  NULL};
    CHECK(instance_try(nobucket, &err) == NULL);
    CHECK_STR(err.provider_code, "NoSuchBucket");
    CHECK_INT(err.code, FERRY_ENOENT);
    CHECK_CONTAINS(err.message, "NoSuchBucket");
    CHECK_CONTAINS(err.message, "ferry-no-such-bucket");

    /* An access key s3rver does not know (it checks no V4 signature: the
     * vectors of test_sigv4 do). */
    const char *badkey[] = {
        "bucket",    s3_bucket,           "endpoint", s3_endpoint, "access_key_id",
        "AKIDWRONG", "secret_access_key", s3_secret,  NULL};
    CHECK(instance_try(badkey, &err) == NULL);
    CHECK_STR(err.provider_code, "InvalidAccessKeyId");
    CHECK_INT(err.code, FERRY_EAUTH);
    CHECK(strstr(err.message, s3_secret) == NULL); /* no secret in a message */

    /* Nothing answers there: a connection error after the retries. */
    const char *nothing[] = {"bucket",
                             s3_bucket,
                             "endpoint",
                             "http://127.0.0.1:9",
                             "access_key_id",
                             s3_key_id,
                             "secret_access_key",
                             s3_secret,
                             NULL};
    CHECK(instance_try(nothing, &err) == NULL);
    CHECK_INT(err.code, FERRY_ECONN);

    /* Settings the plugin refuses before sending anything. */
    const char *bad_part[] = {
        "bucket",  s3_bucket,           "endpoint", s3_endpoint, "access_key_id",
        s3_key_id, "secret_access_key", s3_secret,  "part_size", "1MiB",
        NULL};
    CHECK(instance_try(bad_part, &err) == NULL);
    CHECK_INT(err.code, FERRY_ECONFIG);
    CHECK_CONTAINS(err.message, "part_size");
}

static void test_roundtrip(ferry_plugin_instance *inst)
{
    ferry_test_outcome o = {0};
    const char *names[] = {"empty.bin", "dir/a b+ü.txt", "small.bin"};
    size_t sizes[] = {0, 1234, 100000};
    for (size_t i = 0; i < 3; i++) {
        char *data = pattern(sizes[i], (unsigned)i + 1), *key = rkey(names[i]);
        char *src = scratch_file("rt-src", data, sizes[i]);
        char *dst = ferry_test_tmp_path("rt-dst");
        CHECK_INT(RUN_OP(inst, &o, 30000,
                         ops_of(inst)->put_file(ferry_plugin_instance_state(inst), key, src, o.op)),
                  0);
        CHECK_INT(o.status, 0);
        CHECK_INT(o.size, (int64_t)sizes[i]);
        CHECK_INT(RUN_OP(inst, &o, 30000,
                         ops_of(inst)->get_file(ferry_plugin_instance_state(inst), key, dst, o.op)),
                  0);
        if (o.status != 0)
            fprintf(stderr, "get %s: %s\n", key, o.error.message);
        CHECK_INT(o.status, 0);
        CHECK(file_is(dst, data, sizes[i]));
        CHECK_INT(RUN_OP(inst, &o, 30000,
                         ops_of(inst)->head(ferry_plugin_instance_state(inst), key, o.op)),
                  0);
        CHECK_INT(o.size, (int64_t)sizes[i]);
        CHECK(o.text != NULL && o.text[0] == '"'); /* the ETag, for caches */
        free(data);
        free(key);
        free(src);
        free(dst);
    }
    ferry_test_outcome_reset(&o);
}

/* NoSuchKey from a get: the code, and no file at the destination. */
static void test_missing_key(ferry_plugin_instance *inst)
{
    ferry_test_outcome o = {0};
    void *st = ferry_plugin_instance_state(inst);
    char *key = rkey("no/such/key.bin"), *dst = ferry_test_tmp_path("missing");
    CHECK_INT(RUN_OP(inst, &o, 30000, ops_of(inst)->get_file(st, key, dst, o.op)), 0);
    CHECK_INT(o.status, FERRY_ENOENT);
    CHECK_STR(o.error.provider_code, "NoSuchKey");
    CHECK_CONTAINS(o.error.message, "NoSuchKey");
    CHECK(access(dst, F_OK) != 0);
    char *dir = ferry_asprintf("%s", ferry_test_tmp()); /* and no temporary file beside it */
    char *cmd = ferry_asprintf("ls -a '%s' | grep -c ferry-get || true", dir);
    FILE *p = popen(cmd, "r");
    char line[32] = "";
    if (p) {
        if (fgets(line, sizeof(line), p) == NULL)
            line[0] = '\0';
        pclose(p);
    }
    CHECK_INT(atoi(line), 0);
    CHECK_INT(RUN_OP(inst, &o, 30000, ops_of(inst)->head(st, key, o.op)), 0);
    CHECK_INT(o.status, FERRY_ENOENT);
    free(cmd);
    free(dir);
    free(key);
    free(dst);
    ferry_test_outcome_reset(&o);
}

/* 23 MiB with 5 MiB parts: five parts, three at once; a get in five ranges. */
static void test_multipart(ferry_plugin_instance *inst)
{
    ferry_test_outcome o = {0};
    void *st = ferry_plugin_instance_state(inst);
    size_t n = 23 * MIB + 17;
    char *data = pattern(n, 42), *key = rkey("big/multipart.bin");
    char *src = scratch_file("mp-src", data, n), *dst = ferry_test_tmp_path("mp-dst");
    CHECK_INT(RUN_OP(inst, &o, 120000, ops_of(inst)->put_file(st, key, src, o.op)), 0);
    if (o.status != 0)
        fprintf(stderr, "multipart put: %s\n", o.error.message);
    CHECK_INT(o.status, 0);
    CHECK_INT(o.size, (int64_t)n);
    CHECK_INT(RUN_OP(inst, &o, 30000, ops_of(inst)->head(st, key, o.op)), 0);
    CHECK_INT(o.size, (int64_t)n);
    CHECK_INT(RUN_OP(inst, &o, 120000, ops_of(inst)->get_file(st, key, dst, o.op)), 0);
    CHECK_INT(o.status, 0);
    CHECK_INT(o.size, (int64_t)n);
    CHECK(file_is(dst, data, n));
    free(data);
    free(key);
    free(src);
    free(dst);
    ferry_test_outcome_reset(&o);
}

/* 25 keys, pages of 7: four ListObjectsV2 calls, one listing. */
static void test_list_continuation(ferry_plugin_instance *inst)
{
    ferry_test_outcome o = {0};
    void *st = ferry_plugin_instance_state(inst);
    char *src = scratch_file("list-src", "x", 1);
    for (int i = 0; i < 25; i++) {
        char name[32];
        snprintf(name, sizeof(name), "list/k%02d", i);
        char *key = rkey(name);
        CHECK_INT(RUN_OP(inst, &o, 30000, ops_of(inst)->put_file(st, key, src, o.op)), 0);
        CHECK_INT(o.status, 0);
        free(key);
    }
    char *prefix = rkey("list/");
    CHECK_INT(RUN_OP(inst, &o, 30000, ops_of(inst)->list(st, prefix, o.op)), 0);
    CHECK_INT(o.status, 0);
    json_t *arr = json_loads(o.text ? o.text : "", 0, NULL);
    CHECK_INT(json_array_size(arr), 25);
    for (size_t i = 0; i < json_array_size(arr); i++) {
        char want[96];
        snprintf(want, sizeof(want), "%slist/k%02zu", run_prefix, i);
        json_t *e = json_array_get(arr, i);
        CHECK_STR(json_string_value(json_object_get(e, "key")), want);
        CHECK_INT(json_integer_value(json_object_get(e, "size")), 1);
    }
    json_decref(arr);
    free(prefix);
    free(src);
    ferry_test_outcome_reset(&o);
}

/* URLs a worker uses without credentials. */
static void test_presign(ferry_plugin_instance *inst)
{
    const ferry_store_ops *ops = ops_of(inst);
    void *st = ferry_plugin_instance_state(inst);
    char *key = rkey("presigned/a b.txt");
    char put[4096], get[4096];
    ferry_error_detail err;
    CHECK_INT(ops->presign(st, "PUT", key, 300, put, sizeof(put), &err), 0);
    CHECK_INT(ops->presign(st, "GET", key, 300, get, sizeof(get), &err), 0);
    CHECK_CONTAINS(put, "X-Amz-Signature=");
    CHECK_INT(http("PUT", put, "from a worker", 13, NULL, NULL), 200);
    char *body = NULL;
    CHECK_INT(http("GET", get, NULL, 0, &body, NULL), 200);
    CHECK_STR(body, "from a worker");
    free(body);
    CHECK_INT(ops->presign(st, "DELETE", key, 300, put, sizeof(put), &err), FERRY_EINVAL);
    CHECK_INT(ops->presign(st, "GET", key, 0, put, sizeof(put), &err), FERRY_EINVAL);
    free(key);
}

/* A worker's multipart upload: begin, parts through presigned URLs, complete. */
static void test_worker_upload(ferry_plugin_instance *inst)
{
    const ferry_store_ops *ops = ops_of(inst);
    void *st = ferry_plugin_instance_state(inst);
    CHECK(ops->upload_begin && ops->presign_part && ops->upload_complete && ops->upload_abort);
    ferry_test_outcome o = {0};
    char *key = rkey("worker/upload.bin");
    CHECK_INT(RUN_OP(inst, &o, 30000, ops->upload_begin(st, key, o.op)), 0);
    CHECK_INT(o.status, 0);
    CHECK(o.text != NULL && o.text[0] != '\0');
    char *id = ferry_strdup(o.text);
    size_t sizes[] = {5 * MIB, 1000};
    char *data[2];
    json_t *parts = json_array();
    for (int i = 0; i < 2; i++) {
        data[i] = pattern(sizes[i], 77 + (unsigned)i);
        char url[4096];
        ferry_error_detail err;
        CHECK_INT(ops->presign_part(st, key, id, i + 1, 300, url, sizeof(url), &err), 0);
        char *headers = NULL;
        CHECK_INT(http("PUT", url, data[i], sizes[i], NULL, &headers), 200);
        char *etag = strcasestr(headers, "\netag:");
        char tag[128] = "";
        if (etag)
            sscanf(etag + 6, " %127[^\r\n]", tag);
        json_array_append_new(parts, json_pack("{s:i, s:s}", "part", i + 1, "etag", tag));
        free(headers);
    }
    char *parts_text = json_dumps(parts, JSON_COMPACT);
    CHECK_INT(RUN_OP(inst, &o, 30000, ops->upload_complete(st, key, id, parts_text, o.op)), 0);
    if (o.status != 0)
        fprintf(stderr, "upload_complete: %s\n", o.error.message);
    CHECK_INT(o.status, 0);
    CHECK_INT(o.size, (int64_t)(sizes[0] + sizes[1]));
    char *dst = ferry_test_tmp_path("worker-dst");
    CHECK_INT(RUN_OP(inst, &o, 30000, ops->get_file(st, key, dst, o.op)), 0);
    size_t len = 0;
    char *got = ferry_read_file(dst, &len);
    CHECK(got && len == sizes[0] + sizes[1] && memcmp(got, data[0], sizes[0]) == 0 &&
          memcmp(got + sizes[0], data[1], sizes[1]) == 0);
    /* Parts that do not add up are refused before anything is sent. */
    CHECK_INT(ops->upload_complete(st, key, id, "[{\"part\": 2, \"etag\": \"x\"}]", NULL),
              FERRY_EINVAL);
    free(got);
    free(dst);
    free(parts_text);
    json_decref(parts);
    free(data[0]);
    free(data[1]);
    free(id);
    free(key);
    ferry_test_outcome_reset(&o);
}

/* The prefix setting: keys live under it, listings and gets do not see it. */
static void test_prefix(void)
{
    char *pfx = rkey("pfx");
    ferry_plugin_instance *inst = instance(s3rver_settings("prefix", pfx, NULL, NULL));
    if (inst == NULL) {
        free(pfx);
        return;
    }
    ferry_test_outcome o = {0};
    void *st = ferry_plugin_instance_state(inst);
    char *src = scratch_file("pfx-src", "prefixed", 8);
    CHECK_INT(RUN_OP(inst, &o, 30000, ops_of(inst)->put_file(st, "in/key.txt", src, o.op)), 0);
    CHECK_INT(o.status, 0);
    CHECK_INT(RUN_OP(inst, &o, 30000, ops_of(inst)->list(st, "in/", o.op)), 0);
    CHECK_STR(o.text, "[{\"key\":\"in/key.txt\",\"size\":8}]");
    char *url = ferry_asprintf("%s/%s/%s/in/key.txt", s3_endpoint, s3_bucket, pfx), *body = NULL;
    CHECK_INT(http("GET", url, NULL, 0, &body, NULL), 200);
    CHECK_STR(body, "prefixed");
    CHECK_INT(RUN_OP(inst, &o, 30000, ops_of(inst)->remove(st, "in/key.txt", o.op)), 0);
    CHECK_INT(o.status, 0);
    free(body);
    free(url);
    free(src);
    free(pfx);
    ferry_test_outcome_reset(&o);
    /* Not ferry_test_instance_free: the first instance is still in use,
     * and its cached connections may keep a dry run of the loop waiting. */
    ferry_plugin_instance_free(inst);
    uv_run(ferry_test_loop(), UV_RUN_NOWAIT);
}

/* ------------------------------------------------------------------------ */
/* aws-cli, when installed: what one wrote the other reads                  */

static int run_cmd(const char *cmd)
{
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static void test_awscli(ferry_plugin_instance *inst)
{
    if (run_cmd("command -v aws >/dev/null 2>&1") != 0) {
        printf("aws-cli: not installed, interoperability not checked\n");
        return;
    }
    void *st = ferry_plugin_instance_state(inst);
    ferry_test_outcome o = {0};
    char *env = ferry_asprintf("AWS_ACCESS_KEY_ID='%s' AWS_SECRET_ACCESS_KEY='%s' "
                               "AWS_DEFAULT_REGION=us-east-1 AWS_CONFIG_FILE=/dev/null "
                               "AWS_SHARED_CREDENTIALS_FILE=/dev/null aws --endpoint-url '%s'",
                               s3_key_id, s3_secret, s3_endpoint);
    /* Ours, read by aws-cli: a multipart object and the listing. */
    char *key = rkey("big/multipart.bin"), *dst = ferry_test_tmp_path("aws-dst");
    char *src = ferry_test_tmp_path("mp-src");
    char *cmd = ferry_asprintf("%s s3 cp 's3://%s/%s' '%s' >/dev/null && cmp -s '%s' '%s'", env,
                               s3_bucket, key, dst, dst, src);
    CHECK_INT(run_cmd(cmd), 0);
    free(cmd);
    cmd = ferry_asprintf("%s s3 ls 's3://%s/%slist/' | grep -c ' k[0-9][0-9]$' | grep -qx 25", env,
                         s3_bucket, run_prefix);
    CHECK_INT(run_cmd(cmd), 0);
    free(cmd);
    /* aws-cli's, read by us: 20 MiB, so aws-cli uploads it in parts too. */
    size_t n = 20 * MIB + 3;
    char *data = pattern(n, 9), *their = scratch_file("aws-src", data, n);
    char *theirs = rkey("from-awscli.bin");
    cmd = ferry_asprintf("%s s3 cp '%s' 's3://%s/%s' >/dev/null", env, their, s3_bucket, theirs);
    CHECK_INT(run_cmd(cmd), 0);
    free(cmd);
    CHECK_INT(RUN_OP(inst, &o, 60000, ops_of(inst)->get_file(st, theirs, dst, o.op)), 0);
    CHECK_INT(o.status, 0);
    CHECK(file_is(dst, data, n));
    CHECK_INT(RUN_OP(inst, &o, 30000, ops_of(inst)->remove(st, theirs, o.op)), 0);
    printf("aws-cli: objects written by each side read back identical by the other\n");
    free(theirs);
    free(their);
    free(data);
    free(src);
    free(dst);
    free(key);
    free(env);
    ferry_test_outcome_reset(&o);
}

/* Everything this run left on s3rver. */
static void cleanup_s3rver(ferry_plugin_instance *inst)
{
    ferry_test_outcome o = {0};
    void *st = ferry_plugin_instance_state(inst);
    RUN_OP(inst, &o, 30000, ops_of(inst)->list(st, run_prefix, o.op));
    json_t *arr = json_loads(o.text ? o.text : "[]", 0, NULL);
    size_t i;
    json_t *e;
    json_array_foreach(arr, i, e)
    {
        RUN_OP(inst, &o, 30000,
               ops_of(inst)->remove(st, json_string_value(json_object_get(e, "key")), o.op));
    }
    json_decref(arr);
    ferry_test_outcome_reset(&o);
}

static void test_s3rver(void)
{
    test_start_errors();
    ferry_plugin_instance *inst = instance(s3rver_settings(NULL, NULL, NULL, NULL));
    if (inst == NULL)
        return;
    test_roundtrip(inst);
    test_missing_key(inst);
    test_multipart(inst);
    test_list_continuation(inst);
    test_presign(inst);
    test_worker_upload(inst);
    test_prefix();
    test_awscli(inst);
    cleanup_s3rver(inst);
    ferry_test_instance_free(inst);
}

/* ------------------------------------------------------------------------ */
/* The fake: failures on purpose                                            */

static void fake_start(void)
{
    int fds[2];
    CHECK_INT(pipe(fds), 0);
    char *script = ferry_asprintf("%s/tests/fakes/fake_s3.py", getenv("FERRY_SOURCE_DIR"));
    fake_pid = fork();
    if (fake_pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        execlp("python3", "python3", script, "fake-bucket", (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    FILE *f = fdopen(fds[0], "r");
    char line[64] = "";
    if (f == NULL || fgets(line, sizeof(line), f) == NULL ||
        sscanf(line, "PORT=%d", &fake_port) != 1)
        fprintf(stderr, "FAIL: tests/fakes/fake_s3.py did not start\n");
    if (f)
        fclose(f);
    free(script);
}

static void fake_stop(void)
{
    if (fake_pid > 0) {
        kill(fake_pid, SIGTERM);
        waitpid(fake_pid, NULL, 0);
    }
}

static void fake_faults(const char *json)
{
    char *url = ferry_asprintf("http://127.0.0.1:%d/__faults", fake_port);
    CHECK_INT(http("PUT", url, json, strlen(json), NULL, NULL), 204);
    free(url);
}

static void fake_reset(void)
{
    char *url = ferry_asprintf("http://127.0.0.1:%d/__reset", fake_port);
    CHECK_INT(http("POST", url, "", 0, NULL, NULL), 204);
    free(url);
}

static json_t *fake_state(void)
{
    char *url = ferry_asprintf("http://127.0.0.1:%d/__state", fake_port), *body = NULL;
    CHECK_INT(http("GET", url, NULL, 0, &body, NULL), 200);
    json_t *j = json_loads(body ? body : "{}", 0, NULL);
    free(body);
    free(url);
    return j;
}

/* Requests the fake saw of `method` whose query holds `query`. */
static int fake_count(json_t *state, const char *method, const char *query)
{
    int n = 0;
    size_t i;
    json_t *r;
    json_array_foreach(json_object_get(state, "requests"), i, r)
    {
        if (strcmp(json_string_value(json_object_get(r, "method")), method) == 0 &&
            strstr(json_string_value(json_object_get(r, "query")), query) != NULL)
            n++;
    }
    return n;
}

static ferry_plugin_instance *fake_instance(void)
{
    char *endpoint = ferry_asprintf("http://127.0.0.1:%d", fake_port);
    const char *kv[] = {"bucket",
                        "fake-bucket",
                        "endpoint",
                        endpoint,
                        "secret_access_key",
                        "fake-secret",
                        "access_key_id",
                        "AKIDFAKE",
                        "multipart_threshold",
                        "5MiB",
                        "part_size",
                        "5MiB",
                        "parallel_parts",
                        "3",
                        "max_attempts",
                        "4",
                        "stall_timeout",
                        "1",
                        NULL};
    ferry_plugin_instance *inst = instance(kv);
    free(endpoint);
    return inst;
}

static int put(ferry_plugin_instance *inst, const char *key, const char *path,
               ferry_test_outcome *o)
{
    CHECK_INT(RUN_OP(inst, o, 60000,
                     ops_of(inst)->put_file(ferry_plugin_instance_state(inst), key, path, o->op)),
              0);
    return o->status;
}

static void test_fake_throttling(ferry_plugin_instance *inst)
{
    ferry_test_outcome o = {0};
    char *src = scratch_file("fake-small", "throttled", 9);
    /* Twice 503 SlowDown, then the put goes through. */
    fake_reset();
    fake_faults("[{\"method\": \"PUT\", \"action\": \"status\", \"status\": 503, "
                "\"code\": \"SlowDown\", \"times\": 2}]");
    CHECK_INT(put(inst, "slow.txt", src, &o), 0);
    json_t *s = fake_state();
    CHECK_INT(fake_count(s, "PUT", ""), 3);
    CHECK_INT(json_integer_value(json_object_get(json_object_get(s, "objects"), "slow.txt")), 9);
    json_decref(s);
    /* SlowDown for good: the op fails with the code, retryable, after 4. */
    fake_reset();
    fake_faults("[{\"method\": \"PUT\", \"action\": \"status\", \"status\": 503, "
                "\"code\": \"SlowDown\", \"times\": -1}]");
    CHECK_INT(put(inst, "slow.txt", src, &o), FERRY_ETHROTTLED);
    CHECK_STR(o.error.provider_code, "SlowDown");
    CHECK_INT(o.error.retryable, 1);
    CHECK_CONTAINS(o.error.message, "SlowDown");
    CHECK_CONTAINS(o.error.message, "after 4 attempts");
    s = fake_state();
    CHECK_INT(fake_count(s, "PUT", ""), 4);
    json_decref(s);
    /* 500s and dropped connections are retried too. */
    fake_reset();
    fake_faults("[{\"method\": \"PUT\", \"action\": \"status\", \"status\": 500, "
                "\"code\": \"InternalError\", \"times\": 1}, {\"method\": \"PUT\", \"action\": "
                "\"drop\", \"times\": 1}]");
    CHECK_INT(put(inst, "flaky.txt", src, &o), 0);
    /* A clock S3 finds skewed is corrected from its Date and retried at once. */
    fake_reset();
    fake_faults("[{\"method\": \"PUT\", \"action\": \"status\", \"status\": 403, "
                "\"code\": \"RequestTimeTooSkewed\", \"times\": 1}]");
    CHECK_INT(put(inst, "skewed.txt", src, &o), 0);
    /* Access denied is not retried. */
    fake_reset();
    fake_faults("[{\"method\": \"PUT\", \"action\": \"status\", \"status\": 403, "
                "\"code\": \"AccessDenied\", \"times\": -1}]");
    CHECK_INT(put(inst, "denied.txt", src, &o), FERRY_EPERM);
    CHECK_STR(o.error.provider_code, "AccessDenied");
    s = fake_state();
    CHECK_INT(fake_count(s, "PUT", ""), 1);
    json_decref(s);
    free(src);
    ferry_test_outcome_reset(&o);
}

/* A body cut off, then one that stalls: the get resumes where it was. */
static void test_fake_resume(ferry_plugin_instance *inst)
{
    ferry_test_outcome o = {0};
    void *st = ferry_plugin_instance_state(inst);
    size_t n = 3 * MIB + 5;
    char *data = pattern(n, 5), *src = scratch_file("fake-resume", data, n);
    char *dst = ferry_test_tmp_path("fake-resume-dst");
    fake_reset();
    CHECK_INT(put(inst, "resume.bin", src, &o), 0);
    fake_faults("[{\"method\": \"GET\", \"action\": \"truncate\", \"times\": 1}]");
    CHECK_INT(RUN_OP(inst, &o, 60000, ops_of(inst)->get_file(st, "resume.bin", dst, o.op)), 0);
    CHECK_INT(o.status, 0);
    CHECK(file_is(dst, data, n));
    json_t *s = fake_state();
    json_t *reqs = json_object_get(s, "requests");
    /* The retry asked for the second half only. */
    const char *last_range = json_string_value(
        json_object_get(json_array_get(reqs, json_array_size(reqs) - 1), "range"));
    char want[64];
    snprintf(want, sizeof(want), "bytes=%zu-%zu", n / 2, n - 1);
    CHECK_STR(last_range, want);
    json_decref(s);
    fake_faults("[{\"method\": \"GET\", \"action\": \"stall\", \"seconds\": 4, \"times\": 1}]");
    unlink(dst);
    CHECK_INT(RUN_OP(inst, &o, 60000, ops_of(inst)->get_file(st, "resume.bin", dst, o.op)), 0);
    CHECK_INT(o.status, 0);
    CHECK(file_is(dst, data, n));
    free(data);
    free(src);
    free(dst);
    ferry_test_outcome_reset(&o);
}

static void test_fake_multipart(ferry_plugin_instance *inst)
{
    ferry_test_outcome o = {0};
    size_t n = 12 * MIB + 1;
    char *data = pattern(n, 6), *src = scratch_file("fake-mp", data, n);
    /* A part dropped once and a 200 with an <Error> once: both retried. */
    fake_reset();
    fake_faults("[{\"method\": \"PUT\", \"query\": \"partNumber=2\", \"action\": \"drop\", "
                "\"times\": 1}, {\"method\": \"POST\", \"query\": \"uploadId\", \"action\": "
                "\"error200\", \"code\": \"InternalError\", \"times\": 1}]");
    CHECK_INT(put(inst, "mp/ok.bin", src, &o), 0);
    json_t *s = fake_state();
    CHECK_INT(fake_count(s, "PUT", "partNumber=2"), 2);
    CHECK_INT(fake_count(s, "POST", "uploadId="), 2);
    CHECK_INT(json_integer_value(json_object_get(json_object_get(s, "objects"), "mp/ok.bin")),
              (json_int_t)n);
    CHECK_INT(json_object_size(json_object_get(s, "uploads")), 0);
    json_decref(s);

    /* A part refused for good: the others stop, the upload is aborted, no
     * object and no upload are left. */
    fake_reset();
    fake_faults("[{\"method\": \"PUT\", \"query\": \"partNumber=2\", \"action\": \"status\", "
                "\"status\": 400, \"code\": \"InvalidArgument\", \"times\": -1}]");
    CHECK_INT(put(inst, "mp/failed.bin", src, &o), FERRY_EPROVIDER);
    CHECK_STR(o.error.provider_code, "InvalidArgument");
    CHECK_CONTAINS(o.error.message, "InvalidArgument");
    s = fake_state();
    CHECK_INT(json_object_size(json_object_get(s, "objects")), 0);
    CHECK_INT(json_object_size(json_object_get(s, "uploads")), 0);
    CHECK_INT(fake_count(s, "DELETE", "uploadId="), 1);
    CHECK_INT(fake_count(s, "POST", "uploadId="), 0);
    json_decref(s);

    /* CompleteMultipartUpload failing in a 200 every time: aborted too. */
    fake_reset();
    fake_faults("[{\"method\": \"POST\", \"query\": \"uploadId\", \"action\": \"error200\", "
                "\"code\": \"InternalError\", \"times\": -1}]");
    CHECK_INT(put(inst, "mp/never.bin", src, &o), FERRY_EPROVIDER);
    CHECK_STR(o.error.provider_code, "InternalError");
    s = fake_state();
    CHECK_INT(json_object_size(json_object_get(s, "objects")), 0);
    CHECK_INT(json_object_size(json_object_get(s, "uploads")), 0);
    CHECK_INT(fake_count(s, "POST", "uploadId="), 4);
    CHECK_INT(fake_count(s, "DELETE", "uploadId="), 1);
    json_decref(s);

    /* A worker's upload, aborted. */
    fake_reset();
    const ferry_store_ops *ops = ops_of(inst);
    void *st = ferry_plugin_instance_state(inst);
    CHECK_INT(RUN_OP(inst, &o, 30000, ops->upload_begin(st, "mp/worker.bin", o.op)), 0);
    char *id = ferry_strdup(o.text);
    CHECK_INT(RUN_OP(inst, &o, 30000, ops->upload_abort(st, "mp/worker.bin", id, o.op)), 0);
    CHECK_INT(o.status, 0);
    s = fake_state();
    CHECK_INT(json_object_size(json_object_get(s, "uploads")), 0);
    json_decref(s);
    free(id);
    free(data);
    free(src);
    ferry_test_outcome_reset(&o);
}

/* Freed with a multipart upload in flight: the op is dropped (the host
 * cancels it) and the upload is aborted before fini returns. */
static void test_fake_fini_aborts(void)
{
    fake_reset();
    /* Parts stall: the upload is surely still open at fini. */
    fake_faults("[{\"method\": \"PUT\", \"query\": \"partNumber\", \"action\": \"drop\", "
                "\"times\": -1}]");
    ferry_plugin_instance *inst = fake_instance();
    if (inst == NULL)
        return;
    size_t n = 11 * MIB;
    char *data = pattern(n, 8), *src = scratch_file("fake-fini", data, n);
    ferry_test_outcome o = {0};
    ferry_test_op_begin(inst, &o);
    CHECK_INT(ops_of(inst)->put_file(ferry_plugin_instance_state(inst), "fini.bin", src, o.op), 0);
    /* Run until parts are being sent: the plugin knows the upload's id. */
    for (int i = 0; i < 500; i++) {
        uv_run(ferry_test_loop(), UV_RUN_NOWAIT);
        json_t *s = fake_state();
        int parts = fake_count(s, "PUT", "partNumber=");
        json_decref(s);
        if (parts > 0)
            break;
        usleep(10000);
    }
    ferry_test_instance_free(inst);
    CHECK_INT(o.calls, 1);
    CHECK_INT(o.status, FERRY_ECANCELED);
    json_t *s = fake_state();
    CHECK_INT(json_object_size(json_object_get(s, "uploads")), 0);
    CHECK_INT(json_object_size(json_object_get(s, "objects")), 0);
    json_decref(s);
    free(data);
    free(src);
    ferry_test_outcome_reset(&o);
}

/* The last request the fake saw: its field `name`, copied. */
static char *fake_last(const char *name)
{
    json_t *s = fake_state();
    json_t *reqs = json_object_get(s, "requests");
    const char *v =
        json_string_value(json_object_get(json_array_get(reqs, json_array_size(reqs) - 1), name));
    char *out = ferry_strdup(v ? v : "(none)");
    json_decref(s);
    return out;
}

/* Starts an instance on the fake with only these credential settings
 * (NULL: not set) and says which access key signed its bucket check. */
static char *creds_used(const char *id, const char *secret, ferry_error_detail *err)
{
    char *endpoint = ferry_asprintf("http://127.0.0.1:%d", fake_port);
    const char *kv[] = {"bucket", "fake-bucket",       "endpoint", endpoint, "access_key_id",
                        id,       "secret_access_key", secret,     NULL};
    if (id == NULL) { /* no access_key_id pair at all */
        kv[4] = "secret_access_key";
        kv[5] = secret;
        kv[6] = NULL;
    }
    fake_reset();
    ferry_plugin_instance *inst = instance_try(kv, err);
    free(endpoint);
    if (inst == NULL)
        return NULL;
    ferry_test_instance_free(inst);
    return fake_last("key_id");
}

/* aws-cli's order: the settings, the environment, the shared file. */
static void test_fake_credentials(void)
{
    ferry_error_detail err;
    char *file = ferry_test_tmp_path("credentials");
    const char *text = "# comment\n[default]\naws_access_key_id = AKIDDEFAULT\n"
                       "aws_secret_access_key = s-default\n\n[other]\n"
                       "aws_access_key_id=AKIDOTHER\naws_secret_access_key=s-other\n"
                       "aws_session_token = tok-file\n";
    CHECK_INT(ferry_write_file(file, text, strlen(text)), 0);
    setenv("AWS_SHARED_CREDENTIALS_FILE", file, 1);
    setenv("AWS_ACCESS_KEY_ID", "AKIDENV", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "s-env", 1);
    setenv("AWS_SESSION_TOKEN", "tok-env", 1);
    char *used = creds_used("AKIDSETTINGS", "s-settings", &err);
    CHECK_STR(used, "AKIDSETTINGS");
    free(used);
    used = creds_used(NULL, NULL, &err);
    CHECK_STR(used, "AKIDENV");
    free(used);
    used = fake_last("token");
    CHECK_STR(used, "tok-env");
    free(used);
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");
    unsetenv("AWS_SESSION_TOKEN");
    used = creds_used(NULL, NULL, &err);
    CHECK_STR(used, "AKIDDEFAULT");
    free(used);
    setenv("AWS_PROFILE", "other", 1);
    used = creds_used(NULL, NULL, &err);
    CHECK_STR(used, "AKIDOTHER");
    free(used);
    used = fake_last("token");
    CHECK_STR(used, "tok-file");
    free(used);
    setenv("AWS_PROFILE", "missing", 1);
    CHECK(creds_used(NULL, NULL, &err) == NULL);
    CHECK_INT(err.code, FERRY_ECONFIG);
    CHECK_CONTAINS(err.message, "no credentials");
    unsetenv("AWS_PROFILE");
    /* Half a key pair in the settings is a mistake, not a fallback. */
    CHECK(creds_used("AKIDHALF", NULL, &err) == NULL);
    CHECK_INT(err.code, FERRY_ECONFIG);
    CHECK(creds_used(NULL, "s-half", &err) == NULL);
    CHECK_INT(err.code, FERRY_ECONFIG);
    setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null", 1);
    free(file);
}

/* path_style = false: the bucket in the host name (curl takes any
 * *.localhost for loopback). */
static void test_fake_vhost(void)
{
    char *endpoint = ferry_asprintf("http://localhost:%d", fake_port);
    const char *kv[] = {
        "bucket",   "fake-bucket",       "endpoint",    endpoint,     "access_key_id",
        "AKIDFAKE", "secret_access_key", "fake-secret", "path_style", "false",
        NULL};
    fake_reset();
    ferry_plugin_instance *inst = instance(kv);
    if (inst) {
        ferry_test_outcome o = {0};
        void *st = ferry_plugin_instance_state(inst);
        char *src = scratch_file("vhost", "virtual", 7), *dst = ferry_test_tmp_path("vhost-dst");
        CHECK_INT(put(inst, "v/one.txt", src, &o), 0);
        char *host = fake_last("host"),
             *want = ferry_asprintf("fake-bucket.localhost:%d", fake_port);
        CHECK_STR(host, want);
        CHECK_INT(RUN_OP(inst, &o, 30000, ops_of(inst)->get_file(st, "v/one.txt", dst, o.op)), 0);
        CHECK(file_is(dst, "virtual", 7));
        CHECK_INT(RUN_OP(inst, &o, 30000, ops_of(inst)->list(st, "v/", o.op)), 0);
        CHECK_STR(o.text, "[{\"key\":\"v/one.txt\",\"size\":7}]");
        free(host);
        free(want);
        free(src);
        free(dst);
        ferry_test_outcome_reset(&o);
        ferry_test_instance_free(inst);
    }
    free(endpoint);
}

static void test_fake(void)
{
    fake_start();
    if (fake_port == 0)
        return;
    ferry_plugin_instance *inst = fake_instance();
    if (inst) {
        test_fake_throttling(inst);
        test_fake_resume(inst);
        test_fake_multipart(inst);
        ferry_test_instance_free(inst);
    }
    test_fake_credentials();
    test_fake_vhost();
    test_fake_fini_aborts();
    fake_stop();
}

/* ------------------------------------------------------------------------ */

static int env_ok(void)
{
    s3_endpoint = getenv("FERRY_TEST_S3_ENDPOINT");
    s3_bucket = getenv("FERRY_TEST_S3_BUCKET");
    s3_key_id = getenv("FERRY_TEST_S3_ACCESS_KEY_ID");
    s3_secret = getenv("FERRY_TEST_S3_SECRET_ACCESS_KEY");
    if (!s3_endpoint || !s3_bucket || !s3_key_id || !s3_secret) {
        fprintf(stderr, "FAIL: FERRY_TEST_S3_ENDPOINT (and _BUCKET, _ACCESS_KEY_ID, "
                        "_SECRET_ACCESS_KEY) are not set: start s3rver with "
                        "tests/services/s3rver.sh start, or tests/services/all.sh start "
                        "(scripts/test.sh does it)\n");
        return 0;
    }
    char *url = ferry_asprintf("%s/", s3_endpoint);
    long status = http("GET", url, NULL, 0, NULL, NULL);
    free(url);
    if (status < 0) {
        fprintf(stderr,
                "FAIL: no S3 server answers at %s: start it with "
                "tests/services/s3rver.sh start\n",
                s3_endpoint);
        return 0;
    }
    return 1;
}

int main(void)
{
    if (getenv("FERRY_SOURCE_DIR") == NULL) {
        fprintf(stderr, "FERRY_SOURCE_DIR must be set (ctest sets it)\n");
        return 2;
    }
    if (ferry_test_harness_init("test_s3_storage", &ferry_test_failures) < 0)
        return 2;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (!env_ok()) {
        ferry_test_harness_close();
        return 1;
    }
    char hex[17];
    ferry_random_hex(hex, 8);
    snprintf(run_prefix, sizeof(run_prefix), "test-s3-%s/", hex);
    /* No credentials from the developer's environment may leak in. */
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");
    unsetenv("AWS_SESSION_TOKEN");
    setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null", 1);
    test_s3rver();
    test_fake();
    ferry_test_harness_close();
    TEST_MAIN_END();
}
