/* Sending an execution's outputs where ferryd's answer says (docs/api.md,
 * "Outputs in the store"):
 *
 *   {"name", "url"}                   one PUT to ferryd's blob URL, which
 *                                     records the output itself
 *   {"name", "url", "report": true}   one PUT to the store, then a report
 *   {"name", "upload_id", "part_size", "parts": [url...]}
 *                                     one PUT per byte range of the file,
 *                                     then a report with every part's ETag
 *   {"name", "error"}                 ferryd could not start it
 *   {"name", "stored": true}          ferryd holds it already (sent live)
 *
 * Up to UP_PARALLEL transfers (whole files and parts alike) run at once
 * against the store; blob URLs one at a time, since ferryd buffers each
 * body. A part that fails for good stops its file: no other part starts,
 * and once those in flight are done ferryd is told, so that it aborts the
 * upload.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "log.h"
#include "util.h"

#define UP_PARALLEL 8
#define UP_ATTEMPTS 5
#define UP_STALL_TIMEOUT_MS 120000

typedef struct up_file up_file;

/* One transfer: a whole file (part 0) or part `part` (1-based). */
typedef struct up_xfer {
    up_file *f;
    int part;
    agent_call *call;
} up_xfer;

struct up_file {
    uploads *u;
    const output_file *out;
    json_t *entry; /* borrowed from the answer */
    char *path;
    int multipart;
    int n_parts, next_part, parts_done;
    up_xfer *xfers; /* per part, or one for a whole file */
    char **etags;
    int started, inflight, finished;
    char *error; /* why it failed, for the finished report */
    agent_call *report;
};

struct uploads {
    agent *a;
    char *exec_id;
    shipper *ship;
    json_t *answer;
    up_file *files;
    size_t n, cursor;
    int inflight, limit, open;
    size_t stored;
    char *failure; /* the first failure */
    uint64_t started_ms;
    int64_t bytes;
    uploads_check_cb check; /* asked before each report, or NULL */
    const char *check_why;
    uploads_done_cb done;
    void *arg;
};

static void up_pump(uploads *u);

static const char *up_name(const up_file *f)
{
    return f->out->name;
}

static void up_finish(up_file *f)
{
    uploads *u = f->u;
    f->finished = 1;
    u->open--;
    if (f->error == NULL) {
        u->stored++;
        return;
    }
    shipper_status(u->ship, "output %s: upload failed: %s", up_name(f), f->error);
    ferry_warn("execution %s: output %s: upload failed: %s", u->exec_id, up_name(f), f->error);
    if (u->failure == NULL)
        u->failure = ferry_asprintf("output %s could not be stored: %s", up_name(f), f->error);
}

