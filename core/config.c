/* ferryd's configuration: embedded defaults, flags, and a libconfig file.
 * Unknown settings are errors, so that a typo never silently falls back to a
 * default. */
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <libconfig.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

static char *config__default_data_dir(void)
{
    const char *d = getenv("FERRY_DATA_DIR");
    if (d && *d)
        return ferry_strdup(d);
    const char *xdg = getenv("XDG_DATA_HOME");
    if (xdg && *xdg)
        return ferry_asprintf("%s/ferry", xdg);
    const char *home = getenv("HOME");
    return ferry_asprintf("%s/.local/share/ferry", home && *home ? home : "/tmp");
}

static void config__env_defaults(ferry_env_config *e, const char *name)
{
    memset(e, 0, sizeof(*e));
    e->name = ferry_strdup(name);
    e->compute = ferry_strdup("local");
    e->runtime = ferry_strdup("local-process");
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    e->max_workers = cores > 0 ? (int)cores : 1;
    e->idle_timeout_s = 300;
    e->settings = ferry_settings_new();
    e->lines = ferry_settings_new();
}

static void config__user_free(ferry_user *u)
{
    free(u->name);
    for (size_t i = 0; i < u->n_quotas; i++)
        free(u->quota_envs[i]);
    free(u->quota_envs);
    free(u->quota_values);
}

static void config__strings_free(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static void config__env_free(ferry_env_config *e)
{
    free(e->name);
    free(e->compute);
    free(e->runtime);
    ferry_settings_free(e->settings);
    ferry_settings_free(e->lines);
    config__strings_free(e->allowed_mounts, e->n_allowed_mounts);
}

/* Secrets are wiped before their memory goes back. */
static void config__env_groups_free(ferry_env_group *g, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        for (size_t k = 0; k < g[i].n_vars; k++) {
            ferry_env_var *v = &g[i].vars[k];
            if (v->secret && v->value)
                memset(v->value, 0, strlen(v->value));
            free(v->name);
            free(v->value);
        }
        free(g[i].vars);
        free(g[i].name);
    }
    free(g);
}

void ferry_config_init(ferry_config *c)
{
    memset(c, 0, sizeof(*c));
    c->data_dir = config__default_data_dir();
    c->listen_host = ferry_strdup("127.0.0.1");
    c->listen_port = FERRY_DEFAULT_PORT;
    c->default_environment = ferry_strdup("local");
    c->worker_lost_timeout_s = 60;
    c->data_reserve_mb = 64;
    c->instance_sweep_interval_s = 180;
    c->presigned_url_ttl_s = 3600;
    c->max_snapshot_mb = 1024;
    c->git_timeout = 60;
    c->max_restarts = 5;
    c->store_plugin = ferry_strdup("local-storage");
    c->store_settings = ferry_settings_new();
    c->store_lines = ferry_settings_new();
    c->n_envs = 1;
    c->envs = ferry_xcalloc(1, sizeof(ferry_env_config));
    config__env_defaults(&c->envs[0], "local");
}

static void config__registries_free(ferry_registry *r, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(r[i].server);
        free(r[i].username);
        if (r[i].password)
            memset(r[i].password, 0, strlen(r[i].password));
        free(r[i].password);
    }
    free(r);
}

static void config__projects_free(ferry_project *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(p[i].name);
        free(p[i].repository);
        free(p[i].default_ref);
        free(p[i].ssh_key);
        free(p[i].ssh_known_hosts);
        free(p[i].token_file);
        free(p[i].username);
        free(p[i].password_file);
        free(p[i].ca_file);
    }
    free(p);
}

void ferry_config_free(ferry_config *c)
{
    free(c->path);
    free(c->data_dir);
    free(c->listen_host);
    free(c->plugin_dir);
    free(c->default_environment);
    free(c->store_plugin);
    ferry_settings_free(c->store_settings);
    ferry_settings_free(c->store_lines);
    for (size_t i = 0; i < c->n_envs; i++)
        config__env_free(&c->envs[i]);
    free(c->envs);
    for (size_t i = 0; i < c->n_users; i++)
        config__user_free(&c->users[i]);
    free(c->users);
    free(c->tls_cert);
    free(c->tls_key);
    free(c->tls_ca);
    free(c->public_url);
    config__registries_free(c->registries, c->n_registries);
    config__projects_free(c->projects, c->n_projects);
    for (size_t i = 0; i < c->n_aliases; i++) {
        free(c->alias_slugs[i]);
        free(c->alias_envs[i]);
    }
    free(c->alias_slugs);
    free(c->alias_envs);
    free(c->alias_lines);
    config__env_groups_free(c->env_groups, c->n_env_groups);
    memset(c, 0, sizeof(*c));
}

int ferry_host_is_loopback(const char *host)
{
    if (strcmp(host, "localhost") == 0 || strcmp(host, "::1") == 0)
        return 1;
    struct in_addr a;
    if (inet_pton(AF_INET, host, &a) == 1)
        return (ntohl(a.s_addr) >> 24) == 127;
    return 0;
}

int ferry_config_set_listen(ferry_config *c, const char *text, char *err, size_t err_cap)
{
    const char *colon = strrchr(text, ':');
    const char *port_text = colon ? colon + 1 : text;
    char *end = NULL;
    long port = strtol(port_text, &end, 10);
    if (*port_text == '\0' || *end != '\0' || port < 0 || port > 65535) {
        snprintf(err, err_cap,
                 "expected HOST:PORT with a port from 0 (any free port) to 65535, got '%s'", text);
        return FERRY_EINVAL;
    }
    if (colon && colon != text) {
        size_t n = (size_t)(colon - text);
        char *host = ferry_xmalloc(n + 1);
        memcpy(host, text, n);
        host[n] = '\0';
        if (host[0] == '[' && n >= 2 && host[n - 1] == ']') {
            memmove(host, host + 1, n - 2);
            host[n - 2] = '\0';
        }
        free(c->listen_host);
        c->listen_host = host;
    }
    c->listen_port = (int)port;
    return 0;
}

static char *config__setting_text(config_setting_t *s);

/* A group as "name=value;name=value" (its members' text), so that a list of
 * groups, e.g. accelerators = [ { type = "nvidia-l4"; count = 1; } ], reaches
 * a plugin as "type=nvidia-l4;count=1". */
