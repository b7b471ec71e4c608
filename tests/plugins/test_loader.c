/* The plugin loader and host API: broken plugins are refused with a message
 * that names the file and the reason, a registry scan keeps the good ones,
 * ops tables are zero-extended, and op completion / queue_work / instance
 * teardown keep their promises (done once, later, on the loop thread).
 *
 * FERRY_TEST_FIXTURE_DIR: the folder with the broken and fixture plugins. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "plugin.h"
#include "unit/test.h"

static const char *fixture_dir;

static char *fixture(const char *name)
{
    static char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s", fixture_dir, name);
    return path;
}

/* ------------------------------------------------------------------------ */
/* Refusals                                                                 */

typedef struct refusal {
    const char *file;
    int code;
    const char *reason; /* must appear in the message */
} refusal;

static const refusal refusals[] = {
    {"wrong_major.so", FERRY_EABI, "ABI major version 2, this host supports 1"},
    {"short_descriptor.so", FERRY_EABI, "descriptor struct_size 16 is too small"},
    {"missing_get_file.so", FERRY_EABI, "required store op get_file is missing"},
    {"missing_launch.so", FERRY_EABI, "required compute op launch is missing"},
    {"missing_stop.so", FERRY_EABI, "required runtime op stop is missing"},
    {"no_symbol.so", FERRY_EABI, "no ferry_plugin_v1 symbol"},
    {"short_ops.so", FERRY_EABI, "store ops struct_size 16 is too small"},
    {"null_descriptor.so", FERRY_EABI, "returned a NULL descriptor"},
    {"unknown_kind.so", FERRY_EABI, "unknown plugin kind 7"},
    {"null_ops.so", FERRY_EABI, "no ops table"},
};

static void test_refusals(void)
{
    for (size_t i = 0; i < sizeof(refusals) / sizeof(refusals[0]); i++) {
        const refusal *r = &refusals[i];
        char err[1024] = "";
        ferry_plugin *p = (ferry_plugin *)1;
        int rc = ferry_plugin_load(fixture(r->file), &p, err, sizeof(err));
        CHECK_INT(rc, r->code);
        CHECK(p == NULL);
        CHECK_CONTAINS(err, r->file);
        CHECK_CONTAINS(err, r->reason);
    }
}

static void test_not_a_library(void)
{
    char dir[] = "/tmp/ferry-loader-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/garbage.so", dir);
    FILE *f = fopen(path, "w");
    fputs("not an ELF file\n", f);
    fclose(f);
    char err[1024] = "";
    ferry_plugin *p = NULL;
    CHECK_INT(ferry_plugin_load(path, &p, err, sizeof(err)), FERRY_EABI);
    CHECK_CONTAINS(err, "garbage.so");
    CHECK_CONTAINS(err, "cannot load");

    snprintf(path, sizeof(path), "%s/absent.so", dir);
    CHECK_INT(ferry_plugin_load(path, &p, err, sizeof(err)), FERRY_ENOENT);
    CHECK_CONTAINS(err, "absent.so");
    snprintf(path, sizeof(path), "%s/garbage.so", dir);
    unlink(path);
    rmdir(dir);
}

/* ------------------------------------------------------------------------ */
/* A good plugin: zero-extension, registry                                  */

static void test_zero_extended_copy(void)
{
    char err[1024] = "";
    ferry_plugin *p = NULL;
    CHECK_INT(ferry_plugin_load(fixture("fixture-store.so"), &p, err, sizeof(err)), 0);
    if (p == NULL) {
        fprintf(stderr, "load failed: %s\n", err);
        return;
    }
    CHECK_INT(p->desc.kind, FERRY_PLUGIN_STORE);
    CHECK_STR(p->desc.name, "fixture-store");
    CHECK(p->ops.store.put_file != NULL);
    CHECK(p->ops.store.get_file != NULL);
    /* Set in the plugin's table, but past its struct_size. */
    CHECK(p->ops.store.head == NULL);
    CHECK(p->ops.store.list == NULL);
    CHECK(p->ops.store.presign == NULL);
    CHECK(p->ops.store.local_path == NULL);
    ferry_plugin_unload(p);
}

