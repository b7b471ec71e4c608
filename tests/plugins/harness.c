/* The plugin tests' shared scaffolding (see harness.h). */
#include "harness.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

static struct {
    uv_loop_t loop;
    ferry_plugin_registry reg;
    char tmp[128]; /* scratch folder of this run */
    int *failures; /* the test's count */
    int exec_dirs; /* made so far, for unique execution ids */
} ferry__t;

/* A failed check of the harness: said, and counted with the test's own. */
static void ferry__fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void ferry__fail(const char *fmt, ...)
{
    fprintf(stderr, "harness: ");
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n");
    (*ferry__t.failures)++;
}

/* ------------------------------------------------------------------------ */
/* Setup                                                                    */

int ferry_test_harness_init(const char *name, int *failures)
{
    ferry__t.failures = failures;
    const char *dir = getenv("FERRY_PLUGIN_DIR");
    if (dir == NULL) {
        fprintf(stderr, "FERRY_PLUGIN_DIR is not set (ctest sets it)\n");
        return -1;
    }
    ferry_log_set_name(name);
    snprintf(ferry__t.tmp, sizeof(ferry__t.tmp), "/tmp/ferry-%s-XXXXXX", name);
    if (mkdtemp(ferry__t.tmp) == NULL) {
        perror(ferry__t.tmp);
        return -1;
    }
    uv_loop_init(&ferry__t.loop);
    int rc = ferry_plugin_registry_scan(&ferry__t.reg, dir);
    if (rc < 0)
        ferry__fail("scanning %s for plugins: %s", dir, ferry_strerror(rc));
    return 0;
}

void ferry_test_harness_close(void)
{
    uv_run(&ferry__t.loop, UV_RUN_DEFAULT);
    ferry_plugin_registry_free(&ferry__t.reg);
    int rc = uv_loop_close(&ferry__t.loop);
    if (rc != 0)
        ferry__fail("closing the loop: %s (a handle is still open)", uv_strerror(rc));
    if (*ferry__t.failures == 0)
        ferry_rmtree(ferry__t.tmp);
}

uv_loop_t *ferry_test_loop(void)
{
    return &ferry__t.loop;
}

const char *ferry_test_tmp(void)
{
    return ferry__t.tmp;
}

char *ferry_test_tmp_path(const char *name)
{
    return ferry_asprintf("%s/%s", ferry__t.tmp, name);
}

/* ------------------------------------------------------------------------ */
/* The loop                                                                 */

static void ferry__on_deadline(uv_timer_t *t)
{
    *(int *)t->data = 1;
}

static void ferry__on_tick(uv_timer_t *t)
{
    (void)t; /* only wakes the loop */
}

int ferry_test_loop_until(int (*pred)(void *arg), void *arg, unsigned timeout_ms)
{
    int expired = 0;
    uv_timer_t deadline, tick;
    uv_timer_init(&ferry__t.loop, &deadline);
    uv_timer_init(&ferry__t.loop, &tick);
    deadline.data = &expired;
    uv_timer_start(&deadline, ferry__on_deadline, timeout_ms, 0);
    uv_timer_start(&tick, ferry__on_tick, 10, 10);
    int held = pred(arg);
    while (!held && !expired) {
        uv_run(&ferry__t.loop, UV_RUN_ONCE);
        held = pred(arg);
    }
    uv_close((uv_handle_t *)&deadline, NULL);
    uv_close((uv_handle_t *)&tick, NULL);
    /* The timers live on this stack: their closes must finish here. */
    uv_run(&ferry__t.loop, UV_RUN_NOWAIT);
    return held ? 0 : -1;
}

static int ferry__flag_set(void *arg)
{
    return *(const int *)arg != 0;
}

int ferry_test_wait_for(const int *flag, unsigned timeout_ms)
{
    return ferry_test_loop_until(ferry__flag_set, (void *)flag, timeout_ms);
}

static int ferry__never(void *arg)
{
    (void)arg;
    return 0;
}

