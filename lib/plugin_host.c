/* The plugin host: instances of loaded plugins (plugin.c), the operations
 * they complete, and the host API they call back into: log, loop, config,
 * secrets, op completion (always delivered on a later loop turn), the
 * threadpool, and instances that ended unasked. */
#include "plugin.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "util.h"

/* A minimal intrusive doubly-linked list with a sentinel. */
typedef struct ferry__link {
    struct ferry__link *prev, *next;
} ferry__link;

static void ferry__list_init(ferry__link *head)
{
    head->prev = head->next = head;
}

static int ferry__list_empty(const ferry__link *head)
{
    return head->next == head;
}

static void ferry__list_push(ferry__link *head, ferry__link *l)
{
    l->prev = head->prev;
    l->next = head;
    head->prev->next = l;
    head->prev = l;
}

static void ferry__list_unlink(ferry__link *l)
{
    l->prev->next = l->next;
    l->next->prev = l->prev;
    l->prev = l->next = l;
}

/* Moves every element of `from` to the (empty) `to`. */
static void ferry__list_move(ferry__link *from, ferry__link *to)
{
    ferry__list_init(to);
    if (ferry__list_empty(from))
        return;
    to->next = from->next;
    to->prev = from->prev;
    to->next->prev = to;
    to->prev->next = to;
    ferry__list_init(from);
}

#define FERRY__CONTAINER(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

struct ferry_plugin_ctx {
    ferry_plugin_instance *inst;
};

struct ferry_plugin_instance {
    ferry_plugin_ctx ctx;
    const ferry_plugin *plugin;
    uv_loop_t *loop;
    uv_thread_t loop_thread;
    char *log_prefix;
    ferry_settings *settings;
    ferry_settings *secrets;
    void *state;
    int has_state; /* init succeeded: fini is owed */
    int closing;   /* ferry_plugin_instance_free() was called */
    int finished;  /* fini ran; no more ops or work */
    /* Runs `done` of completed ops on a later loop turn than op_complete. */
    uv_idle_t idle;
    ferry__link pending_ops;   /* created, not completed yet */
    ferry__link completed_ops; /* completed, `done` not run yet */
    ferry__link works;         /* queue_work requests in flight */
    size_t n_works;
    ferry_instance_gone_fn on_gone; /* the owner's ear for instance_gone */
    void *on_gone_arg;
};

typedef enum { FERRY__OP_PENDING, FERRY__OP_COMPLETED } ferry__op_state;

struct ferry_op {
    ferry__link link;
    ferry_plugin_instance *inst;
    ferry_op_done_fn done;
    void *arg;
    ferry__op_state state;
    /* Deep copy of what the plugin handed to op_complete. */
    int status;
    int64_t size;
    char *instance_id;
    char *text;
    int has_error;
    ferry_error_detail error;
};

typedef struct ferry__work {
    uv_work_t req;
    ferry__link link;
    ferry_plugin_instance *inst;
    ferry_work_fn work;
    ferry_after_work_fn after;
    void *arg;
} ferry__work;

static void ferry__instance_finish(ferry_plugin_instance *inst);
static void ferry__on_idle(uv_idle_t *idle);

/* libuv handles are not thread-safe: a call from a worker thread would
 * corrupt the loop some time later, far from the bug. Fail where it is. */
static void ferry__assert_loop_thread(const ferry_plugin_instance *inst, const char *what)
{
    uv_thread_t self = uv_thread_self();
    if (!uv_thread_equal(&self, &inst->loop_thread)) {
        ferry_error("%s: %s called off the loop thread; aborting", inst->log_prefix, what);
        abort();
    }
}

static void ferry__host_log(ferry_plugin_ctx *ctx, ferry_log_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ferry_vlog(level, ctx ? ctx->inst->log_prefix : "plugin", fmt, ap);
    va_end(ap);
}

