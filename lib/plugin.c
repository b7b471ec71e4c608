/* The plugin host: loading plugins (dlopen), checking their descriptor, and
 * the host API they call back into.
 *
 * Checks happen once, at load: afterwards the rest of ferry works on the
 * zero-extended host copies of the descriptor and ops table, so "op is NULL"
 * is the only question it ever asks about a plugin's abilities.
 */
#include "plugin.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "log.h"
#include "util.h"

/* ------------------------------------------------------------------------ */
/* Settings                                                                 */

struct ferry_settings {
    size_t n, cap;
    char **keys;
    char **values;
};

ferry_settings *ferry_settings_new(void)
{
    return ferry_xcalloc(1, sizeof(ferry_settings));
}

static ssize_t ferry__settings_find(const ferry_settings *s, const char *key)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->keys[i], key) == 0)
            return (ssize_t)i;
    return -1;
}

void ferry_settings_set(ferry_settings *s, const char *key, const char *value)
{
    ssize_t i = ferry__settings_find(s, key);
    if (i >= 0) {
        free(s->values[i]);
        s->values[i] = ferry_strdup(value);
        return;
    }
    size_t cap = s->cap; /* the two arrays grow alike */
    FERRY_XGROW(s->keys, cap, s->n + 1);
    FERRY_XGROW(s->values, s->cap, s->n + 1);
    s->keys[s->n] = ferry_strdup(key);
    s->values[s->n] = ferry_strdup(value);
    s->n++;
}

const char *ferry_settings_get(const ferry_settings *s, const char *key)
{
    if (s == NULL || key == NULL)
        return NULL;
    ssize_t i = ferry__settings_find(s, key);
    return i >= 0 ? s->values[i] : NULL;
}

int ferry_settings_next(const ferry_settings *s, size_t *iter, const char **key, const char **value)
{
    if (s == NULL || *iter >= s->n)
        return 0;
    *key = s->keys[*iter];
    *value = s->values[*iter];
    (*iter)++;
    return 1;
}

static int ferry__in_list(const char *const *list, const char *name)
{
    for (; list && *list; list++)
        if (strcmp(*list, name) == 0)
            return 1;
    return 0;
}

int ferry_plugin_check_settings(const ferry_plugin *p, const ferry_settings *s,
                                const char *const *host_keys, const char **unknown)
{
    if (p->desc.settings == NULL)
        return 0;
    size_t it = 0;
    const char *k, *v;
    while (ferry_settings_next(s, &it, &k, &v)) {
        if (!ferry__in_list(p->desc.settings, k) && !ferry__in_list(host_keys, k)) {
            *unknown = k;
            return FERRY_ECONFIG;
        }
    }
    return 0;
}

char *ferry_plugin_settings_list(const ferry_plugin *p)
{
    char *out = ferry_strdup("");
    for (const char *const *k = p->desc.settings; k && *k; k++) {
        char *next = ferry_asprintf("%s%s%s", out, *out ? ", " : "", *k);
        free(out);
        out = next;
    }
    return out;
}

static ferry_settings *ferry__settings_copy(const ferry_settings *src)
{
    ferry_settings *s = ferry_settings_new();
    for (size_t i = 0; src != NULL && i < src->n; i++)
        ferry_settings_set(s, src->keys[i], src->values[i]);
    return s;
}

void ferry_settings_free(ferry_settings *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->n; i++) {
        free(s->keys[i]);
        free(s->values[i]);
    }
    free(s->keys);
    free(s->values);
    free(s);
}

/* ------------------------------------------------------------------------ */
/* Loading and checking                                                     */

typedef struct ferry__required_op {
    const char *name;
    size_t offset;
} ferry__required_op;

/* What the loader knows of each kind. `min_ops_size` covers the required ops
 * only, so a table built against an older minor with fewer optional ops
 * still loads; the missing tail reads as NULL. */
typedef struct ferry__kind_info {
    ferry_plugin_kind kind;
    const char *name;
    size_t host_ops_size;
    size_t min_ops_size;
    ferry__required_op required[2];
} ferry__kind_info;

static const ferry__kind_info ferry__kinds[] = {
    {FERRY_PLUGIN_COMPUTE,
     "compute",
     sizeof(ferry_compute_ops),
     FERRY_FIELD_END(ferry_compute_ops, terminate),
     {{"launch", offsetof(ferry_compute_ops, launch)},
      {"terminate", offsetof(ferry_compute_ops, terminate)}}},
    {FERRY_PLUGIN_RUNTIME,
     "runtime",
     sizeof(ferry_runtime_ops),
     FERRY_FIELD_END(ferry_runtime_ops, stop),
     {{"start", offsetof(ferry_runtime_ops, start)}, {"stop", offsetof(ferry_runtime_ops, stop)}}},
    {FERRY_PLUGIN_STORE,
     "store",
     sizeof(ferry_store_ops),
     FERRY_FIELD_END(ferry_store_ops, get_file),
     {{"put_file", offsetof(ferry_store_ops, put_file)},
      {"get_file", offsetof(ferry_store_ops, get_file)}}},
};