void ferry_test_loop_for(unsigned ms)
{
    ferry_test_loop_until(ferry__never, NULL, ms);
}

/* ------------------------------------------------------------------------ */
/* Instances                                                                */

int ferry_test_instance_try(ferry_plugin_kind kind, const char *name, const char *const *settings,
                            ferry_plugin_instance **inst, ferry_error_detail *err)
{
    ferry_error_detail local;
    if (err == NULL)
        err = &local;
    memset(err, 0, sizeof(*err));
    *inst = NULL;
    const ferry_plugin *p = ferry_plugin_registry_get(&ferry__t.reg, kind, name);
    if (p == NULL) {
        ferry__fail("no %s plugin \"%s\" in FERRY_PLUGIN_DIR", ferry_plugin_kind_name(kind), name);
        return ferry_error_set(err, FERRY_ENOENT, 0, NULL, "no plugin %s", name);
    }
    ferry_settings *s = ferry_settings_new();
    for (const char *const *kv = settings; kv != NULL && kv[0] != NULL; kv += 2)
        if (kv[1] != NULL)
            ferry_settings_set(s, kv[0], kv[1]);
    int rc = ferry_plugin_instance_new(p, &ferry__t.loop, "test", s, NULL, inst, err);
    ferry_settings_free(s);
    if (rc < 0) {
        /* The host releases a half-made instance like a freed one. */
        uv_run(&ferry__t.loop, UV_RUN_NOWAIT);
    }
    return rc;
}

ferry_plugin_instance *ferry_test_instance(ferry_plugin_kind kind, const char *name,
                                           const char *const *settings)
{
    ferry_plugin_instance *inst = NULL;
    ferry_error_detail err;
    int rc = ferry_test_instance_try(kind, name, settings, &inst, &err);
    if (rc < 0)
        ferry__fail("%s: init: %s", name, err.message);
    return inst;
}

void ferry_test_instance_free(ferry_plugin_instance *inst)
{
    if (inst != NULL)
        ferry_plugin_instance_free(inst);
    uv_run(&ferry__t.loop, UV_RUN_DEFAULT);
}

/* ------------------------------------------------------------------------ */
/* Ops                                                                      */

void ferry_test_outcome_reset(ferry_test_outcome *o)
{
    free(o->text);
    free(o->instance_id);
    memset(o, 0, sizeof(*o));
}

static void ferry__op_done(void *arg, int status, const ferry_op_result *r)
{
    ferry_test_outcome *o = arg;
    o->calls++;
    o->status = status;
    o->size = r->size;
    /* A second completion is the host's to refuse; it must not leak here. */
    free(o->text);
    free(o->instance_id);
    o->text = ferry_strdup(r->text);
    o->instance_id = ferry_strdup(r->instance_id);
    if (r->error != NULL)
        o->error = *r->error;
}

ferry_op *ferry_test_op_begin(ferry_plugin_instance *inst, ferry_test_outcome *o)
{
    ferry_test_outcome_reset(o);
    o->op = ferry_op_new(inst, ferry__op_done, o);
    return o->op;
}

