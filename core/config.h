/* ferryd's configuration: embedded defaults, command-line flags and an
 * optional libconfig file. */
#ifndef FERRY_CONFIG_H
#define FERRY_CONFIG_H

#include "plugin.h"

#define FERRY_DEFAULT_PORT 8470

typedef struct ferry_env_config {
    char *name;
    char *compute; /* compute plugin name */
    char *runtime; /* runtime plugin the agents use */
    int min_workers;
    int max_workers;
    int idle_timeout_s;
    int gpus;                   /* GPUs per worker: a worker runs one one-GPU execution per GPU */
    char join_token_sha256[65]; /* compute = "static": agents join with this token */
    ferry_settings *settings;   /* every setting of the block, for the plugin */
    ferry_settings *lines;      /* setting -> its line in the file, for messages */
    /* allowed_mounts = [ "/data", "/mnt/shared" ]: the host paths (and
     * what is under them) a step's `mounts` may bind into its container;
     * absolute and normalised (no "..", no trailing '/'). None: no mounts. */
    char **allowed_mounts;
    size_t n_allowed_mounts;
} ferry_env_config;

/* One variable of an environment variable group. */
typedef struct ferry_env_var {
    char *name;
    char *value;
    int secret; /* from `secrets`: never logged, never in the API, sent to agents only */
} ferry_env_var;

/* environment_variable_groups = ( { name = "aws"; variables = { ... };
 * secrets = { ... }; } ): what a step's environment-variable-groups adds
 * to its executions' environment, resolved when they are handed out. */
typedef struct ferry_env_group {
    char *name;
    ferry_env_var *vars;
    size_t n_vars;
    int line;
} ferry_env_group;

/* A user of the API. The token is only ever held as its SHA-256. */
typedef struct ferry_user {
    char *name;
    char token_sha256[65];
    int admin;
    int quota;         /* executions in flight at once; 0 = no limit */
    char **quota_envs; /* per-environment quotas: quota_envs[i] -> quota_values[i] */
    int *quota_values;
    size_t n_quotas;
    int line;
} ferry_user;

/* registries = ( { server; username; password; } ): credentials the agents
 * get for pulling an execution's image from that registry, for that pull. */
typedef struct ferry_registry {
    char *server; /* as image references name it: "registry.example:5000", "docker.io" */
    char *username;
    char *password;
} ferry_registry;

/* projects = ( { name; repository; ... } ): a project linked to a git
 * repository, mirrored by ferryd (core/git/). The credentials (ssh_key,
 * token_file, username/password_file) are read by ferryd only: never
 * logged, never in the API, never sent to a worker. */
typedef struct ferry_project {
    char *name;
    char *repository;  /* git://, https://, http://, ssh://, git@host:path, file://; NULL: ad-hoc
                          only */
    char *default_ref; /* what a fetch-less `--commit` defaults to; "main" when unset */
    int submodules;    /* fetch and include .gitmodules' repositories */
    char *ssh_key;     /* private key file (ssh), absolute once ferry_config_finish() ran */
    char *ssh_known_hosts; /* known_hosts file the server's key is checked against; NULL: not
                              checked */
    char *token_file;      /* https: a file holding a token (sent as the password) */
    char *username;        /* https: basic auth user (with password_file or token_file) */
    char *password_file;
    char *ca_file; /* https: CA bundle the server is verified with; NULL: the system's */
    int line;      /* where it is in the config file, for messages */
} ferry_project;

typedef struct ferry_config {
    char *path; /* the config file, or NULL for the embedded defaults */
    char *data_dir;
    char *listen_host;
    int listen_port;
    char *plugin_dir; /* NULL: next to the executable */
    char *default_environment;
    char *store_plugin;
    ferry_settings *store_settings;
    ferry_settings *store_lines;
    ferry_env_config *envs;
    size_t n_envs;
    ferry_user *users;
    size_t n_users;
    int worker_lost_timeout_s; /* a worker silent this long is lost */
    int presigned_url_ttl_s;   /* how long a URL given to an agent stays valid */
    /* What a snapshot may expand to, in MiB of uncompressed tar (snapshots.c). */
    int max_snapshot_mb;
    int git_timeout; /* seconds a git server may stay silent during a fetch */
    /* Auto-restarts in one chain at most (sched/restart.c, issue 19). */
    int max_restarts;
    /* Free MiB the data folder keeps for committing accepted work: under
     * it, new executions, snapshots and log events are refused (space.c). */
    int data_reserve_mb;
    /* How often compute plugins' instances are reconciled (sweep.c). */
    int instance_sweep_interval_s;
    /* Whether a stop of ferryd (SIGTERM/SIGINT) terminates its workers and
     * ends their executions; by default they keep running and the next
     * start takes them back. Each compute plugin sees it as its setting
     * "retire_workers_on_stop" ("true"/"false"), read at fini. */
    int retire_workers_on_stop;
    /* tls = { cert; key; ca; }: HTTPS when cert is set. Absolute paths once
     * ferry_config_finish() ran (agents get tls_ca from another folder). */
    char *tls_cert;   /* PEM certificate chain; NULL: plain HTTP */
    char *tls_key;    /* PEM private key, unencrypted */
    char *tls_ca;     /* what agents verify ferryd with; defaults to tls_cert */
    char *public_url; /* how agents reach ferryd (and blob URLs say); NULL: from listen */
    ferry_registry *registries;
    size_t n_registries;
    ferry_project *projects;
    size_t n_projects;
    /* environment_aliases = { aws-eu-west-1-g4dn-xlarge = "aws-gpu"; }: a
     * step's (Valohai) environment slug -> one of ours; alias_lines for
     * messages. */
    char **alias_slugs, **alias_envs;
    int *alias_lines;
    size_t n_aliases;
    ferry_env_group *env_groups;
    size_t n_env_groups;
} ferry_config;

