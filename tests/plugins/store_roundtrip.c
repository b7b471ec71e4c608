/* Loads one store plugin file and puts it through a round trip on a real
 * loop: put a file, head it, get it back byte for byte, get a missing key.
 *
 * usage: store_roundtrip PLUGIN.so [KEY=VALUE setting...]
 * Exit 0 when every step holds. Used on the SDK example built out of tree. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "plugin.h"
#include "util.h"
#include "unit/test.h"

typedef struct outcome {
    int calls, status;
    int64_t size;
    char message[512];
} outcome;

static void on_done(void *arg, int status, const ferry_op_result *r)
{
    outcome *o = arg;
    o->calls++;
    o->status = status;
    o->size = r->size;
    snprintf(o->message, sizeof(o->message), "%s", r->error ? r->error->message : "");
}

typedef int (*file_op)(void *, const char *, const char *, ferry_op *);

static outcome run_file_op(ferry_plugin_instance *inst, uv_loop_t *loop, file_op fn,
                           const char *key, const char *path)
{
    outcome o = {0};
    ferry_op *op = ferry_op_new(inst, on_done, &o);
    int rc = fn(ferry_plugin_instance_state(inst), key, path, op);
    if (rc < 0) {
        ferry_op_abandon(op);
        o.calls = 1;
        o.status = rc;
        return o;
    }
    uv_run(loop, UV_RUN_DEFAULT);
    return o;
}

static void roundtrip(const ferry_plugin *p, ferry_plugin_instance *inst, uv_loop_t *loop)
{
    char dir[] = "/tmp/ferry-roundtrip-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char *src = ferry_asprintf("%s/src.bin", dir), *dst = ferry_asprintf("%s/dst.bin", dir);
    char data[70000];
    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (char)(i * 7 + i / 251);
    CHECK_INT(ferry_write_file(src, data, sizeof(data)), 0);

    outcome put = run_file_op(inst, loop, p->ops.store.put_file, "dir/object.bin", src);
    CHECK_INT(put.calls, 1);
    CHECK_INT(put.status, 0);
    if (p->ops.store.head != NULL) {
        outcome head = {0};
        ferry_op *op = ferry_op_new(inst, on_done, &head);
        CHECK_INT(p->ops.store.head(ferry_plugin_instance_state(inst), "dir/object.bin", op), 0);
        uv_run(loop, UV_RUN_DEFAULT);
        CHECK_INT(head.status, 0);
        CHECK_INT(head.size, (int64_t)sizeof(data));
    }
    outcome get = run_file_op(inst, loop, p->ops.store.get_file, "dir/object.bin", dst);
    CHECK_INT(get.status, 0);
    size_t len = 0;
    char *back = ferry_read_file(dst, &len);
    CHECK(back != NULL && len == sizeof(data) && memcmp(back, data, len) == 0);
    free(back);

    outcome missing = run_file_op(inst, loop, p->ops.store.get_file, "no/such.bin", dst);
    CHECK_INT(missing.calls, 1);
    CHECK_INT(missing.status, FERRY_ENOENT);
    CHECK(missing.message[0] != '\0');
    unlink(src);
    unlink(dst);
    rmdir(dir);
    free(src);
    free(dst);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s PLUGIN.so [KEY=VALUE...]\n", argv[0]);
        return 2;
    }
    char err[1024];
    ferry_plugin *p = NULL;
    if (ferry_plugin_load(argv[1], &p, err, sizeof(err)) < 0) {
        fprintf(stderr, "refused: %s\n", err);
        return 1;
    }
    CHECK_INT(p->desc.kind, FERRY_PLUGIN_STORE);
    ferry_settings *s = ferry_settings_new();
    for (int i = 2; i < argc; i++) {
        char *eq = strchr(argv[i], '=');
        if (eq != NULL) {
            *eq = '\0';
            ferry_settings_set(s, argv[i], eq + 1);
        }
    }
    uv_loop_t loop;
    uv_loop_init(&loop);
    ferry_plugin_instance *inst = NULL;
    ferry_error_detail e;
    int rc = ferry_plugin_instance_new(p, &loop, "roundtrip", s, NULL, &inst, &e);
    CHECK_INT(rc, 0);
    if (rc == 0) {
        roundtrip(p, inst, &loop);
        ferry_plugin_instance_free(inst);
    } else {
        fprintf(stderr, "init: %s\n", e.message);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_INT(uv_loop_close(&loop), 0);
    ferry_settings_free(s);
    printf("%s: %s\n", p->desc.name, ferry_test_failures ? "FAILED" : "round trip ok");
    ferry_plugin_unload(p);
    TEST_MAIN_END();
}
