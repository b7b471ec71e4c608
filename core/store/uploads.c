/* Outputs a worker sends straight to the store (see uploads.h). */
#include "uploads.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blobs.h"
#include "lifecycle.h"
#include "log.h"
#include "map.h"
#include "store.h"
#include "uploadrows.h"
#include "util.h"

static char *uploads__key(const char *id, const char *name)
{
    return ferry_asprintf("executions/%s/outputs/%s", id, name);
}

static const char *uploads__why(int status, const ferry_op_result *res)
{
    return res && res->error && res->error->message[0] ? res->error->message
                                                       : ferry_strerror(status);
}

static void uploads__row_add(ferryd *d, const char *id, const char *name, const char *upload_id,
                             int64_t size, const char *sha256)
{
    if (ferry_uploadrows_add(d, id, name, upload_id, size, sha256) < 0)
        ferry_error("execution %s: the upload of output %s is not recorded", id, name);
}

/* ---- aborting, in the background ---- */

typedef struct uploads__aborting {
    char *key;
} uploads__aborting;

static void uploads__aborted(void *arg, int status, const ferry_op_result *res)
{
    uploads__aborting *a = arg;
    if (status < 0)
        ferry_warn("store: the upload of %s could not be aborted: %s", a->key,
                   uploads__why(status, res));
    else
        ferry_info("store: the upload of %s was aborted", a->key);
    free(a->key);
    free(a);
}

static void uploads__abort(ferryd *d, const char *key, const char *upload_id)
{
    uploads__aborting *a = ferry_xcalloc(1, sizeof(*a));
    a->key = ferry_strdup(key);
    int rc = ferry_store_upload_abort(d, key, upload_id, uploads__aborted, a);
    if (rc < 0) {
        ferry_warn("store: the upload of %s could not be aborted: %s", key, ferry_strerror(rc));
        free(a->key);
        free(a);
    }
}

/* Abort the open uploads of `exec_id` (NULL: of every execution), but for
 * executions `keep` wants kept, and forget them. */
static void uploads__abort_rows(ferryd *d, const char *exec_id, int (*keep)(ferryd *, const char *))
{
    json_t *rows = ferry_uploadrows_list(d, exec_id);
    size_t i;
    json_t *row;
    json_array_foreach(rows, i, row)
    {
        const char *id = json_string_value(json_array_get(row, 0));
        if (keep && keep(d, id))
            continue;
        const char *name = json_string_value(json_array_get(row, 1));
        const char *upload_id = json_string_value(json_array_get(row, 2));
        char *key = uploads__key(id, name);
        ferry_info("execution %s: output %s: its upload is still open after the execution "
                   "ended; aborting it",
                   id, name);
        uploads__abort(d, key, upload_id);
        ferry_uploadrows_del(d, id, upload_id);
        free(key);
    }
    json_decref(rows);
}

static void uploads__live_forget(const char *id);

static void uploads__on_end(ferryd *d, ferry_exec *e)
{
    /* No part of an output may outlive its execution in the store. */
    ferry_uploads_on_end(d, e->id);
}

void ferry_uploads_init(ferryd *d)
{
    static const ferry_lifecycle_observer observer = {.on_end = uploads__on_end};
    ferry_lifecycle_observe(d, &observer);
}

void ferry_uploads_on_end(ferryd *d, const char *exec_id)
{
    uploads__abort_rows(d, exec_id, NULL);
    ferry_uploadrows_forget_metadata(d, exec_id);
    uploads__live_forget(exec_id);
}

static int uploads__is_active(ferryd *d, const char *id)
{
    return ferry_map_get(&d->active, id) != NULL;
}

void ferry_uploads_restore(ferryd *d)
{
    uploads__abort_rows(d, NULL, uploads__is_active);
    ferry_uploadrows_forget_metadata(d, NULL);
}

/* ---- the outputs answer ---- */

typedef struct uploads__plan {
    ferryd *d;
    ferry_reply *reply;
    char id[37];
    json_t *uploads; /* the answer's list, in the order declared */
    int pending;     /* begins in flight, plus one while they are started */
} uploads__plan;

typedef struct uploads__begin {
    uploads__plan *plan;
    json_t *entry; /* its place in plan->uploads */
    char *name, *key;
    int64_t size, part_size;
    char sha256[65];
} uploads__begin;

