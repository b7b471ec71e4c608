/* ferry plugin SDK: what compute plugins for clouds share (ferry/cloud.h). */
#include "ferry/cloud.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void ferry_cloud_note(char *note, size_t cap, const char *place, const char *fmt, ...)
{
    size_t n = strlen(note);
    if (n + 4 >= cap)
        return;
    n += (size_t)snprintf(note + n, cap - n, "%s%s: ", n ? "; " : "", place);
    if (n >= cap)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(note + n, cap - n, fmt, ap);
    va_end(ap);
}

void ferry_cloud_note_error(char *note, size_t cap, const char *place,
                            const ferry_error_detail *err)
{
    const char *code = err->provider_code[0] ? err->provider_code : ferry_strerror(err->code);
    /* The message names the code first ("Code: text"): the text alone,
     * shortened, so that the note fits every zone. */
    const char *msg = strstr(err->message, code);
    if (msg && strncmp(msg + strlen(code), ": ", 2) == 0)
        msg += strlen(code) + 2;
    else
        msg = "";
    ferry_cloud_note(note, cap, place, "%s%s%.120s%s", code, msg[0] ? " (" : "", msg,
                     msg[0] ? ")" : "");
}

void ferry_cloud_launch_error(ferry_error_detail *out, const ferry_error_detail *last,
                              const char *what, const char *note)
{
    *out = *last;
    if (last->code == FERRY_ECAPACITY)
        /* Capacity comes back: ferryd's backoff tries again later. */
        ferry_error_set(out, FERRY_ECAPACITY, 1, last->provider_code,
                        "no zone could launch a %s: %s", what, note);
    else
        snprintf(out->message, sizeof(out->message), "%s", note);
    if (last->code == FERRY_ETHROTTLED || last->code == FERRY_EQUOTA ||
        last->code == FERRY_EPROVIDER || last->code == FERRY_ECONN ||
        last->code == FERRY_ETIMEDOUT || last->code == FERRY_EPROTO)
        out->retryable = 1;
}

/* ------------------------------------------------------------------------ */
/* launch                                                                   */

static char *cloud__dup(const char *s)
{
    return strdup(s ? s : "");
}

int ferry_cloud_launch_init(ferry_cloud_launch *l, const ferry_launch_request *req,
                            size_t user_data_max, const char *what, ferry_op *op)
{
    memset(l, 0, sizeof(*l));
    if (req == NULL || req->worker_id == NULL || req->worker_id[0] == '\0' ||
        req->daemon_id == NULL)
        return FERRY_EINVAL;
    const char *user_data =
        FERRY_HAS_FIELD(req, ferry_launch_request, user_data) ? req->user_data : NULL;
    if (user_data == NULL || user_data[0] == '\0')
        return FERRY_EINVAL; /* an instance without it would never join */
    if (strlen(user_data) > user_data_max)
        return FERRY_ETOOBIG;
    l->op = op;
    l->what = what;
    l->daemon_id = cloud__dup(req->daemon_id);
    l->environment = cloud__dup(req->environment);
    l->worker_id = cloud__dup(req->worker_id);
    l->user_data = cloud__dup(user_data);
    if (!l->daemon_id || !l->environment || !l->worker_id || !l->user_data) {
        ferry_cloud_launch_clear(l);
        return FERRY_ENOMEM;
    }
    return 0;
}

void ferry_cloud_launch_clear(ferry_cloud_launch *l)
{
    free(l->daemon_id);
    free(l->environment);
    free(l->worker_id);
    if (l->user_data)
        memset(l->user_data, 0, strlen(l->user_data));
    free(l->user_data);
    l->daemon_id = l->environment = l->worker_id = l->user_data = NULL;
}

void ferry_cloud_launched(ferry_cloud *c, ferry_cloud_launch *l, const char *place,
                          const char *instance_id, const char *shown)
{
    ferry_strlist_add_unique(&c->known, instance_id);
    ferry_cloud_note(l->note, sizeof(l->note), place, "launched %s", shown);
    c->host->log(c->ctx, FERRY_LOG_INFO, "worker %s: instance %s (%s, %s)", l->worker_id,
                 instance_id, l->what, l->note);
    ferry_cloud_complete(c, l->op, 0, instance_id, l->note, NULL);
}