/* Descriptor fields of ABI 1.0; a plugin can never have fewer. */
static const size_t ferry__desc_min_size = FERRY_FIELD_END(ferry_plugin_descriptor, ops);

static const ferry__kind_info *ferry__kind_lookup(int kind)
{
    for (size_t i = 0; i < sizeof(ferry__kinds) / sizeof(ferry__kinds[0]); i++)
        if ((int)ferry__kinds[i].kind == kind)
            return &ferry__kinds[i];
    return NULL;
}

const char *ferry_plugin_kind_name(ferry_plugin_kind kind)
{
    const ferry__kind_info *k = ferry__kind_lookup((int)kind);
    return k ? k->name : "unknown";
}

static int ferry__refuse(char *err, size_t err_cap, int code, const char *path, const char *fmt,
                         ...) __attribute__((format(printf, 5, 6)));

/* Every refusal reads "<file>: <reason>", so a log line alone says which
 * file to fix. */
static int ferry__refuse(char *err, size_t err_cap, int code, const char *path, const char *fmt,
                         ...)
{
    if (err == NULL || err_cap == 0)
        return code;
    int n = snprintf(err, err_cap, "%s: ", path);
    if (n >= 0 && (size_t)n < err_cap) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err + n, err_cap - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return code;
}

static int ferry__check_descriptor(const ferry_plugin_descriptor *d, const char *path, char *err,
                                   size_t err_cap)
{
    if (d == NULL)
        return ferry__refuse(err, err_cap, FERRY_EABI, path, "%s() returned a NULL descriptor",
                             FERRY_PLUGIN_SYMBOL);
    /* struct_size and abi_major sit at the start in every version; the
     * major comes first, as it explains a different layout best. */
    if (FERRY_HAS_FIELD(d, ferry_plugin_descriptor, abi_major) && d->abi_major != FERRY_ABI_MAJOR)
        return ferry__refuse(err, err_cap, FERRY_EABI, path,
                             "plugin ABI major version %u, this host supports %u",
                             (unsigned)d->abi_major, (unsigned)FERRY_ABI_MAJOR);
    if (d->struct_size < ferry__desc_min_size)
        return ferry__refuse(err, err_cap, FERRY_EABI, path,
                             "descriptor struct_size %zu is too small (at least %zu expected)",
                             d->struct_size, ferry__desc_min_size);
    if (ferry__kind_lookup((int)d->kind) == NULL)
        return ferry__refuse(err, err_cap, FERRY_EABI, path, "unknown plugin kind %d",
                             (int)d->kind);
    if (d->name == NULL || d->name[0] == '\0')
        return ferry__refuse(err, err_cap, FERRY_EABI, path, "descriptor has no name");
    if (d->ops == NULL)
        return ferry__refuse(err, err_cap, FERRY_EABI, path, "descriptor has no ops table (NULL)");
    return 0;
}

/* A URL scheme as a store may claim it: RFC 3986's alphabet, lower case. */
static int ferry__scheme_ok(const char *s)
{
    if (s == NULL || !(s[0] >= 'a' && s[0] <= 'z') || strlen(s) > FERRY_PLUGIN_SCHEME_MAX)
        return 0;
    for (const char *c = s; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || strchr("+-.", *c)))
            return 0;
    return 1;
}

/* ABI 1.3's url_schemes and url_input come together; the schemes are
 * checked here once, so routing never meets a malformed one. */
static int ferry__check_store_schemes(const ferry_plugin *p, char *err, size_t err_cap)
{
    const char *const *schemes = p->ops.store.url_schemes;
    if (schemes == NULL)
        return 0;
    if (p->ops.store.url_input == NULL)
        return ferry__refuse(err, err_cap, FERRY_EABI, p->path,
                             "store declares url_schemes but op url_input is missing (NULL)");
    size_t n = 0;
    for (; schemes[n] != NULL; n++) {
        if (n == FERRY_PLUGIN_SCHEMES_MAX)
            return ferry__refuse(err, err_cap, FERRY_EABI, p->path,
                                 "url_schemes has more than %d entries (no NULL at its end?)",
                                 FERRY_PLUGIN_SCHEMES_MAX);
        if (!ferry__scheme_ok(schemes[n]))
            return ferry__refuse(err, err_cap, FERRY_EABI, p->path,
                                 "url_schemes: \"%s\" is not a lower-case URL scheme "
                                 "([a-z][a-z0-9+.-]*, at most %d characters)",
                                 schemes[n], FERRY_PLUGIN_SCHEME_MAX);
    }
    return 0;
}

