/* ferry-conformance: the report and the wrapped host (see conformance.h).
 *
 * The plugin is instantiated through core's real host, so it sees the very
 * deferral and copying ferryd and ferry-agent do. Only the descriptor's
 * init and fini are swapped for ours: init passes the plugin a host API
 * whose functions check the call, count it, and forward it to the real one
 * only when that is safe. A call the real host could not survive (after
 * fini, off the loop thread, on an op it already freed) is counted and
 * dropped.
 */
#include "conformance.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

/* ------------------------------------------------------------------------ */
/* Report                                                                   */

static ferry_conf_tally *ferry__tally;

void ferry_conf_report_init(ferry_conf_tally *tally)
{
    ferry__tally = tally;
}

int ferry_conf_check(int pass, const char *fmt, ...)
{
    int n = ++ferry__tally->n;
    printf("%s %d - ", pass ? "ok" : "not ok", n);
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    fflush(stdout);
    if (pass)
        ferry__tally->passed++;
    else
        ferry__tally->failed++;
    return pass;
}

void ferry_conf_skip(const char *why, const char *fmt, ...)
{
    int n = ++ferry__tally->n;
    printf("ok %d - ", n);
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf(" # SKIP %s\n", why);
    fflush(stdout);
    ferry__tally->skipped++;
}

void ferry_conf_diag(const char *fmt, ...)
{
    printf("#   ");
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    fflush(stdout);
}

/* ------------------------------------------------------------------------ */
/* State                                                                    */

#define FERRY__MAX_SECRETS 8
#define FERRY__KEEP_MESSAGES 3

typedef struct ferry__violations {
    int count;
    char first[FERRY__KEEP_MESSAGES][256];
} ferry__violations;

static struct {
    const ferry_plugin *plugin;
    ferry_plugin wrapped; /* the loaded plugin with our init and fini */
    const ferry_settings *secrets;
    const ferry_host_api *real_host;
    uv_loop_t loop;
    uv_thread_t loop_thread;
    ferry_conf_inst *insts;   /* every instance, newest first */
    ferry_conf_inst *initing; /* the one whose init runs now */
    ferry_conf_op *ops;       /* every op, newest first */
    uv_mutex_t lock;          /* violations and secrets: workers may log */
    ferry__violations v[FERRY_CONF_V_N];
    char *secrets_watched[FERRY__MAX_SECRETS];
    int n_secrets;
    void (*at_close[4])(void);
    int n_at_close;
    char slowest[128];
    uint64_t slowest_ms;
    int n_calls;
} ferry__h;

uv_loop_t *ferry_conf_loop(void)
{
    return &ferry__h.loop;
}

int ferry_conf_on_loop_thread(void)
{
    uv_thread_t self = uv_thread_self();
    return uv_thread_equal(&self, &ferry__h.loop_thread);
}

const ferry_plugin *ferry_conf_plugin(void)
{
    return ferry__h.plugin;
}

void ferry_conf_violation(ferry_conf_violation_kind kind, const char *fmt, ...)
{
    uv_mutex_lock(&ferry__h.lock);
    ferry__violations *v = &ferry__h.v[kind];
    if (v->count < FERRY__KEEP_MESSAGES) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(v->first[v->count], sizeof(v->first[0]), fmt, ap);
        va_end(ap);
    }
    v->count++;
    uv_mutex_unlock(&ferry__h.lock);
}

void ferry_conf_watch_secret(const char *secret)
{
    uv_mutex_lock(&ferry__h.lock);
    if (ferry__h.n_secrets < FERRY__MAX_SECRETS && secret != NULL && secret[0] != '\0')
        ferry__h.secrets_watched[ferry__h.n_secrets++] = ferry_strdup(secret);
    uv_mutex_unlock(&ferry__h.lock);
}

