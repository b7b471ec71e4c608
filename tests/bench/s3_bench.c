/* s3-storage throughput: put_file and get_file of one file, several times,
 * through the real loader on a real loop; prints each run and the median.
 *
 *   s3_bench PLUGIN_DIR SIZE_MIB RUNS [KEY=VALUE setting]...
 *
 * The settings name the server (bucket, endpoint, access_key_id,
 * secret_access_key, part_size...). Not a test: tests/bench/run and people
 * measuring call it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "plugin.h"
#include "util.h"

static uv_loop_t loop;

typedef struct outcome {
    int done;
    int status;
    ferry_error_detail error;
} outcome;

static void on_done(void *arg, int status, const ferry_op_result *r)
{
    outcome *o = arg;
    o->done = 1;
    o->status = status;
    if (r->error)
        o->error = *r->error;
}

static double run_op(ferry_plugin_instance *inst, int put, const char *key, const char *path)
{
    outcome o = {0};
    ferry_op *op = ferry_op_new(inst, on_done, &o);
    const ferry_store_ops *ops = &ferry_plugin_instance_plugin(inst)->ops.store;
    void *st = ferry_plugin_instance_state(inst);
    double t0 = ferry_now();
    int rc = put ? ops->put_file(st, key, path, op) : ops->get_file(st, key, path, op);
    if (rc < 0) {
        ferry_op_abandon(op);
        fprintf(stderr, "s3_bench: %s: %s\n", put ? "put" : "get", ferry_strerror(rc));
        exit(1);
    }
    while (!o.done)
        uv_run(&loop, UV_RUN_ONCE);
    if (o.status != 0) {
        fprintf(stderr, "s3_bench: %s: %s\n", put ? "put" : "get", o.error.message);
        exit(1);
    }
    return ferry_now() - t0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(*v), cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: s3_bench PLUGIN_DIR SIZE_MIB RUNS [KEY=VALUE]...\n");
        return 2;
    }
    ferry_log_set_level(FERRY_LOG_WARN);
    int mib = atoi(argv[2]), runs = atoi(argv[3]);
    if (mib <= 0 || runs <= 0 || runs > 100)
        return 2;
    ferry_settings *s = ferry_settings_new();
    for (int i = 4; i < argc; i++) {
        char *eq = strchr(argv[i], '=');
        if (eq == NULL)
            return 2;
        *eq = '\0';
        ferry_settings_set(s, argv[i], eq + 1);
    }
    uv_loop_init(&loop);
    ferry_plugin_registry reg;
    memset(&reg, 0, sizeof(reg));
    if (ferry_plugin_registry_scan(&reg, argv[1]) != 0)
        return 1;
    const ferry_plugin *p = ferry_plugin_registry_get(&reg, FERRY_PLUGIN_STORE, "s3-storage");
    ferry_plugin_instance *inst = NULL;
    ferry_error_detail err;
    if (p == NULL || ferry_plugin_instance_new(p, &loop, "bench", s, NULL, &inst, &err) != 0) {
        fprintf(stderr, "s3_bench: %s\n", p ? err.message : "no s3-storage plugin");
        return 1;
    }
    char dir[] = "/tmp/ferry-s3-bench-XXXXXX";
    if (mkdtemp(dir) == NULL)
        return 1;
    char *src = ferry_asprintf("%s/src", dir), *dst = ferry_asprintf("%s/dst", dir);
    size_t n = (size_t)mib << 20;
    char *data = ferry_xmalloc(n);
    for (size_t i = 0; i < n; i++)
        data[i] = (char)(i * 2654435761u >> 13);
    ferry_write_file(src, data, n);
    free(data);
    char hex[17];
    ferry_random_hex(hex, 8);
    char *key = ferry_asprintf("ferry-bench-%s.bin", hex);
    double puts[100], gets[100];
    for (int i = 0; i < runs; i++) {
        puts[i] = run_op(inst, 1, key, src);
        gets[i] = run_op(inst, 0, key, dst);
        unlink(dst);
        printf("run %d: put %.3f s (%.0f MiB/s), get %.3f s (%.0f MiB/s)\n", i + 1, puts[i],
               mib / puts[i], gets[i], mib / gets[i]);
    }
    double mp = median(puts, runs), mg = median(gets, runs);
    printf("median of %d, %d MiB: put %.3f s (%.0f MiB/s), get %.3f s (%.0f MiB/s)\n", runs, mib,
           mp, mib / mp, mg, mib / mg);
    outcome o = {0};
    ferry_op *op = ferry_op_new(inst, on_done, &o);
    if (p->ops.store.remove(ferry_plugin_instance_state(inst), key, op) < 0)
        ferry_op_abandon(op);
    else
        while (!o.done)
            uv_run(&loop, UV_RUN_ONCE);
    unlink(src);
    rmdir(dir);
    ferry_plugin_instance_free(inst);
    uv_run(&loop, UV_RUN_DEFAULT); /* the plugin's handles close before it is unloaded */
    ferry_plugin_registry_free(&reg);
    uv_loop_close(&loop);
    ferry_settings_free(s);
    free(src);
    free(dst);
    free(key);
    return 0;
}
