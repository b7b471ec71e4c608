/* Store URL schemes (store ABI 1.3) from the loader to ferryd's inputs:
 * a store that declares a scheme is routed to, with the settings its
 * url_input gives each location's instance; a store built against ABI 1.2
 * (the shorter ops table) still loads and claims nothing; the loader
 * refuses schemes without url_input and malformed schemes; an input of a
 * scheme no loaded store claims, or of a store that is not the configured
 * one, gets a clear error.
 *
 * FERRY_TEST_SCHEME_DIR: the folder with the scheme-store fixtures
 * (tests/plugins/fixtures/scheme_store.c). */
#include "test.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "db.h"
#include "objinputs.h"
#include "util.h"

static ferryd d;
static const char *scheme_dir;

static char *fixture(const char *name)
{
    static char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s", scheme_dir, name);
    return path;
}

/* ---- the loader ---- */

static void test_refused(const char *file, const char *reason)
{
    ferry_plugin *p = NULL;
    char err[1024];
    CHECK_INT(ferry_plugin_load(fixture(file), &p, err, sizeof(err)), FERRY_EABI);
    CHECK(p == NULL);
    CHECK_CONTAINS(err, file);
    CHECK_CONTAINS(err, reason);
}

static void test_loader(void)
{
    const ferry_plugin *cur =
        ferry_plugin_registry_get(&d.plugins, FERRY_PLUGIN_STORE, "scheme-store");
    const ferry_plugin *old =
        ferry_plugin_registry_get(&d.plugins, FERRY_PLUGIN_STORE, "old-minor-store");
    CHECK(cur != NULL);
    CHECK(old != NULL);
    /* Refused by the scan, so not in the registry. */
    CHECK(ferry_plugin_registry_get(&d.plugins, FERRY_PLUGIN_STORE, "schemes-without-op") == NULL);
    CHECK(ferry_plugin_registry_get(&d.plugins, FERRY_PLUGIN_STORE, "bad-scheme-store") == NULL);
    if (cur == NULL || old == NULL)
        return;
    CHECK(cur->ops.store.url_schemes != NULL && cur->ops.store.url_input != NULL);
    /* Built against 1.2: what lies behind its struct_size reads as NULL. */
    CHECK_INT(old->desc.abi_minor, 2);
    CHECK(old->ops.store.head != NULL && old->ops.store.presign != NULL);
    CHECK(old->ops.store.url_schemes == NULL);
    CHECK(old->ops.store.url_input == NULL);

    CHECK(ferry_plugin_registry_store_for_url(&d.plugins, "fixture://a/b", NULL) == cur);
    CHECK(ferry_plugin_registry_store_for_url(&d.plugins, "FX+Alt://a/b", "old-minor-store") ==
          cur);
    CHECK_STR(ferry_plugin_store_scheme(cur, "FX+Alt://a/b"), "fx+alt");
    CHECK(ferry_plugin_store_scheme(cur, "fixtures://a/b") == NULL);
    CHECK(ferry_plugin_store_scheme(cur, "fixture:/a/b") == NULL);
    CHECK(ferry_plugin_store_scheme(old, "fixture://a/b") == NULL);
    CHECK(ferry_plugin_registry_store_for_url(&d.plugins, "gs://a/b", NULL) == NULL);
    CHECK(ferry_plugin_registry_store_for_url(&d.plugins, "no scheme", NULL) == NULL);

    test_refused("schemes-without-op.so",
                 "store declares url_schemes but op url_input is missing (NULL)");
    test_refused("bad-scheme-store.so", "url_schemes: \"Fixture\" is not a lower-case URL scheme");
}

/* ---- which URLs are a store's ---- */