/* Records a violation when `text` holds a watched secret. */
static void ferry__scan_secret(const char *where, const char *text)
{
    if (text == NULL)
        return;
    uv_mutex_lock(&ferry__h.lock);
    int leaked = 0;
    for (int i = 0; i < ferry__h.n_secrets && !leaked; i++)
        leaked = strstr(text, ferry__h.secrets_watched[i]) != NULL;
    uv_mutex_unlock(&ferry__h.lock);
    if (leaked)
        ferry_conf_violation(FERRY_CONF_V_SECRET, "a watched secret appears in %s", where);
}

void ferry_conf_note_call(const char *what, uint64_t ms)
{
    ferry__h.n_calls++;
    if (ms >= ferry__h.slowest_ms) {
        ferry__h.slowest_ms = ms;
        snprintf(ferry__h.slowest, sizeof(ferry__h.slowest), "%s", what);
    }
}

/* ------------------------------------------------------------------------ */
/* The wrapped host API                                                     */

static ferry_conf_inst *ferry__inst_by_ctx(ferry_plugin_ctx *ctx)
{
    for (ferry_conf_inst *ci = ferry__h.insts; ci != NULL; ci = ci->next)
        if (ci->ctx == ctx)
            return ci;
    return NULL;
}

/* 1 when forwarding `what` to the real host is safe. Calls that must come
 * from the loop thread pass loop_only. */
static int ferry__host_call_ok(ferry_conf_inst *ci, const char *what, int loop_only)
{
    if (ci == NULL) {
        ferry_conf_violation(FERRY_CONF_V_COMPLETION, "%s with a ctx the host never gave", what);
        return 0;
    }
    if (loop_only && !ferry_conf_on_loop_thread()) {
        ferry_conf_violation(FERRY_CONF_V_OFF_LOOP, "%s called off the loop thread", what);
        return 0;
    }
    if (ci->fini_returned) {
        ferry_conf_violation(FERRY_CONF_V_AFTER_FINI, "%s called after fini returned", what);
        return 0;
    }
    return 1;
}