static char *config__group_text(config_setting_t *g)
{
    char *out = ferry_strdup("");
    for (int i = 0; i < config_setting_length(g); i++) {
        config_setting_t *m = config_setting_get_elem(g, (unsigned)i);
        char *item = config__setting_text(m);
        char *joined = ferry_asprintf("%s%s%s=%s", out, i ? ";" : "", config_setting_name(m),
                                      item ? item : "");
        free(out);
        free(item);
        out = joined;
    }
    return out;
}

/* A setting's value as text for a plugin: scalars as themselves, lists and
 * arrays as comma-separated text, groups as above. */
static char *config__setting_text(config_setting_t *s)
{
    switch (config_setting_type(s)) {
    case CONFIG_TYPE_GROUP:
        return config__group_text(s);
    case CONFIG_TYPE_STRING:
        return ferry_strdup(config_setting_get_string(s));
    case CONFIG_TYPE_INT:
        return ferry_asprintf("%d", config_setting_get_int(s));
    case CONFIG_TYPE_INT64:
        return ferry_asprintf("%lld", (long long)config_setting_get_int64(s));
    case CONFIG_TYPE_FLOAT:
        return ferry_asprintf("%g", config_setting_get_float(s));
    case CONFIG_TYPE_BOOL:
        return ferry_strdup(config_setting_get_bool(s) ? "true" : "false");
    case CONFIG_TYPE_ARRAY:
    case CONFIG_TYPE_LIST: {
        char *out = ferry_strdup("");
        for (int i = 0; i < config_setting_length(s); i++) {
            char *item = config__setting_text(config_setting_get_elem(s, (unsigned)i));
            char *joined = ferry_asprintf("%s%s%s", out, i ? "," : "", item ? item : "");
            free(out);
            free(item);
            out = joined;
        }
        return out;
    }
    default:
        return NULL;
    }
}

typedef struct config__ctx {
    const char *file;
    char *err;
    size_t err_cap;
} config__ctx;

static int config__fail(config__ctx *x, config_setting_t *s, const char *name, const char *what)
{
    snprintf(x->err, x->err_cap, "%s:%d: setting '%s': %s", x->file,
             s ? config_setting_source_line(s) : 0, name, what);
    return FERRY_ECONFIG;
}

static int config__string(config__ctx *x, config_setting_t *s, const char *name, char **out)
{
    if (config_setting_type(s) != CONFIG_TYPE_STRING)
        return config__fail(x, s, name, "expected a string");
    free(*out);
    *out = ferry_strdup(config_setting_get_string(s));
    return 0;
}

static int config__int(config__ctx *x, config_setting_t *s, const char *name, int min, int *out)
{
    int t = config_setting_type(s);
    if (t != CONFIG_TYPE_INT && t != CONFIG_TYPE_INT64)
        return config__fail(x, s, name, "expected an integer");
    long long v = config_setting_get_int64(s);
    if (t == CONFIG_TYPE_INT)
        v = config_setting_get_int(s);
    if (v < min || v > 1000000) {
        char what[96];
        snprintf(what, sizeof(what), "%lld is out of range (%d to 1000000)", v, min);
        return config__fail(x, s, name, what);
    }
    *out = (int)v;
    return 0;
}

static int config__hex64(const char *s, char *out);

char *ferry_config_path_normal(const char *path)
{
    if (path == NULL || path[0] != '/')
        return NULL;
    size_t len = strlen(path);
    char *out = ferry_xmalloc(len + 2);
    size_t n = 0;
    for (const char *p = path; *p;) {
        while (*p == '/')
            p++;
        size_t seg = strcspn(p, "/");
        if (seg == 0)
            break;
        if (seg == 1 && p[0] == '.') {
            /* nothing */
        } else if (seg == 2 && p[0] == '.' && p[1] == '.') {
            while (n > 0 && out[n - 1] != '/')
                n--;
            if (n > 0)
                n--; /* the '/' before the dropped part; "/.." is "/" */
        } else {
            out[n++] = '/';
            memcpy(out + n, p, seg);
            n += seg;
        }
        p += seg;
    }
    if (n == 0)
        out[n++] = '/';
    out[n] = '\0';
    return out;
}

/* allowed_mounts = [ "/data", ... ]: absolute host paths. */
static int config__allowed_mounts(config__ctx *x, ferry_env_config *e, config_setting_t *s)
{
    const char *n = config_setting_name(s);
    int t = config_setting_type(s);
    if (t != CONFIG_TYPE_ARRAY && t != CONFIG_TYPE_LIST)
        return config__fail(x, s, n, "expected a list of host paths [ \"/data\", ... ]");
    size_t count = (size_t)config_setting_length(s);
    char **paths = ferry_xcalloc(count ? count : 1, sizeof(char *));
    for (size_t i = 0; i < count; i++) {
        config_setting_t *p = config_setting_get_elem(s, (unsigned)i);
        const char *v =
            config_setting_type(p) == CONFIG_TYPE_STRING ? config_setting_get_string(p) : NULL;
        paths[i] = ferry_config_path_normal(v);
        if (paths[i] == NULL) {
            config__strings_free(paths, i);
            return config__fail(x, p, n,
                                "each entry must be an absolute host path (\"/data\"): a "
                                "step's mount is allowed when its source is that path or "
                                "under it");
        }
    }
    config__strings_free(e->allowed_mounts, e->n_allowed_mounts);
    e->allowed_mounts = paths;
    e->n_allowed_mounts = count;
    return 0;
}

/* Settings every environment understands; the rest goes to its plugin. */
static int config__env_field(config__ctx *x, ferry_env_config *e, config_setting_t *s)
{
    const char *n = config_setting_name(s);
    if (strcmp(n, "name") == 0)
        return config__string(x, s, n, &e->name);
    if (strcmp(n, "compute") == 0)
        return config__string(x, s, n, &e->compute);
    if (strcmp(n, "runtime") == 0)
        return config__string(x, s, n, &e->runtime);
    if (strcmp(n, "max_workers") == 0)
        return config__int(x, s, n, 1, &e->max_workers);
    if (strcmp(n, "min_workers") == 0)
        return config__int(x, s, n, 0, &e->min_workers);
    if (strcmp(n, "idle_timeout") == 0)
        return config__int(x, s, n, 0, &e->idle_timeout_s);
    if (strcmp(n, "gpus") == 0)
        return config__int(x, s, n, 0, &e->gpus);
    if (strcmp(n, "allowed_mounts") == 0)
        return config__allowed_mounts(x, e, s);
    if (strcmp(n, "join_token_sha256") == 0) {
        if (config_setting_type(s) != CONFIG_TYPE_STRING ||
            config__hex64(config_setting_get_string(s), e->join_token_sha256) < 0)
            return config__fail(x, s, n,
                                "expected the join token's SHA-256 as 64 hex digits "
                                "(printf %s TOKEN | sha256sum)");
        return 0;
    }
    return 1; /* not ours */
}

