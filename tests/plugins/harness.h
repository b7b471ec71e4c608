/* What the plugin tests (test_local_plugins, test_s3_storage,
 * test_local_docker) share: the plugins of FERRY_PLUGIN_DIR loaded through
 * core's real loader and instantiated through core's real host, so they see
 * the host API ferryd and ferry-agent give them; one uv loop that the test
 * runs itself; waiting for an op's `done` or a run's `exited`; a scratch
 * folder for the run.
 *
 * Modelled on sdk/conformance/harness.c, not linked with it: that harness
 * wraps the host API of one plugin to catch contract breaches and reports
 * in TAP, while these tests use several plugins of one registry, the host
 * as it is, and the CHECK macros of unit/test.h.
 *
 * The harness's own checks (a plugin missing from the folder, an instance
 * that must start and does not, an op that does not complete in time, a
 * handle left open at the end) print a line and add to the failures the
 * test counts, so TEST_MAIN_END sees them. One harness a process.
 */
#ifndef FERRY_TESTS_PLUGINS_HARNESS_H
#define FERRY_TESTS_PLUGINS_HARNESS_H

#include <stdint.h>

#include <uv.h>

#include "plugin.h"

/* ------------------------------------------------------------------------ */
/* Setup                                                                    */

/* Loads every plugin of $FERRY_PLUGIN_DIR, opens the loop and makes the
 * scratch folder /tmp/ferry-<name>-XXXXXX; log lines carry `name`. The
 * harness's failed checks add to *failures (unit/test.h's
 * ferry_test_failures). -1, the reason printed, when the test cannot run
 * at all (no FERRY_PLUGIN_DIR, no scratch folder). */
int ferry_test_harness_init(const char *name, int *failures);
/* Runs the loop dry (the plugins' close callbacks are their code: they run
 * before the plugins are unloaded), unloads the plugins and closes the loop.
 * The scratch folder goes when nothing failed, else it stays for a look. */
void ferry_test_harness_close(void);

uv_loop_t *ferry_test_loop(void);
/* The scratch folder, and "<scratch folder>/<name>" (caller frees). */
const char *ferry_test_tmp(void);
char *ferry_test_tmp_path(const char *name);

/* ------------------------------------------------------------------------ */
/* The loop                                                                 */

/* Runs the loop until pred(arg) holds or timeout_ms pass: 0 when it holds,
 * -1 when not. A tick re-checks pred every few ms, for conditions no handle
 * of the loop wakes it for (a file a process writes). */
int ferry_test_loop_until(int (*pred)(void *arg), void *arg, unsigned timeout_ms);
/* The same until *flag is set (a callback's counter). */
int ferry_test_wait_for(const int *flag, unsigned timeout_ms);
/* Runs the loop for ms milliseconds. */
void ferry_test_loop_for(unsigned ms);

/* ------------------------------------------------------------------------ */
/* Instances                                                                */

/* An instance of the `kind` plugin `name` on the harness's loop, with
 * `settings`: "key", "value" pairs that end at a NULL key (NULL: none); a
 * NULL value leaves its key unset. Returns init's code; *inst is set only
 * on 0, err (may be NULL) filled otherwise. An init that fails is a result
 * here, not a failure; a plugin missing from the folder is. */
int ferry_test_instance_try(ferry_plugin_kind kind, const char *name, const char *const *settings,
                            ferry_plugin_instance **inst, ferry_error_detail *err);
/* The same for an instance that must start: NULL, the plugin's reason
 * printed and counted as a failure, when it does not. */
ferry_plugin_instance *ferry_test_instance(ferry_plugin_kind kind, const char *name,
                                           const char *const *settings);
/* Frees `inst` (NULL: nothing) and runs the loop dry, so that its fini,
 * its canceled ops' `done` and its handles' closes have all run on return.
 * Only for an instance whose loop has nothing else to run: a second one
 * still in use would keep a dry run from ever ending. */