static void *ferry__host_loop(ferry_plugin_ctx *ctx)
{
    return ctx->inst->loop;
}

static const char *ferry__host_config_get(ferry_plugin_ctx *ctx, const char *key)
{
    return ferry_settings_get(ctx->inst->settings, key);
}

static const char *ferry__host_secret_get(ferry_plugin_ctx *ctx, const char *name)
{
    return ferry_settings_get(ctx->inst->secrets, name);
}

/* Copies the first min(theirs, ours) bytes of a plugin struct that starts
 * with struct_size. A struct_size of 0 is read as the 1.0 layout: forgetting
 * it is a common slip, and 1.0 is the smallest any plugin can have. */
static void ferry__copy_sized(void *dst, size_t ours, const void *src, size_t v1_size)
{
    size_t theirs = *(const size_t *)src;
    if (theirs == 0)
        theirs = v1_size;
    memset(dst, 0, ours);
    memcpy(dst, src, theirs < ours ? theirs : ours);
}

static void ferry__op_store_result(ferry_op *op, int status, const ferry_op_result *result)
{
    op->status = status;
    ferry_op_result r;
    memset(&r, 0, sizeof(r));
    if (result != NULL)
        ferry__copy_sized(&r, sizeof(r), result, FERRY_FIELD_END(ferry_op_result, error));
    op->size = r.size;
    op->instance_id = ferry_strdup(r.instance_id);
    op->text = ferry_strdup(r.text);
    if (status >= 0)
        return;
    op->has_error = 1;
    if (r.error != NULL) {
        ferry__copy_sized(&op->error, sizeof(op->error), r.error, sizeof(ferry_error_detail));
        op->error.struct_size = sizeof(op->error);
        op->error.provider_code[sizeof(op->error.provider_code) - 1] = '\0';
        op->error.message[sizeof(op->error.message) - 1] = '\0';
        if (op->error.code == 0)
            op->error.code = status;
    } else {
        /* Callers may rely on a detail for every failure. */
        ferry_error_set(&op->error, status, 0, NULL, NULL);
    }
}

static void ferry__host_op_complete(ferry_op *op, int status, const ferry_op_result *result)
{
    ferry_plugin_instance *inst = op->inst;
    ferry__assert_loop_thread(inst, "op_complete");
    if (op->state != FERRY__OP_PENDING) {
        ferry_error("%s: an operation was completed twice; the second completion is ignored",
                    inst->log_prefix);
        return;
    }
    ferry__op_store_result(op, status, result);
    op->state = FERRY__OP_COMPLETED;
    ferry__list_unlink(&op->link);
    ferry__list_push(&inst->completed_ops, &op->link);
    /* An active idle handle keeps the loop alive and makes its next turn
     * poll without blocking, so `done` runs promptly, but never inside the
     * plugin's own call. */
    if (!uv_is_closing((uv_handle_t *)&inst->idle))
        uv_idle_start(&inst->idle, ferry__on_idle);
}

static void ferry__op_free(ferry_op *op)
{
    free(op->instance_id);
    free(op->text);
    free(op);
}

static void ferry__op_finish(ferry_op *op)
{
    ferry_op_result r;
    memset(&r, 0, sizeof(r));
    r.struct_size = sizeof(r);
    r.instance_id = op->instance_id;
    r.size = op->size;
    r.text = op->text;
    r.error = op->has_error ? &op->error : NULL;
    if (op->done != NULL)
        op->done(op->arg, op->status, &r);
    ferry__op_free(op);
}

/* Runs `done` of the ops completed so far. Ops completed by those `done`
 * callbacks wait for the next turn, so one busy chain cannot starve the loop. */
static void ferry__drain_completed(ferry_plugin_instance *inst)
{
    ferry__link batch;
    ferry__list_move(&inst->completed_ops, &batch);
    while (!ferry__list_empty(&batch)) {
        ferry__link *l = batch.next;
        ferry__list_unlink(l);
        ferry__op_finish(FERRY__CONTAINER(l, ferry_op, link));
    }
}