static void config__note_line(ferry_settings *lines, config_setting_t *s)
{
    char n[16];
    snprintf(n, sizeof(n), "%d", config_setting_source_line(s));
    ferry_settings_set(lines, config_setting_name(s), n);
}

static int config__env(config__ctx *x, config_setting_t *group, ferry_env_config *e)
{
    if (config_setting_type(group) != CONFIG_TYPE_GROUP)
        return config__fail(x, group, "environments", "each entry must be a group { ... }");
    config__env_defaults(e, "");
    for (int i = 0; i < config_setting_length(group); i++) {
        config_setting_t *s = config_setting_get_elem(group, (unsigned)i);
        int rc = config__env_field(x, e, s);
        if (rc < 0)
            return rc;
        char *text = config__setting_text(s);
        if (text == NULL)
            return config__fail(x, s, config_setting_name(s), "unsupported value type");
        ferry_settings_set(e->settings, config_setting_name(s), text);
        config__note_line(e->lines, s);
        free(text);
    }
    if (e->name[0] == '\0')
        return config__fail(x, group, "environments", "an environment has no 'name'");
    if (e->min_workers > e->max_workers)
        return config__fail(x, group, "min_workers", "is larger than max_workers");
    if (ferry_env_is_static(e) && e->join_token_sha256[0] == '\0')
        return config__fail(x, group, "join_token_sha256",
                            "a static environment needs one: agents join it with the token");
    return 0;
}

static int config__envs(config__ctx *x, ferry_config *c, config_setting_t *list)
{
    int t = config_setting_type(list);
    if (t != CONFIG_TYPE_LIST && t != CONFIG_TYPE_ARRAY)
        return config__fail(x, list, "environments", "expected a list ( {...}, ... )");
    int n = config_setting_length(list);
    if (n == 0)
        return config__fail(x, list, "environments", "needs at least one environment");
    ferry_env_config *envs = ferry_xcalloc((size_t)n, sizeof(*envs));
    int rc = 0, done = 0;
    for (; done < n && rc == 0; done++)
        rc = config__env(x, config_setting_get_elem(list, (unsigned)done), &envs[done]);
    for (int i = 0; rc == 0 && i < n; i++)
        for (int j = 0; j < i; j++)
            if (strcmp(envs[i].name, envs[j].name) == 0)
                rc = config__fail(x, config_setting_get_elem(list, (unsigned)i), "name",
                                  "environment name used twice");
    if (rc != 0) {
        for (int i = 0; i < done; i++)
            config__env_free(&envs[i]);
        free(envs);
        return rc;
    }
    for (size_t i = 0; i < c->n_envs; i++)
        config__env_free(&c->envs[i]);
    free(c->envs);
    c->envs = envs;
    c->n_envs = (size_t)n;
    return 0;
}

static int config__store(config__ctx *x, ferry_config *c, config_setting_t *group)
{
    if (config_setting_type(group) != CONFIG_TYPE_GROUP)
        return config__fail(x, group, "store", "expected a group { plugin = \"...\"; ... }");
    for (int i = 0; i < config_setting_length(group); i++) {
        config_setting_t *s = config_setting_get_elem(group, (unsigned)i);
        const char *n = config_setting_name(s);
        if (strcmp(n, "plugin") == 0) {
            int rc = config__string(x, s, n, &c->store_plugin);
            if (rc < 0)
                return rc;
        }
        char *text = config__setting_text(s);
        if (text == NULL)
            return config__fail(x, s, n, "unsupported value type");
        ferry_settings_set(c->store_settings, n, text);
        config__note_line(c->store_lines, s);
        free(text);
    }
    return 0;
}

static int config__hex64(const char *s, char *out)
{
    if (strlen(s) != 64)
        return FERRY_EINVAL;
    for (int i = 0; i < 64; i++) {
        char ch = (char)tolower((unsigned char)s[i]);
        if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f')))
            return FERRY_EINVAL;
        out[i] = ch;
    }
    out[64] = '\0';
    return 0;
}

static int config__user_quotas(config__ctx *x, ferry_user *u, config_setting_t *g)
{
    if (config_setting_type(g) != CONFIG_TYPE_GROUP)
        return config__fail(x, g, "quotas", "expected a group { ENVIRONMENT = N; ... }");
    for (int i = 0; i < config_setting_length(g); i++) {
        config_setting_t *q = config_setting_get_elem(g, (unsigned)i);
        int v;
        int rc = config__int(x, q, config_setting_name(q), 1, &v);
        if (rc < 0)
            return rc;
        u->quota_envs = ferry_xrealloc(u->quota_envs, (u->n_quotas + 1) * sizeof(char *));
        u->quota_values = ferry_xrealloc(u->quota_values, (u->n_quotas + 1) * sizeof(int));
        u->quota_envs[u->n_quotas] = ferry_strdup(config_setting_name(q));
        u->quota_values[u->n_quotas++] = v;
    }
    return 0;
}

static int config__user_field(config__ctx *x, ferry_user *u, config_setting_t *s)
{
    const char *n = config_setting_name(s);
    if (strcmp(n, "name") == 0)
        return config__string(x, s, n, &u->name);
    if (strcmp(n, "token_sha256") == 0) {
        if (config_setting_type(s) != CONFIG_TYPE_STRING ||
            config__hex64(config_setting_get_string(s), u->token_sha256) < 0)
            return config__fail(x, s, n,
                                "expected the token's SHA-256 as 64 hex digits "
                                "(printf %s TOKEN | sha256sum)");
        return 0;
    }
    if (strcmp(n, "admin") == 0) {
        if (config_setting_type(s) != CONFIG_TYPE_BOOL)
            return config__fail(x, s, n, "expected true or false");
        u->admin = config_setting_get_bool(s);
        return 0;
    }
    if (strcmp(n, "quota") == 0)
        return config__int(x, s, n, 1, &u->quota);
    if (strcmp(n, "quotas") == 0)
        return config__user_quotas(x, u, s);
    return config__fail(x, s, n,
                        "unknown user setting (known: name, token_sha256, admin, quota, quotas)");
}

