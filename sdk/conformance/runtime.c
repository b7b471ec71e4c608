/* ferry-conformance: runtime plugins (sdk/include/ferry/runtime.h).
 *
 * The scripts are plain POSIX sh and need only printf, cat, sleep, head
 * and tr, so that a container runtime passes them with a small image. The
 * checks never compare paths: FERRY_*_DIR point where the commands see the
 * folders, which for a container is not the host path. Each folder holds a
 * marker file instead, and the script reads it back through the variable.
 */
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conformance.h"
#include "util.h"

#define FERRY__RUN_TIMEOUT_MS 15000
#define FERRY__OUTPUT_CAP (4 * 1024 * 1024)
#define FERRY__GRACE_MS 1000
/* How late stop() may end a script that ignores SIGTERM. */
#define FERRY__STOP_SLACK_MS 2000

typedef struct ferry__runtime {
    ferry_conf_inst *ci;
    const ferry_runtime_ops *ops;
    void *st;
    char *dirs[4]; /* repository, inputs, outputs, config */
} ferry__runtime;

static const char *const ferry__dir_names[4] = {"repository", "inputs", "outputs", "config"};

/* What the callbacks of one run saw. Freed only once every instance is
 * gone: a plugin that calls back late reaches memory that is still ours. */
typedef struct ferry__run {
    ferry_conf_inst *ci;
    ferry_run *run;
    char *out[2]; /* stdout, stderr (first FERRY__OUTPUT_CAP bytes) */
    size_t len[2];
    size_t total[2];
    int exited;
    int exit_code;
    char *reason;
    int reason_null;
    int starting;     /* inside start() */
    int in_start;     /* a callback came from inside start() */
    int output_after; /* output after exited */
    int bad_stream;   /* output on a stream that is none of the three */
    uint64_t exited_at;
    long stop_ms;  /* from stop() to `exited`, or -1 */
    char why[600]; /* what went wrong on the checks' side, for diag */
    struct ferry__run *next;
} ferry__run;

static ferry__run *ferry__runs;

const char *ferry_conf_run_image = "busybox";

/* ------------------------------------------------------------------------ */
/* Callbacks                                                                */

/* What every callback checks first: thread, fini, inside start(). */
static void ferry__callback_common(ferry__run *r, const char *what)
{
    if (!ferry_conf_on_loop_thread())
        ferry_conf_violation(FERRY_CONF_V_OFF_LOOP, "%s called off the loop thread", what);
    if (r->ci->fini_returned)
        ferry_conf_violation(FERRY_CONF_V_AFTER_FINI, "%s called after fini returned", what);
    if (r->starting)
        r->in_start = 1;
}

static void ferry__on_output(void *arg, ferry_stream stream, const char *data, size_t len)
{
    ferry__run *r = arg;
    ferry__callback_common(r, "output");
    if (r->exited)
        r->output_after = 1;
    if (stream == FERRY_STREAM_STATUS)
        return; /* runtime progress: free text */
    if (stream != FERRY_STREAM_STDOUT && stream != FERRY_STREAM_STDERR) {
        r->bad_stream = 1;
        return;
    }
    int i = stream == FERRY_STREAM_STDOUT ? 0 : 1;
    r->total[i] += len;
    size_t room = FERRY__OUTPUT_CAP - r->len[i];
    size_t take = len < room ? len : room;
    r->out[i] = ferry_xrealloc(r->out[i], r->len[i] + take + 1);
    memcpy(r->out[i] + r->len[i], data, take);
    r->len[i] += take;
    r->out[i][r->len[i]] = '\0';
}

static void ferry__on_exited(void *arg, int exit_code, const char *reason)
{
    ferry__run *r = arg;
    ferry__callback_common(r, "exited");
    if (r->exited++ > 0)
        return;
    r->exit_code = exit_code;
    r->reason_null = reason == NULL;
    r->reason = ferry_strdup(reason ? reason : "");
    r->exited_at = ferry_mono_ms();
}

static const char *ferry__out(const ferry__run *r, int i)
{
    return r->out[i] ? r->out[i] : "";
}

