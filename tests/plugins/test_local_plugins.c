/* The three local plugins, loaded from the build's plugin folder through
 * the real loader and driven on a real uv loop: local-storage (files),
 * local-process (processes) and local (agent processes).
 *
 * FERRY_PLUGIN_DIR: the folder with local.so, local-process.so and
 * local-storage.so. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "log.h"
#include "plugin.h"
#include "util.h"
#include "unit/test.h"

static uv_loop_t loop;
static ferry_plugin_registry reg;
static char tmp[64]; /* scratch folder of this run */

/* ------------------------------------------------------------------------ */
/* Helpers                                                                  */

static char *tmp_path(const char *name)
{
    return ferry_asprintf("%s/%s", tmp, name);
}

static void on_timeout(uv_timer_t *t)
{
    *(int *)t->data = 1;
}

/* Runs the loop until *flag is set or timeout_ms pass; 0 when it was set. */
static int wait_for(int *flag, unsigned timeout_ms)
{
    int timed_out = 0;
    uv_timer_t timer;
    uv_timer_init(&loop, &timer);
    timer.data = &timed_out;
    uv_timer_start(&timer, on_timeout, timeout_ms, 0);
    while (!*flag && !timed_out)
        uv_run(&loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&timer, NULL);
    uv_run(&loop, UV_RUN_NOWAIT);
    return *flag ? 0 : -1;
}

static ferry_plugin_instance *instance(const char *name, ferry_plugin_kind kind,
                                       ferry_settings *settings)
{
    const ferry_plugin *p = ferry_plugin_registry_get(&reg, kind, name);
    CHECK(p != NULL);
    if (p == NULL)
        return NULL;
    ferry_plugin_instance *inst = NULL;
    ferry_error_detail err;
    int rc = ferry_plugin_instance_new(p, &loop, "test", settings, NULL, &inst, &err);
    if (rc < 0)
        fprintf(stderr, "%s: init: %s\n", name, err.message);
    CHECK_INT(rc, 0);
    ferry_settings_free(settings);
    return inst;
}

static void instance_free(ferry_plugin_instance *inst)
{
    ferry_plugin_instance_free(inst);
    uv_run(&loop, UV_RUN_DEFAULT);
}

static int process_alive(int pid)
{
    if (kill(pid, 0) != 0)
        return 0;
    /* A zombie nobody reaped (no init in a container) is dead for us. */
    char path[64], buf[512];
    snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return 0;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *paren = strrchr(buf, ')');
    return paren == NULL || paren[2] != 'Z';
}

static int read_pid(const char *path)
{
    char *text = ferry_read_file(path, NULL);
    int pid = text ? atoi(text) : 0;
    free(text);
    return pid;
}

typedef struct outcome {
    int calls;
    int status;
    int64_t size;
    char *text;
    char *instance_id;
    ferry_error_detail error;
} outcome;

static void outcome_reset(outcome *o)
{
    free(o->text);
    free(o->instance_id);
    memset(o, 0, sizeof(*o));
}

static void on_done(void *arg, int status, const ferry_op_result *r)
{
    outcome *o = arg;
    o->calls++;
    o->status = status;
    o->size = r->size;
    o->text = ferry_strdup(r->text);
    o->instance_id = ferry_strdup(r->instance_id);
    if (r->error)
        o->error = *r->error;
}

/* RUN_OP(inst, &outcome, timeout_ms, call): makes `the_op`, starts it with
 * `call` (an expression that passes the_op to a plugin op), abandons it if
 * the call fails synchronously, else runs the loop until `done`. Evaluates
 * to the call's return value. */
static ferry_op *the_op;

static void run_op_begin(ferry_plugin_instance *inst, outcome *o)
{
    outcome_reset(o);
    the_op = ferry_op_new(inst, on_done, o);
}

static int run_op_end(int rc, outcome *o, unsigned timeout_ms)
{
    if (rc < 0)
        ferry_op_abandon(the_op);
    else
        CHECK_INT(wait_for(&o->calls, timeout_ms), 0);
    the_op = NULL;
    return rc;
}

#define RUN_OP(inst, o, timeout_ms, call) run_op_end((run_op_begin(inst, o), (call)), o, timeout_ms)

/* ------------------------------------------------------------------------ */
/* local-storage                                                            */

static const ferry_store_ops *store_ops(ferry_plugin_instance *inst)
{
    return &ferry_plugin_instance_plugin(inst)->ops.store;
}

static void check_listing(const char *text, const char *const *keys, const int64_t *sizes, size_t n)
{
    json_error_t jerr;
    json_t *arr = json_loads(text ? text : "", 0, &jerr);
    CHECK(json_is_array(arr));
    CHECK_INT(json_array_size(arr), n);
    for (size_t i = 0; i < n && i < json_array_size(arr); i++) {
        json_t *e = json_array_get(arr, i);
        CHECK_STR(json_string_value(json_object_get(e, "key")), keys[i]);
        CHECK_INT(json_integer_value(json_object_get(e, "size")), sizes[i]);
    }
    json_decref(arr);
}

