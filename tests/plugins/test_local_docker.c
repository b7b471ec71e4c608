/* local-docker against a real dockerd and a real registry: the plugin is
 * loaded from the build's plugin folder through the real loader and driven
 * on a real uv loop, like test_local_plugins.c does for local-process.
 *
 * Needs the services of tests/services/all.sh: FERRY_TEST_DOCKER_SOCKET and
 * FERRY_TEST_REGISTRY(_USER, _PASSWORD), from the environment or from
 * $FERRY_TEST_SERVICES/env. Without them it fails, saying so: it never
 * skips. The test images come from tests/plugins/docker_images.sh.
 *
 * The test itself reads the daemon's state (inspect, lists) with plain
 * blocking libcurl calls: what the plugin did, seen from outside.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
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

#define IMAGE "ferry-test/busybox:1"
#define USER_IMAGE "ferry-test/busybox-user:1"
#define RUN_MS 30000

static const char *docker_socket;
static const char *registry, *registry_user, *registry_password;

/* ------------------------------------------------------------------------ */
/* The daemon, seen by the test (blocking libcurl)                          */

typedef struct buf {
    char *data;
    size_t len;
} buf;

static size_t buf_write(char *p, size_t size, size_t n, void *arg)
{
    buf *b = arg;
    b->data = ferry_xrealloc(b->data, b->len + size * n + 1);
    memcpy(b->data + b->len, p, size * n);
    b->len += size * n;
    b->data[b->len] = '\0';
    return size * n;
}

/* A call to the test daemon; the body (JSON) or NULL, status in *status. */
static json_t *docker(const char *method, const char *path, const char *body, long *status)
{
    CURL *c = curl_easy_init();
    char *url = ferry_asprintf("http://docker/v1.41%s", path);
    buf b = {0};
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, docker_socket);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, buf_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
    if (body != NULL)
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    long st = 0;
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &st);
    if (status)
        *status = st;
    json_t *j = b.data ? json_loads(b.data, JSON_DECODE_ANY, NULL) : NULL;
    free(b.data);
    free(url);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return j;
}

/* Containers (all states) whose label `key` is `value`. */
static json_t *containers_labelled(const char *key, const char *value)
{
    char *filter = ferry_asprintf("{\"label\":[\"%s=%s\"]}", key, value);
    char *escaped = curl_easy_escape(NULL, filter, 0);
    char *path = ferry_asprintf("/containers/json?all=1&filters=%s", escaped);
    json_t *list = docker("GET", path, NULL, NULL);
    curl_free(escaped);
    free(filter);
    free(path);
    return list;
}

static size_t count_containers(const char *execution_id)
{
    json_t *list = containers_labelled("ferry.execution", execution_id);
    size_t n = json_is_array(list) ? json_array_size(list) : 999;
    json_decref(list);
    return n;
}

/* The inspect of the one container of an execution, or NULL. */
static json_t *inspect_execution(const char *execution_id)
{
    json_t *list = containers_labelled("ferry.execution", execution_id);
    const char *id = json_string_value(json_object_get(json_array_get(list, 0), "Id"));
    json_t *j = NULL;
    if (id != NULL) {
        char *path = ferry_asprintf("/containers/%s/json", id);
        j = docker("GET", path, NULL, NULL);
        free(path);
    }
    json_decref(list);
    return j;
}

static void remove_image(const char *name)
{
    char *path = ferry_asprintf("/images/%s?force=1", name);
    json_decref(docker("DELETE", path, NULL, NULL));
    free(path);
}

static int image_present(const char *name)
{
    char *path = ferry_asprintf("/images/%s/json", name);
    long status = 0;
    json_decref(docker("GET", path, NULL, &status));
    free(path);
    return status == 200;
}

/* ------------------------------------------------------------------------ */
/* Instances and runs                                                       */

/* A local-docker instance with these settings ("key", "value" pairs), or
 * NULL with init's reason in *err (may be NULL). */
static ferry_plugin_instance *instance_with(const char *const *pairs, ferry_error_detail *err)
{
    ferry_plugin_instance *inst = NULL;
    ferry_test_instance_try(FERRY_PLUGIN_RUNTIME, "local-docker", pairs, &inst, err);
    return inst;
}

/* One on the test daemon, with `more` settings, that must start. */
static ferry_plugin_instance *instance(const char *const *more)
{
    const char *pairs[16] = {"docker_socket", docker_socket};
    int n = 2;
    for (const char *const *kv = more; kv && kv[0] && n < 14; kv++)
        pairs[n++] = *kv;
    return ferry_test_instance(FERRY_PLUGIN_RUNTIME, "local-docker", pairs);
}

static const ferry_runtime_ops *ops_of(ferry_plugin_instance *inst)
{
    return &ferry_plugin_instance_plugin(inst)->ops.runtime;
}

static const char *S(const char *s)
{
    return s ? s : "";
}

static int start_run(ferry_plugin_instance *inst, const ferry_run_spec *spec,
                     ferry_test_run_result *r, ferry_run **run, ferry_error_detail *err)
{
    int rc = ferry_test_run_start(inst, spec, r, run, err);
    if (rc < 0)
        fprintf(stderr, "start: %s\n", err->message);
    CHECK_INT(r->exited, 0); /* never inside start */
    return rc;
}

/* Runs a script to its end; 0 when `exited` came within timeout_ms, and
 * only once. */
static int run_script(ferry_plugin_instance *inst, const ferry_run_spec *spec,
                      ferry_test_run_result *r, unsigned timeout_ms)
{
    int rc = ferry_test_run_script(inst, spec, r, timeout_ms);
    if (rc < 0 && rc != FERRY_ETIMEDOUT)
        return rc; /* it did not start: no `exited` to count */
    /* A second `exited` would show now. */
    ferry_test_loop_for(50);
    CHECK_INT(r->exited, 1);
    return rc;
}

static void show(const char *what, const ferry_test_run_result *r)
{
    fprintf(stderr, "--- %s: exit %d reason '%s'\nstdout: %.400s\nstderr: %.400s\nstatus: %.600s\n",
            what, r->exit_code, r->reason, S(r->out), S(r->err), S(r->status));
}

/* ------------------------------------------------------------------------ */
/* Settings and the daemon's version                                        */

