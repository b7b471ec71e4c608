/* Inputs that a store plugin reads: URLs of a scheme a loaded store claims
 * (see objinputs.h). Which URLs are well formed, which location's instance
 * reads one and with which settings is the plugin's to say (url_input);
 * this file only routes, keeps one instance per location and asks it. */
#include "objinputs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "inputrows.h"
#include "log.h"
#include "util.h"

/* What the worker fetches itself (agent/execution.c's curl protocols): a
 * URL of these schemes is never handed to a store. */
static const char *const objinputs__worker_schemes[] = {"http", "https", "file", NULL};

int ferry_objinputs_is_url(const char *url)
{
    if (url == NULL || strncmp(url, "datum://", 8) == 0) /* ferryd's own (http/datums.c) */
        return 0;
    size_t n = strcspn(url, ":/?#");
    if (n == 0 || strncmp(url + n, "://", 3) != 0)
        return 0; /* no scheme: the worker's to refuse, as before */
    for (const char *const *w = objinputs__worker_schemes; *w; w++)
        if (strlen(*w) == n && strncasecmp(*w, url, n) == 0)
            return 0;
    return 1;
}

/* One input URL as its store sees it. */
typedef struct objinputs__target {
    const ferry_plugin *plugin; /* the store that claims the scheme */
    const char *scheme;         /* as that store spells it */
    ferry_store_url in;         /* location, key; settings: the instance's */
    /* "<scheme>://<location>", for people; "<store> <location>" keys the
     * instance: one per location, whichever of the store's schemes names it. */
    char shown[FERRY_PLUGIN_SCHEME_MAX + 3 + sizeof(((ferry_store_url *)0)->location)];
    char instance[512];
} objinputs__target;

static const char *objinputs__get(void *settings, const char *name)
{
    return ferry_settings_get(settings, name);
}

static void objinputs__set(void *settings, const char *name, const char *value)
{
    if (name != NULL)
        ferry_settings_set(settings, name, value); /* NULL: dropped when the instance is made */
}

/* The store's settings, for url_input to change for one location. */
static ferry_settings *objinputs__settings_copy(const ferry_settings *from)
{
    ferry_settings *s = ferry_settings_new();
    const char *k, *v;
    for (size_t it = 0; ferry_settings_next(from, &it, &k, &v);)
        if (v != NULL)
            ferry_settings_set(s, k, v);
    return s;
}

static void objinputs__target_free(objinputs__target *t)
{
    ferry_settings_free(t->in.settings);
    t->in.settings = NULL;
}

/* Which store reads `url`, where and with what. FERRY_EINVAL when no
 * loaded store claims the scheme or the store refuses the URL: `err` says
 * why, as the end of "input 'NAME': URL <err>", and `t` holds nothing. */
static int objinputs__resolve(ferryd *d, const char *url, objinputs__target *t, char *err,
                              size_t cap)
{
    memset(t, 0, sizeof(*t));
    t->plugin = ferry_plugin_registry_store_for_url(&d->plugins, url, d->cfg.store_plugin);
    if (t->plugin == NULL) {
        int n = (int)strcspn(url, ":");
        snprintf(err, cap,
                 "cannot be read: no loaded store plugin reads %.*s:// URLs (the worker itself "
                 "fetches only http, https and file URLs)",
                 n, url);
        return FERRY_EINVAL;
    }
    t->scheme = ferry_plugin_store_scheme(t->plugin, url);
    t->in.struct_size = sizeof(t->in);
    t->in.settings = objinputs__settings_copy(d->cfg.store_settings);
    t->in.get = objinputs__get;
    t->in.set = objinputs__set;
    ferry_error_detail detail = {.struct_size = sizeof(detail)};
    int rc = t->plugin->ops.store.url_input(url, &t->in, &detail);
    t->in.location[sizeof(t->in.location) - 1] = '\0';
    if (rc == 0 && !ferry_safe_relpath(t->in.key)) {
        rc = FERRY_EINVAL;
        snprintf(detail.message, sizeof(detail.message), "a URL of a key of safe path segments");
    }
    if (rc < 0) {
        snprintf(err, cap, "is not %s",
                 detail.message[0] ? detail.message : "a URL its store can read");
        objinputs__target_free(t);
        return FERRY_EINVAL;
    }
    snprintf(t->shown, sizeof(t->shown), "%s://%s", t->scheme, t->in.location);
    snprintf(t->instance, sizeof(t->instance), "%s %s", t->plugin->desc.name, t->in.location);
    return 0;
}

/* The instance for a target's location, made (and kept) the first time.
 * Making one checks the location: a blocking call, once per location. */