static void ferry__log(ferry_plugin_ctx *ctx, ferry_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void ferry__log(ferry_plugin_ctx *ctx, ferry_log_level level, const char *fmt, ...)
{
    char line[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    ferry__scan_secret("a log line", line);
    if (ferry__host_call_ok(ferry__inst_by_ctx(ctx), "log", 0))
        ferry__h.real_host->log(ctx, level, "%s", line);
}

static void *ferry__loop(ferry_plugin_ctx *ctx)
{
    if (!ferry__host_call_ok(ferry__inst_by_ctx(ctx), "loop", 0))
        return NULL;
    return ferry__h.real_host->loop(ctx);
}

static const char *ferry__config_get(ferry_plugin_ctx *ctx, const char *key)
{
    if (!ferry__host_call_ok(ferry__inst_by_ctx(ctx), "config_get", 0))
        return NULL;
    return ferry__h.real_host->config_get(ctx, key);
}

static const char *ferry__secret_get(ferry_plugin_ctx *ctx, const char *name)
{
    if (!ferry__host_call_ok(ferry__inst_by_ctx(ctx), "secret_get", 0))
        return NULL;
    return ferry__h.real_host->secret_get(ctx, name);
}

/* The newest record of `op` whose `done` has not run; else the newest one
 * at all (a completion after `done`: the host has freed that op). */
static ferry_conf_op *ferry__op_find(const ferry_op *op, int *freed)
{
    ferry_conf_op *any = NULL;
    for (ferry_conf_op *o = ferry__h.ops; o != NULL; o = o->next) {
        if (o->op != op)
            continue;
        if (o->done == 0 && o->rc >= 0) {
            *freed = 0;
            return o;
        }
        if (any == NULL)
            any = o;
    }
    *freed = 1;
    return any;
}

static void ferry__scan_result(const ferry_conf_op *o, const ferry_op_result *r)
{
    if (r == NULL)
        return;
    char where[256];
    snprintf(where, sizeof(where), "the result of %s", o->what);
    ferry__scan_secret(where, r->text);
    ferry__scan_secret(where, r->instance_id);
    if (r->error != NULL)
        ferry__scan_secret(where, r->error->message);
}

static void ferry__op_complete(ferry_op *op, int status, const ferry_op_result *result)
{
    int freed = 0;
    ferry_conf_op *o = ferry__op_find(op, &freed);
    if (o == NULL) {
        ferry_conf_violation(FERRY_CONF_V_COMPLETION, "op_complete on an op the host never gave");
        return;
    }
    if (!ferry__host_call_ok(o->ci, "op_complete", 1))
        return;
    o->completions++;
    if (freed && o->rc < 0) {
        ferry_conf_violation(FERRY_CONF_V_COMPLETION, "%s was completed after its call returned %s",
                             o->what, ferry_err_name(o->rc));
        return;
    }
    if (freed) {
        ferry_conf_violation(FERRY_CONF_V_COMPLETION, "%s was completed %d times", o->what,
                             o->completions);
        return;
    }
    ferry__scan_result(o, result);
    o->plugin_detail = result != NULL && result->error != NULL && result->error->message[0];
    ferry__h.real_host->op_complete(op, status, result);
}

static int ferry__queue_work(ferry_plugin_ctx *ctx, ferry_work_fn work, ferry_after_work_fn after,
                             void *arg)
{
    if (!ferry__host_call_ok(ferry__inst_by_ctx(ctx), "queue_work", 1))
        return FERRY_ESTATE;
    return ferry__h.real_host->queue_work(ctx, work, after, arg);
}

static void ferry__instance_gone(ferry_plugin_ctx *ctx, const char *instance_id, const char *reason)
{
    ferry__scan_secret("an instance_gone reason", reason);
    if (ferry__host_call_ok(ferry__inst_by_ctx(ctx), "instance_gone", 1))
        ferry__h.real_host->instance_gone(ctx, instance_id, reason);
}

static const ferry_host_api ferry__host = {
    .struct_size = sizeof(ferry_host_api),
    .log = ferry__log,
    .loop = ferry__loop,
    .config_get = ferry__config_get,
    .secret_get = ferry__secret_get,
    .op_complete = ferry__op_complete,
    .queue_work = ferry__queue_work,
    .instance_gone = ferry__instance_gone,
};

/* The descriptor's init, as the host calls it. */
static int ferry__init(ferry_plugin_ctx *ctx, const ferry_host_api *host, void **state,
                       ferry_error_detail *err)
{
    ferry_conf_inst *ci = ferry__h.initing;
    ci->ctx = ctx;
    ferry__h.real_host = host;
    int rc = 0;
    if (ferry__h.plugin->desc.init != NULL)
        rc = ferry__h.plugin->desc.init(ctx, &ferry__host, state, err);
    ci->init_rc = rc;
    if (rc < 0)
        ci->init_err = *err;
    else
        ci->state = *state;
    return rc;
}

/* fini knows only the state: the instance being freed that holds it. */
static void ferry__fini(void *state)
{
    ferry_conf_inst *ci = NULL;
    for (ferry_conf_inst *c = ferry__h.insts; c != NULL && ci == NULL; c = c->next)
        if (c->state == state && c->freeing && !c->fini_returned)
            ci = c;
    if (ferry__h.plugin->desc.fini != NULL)
        ferry__h.plugin->desc.fini(state);
    if (ci != NULL)
        ci->fini_returned = 1;
}

void ferry_conf_harness_init(const ferry_plugin *p, const ferry_settings *secrets)
{
    ferry__h.plugin = p;
    ferry__h.wrapped = *p;
    ferry__h.wrapped.desc.init = ferry__init;
    ferry__h.wrapped.desc.fini = ferry__fini;
    ferry__h.secrets = secrets;
    uv_loop_init(&ferry__h.loop);
    uv_mutex_init(&ferry__h.lock);
    ferry__h.loop_thread = uv_thread_self();
}

/* ------------------------------------------------------------------------ */
/* Running the loop                                                         */

static void ferry__on_deadline(uv_timer_t *t)
{
    *(int *)t->data = 1;
}

static void ferry__on_tick(uv_timer_t *t)
{
    (void)t; /* only wakes the loop */
}

/* A tick re-checks `pred` every few ms: some conditions (a file an agent
 * writes, a process that ends) wake no handle of this loop. */
int ferry_conf_run_until(int (*pred)(void *arg), void *arg, unsigned timeout_ms)
{
    int expired = 0;
    uv_timer_t deadline, tick;
    uv_timer_init(&ferry__h.loop, &deadline);
    uv_timer_init(&ferry__h.loop, &tick);
    deadline.data = &expired;
    uv_timer_start(&deadline, ferry__on_deadline, timeout_ms, 0);
    uv_timer_start(&tick, ferry__on_tick, 10, 10);
    int held = pred(arg);
    while (!held && !expired) {
        uv_run(&ferry__h.loop, UV_RUN_ONCE);
        held = pred(arg);
    }
    uv_close((uv_handle_t *)&deadline, NULL);
    uv_close((uv_handle_t *)&tick, NULL);
    uv_run(&ferry__h.loop, UV_RUN_NOWAIT);
    return held;
}

static int ferry__never(void *arg)
{
    (void)arg;
    return 0;
}

void ferry_conf_run_for(unsigned ms)
{
    ferry_conf_run_until(ferry__never, NULL, ms);
}

/* ------------------------------------------------------------------------ */
/* Instances                                                                */

ferry_conf_inst *ferry_conf_instance_new(const ferry_settings *settings)
{
    ferry_conf_inst *ci = ferry_xcalloc(1, sizeof(*ci));
    ci->next = ferry__h.insts;
    ferry__h.insts = ci;
    ferry__h.initing = ci;
    ferry_error_detail err;
    memset(&err, 0, sizeof(err));
    int rc = ferry_plugin_instance_new(&ferry__h.wrapped, &ferry__h.loop, "conformance", settings,
                                       ferry__h.secrets, &ci->inst, &err);
    ferry__h.initing = NULL;
    if (rc < 0) {
        ci->inst = NULL;
        /* Work a failing init queued still runs; let it end. */
        ferry_conf_run_for(50);
    }
    return ci;
}

static int ferry__fini_returned(void *arg)
{
    return ((ferry_conf_inst *)arg)->fini_returned;
}

void ferry_conf_instance_free(ferry_conf_inst *ci)
{
    if (ci->inst == NULL || ci->freeing)
        return;
    ci->freeing = 1;
    ferry_plugin_instance_free(ci->inst);
    ferry_conf_run_until(ferry__fini_returned, ci, FERRY_CONF_OP_TIMEOUT_MS);
    ferry_conf_run_for(FERRY_CONF_AFTER_FINI_MS);
}

/* ------------------------------------------------------------------------ */
/* Ops                                                                      */

static void ferry__op_done(void *arg, int status, const ferry_op_result *r)
{
    ferry_conf_op *o = arg;
    o->done++;
    o->status = status;
    o->size = r->size;
    o->text = ferry_strdup(r->text);
    o->instance_id = ferry_strdup(r->instance_id);
    if (r->error != NULL)
        o->error = *r->error;
}

ferry_conf_op *ferry_conf_op_begin(ferry_conf_inst *ci, const char *fmt, ...)
{
    ferry_conf_op *o = ferry_xcalloc(1, sizeof(*o));
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&o->what, fmt, ap) < 0)
        abort();
    va_end(ap);
    o->ci = ci;
    o->op = ferry_op_new(ci->inst, ferry__op_done, o);
    o->next = ferry__h.ops;
    ferry__h.ops = o;
    o->t0 = ferry_mono_ms();
    return o;
}