static void test_bad_settings(void)
{
    static const struct {
        const char *key, *value, *named;
    } bad[] = {
        {"docker_cpus", "lots", "\"docker_cpus\""},
        {"docker_cpus", "-1", "\"docker_cpus\""},
        {"docker_memory", "12q", "\"docker_memory\""},
        {"docker_memory", "1k", "\"docker_memory\""},
        {"docker_network", "no spaces", "\"docker_network\""},
        {"docker_socket", "relative.sock", "\"docker_socket\""},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const char *pairs[] = {bad[i].key, bad[i].value, NULL};
        ferry_error_detail err;
        memset(&err, 0, sizeof(err));
        ferry_plugin_instance *inst = instance_with(pairs, &err);
        CHECK(inst == NULL);
        CHECK_INT(err.code, FERRY_ECONFIG);
        CHECK_CONTAINS(err.message, bad[i].named);
        CHECK_CONTAINS(err.message, bad[i].value);
        if (inst)
            ferry_test_instance_free(inst);
    }
    /* Good values pass. */
    const char *good[] = {"docker_cpus", "1.5", "docker_memory", "512m", "docker_network",
                          "none",        NULL};
    ferry_plugin_instance *inst = instance(good);
    if (inst)
        ferry_test_instance_free(inst);
}

/* No daemon at the socket: the run ends at once with -1 and a reason that
 * names the socket; so does cleanup. */
static void test_missing_daemon(void)
{
    char *sock = ferry_test_tmp_path("no-daemon.sock");
    const char *pairs[] = {"docker_socket", sock, NULL};
    ferry_plugin_instance *inst = instance_with(pairs, NULL);
    CHECK(inst != NULL);
    if (inst == NULL) {
        free(sock);
        return;
    }
    ferry_test_exec_dirs d = ferry_test_exec_dirs_make("missing-daemon");
    ferry_run_spec spec = ferry_test_run_spec(&d, IMAGE, "echo never");
    ferry_test_run_result r = {0};
    CHECK_INT(run_script(inst, &spec, &r, 10000), 0);
    CHECK_INT(r.exit_code, -1);
    CHECK_CONTAINS(r.reason, "could not start");
    CHECK_CONTAINS(r.reason, "no Docker daemon answers at");
    CHECK_CONTAINS(r.reason, sock);
    ferry_test_run_result_reset(&r);
    ferry_test_exec_dirs_free(&d);
    ferry_test_instance_free(inst);
    free(sock);
}

/* A fake daemon on a unix socket of the test's loop: answers /version with
 * `version_body`, records the next request's path, answers it 500. */
typedef struct fake_conn {
    uv_pipe_t pipe;
    char in[8192];
    size_t len;
} fake_conn;

static uv_pipe_t fake_server;
static const char *fake_version_body;
static char fake_last_path[512];

static void fake_closed(uv_handle_t *h)
{
    free(h->data);
}

static void fake_written(uv_write_t *w, int status)
{
    (void)status;
    uv_close((uv_handle_t *)w->handle, fake_closed);
    free(w->data);
    free(w);
}

static void fake_respond(fake_conn *c, int status, const char *body)
{
    char *text = ferry_asprintf("HTTP/1.1 %d X\r\nContent-Type: application/json\r\n"
                                "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
                                status, strlen(body), body);
    uv_write_t *w = ferry_xcalloc(1, sizeof(*w));
    w->data = text;
    uv_buf_t b = uv_buf_init(text, (unsigned)strlen(text));
    uv_read_stop((uv_stream_t *)&c->pipe);
    uv_write(w, (uv_stream_t *)&c->pipe, &b, 1, fake_written);
}

static void fake_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    (void)suggested;
    fake_conn *c = h->data;
    *b = uv_buf_init(c->in + c->len, (unsigned)(sizeof(c->in) - 1 - c->len));
}

static void fake_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    (void)b;
    fake_conn *c = s->data;
    if (n < 0) {
        uv_close((uv_handle_t *)s, fake_closed);
        return;
    }
    c->len += (size_t)n;
    c->in[c->len] = '\0';
    if (strstr(c->in, "\r\n\r\n") == NULL)
        return;
    char method[16], path[512];
    if (sscanf(c->in, "%15s %511s", method, path) != 2)
        path[0] = '\0';
    if (strcmp(path, "/version") == 0) {
        fake_respond(c, 200, fake_version_body);
    } else {
        snprintf(fake_last_path, sizeof(fake_last_path), "%s", path);
        fake_respond(c, 500, "{\"message\":\"fake daemon says no\"}");
    }
}

static void fake_connection(uv_stream_t *server, int status)
{
    if (status < 0)
        return;
    fake_conn *c = ferry_xcalloc(1, sizeof(*c));
    uv_pipe_init(ferry_test_loop(), &c->pipe, 0);
    c->pipe.data = c;
    if (uv_accept(server, (uv_stream_t *)&c->pipe) == 0)
        uv_read_start((uv_stream_t *)&c->pipe, fake_alloc, fake_read);
    else
        uv_close((uv_handle_t *)&c->pipe, fake_closed);
}

/* One run against the fake daemon; the result's reason. */
static void fake_run(const char *sock, const char *version_body, ferry_test_run_result *r)
{
    fake_version_body = version_body;
    fake_last_path[0] = '\0';
    const char *pairs[] = {"docker_socket", sock, NULL};
    ferry_plugin_instance *inst = instance_with(pairs, NULL);
    CHECK(inst != NULL);
    if (inst == NULL)
        return;
    ferry_test_exec_dirs d = ferry_test_exec_dirs_make("fake-daemon");
    ferry_run_spec spec = ferry_test_run_spec(&d, IMAGE, "echo never");
    CHECK_INT(run_script(inst, &spec, r, 10000), 0);
    CHECK_INT(r->exit_code, -1);
    ferry_test_exec_dirs_free(&d);
    ferry_test_instance_free(inst);
}