static void test_storage_roundtrip(void)
{
    char *root = tmp_path("store/nested");
    ferry_settings *s = ferry_settings_new();
    ferry_settings_set(s, "path", root);
    ferry_plugin_instance *inst = instance("local-storage", FERRY_PLUGIN_STORE, s);
    if (inst == NULL)
        return;
    const ferry_store_ops *ops = store_ops(inst);
    void *st = ferry_plugin_instance_state(inst);
    CHECK(ops->presign == NULL);

    /* Binary content, NULs included, more than one copy buffer long. */
    size_t len = 200000;
    char *data = ferry_xmalloc(len);
    for (size_t i = 0; i < len; i++)
        data[i] = (char)((i * 131) ^ (i >> 8));
    char *src = tmp_path("src.bin"), *dst = tmp_path("dst.bin"), *small = tmp_path("small.txt");
    CHECK_INT(ferry_write_file(src, data, len), 0);
    CHECK_INT(ferry_write_file(small, "hello\n", 6), 0);

    outcome o = {0};
    CHECK_INT(RUN_OP(inst, &o, 5000, ops->put_file(st, "runs/1/model.bin", src, the_op)), 0);
    CHECK_INT(o.status, 0);
    CHECK_INT(o.size, (int64_t)len);
    CHECK_INT(RUN_OP(inst, &o, 5000, ops->put_file(st, "top.txt", small, the_op)), 0);
    CHECK_INT(o.status, 0);

    CHECK_INT(RUN_OP(inst, &o, 5000, ops->get_file(st, "runs/1/model.bin", dst, the_op)), 0);
    CHECK_INT(o.status, 0);
    CHECK_INT(o.size, (int64_t)len);
    size_t got_len = 0;
    char *got = ferry_read_file(dst, &got_len);
    CHECK(got != NULL && got_len == len && memcmp(got, data, len) == 0);
    free(got);

    /* Overwrite: the new bytes replace the old, no temporary file stays. */
    CHECK_INT(RUN_OP(inst, &o, 5000, ops->put_file(st, "runs/1/model.bin", small, the_op)), 0);
    CHECK_INT(RUN_OP(inst, &o, 5000, ops->head(st, "runs/1/model.bin", the_op)), 0);
    CHECK_INT(o.status, 0);
    CHECK_INT(o.size, 6);

    CHECK_INT(RUN_OP(inst, &o, 5000, ops->list(st, "", the_op)), 0);
    CHECK_INT(o.status, 0);
    const char *all[] = {"runs/1/model.bin", "top.txt"};
    const int64_t all_sizes[] = {6, 6};
    check_listing(o.text, all, all_sizes, 2);
    CHECK_INT(RUN_OP(inst, &o, 5000, ops->list(st, "runs/", the_op)), 0);
    check_listing(o.text, all, all_sizes, 1);
    CHECK_INT(RUN_OP(inst, &o, 5000, ops->list(st, "nothing/", the_op)), 0);
    check_listing(o.text, NULL, NULL, 0);

    char path[PATH_MAX], *want = ferry_asprintf("%s/top.txt", root);
    CHECK_INT(ops->local_path(st, "top.txt", path, sizeof(path)), 0);
    CHECK_STR(path, want);
    CHECK_INT(ops->local_path(st, "absent.txt", path, sizeof(path)), FERRY_ENOENT);
    CHECK_INT(ops->local_path(st, "top.txt", path, 8), FERRY_ETOOBIG);
    free(want);

    /* Missing keys. */
    CHECK_INT(RUN_OP(inst, &o, 5000, ops->get_file(st, "runs/2/none.bin", dst, the_op)), 0);
    CHECK_INT(o.status, FERRY_ENOENT);
    CHECK_INT(o.error.code, FERRY_ENOENT);
    CHECK_CONTAINS(o.error.message, "runs/2/none.bin");
    CHECK_INT(RUN_OP(inst, &o, 5000, ops->head(st, "runs", the_op)), 0);
    CHECK_INT(o.status, FERRY_ENOENT); /* a folder is not an object */

    /* Remove: gone, its empty folders too; removing again is fine. */
    CHECK_INT(RUN_OP(inst, &o, 5000, ops->remove(st, "runs/1/model.bin", the_op)), 0);
    CHECK_INT(o.status, 0);
    CHECK_INT(RUN_OP(inst, &o, 5000, ops->head(st, "runs/1/model.bin", the_op)), 0);
    CHECK_INT(o.status, FERRY_ENOENT);
    char *runs_dir = ferry_asprintf("%s/runs", root);
    struct stat sb;
    CHECK(stat(runs_dir, &sb) != 0 && errno == ENOENT);
    free(runs_dir);
    CHECK_INT(RUN_OP(inst, &o, 5000, ops->remove(st, "runs/1/model.bin", the_op)), 0);
    CHECK_INT(o.status, 0);

    /* A missing source file fails the put with a reason, not a crash. */
    CHECK_INT(RUN_OP(inst, &o, 5000, ops->put_file(st, "x.bin", "/nonexistent/src", the_op)), 0);
    CHECK_INT(o.status, FERRY_ENOENT);
    CHECK_CONTAINS(o.error.message, "/nonexistent/src");

    outcome_reset(&o);
    instance_free(inst);
    free(data);
    free(src);
    free(dst);
    free(small);
    free(root);
}