/* The embedded defaults: data dir (FERRY_DATA_DIR, else $XDG_DATA_HOME/ferry,
 * else ~/.local/share/ferry), 127.0.0.1:8470, a local-storage store in the
 * data dir and one environment "local" with one worker per core. */
void ferry_config_init(ferry_config *c);
void ferry_config_free(ferry_config *c);
/* Every `@include` of the file at `path` (and of what it includes) names a
 * file that is there: 0, or FERRY_ECONFIG with "FILE:LINE: ..." in err
 * (config_include.c; libconfig 1.5 exit()s on a folder). */
int ferry_config_check_includes(const char *path, char *err, size_t err_cap);
/* Read a libconfig file over the defaults. Errors name the file, the line
 * and the setting: "ferryd.conf:4: setting 'listen': expected HOST:PORT". */
int ferry_config_load(ferry_config *c, const char *path, char *err, size_t err_cap);
/* "HOST:PORT", "[::1]:PORT", ":PORT" or "PORT". */
int ferry_config_set_listen(ferry_config *c, const char *text, char *err, size_t err_cap);
/* Fill what depends on other settings (store path in the data dir...) and
 * check the whole: the default environment exists; a listen host beyond
 * loopback needs users (tokens) and TLS (so that tokens, agents' calls and
 * blob URLs never travel in clear text). */
int ferry_config_finish(ferry_config *c, char *err, size_t err_cap);
const ferry_env_config *ferry_config_env(const ferry_config *c, const char *name);
/* The environment environment_aliases maps `slug` to, or NULL. */
const char *ferry_config_env_alias(const ferry_config *c, const char *slug);
/* compute = "static": machines join by hand; there is no plugin. */
int ferry_env_is_static(const ferry_env_config *e);
/* The registry an image reference names ("registry.example:5000/team/img:tag"
 * -> "registry.example:5000"; "busybox" -> "docker.io"), and the
 * credentials configured for it, or NULL. */
const ferry_registry *ferry_config_registry_for(const ferry_config *c, const char *image);
/* Check a block against its plugins' declared settings (compute NULL for a
 * static environment): 0, or FERRY_ECONFIG with "FILE:LINE: setting 'x' is
 * not known to compute plugin 'aws' (...)". Then the runtime plugin's
 * settings go to e's "runtime_settings" as "KEY=VALUE" lines, which the
 * compute plugin passes to the agents it starts (--runtime-setting). */
int ferry_config_check_env(const ferry_config *c, ferry_env_config *e, const ferry_plugin *compute,
                           const ferry_plugin *runtime, char *err, size_t err_cap);
int ferry_config_check_store(const ferry_config *c, const ferry_plugin *store, char *err,
                             size_t err_cap);
int ferry_host_is_loopback(const char *host);
/* The user whose token hashes to `token_sha256` (constant-time over all
 * users), or NULL. */
const ferry_user *ferry_config_user_by_hash(const ferry_config *c, const char *token_sha256);
const ferry_user *ferry_config_user(const ferry_config *c, const char *name);
/* A user's quota in an environment: 0 = no limit. */
int ferry_user_env_quota(const ferry_user *u, const char *env);
/* The environment variable group named `name`, or NULL. */
const ferry_env_group *ferry_config_env_group(const ferry_config *c, const char *name);
/* "aws, gcp" (or "none") for messages; caller frees. */
char *ferry_config_env_group_names(const ferry_config *c);
/* `path` made absolute-normal: "//data/x/../y/" -> "/data/y"; NULL when it
 * is relative. Caller frees. */
char *ferry_config_path_normal(const char *path);
/* Whether host path `source` may be bind-mounted in environment `e`: it
 * is absolute and, normalised, equals or is under an allowed_mounts entry. */
int ferry_env_mount_allowed(const ferry_env_config *e, const char *source);
/* "/data, /mnt/shared" (or "nothing") for messages; caller frees. */
char *ferry_env_allowed_mounts_text(const ferry_env_config *e);

#endif