static void test_version_negotiation(void)
{
    char *sock = ferry_test_tmp_path("fake-docker.sock");
    uv_pipe_init(ferry_test_loop(), &fake_server, 0);
    CHECK_INT(uv_pipe_bind(&fake_server, sock), 0);
    CHECK_INT(uv_listen((uv_stream_t *)&fake_server, 8, fake_connection), 0);
    uv_unref((uv_handle_t *)&fake_server); /* instance_free runs the loop dry */
    ferry_test_run_result r = {0};

    /* The daemon's version when it is within what the plugin knows. */
    fake_run(sock, "{\"ApiVersion\":\"1.41\",\"MinAPIVersion\":\"1.12\"}", &r);
    CHECK_STR(fake_last_path, "/v1.41/images/" IMAGE "/json");
    CHECK_CONTAINS(r.reason, "fake daemon says no");
    /* A newer daemon is spoken to in the newest version the plugin knows. */
    fake_run(sock, "{\"ApiVersion\":\"1.99\",\"MinAPIVersion\":\"1.24\"}", &r);
    CHECK_STR(fake_last_path, "/v1.43/images/" IMAGE "/json");
    /* Too old: refused with the versions and the socket named. */
    fake_run(sock, "{\"ApiVersion\":\"1.30\",\"MinAPIVersion\":\"1.12\"}", &r);
    CHECK_STR(fake_last_path, "");
    CHECK_CONTAINS(r.reason, "could not start");
    CHECK_CONTAINS(r.reason, "1.30, too old");
    CHECK_CONTAINS(r.reason, "1.40 or newer");
    CHECK_CONTAINS(r.reason, sock);
    /* A daemon that dropped every version the plugin knows. */
    fake_run(sock, "{\"ApiVersion\":\"1.99\",\"MinAPIVersion\":\"1.50\"}", &r);
    CHECK_CONTAINS(r.reason, "no longer speaks API 1.43");
    /* Not a Docker daemon at all. */
    fake_run(sock, "{\"hello\":\"world\"}", &r);
    CHECK_CONTAINS(r.reason, "does not answer like a Docker daemon");
    CHECK_CONTAINS(r.reason, sock);

    ferry_test_run_result_reset(&r);
    uv_close((uv_handle_t *)&fake_server, NULL);
    uv_run(ferry_test_loop(), UV_RUN_DEFAULT);
    free(sock);
}

/* ------------------------------------------------------------------------ */
/* Running                                                                  */

static void test_streams_and_codes(ferry_plugin_instance *inst)
{
    ferry_test_exec_dirs d = ferry_test_exec_dirs_make("codes");
    ferry_test_run_result r = {0};
    ferry_run_spec spec =
        ferry_test_run_spec(&d, IMAGE, "echo to-out; echo to-err >&2; printf 'no-newline'");
    CHECK_INT(run_script(inst, &spec, &r, RUN_MS), 0);
    CHECK_STR(r.out, "to-out\nno-newline");
    CHECK_STR(r.err, "to-err\n");
    CHECK_INT(r.exit_code, 0);
    CHECK_STR(r.reason, "");
    CHECK(!r.output_after_exit);

    spec = ferry_test_run_spec(&d, IMAGE, "exit 3");
    CHECK_INT(run_script(inst, &spec, &r, RUN_MS), 0);
    CHECK_INT(r.exit_code, 3);
    CHECK_STR(r.reason, "");

    spec = ferry_test_run_spec(&d, IMAGE, "echo before; kill -KILL $$");
    CHECK_INT(run_script(inst, &spec, &r, RUN_MS), 0);
    CHECK_INT(r.exit_code, 128 + 9);
    CHECK_CONTAINS(r.reason, "killed by signal 9");
    CHECK_STR(r.out, "before\n");

    /* Binary bytes pass untouched (no log driver re-encodes them). */
    spec = ferry_test_run_spec(&d, IMAGE, "printf 'a\\377\\000b\\r\\n'");
    CHECK_INT(run_script(inst, &spec, &r, RUN_MS), 0);
    CHECK_INT(r.out_len, 6);
    CHECK(r.out != NULL && memcmp(r.out, "a\377\000b\r\n", 6) == 0);

    /* A "#!" script runs as a file of its own, also as another user. */
    spec =
        ferry_test_run_spec(&d, USER_IMAGE, "#!/bin/sh\necho \"script $0 as $(id -u)\"\nexit 5\n");
    CHECK_INT(run_script(inst, &spec, &r, RUN_MS), 0);
    CHECK_STR(r.out, "script /ferry/command as 1000\n");
    CHECK_INT(r.exit_code, 5);
    /* The shell of the step. */
    spec = ferry_test_run_spec(&d, IMAGE, "echo \"$0\"");
    spec.shell = "/bin/ash";
    CHECK_INT(run_script(inst, &spec, &r, RUN_MS), 0);
    CHECK_STR(r.out, "/bin/ash\n");
    ferry_test_run_result_reset(&r);
    ferry_test_exec_dirs_free(&d);
}

/* A fast burst on both streams: every line, in order, on its stream. */
static void test_burst(ferry_plugin_instance *inst)
{
    ferry_test_exec_dirs d = ferry_test_exec_dirs_make("burst");
    ferry_test_run_result r = {0};
    ferry_run_spec spec =
        ferry_test_run_spec(&d, IMAGE, "seq 1 3000 >&2 & seq 1 100000; wait; echo last-line");
    uint64_t t0 = ferry_mono_ms();
    CHECK_INT(run_script(inst, &spec, &r, 60000), 0);
    fprintf(stderr, "100k lines: %llu ms\n", (unsigned long long)(ferry_mono_ms() - t0));
    size_t want_cap = 100000 * 7 + 16, want_len = 0; /* "100000\n" is the longest line */
    char *want = ferry_xmalloc(want_cap);
    for (int i = 1; i <= 100000; i++)
        want_len += (size_t)snprintf(want + want_len, want_cap - want_len, "%d\n", i);
    want_len += (size_t)snprintf(want + want_len, want_cap - want_len, "last-line\n");
    CHECK_INT(r.out_len, want_len);
    CHECK(r.out != NULL && strcmp(r.out, want) == 0);
    size_t err_lines = 0;
    for (size_t i = 0; i < r.err_len; i++)
        err_lines += r.err[i] == '\n';
    CHECK_INT(err_lines, 3000);
    CHECK(r.err != NULL && strncmp(r.err, "1\n2\n3\n", 6) == 0);
    CHECK(r.err != NULL && strstr(r.err, "\n2999\n3000\n") != NULL);
    CHECK_INT(r.exit_code, 0);
    free(want);
    ferry_test_run_result_reset(&r);
    ferry_test_exec_dirs_free(&d);
}

static int file_contains(const char *path, const char *text)
{
    char *s = ferry_read_file(path, NULL);
    int ok = s != NULL && strstr(s, text) != NULL;
    free(s);
    return ok;
}

/* Waits for "ready" on stdout; the script then waits for inputs/go. */
static const char wait_go[] = "echo ready; while [ ! -e /ferry/inputs/go ]; do sleep 0.05; done";

static void let_go(const ferry_test_exec_dirs *d)
{
    char *go = ferry_asprintf("%s/go", d->inputs);
    ferry_write_file(go, "", 0);
    free(go);
}

/* Mounts (and /valohai aliases), working directory, environment, labels,
 * limits from the settings, seen from inside and from the daemon. */