static void test_storage_unsafe_keys(void)
{
    char *root = tmp_path("store-unsafe");
    ferry_settings *s = ferry_settings_new();
    ferry_settings_set(s, "path", root);
    ferry_plugin_instance *inst = instance("local-storage", FERRY_PLUGIN_STORE, s);
    if (inst == NULL)
        return;
    const ferry_store_ops *ops = store_ops(inst);
    void *st = ferry_plugin_instance_state(inst);
    char *src = tmp_path("unsafe-src.txt");
    CHECK_INT(ferry_write_file(src, "x", 1), 0);
    const char *bad[] = {"../escape.txt",   "/etc/passwd", "a/../../escape.txt", "a//b", "./a", "",
                         "a/.ferry-tmp-123"};
    outcome o = {0};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        CHECK_INT(RUN_OP(inst, &o, 1000, ops->put_file(st, bad[i], src, the_op)), FERRY_EUNSAFE);
        CHECK_INT(RUN_OP(inst, &o, 1000, ops->get_file(st, bad[i], src, the_op)), FERRY_EUNSAFE);
        CHECK_INT(RUN_OP(inst, &o, 1000, ops->remove(st, bad[i], the_op)), FERRY_EUNSAFE);
        char path[PATH_MAX];
        CHECK_INT(ops->local_path(st, bad[i], path, sizeof(path)), FERRY_EUNSAFE);
    }
    char *escaped = tmp_path("escape.txt");
    CHECK(access(escaped, F_OK) != 0);
    free(escaped);
    instance_free(inst);
    free(src);
    free(root);
}

static void test_storage_needs_path(void)
{
    const ferry_plugin *p = ferry_plugin_registry_get(&reg, FERRY_PLUGIN_STORE, "local-storage");
    ferry_plugin_instance *inst = NULL;
    ferry_error_detail err;
    CHECK_INT(ferry_plugin_instance_new(p, &loop, "nopath", NULL, NULL, &inst, &err),
              FERRY_ECONFIG);
    CHECK_CONTAINS(err.message, "\"path\"");
    uv_run(&loop, UV_RUN_DEFAULT);
}

/* ------------------------------------------------------------------------ */
/* local-process                                                            */

typedef struct run_result {
    char out[8192], err[8192];
    size_t out_len, err_len;
    size_t out_total; /* all stdout bytes, also past the buffer */
    int got_output;   /* any output yet */
    int exited;       /* times `exited` was called */
    int exit_code;
    char reason[256];
    int output_after_exit;
} run_result;

static void on_output(void *arg, ferry_stream stream, const char *data, size_t len)
{
    run_result *r = arg;
    r->got_output = 1;
    if (r->exited)
        r->output_after_exit = 1;
    char *buf = stream == FERRY_STREAM_STDOUT ? r->out : r->err;
    size_t *n = stream == FERRY_STREAM_STDOUT ? &r->out_len : &r->err_len;
    if (stream == FERRY_STREAM_STDOUT)
        r->out_total += len;
    size_t room = sizeof(r->out) - 1 - *n;
    size_t take = len < room ? len : room;
    memcpy(buf + *n, data, take);
    *n += take;
    buf[*n] = '\0';
}

static void on_exited(void *arg, int exit_code, const char *reason)
{
    run_result *r = arg;
    r->exited++;
    r->exit_code = exit_code;
    snprintf(r->reason, sizeof(r->reason), "%s", reason ? reason : "");
}

typedef struct exec_dirs {
    char *base, *repository, *inputs, *outputs, *config;
} exec_dirs;

static exec_dirs make_exec_dirs(const char *name)
{
    exec_dirs d;
    d.base = tmp_path(name);
    d.repository = ferry_asprintf("%s/repository", d.base);
    d.inputs = ferry_asprintf("%s/inputs", d.base);
    d.outputs = ferry_asprintf("%s/outputs", d.base);
    d.config = ferry_asprintf("%s/config", d.base);
    ferry_mkdirs(d.repository, 0755);
    ferry_mkdirs(d.inputs, 0755);
    ferry_mkdirs(d.outputs, 0755);
    ferry_mkdirs(d.config, 0755);
    return d;
}

static void free_exec_dirs(exec_dirs *d)
{
    free(d->base);
    free(d->repository);
    free(d->inputs);
    free(d->outputs);
    free(d->config);
}

static ferry_run_spec spec_for(const exec_dirs *d, const char *script)
{
    ferry_run_spec spec = {
        .struct_size = sizeof(spec),
        .execution_id = "00000000-0000-4000-8000-000000000000",
        .script = script,
        .repository_dir = d->repository,
        .inputs_dir = d->inputs,
        .outputs_dir = d->outputs,
        .config_dir = d->config,
    };
    return spec;
}

static int start_run(ferry_plugin_instance *inst, const ferry_run_spec *spec, run_result *r,
                     ferry_run **run, ferry_error_detail *err)
{
    memset(r, 0, sizeof(*r));
    ferry_run_callbacks cb = {
        .struct_size = sizeof(cb), .arg = r, .output = on_output, .exited = on_exited};
    const ferry_runtime_ops *ops = &ferry_plugin_instance_plugin(inst)->ops.runtime;
    return ops->start(ferry_plugin_instance_state(inst), spec, &cb, run, err);
}