static ferry_run_spec ferry__spec(const ferry__runtime *rt, const char *script)
{
    ferry_run_spec spec = {
        .struct_size = sizeof(spec),
        .execution_id = "00000000-0000-4000-8000-00000000c0f0",
        .image = ferry_conf_run_image,
        .script = script,
        .repository_dir = rt->dirs[0],
        .inputs_dir = rt->dirs[1],
        .outputs_dir = rt->dirs[2],
        .config_dir = rt->dirs[3],
    };
    return spec;
}

/* Notes what went wrong, for ferry__diag_run under the check's line. */
static void ferry__why(ferry__run *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void ferry__why(ferry__run *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->why, sizeof(r->why), fmt, ap);
    va_end(ap);
}

/* start(), with the run's record (always made); err is filled on a
 * negative return. */
static int ferry__start(ferry_conf_inst *ci, const ferry_run_spec *spec, ferry__run **out,
                        ferry_error_detail *err)
{
    ferry__run *r = ferry_xcalloc(1, sizeof(*r));
    r->ci = ci;
    r->stop_ms = -1;
    r->next = ferry__runs;
    ferry__runs = r;
    *out = r;
    ferry_run_callbacks cb = {.struct_size = sizeof(cb),
                              .arg = r,
                              .output = ferry__on_output,
                              .exited = ferry__on_exited};
    memset(err, 0, sizeof(*err));
    const ferry_runtime_ops *ops = &ferry_conf_plugin()->ops.runtime;
    r->starting = 1;
    uint64_t t0 = ferry_mono_ms();
    int rc = ops->start(ferry_plugin_instance_state(ci->inst), spec, &cb, &r->run, err);
    ferry_conf_note_call("start", ferry_mono_ms() - t0);
    r->starting = 0;
    if (rc < 0)
        ferry__why(r, "start returned %s: %s", ferry_err_name(rc), err->message);
    return rc;
}

static int ferry__exited_pred(void *arg)
{
    return ((ferry__run *)arg)->exited > 0;
}

/* Starts a script and waits for `exited`, then a little more for a second
 * one. 0 when it started and exited in time. */
static int ferry__run_script(ferry__runtime *rt, const ferry_run_spec *spec, ferry__run **out)
{
    ferry_error_detail err;
    int rc = ferry__start(rt->ci, spec, out, &err);
    if (rc < 0)
        return rc;
    if (!ferry_conf_run_until(ferry__exited_pred, *out, FERRY__RUN_TIMEOUT_MS)) {
        ferry__why(*out, "no exited within %d ms", FERRY__RUN_TIMEOUT_MS);
        return FERRY_ETIMEDOUT;
    }
    ferry_conf_run_for(200);
    return 0;
}

static void ferry__diag_run(const ferry__run *r)
{
    if (r->why[0] != '\0')
        ferry_conf_diag("%s", r->why);
    if (r->stop_ms >= 0)
        ferry_conf_diag("exited %ld ms after stop()", r->stop_ms);
    ferry_conf_diag("exited %d time(s), code %d, reason %s%s%s", r->exited, r->exit_code,
                    r->reason_null ? "NULL" : "\"", r->reason_null ? "" : r->reason,
                    r->reason_null ? "" : "\"");
    ferry_conf_diag("stdout (%zu bytes): %.300s", r->total[0], ferry__out(r, 0));
    ferry_conf_diag("stderr (%zu bytes): %.300s", r->total[1], ferry__out(r, 1));
}

/* ------------------------------------------------------------------------ */
/* Checks                                                                   */

/* A check on a run; shows what the run saw when it fails. */
static void ferry__check_run(const ferry__run *r, int pass, const char *what)
{
    if (!ferry_conf_check(pass, "runtime: %s", what))
        ferry__diag_run(r);
}

static void ferry__check_streams(ferry__runtime *rt)
{
    ferry_run_spec spec = ferry__spec(rt, "printf 'out-1\\n'; printf 'err-1\\n' >&2; "
                                          "printf 'out-2\\n'");
    ferry__run *r;
    int rc = ferry__run_script(rt, &spec, &r);
    ferry__check_run(r, rc == 0 && !r->in_start, "start returns 0 and no callback fires inside it");
    ferry__check_run(r,
                     strcmp(ferry__out(r, 0), "out-1\nout-2\n") == 0 &&
                         strcmp(ferry__out(r, 1), "err-1\n") == 0 && !r->bad_stream,
                     "stdout and stderr bytes reach output() on their streams");
    ferry__check_run(r, r->exited == 1 && !r->output_after && r->exit_code == 0 && r->reason_null,
                     "exited fires once, after all output, with 0 and a NULL reason");
}