static void test_container_setup(void)
{
    const char *more[] = {"docker_cpus", "1.5", "docker_memory", "96m", NULL};
    ferry_plugin_instance *inst = instance(more);
    if (inst == NULL)
        return;
    ferry_test_exec_dirs d = ferry_test_exec_dirs_make("setup");
    const char *names[] = {"repository", "inputs", "outputs", "config"};
    const char *dirs[] = {d.repository, d.inputs, d.outputs, d.config};
    for (int i = 0; i < 4; i++) {
        char *marker = ferry_asprintf("%s/marker", dirs[i]);
        ferry_write_file(marker, names[i], strlen(names[i]));
        free(marker);
    }
    char *script = ferry_asprintf(
        "for v in REPOSITORY INPUTS OUTPUTS CONFIG; do eval \"p=\\$FERRY_${v}_DIR; "
        "q=\\$VH_${v}_DIR\"; "
        "echo \"$v $p $(cat $p/marker) $q $(cat $q/marker)\"; done; "
        "for n in repository inputs outputs config; do echo \"ferry/$n $(cat /ferry/$n/marker) "
        "valohai/$n $(cat /valohai/$n/marker)\"; done; "
        "echo \"pwd $(pwd)\"; echo \"my $MY_VAR\"; "
        "q=$(cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us 2>/dev/null || cut -d' ' -f1 "
        "/sys/fs/cgroup/cpu.max); "
        "m=$(cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat "
        "/sys/fs/cgroup/memory.max); "
        "echo \"quota $q\"; echo \"memory $m\"; "
        "echo written > $FERRY_OUTPUTS_DIR/out.txt; %s",
        wait_go);
    const char *env[] = {"MY_VAR=my value", "FERRY_OUTPUTS_DIR=/wrong", "NONAME", NULL};
    ferry_run_spec spec = ferry_test_run_spec(&d, IMAGE, script);
    spec.env = env;
    spec.valohai_aliases = 1;
    ferry_test_run_result r = {0};
    ferry_run *run = NULL;
    ferry_error_detail err;
    CHECK_INT(start_run(inst, &spec, &r, &run, &err), 0);
    CHECK_INT(ferry_test_wait_for(&r.got_output, RUN_MS), 0);
    for (int i = 0; i < 100 && (r.out == NULL || strstr(r.out, "ready\n") == NULL); i++)
        ferry_test_loop_for(50);
    /* The daemon's view while it runs. */
    json_t *j = inspect_execution(d.id);
    CHECK(j != NULL);
    json_t *labels = json_object_get(json_object_get(j, "Config"), "Labels");
    CHECK_STR(json_string_value(json_object_get(labels, "ferry.execution")), d.id);
    CHECK_STR(json_string_value(json_object_get(labels, "ferry.role")), "run");
    CHECK(json_string_value(json_object_get(labels, "ferry.owner")) != NULL);
    json_t *hc = json_object_get(j, "HostConfig");
    CHECK_INT(json_integer_value(json_object_get(hc, "NanoCpus")), 1500000000);
    CHECK_INT(json_integer_value(json_object_get(hc, "Memory")), 96 << 20);
    CHECK_INT(json_integer_value(json_object_get(hc, "MemorySwap")), 96 << 20);
    CHECK(json_is_true(json_object_get(hc, "Init")));
    CHECK_STR(json_string_value(json_object_get(json_object_get(j, "Config"), "WorkingDir")),
              "/valohai/repository");
    json_decref(j);
    let_go(&d);
    CHECK_INT(ferry_test_wait_for(&r.exited, RUN_MS), 0);
    const char *want = "REPOSITORY /ferry/repository repository /valohai/repository repository\n"
                       "INPUTS /ferry/inputs inputs /valohai/inputs inputs\n"
                       "OUTPUTS /ferry/outputs outputs /valohai/outputs outputs\n"
                       "CONFIG /ferry/config config /valohai/config config\n"
                       "ferry/repository repository valohai/repository repository\n"
                       "ferry/inputs inputs valohai/inputs inputs\n"
                       "ferry/outputs outputs valohai/outputs outputs\n"
                       "ferry/config config valohai/config config\n"
                       "pwd /valohai/repository\n"
                       "my my value\n"
                       "quota 150000\n";
    CHECK(r.out != NULL && strncmp(r.out, want, strlen(want)) == 0);
    CHECK_CONTAINS(r.out, "memory 100663296\n");
    if (r.out == NULL || strncmp(r.out, want, strlen(want)) != 0)
        show("setup", &r);
    char *written = ferry_asprintf("%s/out.txt", d.outputs);
    CHECK(file_contains(written, "written"));
    free(written);
    CHECK_INT(r.exit_code, 0);

    /* Without aliases: no /valohai, no VH_*; the working directory is
     * /ferry/repository; per-run limits win over the settings. */
    free(script);
    script = ferry_asprintf("echo \"vh ${VH_OUTPUTS_DIR:-unset} $(ls -d /valohai 2>&1 | "
                            "grep -c 'No such')\"; pwd; cat /sys/fs/cgroup/memory/"
                            "memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max");
    spec = ferry_test_run_spec(&d, IMAGE, script);
    spec.memory_bytes = 64 << 20;
    CHECK_INT(run_script(inst, &spec, &r, RUN_MS), 0);
    CHECK_STR(r.out, "vh unset 1\n/ferry/repository\n67108864\n");
    free(script);
    ferry_test_run_result_reset(&r);
    ferry_test_exec_dirs_free(&d);
    ferry_test_instance_free(inst);
}

static void test_network(void)
{
    ferry_test_exec_dirs d = ferry_test_exec_dirs_make("network");
    ferry_test_run_result r = {0};
    ferry_run_spec spec = ferry_test_run_spec(&d, IMAGE, "ls /sys/class/net | sort | tr '\\n' ' '");
    const char *none[] = {"docker_network", "none", NULL};
    ferry_plugin_instance *inst = instance(none);
    if (inst != NULL) {
        CHECK_INT(run_script(inst, &spec, &r, RUN_MS), 0);
        CHECK_STR(r.out, "lo ");
        ferry_test_instance_free(inst);
    }
    inst = instance(NULL); /* Docker's default: the bridge, eth0 */
    if (inst != NULL) {
        CHECK_INT(run_script(inst, &spec, &r, RUN_MS), 0);
        CHECK_STR(r.out, "eth0 lo ");
        ferry_test_instance_free(inst);
    }
    ferry_test_run_result_reset(&r);
    ferry_test_exec_dirs_free(&d);
}

/* The daemon here has no GPU runtime: the start fails with its words, and
 * the container is removed. The request body itself: test_docker_body. */
