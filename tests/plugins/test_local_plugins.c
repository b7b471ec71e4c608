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

#include "plugin.h"
#include "util.h"
#include "plugins/harness.h"
#include "unit/test.h"

/* ------------------------------------------------------------------------ */
/* Helpers                                                                  */

/* A zombie nobody reaped (no init in a container) is dead for us. */
static int process_alive(int pid)
{
    if (pid <= 0 || kill(pid, 0) != 0)
        return 0;
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/status", pid);
    char *status = ferry_read_file(path, NULL);
    int alive = status != NULL && strstr(status, "\nState:\tZ") == NULL;
    free(status);
    return alive;
}

static int read_pid(const char *path)
{
    char *text = ferry_read_file(path, NULL);
    int pid = text ? atoi(text) : 0;
    free(text);
    return pid;
}

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

static void test_storage_roundtrip(ferry_plugin_instance *inst, const char *root)
{
    const ferry_store_ops *ops = store_ops(inst);
    void *st = ferry_plugin_instance_state(inst);
    CHECK(ops->presign == NULL);

    /* Binary content, NULs included, more than one copy buffer long. */
    size_t len = 200000;
    char *data = ferry_xmalloc(len);
    for (size_t i = 0; i < len; i++)
        data[i] = (char)((i * 131) ^ (i >> 8));
    char *src = ferry_test_tmp_path("src.bin"), *dst = ferry_test_tmp_path("dst.bin"),
         *small = ferry_test_tmp_path("small.txt");
    CHECK_INT(ferry_write_file(src, data, len), 0);
    CHECK_INT(ferry_write_file(small, "hello\n", 6), 0);

    ferry_test_outcome o = {0};
    CHECK_INT(RUN_OP(inst, &o, 5000, ops->put_file(st, "runs/1/model.bin", src, o.op)), 0);
    CHECK_INT(o.status, 0);
    CHECK_INT(o.size, (int64_t)len);
    CHECK_INT(RUN_OP(inst, &o, 5000, ops->put_file(st, "top.txt", small, o.op)), 0);
    CHECK_INT(o.status, 0);

    CHECK_INT(RUN_OP(inst, &o, 5000, ops->get_file(st, "runs/1/model.bin", dst, o.op)), 0);
    CHECK_INT(o.status, 0);
    CHECK_INT(o.size, (int64_t)len);
    size_t got_len = 0;
    char *got = ferry_read_file(dst, &got_len);
    CHECK(got != NULL && got_len == len && memcmp(got, data, len) == 0);
    free(got);

    /* Overwrite: the new bytes replace the old, no temporary file stays. */
    CHECK_INT(RUN_OP(inst, &o, 5000, ops->put_file(st, "runs/1/model.bin", small, o.op)), 0);
    CHECK_INT(RUN_OP(inst, &o, 5000, ops->head(st, "runs/1/model.bin", o.op)), 0);
    CHECK_INT(o.status, 0);
    CHECK_INT(o.size, 6);

    CHECK_INT(RUN_OP(inst, &o, 5000, ops->list(st, "", o.op)), 0);
    CHECK_INT(o.status, 0);
    const char *all[] = {"runs/1/model.bin", "top.txt"};
    const int64_t all_sizes[] = {6, 6};
    check_listing(o.text, all, all_sizes, 2);
    CHECK_INT(RUN_OP(inst, &o, 5000, ops->list(st, "runs/", o.op)), 0);
    check_listing(o.text, all, all_sizes, 1);
    CHECK_INT(RUN_OP(inst, &o, 5000, ops->list(st, "nothing/", o.op)), 0);
    check_listing(o.text, NULL, NULL, 0);

    char path[PATH_MAX], *want = ferry_asprintf("%s/top.txt", root);
    CHECK_INT(ops->local_path(st, "top.txt", path, sizeof(path)), 0);
    CHECK_STR(path, want);
    CHECK_INT(ops->local_path(st, "absent.txt", path, sizeof(path)), FERRY_ENOENT);
    CHECK_INT(ops->local_path(st, "top.txt", path, 8), FERRY_ETOOBIG);
    free(want);

    /* Missing keys. */
    CHECK_INT(RUN_OP(inst, &o, 5000, ops->get_file(st, "runs/2/none.bin", dst, o.op)), 0);
    CHECK_INT(o.status, FERRY_ENOENT);
    CHECK_INT(o.error.code, FERRY_ENOENT);
    CHECK_CONTAINS(o.error.message, "runs/2/none.bin");
    CHECK_INT(RUN_OP(inst, &o, 5000, ops->head(st, "runs", o.op)), 0);
    CHECK_INT(o.status, FERRY_ENOENT); /* a folder is not an object */

    /* Remove: gone, its empty folders too; removing again is fine. */
    CHECK_INT(RUN_OP(inst, &o, 5000, ops->remove(st, "runs/1/model.bin", o.op)), 0);
    CHECK_INT(o.status, 0);
    CHECK_INT(RUN_OP(inst, &o, 5000, ops->head(st, "runs/1/model.bin", o.op)), 0);
    CHECK_INT(o.status, FERRY_ENOENT);
    char *runs_dir = ferry_asprintf("%s/runs", root);
    struct stat sb;
    CHECK(stat(runs_dir, &sb) != 0 && errno == ENOENT);
    free(runs_dir);
    CHECK_INT(RUN_OP(inst, &o, 5000, ops->remove(st, "runs/1/model.bin", o.op)), 0);
    CHECK_INT(o.status, 0);

    /* A missing source file fails the put with a reason, not a crash. */
    CHECK_INT(RUN_OP(inst, &o, 5000, ops->put_file(st, "x.bin", "/nonexistent/src", o.op)), 0);
    CHECK_INT(o.status, FERRY_ENOENT);
    CHECK_CONTAINS(o.error.message, "/nonexistent/src");

    ferry_test_outcome_reset(&o);
    free(data);
    free(src);
    free(dst);
    free(small);
}