static int config__user(config__ctx *x, config_setting_t *g, ferry_user *u)
{
    u->line = config_setting_source_line(g);
    if (config_setting_type(g) != CONFIG_TYPE_GROUP)
        return config__fail(x, g, "users", "each user must be a group { name = ...; ... }");
    for (int i = 0; i < config_setting_length(g); i++) {
        int rc = config__user_field(x, u, config_setting_get_elem(g, (unsigned)i));
        if (rc < 0)
            return rc;
    }
    if (u->name == NULL || u->name[0] == '\0')
        return config__fail(x, g, "users", "a user has no 'name'");
    if (u->token_sha256[0] == '\0')
        return config__fail(x, g, "token_sha256", "is missing");
    return 0;
}

static int config__users(config__ctx *x, ferry_config *c, config_setting_t *list)
{
    int t = config_setting_type(list);
    if (t != CONFIG_TYPE_LIST && t != CONFIG_TYPE_ARRAY)
        return config__fail(x, list, "users", "expected a list ( {...}, ... )");
    int n = config_setting_length(list);
    ferry_user *users = ferry_xcalloc((size_t)n, sizeof(*users));
    int rc = 0;
    for (int i = 0; rc == 0 && i < n; i++) {
        config_setting_t *g = config_setting_get_elem(list, (unsigned)i);
        rc = config__user(x, g, &users[i]);
        for (int j = 0; rc == 0 && j < i; j++) {
            if (strcmp(users[i].name, users[j].name) == 0)
                rc = config__fail(x, g, "name", "user name used twice");
            else if (strcmp(users[i].token_sha256, users[j].token_sha256) == 0)
                rc = config__fail(x, g, "token_sha256", "two users have the same token");
        }
    }
    if (rc < 0) {
        for (int i = 0; i < n; i++)
            config__user_free(&users[i]);
        free(users);
        return rc;
    }
    for (size_t i = 0; i < c->n_users; i++)
        config__user_free(&c->users[i]);
    free(c->users);
    c->users = users;
    c->n_users = (size_t)n;
    return 0;
}

static int config__registry(config__ctx *x, config_setting_t *g, ferry_registry *r)
{
    if (config_setting_type(g) != CONFIG_TYPE_GROUP)
        return config__fail(x, g, "registries",
                            "each registry must be a group { server = \"HOST[:PORT]\"; username "
                            "= \"...\"; password = \"...\"; }");
    for (int i = 0; i < config_setting_length(g); i++) {
        config_setting_t *f = config_setting_get_elem(g, (unsigned)i);
        const char *n = config_setting_name(f);
        char **field = strcmp(n, "server") == 0     ? &r->server
                       : strcmp(n, "username") == 0 ? &r->username
                       : strcmp(n, "password") == 0 ? &r->password
                                                    : NULL;
        if (field == NULL)
            return config__fail(x, f, n,
                                "unknown setting of a registry (known: server, "
                                "username, password)");
        int rc = config__string(x, f, n, field);
        if (rc < 0)
            return rc;
    }
    if (r->server == NULL || r->server[0] == '\0' || strchr(r->server, '/') != NULL)
        return config__fail(x, g, "server",
                            "a registry needs server = \"HOST[:PORT]\" (no scheme, no path)");
    if (r->username == NULL || r->password == NULL)
        return config__fail(x, g, r->username ? "password" : "username", "is missing");
    return 0;
}

static int config__registries(config__ctx *x, ferry_config *c, config_setting_t *list)
{
    int t = config_setting_type(list);
    if (t != CONFIG_TYPE_LIST && t != CONFIG_TYPE_ARRAY)
        return config__fail(x, list, "registries", "expected a list ( {...}, ... )");
    size_t n = (size_t)config_setting_length(list);
    ferry_registry *regs = ferry_xcalloc(n, sizeof(*regs));
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        config_setting_t *g = config_setting_get_elem(list, (unsigned)i);
        rc = config__registry(x, g, &regs[i]);
        for (size_t j = 0; rc == 0 && j < i; j++)
            if (strcmp(regs[i].server, regs[j].server) == 0)
                rc = config__fail(x, g, "server", "registry named twice");
    }
    if (rc < 0) {
        config__registries_free(regs, n);
        return rc;
    }
    config__registries_free(c->registries, c->n_registries);
    c->registries = regs;
    c->n_registries = n;
    return 0;
}

/* A project's name is a path component of its mirror (<data_dir>/git/NAME.git)
 * and of URLs: [A-Za-z0-9._-]{1,100}, not "." or "..". */
static int config__project_name_ok(const char *n)
{
    size_t len = strlen(n);
    if (len == 0 || len > 100 || strcmp(n, ".") == 0 || strcmp(n, "..") == 0)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!isalnum((unsigned char)n[i]) && n[i] != '.' && n[i] != '_' && n[i] != '-')
            return 0;
    return 1;
}

static int config__project(config__ctx *x, config_setting_t *g, ferry_project *p)
{
    if (config_setting_type(g) != CONFIG_TYPE_GROUP)
        return config__fail(x, g, "projects",
                            "each project must be a group { name = \"...\"; repository = "
                            "\"URL\"; }");
    p->line = config_setting_source_line(g);
    for (int i = 0; i < config_setting_length(g); i++) {
        config_setting_t *f = config_setting_get_elem(g, (unsigned)i);
        const char *n = config_setting_name(f);
        if (strcmp(n, "submodules") == 0) {
            if (config_setting_type(f) != CONFIG_TYPE_BOOL)
                return config__fail(x, f, n, "expected true or false");
            p->submodules = config_setting_get_bool(f);
            continue;
        }
        char **field = strcmp(n, "name") == 0              ? &p->name
                       : strcmp(n, "repository") == 0      ? &p->repository
                       : strcmp(n, "default_ref") == 0     ? &p->default_ref
                       : strcmp(n, "ssh_key") == 0         ? &p->ssh_key
                       : strcmp(n, "ssh_known_hosts") == 0 ? &p->ssh_known_hosts
                       : strcmp(n, "token_file") == 0      ? &p->token_file
                       : strcmp(n, "username") == 0        ? &p->username
                       : strcmp(n, "password_file") == 0   ? &p->password_file
                       : strcmp(n, "ca_file") == 0         ? &p->ca_file
                                                           : NULL;
        if (field == NULL)
            return config__fail(x, f, n,
                                "unknown setting of a project (known: name, repository, "
                                "default_ref, submodules, ssh_key, ssh_known_hosts, token_file, "
                                "username, password_file, ca_file)");
        int rc = config__string(x, f, n, field);
        if (rc < 0)
            return rc;
        if ((*field)[0] == '\0')
            return config__fail(x, f, n, "is empty");
    }
    if (p->name == NULL)
        return config__fail(x, g, "name", "is missing: each project needs a name");
    if (!config__project_name_ok(p->name))
        return config__fail(x, config_setting_get_member(g, "name"), "name",
                            "a project's name is 1 to 100 of A-Z a-z 0-9 . _ -");
    if (p->repository && strpbrk(p->repository, " \t\r\n") != NULL)
        return config__fail(x, config_setting_get_member(g, "repository"), "repository",
                            "expected a git URL (git://, https://, ssh://, git@host:path, "
                            "file://)");
    if (p->default_ref == NULL)
        p->default_ref = ferry_strdup("main");
    return 0;
}