int ferry_conf_op_started(ferry_conf_op *o, int rc)
{
    ferry_conf_note_call(o->what, ferry_mono_ms() - o->t0);
    o->rc = rc;
    if (rc >= 0)
        return rc;
    /* "A negative code when not started": completing it as well is a
     * contract breach the host papers over (it unlinks either way). */
    if (o->completions > 0)
        ferry_conf_violation(FERRY_CONF_V_COMPLETION, "%s was completed, then its call returned %s",
                             o->what, ferry_err_name(rc));
    ferry_op_abandon(o->op);
    return rc;
}

static int ferry__op_done_pred(void *arg)
{
    return ((ferry_conf_op *)arg)->done > 0;
}

int ferry_conf_op_wait(ferry_conf_op *o, unsigned timeout_ms)
{
    if (o->rc < 0)
        return 1;
    int done = ferry_conf_run_until(ferry__op_done_pred, o, timeout_ms);
    /* A second completion right behind the first shows up now. */
    uv_run(&ferry__h.loop, UV_RUN_NOWAIT);
    return done;
}

int ferry_conf_op_result(const ferry_conf_op *o)
{
    if (o->rc < 0)
        return o->rc;
    return o->done ? o->status : FERRY_CONF_NOT_DONE;
}

const char *ferry_conf_op_outcome(const ferry_conf_op *o, char *buf, size_t cap)
{
    if (o->rc < 0)
        snprintf(buf, cap, "%s: the call returned %s", o->what, ferry_err_name(o->rc));
    else if (!o->done)
        snprintf(buf, cap, "%s: no completion in time", o->what);
    else if (o->status < 0)
        snprintf(buf, cap, "%s: completed with %s (%s)", o->what, ferry_err_name(o->status),
                 o->error.message);
    else
        snprintf(buf, cap, "%s: completed with 0, size %lld, text %s", o->what, (long long)o->size,
                 o->text ? o->text : "(null)");
    return buf;
}

