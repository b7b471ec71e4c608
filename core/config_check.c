/* ferryd's configuration: environments and stores checked against the
 * plugins they name, and the settings those plugins take (config.h). */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "util.h"

static int config__check_block(const ferry_config *c, const ferry_plugin *p,
                               const ferry_settings *settings, const ferry_settings *lines,
                               const char *const *host_keys, const char *what, char *err,
                               size_t err_cap)
{
    const char *unknown = NULL;
    if (ferry_plugin_check_settings(p, settings, host_keys, &unknown) == 0)
        return 0;
    const char *line = ferry_settings_get(lines, unknown);
    char *known = ferry_plugin_settings_list(p);
    snprintf(err, err_cap, "%s:%s: %s: setting '%s' is not known to %s plugin '%s' (it reads: %s)",
             c->path ? c->path : "ferryd", line ? line : "?", what, unknown,
             ferry_plugin_kind_name(p->desc.kind), p->desc.name, *known ? known : "nothing");
    free(known);
    return FERRY_ECONFIG;
}

/* A static environment has no plugin: only ferryd's own settings belong. */
static int config__check_static(const ferry_config *c, const ferry_env_config *e,
                                const char *const *host_keys, char *err, size_t err_cap)
{
    size_t it = 0;
    const char *k, *v;
    while (ferry_settings_next(e->settings, &it, &k, &v)) {
        int known = 0;
        for (const char *const *h = host_keys; *h && !known; h++)
            known = strcmp(*h, k) == 0;
        if (!known) {
            const char *line = ferry_settings_get(e->lines, k);
            snprintf(err, err_cap,
                     "%s:%s: environment '%s': setting '%s' means nothing to a static "
                     "environment (it has no compute plugin) nor to its runtime plugin '%s'",
                     c->path ? c->path : "ferryd", line ? line : "?", e->name, k, e->runtime);
            return FERRY_ECONFIG;
        }
    }
    return 0;
}

/* ferryd's own settings of a block and what it fills in for the plugin,
 * then the settings the runtime plugin declares (the agents' business). */
static const char **config__env_keys(const ferry_plugin *runtime)
{
    static const char *const host_keys[] = {"name",
                                            "compute",
                                            "runtime",
                                            "max_workers",
                                            "min_workers",
                                            "idle_timeout",
                                            "work_dir",
                                            "gpus",
                                            "join_token_sha256",
                                            "runtime_settings",
                                            "retire_workers_on_stop",
                                            "allowed_mounts"};
    size_t n_host = sizeof(host_keys) / sizeof(host_keys[0]), n_rt = 0;
    for (const char *const *k = runtime ? runtime->desc.settings : NULL; k && *k; k++)
        n_rt++;
    const char **keys = ferry_xcalloc(n_host + n_rt + 1, sizeof(*keys));
    memcpy(keys, host_keys, sizeof(host_keys));
    for (size_t i = 0; i < n_rt; i++)
        keys[n_host + i] = runtime->desc.settings[i];
    return keys;
}

/* The runtime plugin's settings of the block as "KEY=VALUE" lines, for the
 * agents (--runtime-setting): the compute plugin passes them on. */
static int config__runtime_settings(const ferry_config *c, ferry_env_config *e,
                                    const ferry_plugin *runtime, char *err, size_t err_cap)
{
    char *lines = ferry_strdup("");
    for (const char *const *k = runtime ? runtime->desc.settings : NULL; k && *k; k++) {
        const char *v = ferry_settings_get(e->settings, *k);
        if (v == NULL)
            continue;
        if (strchr(v, '\n') != NULL) {
            const char *line = ferry_settings_get(e->lines, *k);
            snprintf(err, err_cap, "%s:%s: environment '%s': setting '%s' may not hold a newline",
                     c->path ? c->path : "ferryd", line ? line : "?", e->name, *k);
            free(lines);
            return FERRY_ECONFIG;
        }
        char *next = ferry_asprintf("%s%s=%s\n", lines, *k, v);
        free(lines);
        lines = next;
    }
    ferry_settings_set(e->settings, "runtime_settings", lines);
    free(lines);
    return 0;
}

int ferry_config_check_env(const ferry_config *c, ferry_env_config *e, const ferry_plugin *compute,
                           const ferry_plugin *runtime, char *err, size_t err_cap)
{
    const char **keys = config__env_keys(runtime);
    int rc;
    if (compute == NULL) {
        rc = config__check_static(c, e, keys, err, err_cap);
    } else {
        char what[160];
        snprintf(what, sizeof(what), "environment '%s'", e->name);
        rc = config__check_block(c, compute, e->settings, e->lines, keys, what, err, err_cap);
    }
    free(keys);
    return rc < 0 ? rc : config__runtime_settings(c, e, runtime, err, err_cap);
}

int ferry_config_check_store(const ferry_config *c, const ferry_plugin *store, char *err,
                             size_t err_cap)
{
    static const char *const host_keys[] = {"plugin", NULL};
    return config__check_block(c, store, c->store_settings, c->store_lines, host_keys, "store", err,
                               err_cap);
}