static void ferry__check_exit_codes(ferry__runtime *rt)
{
    ferry_run_spec spec = ferry__spec(rt, "exit 7");
    ferry__run *r;
    int rc = ferry__run_script(rt, &spec, &r);
    ferry__check_run(r, rc == 0 && r->exit_code == 7 && r->exited == 1, "exit 7 gives code 7");
    spec = ferry__spec(rt, "printf 'before\\n'; kill -KILL $$");
    rc = ferry__run_script(rt, &spec, &r);
    ferry__check_run(r,
                     rc == 0 && r->exit_code == 128 + SIGKILL && !r->reason_null && r->exited == 1,
                     "a script killed by signal 9 gives 137 and a reason");
}

/* Prints "NAME=<marker of the folder NAME points to>" for each variable. */
static const char ferry__env_script[] =
    "for v in REPOSITORY INPUTS OUTPUTS CONFIG; do\n"
    "  eval \"d=\\${%s${v}_DIR}\"\n"
    "  printf '%%s=%%s\\n' \"$v\" \"$(cat \"$d/conformance-marker\" 2>/dev/null || echo unset)\"\n"
    "done\n"
    "printf 'cwd=%%s\\n' \"$(cat ./conformance-marker 2>/dev/null || echo elsewhere)\"\n"
    "printf 'var=%%s\\n' \"$CONFORMANCE_VAR\"\n"
    "printf 'written\\n' > \"${%sOUTPUTS_DIR}/conformance-written\"\n";

static const char ferry__env_want[] =
    "REPOSITORY=repository\nINPUTS=inputs\nOUTPUTS=outputs\nCONFIG=config\n";

/* The run's record, whether or not the script ran to its end. */
static ferry__run *ferry__run_env_script(ferry__runtime *rt, const char *prefix, int aliases)
{
    char *script = ferry_asprintf(ferry__env_script, prefix, prefix);
    const char *env[] = {"CONFORMANCE_VAR=a b  c", NULL};
    ferry_run_spec spec = ferry__spec(rt, script);
    spec.env = env;
    spec.valohai_aliases = aliases;
    ferry__run *r = NULL;
    ferry__run_script(rt, &spec, &r);
    free(script);
    return r;
}

static void ferry__check_environment(ferry__runtime *rt)
{
    ferry__run *r = ferry__run_env_script(rt, "FERRY_", 0);
    const char *out = ferry__out(r, 0);
    ferry__check_run(r, strncmp(out, ferry__env_want, strlen(ferry__env_want)) == 0,
                     "FERRY_REPOSITORY_DIR, _INPUTS_DIR, _OUTPUTS_DIR and _CONFIG_DIR point to "
                     "the given folders");
    ferry__check_run(r, strstr(out, "\ncwd=repository\n") != NULL,
                     "the working directory is repository_dir");
    ferry__check_run(r, strstr(out, "\nvar=a b  c\n") != NULL,
                     "the spec's env reaches the commands");
    char *written = ferry_asprintf("%s/conformance-written", rt->dirs[2]);
    ferry__check_run(r, ferry_conf_file_equals(written, "written\n", 8),
                     "a file written to FERRY_OUTPUTS_DIR lands in outputs_dir");
    free(written);
    r = ferry__run_env_script(rt, "VH_", 1);
    ferry__check_run(r, strncmp(ferry__out(r, 0), ferry__env_want, strlen(ferry__env_want)) == 0,
                     "with valohai_aliases, VH_*_DIR point to the same folders");
}

static int ferry__has_output(void *arg)
{
    return ((ferry__run *)arg)->total[0] > 0;
}

/* Starts `script`, waits for its first output (its traps are set by then)
 * and calls stop(); 0 when `exited` came, with r->stop_ms set. */