static void test_registry(void)
{
    ferry_plugin_registry reg = {0};
    CHECK_INT(ferry_plugin_registry_scan(&reg, fixture_dir), 0);
    /* Ten broken files are refused; of the two copies of fixture-store the
     * first in name order wins. */
    CHECK_INT(reg.n, 1);
    const ferry_plugin *p = ferry_plugin_registry_get(&reg, FERRY_PLUGIN_STORE, "fixture-store");
    CHECK(p != NULL);
    if (p != NULL)
        CHECK_CONTAINS(p->path, "/fixture-store.so");
    CHECK(ferry_plugin_registry_get(&reg, FERRY_PLUGIN_COMPUTE, "fixture-store") == NULL);
    CHECK(ferry_plugin_registry_get(&reg, FERRY_PLUGIN_STORE, "wrong-major") == NULL);
    ferry_plugin_registry_free(&reg);
    CHECK_INT(reg.n, 0);

    ferry_plugin_registry none = {0};
    CHECK_INT(ferry_plugin_registry_scan(&none, "/nonexistent/ferry/plugins"), FERRY_ENOENT);
    CHECK_INT(none.n, 0);
}

static void test_default_dir(void)
{
    char buf[PATH_MAX];
    setenv("FERRY_PLUGIN_DIR", "/opt/ferry-plugins", 1);
    CHECK_INT(ferry_plugin_default_dir(buf, sizeof(buf)), 0);
    CHECK_STR(buf, "/opt/ferry-plugins");
    unsetenv("FERRY_PLUGIN_DIR");
    CHECK_INT(ferry_plugin_default_dir(buf, sizeof(buf)), 0);
    char exe[PATH_MAX], want[PATH_MAX * 2];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    exe[n > 0 ? n : 0] = '\0';
    *strrchr(exe, '/') = '\0';
    snprintf(want, sizeof(want), "%s/../%s", exe, FERRY_PLUGIN_RELDIR);
    CHECK_STR(buf, want);
    CHECK_INT(ferry_plugin_default_dir(buf, 4), FERRY_ETOOBIG);
}

/* ------------------------------------------------------------------------ */
/* Host API, through fixture-store                                          */

typedef struct outcome {
    int calls;
    int status;
    int64_t size;
    char text[256];
    int has_error;
    ferry_error_detail error;
} outcome;

static void on_done(void *arg, int status, const ferry_op_result *r)
{
    outcome *o = arg;
    o->calls++;
    o->status = status;
    o->size = r->size;
    snprintf(o->text, sizeof(o->text), "%s", r->text ? r->text : "");
    o->has_error = r->error != NULL;
    if (r->error)
        o->error = *r->error;
}

typedef struct fixture_env {
    uv_loop_t loop;
    ferry_plugin *plugin;
    ferry_plugin_instance *inst;
} fixture_env;

static int fixture_open(fixture_env *fx)
{
    char err[1024];
    uv_loop_init(&fx->loop);
    if (ferry_plugin_load(fixture("fixture-store.so"), &fx->plugin, err, sizeof(err)) < 0) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    ferry_settings *s = ferry_settings_new(), *secrets = ferry_settings_new();
    ferry_settings_set(s, "greeting", "first");
    ferry_settings_set(s, "greeting", "hello"); /* replaces */
    ferry_settings_set(secrets, "token", "s3cret");
    ferry_error_detail e;
    int rc = ferry_plugin_instance_new(fx->plugin, &fx->loop, "test", s, secrets, &fx->inst, &e);
    ferry_settings_free(s); /* the instance keeps its own copies */
    ferry_settings_free(secrets);
    return rc;
}

static void fixture_close(fixture_env *fx)
{
    ferry_plugin_instance_free(fx->inst);
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    CHECK_INT(uv_loop_close(&fx->loop), 0); /* every handle was closed */
    ferry_plugin_unload(fx->plugin);
}

static int put(fixture_env *fx, const char *key, outcome *o)
{
    memset(o, 0, sizeof(*o));
    ferry_op *op = ferry_op_new(fx->inst, on_done, o);
    int rc = fx->plugin->ops.store.put_file(ferry_plugin_instance_state(fx->inst), key,
                                            "/some/path", op);
    if (rc < 0)
        ferry_op_abandon(op);
    return rc;
}

static int get(fixture_env *fx, const char *key, outcome *o)
{
    memset(o, 0, sizeof(*o));
    ferry_op *op = ferry_op_new(fx->inst, on_done, o);
    int rc = fx->plugin->ops.store.get_file(ferry_plugin_instance_state(fx->inst), key, "/x", op);
    if (rc < 0)
        ferry_op_abandon(op);
    return rc;
}