static void up_fail(up_file *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void up_fail(up_file *f, const char *fmt, ...)
{
    if (f->error)
        return;
    va_list ap;
    va_start(ap, fmt);
    f->error = ferry_vasprintf(fmt, ap);
    va_end(ap);
}

/* ---- reports to ferryd ---- */

static void up_on_report(void *arg, const agent_reply *r)
{
    up_file *f = arg;
    f->report = NULL;
    if (!r->ok) {
        char why[600];
        /* ferryd's refusal says it all ("output x could not be stored: ..."). */
        const char *text = r->status == 409 && r->error && r->error[0]
                               ? r->error
                               : agent_reply_text(r, why, sizeof(why));
        if (f->error == NULL && strncmp(text, "output ", 7) == 0) {
            f->error = ferry_strdup(strstr(text, ": ") ? strstr(text, ": ") + 2 : text);
        } else {
            up_fail(f, "ferryd did not take the report: %s", text);
        }
    }
    up_finish(f);
    up_pump(f->u);
}

/* {"name", "size", "sha256"} plus the upload's parts or its error. */
static void up_report(up_file *f)
{
    uploads *u = f->u;
    json_t *body = json_pack("{s:s, s:I, s:s}", "name", up_name(f), "size",
                             (json_int_t)f->out->size, "sha256", f->out->sha256);
    const char *upload_id = json_string_value(json_object_get(f->entry, "upload_id"));
    if (upload_id)
        json_object_set_new(body, "upload_id", json_string(upload_id));
    if (f->error) {
        json_object_set_new(body, "error", json_string(f->error));
    } else if (f->multipart) {
        json_t *parts = json_array();
        for (int i = 0; i < f->n_parts; i++)
            json_array_append_new(parts,
                                  json_pack("{s:i, s:s}", "part", i + 1, "etag", f->etags[i]));
        json_object_set_new(body, "parts", parts);
    }
    char *path = ferry_asprintf("/v1/agent/executions/%s/uploaded", u->exec_id);
    agent_call_spec s = {.path = path, .body = body};
    f->report = agent_call_start(u->a, &s, up_on_report, f);
    free(path);
    json_decref(body);
}

/* ---- transfers ---- */

/* Every part is in, or the file failed and none is in flight any more: the
 * parts already on their way are let finish rather than cut off, since the
 * store may still take one it was receiving after ferryd aborted the
 * upload, and keep it. */
static void up_file_settled(up_file *f)
{
    if (f->inflight > 0 || (f->error == NULL && f->parts_done < f->n_parts))
        return;
    int reported = json_is_true(json_object_get(f->entry, "report"));
    if (f->error == NULL && (f->multipart || reported) && f->u->check &&
        !f->u->check(f->u->arg, f->out))
        up_fail(f, "%s", f->u->check_why); /* a multipart upload is then aborted */
    if (f->multipart || (reported && f->error == NULL))
        up_report(f);
    else
        up_finish(f);
}

static void up_on_xfer(void *arg, const agent_reply *r)
{
    up_xfer *x = arg;
    up_file *f = x->f;
    uploads *u = f->u;
    x->call = NULL;
    f->inflight--;
    u->inflight--;
    char why[600], etag[256];
    const ferry_http_response res = {.struct_size = sizeof(res), .headers = r->headers};
    if (!r->ok && r->code == FERRY_EUNSAFE) {
        /* the HTTP client found another file at the path than the walk read */
        up_fail(f, "replaced since outputs/ was listed (by a symlink or another file); "
                   "not uploaded");
    } else if (!r->ok) {
        if (x->part)
            up_fail(f, "part %d of %d: %s", x->part, f->n_parts,
                    agent_reply_text(r, why, sizeof(why)));
        else
            up_fail(f, "%s", agent_reply_text(r, why, sizeof(why)));
    } else if (x->part && (r->headers == NULL ||
                           ferry_http_header(&res, "ETag", etag, sizeof(etag)) == NULL)) {
        up_fail(f, "part %d of %d: the store's answer has no ETag", x->part, f->n_parts);
    } else if (x->part) {
        f->etags[x->part - 1] = ferry_strdup(etag);
        f->parts_done++;
    } else {
        f->parts_done = f->n_parts;
    }
    up_file_settled(f);
    up_pump(u);
}

static void up_start_xfer(up_file *f, int part)
{
    uploads *u = f->u;
    up_xfer *x = &f->xfers[part ? part - 1 : 0];
    x->f = f;
    x->part = part;
    agent_call_spec s = {.method = "PUT",
                         .upload_path = f->path,
                         /* what the walk hashed, not what may be there now */
                         .upload_same_file = 1,
                         .upload_dev = f->out->dev,
                         .upload_ino = f->out->ino,
                         .max_attempts = UP_ATTEMPTS,
                         .stall_timeout_ms = UP_STALL_TIMEOUT_MS};
    if (part) {
        int64_t size = json_integer_value(json_object_get(f->entry, "part_size"));
        s.url = json_string_value(json_array_get(json_object_get(f->entry, "parts"), part - 1));
        s.upload_offset = (int64_t)(part - 1) * size;
        s.upload_length = part < f->n_parts ? size : f->out->size - s.upload_offset;
    } else {
        s.url = json_string_value(json_object_get(f->entry, "url"));
    }
    f->inflight++;
    u->inflight++;
    x->call = agent_call_start(u->a, &s, up_on_xfer, x);
}

/* The next transfer to start, in the order of the answer. */
static up_file *up_next(uploads *u, int *part)
{
    for (; u->cursor < u->n; u->cursor++) {
        up_file *f = &u->files[u->cursor];
        if (f->finished || f->error)
            continue;
        if (!f->multipart && !f->started) {
            f->started = 1;
            *part = 0;
            return f;
        }
        if (f->multipart && f->next_part < f->n_parts) {
            *part = ++f->next_part;
            return f;
        }
    }
    return NULL;
}

static void up_pump(uploads *u)
{
    int part;
    up_file *f;
    while (u->inflight < u->limit && (f = up_next(u, &part)) != NULL)
        up_start_xfer(f, part);
    if (u->open > 0 || u->done == NULL)
        return;
    double s = (double)(ferry_mono_ms() - u->started_ms) / 1000.0;
    if (u->n > 0) {
        if (u->check == NULL) /* a live output says so itself */
            shipper_status(u->ship, "uploaded %zu of %zu outputs", u->stored, u->n);
        ferry_info("execution %s: %zu of %zu outputs (%lld bytes) uploaded in %.2f s", u->exec_id,
                   u->stored, u->n, (long long)u->bytes, s);
    }
    uploads_done_cb done = u->done;
    u->done = NULL; /* once */
    done(u->arg, u->failure);
}

/* ---- setting up ---- */

static const output_file *up_find_output(const output_list *outs, const char *name)
{
    for (size_t i = 0; name && i < outs->n; i++)
        if (strcmp(outs->files[i].name, name) == 0)
            return &outs->files[i];
    return NULL;
}

/* A file of the answer; 0, 1 when ferryd holds it already, or < 0 when it
 * is unusable (failed at once). */
static int up_file_init(uploads *u, up_file *f, const char *outputs_dir)
{
    const char *error = json_string_value(json_object_get(f->entry, "error"));
    if (json_is_true(json_object_get(f->entry, "stored")))
        return 1; /* a live output ferryd holds as it is */
    json_t *parts = json_object_get(f->entry, "parts");
    int64_t part_size = json_integer_value(json_object_get(f->entry, "part_size"));
    f->path = ferry_asprintf("%s/%s", outputs_dir, up_name(f));
    u->bytes += f->out->size;
    if (error) {
        up_fail(f, "ferryd could not start the upload: %s", error);
        return FERRY_EIO;
    }
    if (json_is_array(parts)) {
        f->multipart = 1;
        f->n_parts = (int)json_array_size(parts);
        if (f->n_parts == 0 || part_size <= 0 ||
            (int64_t)(f->n_parts - 1) * part_size >= f->out->size ||
            (int64_t)f->n_parts * part_size < f->out->size) {
            up_fail(f, "ferryd's parts do not cover the file");
            return FERRY_EPROTO;
        }
        f->etags = ferry_xcalloc((size_t)f->n_parts, sizeof(char *));
    } else if (json_string_value(json_object_get(f->entry, "url")) == NULL) {
        up_fail(f, "ferryd gave no URL for it");
        return FERRY_EPROTO;
    } else {
        f->n_parts = 1;
    }
    f->xfers = ferry_xcalloc((size_t)f->n_parts, sizeof(up_xfer));
    return 0;
}

uploads *uploads_start(agent *a, const char *exec_id, const char *outputs_dir,
                       const output_list *outs, json_t *answer, shipper *ship, uploads_done_cb done,
                       void *arg)
{
    return uploads_start_checked(a, exec_id, outputs_dir, outs, answer, ship, NULL, NULL, done,
                                 arg);
}

uploads *uploads_start_checked(agent *a, const char *exec_id, const char *outputs_dir,
                               const output_list *outs, json_t *answer, shipper *ship,
                               uploads_check_cb check, const char *why, uploads_done_cb done,
                               void *arg)
{
    uploads *u = ferry_xcalloc(1, sizeof(*u));
    u->a = a;
    u->exec_id = ferry_strdup(exec_id);
    u->ship = ship;
    u->answer = json_incref(answer);
    u->check = check;
    u->check_why = why;
    u->done = done;
    u->arg = arg;
    u->started_ms = ferry_mono_ms();
    u->files = ferry_xcalloc(json_array_size(answer) + 1, sizeof(up_file));
    u->limit = UP_PARALLEL;
    size_t i;
    json_t *entry;
    json_array_foreach(answer, i, entry)
    {
        /* Only what the walk found: never a path ferryd names. */
        const output_file *out =
            up_find_output(outs, json_string_value(json_object_get(entry, "name")));
        if (out == NULL) {
            ferry_warn("execution %s: ferryd offered an upload for an unknown output", exec_id);
            continue;
        }
        up_file *f = &u->files[u->n++];
        f->u = u;
        f->out = out;
        f->entry = entry;
        u->open++;
        if (up_file_init(u, f, outputs_dir) != 0)
            up_finish(f);
        /* ferryd's own blob URLs: it holds each body in memory, one at a time. */
        else if (!f->multipart && !json_is_true(json_object_get(entry, "report")))
            u->limit = 1;
    }
    up_pump(u);
    return u;
}

void uploads_free(uploads *u)
{
    if (u == NULL)
        return;
    for (size_t i = 0; i < u->n; i++) {
        up_file *f = &u->files[i];
        for (int k = 0; f->xfers && k < f->n_parts; k++)
            agent_call_cancel(f->xfers[k].call);
        agent_call_cancel(f->report);
        for (int k = 0; f->etags && k < f->n_parts; k++)
            free(f->etags[k]);
        free(f->etags);
        free(f->xfers);
        free(f->path);
        free(f->error);
    }
    free(u->files);
    json_decref(u->answer);
    free(u->failure);
    free(u->exec_id);
    free(u);
}