void ferry_cloud_launch_failed(ferry_cloud *c, ferry_cloud_launch *l,
                               const ferry_error_detail *last)
{
    ferry_error_detail d;
    ferry_cloud_launch_error(&d, last, l->what, l->note);
    c->host->log(c->ctx, FERRY_LOG_WARN, "launch of worker %s failed: %s", l->worker_id, d.message);
    ferry_cloud_complete(c, l->op, d.code, NULL, NULL, &d);
}

/* ------------------------------------------------------------------------ */
/* Tasks                                                                    */

ferry_cloud_task *ferry_cloud_task_new(void *state, ferry_op *op, const char *instance_id,
                                       const char *daemon_id)
{
    ferry_cloud_task *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return NULL;
    t->state = state;
    t->op = op;
    t->instance_id = instance_id ? strdup(instance_id) : NULL;
    t->daemon_id = daemon_id ? strdup(daemon_id) : NULL;
    if ((instance_id && !t->instance_id) || (daemon_id && !t->daemon_id)) {
        ferry_cloud_task_free(t);
        return NULL;
    }
    return t;
}

void ferry_cloud_task_free(ferry_cloud_task *t)
{
    if (t == NULL)
        return;
    free(t->instance_id);
    free(t->daemon_id);
    json_decref(t->list);
    free(t);
}

/* ------------------------------------------------------------------------ */
/* list, describe, terminate                                                */

void ferry_cloud_complete(const ferry_cloud *c, ferry_op *op, int status, const char *instance_id,
                          const char *text, const ferry_error_detail *err)
{
    ferry_op_result r = {.struct_size = sizeof(r), .instance_id = instance_id, .text = text};
    if (status < 0)
        r.error = err;
    c->host->op_complete(op, status, &r);
}

json_t *ferry_cloud_instance_json(const ferry_cloud_instance *in)
{
    json_t *o =
        json_pack("{s:s, s:s, s:s, s:s, s:s}", "instance_id", in->id, "state", in->state,
                  "worker_id", in->worker_id, "environment", in->environment, "zone", in->zone);
    if (o && in->reason && in->reason[0] && in->ending)
        json_object_set_new(o, "reason", json_string(in->reason));
    return o;
}

int ferry_cloud_found(ferry_cloud_task *t, const ferry_cloud_instance *in)
{
    if (t->daemon_id && !in->ending) /* a listing: retired at fini */
        ferry_strlist_add_unique(&t->cloud->known, in->id);
    return json_array_append_new(t->list, ferry_cloud_instance_json(in)) == 0 ? 0 : FERRY_ENOMEM;
}

/* The op's answer: `j` as compact JSON text. */
static void cloud__complete_json(ferry_cloud_task *t, json_t *j)
{
    char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    if (text == NULL) {
        ferry_error_detail d;
        ferry_error_set(&d, FERRY_ENOMEM, 1, NULL, "%s: out of memory", t->cloud->provider->name);
        ferry_cloud_complete(t->cloud, t->op, FERRY_ENOMEM, NULL, NULL, &d);
        return;
    }
    ferry_cloud_complete(t->cloud, t->op, 0, NULL, text, NULL);
    free(text);
}

/* An op that ends with an error, and its task. */
static void cloud__fail(ferry_cloud_task *t, int status, const ferry_error_detail *err)
{
    ferry_cloud_complete(t->cloud, t->op, status, NULL, NULL, err);
    ferry_cloud_task_free(t);
}

static void cloud__list_answer(void *task, int status, const char *body, size_t len,
                               const ferry_error_detail *err)
{
    ferry_cloud_task *t = task;
    const ferry_cloud_provider *p = t->cloud->provider;
    ferry_error_detail d;
    char *next = NULL;
    if (t->cloud->closing) {
        ferry_cloud_task_free(t);
        return;
    }
    if (status == 0 && (status = p->list_parse(t, body, len, &next)) != 0) {
        ferry_error_set(&d, status, 1, NULL, "%s: an answer we cannot read", p->list_what);
        free(next);
        cloud__fail(t, status, &d);
        return;
    }
    if (status != 0) {
        cloud__fail(t, status, err);
        return;
    }
    int rc = -1;
    if (next)
        rc = p->list_page(t, next, cloud__list_answer);
    else if (t->place + 1 < t->places) {
        t->place++;
        rc = p->list_page(t, NULL, cloud__list_answer);
    }
    free(next);
    if (rc == 0)
        return;
    /* The last page, or the next could not be asked for: what was found. */
    cloud__complete_json(t, t->list);
    ferry_cloud_task_free(t);
}