/* Runs a script to its end; 0 when it ended within timeout_ms. */
static int run_script(ferry_plugin_instance *inst, const ferry_run_spec *spec, run_result *r,
                      unsigned timeout_ms)
{
    ferry_run *run = NULL;
    ferry_error_detail err;
    int rc = start_run(inst, spec, r, &run, &err);
    CHECK_INT(rc, 0);
    if (rc < 0) {
        fprintf(stderr, "start: %s\n", err.message);
        return rc;
    }
    CHECK_INT(r->exited, 0); /* never inside start */
    return wait_for(&r->exited, timeout_ms);
}

static void test_process_streams_and_codes(ferry_plugin_instance *inst)
{
    exec_dirs d = make_exec_dirs("exec-codes");
    run_result r;

    ferry_run_spec spec = spec_for(&d, "echo to-out; echo to-err >&2; echo more-out");
    CHECK_INT(run_script(inst, &spec, &r, 5000), 0);
    CHECK_STR(r.out, "to-out\nmore-out\n");
    CHECK_STR(r.err, "to-err\n");
    CHECK_INT(r.exit_code, 0);
    CHECK_STR(r.reason, "");

    spec = spec_for(&d, "exit 3");
    CHECK_INT(run_script(inst, &spec, &r, 5000), 0);
    CHECK_INT(r.exit_code, 3);
    CHECK_STR(r.reason, "");

    spec = spec_for(&d, "echo before; kill -KILL $$");
    CHECK_INT(run_script(inst, &spec, &r, 5000), 0);
    CHECK_INT(r.exit_code, 128 + 9);
    CHECK_CONTAINS(r.reason, "signal 9");
    CHECK_STR(r.out, "before\n");

    /* stdin is /dev/null: cat ends at once instead of waiting for input. */
    spec = spec_for(&d, "cat; echo stdin-closed");
    CHECK_INT(run_script(inst, &spec, &r, 5000), 0);
    CHECK_STR(r.out, "stdin-closed\n");

    /* Lots of output right before the exit: none of it may be lost. */
    spec = spec_for(&d, "head -c 3000000 /dev/zero | tr '\\0' a; exit 7");
    CHECK_INT(run_script(inst, &spec, &r, 10000), 0);
    CHECK_INT(r.out_total, 3000000);
    CHECK_INT(r.exit_code, 7);
    CHECK_INT(r.exited, 1);
    CHECK(!r.output_after_exit);

    /* Another shell. */
    spec = spec_for(&d, "echo \"$0\"");
    spec.shell = "/bin/bash";
    if (access("/bin/bash", X_OK) == 0) {
        CHECK_INT(run_script(inst, &spec, &r, 5000), 0);
        CHECK_STR(r.out, "/bin/bash\n");
    }
    free_exec_dirs(&d);
}

static void test_process_shebang(ferry_plugin_instance *inst)
{
    exec_dirs d = make_exec_dirs("exec-shebang");
    run_result r;
    ferry_run_spec spec = spec_for(&d, "#!/bin/sh\necho \"script $0\"\nexit 5\n");
    CHECK_INT(run_script(inst, &spec, &r, 5000), 0);
    char *file = ferry_asprintf("%s/command", d.base), *want = NULL;
    char real[PATH_MAX];
    CHECK(realpath(file, real) != NULL);
    want = ferry_asprintf("script %s\n", real);
    CHECK_STR(r.out, want);
    CHECK_INT(r.exit_code, 5);
    struct stat sb;
    CHECK_INT(stat(file, &sb), 0);
    CHECK_INT(sb.st_mode & 0777, 0700);
    free(file);
    free(want);
    free_exec_dirs(&d);
}

static void test_process_environment(ferry_plugin_instance *inst)
{
    exec_dirs d = make_exec_dirs("exec-env");
    run_result r;
    /* The agent's own secrets must not reach the user's commands. */
    setenv("FERRY_BOOTSTRAP_TOKEN", "agent-secret", 1);
    const char *env[] = {"MY_VAR=my value", "FERRY_OUTPUTS_DIR=/wrong", "BROKEN", NULL};
    ferry_run_spec spec = spec_for(&d, "echo \"R=$FERRY_REPOSITORY_DIR\"; "
                                       "echo \"I=$FERRY_INPUTS_DIR\"; "
                                       "echo \"O=$FERRY_OUTPUTS_DIR\"; "
                                       "echo \"C=$FERRY_CONFIG_DIR\"; "
                                       "echo \"VH=$VH_OUTPUTS_DIR\"; "
                                       "echo \"GPU=$CUDA_VISIBLE_DEVICES\"; "
                                       "echo \"MY=$MY_VAR\"; "
                                       "echo \"TOKEN=${FERRY_BOOTSTRAP_TOKEN:-unset}\"; "
                                       "echo \"PATH=${PATH:+set}\"; "
                                       "echo \"PWD=$(pwd -P)\"");
    spec.env = env;
    spec.valohai_aliases = 1;
    spec.gpus = "0,2";
    CHECK_INT(run_script(inst, &spec, &r, 5000), 0);
    char real_repo[PATH_MAX];
    CHECK(realpath(d.repository, real_repo) != NULL);
    char *want = ferry_asprintf("R=%s\nI=%s\nO=%s\nC=%s\nVH=%s\nGPU=0,2\nMY=my value\n"
                                "TOKEN=unset\nPATH=set\nPWD=%s\n",
                                d.repository, d.inputs, d.outputs, d.config, d.outputs, real_repo);
    CHECK_STR(r.out, want);
    free(want);

    /* Without aliases and GPUs those stay unset. */
    spec = spec_for(&d, "echo \"${VH_OUTPUTS_DIR:-no-vh} ${CUDA_VISIBLE_DEVICES:-no-gpu}\"");
    CHECK_INT(run_script(inst, &spec, &r, 5000), 0);
    CHECK_STR(r.out, "no-vh no-gpu\n");
    unsetenv("FERRY_BOOTSTRAP_TOKEN");
    free_exec_dirs(&d);
}

