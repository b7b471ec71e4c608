/* ferry-conformance: the parts the kind suites share.
 *
 * The report (TAP-like "ok N - ..." lines), and a harness around core's
 * plugin host. The harness hands the plugin a wrapped host API: every host
 * call goes through it first, so the checks see what the real host hides
 * (a second completion it only logs, a call after fini it cannot survive,
 * a call from a worker thread it aborts on) and count it instead.
 */
#ifndef FERRY_CONFORMANCE_H
#define FERRY_CONFORMANCE_H

#include <stdint.h>

#include <uv.h>

#include "plugin.h"

/* Waits, in milliseconds. Generous: a store may be a network service. */
#define FERRY_CONF_OP_TIMEOUT_MS 30000
/* An op call must return within this; blocking work belongs to queue_work. */
#define FERRY_CONF_PROMPT_MS 500
/* How long the checks keep watching after fini for calls that come late. */
#define FERRY_CONF_AFTER_FINI_MS 500

/* ------------------------------------------------------------------------ */
/* Report                                                                   */

/* Counts shared with the parent process, which prints the summary even when
 * the plugin crashes the child that runs the checks. */
typedef struct ferry_conf_tally {
    int n, passed, failed, skipped;
} ferry_conf_tally;

void ferry_conf_report_init(ferry_conf_tally *tally);
/* Prints "ok N - what" or "not ok N - what"; returns `pass`. */
int ferry_conf_check(int pass, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* "ok N - what # SKIP why": a check that does not apply to this plugin. */
void ferry_conf_skip(const char *why, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* "#   text": detail under the check just printed. */
void ferry_conf_diag(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ------------------------------------------------------------------------ */
/* Harness                                                                  */

/* What the checks learn about one plugin instance. Kept until exit, so a
 * plugin that calls back late never reaches freed memory of ours. */
typedef struct ferry_conf_inst {
    ferry_plugin_instance *inst; /* NULL when init failed */
    ferry_plugin_ctx *ctx;
    void *state;
    int init_rc;
    ferry_error_detail init_err; /* as the plugin filled it */
    int freeing;                 /* ferry_conf_instance_free() was called */
    int fini_returned;
    struct ferry_conf_inst *next;
} ferry_conf_inst;

/* One asynchronous op, from the call to the host's `done`. */
typedef struct ferry_conf_op {
    char *what; /* "put_file \"key\"", for messages */
    ferry_conf_inst *ci;
    ferry_op *op;
    int rc;          /* what the op call returned */
    int completions; /* op_complete calls by the plugin */
    int done;        /* `done` calls by the host */
    int status;
    int64_t size;
    char *text;
    char *instance_id;
    ferry_error_detail error; /* the host's copy, when status < 0 */
    int plugin_detail;        /* the plugin passed a detail with a message */
    uint64_t t0;
    struct ferry_conf_op *next;
} ferry_conf_op;

/* Things the plugin must never do; counted, and reported at the end. */
typedef enum ferry_conf_violation_kind {
    FERRY_CONF_V_COMPLETION, /* a second completion, or one on no live op */
    FERRY_CONF_V_OFF_LOOP,   /* a loop-thread call from another thread */
    FERRY_CONF_V_AFTER_FINI, /* a host call or callback after fini returned */
    FERRY_CONF_V_SECRET,     /* a watched secret in a log line or a result */
    FERRY_CONF_V_N
} ferry_conf_violation_kind;

/* Loads nothing: wraps the already loaded `p` for the instances below. */
void ferry_conf_harness_init(const ferry_plugin *p, const ferry_settings *secrets);
/* Once every instance is freed: the summary checks (ferry_conf_report_host)
 * and the open-handle check for `kind`, then the records go. NULL: no
 * report (init failed, nothing ran). */
void ferry_conf_harness_close(const char *kind);
uv_loop_t *ferry_conf_loop(void);
int ferry_conf_on_loop_thread(void);

/* Always returns a record; ci->inst is NULL when init failed. */
ferry_conf_inst *ferry_conf_instance_new(const ferry_settings *settings);
/* Frees the instance and runs the loop until its fini returned, then a
 * little longer to catch calls that come after it. */
void ferry_conf_instance_free(ferry_conf_inst *ci);
const ferry_plugin *ferry_conf_plugin(void);

/* An op in three steps, so that the call between them is plain C:
 *   o = ferry_conf_op_begin(ci, "get_file %s", key);
 *   ferry_conf_op_started(o, ops->get_file(state, key, path, o->op));
 *   ferry_conf_op_wait(o, FERRY_CONF_OP_TIMEOUT_MS);                     */
ferry_conf_op *ferry_conf_op_begin(ferry_conf_inst *ci, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
int ferry_conf_op_started(ferry_conf_op *o, int rc);
/* 1 once `done` ran (or the call failed), 0 on timeout. */
int ferry_conf_op_wait(ferry_conf_op *o, unsigned timeout_ms);
/* The call's negative code, else the completion status, else
 * FERRY_CONF_NOT_DONE. */
#define FERRY_CONF_NOT_DONE 1
int ferry_conf_op_result(const ferry_conf_op *o);
/* "completed with FERRY_ENOENT (no object x)", for diagnostics. */
const char *ferry_conf_op_outcome(const ferry_conf_op *o, char *buf, size_t cap);

/* A synchronous plugin call (runtime start and stop, store presign) for
 * the promptness summary. */
void ferry_conf_note_call(const char *what, uint64_t ms);

void ferry_conf_violation(ferry_conf_violation_kind kind, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* A string that must never show up in a log line or an op result. */
void ferry_conf_watch_secret(const char *secret);

/* Runs the loop until pred(arg) holds or timeout_ms pass; 1 when it holds. */
int ferry_conf_run_until(int (*pred)(void *arg), void *arg, unsigned timeout_ms);
/* Runs the loop for ms milliseconds. */
void ferry_conf_run_for(unsigned ms);

/* Runs `fn` in ferry_conf_harness_close(), once every instance is gone. */
void ferry_conf_at_close(void (*fn)(void));

/* The summary checks every kind ends with: exactly-once completion, prompt
 * op calls, loop-thread calls, nothing after fini, no leaked secret. */
void ferry_conf_report_host(const char *kind);

/* ------------------------------------------------------------------------ */
/* Kind suites                                                              */

/* `dir`: an empty scratch folder of this run. */
void ferry_conf_store(ferry_conf_inst *ci, const ferry_settings *settings, const char *dir);
/* The image of runtime runs (--image); container runtimes need one. */
extern const char *ferry_conf_run_image;
void ferry_conf_runtime(ferry_conf_inst *ci, const ferry_settings *settings, const char *dir);
void ferry_conf_compute(ferry_conf_inst *ci, const ferry_settings *settings, const char *dir);

/* Shared file helpers. */
char *ferry_conf_pattern(size_t len, unsigned seed);
int ferry_conf_file_equals(const char *path, const char *data, size_t len);
int ferry_conf_exists(const char *path);

#endif