int ferry_test_op_end(ferry_test_outcome *o, int rc, unsigned timeout_ms, const char *what)
{
    if (rc < 0)
        ferry_op_abandon(o->op);
    else if (ferry_test_wait_for(&o->calls, timeout_ms) != 0)
        ferry__fail("%s: no completion within %u ms", what, timeout_ms);
    o->op = NULL;
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Runtime runs                                                             */

static void ferry__append(char **p, size_t *n, const char *data, size_t len)
{
    *p = ferry_xrealloc(*p, *n + len + 1);
    memcpy(*p + *n, data, len);
    *n += len;
    (*p)[*n] = '\0';
}

static void ferry__on_output(void *arg, ferry_stream stream, const char *data, size_t len)
{
    ferry_test_run_result *r = arg;
    if (r->exited)
        r->output_after_exit = 1;
    if (stream == FERRY_STREAM_STDOUT) {
        r->got_output = 1;
        ferry__append(&r->out, &r->out_len, data, len);
    } else if (stream == FERRY_STREAM_STDERR) {
        r->got_output = 1;
        ferry__append(&r->err, &r->err_len, data, len);
    } else {
        ferry__append(&r->status, &r->status_len, data, len);
    }
}

static void ferry__on_exited(void *arg, int exit_code, const char *reason)
{
    ferry_test_run_result *r = arg;
    r->exited++;
    r->exit_code = exit_code;
    r->exited_at = ferry_mono_ms();
    snprintf(r->reason, sizeof(r->reason), "%s", reason ? reason : "");
}

void ferry_test_run_result_reset(ferry_test_run_result *r)
{
    free(r->out);
    free(r->err);
    free(r->status);
    memset(r, 0, sizeof(*r));
}

ferry_test_exec_dirs ferry_test_exec_dirs_make(const char *name)
{
    ferry_test_exec_dirs d;
    memset(&d, 0, sizeof(d));
    d.base = ferry_test_tmp_path(name);
    d.repository = ferry_asprintf("%s/repository", d.base);
    d.inputs = ferry_asprintf("%s/inputs", d.base);
    d.outputs = ferry_asprintf("%s/outputs", d.base);
    d.config = ferry_asprintf("%s/config", d.base);
    ferry_file_mkdirs(d.repository, 0755);
    ferry_file_mkdirs(d.inputs, 0755);
    ferry_file_mkdirs(d.outputs, 0755);
    ferry_file_mkdirs(d.config, 0755);
    /* Unique across runs too: a container runtime labels its containers
     * with it, and the daemon outlives the test. */
    snprintf(d.id, sizeof(d.id), "test-%d-%d-%s", (int)getpid(), ++ferry__t.exec_dirs, name);
    return d;
}

void ferry_test_exec_dirs_free(ferry_test_exec_dirs *d)
{
    free(d->base);
    free(d->repository);
    free(d->inputs);
    free(d->outputs);
    free(d->config);
}

ferry_run_spec ferry_test_run_spec(const ferry_test_exec_dirs *d, const char *image,
                                   const char *script)
{
    ferry_run_spec spec = {
        .struct_size = sizeof(spec),
        .execution_id = d->id,
        .image = image,
        .script = script,
        .repository_dir = d->repository,
        .inputs_dir = d->inputs,
        .outputs_dir = d->outputs,
        .config_dir = d->config,
    };
    return spec;
}

int ferry_test_run_start(ferry_plugin_instance *inst, const ferry_run_spec *spec,
                         ferry_test_run_result *r, ferry_run **run, ferry_error_detail *err)
{
    ferry_test_run_result_reset(r);
    memset(err, 0, sizeof(*err));
    ferry_run_callbacks cb = {.struct_size = sizeof(cb),
                              .arg = r,
                              .output = ferry__on_output,
                              .exited = ferry__on_exited};
    const ferry_runtime_ops *ops = &ferry_plugin_instance_plugin(inst)->ops.runtime;
    return ops->start(ferry_plugin_instance_state(inst), spec, &cb, run, err);
}

int ferry_test_run_script(ferry_plugin_instance *inst, const ferry_run_spec *spec,
                          ferry_test_run_result *r, unsigned timeout_ms)
{
    ferry_run *run = NULL;
    ferry_error_detail err;
    int rc = ferry_test_run_start(inst, spec, r, &run, &err);
    if (rc < 0) {
        ferry__fail("start: %s (%s)", ferry_err_name(rc), err.message);
        return rc;
    }
    if (r->exited != 0)
        ferry__fail("`exited` ran inside start");
    if (ferry_test_wait_for(&r->exited, timeout_ms) != 0) {
        fprintf(stderr, "no exited within %u ms (status so far: %s)\n", timeout_ms,
                r->status ? r->status : "");
        return FERRY_ETIMEDOUT;
    }
    return 0;
}
