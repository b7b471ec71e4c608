/* ferry-conformance: store plugins (sdk/include/ferry/store.h).
 *
 * Every key the checks write lives under one fresh prefix,
 * "ferry-conformance-<random>/", and is removed at the end when the plugin
 * can remove: pointing the checks at a real bucket leaves it as it was.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "conformance.h"
#include "util.h"

#define FERRY__BIG (1024 * 1024)
#define FERRY__N_PARALLEL 8

typedef struct ferry__store {
    ferry_conf_inst *ci;
    const ferry_store_ops *ops;
    void *st;
    const char *dir;
    char prefix[64];
    int n_files; /* names scratch files apart */
} ferry__store;

/* One object the checks keep track of. */
typedef struct ferry__object {
    const char *name; /* under the prefix */
    char *data;
    size_t len;
} ferry__object;

static char *ferry__key(const ferry__store *s, const char *name)
{
    return ferry_asprintf("%s%s", s->prefix, name);
}

/* A fresh scratch path: nothing is there yet. */
static char *ferry__scratch(ferry__store *s, const char *what)
{
    return ferry_asprintf("%s/%s-%d", s->dir, what, ++s->n_files);
}

/* ------------------------------------------------------------------------ */
/* Ops, started and waited for                                              */

static ferry_conf_op *ferry__put(ferry__store *s, const char *key, const char *path)
{
    ferry_conf_op *o = ferry_conf_op_begin(s->ci, "put_file \"%s\"", key);
    ferry_conf_op_started(o, s->ops->put_file(s->st, key, path, o->op));
    ferry_conf_op_wait(o, FERRY_CONF_OP_TIMEOUT_MS);
    return o;
}

static ferry_conf_op *ferry__get(ferry__store *s, const char *key, const char *path)
{
    ferry_conf_op *o = ferry_conf_op_begin(s->ci, "get_file \"%s\"", key);
    ferry_conf_op_started(o, s->ops->get_file(s->st, key, path, o->op));
    ferry_conf_op_wait(o, FERRY_CONF_OP_TIMEOUT_MS);
    return o;
}

static ferry_conf_op *ferry__head(ferry__store *s, const char *key)
{
    ferry_conf_op *o = ferry_conf_op_begin(s->ci, "head \"%s\"", key);
    ferry_conf_op_started(o, s->ops->head(s->st, key, o->op));
    ferry_conf_op_wait(o, FERRY_CONF_OP_TIMEOUT_MS);
    return o;
}

static ferry_conf_op *ferry__list(ferry__store *s, const char *prefix)
{
    ferry_conf_op *o = ferry_conf_op_begin(s->ci, "list \"%s\"", prefix);
    ferry_conf_op_started(o, s->ops->list(s->st, prefix, o->op));
    ferry_conf_op_wait(o, FERRY_CONF_OP_TIMEOUT_MS);
    return o;
}

static ferry_conf_op *ferry__remove(ferry__store *s, const char *key)
{
    ferry_conf_op *o = ferry_conf_op_begin(s->ci, "remove \"%s\"", key);
    ferry_conf_op_started(o, s->ops->remove(s->st, key, o->op));
    ferry_conf_op_wait(o, FERRY_CONF_OP_TIMEOUT_MS);
    return o;
}

/* A check on an op's outcome: prints the outcome when it fails. */
static int ferry__check_op(const ferry_conf_op *o, int pass, const char *what)
{
    char buf[768];
    if (!ferry_conf_check(pass, "store: %s", what))
        ferry_conf_diag("%s", ferry_conf_op_outcome(o, buf, sizeof(buf)));
    return pass;
}

/* Puts `obj` from a scratch file; 1 when the put completed with its size. */
static int ferry__put_object(ferry__store *s, const ferry__object *obj, const char *what)
{
    char *src = ferry__scratch(s, "src");
    ferry_write_file(src, obj->data, obj->len);
    char *key = ferry__key(s, obj->name);
    ferry_conf_op *o = ferry__put(s, key, src);
    int ok = ferry__check_op(o, ferry_conf_op_result(o) == 0 && o->size == (int64_t)obj->len, what);
    unlink(src);
    free(src);
    free(key);
    return ok;
}

