/* The plugin host: loading plugins (dlopen), checking their descriptor, and
 * the host API they call back into. Used by ferryd (compute, store) and
 * ferry-agent (runtime).
 */
#ifndef FERRY_CORE_PLUGIN_H
#define FERRY_CORE_PLUGIN_H

#include <uv.h>

#include "ferry/ferry.h"

/* Key/value settings handed to a plugin instance (config_get / secret_get).
 * Values are copied. */
typedef struct ferry_settings ferry_settings;
ferry_settings *ferry_settings_new(void);
void ferry_settings_set(ferry_settings *s, const char *key, const char *value);
const char *ferry_settings_get(const ferry_settings *s, const char *key);
/* Iterate: for (size_t i = 0; ferry_settings_next(s, &i, &k, &v);) */
int ferry_settings_next(const ferry_settings *s, size_t *iter, const char **key,
                        const char **value);
/* A copy of `src` (NULL: an empty set). */
ferry_settings *ferry_settings_copy(const ferry_settings *src);
void ferry_settings_free(ferry_settings *s);

/* One loaded shared object whose descriptor passed every check. */
typedef struct ferry_plugin {
    char *path;                   /* file it came from */
    void *dl;                     /* dlopen handle */
    ferry_plugin_descriptor desc; /* host copy, zero-extended */
    /* host copy of the kind's ops table, zero-extended: NULL op = unsupported */
    union {
        ferry_compute_ops compute;
        ferry_runtime_ops runtime;
        ferry_store_ops store;
    } ops;
} ferry_plugin;

/* Load and check one file. Refusals (no symbol, wrong major ABI, struct too
 * small, unknown kind, missing required op) return a negative code with a
 * message naming the file and the reason in err. */
int ferry_plugin_load(const char *path, ferry_plugin **out, char *err, size_t err_cap);
void ferry_plugin_unload(ferry_plugin *p);
/* Check a configuration block against the plugin's declared settings and
 * the host's own (`host_keys`, NULL-terminated, may be NULL): 0, or
 * FERRY_ECONFIG with the first unknown setting in *unknown. */
int ferry_plugin_check_settings(const ferry_plugin *p, const ferry_settings *s,
                                const char *const *host_keys, const char **unknown);
/* "a, b, c": the plugin's declared settings, for messages; caller frees. */
char *ferry_plugin_settings_list(const ferry_plugin *p);
/* "compute", "runtime", "store" ("unknown" otherwise). */
const char *ferry_plugin_kind_name(ferry_plugin_kind kind);

/* Every plugin found in a directory. Files that are refused are logged and
 * skipped; the others stay usable. */
typedef struct ferry_plugin_registry {
    ferry_plugin **plugins;
    size_t n;
} ferry_plugin_registry;

int ferry_plugin_registry_scan(ferry_plugin_registry *reg, const char *dir);
const ferry_plugin *ferry_plugin_registry_get(const ferry_plugin_registry *reg,
                                              ferry_plugin_kind kind, const char *name);
void ferry_plugin_registry_free(ferry_plugin_registry *reg);
/* Store plugins and URL schemes (store.h, ABI 1.3): the loader refuses a
 * store that claims more schemes than this, or a longer one. */
#define FERRY_PLUGIN_SCHEMES_MAX 16
#define FERRY_PLUGIN_SCHEME_MAX 32
/* The scheme `p` (a store) claims for `url` ("s3" for "S3://b/k": its own
 * spelling, matched without regard to case), or NULL when it claims none. */
const char *ferry_plugin_store_scheme(const ferry_plugin *p, const char *url);
/* The loaded store that claims `url`'s scheme: the one named `prefer` (may
 * be NULL) when it does, else the first in the registry; NULL when none. */
const ferry_plugin *ferry_plugin_registry_store_for_url(const ferry_plugin_registry *reg,
                                                        const char *url, const char *prefer);
/* The default plugin directory: <dir of the executable>/../lib/ferry/plugins
 * (FERRY_PLUGIN_DIR in the environment overrides it). buf >= PATH_MAX. */
int ferry_plugin_default_dir(char *buf, size_t cap);

/* One initialised instance of a plugin (e.g. one per environment). */
typedef struct ferry_plugin_instance ferry_plugin_instance;

/* `settings` and `secrets` may be NULL; they are copied. Call on the thread
 * that runs `loop`: op_complete and queue_work must be called there too.
 * On failure (err filled) the half-made instance is released like a freed
 * one, so the same note about running the loop applies. */
int ferry_plugin_instance_new(const ferry_plugin *p, uv_loop_t *loop, const char *label,
                              const ferry_settings *settings, const ferry_settings *secrets,
                              ferry_plugin_instance **out, ferry_error_detail *err);
/* Works like uv_close(): queue_work requests not started yet are canceled
 * (the plugin's `after` sees FERRY_ECANCELED); once no work is in flight the
 * plugin's fini runs, ops it left pending complete with FERRY_ECANCELED, and
 * the instance's handles close. The memory goes, and those `done` callbacks
 * run, on later turns of the loop: a caller that is shutting down runs the
 * loop (uv_run(loop, UV_RUN_DEFAULT)) afterwards. fini must complete or drop
 * every op it holds and must not call the host after it returns. */
void ferry_plugin_instance_free(ferry_plugin_instance *inst);
/* Who hears of instances that ended on their own (compute plugins). */
typedef void (*ferry_instance_gone_fn)(void *arg, const char *instance_id, const char *reason);
void ferry_plugin_instance_on_gone(ferry_plugin_instance *inst, ferry_instance_gone_fn fn,
                                   void *arg);
void *ferry_plugin_instance_state(const ferry_plugin_instance *inst);
const ferry_plugin *ferry_plugin_instance_plugin(const ferry_plugin_instance *inst);

/* An asynchronous operation: `done` runs exactly once on the loop thread,
 * with the plugin's status and result (copy what you need). If the op call
 * itself returns a negative code synchronously, the caller must call
 * ferry_op_abandon() instead and `done` never runs. */
typedef void (*ferry_op_done_fn)(void *arg, int status, const ferry_op_result *result);
/* `done` always runs on a later loop turn than the op_complete call, never
 * inside the plugin's call. A result with status < 0 always carries an error
 * detail. NULL when the instance is already being freed (fini ran). */
ferry_op *ferry_op_new(ferry_plugin_instance *inst, ferry_op_done_fn done, void *arg);
void ferry_op_abandon(ferry_op *op);

#endif