/* stop(): SIGTERM to the group; a script that ignores it, and a background
 * grandchild that ignores it too, are killed after the grace. */
static void test_process_stop(ferry_plugin_instance *inst)
{
    const ferry_runtime_ops *ops = &ferry_plugin_instance_plugin(inst)->ops.runtime;
    void *st = ferry_plugin_instance_state(inst);
    exec_dirs d = make_exec_dirs("exec-stop");
    char *pidfile = ferry_asprintf("%s/grandchild.pid", d.base);
    char *script = ferry_asprintf("trap '' TERM; "
                                  "sh -c 'trap \"\" TERM; sleep 100' & echo $! > '%s'; "
                                  "echo started; sleep 100; echo not-reached",
                                  pidfile);
    ferry_run_spec spec = spec_for(&d, script);
    run_result r;
    ferry_run *run = NULL;
    ferry_error_detail err;
    CHECK_INT(start_run(inst, &spec, &r, &run, &err), 0);
    /* Wait until the script is past its traps. */
    CHECK_INT(wait_for(&r.got_output, 5000), 0);
    int grandchild = read_pid(pidfile);
    CHECK(grandchild > 0 && process_alive(grandchild));
    uint64_t t0 = ferry_mono_ms();
    CHECK_INT(ops->stop(st, run, 300), 0);
    CHECK_INT(wait_for(&r.exited, 5000), 0);
    uint64_t took = ferry_mono_ms() - t0;
    CHECK(took >= 250 && took < 3000);
    CHECK_INT(r.exit_code, 128 + SIGKILL);
    CHECK_STR(r.reason, "stopped");
    CHECK_STR(r.out, "started\n");
    CHECK_INT(r.exited, 1);
    /* Give init a moment to reap the orphan. */
    for (int i = 0; i < 50 && grandchild > 0 && process_alive(grandchild); i++)
        usleep(20000);
    CHECK(grandchild > 0 && !process_alive(grandchild));
    free(script);

    /* A script that honours SIGTERM ends at once, well inside the grace. */
    spec = spec_for(&d, "echo up; sleep 100");
    CHECK_INT(start_run(inst, &spec, &r, &run, &err), 0);
    CHECK_INT(wait_for(&r.got_output, 5000), 0);
    t0 = ferry_mono_ms();
    CHECK_INT(ops->stop(st, run, 10000), 0);
    CHECK_INT(wait_for(&r.exited, 5000), 0);
    CHECK(ferry_mono_ms() - t0 < 2000);
    CHECK_STR(r.reason, "stopped");
    CHECK_INT(r.exit_code, 128 + SIGTERM);
    free(pidfile);
    free_exec_dirs(&d);
}

/* When the main process ends, what it left in the background goes too:
 * otherwise it would hold the pipes and `exited` would never come. */
static void test_process_leftovers_killed(ferry_plugin_instance *inst)
{
    exec_dirs d = make_exec_dirs("exec-leftover");
    char *pidfile = ferry_asprintf("%s/bg.pid", d.base);
    char *script = ferry_asprintf("sleep 100 & echo $! > '%s'; echo main-done", pidfile);
    ferry_run_spec spec = spec_for(&d, script);
    run_result r;
    uint64_t t0 = ferry_mono_ms();
    CHECK_INT(run_script(inst, &spec, &r, 5000), 0);
    CHECK(ferry_mono_ms() - t0 < 3000);
    CHECK_INT(r.exit_code, 0);
    CHECK_STR(r.out, "main-done\n");
    int bg = read_pid(pidfile);
    for (int i = 0; i < 50 && bg > 0 && process_alive(bg); i++)
        usleep(20000);
    CHECK(bg > 0 && !process_alive(bg));
    free(script);
    free(pidfile);
    free_exec_dirs(&d);
}

static void test_process_spawn_failure(ferry_plugin_instance *inst)
{
    exec_dirs d = make_exec_dirs("exec-fail");
    ferry_run_spec spec = spec_for(&d, "echo never");
    spec.shell = "/nonexistent/shell";
    run_result r;
    ferry_run *run = NULL;
    ferry_error_detail err;
    memset(&err, 0, sizeof(err));
    CHECK_INT(start_run(inst, &spec, &r, &run, &err), FERRY_ESPAWN);
    CHECK_INT(err.code, FERRY_ESPAWN);
    CHECK_CONTAINS(err.message, "could not start");
    CHECK_CONTAINS(err.message, "/nonexistent/shell");
    CHECK_CONTAINS(err.message, "no such file");
    uv_run(&loop, UV_RUN_NOWAIT);
    CHECK_INT(r.exited, 0); /* a failed start fires no callback */

    spec = spec_for(&d, "echo x");
    spec.repository_dir = "/nonexistent/repository";
    CHECK_INT(start_run(inst, &spec, &r, &run, &err), FERRY_ESPAWN);
    CHECK_CONTAINS(err.message, "could not start");

    spec = spec_for(&d, NULL);
    CHECK_INT(start_run(inst, &spec, &r, &run, &err), FERRY_EINVAL);
    free_exec_dirs(&d);
}