/* Gets `obj` back into `dst` (a scratch file when NULL) and compares. */
static int ferry__get_object(ferry__store *s, const ferry__object *obj, const char *dst,
                             const char *what)
{
    char *path = dst ? ferry_strdup(dst) : ferry__scratch(s, "dst");
    char *key = ferry__key(s, obj->name);
    ferry_conf_op *o = ferry__get(s, key, path);
    int same = ferry_conf_op_result(o) == 0 && ferry_conf_file_equals(path, obj->data, obj->len);
    int ok = ferry__check_op(o, same, what);
    if (!ok && ferry_conf_op_result(o) == 0)
        ferry_conf_diag("the local file does not hold the %zu bytes put", obj->len);
    unlink(path);
    free(path);
    free(key);
    return ok;
}

/* ------------------------------------------------------------------------ */
/* Checks                                                                   */

static void ferry__check_roundtrips(ferry__store *s, ferry__object *objs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char what[256];
        snprintf(what, sizeof(what),
                 "put_file of a %zu-byte file under \"%s\" completes with 0 "
                 "and result size %zu",
                 objs[i].len, objs[i].name, objs[i].len);
        ferry__put_object(s, &objs[i], what);
    }
    for (size_t i = 0; i < n; i++) {
        char what[256];
        snprintf(what, sizeof(what), "get_file of \"%s\" gives back the same %zu bytes",
                 objs[i].name, objs[i].len);
        ferry__get_object(s, &objs[i], NULL, what);
    }
}

/* get_file "created/truncated": a longer local file must not keep a tail. */
static void ferry__check_truncate(ferry__store *s, const ferry__object *small)
{
    char *dst = ferry__scratch(s, "longer");
    char *junk = ferry_conf_pattern(3 * small->len + 4096, 99);
    ferry_write_file(dst, junk, 3 * small->len + 4096);
    ferry__get_object(s, small, dst, "get_file over a longer local file truncates it");
    free(junk);
    free(dst);
}

static void ferry__check_overwrite(ferry__store *s, ferry__object *obj)
{
    free(obj->data);
    obj->len = 777;
    obj->data = ferry_conf_pattern(obj->len, 7);
    if (ferry__put_object(s, obj, "put_file over an existing key completes with the new size"))
        ferry__get_object(s, obj, NULL, "after an overwrite, get_file gives the new bytes");
}

static void ferry__check_head(ferry__store *s, const ferry__object *big)
{
    if (s->ops->head == NULL) {
        ferry_conf_skip("head is not provided", "store: head gives the object's size");
        return;
    }
    char *key = ferry__key(s, big->name);
    ferry_conf_op *o = ferry__head(s, key);
    ferry__check_op(o, ferry_conf_op_result(o) == 0 && o->size == (int64_t)big->len,
                    "head gives the object's size");
    free(key);
    key = ferry__key(s, "no/such/key");
    o = ferry__head(s, key);
    ferry__check_op(o, ferry_conf_op_result(o) == FERRY_ENOENT,
                    "head of a missing key completes with FERRY_ENOENT");
    free(key);
}

/* ------------------------------------------------------------------------ */
/* list                                                                     */

/* -1: not a JSON array of {"key": string, "size": integer}; else the
 * number of entries outside `prefix`. */
static int ferry__listing_shape(json_t *arr, const char *prefix)
{
    if (!json_is_array(arr))
        return -1;
    int outside = 0;
    size_t i;
    json_t *e;
    json_array_foreach(arr, i, e)
    {
        json_t *k = json_object_get(e, "key"), *sz = json_object_get(e, "size");
        if (!json_is_string(k) || !json_is_integer(sz))
            return -1;
        if (strncmp(json_string_value(k), prefix, strlen(prefix)) != 0)
            outside++;
    }
    return outside;
}

/* The size listed for `key`, or -1 when it is not listed. */
static int64_t ferry__listed_size(json_t *arr, const char *key)
{
    size_t i;
    json_t *e;
    json_array_foreach(arr, i, e)
    {
        const char *k = json_string_value(json_object_get(e, "key"));
        if (k != NULL && strcmp(k, key) == 0)
            return (int64_t)json_integer_value(json_object_get(e, "size"));
    }
    return -1;
}

static json_t *ferry__list_json(ferry__store *s, const char *prefix, ferry_conf_op **op)
{
    *op = ferry__list(s, prefix);
    if (ferry_conf_op_result(*op) != 0 || (*op)->text == NULL)
        return NULL;
    return json_loads((*op)->text, 0, NULL);
}

