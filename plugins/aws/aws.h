/* aws: what the compute plugin's files share.
 *
 *   aws_config.c   settings, endpoint
 *   aws_query.c    EC2 Query API requests: form bodies, RunInstances,
 *                  DescribeInstances, TerminateInstances parameters
 *   aws_xml.c      EC2's XML answers and errors (libxml2)
 *   aws_call.c     one signed EC2 call with retries (sdk retry.h, sigv4.h)
 *   aws_compute.c  the compute ops: launch with zone failover; terminate,
 *                  list and describe through the SDK's cloud kit (cloud.h),
 *                  which runs EC2's requests and parses; init and fini
 *
 * aws_config.c, aws_query.c and aws_xml.c do no I/O: they are a library of
 * their own (aws_core) that the unit tests link.
 */
#ifndef FERRY_AWS_H
#define FERRY_AWS_H

#include <stddef.h>
#include <stdint.h>

#include "ferry/awscreds.h"
#include "ferry/ferry.h"
#include "ferry/http.h"
#include "ferry/cloud.h"
#include "ferry/retry.h"
#include "ferry/settings.h"

#define AWS_EC2_VERSION "2016-11-15"
/* Tags every instance carries: the orphan sweep lists by the first. */
#define AWS_TAG_DAEMON "ferry:daemon"
#define AWS_TAG_WORKER "ferry:worker"
#define AWS_TAG_ENVIRONMENT "ferry:environment"
/* EC2 takes at most 16 KiB of user-data before base64. */
#define AWS_USER_DATA_MAX 16384

/* ------------------------------------------------------------------------ */
/* Settings (aws_config.c)                                                  */

typedef struct aws_config {
    char *region;
    ferry_strlist zones;
    ferry_strlist subnets; /* subnets.v[i] lies in zones.v[i] */
    ferry_strlist security_groups;
    char *instance_type;
    char *image_id;
    char *instance_profile; /* a name, or an ARN */
    char *key_name;
    char *root_device; /* the image's root device, resized to disk_gb */
    int spot;
    int disk_gb; /* 0: the image's size */
    char *url;   /* endpoint URL requests go to (scheme://host[:port]/path) */
    char *host;  /* the Host header, signed */
    char *path;  /* "/" or the endpoint's path */
    int max_attempts;
    long call_timeout_ms;
    int list_page_size; /* DescribeInstances MaxResults */
} aws_config;

/* Reads and checks the settings; FERRY_ECONFIG with a message on a bad one. */
int aws_config_load(aws_config *cfg, ferry_plugin_ctx *ctx, const ferry_host_api *host,
                    ferry_error_detail *err);
void aws_config_free(aws_config *cfg);

/* ------------------------------------------------------------------------ */
/* Query API requests (aws_query.c)                                         */

/* Parameters in the order they are added, as EC2's form body carries them. */
typedef struct aws_params {
    char **names;
    char **values;
    size_t n, cap;
    int oom; /* an add failed: the body is refused */
} aws_params;

