/* gcp: what the compute plugin's files share.
 *
 *   gcp_config.c   settings, the service-account key file, endpoint
 *   gcp_json.c     the OAuth2 assertion and token answer, Compute Engine
 *                  request bodies, answers and errors (jansson)
 *   gcp_call.c     access tokens (fetched, cached, refreshed) and one
 *                  authorized Compute call with retries (sdk retry.h)
 *   gcp_compute.c  the compute ops: launch with zone failover; terminate,
 *                  list and describe through the SDK's cloud kit (cloud.h),
 *                  which runs Compute's requests and parses; init and fini
 *
 * gcp_config.c and gcp_json.c do no network I/O: they are a library of
 * their own (gcp_core) that the unit tests link.
 *
 * An instance id is "<zone>/<name>": every Compute call on an instance
 * needs its zone. The name is ferry's ("ferry-" and the worker id), so an
 * insert retried after a lost answer finds the instance it made.
 */
#ifndef FERRY_GCP_H
#define FERRY_GCP_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "ferry/ferry.h"
#include "ferry/http.h"
#include "ferry/cloud.h"
#include "ferry/retry.h"
#include "ferry/settings.h"

#define GCP_DEFAULT_ENDPOINT "https://compute.googleapis.com/compute/v1"
#define GCP_SCOPE "https://www.googleapis.com/auth/compute"
#define GCP_JWT_LIFETIME 3600
/* Labels every instance carries: the orphan sweep lists by the first. */
#define GCP_LABEL_DAEMON "ferry-daemon"
#define GCP_LABEL_WORKER "ferry-worker"
#define GCP_LABEL_ENVIRONMENT "ferry-environment"
/* Compute Engine takes at most 256 KiB of metadata values. */
#define GCP_USER_DATA_MAX 262144

/* ------------------------------------------------------------------------ */
/* Settings (gcp_config.c)                                                  */

typedef struct gcp_accelerator {
    char *type; /* "nvidia-l4" */
    int count;
} gcp_accelerator;

typedef struct gcp_key {
    char *client_email;
    char *private_key; /* PEM; a secret */
    char *private_key_id;
    char *token_uri;
    char *project_id;
} gcp_key;

typedef struct gcp_config {
    char *project;
    ferry_strlist zones;
    char *machine_type;
    char *image;
    int disk_gb; /* 0: the image's size */
    char *network;
    char *subnetwork;
    char *service_account; /* email for the instance, or NULL: none */
    int spot;
    char *termination_action; /* spot: "DELETE" (default) or "STOP" */
    gcp_accelerator *accelerators;
    size_t n_accelerators;
    int external_ip;
    char *endpoint; /* without a trailing '/' */
    char *credentials_source;
    gcp_key key;
    int max_attempts;
    long call_timeout_ms;
    long operation_timeout_ms;
    long poll_interval_ms;
    int list_page_size;
} gcp_config;

/* What config_get answers for a setting, or NULL. */
typedef const char *(*gcp_setting_fn)(void *arg, const char *name);

/* Reads and checks the settings and the key file; FERRY_ECONFIG (or
 * FERRY_EAUTH for an unusable key) with a message on a bad one. */
int gcp_config_load(gcp_config *cfg, gcp_setting_fn get, void *arg, ferry_error_detail *err);
void gcp_config_free(gcp_config *cfg);
/* A service-account key file's JSON text into `key`. */
int gcp_key_parse(gcp_key *key, const char *text, ferry_error_detail *err);
void gcp_key_free(gcp_key *key);

/* ------------------------------------------------------------------------ */
/* JSON (gcp_json.c)                                                        */

/* The claims of an assertion, compact, in the order iss, scope, aud, iat,
 * exp (= iat + 3600). malloc'd. */
char *gcp_claims_json(const char *iss, const char *scope, const char *aud, long long iat);
/* A signed assertion for `key` at `iat`. */
int gcp_assertion(const gcp_key *key, const char *scope, long long iat, char **out,
                  ferry_error_detail *err);
/* grant_type=...jwt-bearer&assertion=<jwt>, malloc'd. */
char *gcp_token_body(const char *assertion);
/* The token answer: 0 with the token, or FERRY_EAUTH (invalid_grant...)
 * / FERRY_EPROTO with a message. */
int gcp_token_parse(const char *body, char **token, long *expires_in, ferry_error_detail *err);

/* "ferry-<worker id>", lowercase, [-a-z0-9], at most 63 characters. */
void gcp_instance_name(const char *worker_id, char *buf, size_t cap);
/* A label value: lowercase [-_a-z0-9], at most 63 characters. */
void gcp_label_value(const char *s, char *buf, size_t cap);