static int ferry__listing_holds(ferry__store *s, json_t *arr, const ferry__object *objs, size_t n)
{
    int all = 1;
    for (size_t i = 0; i < n; i++) {
        char *key = ferry__key(s, objs[i].name);
        int64_t size = ferry__listed_size(arr, key);
        if (size != (int64_t)objs[i].len) {
            ferry_conf_diag("\"%s\": listed size %lld, expected %zu", key, (long long)size,
                            objs[i].len);
            all = 0;
        }
        free(key);
    }
    return all;
}

static void ferry__check_list(ferry__store *s, const ferry__object *objs, size_t n)
{
    if (s->ops->list == NULL) {
        ferry_conf_skip("list is not provided", "store: list holds every key with its size");
        return;
    }
    ferry_conf_op *o;
    json_t *arr = ferry__list_json(s, s->prefix, &o);
    int outside = ferry__listing_shape(arr, s->prefix);
    if (ferry__check_op(o, outside >= 0, "list completes with a JSON array of {key, size}")) {
        ferry_conf_check(outside == 0, "store: list leaves out keys outside the prefix");
        /* The failing keys print their own diagnostics. */
        ferry_conf_check(ferry__listing_holds(s, arr, objs, n),
                         "store: list holds every key with its size");
    }
    json_decref(arr);
    char *none = ferry__key(s, "nothing-here/");
    arr = ferry__list_json(s, none, &o);
    ferry__check_op(o, json_is_array(arr) && json_array_size(arr) == 0,
                    "list of a prefix nothing matches is an empty array");
    json_decref(arr);
    free(none);
}

/* ------------------------------------------------------------------------ */
/* Missing keys, remove, unsafe keys                                        */

static void ferry__check_get_missing(ferry__store *s)
{
    char *key = ferry__key(s, "no/such/key.bin");
    char *dst = ferry__scratch(s, "missing");
    ferry_conf_op *o = ferry__get(s, key, dst);
    ferry__check_op(o, ferry_conf_op_result(o) == FERRY_ENOENT,
                    "get_file of a missing key completes with FERRY_ENOENT");
    ferry_conf_check(!ferry_conf_exists(dst),
                     "store: a get_file of a missing key leaves no file at the local path");
    unlink(dst);
    free(dst);
    free(key);
}

static void ferry__check_remove(ferry__store *s, const ferry__object *obj)
{
    if (s->ops->remove == NULL) {
        ferry_conf_skip("remove is not provided", "store: remove, then the key is gone");
        return;
    }
    char *key = ferry__key(s, obj->name);
    ferry_conf_op *o = ferry__remove(s, key);
    ferry__check_op(o, ferry_conf_op_result(o) == 0, "remove of an existing key completes with 0");
    if (s->ops->head != NULL) {
        o = ferry__head(s, key);
        ferry__check_op(o, ferry_conf_op_result(o) == FERRY_ENOENT,
                        "after remove, head completes with FERRY_ENOENT");
    }
    char *dst = ferry__scratch(s, "removed");
    o = ferry__get(s, key, dst);
    ferry__check_op(o, ferry_conf_op_result(o) == FERRY_ENOENT,
                    "after remove, get_file completes with FERRY_ENOENT");
    if (s->ops->list != NULL) {
        json_t *arr = ferry__list_json(s, s->prefix, &o);
        ferry__check_op(o, json_is_array(arr) && ferry__listed_size(arr, key) < 0,
                        "after remove, list leaves the key out");
        json_decref(arr);
    }
    unlink(dst);
    free(dst);
    free(key);
}

/* Refused: a negative return, or a completion with a negative status. */
static int ferry__refused(const ferry_conf_op *o)
{
    int r = ferry_conf_op_result(o);
    return r < 0;
}

static void ferry__check_unsafe_key(ferry__store *s, const char *key, const char *src)
{
    char *dst = ferry__scratch(s, "unsafe");
    ferry_conf_op *put = ferry__put(s, key, src);
    ferry_conf_op *get = ferry__get(s, key, dst);
    int refused = ferry__refused(put) && ferry__refused(get);
    char path[PATH_MAX];
    if (s->ops->local_path != NULL)
        refused = refused && s->ops->local_path(s->st, key, path, sizeof(path)) < 0;
    char buf[768];
    if (!ferry_conf_check(refused, "store: unsafe key \"%s\" is refused by put_file, get_file%s",
                          key, s->ops->local_path ? " and local_path" : "")) {
        ferry_conf_diag("%s", ferry_conf_op_outcome(put, buf, sizeof(buf)));
        ferry_conf_diag("%s", ferry_conf_op_outcome(get, buf, sizeof(buf)));
    }
    unlink(dst);
    free(dst);
}