static void test_is_url(void)
{
    CHECK_INT(ferry_objinputs_is_url("fixture://loc/k"), 1);
    CHECK_INT(ferry_objinputs_is_url("gs://bucket/k"), 1); /* unclaimed: refused, not passed on */
    CHECK_INT(ferry_objinputs_is_url("https://example.com/a.csv"), 0);
    CHECK_INT(ferry_objinputs_is_url("HTTP://example.com/a.csv"), 0);
    CHECK_INT(ferry_objinputs_is_url("file:///data/a.csv"), 0);
    CHECK_INT(ferry_objinputs_is_url("a.csv"), 0);
    CHECK_INT(ferry_objinputs_is_url("a/b://c"), 0);
    CHECK_INT(ferry_objinputs_is_url(NULL), 0);
}

/* ---- the check at submission ---- */

typedef struct outcome {
    int calls, rc;
    json_t *objects;
    char err[1024];
} outcome;

static void checked(ferryd *dd, void *arg, int rc, const json_t *objects, const char *err)
{
    (void)dd;
    outcome *o = arg;
    o->calls++;
    o->rc = rc;
    o->objects = objects ? json_deep_copy(objects) : NULL;
    snprintf(o->err, sizeof(o->err), "%s", err ? err : "");
}

/* ferry_objinputs_check of `inputs` (JSON text); its rc, and `o` once
 * done has run. */
static int check(const char *inputs, outcome *o, char *err, size_t cap)
{
    memset(o, 0, sizeof(*o));
    err[0] = '\0';
    json_t *in = json_loads(inputs, 0, NULL);
    int rc = ferry_objinputs_check(&d, in, checked, o, err, cap);
    json_decref(in);
    for (int i = 0; rc == 0 && o->calls == 0 && i < 100; i++)
        uv_run(d.loop, UV_RUN_ONCE);
    return rc;
}

static void test_routed(void)
{
    outcome o;
    char err[1024];
    CHECK_INT(check("{\"data\": [\"fixture://loc/a/b.bin\", \"https://example.com/x\"],"
                    " \"more\": [\"FX+ALT://loc/c\", \"fixture://other/dd\"]}",
                    &o, err, sizeof(err)),
              0);
    CHECK_INT(o.calls, 1);
    CHECK_INT(o.rc, 0);
    char *text = o.objects ? json_dumps(o.objects, JSON_SORT_KEYS | JSON_COMPACT) : NULL;
    /* Each instance has the store's settings with its location and
     * without the prefix, as the plugin's url_input said. */
    CHECK_STR(text, "{\"FX+ALT://loc/c\":{\"etag\":\"loc|-|hi\",\"size\":1},"
                    "\"fixture://loc/a/b.bin\":{\"etag\":\"loc|-|hi\",\"size\":7},"
                    "\"fixture://other/dd\":{\"etag\":\"other|-|hi\",\"size\":2}}");
    free(text);
    json_decref(o.objects);
    /* One instance per location, whatever the scheme's spelling or alias. */
    CHECK_INT((long long)d.input_stores.len, 2);
    CHECK(ferry_map_get(&d.input_stores, "scheme-store loc") != NULL);
    CHECK(ferry_map_get(&d.input_stores, "scheme-store other") != NULL);

    CHECK_INT(check("{\"data\": [\"https://example.com/x\", \"file:///y\"]}", &o, err, sizeof(err)),
              1);
    CHECK_INT(o.calls, 0);

    CHECK_INT(check("{\"data\": [\"fixture://loc/missing\"]}", &o, err, sizeof(err)), 0);
    CHECK_INT(o.calls, 1);
    CHECK_INT(o.rc, FERRY_ENOENT);
    CHECK_STR(o.err, "input 'data': fixture://loc/missing does not exist");
    json_decref(o.objects);
}

/* Refused at once, `err` is the answer, `done` never runs. */
static void refused(const char *inputs, const char *expected)
{
    outcome o;
    char err[1024];
    CHECK_INT(check(inputs, &o, err, sizeof(err)), FERRY_EINVAL);
    CHECK_INT(o.calls, 0);
    CHECK_STR(err, expected);
}

