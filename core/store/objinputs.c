/* Inputs in object storage, s3://BUCKET/KEY (see objinputs.h). */
#include "objinputs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "log.h"
#include "util.h"

#define OBJINPUTS__SCHEME "s3://"
#define OBJINPUTS__PLUGIN "s3-storage"
#define OBJINPUTS__BUCKET_MAX 255

int ferry_objinputs_is_url(const char *url)
{
    return url && strncmp(url, OBJINPUTS__SCHEME, strlen(OBJINPUTS__SCHEME)) == 0;
}

/* S3's bucket alphabet (with the legacy upper case and '_'): the name goes
 * into host names and paths. */
static int objinputs__bucket_ok(const char *b, size_t n)
{
    if (n == 0 || n > OBJINPUTS__BUCKET_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((b[i] >= 'a' && b[i] <= 'z') || (b[i] >= 'A' && b[i] <= 'Z') ||
              (b[i] >= '0' && b[i] <= '9') || strchr(".-_", b[i])))
            return 0;
    return 1;
}

/* s3://bucket/key: the bucket (copied) and the key (in url). */
static int objinputs__parse(const char *url, char *bucket, const char **key)
{
    const char *b = url + strlen(OBJINPUTS__SCHEME);
    const char *slash = strchr(b, '/');
    if (slash == NULL || !objinputs__bucket_ok(b, (size_t)(slash - b)))
        return FERRY_EINVAL;
    memcpy(bucket, b, (size_t)(slash - b));
    bucket[slash - b] = '\0';
    *key = slash + 1;
    return ferry_safe_relpath(*key) ? 0 : FERRY_EUNSAFE;
}

/* The store's settings for another bucket and no prefix: the same
 * endpoint, region and credentials. */
static ferry_settings *objinputs__settings(ferryd *d, const char *bucket)
{
    ferry_settings *s = ferry_settings_new();
    const char *k, *v;
    for (size_t it = 0; ferry_settings_next(d->cfg.store_settings, &it, &k, &v);)
        if (strcmp(k, "bucket") != 0 && strcmp(k, "prefix") != 0)
            ferry_settings_set(s, k, v);
    ferry_settings_set(s, "bucket", bucket);
    return s;
}

/* The instance for a bucket, made (and kept) the first time. Making one
 * checks the bucket: a blocking call, once per bucket. */
static ferry_plugin_instance *objinputs__instance(ferryd *d, const char *bucket, char *err,
                                                  size_t cap)
{
    ferry_plugin_instance *inst = ferry_map_get(&d->buckets, bucket);
    if (inst)
        return inst;
    if (strcmp(d->cfg.store_plugin, OBJINPUTS__PLUGIN) != 0) {
        snprintf(
            err, cap,
            "s3:// inputs are read with the store's credentials and need the " OBJINPUTS__PLUGIN
            " store; this ferryd's store is %s",
            d->cfg.store_plugin);
        return NULL;
    }
    const ferry_plugin *p =
        ferry_plugin_registry_get(&d->plugins, FERRY_PLUGIN_STORE, OBJINPUTS__PLUGIN);
    ferry_settings *s = objinputs__settings(d, bucket);
    char label[OBJINPUTS__BUCKET_MAX + 16];
    snprintf(label, sizeof(label), "inputs s3://%s", bucket);
    ferry_error_detail detail = {.struct_size = sizeof(detail)};
    int rc =
        p ? ferry_plugin_instance_new(p, d->loop, label, s, NULL, &inst, &detail) : FERRY_ENOENT;
    ferry_settings_free(s);
    if (rc < 0) {
        snprintf(err, cap, "%s", detail.message[0] ? detail.message : ferry_strerror(rc));
        return NULL;
    }
    ferry_map_put(&d->buckets, bucket, inst);
    return inst;
}

static const ferry_store_ops *objinputs__ops(ferry_plugin_instance *inst)
{
    return &ferry_plugin_instance_plugin(inst)->ops.store;
}

/* ---- the check at submission ---- */