/* store.h says the host checks keys first; a store that maps keys to paths
 * or URLs must not rely on that alone (defence in depth), so the checks
 * hand these straight to the plugin. */
static void ferry__check_unsafe_keys(ferry__store *s)
{
    static const char *const keys[] = {"../ferry-conformance-escape", "/ferry-conformance-abs",
                                       "ferry-conformance-a/../ferry-conformance-b"};
    char *src = ferry__scratch(s, "unsafe-src");
    ferry_write_file(src, "x", 1);
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        ferry__check_unsafe_key(s, keys[i], src);
    unlink(src);
    free(src);
}

static void ferry__check_missing_source(ferry__store *s)
{
    char *key = ferry__key(s, "from-nowhere.bin");
    char *src = ferry_asprintf("%s/no-such-file", s->dir);
    ferry_conf_op *o = ferry__put(s, key, src);
    ferry__check_op(o, ferry__refused(o), "put_file of a missing local file fails");
    free(src);
    free(key);
}

/* ------------------------------------------------------------------------ */
/* Synchronous ops                                                          */

static void ferry__check_local_path(ferry__store *s, const ferry__object *obj)
{
    if (s->ops->local_path == NULL) {
        ferry_conf_skip("local_path is not provided", "store: local_path names the object's file");
        return;
    }
    char *key = ferry__key(s, obj->name);
    char path[PATH_MAX];
    uint64_t t0 = ferry_mono_ms();
    int rc = s->ops->local_path(s->st, key, path, sizeof(path));
    ferry_conf_note_call("local_path", ferry_mono_ms() - t0);
    if (!ferry_conf_check(rc == 0 && ferry_conf_file_equals(path, obj->data, obj->len),
                          "store: local_path names a file holding the object"))
        ferry_conf_diag("local_path returned %s, path \"%s\"", ferry_err_name(rc),
                        rc == 0 ? path : "");
    free(key);
    key = ferry__key(s, "no/such/key.bin");
    rc = s->ops->local_path(s->st, key, path, sizeof(path));
    if (!ferry_conf_check(rc == FERRY_ENOENT, "store: local_path of a missing key is FERRY_ENOENT"))
        ferry_conf_diag("local_path returned %s", ferry_err_name(rc));
    free(key);
    /* A canary behind the capacity the plugin is told. */
    char small[24];
    memset(small, '#', sizeof(small));
    key = ferry__key(s, obj->name);
    rc = s->ops->local_path(s->st, key, small, 8);
    int canary = small[8] == '#' && small[sizeof(small) - 1] == '#';
    if (!ferry_conf_check(rc < 0 && canary,
                          "store: local_path refuses a buffer too small, writing within it"))
        ferry_conf_diag("returned %s%s", ferry_err_name(rc), canary ? "" : "; wrote past path_cap");
    free(key);
}

static int ferry__is_url(const char *s)
{
    return strncmp(s, "https://", 8) == 0 || strncmp(s, "http://", 7) == 0;
}

static void ferry__check_presign(ferry__store *s, const ferry__object *obj)
{
    if (s->ops->presign == NULL) {
        ferry_conf_skip("presign is not provided", "store: presign gives GET and PUT URLs");
        return;
    }
    char *key = ferry__key(s, obj->name);
    char get[4096] = "", put[4096] = "";
    ferry_error_detail e1, e2;
    memset(&e1, 0, sizeof(e1));
    memset(&e2, 0, sizeof(e2));
    uint64_t t0 = ferry_mono_ms();
    int rg = s->ops->presign(s->st, "GET", key, 300, get, sizeof(get), &e1);
    int rp = s->ops->presign(s->st, "PUT", key, 300, put, sizeof(put), &e2);
    ferry_conf_note_call("presign", ferry_mono_ms() - t0);
    if (!ferry_conf_check(rg == 0 && rp == 0 && ferry__is_url(get) && ferry__is_url(put),
                          "store: presign gives http(s) URLs for GET and PUT"))
        ferry_conf_diag("GET: %s %s (%s); PUT: %s %s (%s)", ferry_err_name(rg), get, e1.message,
                        ferry_err_name(rp), put, e2.message);
    char small[24];
    memset(small, '#', sizeof(small));
    int rs = s->ops->presign(s->st, "GET", key, 300, small, 8, &e1);
    int canary = small[8] == '#' && small[sizeof(small) - 1] == '#';
    if (!ferry_conf_check(rs < 0 && canary,
                          "store: presign refuses a buffer too small, writing within it"))
        ferry_conf_diag("returned %s%s", ferry_err_name(rs), canary ? "" : "; wrote past url_cap");
    free(key);
}