static void test_storage_unsafe_keys(ferry_plugin_instance *inst, const char *root)
{
    (void)root; /* its parent is the scratch folder, where an escape would land */
    const ferry_store_ops *ops = store_ops(inst);
    void *st = ferry_plugin_instance_state(inst);
    char *src = ferry_test_tmp_path("unsafe-src.txt");
    CHECK_INT(ferry_write_file(src, "x", 1), 0);
    const char *bad[] = {"../escape.txt",   "/etc/passwd", "a/../../escape.txt", "a//b", "./a", "",
                         "a/.ferry-tmp-123"};
    ferry_test_outcome o = {0};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        CHECK_INT(RUN_OP(inst, &o, 1000, ops->put_file(st, bad[i], src, o.op)), FERRY_EUNSAFE);
        CHECK_INT(RUN_OP(inst, &o, 1000, ops->get_file(st, bad[i], src, o.op)), FERRY_EUNSAFE);
        CHECK_INT(RUN_OP(inst, &o, 1000, ops->remove(st, bad[i], o.op)), FERRY_EUNSAFE);
        char path[PATH_MAX];
        CHECK_INT(ops->local_path(st, bad[i], path, sizeof(path)), FERRY_EUNSAFE);
    }
    char *escaped = ferry_test_tmp_path("escape.txt");
    CHECK(access(escaped, F_OK) != 0);
    free(escaped);
    free(src);
}

static void test_storage_needs_path(void)
{
    ferry_plugin_instance *inst = NULL;
    ferry_error_detail err;
    CHECK_INT(ferry_test_instance_try(FERRY_PLUGIN_STORE, "local-storage", NULL, &inst, &err),
              FERRY_ECONFIG);
    CHECK_CONTAINS(err.message, "\"path\"");
}

/* Runs `test` on a local-storage instance whose objects live under
 * <scratch folder>/<dir>. */
static void with_storage(const char *dir, void (*test)(ferry_plugin_instance *, const char *))
{
    char *root = ferry_test_tmp_path(dir);
    const char *settings[] = {"path", root, NULL};
    ferry_plugin_instance *inst =
        ferry_test_instance(FERRY_PLUGIN_STORE, "local-storage", settings);
    if (inst != NULL) {
        test(inst, root);
        ferry_test_instance_free(inst);
    }
    free(root);
}