/* ------------------------------------------------------------------------ */
/* Summary                                                                  */

static void ferry__diag_violations(ferry_conf_violation_kind kind)
{
    const ferry__violations *v = &ferry__h.v[kind];
    for (int i = 0; i < v->count && i < FERRY__KEEP_MESSAGES; i++)
        ferry_conf_diag("%s", v->first[i]);
    if (v->count > FERRY__KEEP_MESSAGES)
        ferry_conf_diag("... and %d more", v->count - FERRY__KEEP_MESSAGES);
}

/* Ops that did not complete exactly once, printed when `print`; every
 * instance is freed by now, so the host has canceled what the plugin
 * dropped. */
static int ferry__ops_not_once(int print, int *n_ops)
{
    int bad = 0;
    *n_ops = 0;
    for (ferry_conf_op *o = ferry__h.ops; o != NULL; o = o->next) {
        (*n_ops)++;
        int once = o->rc < 0 ? o->completions == 0 : o->done == 1 && o->completions <= 1;
        if (once)
            continue;
        if (print && bad < FERRY__KEEP_MESSAGES)
            ferry_conf_diag("%s: %d completion(s) by the plugin, %d done", o->what, o->completions,
                            o->done);
        bad++;
    }
    return bad;
}

static void ferry__report_completions(const char *kind)
{
    int n_ops = 0;
    int bad = ferry__ops_not_once(0, &n_ops) + ferry__h.v[FERRY_CONF_V_COMPLETION].count;
    if (n_ops == 0 && bad == 0)
        return; /* a runtime without cleanup has no asynchronous op */
    if (!ferry_conf_check(bad == 0, "%s: every op completed exactly once (%d ops)", kind, n_ops)) {
        ferry__diag_violations(FERRY_CONF_V_COMPLETION);
        ferry__ops_not_once(1, &n_ops);
    }
}