static void test_refusals(void)
{
    refused("{\"data\": [\"gs://b/k\"]}",
            "input 'data': gs://b/k cannot be read: no loaded store plugin reads gs:// URLs (the "
            "worker itself fetches only http, https and file URLs)");
    refused("{\"data\": [\"fixture://Loc/k\"]}",
            "input 'data': fixture://Loc/k is not fixture://LOCATION/KEY");
    /* The plugin let it through; the host's own check of keys does not. */
    refused("{\"data\": [\"fixture://loc/../k\"]}",
            "input 'data': fixture://loc/../k is not a URL of a key of safe path segments");
    refused("{\"data\": [\"fixture://broken/k\"]}",
            "input 'data': fixture://broken/k cannot be read: scheme-store: location broken is "
            "not usable");
    CHECK(ferry_map_get(&d.input_stores, "scheme-store broken") == NULL);

    /* Inputs are read with the configured store's settings: only that
     * store's scheme can be read. */
    static char other[] = "old-minor-store";
    char *was = d.cfg.store_plugin;
    d.cfg.store_plugin = other;
    refused("{\"data\": [\"fixture://new/k\"]}",
            "input 'data': fixture://new/k cannot be read: fixture:// inputs are read with the "
            "store's credentials and need the scheme-store store; this ferryd's store is "
            "old-minor-store");
    d.cfg.store_plugin = was;
    CHECK(ferry_map_get(&d.input_stores, "scheme-store new") == NULL);
}

/* ---- the work spec ---- */

static void test_work_spec(void)
{
    json_t *objects =
        json_pack("{s:{s:i, s:s}}", "fixture://loc/a/b.bin", "size", 7, "etag", "loc|-|hi");
    ferry_objinputs_save(&d, "exec-1", objects);
    json_decref(objects);
    ferry_db_commit(&d);
    json_t *f = ferry_objinputs_file(&d, "exec-1", "fixture://loc/a/b.bin", "b.bin");
    char *text = json_dumps(f, JSON_SORT_KEYS | JSON_COMPACT);
    CHECK_STR(text, "{\"etag\":\"loc|-|hi\",\"filename\":\"b.bin\",\"size\":7,"
                    "\"source\":\"fixture://loc/a/b.bin\","
                    "\"url\":\"http://presigned.invalid/loc/a/b.bin?GET&3600\"}");
    free(text);
    json_decref(f);

    f = ferry_objinputs_file(&d, "exec-1", "gs://b/k", "k");
    CHECK_CONTAINS(json_string_value(json_object_get(f, "error")),
                   "no loaded store plugin reads gs:// URLs");
    CHECK(json_object_get(f, "url") == NULL);
    json_decref(f);
}

int main(void)
{
    scheme_dir = getenv("FERRY_TEST_SCHEME_DIR");
    if (scheme_dir == NULL) {
        fprintf(stderr, "FERRY_TEST_SCHEME_DIR is not set\n");
        return 1;
    }
    char tmpl[] = "/tmp/ferry-objinputs.XXXXXX";
    CHECK(mkdtemp(tmpl) != NULL);
    snprintf(d.data_dir, sizeof(d.data_dir), "%s", tmpl);
    d.loop = uv_default_loop();
    ferry_config_init(&d.cfg);
    free(d.cfg.store_plugin);
    d.cfg.store_plugin = ferry_strdup("scheme-store");
    ferry_settings_set(d.cfg.store_settings, "plugin", "scheme-store");
    ferry_settings_set(d.cfg.store_settings, "greeting", "hi");
    ferry_settings_set(d.cfg.store_settings, "prefix", "configured/");
    ferry_map_init(&d.input_stores);
    char err[512];
    CHECK_INT(ferry_db_open(&d, err, sizeof(err)), 0);
    CHECK_INT(ferry_plugin_registry_scan(&d.plugins, scheme_dir), 0);

    test_loader();
    test_is_url();
    test_routed();
    test_refusals();
    test_work_spec();

    ferry_objinputs_close(&d);
    ferry_db_close(&d);
    uv_run(d.loop, UV_RUN_DEFAULT); /* the instances and the database finish closing */
    ferry_plugin_registry_free(&d.plugins);
    ferry_config_free(&d.cfg);
    ferry_rmtree(tmpl);
    TEST_MAIN_END();
}