typedef struct objinputs__check {
    ferryd *d;
    json_t *objects; /* url -> {size, etag} */
    int pending;     /* HEADs in flight, plus one while they are started */
    int failed;
    char err[1024];
    ferry_objinputs_done_fn done;
    void *arg;
} objinputs__check;

typedef struct objinputs__head {
    objinputs__check *c;
    char *name, *url;
} objinputs__head;

static void objinputs__settle(objinputs__check *c)
{
    if (--c->pending > 0)
        return;
    c->done(c->d, c->arg, c->failed, c->objects, c->err);
    json_decref(c->objects);
    free(c);
}

static void objinputs__fail(objinputs__check *c, int rc, const char *name, const char *url,
                            const char *why)
{
    if (c->failed)
        return;
    c->failed = rc < 0 ? rc : FERRY_EIO;
    if (rc == FERRY_ENOENT)
        snprintf(c->err, sizeof(c->err), "input '%s': %s does not exist", name, url);
    else
        snprintf(c->err, sizeof(c->err), "input '%s': %s cannot be read: %s", name, url, why);
}

static void objinputs__headed(void *arg, int status, const ferry_op_result *res)
{
    objinputs__head *h = arg;
    objinputs__check *c = h->c;
    if (status == 0 && res)
        json_object_set_new(c->objects, h->url,
                            json_pack("{s:I, s:s?}", "size", (json_int_t)res->size, "etag",
                                      res->text && res->text[0] ? res->text : NULL));
    else
        objinputs__fail(c, status, h->name, h->url,
                        res && res->error && res->error->message[0] ? res->error->message
                                                                    : ferry_strerror(status));
    free(h->name);
    free(h->url);
    free(h);
    objinputs__settle(c);
}

static void objinputs__start_head(objinputs__check *c, const char *name, const char *url)
{
    char bucket[OBJINPUTS__BUCKET_MAX + 1], why[600];
    const char *key;
    objinputs__parse(url, bucket, &key); /* parsed before: cannot fail */
    ferry_plugin_instance *inst = objinputs__instance(c->d, bucket, why, sizeof(why));
    const ferry_store_ops *ops = inst ? objinputs__ops(inst) : NULL;
    objinputs__head *h = ferry_xcalloc(1, sizeof(*h));
    h->c = c;
    h->name = ferry_strdup(name);
    h->url = ferry_strdup(url);
    ferry_op *op = ops && ops->head ? ferry_op_new(inst, objinputs__headed, h) : NULL;
    int rc = op ? ops->head(ferry_plugin_instance_state(inst), key, op) : FERRY_ENOTSUP;
    if (rc == 0) {
        c->pending++;
        return;
    }
    if (op)
        ferry_op_abandon(op);
    objinputs__fail(c, rc, name, url, ferry_strerror(rc));
    free(h->name);
    free(h->url);
    free(h);
}

/* What can be refused at once: a malformed URL, an unusable bucket (the
 * bucket's instance is made here, so that its error is the answer). */
static int objinputs__precheck(ferryd *d, const char *name, const char *url, char *err, size_t cap)
{
    char bucket[OBJINPUTS__BUCKET_MAX + 1], why[600];
    const char *key;
    if (objinputs__parse(url, bucket, &key) < 0) {
        snprintf(err, cap, "input '%s': %s is not s3://BUCKET/KEY (a key of safe path segments)",
                 name, url);
        return FERRY_EINVAL;
    }
    if (objinputs__instance(d, bucket, why, sizeof(why)) == NULL) {
        snprintf(err, cap, "input '%s': %s cannot be read: %s", name, url, why);
        return FERRY_EINVAL;
    }
    return 0;
}