void ferry_conf_report_host(const char *kind)
{
    ferry__report_completions(kind);
    if (!ferry_conf_check(ferry__h.slowest_ms < FERRY_CONF_PROMPT_MS,
                          "%s: every plugin call returned within %d ms (%d calls)", kind,
                          FERRY_CONF_PROMPT_MS, ferry__h.n_calls))
        ferry_conf_diag("%s took %llu ms", ferry__h.slowest,
                        (unsigned long long)ferry__h.slowest_ms);
    if (!ferry_conf_check(ferry__h.v[FERRY_CONF_V_OFF_LOOP].count == 0,
                          "%s: op_complete, queue_work and callbacks ran on the loop thread only",
                          kind))
        ferry__diag_violations(FERRY_CONF_V_OFF_LOOP);
    if (!ferry_conf_check(ferry__h.v[FERRY_CONF_V_AFTER_FINI].count == 0,
                          "%s: nothing called the host or a callback after fini", kind))
        ferry__diag_violations(FERRY_CONF_V_AFTER_FINI);
    if (ferry__h.n_secrets == 0)
        return;
    if (!ferry_conf_check(ferry__h.v[FERRY_CONF_V_SECRET].count == 0,
                          "%s: no secret appears in a log line or an op result", kind))
        ferry__diag_violations(FERRY_CONF_V_SECRET);
}

static void ferry__count_handle(uv_handle_t *h, void *arg)
{
    (void)h;
    (*(int *)arg)++;
}

void ferry_conf_at_close(void (*fn)(void))
{
    if (ferry__h.n_at_close < 4)
        ferry__h.at_close[ferry__h.n_at_close++] = fn;
}

void ferry_conf_harness_close(const char *kind)
{
    /* Handles a fini closed may finish closing on later turns; a plugin
     * that leaves one open would keep its host's loop from ever ending. */
    ferry_conf_run_for(FERRY_CONF_AFTER_FINI_MS);
    int open = 0;
    uv_walk(&ferry__h.loop, ferry__count_handle, &open);
    if (kind == NULL)
        return; /* init failed: nothing ran, nothing to report or free */
    ferry_conf_report_host(kind);
    if (!ferry_conf_check(open == 0, "%s: after fini no loop handle of the plugin is left open",
                          kind)) {
        /* Whatever is open may still call back: keep the records it uses. */
        ferry_conf_diag("%d handle(s) still open on the loop", open);
        return;
    }
    uv_loop_close(&ferry__h.loop);
    for (int i = 0; i < ferry__h.n_at_close; i++)
        ferry__h.at_close[i]();
    for (ferry_conf_op *o = ferry__h.ops, *next; o != NULL; o = next) {
        next = o->next;
        free(o->what);
        free(o->text);
        free(o->instance_id);
        free(o);
    }
    for (ferry_conf_inst *ci = ferry__h.insts, *next; ci != NULL; ci = next) {
        next = ci->next;
        free(ci);
    }
    for (int i = 0; i < ferry__h.n_secrets; i++)
        free(ferry__h.secrets_watched[i]);
    uv_mutex_destroy(&ferry__h.lock);
}

/* ------------------------------------------------------------------------ */
/* Files                                                                    */

char *ferry_conf_pattern(size_t len, unsigned seed)
{
    char *data = ferry_xmalloc(len ? len : 1);
    uint32_t x = seed * 2654435761u + 1;
    for (size_t i = 0; i < len; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        data[i] = (char)(x & 0xff);
    }
    return data;
}

int ferry_conf_file_equals(const char *path, const char *data, size_t len)
{
    size_t got_len = 0;
    char *got = ferry_read_file(path, &got_len);
    int same = got != NULL && got_len == len && memcmp(got, data, len) == 0;
    free(got);
    return same;
}

int ferry_conf_exists(const char *path)
{
    return access(path, F_OK) == 0;
}