/* Freeing the instance kills what still runs, without callbacks. */
static void test_process_fini_kills(void)
{
    ferry_plugin_instance *inst =
        instance("local-process", FERRY_PLUGIN_RUNTIME, ferry_settings_new());
    if (inst == NULL)
        return;
    exec_dirs d = make_exec_dirs("exec-fini");
    char *pidfile = ferry_asprintf("%s/main.pid", d.base);
    char *script = ferry_asprintf("echo $$ > '%s'; echo up; sleep 100", pidfile);
    ferry_run_spec spec = spec_for(&d, script);
    run_result r;
    ferry_run *run = NULL;
    ferry_error_detail err;
    CHECK_INT(start_run(inst, &spec, &r, &run, &err), 0);
    CHECK_INT(wait_for(&r.got_output, 5000), 0);
    int pid = read_pid(pidfile);
    uint64_t t0 = ferry_mono_ms();
    instance_free(inst); /* runs the loop until everything closed */
    CHECK(ferry_mono_ms() - t0 < 3000);
    CHECK_INT(r.exited, 0);
    CHECK(pid > 0 && !process_alive(pid));
    free(script);
    free(pidfile);
    free_exec_dirs(&d);
}

static void test_process(void)
{
    ferry_plugin_instance *inst =
        instance("local-process", FERRY_PLUGIN_RUNTIME, ferry_settings_new());
    if (inst == NULL)
        return;
    test_process_streams_and_codes(inst);
    test_process_shebang(inst);
    test_process_environment(inst);
    test_process_stop(inst);
    test_process_leftovers_killed(inst);
    test_process_spawn_failure(inst);
    instance_free(inst);
    test_process_fini_kills();
}

/* ------------------------------------------------------------------------ */
/* local (compute)                                                          */

/* Records its argv and token, then waits; on SIGTERM notes it and exits
 * (unless told to ignore SIGTERM). */
static const char fake_agent[] =
    "#!/bin/sh\n"
    "out=\"$FAKE_AGENT_DIR/agent-$$.txt\"\n"
    "{ for a in \"$@\"; do echo \"arg:$a\"; done\n"
    "  echo \"token:$FERRY_BOOTSTRAP_TOKEN\"\n"
    "  echo \"aws:${AWS_SECRET_ACCESS_KEY:-unset} admin:${FERRY_ADMIN_TOKEN:-unset}\"\n"
    "  echo \"plugins:${FERRY_PLUGIN_DIR:+set} path:${PATH:+set}\"; } > \"$out.tmp\"\n"
    "if [ -n \"$FAKE_AGENT_IGNORE_TERM\" ]; then\n"
    "  trap '' TERM; mv \"$out.tmp\" \"$out\"; exec sleep 100\n"
    "fi\n"
    "trap 'echo terminated >> \"$out\"; kill $! 2>/dev/null; exit 0' TERM\n"
    "mv \"$out.tmp\" \"$out\"\n"
    "sleep 100 & wait\n";

static int file_exists(const char *path)
{
    return access(path, F_OK) == 0;
}

/* Polls the loop until `path` exists. */
static int wait_for_file(const char *path, unsigned timeout_ms)
{
    for (unsigned waited = 0; waited < timeout_ms; waited += 20) {
        if (file_exists(path))
            return 0;
        uv_run(&loop, UV_RUN_NOWAIT);
        usleep(20000);
    }
    return file_exists(path) ? 0 : -1;
}

static ferry_launch_request launch_request(const char *agent, const char *worker)
{
    ferry_launch_request req = {
        .struct_size = sizeof(req),
        .daemon_id = "daemon-1",
        .environment = "local",
        .worker_id = worker,
        .server_url = "http://127.0.0.1:9/",
        .bootstrap_token = "boot-token-123",
        .agent_path = agent,
    };
    return req;
}