/* Starts with Action=<action>&Version=2016-11-15. */
void aws_params_init(aws_params *p, const char *action);
void aws_params_add(aws_params *p, const char *name, const char *value);
/* The name from a format ("TagSpecification.%d.Tag.%d.Key"). */
void aws_params_addf(aws_params *p, const char *value, const char *name_fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* application/x-www-form-urlencoded, each name and value encoded as SigV4
 * does (RFC 3986 unreserved kept, space as %20): malloc'd, NULL when out of
 * memory. */
char *aws_params_body(const aws_params *p);
/* The value of `name`, or NULL. */
const char *aws_params_get(const aws_params *p, const char *name);
void aws_params_free(aws_params *p);

/* One RunInstances attempt: in zone `zone` (an index into cfg->zones, or
 * -1 for none), for the worker of `req`. */
typedef struct aws_launch_spec {
    const char *daemon_id;
    const char *environment;
    const char *worker_id;
    const char *client_token; /* idempotency: the same for retries of one zone */
    const char *user_data;    /* plain text; sent base64 */
    int zone;
} aws_launch_spec;

/* 0, FERRY_ETOOBIG (user-data over 16 KiB) or FERRY_ENOMEM. */
int aws_run_instances_params(aws_params *p, const aws_config *cfg, const aws_launch_spec *s);
/* Instances tagged with the daemon's id, `page_size` per page. */
void aws_describe_by_daemon_params(aws_params *p, const char *daemon_id, int page_size,
                                   const char *next_token);
void aws_describe_one_params(aws_params *p, const char *instance_id);
void aws_terminate_params(aws_params *p, char *const *instance_ids, size_t n);

/* ------------------------------------------------------------------------ */
/* XML (aws_xml.c)                                                          */

typedef struct aws_instance {
    char id[64];
    char state[32];       /* pending, running, shutting-down, terminated, stopping, stopped */
    char reason_code[64]; /* stateReason: "Server.SpotInstanceTermination" */
    char reason_message[256];
    char zone[64];
    char daemon_id[64]; /* tags */
    char worker_id[64];
    char environment[128];
} aws_instance;

typedef struct aws_instances {
    aws_instance *v;
    size_t n;
    char *next_token; /* NULL on the last page */
} aws_instances;

void aws_xml_init(void);
/* An EC2 error document (<Response><Errors><Error>): its first Code and
 * Message and the RequestID ("" when absent). 1 when the body is one. */
int aws_xml_error(const char *body, size_t len, char *code, size_t code_cap, char *message,
                  size_t message_cap, char *request_id, size_t request_id_cap);
/* The instances of a RunInstances, DescribeInstances or TerminateInstances
 * answer (every instancesSet's items; TerminateInstances' currentState is
 * the state). 0, FERRY_EPROTO (not such a document) or FERRY_ENOMEM. */
int aws_xml_instances(const char *body, size_t len, aws_instances *out);
void aws_instances_free(aws_instances *l);
/* For people: "spot interruption" for Server.SpotInstanceTermination, and
 * so on; the message (or the code) for others; "" without a reason. */
void aws_reason_text(const aws_instance *in, char *buf, size_t cap);
/* Whether a state means the instance is going or gone. */
int aws_state_ending(const char *state);
/* What an EC2 error code means to ferry, and whether to retry the call as
 * it is (throttling, 5xx). Capacity errors are not retried in place: the
 * launch tries the next zone. */
int aws_error_code(const char *code, long http_status, int *retry);

/* ------------------------------------------------------------------------ */
/* Calls (aws_call.c)                                                       */

typedef struct aws_state aws_state;
typedef struct aws_call aws_call;
/* status 0 with the answer's body, or the final error. */
typedef void (*aws_call_done_fn)(void *arg, int status, const char *body, size_t len,
                                 const ferry_error_detail *err);

/* Sends `params` (taken, also on failure) to EC2. On 0 `done` runs later,
 * exactly once (FERRY_ECANCELED at fini). */
int aws_call_start(aws_state *st, aws_params *params, aws_call_done_fn done, void *arg);
/* Cancels every call in flight (fini). */
void aws_call_cancel_all(aws_state *st);
/* One call to completion on a private loop, blocking (fini only). */
int aws_call_blocking(aws_state *st, aws_params *params, long timeout_ms, int max_attempts,
                      ferry_error_detail *err);

/* ------------------------------------------------------------------------ */
/* The plugin instance (aws_compute.c)                                      */

struct aws_state {
    ferry_plugin_ctx *ctx;
    const ferry_host_api *host;
    uv_loop_t *loop;
    aws_config cfg;
    ferry_aws_credentials creds;
    ferry_http_client *http;
    aws_call *calls;   /* in flight */
    ferry_cloud cloud; /* list, describe, terminate; the instances to retire at fini */
};

#endif