static void test_storage(void)
{
    with_storage("store/nested", test_storage_roundtrip);
    with_storage("store-unsafe", test_storage_unsafe_keys);
    test_storage_needs_path();
}

/* ------------------------------------------------------------------------ */
/* local-process                                                            */

static void test_process_streams_and_codes(ferry_plugin_instance *inst)
{
    ferry_test_exec_dirs d = ferry_test_exec_dirs_make("exec-codes");
    ferry_test_run_result r = {0};

    ferry_run_spec spec =
        ferry_test_run_spec(&d, NULL, "echo to-out; echo to-err >&2; echo more-out");
    CHECK_INT(ferry_test_run_script(inst, &spec, &r, 5000), 0);
    CHECK_STR(r.out, "to-out\nmore-out\n");
    CHECK_STR(r.err, "to-err\n");
    CHECK_INT(r.exit_code, 0);
    CHECK_STR(r.reason, "");

    spec = ferry_test_run_spec(&d, NULL, "exit 3");
    CHECK_INT(ferry_test_run_script(inst, &spec, &r, 5000), 0);
    CHECK_INT(r.exit_code, 3);
    CHECK_STR(r.reason, "");

    spec = ferry_test_run_spec(&d, NULL, "echo before; kill -KILL $$");
    CHECK_INT(ferry_test_run_script(inst, &spec, &r, 5000), 0);
    CHECK_INT(r.exit_code, 128 + 9);
    CHECK_CONTAINS(r.reason, "signal 9");
    CHECK_STR(r.out, "before\n");

    /* stdin is /dev/null: cat ends at once instead of waiting for input. */
    spec = ferry_test_run_spec(&d, NULL, "cat; echo stdin-closed");
    CHECK_INT(ferry_test_run_script(inst, &spec, &r, 5000), 0);
    CHECK_STR(r.out, "stdin-closed\n");

    /* Lots of output right before the exit: none of it may be lost. */
    spec = ferry_test_run_spec(&d, NULL, "head -c 3000000 /dev/zero | tr '\\0' a; exit 7");
    CHECK_INT(ferry_test_run_script(inst, &spec, &r, 10000), 0);
    CHECK_INT(r.out_len, 3000000);
    CHECK_INT(r.exit_code, 7);
    CHECK_INT(r.exited, 1);
    CHECK(!r.output_after_exit);

    /* Another shell. */
    spec = ferry_test_run_spec(&d, NULL, "echo \"$0\"");
    spec.shell = "/bin/bash";
    if (access("/bin/bash", X_OK) == 0) {
        CHECK_INT(ferry_test_run_script(inst, &spec, &r, 5000), 0);
        CHECK_STR(r.out, "/bin/bash\n");
    }
    ferry_test_run_result_reset(&r);
    ferry_test_exec_dirs_free(&d);
}

static void test_process_shebang(ferry_plugin_instance *inst)
{
    ferry_test_exec_dirs d = ferry_test_exec_dirs_make("exec-shebang");
    ferry_test_run_result r = {0};
    ferry_run_spec spec = ferry_test_run_spec(&d, NULL, "#!/bin/sh\necho \"script $0\"\nexit 5\n");
    CHECK_INT(ferry_test_run_script(inst, &spec, &r, 5000), 0);
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
    ferry_test_run_result_reset(&r);
    ferry_test_exec_dirs_free(&d);
}