static int ferry__stop_after_output(ferry__runtime *rt, const char *script, int grace_ms,
                                    ferry__run **out)
{
    ferry_run_spec spec = ferry__spec(rt, script);
    ferry_error_detail err;
    int rc = ferry__start(rt->ci, &spec, out, &err);
    ferry__run *r = *out;
    if (rc < 0)
        return rc;
    if (!ferry_conf_run_until(ferry__has_output, r, FERRY__RUN_TIMEOUT_MS) || r->exited) {
        ferry__why(r, "the script did not get going");
        return -1;
    }
    uint64_t t0 = ferry_mono_ms();
    rc = rt->ops->stop(rt->st, r->run, grace_ms);
    ferry_conf_note_call("stop", ferry_mono_ms() - t0);
    if (rc < 0) {
        ferry__why(r, "stop returned %s", ferry_err_name(rc));
        return rc;
    }
    if (!ferry_conf_run_until(ferry__exited_pred, r, grace_ms + FERRY__RUN_TIMEOUT_MS)) {
        ferry__why(r, "no exited after stop()");
        return -1;
    }
    r->stop_ms = (long)(r->exited_at - t0);
    ferry_conf_run_for(300); /* a second `exited` would come now */
    return 0;
}

static void ferry__check_stop(ferry__runtime *rt)
{
    ferry__run *r;
    int rc = ferry__stop_after_output(rt, "trap '' TERM; printf 'ready\\n'; sleep 60",
                                      FERRY__GRACE_MS, &r);
    char what[256];
    snprintf(what, sizeof(what),
             "stop() with grace %d ms ends a script that ignores SIGTERM after the grace, within "
             "%d ms more; exited once, with a reason",
             FERRY__GRACE_MS, FERRY__STOP_SLACK_MS);
    ferry__check_run(r,
                     rc == 0 && r->stop_ms >= FERRY__GRACE_MS - 100 &&
                         r->stop_ms <= FERRY__GRACE_MS + FERRY__STOP_SLACK_MS && r->exited == 1 &&
                         !r->reason_null,
                     what);
    rc = ferry__stop_after_output(rt,
                                  "trap 'printf \"got-term\\n\"; exit 0' TERM; "
                                  "printf 'ready\\n'; sleep 60 & wait",
                                  10 * FERRY__GRACE_MS, &r);
    ferry__check_run(r,
                     rc == 0 && r->stop_ms < 5 * FERRY__GRACE_MS &&
                         strstr(ferry__out(r, 0), "got-term") != NULL && r->exited == 1,
                     "stop() sends SIGTERM first: a script that traps it ends long before the "
                     "grace");
}

/* runtime.h allows either: a negative start with a detail and no callback,
 * or a started run whose `exited` says -1 and why. */
static void ferry__check_bad_shell(ferry__runtime *rt)
{
    ferry_run_spec spec = ferry__spec(rt, "printf 'never\\n'");
    spec.shell = "/nonexistent/ferry-conformance-shell";
    ferry__run *r;
    ferry_error_detail err;
    int rc = ferry__start(rt->ci, &spec, &r, &err);
    ferry_conf_run_until(ferry__exited_pred, r, rc < 0 ? 300 : FERRY__RUN_TIMEOUT_MS);
    ferry_conf_run_for(200);
    int ok = rc < 0 ? err.code < 0 && err.message[0] != '\0' && r->exited == 0
                    : r->exited == 1 && r->exit_code == -1 && !r->reason_null;
    if (rc < 0 && err.code >= 0)
        ferry__why(r, "start returned %s with err->code %d", ferry_err_name(rc), err.code);
    ferry__check_run(r, ok,
                     "a nonexistent shell fails cleanly (start fails with a detail, or exited "
                     "gives -1 and a reason)");
}

static void ferry__check_big_output(ferry__runtime *rt)
{
    ferry_run_spec spec = ferry__spec(rt, "head -c 2000000 /dev/zero | tr '\\000' a; exit 3");
    ferry__run *r;
    int rc = ferry__run_script(rt, &spec, &r);
    ferry__check_run(r, rc == 0 && r->total[0] == 2000000 && r->exit_code == 3 && !r->output_after,
                     "2 MB of output right before the exit all arrive before exited");
}

static int ferry__both_exited(void *arg)
{
    ferry__run **r = arg;
    return r[0]->exited && r[1]->exited;
}