static void test_compute_launch_terminate(ferry_plugin_instance *inst, const char *agent,
                                          const char *work_dir)
{
    const ferry_compute_ops *ops = &ferry_plugin_instance_plugin(inst)->ops.compute;
    void *st = ferry_plugin_instance_state(inst);
    ferry_launch_request req = launch_request(agent, "w1");
    outcome o = {0};
    CHECK_INT(RUN_OP(inst, &o, 5000, ops->launch(st, &req, the_op)), 0);
    CHECK_INT(o.status, 0);
    CHECK(o.instance_id != NULL && strncmp(o.instance_id, "local-", 6) == 0);
    if (o.instance_id == NULL)
        return;
    char *id = ferry_strdup(o.instance_id);
    int pid = atoi(id + 6);
    char *record = ferry_asprintf("%s/agent-%d.txt", tmp, pid);
    CHECK_INT(wait_for_file(record, 5000), 0);

    char *text = ferry_read_file(record, NULL);
    char *want = ferry_asprintf("arg:--server\narg:http://127.0.0.1:9/\narg:--worker-id\narg:w1\n"
                                "arg:--work-dir\narg:%s/w1\narg:--runtime\narg:local-process\n"
                                "token:boot-token-123\n"
                                "aws:unset admin:unset\n"
                                "plugins:set path:set\n",
                                work_dir);
    CHECK_STR(text, want);
    free(text);
    free(want);
    /* The token is in the environment only, never on the command line. */
    char *cmdline_path = ferry_asprintf("/proc/%d/cmdline", pid);
    size_t n = 0;
    char *cmdline = ferry_read_file(cmdline_path, &n);
    CHECK(cmdline != NULL && memmem(cmdline, n, "boot-token-123", 14) == NULL);
    free(cmdline);
    free(cmdline_path);
    char *wd = ferry_asprintf("%s/w1", work_dir);
    struct stat sb;
    CHECK(stat(wd, &sb) == 0 && S_ISDIR(sb.st_mode) && (sb.st_mode & 0777) == 0700);
    free(wd);

    CHECK_INT(RUN_OP(inst, &o, 5000, ops->list(st, "daemon-1", the_op)), 0);
    char *want_list =
        ferry_asprintf("[{\"instance_id\":\"%s\",\"state\":\"running\",\"worker_id\":\"w1\"}]", id);
    CHECK_STR(o.text, want_list);
    free(want_list);
    CHECK_INT(RUN_OP(inst, &o, 5000, ops->list(st, "other-daemon", the_op)), 0);
    CHECK_STR(o.text, "[]");
    CHECK_INT(RUN_OP(inst, &o, 5000, ops->describe(st, id, the_op)), 0);
    char *want_desc = ferry_asprintf("{\"instance_id\":\"%s\",\"state\":\"running\"}", id);
    CHECK_STR(o.text, want_desc);
    free(want_desc);

    CHECK_INT(RUN_OP(inst, &o, 5000, ops->terminate(st, id, the_op)), 0);
    CHECK_INT(o.status, 0);
    CHECK(!process_alive(pid));
    text = ferry_read_file(record, NULL);
    CHECK_CONTAINS(text, "terminated"); /* it got SIGTERM, not SIGKILL */
    free(text);
    CHECK_INT(RUN_OP(inst, &o, 5000, ops->list(st, "daemon-1", the_op)), 0);
    CHECK_STR(o.text, "[]");
    CHECK_INT(RUN_OP(inst, &o, 5000, ops->terminate(st, id, the_op)), 0);
    CHECK_INT(o.status, FERRY_ENOENT);
    CHECK_INT(RUN_OP(inst, &o, 5000, ops->describe(st, id, the_op)), 0);
    CHECK_INT(o.status, FERRY_ENOENT);
    outcome_reset(&o);
    free(record);
    free(id);
}

/* A worker with several slots (one per GPU) tells its agent so; slots 0 or 1
 * leaves the agent's command line as it was (checked above). */
static void test_compute_slots(ferry_plugin_instance *inst, const char *agent, const char *work_dir)
{
    const ferry_compute_ops *ops = &ferry_plugin_instance_plugin(inst)->ops.compute;
    void *st = ferry_plugin_instance_state(inst);
    ferry_launch_request req = launch_request(agent, "w4");
    req.slots = 4;
    outcome o = {0};
    CHECK_INT(RUN_OP(inst, &o, 5000, ops->launch(st, &req, the_op)), 0);
    CHECK_INT(o.status, 0);
    char *id = o.instance_id ? ferry_strdup(o.instance_id) : NULL;
    int pid = id ? atoi(id + 6) : 0;
    char *record = ferry_asprintf("%s/agent-%d.txt", tmp, pid);
    CHECK_INT(wait_for_file(record, 5000), 0);
    char *text = ferry_read_file(record, NULL);
    char *want = ferry_asprintf("arg:--work-dir\narg:%s/w4\narg:--runtime\narg:local-process\n"
                                "arg:--slots\narg:4\ntoken:",
                                work_dir);
    CHECK_CONTAINS(text, want);
    free(want);
    free(text);
    if (id != NULL) {
        CHECK_INT(RUN_OP(inst, &o, 5000, ops->terminate(st, id, the_op)), 0);
        CHECK_INT(o.status, 0);
    }
    outcome_reset(&o);
    free(record);
    free(id);
}

static void test_compute_failures(ferry_plugin_instance *inst, const char *agent)
{
    const ferry_compute_ops *ops = &ferry_plugin_instance_plugin(inst)->ops.compute;
    void *st = ferry_plugin_instance_state(inst);
    outcome o = {0};
    ferry_launch_request req = launch_request("/nonexistent/ferry-agent", "w2");
    CHECK_INT(RUN_OP(inst, &o, 5000, ops->launch(st, &req, the_op)), 0);
    CHECK_INT(o.status, FERRY_ESPAWN);
    CHECK_CONTAINS(o.error.message, "/nonexistent/ferry-agent");
    CHECK(strstr(o.error.message, "boot-token-123") == NULL);

    req = launch_request(agent, "../escape");
    CHECK_INT(RUN_OP(inst, &o, 5000, ops->launch(st, &req, the_op)), FERRY_EUNSAFE);
    req = launch_request(agent, "w3");
    req.bootstrap_token = NULL;
    CHECK_INT(RUN_OP(inst, &o, 5000, ops->launch(st, &req, the_op)), FERRY_EINVAL);
    outcome_reset(&o);
}