/* ------------------------------------------------------------------------ */
/* Several at once; freeing with an op in flight                            */

static const char *ferry__settings_none(void *settings, const char *name)
{
    (void)settings, (void)name;
    return NULL;
}

static void ferry__settings_count(void *settings, const char *name, const char *value)
{
    (void)name, (void)value;
    ++*(int *)settings;
}

/* ABI 1.3: a store that claims URL schemes refuses a URL of its scheme that
 * names nothing ("s3://"), naming the form it expects, and changes no
 * setting on the way (the host answers "input ...: <url> is not <form>"). */
static void ferry__check_url_input(ferry__store *s)
{
    if (s->ops->url_schemes == NULL) {
        ferry_conf_skip("url_schemes is not provided",
                        "store: url_input refuses a URL that names nothing");
        return;
    }
    for (const char *const *scheme = s->ops->url_schemes; *scheme; scheme++) {
        char url[64];
        snprintf(url, sizeof(url), "%s://", *scheme);
        int sets = 0;
        ferry_store_url in = {.struct_size = sizeof(in),
                              .settings = &sets,
                              .get = ferry__settings_none,
                              .set = ferry__settings_count};
        ferry_error_detail err = {.struct_size = sizeof(err)};
        uint64_t t0 = ferry_mono_ms();
        int rc = s->ops->url_input(url, &in, &err);
        ferry_conf_note_call("url_input", ferry_mono_ms() - t0);
        if (!ferry_conf_check(rc == FERRY_EINVAL && err.message[0] != '\0' && sets == 0,
                              "store: url_input refuses \"%s\" with FERRY_EINVAL and the form "
                              "it expects",
                              url))
            ferry_conf_diag("url_input returned %s, message \"%s\", %d setting(s) changed",
                            ferry_err_name(rc), err.message, sets);
    }
}

static void ferry__check_parallel(ferry__store *s)
{
    ferry__object objs[FERRY__N_PARALLEL];
    ferry_conf_op *ops[FERRY__N_PARALLEL];
    char *srcs[FERRY__N_PARALLEL];
    char names[FERRY__N_PARALLEL][32];
    for (int i = 0; i < FERRY__N_PARALLEL; i++) {
        snprintf(names[i], sizeof(names[i]), "parallel/%d.bin", i);
        objs[i] = (ferry__object){names[i], ferry_conf_pattern(100000 + i, 1000 + i), 100000 + i};
        srcs[i] = ferry__scratch(s, "par");
        ferry_write_file(srcs[i], objs[i].data, objs[i].len);
        char *key = ferry__key(s, names[i]);
        ops[i] = ferry_conf_op_begin(s->ci, "put_file \"%s\"", key);
        ferry_conf_op_started(ops[i], s->ops->put_file(s->st, key, srcs[i], ops[i]->op));
        free(key);
    }
    int all = 1;
    for (int i = 0; i < FERRY__N_PARALLEL; i++) {
        ferry_conf_op_wait(ops[i], FERRY_CONF_OP_TIMEOUT_MS);
        all = all && ferry_conf_op_result(ops[i]) == 0 && ops[i]->size == (int64_t)objs[i].len;
    }
    char buf[768];
    if (!ferry_conf_check(all, "store: %d put_file ops at once all complete with their sizes",
                          FERRY__N_PARALLEL))
        for (int i = 0; i < FERRY__N_PARALLEL; i++)
            ferry_conf_diag("%s", ferry_conf_op_outcome(ops[i], buf, sizeof(buf)));
    int same = 1;
    for (int i = 0; i < FERRY__N_PARALLEL && all; i++) {
        char *dst = ferry__scratch(s, "par-dst");
        char *key = ferry__key(s, names[i]);
        ferry_conf_op *o = ferry__get(s, key, dst);
        same = same && ferry_conf_op_result(o) == 0 &&
               ferry_conf_file_equals(dst, objs[i].data, objs[i].len);
        if (s->ops->remove != NULL)
            ferry__remove(s, key);
        unlink(dst);
        free(dst);
        free(key);
    }
    if (all)
        ferry_conf_check(same, "store: after puts at once, each object holds its own bytes");
    for (int i = 0; i < FERRY__N_PARALLEL; i++) {
        unlink(srcs[i]);
        free(srcs[i]);
        free(objs[i].data);
    }
}

