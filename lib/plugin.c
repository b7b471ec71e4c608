/* The plugin host: loading plugins (dlopen), checking their descriptor, the
 * registry of loaded plugins and their settings. Instances, operations and
 * the host API they call back into: plugin_host.c.
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

ferry_settings *ferry_settings_copy(const ferry_settings *src)
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