static ferry_plugin_instance *objinputs__instance(ferryd *d, const objinputs__target *t, char *err,
                                                  size_t cap)
{
    ferry_plugin_instance *inst = ferry_map_get(&d->input_stores, t->instance);
    if (inst)
        return inst;
    const char *name = t->plugin->desc.name;
    if (strcmp(d->cfg.store_plugin, name) != 0) {
        snprintf(err, cap,
                 "%s:// inputs are read with the store's credentials and need the %s store; "
                 "this ferryd's store is %s",
                 t->scheme, name, d->cfg.store_plugin);
        return NULL;
    }
    ferry_settings *s = objinputs__settings_copy(t->in.settings);
    char label[sizeof(t->shown) + 16];
    snprintf(label, sizeof(label), "inputs %s", t->shown);
    ferry_error_detail detail = {.struct_size = sizeof(detail)};
    int rc = ferry_plugin_instance_new(t->plugin, d->loop, label, s, NULL, &inst, &detail);
    ferry_settings_free(s);
    if (rc < 0) {
        snprintf(err, cap, "%s", detail.message[0] ? detail.message : ferry_strerror(rc));
        return NULL;
    }
    ferry_map_put(&d->input_stores, t->instance, inst);
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
    char why[600];
    objinputs__target t;
    /* Resolved and its instance made by the precheck: cannot fail. */
    ferry_plugin_instance *inst = objinputs__resolve(c->d, url, &t, why, sizeof(why)) == 0
                                      ? objinputs__instance(c->d, &t, why, sizeof(why))
                                      : NULL;
    const ferry_store_ops *ops = inst ? objinputs__ops(inst) : NULL;
    objinputs__head *h = ferry_xcalloc(1, sizeof(*h));
    h->c = c;
    h->name = ferry_strdup(name);
    h->url = ferry_strdup(url);
    ferry_op *op = ops && ops->head ? ferry_op_new(inst, objinputs__headed, h) : NULL;
    int rc = op ? ops->head(ferry_plugin_instance_state(inst), t.in.key, op) : FERRY_ENOTSUP;
    objinputs__target_free(&t);
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

/* What can be refused at once: a scheme no store reads, a URL its store
 * refuses, an unusable location (its instance is made here, so that its
 * error is the answer). */
static int objinputs__precheck(ferryd *d, const char *name, const char *url, char *err, size_t cap)
{
    char why[600];
    objinputs__target t;
    if (objinputs__resolve(d, url, &t, why, sizeof(why)) < 0) {
        snprintf(err, cap, "input '%s': %s %s", name, url, why);
        return FERRY_EINVAL;
    }
    ferry_plugin_instance *inst = objinputs__instance(d, &t, why, sizeof(why));
    objinputs__target_free(&t);
    if (inst == NULL) {
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
        if (ferry_inputrows_save(d, exec_id, url, json_integer_value(json_object_get(o, "size")),
                                 json_string_value(json_object_get(o, "etag"))) < 0)
            ferry_error("execution %s: input %s is not recorded", exec_id, url);
    }
}

/* ---- the work spec ---- */

/* Size and ETag as checked at submission: the worker checks the size and
 * caches by ETag. Absent (an older record): it downloads unchecked. */
static void objinputs__describe(ferryd *d, const char *exec_id, const char *url, json_t *file)
{
    int64_t size;
    char etag[256];
    if (!ferry_inputrows_find(d, exec_id, url, &size, etag, sizeof(etag)))
        return;
    json_object_set_new(file, "size", json_integer(size));
    if (etag[0])
        json_object_set_new(file, "etag", json_string(etag));
}

json_t *ferry_objinputs_file(ferryd *d, const char *exec_id, const char *url, const char *filename)
{
    json_t *file = json_pack("{s:s, s:s}", "filename", filename, "source", url);
    char why[600];
    objinputs__target t;
    ferry_plugin_instance *inst = objinputs__resolve(d, url, &t, why, sizeof(why)) == 0
                                      ? objinputs__instance(d, &t, why, sizeof(why))
                                      : NULL;
    const ferry_store_ops *ops = inst ? objinputs__ops(inst) : NULL;
    char presigned[4096];
    ferry_error_detail err = {.struct_size = sizeof(err)};
    if (ops && ops->presign &&
        ops->presign(ferry_plugin_instance_state(inst), "GET", t.in.key, d->cfg.presigned_url_ttl_s,
                     presigned, sizeof(presigned), &err) == 0) {
        json_object_set_new(file, "url", json_string(presigned));
        objinputs__describe(d, exec_id, url, file);
    } else {
        json_object_set_new(
            file, "error",
            json_string(ops ? (err.message[0] ? err.message : "cannot presign") : why));
    }
    objinputs__target_free(&t);
    return file;
}

void ferry_objinputs_close(ferryd *d)
{
    const char *k;
    void *v;
    for (size_t it = 0; ferry_map_next(&d->input_stores, &it, &k, &v);)
        ferry_plugin_instance_free(v);
    ferry_map_free(&d->input_stores);
}