static void ferry__check_two_at_once(ferry__runtime *rt)
{
    ferry_run_spec a = ferry__spec(rt, "sleep 0.3; printf 'A\\n'; exit 1");
    ferry_run_spec b = ferry__spec(rt, "printf 'B\\n'; sleep 0.1; exit 2");
    ferry__run *r[2];
    ferry_error_detail err;
    int ra = ferry__start(rt->ci, &a, &r[0], &err);
    int rb = ferry__start(rt->ci, &b, &r[1], &err);
    int ok =
        ra == 0 && rb == 0 && ferry_conf_run_until(ferry__both_exited, r, FERRY__RUN_TIMEOUT_MS);
    ok = ok && strcmp(ferry__out(r[0], 0), "A\n") == 0 && strcmp(ferry__out(r[1], 0), "B\n") == 0 &&
         r[0]->exit_code == 1 && r[1]->exit_code == 2;
    if (!ferry_conf_check(ok, "runtime: two runs at once keep their output and exit codes apart")) {
        ferry__diag_run(r[0]);
        ferry__diag_run(r[1]);
    }
}

static void ferry__check_cleanup(ferry__runtime *rt)
{
    if (rt->ops->cleanup == NULL) {
        ferry_conf_skip("cleanup is not provided", "runtime: cleanup completes with 0");
        return;
    }
    ferry_conf_op *o = ferry_conf_op_begin(rt->ci, "cleanup");
    ferry_conf_op_started(o, rt->ops->cleanup(rt->st, o->op));
    ferry_conf_op_wait(o, FERRY_CONF_OP_TIMEOUT_MS);
    char buf[768];
    if (!ferry_conf_check(ferry_conf_op_result(o) == 0, "runtime: cleanup completes with 0"))
        ferry_conf_diag("%s", ferry_conf_op_outcome(o, buf, sizeof(buf)));
}

/* A second instance freed while its run is going: fini may end the run or
 * leave it, but nothing may call back after it returned (counted by the
 * callbacks, reported in the summary). */
static void ferry__check_free_running(ferry__runtime *rt, const ferry_settings *settings)
{
    ferry_conf_inst *ci = ferry_conf_instance_new(settings);
    if (!ferry_conf_check(ci->inst != NULL,
                          "runtime: a second instance with the same settings inits"))
        return;
    ferry_run_spec spec = ferry__spec(rt, "printf 'up\\n'; sleep 60");
    ferry__run *r;
    ferry_error_detail err;
    int rc = ferry__start(ci, &spec, &r, &err);
    if (rc == 0)
        ferry_conf_run_until(ferry__has_output, r, FERRY__RUN_TIMEOUT_MS);
    ferry_conf_instance_free(ci);
    ferry_conf_run_for(1000); /* the run's process goes in this while */
    ferry__check_run(r, rc == 0 && ci->fini_returned,
                     "freeing the instance with a run going reaches fini");
}

/* ------------------------------------------------------------------------ */
/* Setup                                                                    */

static void ferry__make_dirs(ferry__runtime *rt, const char *dir)
{
    for (int i = 0; i < 4; i++) {
        rt->dirs[i] = ferry_asprintf("%s/execution/%s", dir, ferry__dir_names[i]);
        ferry_file_mkdirs(rt->dirs[i], 0755);
        char *marker = ferry_asprintf("%s/conformance-marker", rt->dirs[i]);
        ferry_write_file(marker, ferry__dir_names[i], strlen(ferry__dir_names[i]));
        free(marker);
    }
}

static void ferry__free_runs(void)
{
    for (ferry__run *r = ferry__runs, *next; r != NULL; r = next) {
        next = r->next;
        free(r->out[0]);
        free(r->out[1]);
        free(r->reason);
        free(r);
    }
    ferry__runs = NULL;
}

void ferry_conf_runtime(ferry_conf_inst *ci, const ferry_settings *settings, const char *dir)
{
    ferry__runtime rt = {.ci = ci,
                         .ops = &ferry_conf_plugin()->ops.runtime,
                         .st = ferry_plugin_instance_state(ci->inst)};
    ferry__make_dirs(&rt, dir);
    ferry__check_streams(&rt);
    ferry__check_exit_codes(&rt);
    ferry__check_environment(&rt);
    ferry__check_stop(&rt);
    ferry__check_bad_shell(&rt);
    ferry__check_big_output(&rt);
    ferry__check_two_at_once(&rt);
    ferry__check_cleanup(&rt);
    ferry__check_free_running(&rt, settings);
    for (int i = 0; i < 4; i++)
        free(rt.dirs[i]);
    /* The records must outlive the main instance, freed after this. */
    ferry_conf_at_close(ferry__free_runs);
}