static int config__projects(config__ctx *x, ferry_config *c, config_setting_t *list)
{
    int t = config_setting_type(list);
    if (t != CONFIG_TYPE_LIST && t != CONFIG_TYPE_ARRAY)
        return config__fail(x, list, "projects", "expected a list ( {...}, ... )");
    size_t n = (size_t)config_setting_length(list);
    ferry_project *ps = ferry_xcalloc(n ? n : 1, sizeof(*ps));
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        config_setting_t *g = config_setting_get_elem(list, (unsigned)i);
        rc = config__project(x, g, &ps[i]);
        for (size_t j = 0; rc == 0 && j < i; j++)
            if (strcmp(ps[i].name, ps[j].name) == 0)
                rc = config__fail(x, config_setting_get_member(g, "name"), "name",
                                  "project named twice");
    }
    if (rc < 0) {
        config__projects_free(ps, n);
        return rc;
    }
    config__projects_free(c->projects, c->n_projects);
    c->projects = ps;
    c->n_projects = n;
    return 0;
}

/* tls = { cert = "PATH"; key = "PATH"; ca = "PATH"; }: cert and key go
 * together; ca (what agents trust) is optional. */
static int config__tls(config__ctx *x, ferry_config *c, config_setting_t *g)
{
    if (config_setting_type(g) != CONFIG_TYPE_GROUP)
        return config__fail(x, g, "tls",
                            "expected a group { cert = \"PATH\"; key = \"PATH\"; ca = \"PATH\"; }");
    char *paths[3] = {NULL, NULL, NULL}; /* cert, key, ca */
    static const char *const names[3] = {"tls.cert", "tls.key", "tls.ca"};
    int rc = 0;
    for (int i = 0; rc == 0 && i < config_setting_length(g); i++) {
        config_setting_t *s = config_setting_get_elem(g, (unsigned)i);
        const char *n = config_setting_name(s);
        int k = strcmp(n, "cert") == 0  ? 0
                : strcmp(n, "key") == 0 ? 1
                : strcmp(n, "ca") == 0  ? 2
                                        : -1;
        if (k < 0) {
            char full[96];
            snprintf(full, sizeof(full), "tls.%s", n);
            rc = config__fail(x, s, full, "unknown TLS setting (known: cert, key, ca)");
        } else if ((rc = config__string(x, s, names[k], &paths[k])) == 0 && paths[k][0] == '\0') {
            rc = config__fail(x, s, names[k], "is empty: expected a file's path");
        }
    }
    if (rc == 0 && paths[0] == NULL)
        rc = config__fail(x, g, "tls.cert",
                          "is missing: TLS needs the server's certificate chain (PEM) and its key");
    if (rc == 0 && paths[1] == NULL)
        rc = config__fail(x, g, "tls.key",
                          "is missing: TLS needs the private key of tls.cert (PEM, unencrypted)");
    if (rc != 0) {
        for (int k = 0; k < 3; k++)
            free(paths[k]);
        return rc;
    }
    free(c->tls_cert);
    free(c->tls_key);
    free(c->tls_ca);
    c->tls_cert = paths[0];
    c->tls_key = paths[1];
    c->tls_ca = paths[2];
    return 0;
}

/* public_url = "https://ferry.example.com:8470": the base URL agents are
 * given and blob URLs start with. */
static int config__public_url(config__ctx *x, ferry_config *c, config_setting_t *s)
{
    const char *n = config_setting_name(s);
    if (config_setting_type(s) != CONFIG_TYPE_STRING)
        return config__fail(x, s, n, "expected a string \"https://HOST:PORT\"");
    const char *v = config_setting_get_string(s);
    const char *host = strncmp(v, "https://", 8) == 0  ? v + 8
                       : strncmp(v, "http://", 7) == 0 ? v + 7
                                                       : NULL;
    if (host == NULL || host[0] == '\0' || host[0] == '/' || strpbrk(v, "?# \t\r\n") != NULL)
        return config__fail(x, s, n,
                            "expected a base URL \"https://HOST:PORT\" (no query), as agents "
                            "on other machines reach ferryd");
    free(c->public_url);
    c->public_url = ferry_strdup(v);
    size_t len = strlen(c->public_url);
    while (len > 0 && c->public_url[len - 1] == '/') /* paths are appended with their '/' */
        c->public_url[--len] = '\0';
    return 0;
}

/* environment_aliases = { SLUG = "ENVIRONMENT"; ... }: libconfig names
 * are bare (letters, digits, '-', '_'), which Valohai's slugs are. A later
 * file's alias of the same slug replaces the earlier one. */
static int config__aliases(config__ctx *x, ferry_config *c, config_setting_t *g)
{
    if (config_setting_type(g) != CONFIG_TYPE_GROUP)
        return config__fail(x, g, "environment_aliases",
                            "expected a group { SLUG = \"ENVIRONMENT\"; ... }");
    for (int i = 0; i < config_setting_length(g); i++) {
        config_setting_t *a = config_setting_get_elem(g, (unsigned)i);
        const char *slug = config_setting_name(a);
        if (config_setting_type(a) != CONFIG_TYPE_STRING) {
            char what[320];
            snprintf(what, sizeof(what),
                     "alias '%s': expected the name of an environment (a string)", slug);
            return config__fail(x, a, "environment_aliases", what);
        }
        size_t k = 0;
        while (k < c->n_aliases && strcmp(c->alias_slugs[k], slug) != 0)
            k++;
        if (k == c->n_aliases) {
            c->alias_slugs = ferry_xrealloc(c->alias_slugs, (k + 1) * sizeof(char *));
            c->alias_envs = ferry_xrealloc(c->alias_envs, (k + 1) * sizeof(char *));
            c->alias_lines = ferry_xrealloc(c->alias_lines, (k + 1) * sizeof(int));
            c->alias_slugs[k] = ferry_strdup(slug);
            c->alias_envs[k] = NULL;
            c->n_aliases++;
        }
        free(c->alias_envs[k]);
        c->alias_envs[k] = ferry_strdup(config_setting_get_string(a));
        c->alias_lines[k] = config_setting_source_line(a);
    }
    return 0;
}