typedef struct gcp_launch_spec {
    const char *daemon_id;
    const char *environment;
    const char *worker_id;
    const char *user_data;
    const char *zone;
} gcp_launch_spec;

/* The body of instances.insert in spec->zone. */
json_t *gcp_insert_body(const gcp_config *cfg, const gcp_launch_spec *s);
/* "<endpoint>/projects/<p>/zones/<z>/instances[/<name>]" and so on. */
char *gcp_instances_url(const gcp_config *cfg, const char *zone, const char *name);
/* instances.list with the daemon's label filter, page size and token. */
char *gcp_list_url(const gcp_config *cfg, const char *zone, const char *daemon_id,
                   const char *page_token);

typedef struct gcp_operation {
    char name[128];
    char status[32]; /* PENDING, RUNNING, DONE */
    char zone[64];
    char error_code[64]; /* first error's code, "" when none */
    char error_message[320];
    long http_error_status;
} gcp_operation;

/* An Operation resource. 0 or FERRY_EPROTO. */
int gcp_operation_parse(const char *body, size_t len, gcp_operation *op);

typedef struct gcp_instance {
    char id[192]; /* "<zone>/<name>" */
    char name[64];
    char zone[64];
    char status[32];  /* GCE's: PROVISIONING ... TERMINATED */
    char state[32];   /* ferry's: pending, running, stopping, stopped, ... */
    char reason[256]; /* for people, when ending */
    char daemon_id[64];
    char worker_id[64];
    char environment[64];
} gcp_instance;

typedef struct gcp_instances {
    gcp_instance *v;
    size_t n;
    char *next_page_token; /* NULL on the last page */
} gcp_instances;

/* One Instance resource (instances.get). */
int gcp_instance_parse(const char *body, size_t len, gcp_instance *out);
/* An InstanceList (instances.list), appended to `out`. */
int gcp_instances_parse(const char *body, size_t len, gcp_instances *out);
void gcp_instances_free(gcp_instances *l);
/* GCE's status as ferry's state. */
const char *gcp_state_of(const char *gce_status);
int gcp_state_ending(const char *state);

/* A Google JSON error envelope: the first reason ("notFound",
 * "rateLimitExceeded", "quotaExceeded"...) and the message. 1 when the body
 * is one. */
int gcp_error_parse(const char *body, size_t len, char *reason, size_t reason_cap, char *message,
                    size_t message_cap);
/* What an answer's status and reason mean to ferry, and whether to retry
 * the call as it is (throttling, 5xx). */
int gcp_error_code(const char *reason, long http_status, int *retry);
/* What an operation error code means: FERRY_ECAPACITY for exhausted zones
 * and zone/region quotas (next zone), FERRY_EEXIST, ... */
int gcp_operation_error_code(const char *code);

/* ------------------------------------------------------------------------ */
/* Calls (gcp_call.c)                                                       */

typedef struct gcp_state gcp_state;
typedef struct gcp_call gcp_call;
typedef void (*gcp_call_done_fn)(void *arg, int status, const char *body, size_t len,
                                 const ferry_error_detail *err);

/* An authorized Compute call: `method` on `url` (taken) with `body` (JSON,
 * taken, may be NULL). On 0 `done` runs later, exactly once. */
int gcp_call_start(gcp_state *st, const char *what, const char *method, char *url, char *body,
                   gcp_call_done_fn done, void *arg);
void gcp_call_cancel_all(gcp_state *st);
/* One call to completion on a private loop, blocking (fini only). */
int gcp_call_blocking(gcp_state *st, const char *what, const char *method, char *url,
                      long timeout_ms, ferry_error_detail *err);

/* ------------------------------------------------------------------------ */
/* The plugin instance (gcp_compute.c)                                      */

struct gcp_state {
    ferry_plugin_ctx *ctx;
    const ferry_host_api *host;
    uv_loop_t *loop;
    gcp_config cfg;
    ferry_http_client *http;
    gcp_call *calls;           /* in flight */
    gcp_call *waiting;         /* for a token */
    char *token;               /* access token; a secret */
    uint64_t token_refresh_ms; /* uv_now after which a new one is fetched */
    uint64_t token_expiry_ms;
    int token_fetching;
    ferry_retry_call *token_call;
    ferry_cloud cloud;           /* list, describe, terminate; the instances to retire at fini */
    struct gcp_launch *launches; /* in progress */
};

#endif