/* Copies the ops table into p->ops (already zeroed) and checks it. */
static int ferry__copy_ops(ferry_plugin *p, char *err, size_t err_cap)
{
    const ferry__kind_info *k = ferry__kind_lookup((int)p->desc.kind);
    size_t theirs = *(const size_t *)p->desc.ops;
    if (theirs < k->min_ops_size)
        return ferry__refuse(err, err_cap, FERRY_EABI, p->path,
                             "%s ops struct_size %zu is too small (at least %zu expected)", k->name,
                             theirs, k->min_ops_size);
    memcpy(&p->ops, p->desc.ops, theirs < k->host_ops_size ? theirs : k->host_ops_size);
    for (size_t i = 0; i < sizeof(k->required) / sizeof(k->required[0]); i++) {
        void (*fn)(void);
        memcpy(&fn, (const char *)&p->ops + k->required[i].offset, sizeof(fn));
        if (fn == NULL)
            return ferry__refuse(err, err_cap, FERRY_EABI, p->path,
                                 "required %s op %s is missing (NULL)", k->name,
                                 k->required[i].name);
    }
    return k->kind == FERRY_PLUGIN_STORE ? ferry__check_store_schemes(p, err, err_cap) : 0;
}

static int ferry__dlopen(const char *path, void **dl, char *err, size_t err_cap)
{
    /* Without a '/', dlopen() would search the library path instead of
     * opening the file the caller named. */
    char buf[PATH_MAX];
    const char *name = path;
    if (strchr(path, '/') == NULL) {
        if (snprintf(buf, sizeof(buf), "./%s", path) >= (int)sizeof(buf))
            return ferry__refuse(err, err_cap, FERRY_ETOOBIG, path, "path too long");
        name = buf;
    }
    struct stat st;
    if (stat(name, &st) != 0)
        return ferry__refuse(err, err_cap, errno == ENOENT ? FERRY_ENOENT : FERRY_EIO, path,
                             "cannot open: %s", strerror(errno));
    *dl = dlopen(name, RTLD_NOW | RTLD_LOCAL);
    if (*dl == NULL) {
        const char *why = dlerror();
        return ferry__refuse(err, err_cap, FERRY_EABI, path, "cannot load: %s",
                             why ? why : "unknown dlopen error");
    }
    return 0;
}

/* 0 and the entry point, or FERRY_ENOENT when the file does not export one. */
static int ferry__entry(void *dl, ferry_plugin_entry_fn *entry)
{
    dlerror();
    void *sym = dlsym(dl, FERRY_PLUGIN_SYMBOL);
    if (sym == NULL)
        return FERRY_ENOENT;
    /* POSIX guarantees data and function pointers convert; memcpy keeps
     * ISO C quiet about it. */
    memcpy(entry, &sym, sizeof(*entry));
    return 0;
}

int ferry_plugin_load(const char *path, ferry_plugin **out, char *err, size_t err_cap)
{
    *out = NULL;
    if (err != NULL && err_cap > 0)
        err[0] = '\0';
    void *dl = NULL;
    int rc = ferry__dlopen(path, &dl, err, err_cap);
    if (rc < 0)
        return rc;
    ferry_plugin_entry_fn entry;
    if (ferry__entry(dl, &entry) < 0) {
        dlclose(dl);
        return ferry__refuse(err, err_cap, FERRY_EABI, path,
                             "no %s symbol: not a ferry plugin, or built without "
                             "FERRY_PLUGIN_DEFINE()",
                             FERRY_PLUGIN_SYMBOL);
    }
    const ferry_plugin_descriptor *d = entry();
    rc = ferry__check_descriptor(d, path, err, err_cap);
    if (rc < 0) {
        dlclose(dl);
        return rc;
    }
    ferry_plugin *p = ferry_xcalloc(1, sizeof(*p));
    p->path = ferry_strdup(path);
    p->dl = dl;
    memcpy(&p->desc, d, d->struct_size < sizeof(p->desc) ? d->struct_size : sizeof(p->desc));
    rc = ferry__copy_ops(p, err, err_cap);
    if (rc < 0) {
        ferry_plugin_unload(p);
        return rc;
    }
    *out = p;
    return 0;
}

void ferry_plugin_unload(ferry_plugin *p)
{
    if (p == NULL)
        return;
    if (p->dl != NULL)
        dlclose(p->dl);
    free(p->path);
    free(p);
}