static void test_process_environment(ferry_plugin_instance *inst)
{
    ferry_test_exec_dirs d = ferry_test_exec_dirs_make("exec-env");
    ferry_test_run_result r = {0};
    /* The agent's own secrets must not reach the user's commands. */
    setenv("FERRY_BOOTSTRAP_TOKEN", "agent-secret", 1);
    const char *env[] = {"MY_VAR=my value", "FERRY_OUTPUTS_DIR=/wrong", "BROKEN", NULL};
    ferry_run_spec spec = ferry_test_run_spec(&d, NULL,
                                              "echo \"R=$FERRY_REPOSITORY_DIR\"; "
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
    CHECK_INT(ferry_test_run_script(inst, &spec, &r, 5000), 0);
    char real_repo[PATH_MAX];
    CHECK(realpath(d.repository, real_repo) != NULL);
    char *want = ferry_asprintf("R=%s\nI=%s\nO=%s\nC=%s\nVH=%s\nGPU=0,2\nMY=my value\n"
                                "TOKEN=unset\nPATH=set\nPWD=%s\n",
                                d.repository, d.inputs, d.outputs, d.config, d.outputs, real_repo);
    CHECK_STR(r.out, want);
    free(want);

    /* Without aliases and GPUs those stay unset. */
    spec = ferry_test_run_spec(&d, NULL,
                               "echo \"${VH_OUTPUTS_DIR:-no-vh} ${CUDA_VISIBLE_DEVICES:-no-gpu}\"");
    CHECK_INT(ferry_test_run_script(inst, &spec, &r, 5000), 0);
    CHECK_STR(r.out, "no-vh no-gpu\n");
    unsetenv("FERRY_BOOTSTRAP_TOKEN");
    ferry_test_run_result_reset(&r);
    ferry_test_exec_dirs_free(&d);
}

/* stop(): SIGTERM to the group; a script that ignores it, and a background
 * grandchild that ignores it too, are killed after the grace. */
static void test_process_stop(ferry_plugin_instance *inst)
{
    const ferry_runtime_ops *ops = &ferry_plugin_instance_plugin(inst)->ops.runtime;
    void *st = ferry_plugin_instance_state(inst);
    ferry_test_exec_dirs d = ferry_test_exec_dirs_make("exec-stop");
    char *pidfile = ferry_asprintf("%s/grandchild.pid", d.base);
    char *script = ferry_asprintf("trap '' TERM; "
                                  "sh -c 'trap \"\" TERM; sleep 100' & echo $! > '%s'; "
                                  "echo started; sleep 100; echo not-reached",
                                  pidfile);
    ferry_run_spec spec = ferry_test_run_spec(&d, NULL, script);
    ferry_test_run_result r = {0};
    ferry_run *run = NULL;
    ferry_error_detail err;
    CHECK_INT(ferry_test_run_start(inst, &spec, &r, &run, &err), 0);
    /* Wait until the script is past its traps. */
    CHECK_INT(ferry_test_wait_for(&r.got_output, 5000), 0);
    int grandchild = read_pid(pidfile);
    CHECK(grandchild > 0 && process_alive(grandchild));
    uint64_t t0 = ferry_mono_ms();
    CHECK_INT(ops->stop(st, run, 300), 0);
    CHECK_INT(ferry_test_wait_for(&r.exited, 5000), 0);
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
    spec = ferry_test_run_spec(&d, NULL, "echo up; sleep 100");
    CHECK_INT(ferry_test_run_start(inst, &spec, &r, &run, &err), 0);
    CHECK_INT(ferry_test_wait_for(&r.got_output, 5000), 0);
    t0 = ferry_mono_ms();
    CHECK_INT(ops->stop(st, run, 10000), 0);
    CHECK_INT(ferry_test_wait_for(&r.exited, 5000), 0);
    CHECK(ferry_mono_ms() - t0 < 2000);
    CHECK_STR(r.reason, "stopped");
    CHECK_INT(r.exit_code, 128 + SIGTERM);
    free(pidfile);
    ferry_test_run_result_reset(&r);
    ferry_test_exec_dirs_free(&d);
}

/* When the main process ends, what it left in the background goes too:
 * otherwise it would hold the pipes and `exited` would never come. */
static void test_process_leftovers_killed(ferry_plugin_instance *inst)
{
    ferry_test_exec_dirs d = ferry_test_exec_dirs_make("exec-leftover");
    char *pidfile = ferry_asprintf("%s/bg.pid", d.base);
    char *script = ferry_asprintf("sleep 100 & echo $! > '%s'; echo main-done", pidfile);
    ferry_run_spec spec = ferry_test_run_spec(&d, NULL, script);
    ferry_test_run_result r = {0};
    uint64_t t0 = ferry_mono_ms();
    CHECK_INT(ferry_test_run_script(inst, &spec, &r, 5000), 0);
    CHECK(ferry_mono_ms() - t0 < 3000);
    CHECK_INT(r.exit_code, 0);
    CHECK_STR(r.out, "main-done\n");
    int bg = read_pid(pidfile);
    for (int i = 0; i < 50 && bg > 0 && process_alive(bg); i++)
        usleep(20000);
    CHECK(bg > 0 && !process_alive(bg));
    free(script);
    free(pidfile);
    ferry_test_run_result_reset(&r);
    ferry_test_exec_dirs_free(&d);
}

static void test_process_spawn_failure(ferry_plugin_instance *inst)
{
    ferry_test_exec_dirs d = ferry_test_exec_dirs_make("exec-fail");
    ferry_run_spec spec = ferry_test_run_spec(&d, NULL, "echo never");
    spec.shell = "/nonexistent/shell";
    ferry_test_run_result r = {0};
    ferry_run *run = NULL;
    ferry_error_detail err;
    CHECK_INT(ferry_test_run_start(inst, &spec, &r, &run, &err), FERRY_ESPAWN);
    CHECK_INT(err.code, FERRY_ESPAWN);
    CHECK_CONTAINS(err.message, "could not start");
    CHECK_CONTAINS(err.message, "/nonexistent/shell");
    CHECK_CONTAINS(err.message, "no such file");
    uv_run(ferry_test_loop(), UV_RUN_NOWAIT);
    CHECK_INT(r.exited, 0); /* a failed start fires no callback */

    spec = ferry_test_run_spec(&d, NULL, "echo x");
    spec.repository_dir = "/nonexistent/repository";
    CHECK_INT(ferry_test_run_start(inst, &spec, &r, &run, &err), FERRY_ESPAWN);
    CHECK_CONTAINS(err.message, "could not start");

    spec = ferry_test_run_spec(&d, NULL, NULL);
    CHECK_INT(ferry_test_run_start(inst, &spec, &r, &run, &err), FERRY_EINVAL);
    ferry_test_run_result_reset(&r);
    ferry_test_exec_dirs_free(&d);
}

/* Freeing the instance kills what still runs, without callbacks. */
static void test_process_fini_kills(void)
{
    ferry_plugin_instance *inst = ferry_test_instance(FERRY_PLUGIN_RUNTIME, "local-process", NULL);
    if (inst == NULL)
        return;
    ferry_test_exec_dirs d = ferry_test_exec_dirs_make("exec-fini");
    char *pidfile = ferry_asprintf("%s/main.pid", d.base);
    char *script = ferry_asprintf("echo $$ > '%s'; echo up; sleep 100", pidfile);
    ferry_run_spec spec = ferry_test_run_spec(&d, NULL, script);
    ferry_test_run_result r = {0};
    ferry_run *run = NULL;
    ferry_error_detail err;
    CHECK_INT(ferry_test_run_start(inst, &spec, &r, &run, &err), 0);
    CHECK_INT(ferry_test_wait_for(&r.got_output, 5000), 0);
    int pid = read_pid(pidfile);
    uint64_t t0 = ferry_mono_ms();
    ferry_test_instance_free(inst); /* runs the loop until everything closed */
    CHECK(ferry_mono_ms() - t0 < 3000);
    CHECK_INT(r.exited, 0);
    CHECK(pid > 0 && !process_alive(pid));
    free(script);
    free(pidfile);
    ferry_test_run_result_reset(&r);
    ferry_test_exec_dirs_free(&d);
}

static void test_process(void)
{
    ferry_plugin_instance *inst = ferry_test_instance(FERRY_PLUGIN_RUNTIME, "local-process", NULL);
    if (inst == NULL)
        return;
    test_process_streams_and_codes(inst);
    test_process_shebang(inst);
    test_process_environment(inst);
    test_process_stop(inst);
    test_process_leftovers_killed(inst);
    test_process_spawn_failure(inst);
    ferry_test_instance_free(inst);
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

static int file_exists(void *path)
{
    return access(path, F_OK) == 0;
}

/* Runs the loop until `path` exists: the agent writes it, no handle of the
 * loop says so. */
static int wait_for_file(const char *path, unsigned timeout_ms)
{
    return ferry_test_loop_until(file_exists, (void *)path, timeout_ms);
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
    ferry_test_outcome o = {0};
    CHECK_INT(RUN_OP(inst, &o, 5000, ops->launch(st, &req, o.op)), 0);
    CHECK_INT(o.status, 0);
    CHECK(o.instance_id != NULL && strncmp(o.instance_id, "local-", 6) == 0);
    if (o.instance_id == NULL)
        return;
    char *id = ferry_strdup(o.instance_id);
    int pid = atoi(id + 6);
    char *record = ferry_asprintf("%s/agent-%d.txt", ferry_test_tmp(), pid);
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

    CHECK_INT(RUN_OP(inst, &o, 5000, ops->list(st, "daemon-1", o.op)), 0);
    char *want_list =
        ferry_asprintf("[{\"instance_id\":\"%s\",\"state\":\"running\",\"worker_id\":\"w1\"}]", id);
    CHECK_STR(o.text, want_list);
    free(want_list);
    CHECK_INT(RUN_OP(inst, &o, 5000, ops->list(st, "other-daemon", o.op)), 0);
    CHECK_STR(o.text, "[]");
    CHECK_INT(RUN_OP(inst, &o, 5000, ops->describe(st, id, o.op)), 0);
    char *want_desc = ferry_asprintf("{\"instance_id\":\"%s\",\"state\":\"running\"}", id);
    CHECK_STR(o.text, want_desc);
    free(want_desc);

    CHECK_INT(RUN_OP(inst, &o, 5000, ops->terminate(st, id, o.op)), 0);
    CHECK_INT(o.status, 0);
    CHECK(!process_alive(pid));
    text = ferry_read_file(record, NULL);
    CHECK_CONTAINS(text, "terminated"); /* it got SIGTERM, not SIGKILL */
    free(text);
    CHECK_INT(RUN_OP(inst, &o, 5000, ops->list(st, "daemon-1", o.op)), 0);
    CHECK_STR(o.text, "[]");
    CHECK_INT(RUN_OP(inst, &o, 5000, ops->terminate(st, id, o.op)), 0);
    CHECK_INT(o.status, FERRY_ENOENT);
    CHECK_INT(RUN_OP(inst, &o, 5000, ops->describe(st, id, o.op)), 0);
    CHECK_INT(o.status, FERRY_ENOENT);
    ferry_test_outcome_reset(&o);
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
    ferry_test_outcome o = {0};
    CHECK_INT(RUN_OP(inst, &o, 5000, ops->launch(st, &req, o.op)), 0);
    CHECK_INT(o.status, 0);
    char *id = o.instance_id ? ferry_strdup(o.instance_id) : NULL;
    int pid = id ? atoi(id + 6) : 0;
    char *record = ferry_asprintf("%s/agent-%d.txt", ferry_test_tmp(), pid);
    CHECK_INT(wait_for_file(record, 5000), 0);
    char *text = ferry_read_file(record, NULL);
    char *want = ferry_asprintf("arg:--work-dir\narg:%s/w4\narg:--runtime\narg:local-process\n"
                                "arg:--slots\narg:4\ntoken:",
                                work_dir);
    CHECK_CONTAINS(text, want);
    free(want);
    free(text);
    if (id != NULL) {
        CHECK_INT(RUN_OP(inst, &o, 5000, ops->terminate(st, id, o.op)), 0);
        CHECK_INT(o.status, 0);
    }
    ferry_test_outcome_reset(&o);
    free(record);
    free(id);
}

static void test_compute_failures(ferry_plugin_instance *inst, const char *agent)
{
    const ferry_compute_ops *ops = &ferry_plugin_instance_plugin(inst)->ops.compute;
    void *st = ferry_plugin_instance_state(inst);
    ferry_test_outcome o = {0};
    ferry_launch_request req = launch_request("/nonexistent/ferry-agent", "w2");
    CHECK_INT(RUN_OP(inst, &o, 5000, ops->launch(st, &req, o.op)), 0);
    CHECK_INT(o.status, FERRY_ESPAWN);
    CHECK_CONTAINS(o.error.message, "/nonexistent/ferry-agent");
    CHECK(strstr(o.error.message, "boot-token-123") == NULL);

    req = launch_request(agent, "../escape");
    CHECK_INT(RUN_OP(inst, &o, 5000, ops->launch(st, &req, o.op)), FERRY_EUNSAFE);
    req = launch_request(agent, "w3");
    req.bootstrap_token = NULL;
    CHECK_INT(RUN_OP(inst, &o, 5000, ops->launch(st, &req, o.op)), FERRY_EINVAL);
    ferry_test_outcome_reset(&o);
}

/* An agent that ignores SIGTERM is killed after the grace; and fini ends
 * whatever still runs. */
static void test_compute_kill_and_fini(const char *agent, const char *work_dir)
{
    const char *settings[] = {
        "work_dir", work_dir,    "terminate_grace_ms",
        "300",      "agent_env", "FAKE_AGENT_DIR,FAKE_AGENT_IGNORE_TERM",
        NULL,
    };
    ferry_plugin_instance *inst = ferry_test_instance(FERRY_PLUGIN_COMPUTE, "local", settings);
    if (inst == NULL)
        return;
    const ferry_compute_ops *ops = &ferry_plugin_instance_plugin(inst)->ops.compute;
    void *st = ferry_plugin_instance_state(inst);
    setenv("FAKE_AGENT_IGNORE_TERM", "1", 1);
    ferry_launch_request req = launch_request(agent, "stubborn");
    ferry_test_outcome o = {0};
    CHECK_INT(RUN_OP(inst, &o, 5000, ops->launch(st, &req, o.op)), 0);
    unsetenv("FAKE_AGENT_IGNORE_TERM");
    char *id = ferry_strdup(o.instance_id);
    int pid = id ? atoi(id + 6) : 0;
    char *record = ferry_asprintf("%s/agent-%d.txt", ferry_test_tmp(), pid);
    CHECK_INT(wait_for_file(record, 5000), 0); /* its trap is set */
    uint64_t t0 = ferry_mono_ms();
    CHECK_INT(RUN_OP(inst, &o, 5000, ops->terminate(st, id, o.op)), 0);
    uint64_t took = ferry_mono_ms() - t0;
    CHECK_INT(o.status, 0);
    CHECK(took >= 250 && took < 3000);
    CHECK(!process_alive(pid));
    free(record);
    free(id);

    req = launch_request(agent, "left-running");
    CHECK_INT(RUN_OP(inst, &o, 5000, ops->launch(st, &req, o.op)), 0);
    pid = o.instance_id ? atoi(o.instance_id + 6) : 0;
    record = ferry_asprintf("%s/agent-%d.txt", ferry_test_tmp(), pid);
    CHECK_INT(wait_for_file(record, 5000), 0);
    ferry_test_instance_free(inst);
    CHECK(pid > 0 && !process_alive(pid));
    char *text = ferry_read_file(record, NULL);
    CHECK_CONTAINS(text, "terminated");
    free(text);
    free(record);
    ferry_test_outcome_reset(&o);
}

static void test_compute(void)
{
    char *agent = ferry_test_tmp_path("fake-agent.sh"), *work_dir = ferry_test_tmp_path("workers");
    CHECK_INT(ferry_write_file(agent, fake_agent, strlen(fake_agent)), 0);
    chmod(agent, 0755);
    setenv("FAKE_AGENT_DIR", ferry_test_tmp(), 1);
    setenv("FERRY_BOOTSTRAP_TOKEN", "inherited-token-must-be-replaced", 1);
    /* ferryd's credentials must not reach an agent. */
    setenv("AWS_SECRET_ACCESS_KEY", "operator-credential", 1);
    setenv("FERRY_ADMIN_TOKEN", "admin-token", 1);
    const char *settings[] = {"work_dir", work_dir, "agent_env",
                              "FAKE_AGENT_DIR, FAKE_AGENT_IGNORE_TERM", NULL};
    ferry_plugin_instance *inst = ferry_test_instance(FERRY_PLUGIN_COMPUTE, "local", settings);
    if (inst != NULL) {
        test_compute_launch_terminate(inst, agent, work_dir);
        test_compute_slots(inst, agent, work_dir);
        test_compute_failures(inst, agent);
        ferry_test_instance_free(inst);
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
    if (ferry_test_harness_init("test_local_plugins", &ferry_test_failures) < 0)
        return 2;
    test_storage();
    test_process();
    test_compute();
    ferry_test_harness_close();
    TEST_MAIN_END();
}