/* A second instance with the same settings, freed while a put runs: the
 * op still completes exactly once, and the object is all there or absent
 * (put_file is atomic). */
static void ferry__check_free_in_flight(ferry__store *s, const ferry_settings *settings)
{
    ferry_conf_inst *ci = ferry_conf_instance_new(settings);
    if (!ferry_conf_check(ci->inst != NULL, "store: a second instance with the same settings "
                                            "inits alongside the first"))
        return;
    ferry__object obj = {"in-flight.bin", ferry_conf_pattern(FERRY__BIG, 5), FERRY__BIG};
    char *src = ferry__scratch(s, "in-flight");
    ferry_write_file(src, obj.data, obj.len);
    char *key = ferry__key(s, obj.name);
    const ferry_store_ops *ops = &ferry_conf_plugin()->ops.store;
    ferry_conf_op *o = ferry_conf_op_begin(ci, "put_file \"%s\" (instance freed)", key);
    ferry_conf_op_started(o, ops->put_file(ferry_plugin_instance_state(ci->inst), key, src, o->op));
    ferry_conf_instance_free(ci);
    int once = o->rc < 0 || (o->done == 1 && o->completions <= 1);
    if (!ferry_conf_check(once, "store: freeing the instance with a put_file in flight "
                                "completes the op exactly once"))
        ferry_conf_diag("%d completion(s) by the plugin, %d done", o->completions, o->done);
    char *dst = ferry__scratch(s, "in-flight-dst");
    ferry_conf_op *get = ferry__get(s, key, dst);
    int r = ferry_conf_op_result(get);
    ferry__check_op(get,
                    r == FERRY_ENOENT || (r == 0 && ferry_conf_file_equals(dst, obj.data, obj.len)),
                    "a put interrupted by freeing left the whole object or none");
    if (r == 0 && s->ops->remove != NULL)
        ferry__remove(s, key);
    unlink(dst);
    unlink(src);
    free(dst);
    free(src);
    free(key);
    free(obj.data);
}

static void ferry__cleanup(ferry__store *s, ferry__object *objs, size_t n)
{
    if (s->ops->remove == NULL) {
        printf("# remove is not provided: the keys under %s stay in the store\n", s->prefix);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        char *key = ferry__key(s, objs[i].name);
        ferry__remove(s, key);
        free(key);
    }
}

void ferry_conf_store(ferry_conf_inst *ci, const ferry_settings *settings, const char *dir)
{
    ferry__store s = {.ci = ci,
                      .ops = &ferry_conf_plugin()->ops.store,
                      .st = ferry_plugin_instance_state(ci->inst),
                      .dir = dir};
    char hex[17];
    ferry_random_hex(hex, 8);
    snprintf(s.prefix, sizeof(s.prefix), "ferry-conformance-%s/", hex);
    printf("# keys under %s\n", s.prefix);
    ferry__object objs[] = {
        {"empty.bin", ferry_conf_pattern(0, 1), 0},
        {"sub/dir/big.bin", ferry_conf_pattern(FERRY__BIG, 2), FERRY__BIG},
        {"small.txt", ferry_conf_pattern(1000, 3), 1000},
    };
    size_t n = sizeof(objs) / sizeof(objs[0]);
    ferry__check_roundtrips(&s, objs, n);
    ferry__check_truncate(&s, &objs[2]);
    ferry__check_overwrite(&s, &objs[2]);
    ferry__check_head(&s, &objs[1]);
    ferry__check_list(&s, objs, n);
    ferry__check_local_path(&s, &objs[2]);
    ferry__check_presign(&s, &objs[2]);
    ferry__check_url_input(&s);
    ferry__check_get_missing(&s);
    ferry__check_missing_source(&s);
    ferry__check_unsafe_keys(&s);
    ferry__check_parallel(&s);
    ferry__check_free_in_flight(&s, settings);
    ferry__check_remove(&s, &objs[1]);
    ferry__cleanup(&s, objs, n);
    for (size_t i = 0; i < n; i++)
        free(objs[i].data);
}