static void test_gpus(ferry_plugin_instance *inst)
{
    ferry_test_exec_dirs d = ferry_test_exec_dirs_make("gpus");
    ferry_test_run_result r = {0};
    ferry_run_spec spec = ferry_test_run_spec(&d, IMAGE, "echo never");
    spec.gpus = "0,1";
    CHECK_INT(run_script(inst, &spec, &r, RUN_MS), 0);
    CHECK_INT(r.exit_code, -1);
    CHECK_CONTAINS(r.reason, "could not start: ");
    CHECK_CONTAINS(r.reason, "could not select device driver");
    CHECK_CONTAINS(r.reason, "gpu");
    CHECK_INT(count_containers(d.id), 0);
    /* Not a GPU list: refused before anything runs. */
    spec.gpus = "0;rm -rf /";
    ferry_run *run = NULL;
    ferry_error_detail err;
    CHECK_INT(start_run(inst, &spec, &r, &run, &err), FERRY_EINVAL);
    CHECK_CONTAINS(err.message, "GPU");
    ferry_test_run_result_reset(&r);
    ferry_test_exec_dirs_free(&d);
}

static void test_oom(ferry_plugin_instance *inst)
{
    ferry_test_exec_dirs d = ferry_test_exec_dirs_make("oom");
    ferry_test_run_result r = {0};
    /* busybox tail keeps the last lines of a file without newlines: all of
     * /dev/zero. The shell lives on a second after the kill: dockerd marks
     * OOMKilled from the cgroup's event, which can come after the exit of a
     * container that ends at once (seen once under load in CI). */
    ferry_run_spec spec =
        ferry_test_run_spec(&d, IMAGE, "echo hogging; tail /dev/zero; sleep 1; echo survived");
    spec.memory_bytes = 24 << 20;
    CHECK_INT(run_script(inst, &spec, &r, 60000), 0);
    CHECK_STR(r.reason, "oom-killed");
    CHECK_CONTAINS(r.out, "hogging");
    CHECK_INT(count_containers(d.id), 0);
    ferry_test_run_result_reset(&r);
    ferry_test_exec_dirs_free(&d);
}

/* A script that ignores SIGTERM ends after the grace, with "stopped"; the
 * container is gone. A grace under a second is honoured to the
 * millisecond, not rounded to Docker's whole seconds. */
static void test_stop(ferry_plugin_instance *inst)
{
    const ferry_runtime_ops *ops = ops_of(inst);
    void *st = ferry_plugin_instance_state(inst);
    ferry_test_exec_dirs d = ferry_test_exec_dirs_make("stop");
    ferry_test_run_result r = {0};
    ferry_run *run = NULL;
    ferry_error_detail err;
    ferry_run_spec spec =
        ferry_test_run_spec(&d, IMAGE, "trap '' TERM; echo started; sleep 100; echo no");
    int graces[] = {1500, 300};
    for (int i = 0; i < 2; i++) {
        CHECK_INT(start_run(inst, &spec, &r, &run, &err), 0);
        CHECK_INT(ferry_test_wait_for(&r.got_output, RUN_MS), 0);
        uint64_t t0 = ferry_mono_ms();
        CHECK_INT(ops->stop(st, run, graces[i]), 0);
        CHECK_INT(r.exited, 0); /* never inside stop */
        CHECK_INT(ferry_test_wait_for(&r.exited, 10000 + graces[i]), 0);
        uint64_t took = r.exited_at - t0;
        fprintf(stderr, "stop with grace %d ms: exited after %llu ms\n", graces[i],
                (unsigned long long)took);
        CHECK(took >= (uint64_t)graces[i] - 50 && took < (uint64_t)graces[i] + 3000);
        CHECK_STR(r.reason, "stopped");
        CHECK_INT(r.exit_code, 128 + SIGKILL);
        CHECK_STR(r.out, "started\n");
        ferry_test_loop_for(200);
        CHECK_INT(r.exited, 1);
        CHECK_INT(count_containers(d.id), 0);
    }

    /* A script that honours SIGTERM (through the init) ends at once. */
    spec = ferry_test_run_spec(&d, IMAGE, "echo up; sleep 100");
    CHECK_INT(start_run(inst, &spec, &r, &run, &err), 0);
    CHECK_INT(ferry_test_wait_for(&r.got_output, RUN_MS), 0);
    uint64_t t0 = ferry_mono_ms();
    CHECK_INT(ops->stop(st, run, 10000), 0);
    CHECK_INT(ferry_test_wait_for(&r.exited, 10000), 0);
    CHECK(r.exited_at - t0 < 3000);
    CHECK_STR(r.reason, "stopped");
    CHECK_INT(r.exit_code, 128 + SIGTERM);

    /* A stop right after start, before any container exists. */
    spec = ferry_test_run_spec(&d, IMAGE, "echo never");
    CHECK_INT(start_run(inst, &spec, &r, &run, &err), 0);
    CHECK_INT(ops->stop(st, run, 1000), 0);
    CHECK_INT(r.exited, 0);
    CHECK_INT(ferry_test_wait_for(&r.exited, 10000), 0);
    CHECK_STR(r.reason, "stopped");
    CHECK_INT(r.exit_code, -1);
    CHECK(r.out == NULL);
    ferry_test_loop_for(300);
    CHECK_INT(count_containers(d.id), 0);
    CHECK_INT(ops->stop(st, NULL, 0), FERRY_ESTATE);
    ferry_test_run_result_reset(&r);
    ferry_test_exec_dirs_free(&d);
}

/* Whatever fails, the container goes. */
static void test_removed_after_errors(ferry_plugin_instance *inst)
{
    ferry_test_exec_dirs d = ferry_test_exec_dirs_make("errors");
    ferry_test_run_result r = {0};
    ferry_run_spec spec = ferry_test_run_spec(&d, IMAGE, "echo never");
    spec.shell = "/nonexistent/shell";
    CHECK_INT(run_script(inst, &spec, &r, RUN_MS), 0);
    CHECK_INT(r.exit_code, -1);
    CHECK_CONTAINS(r.reason, "could not start: /nonexistent/shell: no such file in image");
    CHECK_INT(count_containers(d.id), 0);

    spec = ferry_test_run_spec(&d, IMAGE, "#!/nonexistent/interpreter\necho never\n");
    CHECK_INT(run_script(inst, &spec, &r, RUN_MS), 0);
    CHECK_INT(r.exit_code, -1);
    CHECK_CONTAINS(r.reason, "/nonexistent/interpreter: no such file in image");
    CHECK_INT(count_containers(d.id), 0);

    /* A mount source that is not there: the daemon refuses the create. */
    spec = ferry_test_run_spec(&d, IMAGE, "echo never");
    spec.inputs_dir = "/nonexistent/inputs";
    CHECK_INT(run_script(inst, &spec, &r, RUN_MS), 0);
    CHECK_INT(r.exit_code, -1);
    CHECK_CONTAINS(r.reason, "could not start: creating the container: ");
    CHECK_CONTAINS(r.reason, "/nonexistent/inputs");
    CHECK_INT(count_containers(d.id), 0);

    /* The spec's own mistakes fail start() at once. */
    spec = ferry_test_run_spec(&d, NULL, "echo never");
    ferry_run *run = NULL;
    ferry_error_detail err;
    CHECK_INT(start_run(inst, &spec, &r, &run, &err), FERRY_EINVAL);
    CHECK_CONTAINS(err.message, "no image");
    spec = ferry_test_run_spec(&d, "bad image name!", "echo never");
    CHECK_INT(start_run(inst, &spec, &r, &run, &err), FERRY_EINVAL);
    CHECK_CONTAINS(err.message, "could not start: 'bad image name!' is not an image reference");
    ferry_test_run_result_reset(&r);
    ferry_test_exec_dirs_free(&d);
}