static void ferry__on_idle(uv_idle_t *idle)
{
    ferry_plugin_instance *inst = idle->data;
    ferry__drain_completed(inst);
    if (ferry__list_empty(&inst->completed_ops))
        uv_idle_stop(&inst->idle);
}

static void ferry__on_work(uv_work_t *req)
{
    ferry__work *w = req->data;
    w->work(w->arg);
}

static void ferry__on_after_work(uv_work_t *req, int status)
{
    ferry__work *w = req->data;
    ferry_plugin_instance *inst = w->inst;
    ferry__list_unlink(&w->link);
    inst->n_works--;
    if (w->after != NULL)
        w->after(w->arg, status == UV_ECANCELED ? FERRY_ECANCELED : 0);
    free(w);
    /* A free that waited for this work can go on now. */
    if (inst->closing && inst->n_works == 0 && !inst->finished)
        ferry__instance_finish(inst);
}

static int ferry__host_queue_work(ferry_plugin_ctx *ctx, ferry_work_fn work,
                                  ferry_after_work_fn after, void *arg)
{
    ferry_plugin_instance *inst = ctx->inst;
    ferry__assert_loop_thread(inst, "queue_work");
    if (work == NULL)
        return FERRY_EINVAL;
    if (inst->closing)
        return FERRY_ESTATE;
    ferry__work *w = ferry_xcalloc(1, sizeof(*w));
    w->req.data = w;
    w->inst = inst;
    w->work = work;
    w->after = after;
    w->arg = arg;
    int rc = uv_queue_work(inst->loop, &w->req, ferry__on_work, ferry__on_after_work);
    if (rc < 0) {
        free(w);
        return FERRY_EIO;
    }
    ferry__list_push(&inst->works, &w->link);
    inst->n_works++;
    return 0;
}

static void ferry__host_instance_gone(ferry_plugin_ctx *ctx, const char *instance_id,
                                      const char *reason)
{
    ferry_plugin_instance *inst = ctx->inst;
    ferry__assert_loop_thread(inst, "instance_gone");
    if (inst->finished || inst->on_gone == NULL || instance_id == NULL)
        return;
    inst->on_gone(inst->on_gone_arg, instance_id, reason ? reason : "ended");
}

void ferry_plugin_instance_on_gone(ferry_plugin_instance *inst, ferry_instance_gone_fn fn,
                                   void *arg)
{
    inst->on_gone = fn;
    inst->on_gone_arg = arg;
}

static const ferry_host_api ferry__host_api = {
    .struct_size = sizeof(ferry_host_api),
    .log = ferry__host_log,
    .loop = ferry__host_loop,
    .config_get = ferry__host_config_get,
    .secret_get = ferry__host_secret_get,
    .op_complete = ferry__host_op_complete,
    .queue_work = ferry__host_queue_work,
    .instance_gone = ferry__host_instance_gone,
};

static void ferry__instance_release(ferry_plugin_instance *inst)
{
    ferry_settings_free(inst->settings);
    ferry_settings_free(inst->secrets);
    free(inst->log_prefix);
    free(inst);
}

static void ferry__on_idle_closed(uv_handle_t *h)
{
    ferry_plugin_instance *inst = h->data;
    /* Ops completed (or canceled) during fini still get their `done`. */
    ferry__drain_completed(inst);
    ferry__instance_release(inst);
}