/* The members of `variables = { NAME = "value"; ... }` (or `secrets`) of
 * group `g`, appended; a name twice in the group is an error. */
static int config__group_vars(config__ctx *x, ferry_env_group *g, config_setting_t *s, int secret)
{
    const char *n = config_setting_name(s);
    if (config_setting_type(s) != CONFIG_TYPE_GROUP)
        return config__fail(x, s, n, "expected a group { NAME = \"value\"; ... }");
    for (int i = 0; i < config_setting_length(s); i++) {
        config_setting_t *v = config_setting_get_elem(s, (unsigned)i);
        const char *name = config_setting_name(v);
        int t = config_setting_type(v);
        char what[320];
        if (t == CONFIG_TYPE_GROUP || t == CONFIG_TYPE_ARRAY || t == CONFIG_TYPE_LIST) {
            snprintf(what, sizeof(what), "variable '%.200s': expected a text, number or boolean",
                     name);
            return config__fail(x, v, n, what);
        }
        for (size_t k = 0; k < g->n_vars; k++)
            if (strcmp(g->vars[k].name, name) == 0) {
                snprintf(what, sizeof(what),
                         "variable '%.200s' is given twice in group '%.60s' (variables and "
                         "secrets share one set of names)",
                         name, g->name ? g->name : "?");
                return config__fail(x, v, n, what);
            }
        g->vars = ferry_xrealloc(g->vars, (g->n_vars + 1) * sizeof(*g->vars));
        g->vars[g->n_vars++] = (ferry_env_var){ferry_strdup(name), config__setting_text(v), secret};
    }
    return 0;
}