/* ------------------------------------------------------------------------ */
/* Registry                                                                 */

static int ferry__is_plugin_file(const struct dirent *e)
{
    size_t n = strlen(e->d_name);
    return e->d_name[0] != '.' && n > 3 && strcmp(e->d_name + n - 3, ".so") == 0;
}

static void ferry__registry_add(ferry_plugin_registry *reg, ferry_plugin *p)
{
    if (ferry_plugin_registry_get(reg, p->desc.kind, p->desc.name) != NULL) {
        ferry_warn("plugin %s: a %s plugin named \"%s\" is already loaded; ignoring this one",
                   p->path, ferry_plugin_kind_name(p->desc.kind), p->desc.name);
        ferry_plugin_unload(p);
        return;
    }
    reg->plugins = ferry_xrealloc(reg->plugins, (reg->n + 1) * sizeof(*reg->plugins));
    reg->plugins[reg->n++] = p;
}

int ferry_plugin_registry_scan(ferry_plugin_registry *reg, const char *dir)
{
    struct dirent **names = NULL;
    /* Sorted, so that which of two same-named plugins wins does not depend
     * on directory order. */
    int n = scandir(dir, &names, ferry__is_plugin_file, alphasort);
    if (n < 0) {
        int e = errno;
        ferry_error("plugin directory %s: %s", dir, strerror(e));
        return e == ENOENT ? FERRY_ENOENT : FERRY_EIO;
    }
    for (int i = 0; i < n; i++) {
        char *path = ferry_asprintf("%s/%s", dir, names[i]->d_name);
        char err[1024];
        ferry_plugin *p = NULL;
        if (ferry_plugin_load(path, &p, err, sizeof(err)) < 0)
            ferry_error("plugin refused: %s", err);
        else
            ferry__registry_add(reg, p);
        free(path);
        free(names[i]);
    }
    free(names);
    return 0;
}

const ferry_plugin *ferry_plugin_registry_get(const ferry_plugin_registry *reg,
                                              ferry_plugin_kind kind, const char *name)
{
    for (size_t i = 0; i < reg->n; i++)
        if (reg->plugins[i]->desc.kind == kind && strcmp(reg->plugins[i]->desc.name, name) == 0)
            return reg->plugins[i];
    return NULL;
}

/* The length of "s3" in "s3://b/k", or 0 when `url` has no scheme:// part. */
static size_t ferry__url_scheme_len(const char *url)
{
    size_t n = strcspn(url, ":/?#");
    return n > 0 && strncmp(url + n, "://", 3) == 0 ? n : 0;
}

const char *ferry_plugin_store_scheme(const ferry_plugin *p, const char *url)
{
    size_t n = url ? ferry__url_scheme_len(url) : 0;
    if (n == 0 || p->desc.kind != FERRY_PLUGIN_STORE || p->ops.store.url_schemes == NULL)
        return NULL;
    for (const char *const *s = p->ops.store.url_schemes; *s; s++)
        if (strlen(*s) == n && strncasecmp(*s, url, n) == 0)
            return *s;
    return NULL;
}

const ferry_plugin *ferry_plugin_registry_store_for_url(const ferry_plugin_registry *reg,
                                                        const char *url, const char *prefer)
{
    const ferry_plugin *first = NULL;
    for (size_t i = 0; i < reg->n; i++) {
        const ferry_plugin *p = reg->plugins[i];
        if (ferry_plugin_store_scheme(p, url) == NULL)
            continue;
        if (prefer && strcmp(p->desc.name, prefer) == 0)
            return p;
        if (first == NULL)
            first = p;
    }
    return first;
}

void ferry_plugin_registry_free(ferry_plugin_registry *reg)
{
    for (size_t i = 0; i < reg->n; i++)
        ferry_plugin_unload(reg->plugins[i]);
    free(reg->plugins);
    reg->plugins = NULL;
    reg->n = 0;
}

int ferry_plugin_default_dir(char *buf, size_t cap)
{
    const char *env = getenv("FERRY_PLUGIN_DIR");
    if (env != NULL && env[0] != '\0') {
        if (snprintf(buf, cap, "%s", env) >= (int)cap)
            return FERRY_ETOOBIG;
        return 0;
    }
    char exe[PATH_MAX];
    if (ferry_exe_dir(exe, sizeof(exe)) < 0)
        return FERRY_EIO;
    if (snprintf(buf, cap, "%s/../%s", exe, FERRY_PLUGIN_RELDIR) >= (int)cap)
        return FERRY_ETOOBIG;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Instances, operations and the host API                                   */

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
    inst->settings = ferry__settings_copy(settings);
    inst->secrets = ferry__settings_copy(secrets);
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