static void test_completion(void)
{
    fixture_env fx;
    CHECK_INT(fixture_open(&fx), 0);
    outcome sync, twice, nodetail, config, v1, missing, worker, bad;

    CHECK_INT(put(&fx, "sync", &sync), 0);
    CHECK_INT(sync.calls, 0); /* never inside the plugin's call */
    CHECK_INT(put(&fx, "twice", &twice), 0);
    CHECK_INT(put(&fx, "nodetail", &nodetail), 0);
    CHECK_INT(put(&fx, "config", &config), 0);
    CHECK_INT(put(&fx, "zero-size-result", &v1), 0);
    CHECK_INT(get(&fx, "missing", &missing), 0);
    CHECK_INT(get(&fx, "any", &worker), 0);
    CHECK_INT(put(&fx, "", &bad), FERRY_EINVAL); /* abandoned: done never runs */
    uv_run(&fx.loop, UV_RUN_DEFAULT);

    CHECK_INT(sync.calls, 1);
    CHECK_INT(sync.status, 0);
    CHECK_INT(sync.size, 42);
    CHECK_STR(sync.text, "sync:/some/path"); /* deep copy: the plugin scribbled on its own */
    CHECK(!sync.has_error);

    CHECK_INT(twice.calls, 1);
    CHECK_INT(twice.status, 0);
    CHECK_STR(twice.text, "first");

    CHECK_INT(nodetail.calls, 1);
    CHECK_INT(nodetail.status, FERRY_EPROVIDER);
    CHECK(nodetail.has_error);
    CHECK_INT(nodetail.error.code, FERRY_EPROVIDER);

    CHECK_STR(config.text, "hello|s3cret");
    CHECK_STR(v1.text, "v1 layout");
    CHECK_INT(v1.size, 7);

    CHECK_INT(missing.calls, 1);
    CHECK_INT(missing.status, FERRY_ENOENT);
    CHECK(missing.has_error);
    CHECK_INT(missing.error.code, FERRY_ENOENT);
    CHECK_STR(missing.error.provider_code, "NoSuchKey");
    CHECK_STR(missing.error.message, "no such key: missing");

    CHECK_STR(worker.text, "worker"); /* queue_work ran off the loop thread */
    CHECK_INT(bad.calls, 0);
    fixture_close(&fx);
}

/* Freeing an instance cancels what the plugin still holds, waits for work in
 * flight before fini (the fixture aborts otherwise), and runs each `done`
 * exactly once. */
static void test_free_with_ops_in_flight(void)
{
    fixture_env fx;
    CHECK_INT(fixture_open(&fx), 0);
    outcome held, slow, queued[4];
    CHECK_INT(put(&fx, "hold", &held), 0);
    CHECK_INT(get(&fx, "slow", &slow), 0);
    for (int i = 0; i < 4; i++)
        CHECK_INT(get(&fx, "slow", &queued[i]), 0);
    ferry_plugin_instance_free(fx.inst);
    ferry_plugin_instance_free(fx.inst); /* a second free is a no-op */
    uv_run(&fx.loop, UV_RUN_DEFAULT);
    CHECK_INT(held.calls, 1);
    CHECK_INT(held.status, FERRY_ECANCELED);
    CHECK_INT(held.error.code, FERRY_ECANCELED);
    CHECK_INT(slow.calls, 1);
    CHECK(slow.status == 0 || slow.status == FERRY_ECANCELED);
    for (int i = 0; i < 4; i++)
        CHECK_INT(queued[i].calls, 1);
    CHECK_INT(uv_loop_close(&fx.loop), 0);
    ferry_plugin_unload(fx.plugin);
}

static void test_init_failure(void)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    char err[1024];
    ferry_plugin *p = NULL;
    CHECK_INT(ferry_plugin_load(fixture("fixture-store.so"), &p, err, sizeof(err)), 0);
    ferry_settings *s = ferry_settings_new();
    ferry_settings_set(s, "fail", "1");
    ferry_plugin_instance *inst = (ferry_plugin_instance *)1;
    ferry_error_detail e;
    CHECK_INT(ferry_plugin_instance_new(p, &loop, NULL, s, NULL, &inst, &e), FERRY_ECONFIG);
    CHECK(inst == NULL);
    CHECK_INT(e.code, FERRY_ECONFIG);
    CHECK_STR(e.message, "fixture-store: told to fail");
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_INT(uv_loop_close(&loop), 0);
    ferry_settings_free(s);
    ferry_plugin_unload(p);
}

int main(void)
{
    fixture_dir = getenv("FERRY_TEST_FIXTURE_DIR");
    if (fixture_dir == NULL) {
        fprintf(stderr, "FERRY_TEST_FIXTURE_DIR is not set\n");
        return 2;
    }
    ferry_log_set_name("test_loader");
    test_refusals();
    test_not_a_library();
    test_zero_extended_copy();
    test_registry();
    test_default_dir();
    test_completion();
    test_free_with_ops_in_flight();
    test_init_failure();
    TEST_MAIN_END();
}