/* After the last work: fini, cancel what the plugin left pending, close. */
static void ferry__instance_finish(ferry_plugin_instance *inst)
{
    if (inst->has_state && inst->plugin->desc.fini != NULL)
        inst->plugin->desc.fini(inst->state);
    inst->has_state = 0;
    inst->finished = 1;
    while (!ferry__list_empty(&inst->pending_ops)) {
        ferry_op *op = FERRY__CONTAINER(inst->pending_ops.next, ferry_op, link);
        ferry_error_detail d;
        ferry_error_set(&d, FERRY_ECANCELED, 0, NULL, "plugin instance %s was closed",
                        inst->log_prefix);
        ferry_op_result r = {.struct_size = sizeof(r), .error = &d};
        ferry__host_op_complete(op, FERRY_ECANCELED, &r);
    }
    uv_close((uv_handle_t *)&inst->idle, ferry__on_idle_closed);
}

static char *ferry__log_prefix(const ferry_plugin *p, const char *label)
{
    if (label != NULL && label[0] != '\0' && strcmp(label, p->desc.name) != 0)
        return ferry_asprintf("%s[%s]", p->desc.name, label);
    return ferry_strdup(p->desc.name);
}

int ferry_plugin_instance_new(const ferry_plugin *p, uv_loop_t *loop, const char *label,
                              const ferry_settings *settings, const ferry_settings *secrets,
                              ferry_plugin_instance **out, ferry_error_detail *err)
{
    *out = NULL;
    ferry_plugin_instance *inst = ferry_xcalloc(1, sizeof(*inst));
    inst->ctx.inst = inst;
    inst->plugin = p;
    inst->loop = loop;
    inst->loop_thread = uv_thread_self();
    inst->log_prefix = ferry__log_prefix(p, label);
    inst->settings = ferry_settings_copy(settings);
    inst->secrets = ferry_settings_copy(secrets);
    ferry__list_init(&inst->pending_ops);
    ferry__list_init(&inst->completed_ops);
    ferry__list_init(&inst->works);
    uv_idle_init(loop, &inst->idle);
    inst->idle.data = inst;
    int rc = 0;
    if (p->desc.init != NULL) {
        ferry_error_detail local;
        ferry_error_detail *e = err ? err : &local;
        memset(e, 0, sizeof(*e));
        rc = p->desc.init(&inst->ctx, &ferry__host_api, &inst->state, e);
        if (rc < 0 && e->code == 0)
            ferry_error_set(e, rc, 0, NULL, "%s: init failed: %s", inst->log_prefix,
                            ferry_strerror(rc));
    }
    if (rc < 0) {
        /* Same path as a free (init may have queued work), minus fini. */
        ferry_plugin_instance_free(inst);
        return rc;
    }
    inst->has_state = 1;
    *out = inst;
    return 0;
}

void ferry_plugin_instance_free(ferry_plugin_instance *inst)
{
    if (inst == NULL || inst->closing)
        return;
    inst->closing = 1;
    /* Work not started yet is dropped: its `after` runs with FERRY_ECANCELED. */
    for (ferry__link *l = inst->works.next; l != &inst->works; l = l->next)
        uv_cancel((uv_req_t *)&FERRY__CONTAINER(l, ferry__work, link)->req);
    if (inst->n_works == 0)
        ferry__instance_finish(inst);
}

void *ferry_plugin_instance_state(const ferry_plugin_instance *inst)
{
    return inst->state;
}

const ferry_plugin *ferry_plugin_instance_plugin(const ferry_plugin_instance *inst)
{
    return inst->plugin;
}

ferry_op *ferry_op_new(ferry_plugin_instance *inst, ferry_op_done_fn done, void *arg)
{
    if (inst->finished)
        return NULL;
    ferry_op *op = ferry_xcalloc(1, sizeof(*op));
    op->inst = inst;
    op->done = done;
    op->arg = arg;
    op->state = FERRY__OP_PENDING;
    ferry__list_push(&inst->pending_ops, &op->link);
    return op;
}

void ferry_op_abandon(ferry_op *op)
{
    if (op == NULL)
        return;
    /* A plugin that completed the op and then also failed the call has put
     * it on the completed list: unlinking covers both lists. */
    ferry__list_unlink(&op->link);
    ferry__op_free(op);
}