/* A task for an op of `c`; NULL when out of memory. */
static ferry_cloud_task *cloud__task(ferry_cloud *c, ferry_op *op, const char *instance_id,
                                     const char *daemon_id)
{
    ferry_cloud_task *t = ferry_cloud_task_new(c->state, op, instance_id, daemon_id);
    if (t && (t->list = json_array()) == NULL) {
        ferry_cloud_task_free(t);
        return NULL;
    }
    if (t)
        t->cloud = c;
    return t;
}

int ferry_cloud_list(ferry_cloud *c, const char *daemon_id, size_t places, ferry_op *op)
{
    if (daemon_id == NULL || daemon_id[0] == '\0')
        return FERRY_EINVAL; /* never every instance of the account */
    ferry_cloud_task *t = cloud__task(c, op, NULL, daemon_id);
    if (t == NULL)
        return FERRY_ENOMEM;
    t->places = places ? places : 1;
    int rc = c->provider->list_page(t, NULL, cloud__list_answer);
    if (rc != 0)
        ferry_cloud_task_free(t);
    return rc;
}

static void cloud__describe_answer(void *task, int status, const char *body, size_t len,
                                   const ferry_error_detail *err)
{
    ferry_cloud_task *t = task;
    const ferry_cloud_provider *p = t->cloud->provider;
    ferry_error_detail d;
    if (t->cloud->closing) {
        ferry_cloud_task_free(t);
        return;
    }
    if (status == 0 && (status = p->describe_parse(t, body, len)) != 0) {
        ferry_error_set(&d, status, 1, NULL, "%s: an answer we cannot read", p->describe_what);
        err = &d;
    } else if (status == 0 && json_array_size(t->list) == 0) {
        /* A describe of a gone instance may answer an empty set. */
        status = ferry_error_set(&d, FERRY_ENOENT, 0, p->not_found_code, "%s: no instance %s",
                                 p->describe_what, t->instance_id);
        err = &d;
    }
    if (status == FERRY_ENOENT)
        ferry_strlist_remove(&t->cloud->known, t->instance_id);
    if (status != 0) {
        cloud__fail(t, status, err);
        return;
    }
    cloud__complete_json(t, json_array_get(t->list, 0));
    ferry_cloud_task_free(t);
}

static void cloud__terminate_answer(void *task, int status, const char *body, size_t len,
                                    const ferry_error_detail *err)
{
    ferry_cloud_task *t = task;
    (void)body;
    (void)len;
    if (!t->cloud->closing) {
        if (status == 0 || status == FERRY_ENOENT)
            ferry_strlist_remove(&t->cloud->known, t->instance_id);
        ferry_cloud_complete(t->cloud, t->op, status, NULL, NULL, err);
    }
    ferry_cloud_task_free(t);
}

/* describe and terminate: one call about one instance. */
static int cloud__instance_op(ferry_cloud *c, const char *instance_id, ferry_op *op,
                              int (*start)(ferry_cloud_task *, ferry_cloud_answer_fn),
                              ferry_cloud_answer_fn answer)
{
    if (instance_id == NULL || instance_id[0] == '\0')
        return FERRY_EINVAL;
    ferry_cloud_task *t = cloud__task(c, op, instance_id, NULL);
    if (t == NULL)
        return FERRY_ENOMEM;
    int rc = start(t, answer);
    if (rc != 0)
        ferry_cloud_task_free(t);
    return rc;
}

int ferry_cloud_describe(ferry_cloud *c, const char *instance_id, ferry_op *op)
{
    return cloud__instance_op(c, instance_id, op, c->provider->describe, cloud__describe_answer);
}

int ferry_cloud_terminate(ferry_cloud *c, const char *instance_id, ferry_op *op)
{
    return cloud__instance_op(c, instance_id, op, c->provider->terminate, cloud__terminate_answer);
}