/* An agent that ignores SIGTERM is killed after the grace; and fini ends
 * whatever still runs. */
static void test_compute_kill_and_fini(const char *agent, const char *work_dir)
{
    ferry_settings *s = ferry_settings_new();
    ferry_settings_set(s, "work_dir", work_dir);
    ferry_settings_set(s, "terminate_grace_ms", "300");
    ferry_settings_set(s, "agent_env", "FAKE_AGENT_DIR,FAKE_AGENT_IGNORE_TERM");
    ferry_plugin_instance *inst = instance("local", FERRY_PLUGIN_COMPUTE, s);
    if (inst == NULL)
        return;
    const ferry_compute_ops *ops = &ferry_plugin_instance_plugin(inst)->ops.compute;
    void *st = ferry_plugin_instance_state(inst);
    setenv("FAKE_AGENT_IGNORE_TERM", "1", 1);
    ferry_launch_request req = launch_request(agent, "stubborn");
    outcome o = {0};
    CHECK_INT(RUN_OP(inst, &o, 5000, ops->launch(st, &req, the_op)), 0);
    unsetenv("FAKE_AGENT_IGNORE_TERM");
    char *id = ferry_strdup(o.instance_id);
    int pid = id ? atoi(id + 6) : 0;
    char *record = ferry_asprintf("%s/agent-%d.txt", tmp, pid);
    CHECK_INT(wait_for_file(record, 5000), 0); /* its trap is set */
    uint64_t t0 = ferry_mono_ms();
    CHECK_INT(RUN_OP(inst, &o, 5000, ops->terminate(st, id, the_op)), 0);
    uint64_t took = ferry_mono_ms() - t0;
    CHECK_INT(o.status, 0);
    CHECK(took >= 250 && took < 3000);
    CHECK(!process_alive(pid));
    free(record);
    free(id);

    req = launch_request(agent, "left-running");
    CHECK_INT(RUN_OP(inst, &o, 5000, ops->launch(st, &req, the_op)), 0);
    pid = o.instance_id ? atoi(o.instance_id + 6) : 0;
    record = ferry_asprintf("%s/agent-%d.txt", tmp, pid);
    CHECK_INT(wait_for_file(record, 5000), 0);
    instance_free(inst);
    CHECK(pid > 0 && !process_alive(pid));
    char *text = ferry_read_file(record, NULL);
    CHECK_CONTAINS(text, "terminated");
    free(text);
    free(record);
    outcome_reset(&o);
}

static void test_compute(void)
{
    char *agent = tmp_path("fake-agent.sh"), *work_dir = tmp_path("workers");
    CHECK_INT(ferry_write_file(agent, fake_agent, strlen(fake_agent)), 0);
    chmod(agent, 0755);
    setenv("FAKE_AGENT_DIR", tmp, 1);
    setenv("FERRY_BOOTSTRAP_TOKEN", "inherited-token-must-be-replaced", 1);
    /* ferryd's credentials must not reach an agent. */
    setenv("AWS_SECRET_ACCESS_KEY", "operator-credential", 1);
    setenv("FERRY_ADMIN_TOKEN", "admin-token", 1);
    ferry_settings *s = ferry_settings_new();
    ferry_settings_set(s, "work_dir", work_dir);
    ferry_settings_set(s, "agent_env", "FAKE_AGENT_DIR, FAKE_AGENT_IGNORE_TERM");
    ferry_plugin_instance *inst = instance("local", FERRY_PLUGIN_COMPUTE, s);
    if (inst != NULL) {
        test_compute_launch_terminate(inst, agent, work_dir);
        test_compute_slots(inst, agent, work_dir);
        test_compute_failures(inst, agent);
        instance_free(inst);
    }
    unsetenv("FERRY_BOOTSTRAP_TOKEN");
    unsetenv("AWS_SECRET_ACCESS_KEY");
    unsetenv("FERRY_ADMIN_TOKEN");
    test_compute_kill_and_fini(agent, work_dir);
    free(agent);
    free(work_dir);
}

int main(void)
{
    const char *dir = getenv("FERRY_PLUGIN_DIR");
    if (dir == NULL) {
        fprintf(stderr, "FERRY_PLUGIN_DIR is not set\n");
        return 2;
    }
    ferry_log_set_name("test_local_plugins");
    snprintf(tmp, sizeof(tmp), "/tmp/ferry-local-plugins-XXXXXX");
    if (mkdtemp(tmp) == NULL)
        return 2;
    uv_loop_init(&loop);
    CHECK_INT(ferry_plugin_registry_scan(&reg, dir), 0);
    test_storage_roundtrip();
    test_storage_unsafe_keys();
    test_storage_needs_path();
    test_process();
    test_compute();
    ferry_plugin_registry_free(&reg);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_INT(uv_loop_close(&loop), 0);
    if (ferry_test_failures == 0)
        ferry_rmtree(tmp);
    TEST_MAIN_END();
}