/* ------------------------------------------------------------------------ */
/* Pulls                                                                    */

static void test_pull(ferry_plugin_instance *inst)
{
    char *image = ferry_asprintf("%s/ferry-test/pull:1", registry);
    ferry_test_exec_dirs d = ferry_test_exec_dirs_make("pull");
    ferry_test_run_result r = {0};
    ferry_run_spec spec = ferry_test_run_spec(&d, image, "cat /pulled-marker");
    spec.registry_server = registry;
    spec.registry_username = registry_user;
    spec.registry_password = registry_password;

    /* Wrong password: the registry's message; nothing runs. */
    remove_image(image);
    spec.registry_password = "wrong-password";
    CHECK_INT(run_script(inst, &spec, &r, 60000), 0);
    CHECK_INT(r.exit_code, -1);
    CHECK_CONTAINS(r.reason, "could not start: pulling ");
    CHECK_CONTAINS(r.reason, "unauthorized");
    CHECK(strstr(r.reason, "wrong-password") == NULL);
    CHECK(r.status == NULL || strstr(r.status, "wrong-password") == NULL);
    CHECK(!image_present(image));

    /* No credentials at all. */
    spec.registry_server = spec.registry_username = spec.registry_password = NULL;
    CHECK_INT(run_script(inst, &spec, &r, 60000), 0);
    CHECK_INT(r.exit_code, -1);
    CHECK_CONTAINS(r.reason, "no basic auth credentials");

    /* Credentials for another registry are not sent to this one. */
    spec.registry_server = "registry.example:5000";
    spec.registry_username = registry_user;
    spec.registry_password = registry_password;
    CHECK_INT(run_script(inst, &spec, &r, 60000), 0);
    CHECK_INT(r.exit_code, -1);
    CHECK_CONTAINS(r.status, "credentials are for registry.example:5000, not");
    CHECK_CONTAINS(r.reason, "no basic auth credentials");

    /* The right ones: pulled with progress on the status stream, then run. */
    spec.registry_server = registry;
    uint64_t t0 = ferry_mono_ms();
    CHECK_INT(run_script(inst, &spec, &r, 120000), 0);
    fprintf(stderr, "pull and run: %llu ms\n", (unsigned long long)(ferry_mono_ms() - t0));
    CHECK_INT(r.exit_code, 0);
    CHECK_STR(r.out, "pulled\n");
    char *pulling = ferry_asprintf("Pulling %s\n", image);
    CHECK_CONTAINS(r.status, pulling);
    CHECK_CONTAINS(r.status, "Pulling fs layer");
    CHECK_CONTAINS(r.status, "Pull complete");
    CHECK_CONTAINS(r.status, "Status: Downloaded newer image");
    CHECK(strstr(r.status, registry_password) == NULL);
    free(pulling);
    if (r.exit_code != 0)
        show("pull", &r);
    CHECK(image_present(image));

    /* Present now: no pull. */
    CHECK_INT(run_script(inst, &spec, &r, RUN_MS), 0);
    CHECK_INT(r.exit_code, 0);
    CHECK(r.status == NULL);

    /* An image the registry does not have. */
    char *missing = ferry_asprintf("%s/ferry-test/nonexistent:1", registry);
    spec = ferry_test_run_spec(&d, missing, "echo never");
    spec.registry_server = registry;
    spec.registry_username = registry_user;
    spec.registry_password = registry_password;
    CHECK_INT(run_script(inst, &spec, &r, 60000), 0);
    CHECK_INT(r.exit_code, -1);
    CHECK_CONTAINS(r.reason, "could not start: pulling ");
    CHECK_CONTAINS(r.reason, "manifest unknown");
    CHECK_INT(count_containers(d.id), 0);

    remove_image(image);
    free(missing);
    free(image);
    ferry_test_run_result_reset(&r);
    ferry_test_exec_dirs_free(&d);
}

static int status_has(ferry_test_run_result *r, const char *text)
{
    return r->status != NULL && strstr(r->status, text) != NULL;
}

/* Waits until the status stream says `text`. */
static int wait_status(ferry_test_run_result *r, const char *text, unsigned timeout_ms)
{
    for (unsigned waited = 0; waited < timeout_ms && !status_has(r, text) && !r->exited;
         waited += 10)
        ferry_test_loop_for(10);
    return status_has(r, text) ? 0 : -1;
}

/* A stop, and a fini, while the image is being pulled: the pull is
 * dropped, `exited` comes once (stop) or never (fini), nothing is left. */
static void test_pull_interrupted(void)
{
    char *image = ferry_asprintf("%s/ferry-test/pull:1", registry);
    ferry_test_exec_dirs d = ferry_test_exec_dirs_make("pull-stop");
    ferry_run_spec spec = ferry_test_run_spec(&d, image, "echo never");
    spec.registry_server = registry;
    spec.registry_username = registry_user;
    spec.registry_password = registry_password;
    ferry_test_run_result r = {0};
    ferry_run *run = NULL;
    ferry_error_detail err;
    ferry_plugin_instance *inst = instance(NULL);
    if (inst != NULL) {
        remove_image(image);
        CHECK_INT(start_run(inst, &spec, &r, &run, &err), 0);
        CHECK_INT(wait_status(&r, "Pulling ", 30000), 0);
        CHECK_INT(ops_of(inst)->stop(ferry_plugin_instance_state(inst), run, 5000), 0);
        CHECK_INT(ferry_test_wait_for(&r.exited, 10000), 0);
        CHECK_INT(r.exit_code, -1);
        CHECK_STR(r.reason, "stopped");
        CHECK(r.out == NULL);
        ferry_test_loop_for(200);
        CHECK_INT(r.exited, 1);
        CHECK_INT(count_containers(d.id), 0);
        ferry_test_instance_free(inst);
    }
    inst = instance(NULL);
    if (inst != NULL) {
        remove_image(image);
        CHECK_INT(start_run(inst, &spec, &r, &run, &err), 0);
        CHECK_INT(wait_status(&r, "Pulling ", 30000), 0);
        ferry_test_instance_free(inst);
        CHECK_INT(r.exited, 0);
        CHECK_INT(count_containers(d.id), 0);
    }
    remove_image(image);
    ferry_test_run_result_reset(&r);
    ferry_test_exec_dirs_free(&d);
    free(image);
}

