/* ferry plugin SDK: the descriptor every plugin exports, and the host API.
 *
 * A plugin is a shared object that exports exactly one symbol,
 * FERRY_PLUGIN_SYMBOL, a function returning a pointer to a const
 * ferry_plugin_descriptor. The host checks struct_size and abi_major, then
 * copies the kind's ops table into a zeroed host copy: a NULL op means
 * "not supported". Structures only ever grow at the end (abi_minor counts
 * the appended fields), like sqlite3_vfs.
 */
#ifndef FERRY_PLUGIN_H
#define FERRY_PLUGIN_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "ferry/error.h"

#ifdef __cplusplus
extern "C" {
#endif

#define FERRY_ABI_MAJOR 1
/* 1.2: compute ops `flags` and launch requests' `user_data` (compute.h).
 * 1.3: store ops `url_schemes` and `url_input` (store.h).
 * 1.4: runtime ops `inputs_path` and `binds_input_files`, run specs'
 *      `mounts` and `input_files` (runtime.h). */
#define FERRY_ABI_MINOR 4

#define FERRY_PLUGIN_SYMBOL "ferry_plugin_v1"

/* Where `field` of `type` ends: the smallest struct_size that holds it. */
#define FERRY_FIELD_END(type, field) (offsetof(type, field) + sizeof(((type *)0)->field))
/* Whether a struct that starts with struct_size, filled in by a plugin or a
 * host of another minor version, is long enough to have `field`. Read an
 * appended field only when this holds. */
#define FERRY_HAS_FIELD(ptr, type, field) ((ptr)->struct_size >= FERRY_FIELD_END(type, field))

typedef enum ferry_plugin_kind {
    FERRY_PLUGIN_COMPUTE = 1,
    FERRY_PLUGIN_RUNTIME = 2,
    FERRY_PLUGIN_STORE = 3,
} ferry_plugin_kind;

typedef enum ferry_log_level {
    FERRY_LOG_ERROR = 0,
    FERRY_LOG_WARN = 1,
    FERRY_LOG_INFO = 2,
    FERRY_LOG_DEBUG = 3,
} ferry_log_level;

/* Opaque, host-owned. */
typedef struct ferry_plugin_ctx ferry_plugin_ctx; /* one per loaded plugin instance */
typedef struct ferry_op ferry_op;                 /* one per asynchronous operation */

/* What an asynchronous operation hands back. Fields not relevant to the
 * operation stay zero. The host copies what it needs before op_complete
 * returns, so the plugin may free the result afterwards. */
typedef struct ferry_op_result {
    size_t struct_size;
    const char *instance_id;         /* compute launch */
    int64_t size;                    /* store head/put: object size in bytes */
    const char *text;                /* operation-specific text (e.g. a JSON list) */
    const ferry_error_detail *error; /* when status < 0; may be NULL */
} ferry_op_result;

typedef void (*ferry_work_fn)(void *arg);
typedef void (*ferry_after_work_fn)(void *arg, int status);

/* Functions the host offers a plugin, passed to init. */
typedef struct ferry_host_api {
    size_t struct_size;
    /* Log through the host's logger; the host prefixes the plugin name. */
    void (*log)(ferry_plugin_ctx *ctx, ferry_log_level level, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
    /* The host's event loop (a uv_loop_t *). Only touch it on the loop thread. */
    void *(*loop)(ferry_plugin_ctx *ctx);
    /* A setting of this plugin instance's configuration (environment or store
     * block) as a string, or NULL when it is not set. Lists are given as
     * comma-separated text. Valid for the plugin's lifetime. */
    const char *(*config_get)(ferry_plugin_ctx *ctx, const char *key);
    /* A secret by name (credentials); NULL when unknown. Never log it. */
    const char *(*secret_get)(ferry_plugin_ctx *ctx, const char *name);
    /* Complete an asynchronous operation, exactly once, on the loop thread. */
    void (*op_complete)(ferry_op *op, int status, const ferry_op_result *result);
    /* Run `work` on the host-owned worker pool of this plugin (blocking calls go
     * here, never on the loop thread); `after` runs on the loop thread. */
    int (*queue_work)(ferry_plugin_ctx *ctx, ferry_work_fn work, ferry_after_work_fn after,
                      void *arg);
    /* Compute plugins: an instance ended without being asked to (the agent
     * process died, a spot instance was reclaimed). `reason` is for people.
     * On the loop thread. Appended in ABI 1.0; check struct_size before use. */
    void (*instance_gone)(ferry_plugin_ctx *ctx, const char *instance_id, const char *reason);
} ferry_host_api;

typedef struct ferry_plugin_descriptor {
    size_t struct_size; /* sizeof(ferry_plugin_descriptor) as the plugin was built */
    uint16_t abi_major; /* FERRY_ABI_MAJOR */
    uint16_t abi_minor; /* FERRY_ABI_MINOR */
    ferry_plugin_kind kind;
    const char *name;    /* "local-process" */
    const char *version; /* the plugin's own version */
    /* Create one instance. Returns 0 and sets *state, or a negative code with
     * `err` filled. Called on the loop thread. */
    int (*init)(ferry_plugin_ctx *ctx, const ferry_host_api *host, void **state,
                ferry_error_detail *err);
    /* Destroy the instance; on the loop thread, once no queue_work is in
     * flight. Complete (or drop: the host then cancels) every op still held;
     * after fini returns the plugin must not call the host again. Handles it
     * closes here may finish closing on later loop turns. */
    void (*fini)(void *state);
    /* const ferry_compute_ops / ferry_runtime_ops / ferry_store_ops */
    const void *ops;
    /* NULL-terminated names of the settings this plugin reads from its
     * configuration block. The host refuses a block that holds any other
     * (a typo must not pass silently). NULL: no check. */
    const char *const *settings;
} ferry_plugin_descriptor;

#if defined(__GNUC__)
#define FERRY_PLUGIN_EXPORT __attribute__((visibility("default")))
#else
#define FERRY_PLUGIN_EXPORT
#endif

typedef const ferry_plugin_descriptor *(*ferry_plugin_entry_fn)(void);

/* In exactly one file of a plugin:  FERRY_PLUGIN_DEFINE(my_descriptor) */
#define FERRY_PLUGIN_DEFINE(descriptor)                                                            \
    FERRY_PLUGIN_EXPORT const ferry_plugin_descriptor *ferry_plugin_v1(void);                      \
    FERRY_PLUGIN_EXPORT const ferry_plugin_descriptor *ferry_plugin_v1(void)                       \
    {                                                                                              \
        return &(descriptor);                                                                      \
    }

#ifdef __cplusplus
}
#endif
#endif