static int config__env_group(config__ctx *x, config_setting_t *gs, ferry_env_group *g)
{
    g->line = config_setting_source_line(gs);
    if (config_setting_type(gs) != CONFIG_TYPE_GROUP)
        return config__fail(x, gs, "environment_variable_groups",
                            "each group must be { name = \"...\"; variables = { ... }; secrets "
                            "= { ... }; }");
    config_setting_t *name = config_setting_get_member(gs, "name");
    if (name == NULL || config_setting_type(name) != CONFIG_TYPE_STRING ||
        config_setting_get_string(name)[0] == '\0')
        return config__fail(x, name ? name : gs, "name",
                            "each environment variable group needs a name (a text)");
    g->name = ferry_strdup(config_setting_get_string(name));
    for (int i = 0; i < config_setting_length(gs); i++) {
        config_setting_t *f = config_setting_get_elem(gs, (unsigned)i);
        const char *n = config_setting_name(f);
        int rc = 0;
        if (strcmp(n, "variables") == 0 || strcmp(n, "secrets") == 0)
            rc = config__group_vars(x, g, f, strcmp(n, "secrets") == 0);
        else if (strcmp(n, "name") != 0)
            rc = config__fail(x, f, n,
                              "unknown setting of an environment variable group (known: name, "
                              "variables, secrets)");
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int config__env_groups(config__ctx *x, ferry_config *c, config_setting_t *list)
{
    int t = config_setting_type(list);
    if (t != CONFIG_TYPE_LIST && t != CONFIG_TYPE_ARRAY)
        return config__fail(x, list, "environment_variable_groups",
                            "expected a list ( { name = \"...\"; ... }, ... )");
    size_t n = (size_t)config_setting_length(list);
    ferry_env_group *gs = ferry_xcalloc(n ? n : 1, sizeof(*gs));
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        config_setting_t *g = config_setting_get_elem(list, (unsigned)i);
        rc = config__env_group(x, g, &gs[i]);
        for (size_t j = 0; rc == 0 && j < i; j++)
            if (strcmp(gs[i].name, gs[j].name) == 0)
                rc = config__fail(x, config_setting_get_member(g, "name"), "name",
                                  "environment variable group named twice");
    }
    if (rc < 0) {
        config__env_groups_free(gs, n);
        return rc;
    }
    config__env_groups_free(c->env_groups, c->n_env_groups);
    c->env_groups = gs;
    c->n_env_groups = n;
    return 0;
}

static int config__top(config__ctx *x, ferry_config *c, config_setting_t *s)
{
    const char *n = config_setting_name(s);
    if (strcmp(n, "data_dir") == 0)
        return config__string(x, s, n, &c->data_dir);
    if (strcmp(n, "plugin_dir") == 0)
        return config__string(x, s, n, &c->plugin_dir);
    if (strcmp(n, "default_environment") == 0)
        return config__string(x, s, n, &c->default_environment);
    if (strcmp(n, "listen") == 0) {
        if (config_setting_type(s) != CONFIG_TYPE_STRING)
            return config__fail(x, s, n, "expected a string \"HOST:PORT\"");
        char why[160];
        if (ferry_config_set_listen(c, config_setting_get_string(s), why, sizeof(why)) < 0)
            return config__fail(x, s, n, why);
        return 0;
    }
    if (strcmp(n, "environments") == 0)
        return config__envs(x, c, s);
    if (strcmp(n, "store") == 0)
        return config__store(x, c, s);
    if (strcmp(n, "users") == 0)
        return config__users(x, c, s);
    if (strcmp(n, "worker_lost_timeout") == 0)
        return config__int(x, s, n, 1, &c->worker_lost_timeout_s);
    if (strcmp(n, "presigned_url_ttl") == 0)
        return config__int(x, s, n, 1, &c->presigned_url_ttl_s);
    if (strcmp(n, "instance_sweep_interval") == 0)
        return config__int(x, s, n, 1, &c->instance_sweep_interval_s);
    if (strcmp(n, "max_snapshot_mb") == 0)
        return config__int(x, s, n, 1, &c->max_snapshot_mb);
    if (strcmp(n, "git_timeout") == 0)
        return config__int(x, s, n, 1, &c->git_timeout);
    if (strcmp(n, "max_restarts") == 0)
        return config__int(x, s, n, 0, &c->max_restarts);
    if (strcmp(n, "data_reserve_mb") == 0)
        return config__int(x, s, n, 0, &c->data_reserve_mb);
    if (strcmp(n, "retire_workers_on_stop") == 0) {
        if (config_setting_type(s) != CONFIG_TYPE_BOOL)
            return config__fail(x, s, n, "expected true or false");
        c->retire_workers_on_stop = config_setting_get_bool(s);
        return 0;
    }
    if (strcmp(n, "tls") == 0)
        return config__tls(x, c, s);
    if (strcmp(n, "public_url") == 0)
        return config__public_url(x, c, s);
    if (strcmp(n, "registries") == 0)
        return config__registries(x, c, s);
    if (strcmp(n, "projects") == 0)
        return config__projects(x, c, s);
    if (strcmp(n, "environment_aliases") == 0)
        return config__aliases(x, c, s);
    if (strcmp(n, "environment_variable_groups") == 0)
        return config__env_groups(x, c, s);
    return config__fail(
        x, s, n,
        "unknown setting (known: data_dir, listen, public_url, tls, plugin_dir, "
        "default_environment, store, environments, users, worker_lost_timeout, "
        "presigned_url_ttl, instance_sweep_interval, max_snapshot_mb, git_timeout, "
        "max_restarts, data_reserve_mb, retire_workers_on_stop, registries, projects, "
        "environment_aliases, environment_variable_groups)");
}

int ferry_config_load(ferry_config *c, const char *path, char *err, size_t err_cap)
{
    int rc = ferry_config_check_includes(path, err, err_cap);
    if (rc != 0)
        return rc;
    config_t cf;
    config_init(&cf);
    if (config_read_file(&cf, path) != CONFIG_TRUE) {
        if (config_error_type(&cf) == CONFIG_ERR_FILE_IO)
            snprintf(err, err_cap, "%s: cannot read the file", path);
        else
            snprintf(err, err_cap, "%s:%d: %s",
                     config_error_file(&cf) ? config_error_file(&cf) : path, config_error_line(&cf),
                     config_error_text(&cf));
        config_destroy(&cf);
        return FERRY_ECONFIG;
    }
    config__ctx x = {path, err, err_cap};
    config_setting_t *root = config_root_setting(&cf);
    for (int i = 0; rc == 0 && i < config_setting_length(root); i++)
        rc = config__top(&x, c, config_setting_get_elem(root, (unsigned)i));
    config_destroy(&cf);
    if (rc == 0) {
        free(c->path);
        c->path = ferry_strdup(path);
    }
    return rc;
}

/* A project's key files, made absolute (ferryd's folder may change) and
 * checked now rather than at the first fetch: each must be readable. */
static int config__project_files(ferry_project *p, const char *where, const char *sep, char *err,
                                 size_t err_cap)
{
    char **files[] = {&p->ssh_key, &p->ssh_known_hosts, &p->token_file, &p->password_file,
                      &p->ca_file};
    static const char *const names[] = {"ssh_key", "ssh_known_hosts", "token_file", "password_file",
                                        "ca_file"};
    for (size_t k = 0; k < sizeof(files) / sizeof(files[0]); k++) {
        char **f = files[k];
        if (*f == NULL)
            continue;
        char cwd[PATH_MAX];
        if ((*f)[0] != '/' && getcwd(cwd, sizeof(cwd)) != NULL) {
            char *abs = ferry_asprintf("%s/%s", cwd, *f);
            free(*f);
            *f = abs;
        }
        struct stat st;
        errno = 0;
        if (access(*f, R_OK) != 0 || stat(*f, &st) != 0 || !S_ISREG(st.st_mode)) {
            snprintf(err, err_cap, "%s%sproject '%s' (line %d): setting '%s': cannot read %s: %s",
                     where, sep, p->name, p->line, names[k], *f,
                     errno ? strerror(errno) : "not a file");
            return FERRY_ECONFIG;
        }
    }
    return 0;
}

int ferry_config_finish(ferry_config *c, char *err, size_t err_cap)
{
    /* Messages name the file when there is one ("FILE: ..."). */
    const char *where = c->path ? c->path : "", *sep = c->path ? ": " : "";
    if (ferry_settings_get(c->store_settings, "path") == NULL &&
        strcmp(c->store_plugin, "local-storage") == 0) {
        char *p = ferry_asprintf("%s/store", c->data_dir);
        ferry_settings_set(c->store_settings, "path", p);
        free(p);
    }
    for (size_t i = 0; i < c->n_envs; i++) {
        ferry_env_config *e = &c->envs[i];
        /* What the compute plugin needs beyond the operator's block. */
        if (ferry_settings_get(e->settings, "work_dir") == NULL) {
            char *w = ferry_asprintf("%s/workers", c->data_dir);
            ferry_settings_set(e->settings, "work_dir", w);
            free(w);
        }
        ferry_settings_set(e->settings, "runtime", e->runtime);
        /* The plugin's fini reads it: whether to terminate what it has. */
        ferry_settings_set(e->settings, "retire_workers_on_stop",
                           c->retire_workers_on_stop ? "true" : "false");
    }
    if (ferry_config_env(c, c->default_environment) == NULL) {
        snprintf(err, err_cap, "%s%ssetting 'default_environment': no environment named '%s'",
                 where, sep, c->default_environment);
        return FERRY_ECONFIG;
    }
    for (size_t i = 0; i < c->n_aliases; i++)
        if (ferry_config_env(c, c->alias_envs[i]) == NULL) {
            snprintf(err, err_cap,
                     "%s%s%d: setting 'environment_aliases': alias '%s' names '%s', which is not "
                     "an environment",
                     c->path ? c->path : "line ", c->path ? ":" : "", c->alias_lines[i],
                     c->alias_slugs[i], c->alias_envs[i]);
            return FERRY_ECONFIG;
        }
    for (size_t i = 0; i < c->n_users; i++) {
        const ferry_user *u = &c->users[i];
        for (size_t k = 0; k < u->n_quotas; k++)
            if (ferry_config_env(c, u->quota_envs[k]) == NULL) {
                snprintf(err, err_cap,
                         "%s%suser '%s' (line %d): setting 'quotas': no environment named '%s'",
                         where, sep, u->name, u->line, u->quota_envs[k]);
                return FERRY_ECONFIG;
            }
    }
    if (c->n_users == 0 && !ferry_host_is_loopback(c->listen_host)) {
        snprintf(err, err_cap,
                 "%s%srefusing to listen on %s: no users are configured, so the API is "
                 "unauthenticated and may only listen on loopback (127.0.0.1 or ::1)%s",
                 where, sep, c->listen_host,
                 c->tls_cert ? "" : "; beyond loopback ferryd also needs tls = { cert; key; }");
        return FERRY_ECONFIG;
    }
    if (c->tls_cert == NULL && !ferry_host_is_loopback(c->listen_host)) {
        snprintf(err, err_cap,
                 "%s%srefusing to listen on %s without TLS: API tokens, agents' calls and blob "
                 "URLs would travel in clear text; configure tls = { cert = \"FILE\"; key = "
                 "\"FILE\"; } or listen on loopback (127.0.0.1 or ::1)",
                 where, sep, c->listen_host);
        return FERRY_ECONFIG;
    }
    if (c->tls_cert && c->public_url && strncmp(c->public_url, "http://", 7) == 0) {
        snprintf(err, err_cap,
                 "%s%ssetting 'public_url': %s is http:// but ferryd serves HTTPS (tls is "
                 "configured): use https://",
                 where, sep, c->public_url);
        return FERRY_ECONFIG;
    }
    /* Agents run in other folders: they need the CA's path as an absolute one. */
    if (c->tls_ca == NULL && c->tls_cert)
        c->tls_ca = ferry_strdup(c->tls_cert);
    char **paths[] = {&c->tls_cert, &c->tls_key, &c->tls_ca};
    for (size_t i = 0; i < 3; i++)
        if (*paths[i] && (*paths[i])[0] != '/') {
            char cwd[PATH_MAX];
            if (getcwd(cwd, sizeof(cwd)) == NULL)
                break; /* left relative: the files' own errors will tell */
            char *abs = ferry_asprintf("%s/%s", cwd, *paths[i]);
            free(*paths[i]);
            *paths[i] = abs;
        }
    for (size_t i = 0; i < c->n_projects; i++) {
        int rc = config__project_files(&c->projects[i], where, sep, err, err_cap);
        if (rc < 0)
            return rc;
    }
    return 0;
}

const ferry_env_config *ferry_config_env(const ferry_config *c, const char *name)
{
    for (size_t i = 0; i < c->n_envs; i++)
        if (strcmp(c->envs[i].name, name) == 0)
            return &c->envs[i];
    return NULL;
}

const char *ferry_config_env_alias(const ferry_config *c, const char *slug)
{
    for (size_t i = 0; slug && i < c->n_aliases; i++)
        if (strcmp(c->alias_slugs[i], slug) == 0)
            return c->alias_envs[i];
    return NULL;
}

const ferry_user *ferry_config_user_by_hash(const ferry_config *c, const char *token_sha256)
{
    const ferry_user *found = NULL;
    for (size_t i = 0; i < c->n_users; i++) /* no early exit: same time for every token */
        if (ferry_secure_streq(c->users[i].token_sha256, token_sha256))
            found = &c->users[i];
    return found;
}

const ferry_user *ferry_config_user(const ferry_config *c, const char *name)
{
    for (size_t i = 0; name && i < c->n_users; i++)
        if (strcmp(c->users[i].name, name) == 0)
            return &c->users[i];
    return NULL;
}

int ferry_user_env_quota(const ferry_user *u, const char *env)
{
    for (size_t i = 0; u && i < u->n_quotas; i++)
        if (strcmp(u->quota_envs[i], env) == 0)
            return u->quota_values[i];
    return 0;
}

int ferry_env_is_static(const ferry_env_config *e)
{
    return strcmp(e->compute, "static") == 0;
}

/* Docker's rule: the first part of a reference is a registry when it has a
 * '.' or a ':' or is "localhost"; else the image is on Docker Hub. */
const ferry_registry *ferry_config_registry_for(const ferry_config *c, const char *image)
{
    if (image == NULL || c->n_registries == 0)
        return NULL;
    const char *slash = strchr(image, '/');
    char host[256] = "docker.io";
    if (slash != NULL && (size_t)(slash - image) < sizeof(host)) {
        size_t n = (size_t)(slash - image);
        if (memchr(image, '.', n) || memchr(image, ':', n) ||
            (n == 9 && strncmp(image, "localhost", 9) == 0)) {
            memcpy(host, image, n);
            host[n] = '\0';
        }
    }
    if (strcmp(host, "index.docker.io") == 0 || strcmp(host, "registry-1.docker.io") == 0)
        strcpy(host, "docker.io");
    for (size_t i = 0; i < c->n_registries; i++)
        if (strcmp(c->registries[i].server, host) == 0)
            return &c->registries[i];
    return NULL;
}

const ferry_env_group *ferry_config_env_group(const ferry_config *c, const char *name)
{
    for (size_t i = 0; name && i < c->n_env_groups; i++)
        if (strcmp(c->env_groups[i].name, name) == 0)
            return &c->env_groups[i];
    return NULL;
}

char *ferry_config_env_group_names(const ferry_config *c)
{
    char *out = ferry_strdup(c->n_env_groups ? "" : "none");
    for (size_t i = 0; i < c->n_env_groups; i++) {
        char *next = ferry_asprintf("%s%s%s", out, i ? ", " : "", c->env_groups[i].name);
        free(out);
        out = next;
    }
    return out;
}

int ferry_env_mount_allowed(const ferry_env_config *e, const char *source)
{
    char *path = ferry_config_path_normal(source);
    int ok = 0;
    for (size_t i = 0; path && !ok && i < e->n_allowed_mounts; i++) {
        const char *a = e->allowed_mounts[i];
        size_t n = strlen(a);
        ok = strcmp(a, "/") == 0 ||
             (strncmp(path, a, n) == 0 && (path[n] == '\0' || path[n] == '/'));
    }
    free(path);
    return ok;
}

char *ferry_env_allowed_mounts_text(const ferry_env_config *e)
{
    char *out = ferry_strdup(e->n_allowed_mounts ? "" : "nothing");
    for (size_t i = 0; i < e->n_allowed_mounts; i++) {
        char *next = ferry_asprintf("%s%s%s", out, i ? ", " : "", e->allowed_mounts[i]);
        free(out);
        out = next;
    }
    return out;
}