static void uploads__entry_error(json_t *entry, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void uploads__entry_error(json_t *entry, const char *fmt, ...)
{
    char why[700];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    json_object_set_new(entry, "error", json_string(why));
}

/* The agent went away before the answer: the uploads it never heard of are
 * aborted (it asks again and gets new ones). */
static void uploads__drop(uploads__plan *p)
{
    size_t i;
    json_t *u;
    json_array_foreach(p->uploads, i, u)
    {
        const char *name = json_string_value(json_object_get(u, "name"));
        const char *upload_id = json_string_value(json_object_get(u, "upload_id"));
        if (upload_id == NULL)
            continue;
        char *key = uploads__key(p->id, name);
        uploads__abort(p->d, key, upload_id);
        ferry_uploadrows_del(p->d, p->id, upload_id);
        free(key);
    }
}

static void uploads__settle(uploads__plan *p)
{
    if (--p->pending > 0)
        return;
    if (ferry_reply_json(p->reply, 200, json_pack("{s:O}", "uploads", p->uploads)) < 0)
        uploads__drop(p);
    ferry_reply_release(p->reply);
    json_decref(p->uploads);
    free(p);
}

/* One presigned URL per part, in order. */
static json_t *uploads__part_urls(ferryd *d, const uploads__begin *b, const char *upload_id,
                                  ferry_error_detail *err)
{
    int64_t n = (b->size + b->part_size - 1) / b->part_size;
    json_t *urls = json_array();
    for (int64_t k = 1; k <= n; k++) {
        char *url =
            ferry_store_part_url(d, b->key, upload_id, (int)k, d->cfg.presigned_url_ttl_s, err);
        if (url == NULL) {
            json_decref(urls);
            return NULL;
        }
        json_array_append_new(urls, json_string(url));
        free(url);
    }
    return urls;
}

static void uploads__begun(void *arg, int status, const ferry_op_result *res)
{
    uploads__begin *b = arg;
    uploads__plan *p = b->plan;
    const char *upload_id = status == 0 && res && res->text && res->text[0] ? res->text : NULL;
    ferry_error_detail err = {.struct_size = sizeof(err)};
    json_t *urls = NULL;
    if (upload_id == NULL) {
        uploads__entry_error(b->entry, "the store did not begin the upload: %s",
                             status < 0 ? uploads__why(status, res) : "no upload id");
    } else if ((urls = uploads__part_urls(p->d, b, upload_id, &err)) == NULL) {
        uploads__abort(p->d, b->key, upload_id);
        uploads__entry_error(b->entry, "the store did not presign its parts: %s", err.message);
    } else {
        uploads__row_add(p->d, p->id, b->name, upload_id, b->size, b->sha256);
        json_object_set_new(b->entry, "upload_id", json_string(upload_id));
        json_object_set_new(b->entry, "part_size", json_integer(b->part_size));
        json_object_set_new(b->entry, "parts", urls);
    }
    free(b->name);
    free(b->key);
    free(b);
    uploads__settle(p);
}

static void uploads__multipart(uploads__plan *p, json_t *entry, const char *name, const char *key,
                               int64_t size, int64_t part_size, const char *sha256)
{
    uploads__begin *b = ferry_xcalloc(1, sizeof(*b));
    b->plan = p;
    b->entry = entry;
    b->name = ferry_strdup(name);
    b->key = ferry_strdup(key);
    b->size = size;
    b->part_size = part_size;
    snprintf(b->sha256, sizeof(b->sha256), "%s", sha256);
    p->pending++;
    int rc = ferry_store_upload_begin(p->d, key, uploads__begun, b);
    if (rc < 0) {
        uploads__entry_error(entry, "the store did not begin the upload: %s", ferry_strerror(rc));
        p->pending--;
        free(b->name);
        free(b->key);
        free(b);
    }
}

/* One PUT: to the store itself when it presigns (the agent reports it),
 * else to ferryd's signed blob URL (which records it). */
static void uploads__single(ferryd *d, json_t *entry, const char *key, const char *sha256)
{
    int presigned = 0;
    char *url =
        ferry_blobs_worker_url(d, "PUT", key, d->cfg.presigned_url_ttl_s, sha256, &presigned);
    if (presigned)
        json_object_set_new(entry, "report", json_true());
    json_object_set_new(entry, "url", json_string(url));
    free(url);
}

static void uploads__one(uploads__plan *p, const char *name, int64_t size, const char *sha256)
{
    json_t *entry = json_pack("{s:s}", "name", name);
    json_array_append_new(p->uploads, entry);
    char *key = uploads__key(p->id, name);
    int64_t part_size = 0;
    int rc = ferry_store_part_size(p->d, size, &part_size);
    if (rc < 0)
        uploads__entry_error(entry, "the store cannot take %lld bytes: %s", (long long)size,
                             ferry_strerror(rc));
    else if (part_size > 0)
        uploads__multipart(p, entry, name, key, size, part_size, sha256);
    else
        uploads__single(p->d, entry, key, sha256);
    free(key);
}

/* Every declared output is {"name", "size", "sha256"}: 0, or a 400 sent. */
static int uploads__check_declared(ferry_reply *reply, const json_t *outs)
{
    size_t i;
    json_t *o;
    json_array_foreach(outs, i, o)
    {
        const char *name = json_string_value(json_object_get(o, "name"));
        json_t *size = json_object_get(o, "size");
        if (!ferry_safe_relpath(name) ||
            !ferry_is_hex(json_string_value(json_object_get(o, "sha256")), 64) ||
            (size && (!json_is_integer(size) || json_integer_value(size) < 0))) {
            ferry_reply_error(reply, 400, "outputs",
                              "output %zu: unsafe name, no sha256 or a bad size", i);
            return FERRY_EINVAL;
        }
    }
    return 0;
}

/* An output's "metadata" (an agent before output metadata sends none),
 * kept until the output is stored; anything but an object is dropped. */
static void uploads__metadata(ferryd *d, const char *id, const json_t *o)
{
    const char *name = json_string_value(json_object_get(o, "name"));
    json_t *meta = json_object_get(o, "metadata");
    if (meta && !json_is_object(meta))
        ferry_warn("execution %s: output %s: its metadata is not a JSON object; dropped", id, name);
    ferry_uploadrows_declare_metadata(d, id, name, json_is_object(meta) ? meta : NULL);
}

/* ---- live outputs on a store that does not presign ----
 *
 * ferryd's blob URL records an output as it stores it; a live output must
 * wait for the worker's report, which it sends only once it checked that
 * the file did not change on the way (a writer may still hold it). Held
 * here by "<id>/<name>": the sha256 declared, and whether the blob came.
 * In memory only: after a restart of ferryd the report is refused, and the
 * worker sends the file again at the end. */
typedef struct uploads__held {
    char sha256[65];
    int64_t size;
    int stored;
} uploads__held;

static ferry_map uploads__live;
static int uploads__live_ready;

static ferry_map *uploads__live_map(void)
{
    if (!uploads__live_ready) {
        ferry_map_init(&uploads__live);
        uploads__live_ready = 1;
    }
    return &uploads__live;
}

static void uploads__live_drop(const char *key)
{
    free(ferry_map_del(uploads__live_map(), key));
}

/* The answer's entry for a live output: a blob URL whose upload waits for
 * the worker's report. */
static void uploads__live_hold(uploads__plan *p, const json_t *o, json_t *entry)
{
    if (!json_is_true(json_object_get(o, "live")) || ferry_store_can_presign(p->d) ||
        json_object_get(entry, "url") == NULL || json_object_get(entry, "report"))
        return;
    uploads__held *h = ferry_xcalloc(1, sizeof(*h));
    snprintf(h->sha256, sizeof(h->sha256), "%s", json_string_value(json_object_get(o, "sha256")));
    char *key = ferry_asprintf("%s/%s", p->id, json_string_value(json_object_get(o, "name")));
    free(ferry_map_put(uploads__live_map(), key, h));
    free(key);
    json_object_set_new(entry, "report", json_true());
}

int ferry_uploads_live_stored(ferryd *d, const char *id, const char *name, int64_t size,
                              const char *sha256)
{
    (void)d;
    char *key = ferry_asprintf("%s/%s", id, name);
    uploads__held *h = ferry_map_get(uploads__live_map(), key);
    free(key);
    if (h == NULL || strcmp(h->sha256, sha256) != 0)
        return 0;
    h->stored = 1;
    h->size = size;
    return 1;
}

/* The report of a held live output: recorded when its blob came whole. 1
 * when it was answered. */
static int uploads__live_report(ferryd *d, ferry_exec *e, const json_t *body, ferry_reply *reply)
{
    const char *name = json_string_value(json_object_get(body, "name"));
    const char *sha256 = json_string_value(json_object_get(body, "sha256"));
    char *key = ferry_asprintf("%s/%s", e->id, name);
    uploads__held *h = ferry_map_get(uploads__live_map(), key);
    int ok = h && h->stored && sha256 && strcmp(h->sha256, sha256) == 0;
    if (ok) {
        ferry_exec_add_output(d, e->id, name, h->size, h->sha256);
        ferry_reply_json(reply, 200, json_object());
    }
    if (h)
        uploads__live_drop(key); /* used, or superseded by another try */
    free(key);
    return ok;
}

static void uploads__live_forget(const char *id)
{
    size_t n = strlen(id), it = 0, n_gone = 0;
    const char *k;
    void *v;
    char **gone = NULL;
    while (ferry_map_next(uploads__live_map(), &it, &k, &v))
        if (strncmp(k, id, n) == 0 && k[n] == '/') {
            gone = ferry_xrealloc(gone, (n_gone + 1) * sizeof(*gone));
            gone[n_gone++] = ferry_strdup(k);
        }
    for (size_t i = 0; i < n_gone; i++) {
        uploads__live_drop(gone[i]);
        free(gone[i]);
    }
    free(gone);
}

/* A live output the worker says it sent already (the agent's "stored"):
 * when ferryd holds that very file, nothing is uploaded again; it only
 * takes the metadata declared now, since a sidecar may come after the
 * file. 1 when so (its entry is in the answer). */
static int uploads__live_stored(uploads__plan *p, const json_t *o)
{
    const char *name = json_string_value(json_object_get(o, "name"));
    const char *sha256 = json_string_value(json_object_get(o, "sha256"));
    if (!json_is_true(json_object_get(o, "stored")) ||
        !ferry_exec_has_output(p->d, p->id, name, sha256))
        return 0;
    ferry_uploadrows_apply_metadata(p->d, p->id, name);
    json_array_append_new(p->uploads, json_pack("{s:s, s:b}", "name", name, "stored", 1));
    return 1;
}

void ferry_uploads_answer(ferryd *d, ferry_exec *e, const json_t *body, ferry_reply *reply)
{
    json_t *outs = json_object_get(body, "outputs");
    if (uploads__check_declared(reply, outs) < 0) {
        ferry_reply_release(reply);
        return;
    }
    uploads__plan *p = ferry_xcalloc(1, sizeof(*p));
    p->d = d;
    memcpy(p->id, e->id, sizeof(p->id));
    p->uploads = json_array();
    p->pending = 1;
    p->reply = reply;
    size_t i;
    json_t *o;
    json_array_foreach(outs, i, o)
    {
        uploads__metadata(d, e->id, o);
        if (uploads__live_stored(p, o))
            continue;
        uploads__one(p, json_string_value(json_object_get(o, "name")),
                     json_integer_value(json_object_get(o, "size")),
                     json_string_value(json_object_get(o, "sha256")));
        uploads__live_hold(p, o, json_array_get(p->uploads, json_array_size(p->uploads) - 1));
    }
    uploads__settle(p);
}

/* ---- reports ---- */

typedef struct uploads__completion {
    ferryd *d;
    ferry_reply *reply;
    char id[37];
    char *name, *key, *upload_id;
    int64_t size;
    int n_parts;
    char sha256[65];
} uploads__completion;

static void uploads__completion_free(uploads__completion *c)
{
    ferry_reply_release(c->reply);
    free(c->name);
    free(c->key);
    free(c->upload_id);
    free(c);
}

/* The store assembled the object (or refused): recorded, or aborted and
 * refused to the agent, which makes the execution fail with the reason. */
static void uploads__completed(void *arg, int status, const ferry_op_result *res)
{
    uploads__completion *c = arg;
    char why[700];
    if (status == 0 && res && res->size != c->size) {
        status = FERRY_EPROTO;
        snprintf(why, sizeof(why), "the store holds %lld bytes, the worker declared %lld",
                 (long long)res->size, (long long)c->size);
    } else if (status < 0) {
        snprintf(why, sizeof(why), "%s", uploads__why(status, res));
        uploads__abort(c->d, c->key, c->upload_id);
    }
    ferry_uploadrows_del(c->d, c->id, c->upload_id);
    if (status == 0) {
        ferry_info("execution %s: output %s stored from %d parts", c->id, c->name, c->n_parts);
        ferry_exec_add_output(c->d, c->id, c->name, c->size, c->sha256);
        ferry_reply_json(c->reply, 200, json_object());
    } else {
        ferry_warn("execution %s: output %s could not be stored: %s", c->id, c->name, why);
        ferry_reply_error(c->reply, 409, NULL, "output %s could not be stored: %s", c->name, why);
    }
    uploads__completion_free(c);
}

static void uploads__complete(ferryd *d, ferry_exec *e, ferry_reply *reply, const char *name,
                              const char *upload_id, int64_t size, const char *sha256,
                              const json_t *parts)
{
    uploads__completion *c = ferry_xcalloc(1, sizeof(*c));
    c->d = d;
    memcpy(c->id, e->id, sizeof(c->id));
    c->name = ferry_strdup(name);
    c->key = uploads__key(e->id, name);
    c->upload_id = ferry_strdup(upload_id);
    c->size = size;
    c->n_parts = (int)json_array_size(parts);
    memcpy(c->sha256, sha256, sizeof(c->sha256));
    char *text = json_dumps(parts, JSON_COMPACT);
    int rc = text ? ferry_store_upload_complete(d, c->key, upload_id, text, uploads__completed, c)
                  : FERRY_ENOMEM;
    free(text);
    if (rc < 0) {
        /* The parts list itself is unusable: nothing will complete it. */
        uploads__abort(d, c->key, upload_id);
        ferry_uploadrows_del(d, e->id, upload_id);
        ferry_reply_error(reply, 400, "parts", "output %s: the store refused the parts list: %s",
                          name, ferry_strerror(rc));
        ferry_reply_release(reply);
        uploads__completion_free(c);
        return;
    }
    c->reply = reply; /* before its completion: that runs on a later loop turn */
}

/* A multipart upload's outcome: its parts (complete it) or an error (abort).
 * 1 when the completion took the reply, 0 when it was answered here. */
static int uploads__report_multipart(ferryd *d, ferry_exec *e, const json_t *body,
                                     ferry_reply *reply, const char *name, const char *upload_id)
{
    int64_t size = 0;
    char sha256[65];
    const char *error = json_string_value(json_object_get(body, "error"));
    const char *declared = json_string_value(json_object_get(body, "sha256"));
    if (!ferry_uploadrows_find(d, e->id, upload_id, name, &size, sha256)) {
        if (error == NULL && declared && ferry_exec_has_output(d, e->id, name, declared))
            ferry_reply_json(reply, 200, json_object()); /* done before: the answer was lost */
        else
            ferry_reply_error(reply, 409, "upload_id", "output %s has no open upload %s", name,
                              upload_id);
        return 0;
    }
    if (error != NULL) {
        ferry_info("execution %s: output %s: the worker gave up its upload (%s); aborting it",
                   e->id, name, error);
        char *key = uploads__key(e->id, name);
        uploads__abort(d, key, upload_id);
        ferry_uploadrows_del(d, e->id, upload_id);
        free(key);
        ferry_reply_json(reply, 200, json_object());
        return 0;
    }
    json_t *parts = json_object_get(body, "parts");
    if (!json_is_array(parts) || json_array_size(parts) == 0) {
        ferry_reply_error(reply, 400, "parts", "output %s: 'parts' must list the parts sent", name);
        return 0;
    }
    uploads__complete(d, e, reply, name, upload_id, size, sha256, parts);
    return 1;
}

void ferry_uploads_report(ferryd *d, ferry_exec *e, const json_t *body, ferry_reply *reply)
{
    const char *name = json_string_value(json_object_get(body, "name"));
    const char *upload_id = json_string_value(json_object_get(body, "upload_id"));
    const char *sha256 = json_string_value(json_object_get(body, "sha256"));
    json_t *size = json_object_get(body, "size");
    if (!ferry_safe_relpath(name)) {
        ferry_reply_error(reply, 400, "name", "an unsafe output name");
    } else if (upload_id) {
        if (uploads__report_multipart(d, e, body, reply, name, upload_id))
            return;
    } else if (json_object_get(body, "error")) {
        ferry_reply_json(reply, 200, json_object()); /* one PUT: nothing left to undo */
    } else if (!ferry_store_can_presign(d) && uploads__live_report(d, e, body, reply)) {
        /* a live output, recorded now that the worker found it unchanged */
    } else if (!ferry_store_can_presign(d)) {
        /* Its blob URLs record what ferryd itself stored; nothing else. */
        ferry_reply_error(reply, 409, NULL, "output %s: this store records uploads itself", name);
    } else if (!ferry_is_hex(sha256, 64) || !json_is_integer(size) ||
               json_integer_value(size) < 0) {
        ferry_reply_error(reply, 400, NULL, "output %s: a report needs its size and sha256", name);
    } else {
        /* One PUT that the store acknowledged to the worker: whole by then. */
        ferry_exec_add_output(d, e->id, name, json_integer_value(size), sha256);
        ferry_reply_json(reply, 200, json_object());
    }
    ferry_reply_release(reply);
}