void ferry_test_instance_free(ferry_plugin_instance *inst);

/* ------------------------------------------------------------------------ */
/* Ops                                                                      */

/* What `done` of the op last begun with this outcome said. */
typedef struct ferry_test_outcome {
    ferry_op *op; /* the op to pass to the plugin's call, while it is going */
    int calls;    /* times `done` ran */
    int status;
    int64_t size;
    char *text;
    char *instance_id;
    ferry_error_detail error; /* when status < 0 */
} ferry_test_outcome;

/* Frees the copies and zeroes the outcome. */
void ferry_test_outcome_reset(ferry_test_outcome *o);
/* An op in two steps, so that the plugin call between them is plain C:
 *   ferry_test_op_begin(inst, &o);
 *   rc = ferry_test_op_end(&o, ops->head(state, key, o.op), 5000, "head");
 * begin resets `o` and makes o->op. end abandons the op when the call
 * returned a negative code (`done` never runs then), else runs the loop
 * until `done` ran, a failure named by `what` when it does not within
 * timeout_ms. end returns `rc`. */
ferry_op *ferry_test_op_begin(ferry_plugin_instance *inst, ferry_test_outcome *o);
int ferry_test_op_end(ferry_test_outcome *o, int rc, unsigned timeout_ms, const char *what);

#define FERRY_TEST__STR2(x) #x
#define FERRY_TEST__STR(x) FERRY_TEST__STR2(x)
/* RUN_OP(inst, &o, timeout_ms, call): both steps around `call`, an
 * expression that passes o.op to a plugin op; evaluates to the call's
 * return value. A timeout is reported with the call's place and text. */
#define RUN_OP(inst, o, timeout_ms, call)                                                          \
    ferry_test_op_end((o), (ferry_test_op_begin((inst), (o)), (call)), (timeout_ms),               \
                      __FILE__ ":" FERRY_TEST__STR(__LINE__) ": " #call)

/* ------------------------------------------------------------------------ */
/* Runtime runs                                                             */

/* What a run's callbacks saw. */
typedef struct ferry_test_run_result {
    char *out, *err, *status; /* each stream's bytes, NUL-terminated; NULL: none */
    size_t out_len, err_len, status_len;
    int got_output; /* stdout or stderr bytes came */
    int exited;     /* times `exited` ran */
    int exit_code;
    char reason[1024];
    int output_after_exit;
    uint64_t exited_at; /* ferry_mono_ms() when `exited` last ran */
} ferry_test_run_result;

/* Frees the streams' bytes and zeroes the result. */
void ferry_test_run_result_reset(ferry_test_run_result *r);

/* The folders of one execution under the scratch folder, made. */
typedef struct ferry_test_exec_dirs {
    char *base, *repository, *inputs, *outputs, *config;
    char id[64]; /* an execution id of its own: test-<pid>-<n>-<name> */
} ferry_test_exec_dirs;

ferry_test_exec_dirs ferry_test_exec_dirs_make(const char *name);
void ferry_test_exec_dirs_free(ferry_test_exec_dirs *d);
/* A spec that runs `script` (in `image`: NULL for none) in d's folders. */
ferry_run_spec ferry_test_run_spec(const ferry_test_exec_dirs *d, const char *image,
                                   const char *script);

/* The runtime's start with callbacks that fill `r` (reset first); err is
 * zeroed first. Returns start's code; checks nothing. */
int ferry_test_run_start(ferry_plugin_instance *inst, const ferry_run_spec *spec,
                         ferry_test_run_result *r, ferry_run **run, ferry_error_detail *err);
/* Starts a run and waits for its end: 0 when `exited` came within
 * timeout_ms, FERRY_ETIMEDOUT when not, start's code when it failed. A
 * failed start, and `exited` inside start, are failures. */
int ferry_test_run_script(ferry_plugin_instance *inst, const ferry_run_spec *spec,
                          ferry_test_run_result *r, unsigned timeout_ms);

#endif