int ferry_objinputs_check(ferryd *d, const json_t *inputs, ferry_objinputs_done_fn done, void *arg,
                          char *err, size_t err_cap)
{
    int any = 0;
    const char *name;
    json_t *urls;
    json_object_foreach((json_t *)inputs, name, urls)
    {
        size_t i;
        json_t *u;
        json_array_foreach(urls, i, u)
        {
            const char *url = json_string_value(u);
            if (!ferry_objinputs_is_url(url))
                continue;
            int rc = objinputs__precheck(d, name, url, err, err_cap);
            if (rc < 0)
                return rc;
            any = 1;
        }
    }
    if (!any)
        return 1;
    objinputs__check *c = ferry_xcalloc(1, sizeof(*c));
    c->d = d;
    c->objects = json_object();
    c->pending = 1;
    c->done = done;
    c->arg = arg;
    json_t *seen = json_object();
    json_object_foreach((json_t *)inputs, name, urls)
    {
        size_t i;
        json_t *u;
        json_array_foreach(urls, i, u)
        {
            const char *url = json_string_value(u);
            if (!ferry_objinputs_is_url(url) || json_object_get(seen, url))
                continue;
            json_object_set_new(seen, url, json_true());
            objinputs__start_head(c, name, url);
        }
    }
    json_decref(seen);
    objinputs__settle(c);
    return 0;
}

void ferry_objinputs_save(ferryd *d, const char *exec_id, const json_t *objects)
{
    const char *url;
    json_t *o;
    json_object_foreach((json_t *)objects, url, o)
    {
        ferry_db_write(d);
        sqlite3_stmt *st = ferry_db_prepare(
            d, "INSERT OR REPLACE INTO input_objects (execution_id, url, size, etag)"
               " VALUES (?,?,?,?)");
        sqlite3_bind_text(st, 1, exec_id, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, url, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, json_integer_value(json_object_get(o, "size")));
        sqlite3_bind_text(st, 4, json_string_value(json_object_get(o, "etag")), -1, SQLITE_STATIC);
        ferry_db_step_done(d, st);
    }
}

/* ---- the work spec ---- */

/* Size and ETag as checked at submission: the worker checks the size and
 * caches by ETag. Absent (an older record): it downloads unchecked. */
static void objinputs__describe(ferryd *d, const char *exec_id, const char *url, json_t *file)
{
    sqlite3_stmt *st = ferry_db_prepare(
        d, "SELECT size, etag FROM input_objects WHERE execution_id = ? AND url = ?");
    sqlite3_bind_text(st, 1, exec_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, url, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW) {
        json_object_set_new(file, "size", json_integer(sqlite3_column_int64(st, 0)));
        const char *etag = (const char *)sqlite3_column_text(st, 1);
        if (etag)
            json_object_set_new(file, "etag", json_string(etag));
    }
    sqlite3_reset(st);
}

json_t *ferry_objinputs_file(ferryd *d, const char *exec_id, const char *url, const char *filename)
{
    json_t *file = json_pack("{s:s, s:s}", "filename", filename, "source", url);
    char bucket[OBJINPUTS__BUCKET_MAX + 1], why[600] = "not s3://BUCKET/KEY";
    const char *key;
    ferry_plugin_instance *inst = objinputs__parse(url, bucket, &key) == 0
                                      ? objinputs__instance(d, bucket, why, sizeof(why))
                                      : NULL;
    const ferry_store_ops *ops = inst ? objinputs__ops(inst) : NULL;
    char presigned[4096];
    ferry_error_detail err = {.struct_size = sizeof(err)};
    if (ops && ops->presign &&
        ops->presign(ferry_plugin_instance_state(inst), "GET", key, d->cfg.presigned_url_ttl_s,
                     presigned, sizeof(presigned), &err) == 0) {
        json_object_set_new(file, "url", json_string(presigned));
        objinputs__describe(d, exec_id, url, file);
    } else {
        json_object_set_new(
            file, "error",
            json_string(ops ? (err.message[0] ? err.message : "cannot presign") : why));
    }
    return file;
}

void ferry_objinputs_close(ferryd *d)
{
    const char *k;
    void *v;
    for (size_t it = 0; ferry_map_next(&d->buckets, &it, &k, &v);)
        ferry_plugin_instance_free(v);
    ferry_map_free(&d->buckets);
}