/* ------------------------------------------------------------------------ */
/* Outputs of another user                                                  */

/* Whether uid can open `path` for reading (a child that drops to it). */
static int readable_as(const char *path, uid_t uid, gid_t gid)
{
    pid_t pid = fork();
    if (pid == 0) {
        if (setgroups(0, NULL) != 0 || setgid(gid) != 0 || setuid(uid) != 0)
            _exit(3);
        int fd = open(path, O_RDONLY);
        _exit(fd >= 0 ? 0 : 1);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

static void test_outputs_of_another_user(ferry_plugin_instance *inst)
{
    ferry_test_exec_dirs d = ferry_test_exec_dirs_make("outputs-user");
    /* The agent: uid 4242 here (the test runs as root), owner of its
     * execution folder. */
    const uid_t agent = 4242;
    CHECK_INT(chown(d.base, agent, agent), 0);
    CHECK_INT(chown(d.outputs, agent, agent), 0);
    chmod(d.base, 0700);
    ferry_test_run_result r = {0};
    ferry_run_spec spec =
        ferry_test_run_spec(&d, USER_IMAGE,
                            "umask 077; id -u; echo secret > $FERRY_OUTPUTS_DIR/model.bin; "
                            "mkdir $FERRY_OUTPUTS_DIR/sub; echo deep > "
                            "$FERRY_OUTPUTS_DIR/sub/deep.txt; chmod 000 "
                            "$FERRY_OUTPUTS_DIR/sub/deep.txt");
    CHECK_INT(run_script(inst, &spec, &r, 60000), 0);
    CHECK_STR(r.out, "1000\n");
    CHECK_INT(r.exit_code, 0);
    const char *files[] = {"model.bin", "sub", "sub/deep.txt"};
    for (int i = 0; i < 3; i++) {
        char *p = ferry_asprintf("%s/%s", d.outputs, files[i]);
        struct stat sb;
        CHECK_INT(stat(p, &sb), 0);
        CHECK_INT(sb.st_uid, agent);
        CHECK_INT(sb.st_gid, agent);
        CHECK(readable_as(p, agent, agent));
        free(p);
    }
    char *model = ferry_asprintf("%s/model.bin", d.outputs);
    CHECK(file_contains(model, "secret"));
    free(model);
    CHECK_INT(count_containers(d.id), 0); /* the helper is gone too */
    ferry_test_run_result_reset(&r);
    ferry_test_exec_dirs_free(&d);
}

/* ------------------------------------------------------------------------ */
/* cleanup and fini                                                         */

/* cleanup, to its end: the call's code when it failed, else the op's. */
static int run_cleanup(ferry_plugin_instance *inst, ferry_test_outcome *o)
{
    int rc =
        RUN_OP(inst, o, 60000, ops_of(inst)->cleanup(ferry_plugin_instance_state(inst), o->op));
    return rc < 0 ? rc : o->status;
}

/* A stopped container of IMAGE with these labels (JSON object text). */
static char *make_container(const char *labels)
{
    char *body =
        ferry_asprintf("{\"Image\":\"" IMAGE "\",\"Cmd\":[\"true\"],\"Labels\":%s}", labels);
    long status = 0;
    json_t *j = docker("POST", "/containers/create", body, &status);
    CHECK_INT(status, 201);
    char *id = ferry_strdup(json_string_value(json_object_get(j, "Id")));
    json_decref(j);
    free(body);
    return id;
}

static int container_exists(const char *id)
{
    char *path = ferry_asprintf("/containers/%s/json", id);
    long status = 0;
    json_decref(docker("GET", path, NULL, &status));
    free(path);
    return status == 200;
}

static unsigned long long proc_start(int pid)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    char *text = ferry_read_file(path, NULL);
    unsigned long long start = 0;
    char *p = text ? strrchr(text, ')') : NULL;
    for (int field = 2; p && field < 22; field++)
        p = strchr(p + 1, ' ');
    if (p)
        sscanf(p, " %llu", &start);
    free(text);
    return start;
}

static void test_cleanup(void)
{
    ferry_plugin_instance *inst = instance(NULL);
    if (inst == NULL)
        return;
    /* A run of this instance, going: cleanup leaves it. */
    ferry_test_exec_dirs d = ferry_test_exec_dirs_make("cleanup-live");
    ferry_test_run_result r = {0};
    ferry_run *run = NULL;
    ferry_error_detail err;
    ferry_run_spec spec = ferry_test_run_spec(&d, IMAGE, wait_go);
    CHECK_INT(start_run(inst, &spec, &r, &run, &err), 0);
    CHECK_INT(ferry_test_wait_for(&r.got_output, RUN_MS), 0);
    json_t *j = inspect_execution(d.id);
    const char *mine = json_string_value(
        json_object_get(json_object_get(json_object_get(j, "Config"), "Labels"), "ferry.owner"));
    char *owner = ferry_strdup(mine);
    json_decref(j);
    CHECK(owner != NULL);
    if (owner == NULL)
        owner = ferry_strdup("x/y/1/1/1");

    /* The owner label: host/boot/pid/start/instance. */
    char host[128], boot[16];
    long pid;
    unsigned long long start;
    unsigned n;
    CHECK_INT(sscanf(owner, "%127[^/]/%15[^/]/%ld/%llu/%u", host, boot, &pid, &start, &n), 5);
    CHECK_INT(pid, getpid());
    /* Leftovers: this instance's own (no run owns it), one of a process
     * that is gone, one of another boot, one without an owner. */
    char *own = ferry_asprintf("{\"ferry.execution\":\"left-1\",\"ferry.owner\":\"%s\"}", owner);
    char *dead = ferry_asprintf("{\"ferry.execution\":\"left-2\",\"ferry.owner\":"
                                "\"%s/%s/%ld/%llu/1\"}",
                                host, boot, (long)getpid(), start + 1);
    char *reboot = ferry_asprintf("{\"ferry.execution\":\"left-3\",\"ferry.owner\":"
                                  "\"%s/0000beef/%ld/%llu/1\"}",
                                  host, pid, start);
    /* Kept: another live process's (pid 1 is alive), another host's, and
     * containers that are not ferry's. */
    char *live = ferry_asprintf("{\"ferry.execution\":\"kept-1\",\"ferry.owner\":"
                                "\"%s/%s/1/%llu/1\"}",
                                host, boot, proc_start(1));
    char *other_host = ferry_asprintf("{\"ferry.execution\":\"kept-2\",\"ferry.owner\":"
                                      "\"elsewhere/%s/%ld/1/1\"}",
                                      boot, pid);
    char *ids[7] = {make_container(own),
                    make_container(dead),
                    make_container(reboot),
                    make_container("{\"ferry.execution\":\"left-4\"}"),
                    make_container(live),
                    make_container(other_host),
                    make_container("{\"other.label\":\"x\"}")};
    ferry_test_outcome o = {0};
    CHECK_INT(run_cleanup(inst, &o), 0);
    for (int i = 0; i < 4; i++) {
        CHECK(ids[i] && !container_exists(ids[i]));
        char short_id[16];
        snprintf(short_id, sizeof(short_id), "%.12s", ids[i] ? ids[i] : "");
        CHECK_CONTAINS(o.text, short_id);
    }
    for (int i = 4; i < 7; i++)
        CHECK(ids[i] && container_exists(ids[i]));
    CHECK_INT(count_containers(d.id), 1); /* the live run's */
    CHECK_INT(r.exited, 0);
    let_go(&d);
    CHECK_INT(ferry_test_wait_for(&r.exited, RUN_MS), 0);
    CHECK_INT(r.exit_code, 0);
    for (int i = 4; i < 7; i++) {
        char *path = ferry_asprintf("/containers/%s?force=1", ids[i]);
        json_decref(docker("DELETE", path, NULL, NULL));
        free(path);
    }
    for (int i = 0; i < 7; i++)
        free(ids[i]);
    ferry_test_outcome_reset(&o);
    free(own);
    free(dead);
    free(reboot);
    free(live);
    free(other_host);
    free(owner);
    ferry_test_run_result_reset(&r);
    ferry_test_exec_dirs_free(&d);

    /* Freeing the instance with a run going removes its container, and no
     * callback comes. */
    d = ferry_test_exec_dirs_make("fini");
    spec = ferry_test_run_spec(&d, IMAGE, wait_go);
    CHECK_INT(start_run(inst, &spec, &r, &run, &err), 0);
    CHECK_INT(ferry_test_wait_for(&r.got_output, RUN_MS), 0);
    CHECK_INT(count_containers(d.id), 1);
    ferry_test_instance_free(inst);
    CHECK_INT(r.exited, 0);
    CHECK_INT(count_containers(d.id), 0);
    ferry_test_run_result_reset(&r);
    ferry_test_exec_dirs_free(&d);

    /* cleanup without a daemon names the socket. */
    char *sock = ferry_test_tmp_path("no-daemon.sock");
    const char *pairs[] = {"docker_socket", sock, NULL};
    inst = instance_with(pairs, NULL);
    if (inst != NULL) {
        CHECK(run_cleanup(inst, &o) < 0);
        CHECK_CONTAINS(o.error.message, sock);
        ferry_test_outcome_reset(&o);
        ferry_test_instance_free(inst);
    }
    free(sock);
}

/* ------------------------------------------------------------------------ */
/* Setup                                                                    */

/* The services' variables from $FERRY_TEST_SERVICES/env, where the caller
 * did not set them. */
static void load_services_env(void)
{
    const char *dir = getenv("FERRY_TEST_SERVICES");
    char *path = ferry_asprintf("%s/env", dir ? dir : "/tmp/ferry-test-services");
    char *text = ferry_read_file(path, NULL);
    for (char *line = text, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        char *eq = strchr(line, '=');
        if (eq == NULL)
            continue;
        *eq = '\0';
        setenv(line, eq + 1, 0);
    }
    free(text);
    free(path);
}

static int services_ready(void)
{
    load_services_env();
    docker_socket = getenv("FERRY_TEST_DOCKER_SOCKET");
    registry = getenv("FERRY_TEST_REGISTRY");
    registry_user = getenv("FERRY_TEST_REGISTRY_USER");
    registry_password = getenv("FERRY_TEST_REGISTRY_PASSWORD");
    if (docker_socket == NULL || docker_socket[0] == '\0') {
        fprintf(stderr, "FAIL: FERRY_TEST_DOCKER_SOCKET is not set: start the test services "
                        "(tests/services/all.sh start) or set it to a dockerd socket\n");
        return 0;
    }
    long status = 0;
    json_decref(docker("GET", "/version", NULL, &status));
    if (status != 200) {
        fprintf(stderr,
                "FAIL: no Docker daemon answers at FERRY_TEST_DOCKER_SOCKET=%s "
                "(tests/services/all.sh start starts one)\n",
                docker_socket);
        return 0;
    }
    if (registry == NULL || registry_user == NULL || registry_password == NULL) {
        fprintf(stderr, "FAIL: FERRY_TEST_REGISTRY, _USER and _PASSWORD are not set: start the "
                        "test services (tests/services/all.sh start)\n");
        return 0;
    }
    const char *src = getenv("FERRY_SOURCE_DIR");
    char *cmd = ferry_asprintf("bash '%s/tests/plugins/docker_images.sh'", src ? src : ".");
    int rc = system(cmd);
    free(cmd);
    if (rc != 0) {
        fprintf(stderr, "FAIL: tests/plugins/docker_images.sh could not make the test images\n");
        return 0;
    }
    return 1;
}

int main(void)
{
    if (ferry_test_harness_init("test_local_docker", &ferry_test_failures) < 0)
        return 2;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (!services_ready()) {
        ferry_test_harness_close();
        return 1;
    }
    /* Not mkdtemp's 0700: users of the containers reach their mounts in it. */
    chmod(ferry_test_tmp(), 0755);

    test_bad_settings();
    test_missing_daemon();
    test_version_negotiation();
    ferry_plugin_instance *inst = instance(NULL);
    if (inst != NULL) {
        test_streams_and_codes(inst);
        test_burst(inst);
        test_gpus(inst);
        test_oom(inst);
        test_stop(inst);
        test_removed_after_errors(inst);
        test_pull(inst);
        test_outputs_of_another_user(inst);
        ferry_test_instance_free(inst);
    }
    test_pull_interrupted();
    test_container_setup();
    test_network();
    test_cleanup();

    ferry_test_harness_close();
    curl_global_cleanup();
    TEST_MAIN_END();
}
