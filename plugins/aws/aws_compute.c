/* aws: a compute plugin whose workers are EC2 instances.
 *
 * launch: RunInstances in the first zone of the environment, then the next
 * one when a zone has no capacity (InsufficientInstanceCapacity, Unsupported,
 * spot capacity); each zone's call is retried in place on throttling and
 * 5xx, with the same ClientToken so that a retry never makes a second
 * instance. The instance boots the user-data ferryd hands over (its
 * bootstrap script with a one-time token): no AWS credential leaves ferryd.
 * terminate: TerminateInstances. list: DescribeInstances filtered on the
 * daemon's tag, page by page. describe: DescribeInstances of one instance,
 * with the reason it ended (a spot interruption...). fini terminates every
 * instance this plugin instance launched or saw alive, so that a daemon that
 * stops leaves none behind; what a crash leaves, ferryd's orphan sweep finds
 * at its next start.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "aws.h"

#define AWS_FINI_TIMEOUT_MS 10000
#define AWS_FINI_ATTEMPTS 2

/* ------------------------------------------------------------------------ */
/* launch, zone by zone                                                     */

typedef struct aws_launch {
    ferry_cloud_launch req; /* the request's copy, and the note */
    aws_state *st;
    char *client_token;
    int zone;     /* index of the place being tried; -1: no zones */
    int n_places; /* zones (or subnets) to try, at least 1 */
} aws_launch;

static void aws_launch_free(aws_launch *l)
{
    ferry_cloud_launch_clear(&l->req);
    free(l->client_token);
    free(l);
}

static const char *aws_place_name(const aws_launch *l)
{
    const aws_config *cfg = &l->st->cfg;
    if (l->zone >= 0 && (size_t)l->zone < cfg->zones.n)
        return cfg->zones.v[l->zone];
    if (l->zone >= 0 && (size_t)l->zone < cfg->subnets.n)
        return cfg->subnets.v[l->zone];
    return cfg->region;
}

static int aws_launch_try(aws_launch *l);

/* Every place said no (or one said what no other place changes). */
static void aws_launch_fail(aws_launch *l, const ferry_error_detail *last)
{
    ferry_cloud_launch_failed(&l->st->cloud, &l->req, last);
    aws_launch_free(l);
}

static void aws_launch_succeeded(aws_launch *l, const char *body, size_t len)
{
    aws_instances got;
    ferry_error_detail d;
    int rc = aws_xml_instances(body, len, &got);
    if (rc != 0 || got.n == 0) {
        if (rc == 0)
            aws_instances_free(&got);
        ferry_error_set(&d, FERRY_EPROTO, 1, NULL, "EC2 RunInstances: no instance in the answer");
        ferry_cloud_note_error(l->req.note, sizeof(l->req.note), aws_place_name(l), &d);
        aws_launch_fail(l, &d);
        return;
    }
    ferry_cloud_launched(&l->st->cloud, &l->req, aws_place_name(l), got.v[0].id, got.v[0].id);
    aws_instances_free(&got);
    aws_launch_free(l);
}

/* Whether another place may do better after `err`: no capacity there, or a
 * zone that kept failing with 5xx. Throttling, quotas, credentials and
 * settings are the same in every zone. */
static int aws_next_place_helps(const ferry_error_detail *err)
{
    return err->code == FERRY_ECAPACITY ||
           (err->code == FERRY_EPROVIDER && strncmp(err->provider_code, "HTTP5", 5) == 0) ||
           strcmp(err->provider_code, "InternalError") == 0 ||
           strcmp(err->provider_code, "ServiceUnavailable") == 0;
}

static void aws_launch_answer(void *arg, int status, const char *body, size_t len,
                              const ferry_error_detail *err)
{
    aws_launch *l = arg;
    if (l->st->cloud.closing) { /* fini: the host cancels the op */
        aws_launch_free(l);
        return;
    }
    if (status == 0) {
        aws_launch_succeeded(l, body, len);
        return;
    }
    ferry_cloud_note_error(l->req.note, sizeof(l->req.note), aws_place_name(l), err);
    if (aws_next_place_helps(err) && l->zone + 1 < l->n_places) {
        l->zone++;
        int rc = aws_launch_try(l);
        if (rc == 0)
            return;
        ferry_error_detail d;
        ferry_error_set(&d, rc, 0, NULL, "EC2 RunInstances: %s", ferry_strerror(rc));
        aws_launch_fail(l, &d);
        return;
    }
    aws_launch_fail(l, err);
}

static int aws_launch_try(aws_launch *l)
{
    char token[80];
    /* One token per place: EC2 refuses a token reused with other
     * parameters, and a retry in the same place must reuse it. */
    snprintf(token, sizeof(token), "%.60s-%d", l->client_token, l->zone < 0 ? 0 : l->zone);
    aws_launch_spec s = {.daemon_id = l->req.daemon_id,
                         .environment = l->req.environment,
                         .worker_id = l->req.worker_id,
                         .client_token = token,
                         .user_data = l->req.user_data,
                         .zone = l->zone};
    aws_params p;
    int rc = aws_run_instances_params(&p, &l->st->cfg, &s);
    if (rc != 0) {
        aws_params_free(&p);
        return rc;
    }
    return aws_call_start(l->st, &p, aws_launch_answer, l);
}

static int aws_op_launch(void *state, const ferry_launch_request *req, ferry_op *op)
{
    aws_state *st = state;
    aws_launch *l = calloc(1, sizeof(*l));
    if (l == NULL)
        return FERRY_ENOMEM;
    int rc = ferry_cloud_launch_init(&l->req, req, AWS_USER_DATA_MAX, st->cfg.instance_type, op);
    if (rc != 0) {
        free(l);
        return rc;
    }
    l->st = st;
    l->client_token = strdup(req->client_token ? req->client_token : req->worker_id);
    size_t places = st->cfg.zones.n ? st->cfg.zones.n : st->cfg.subnets.n;
    l->n_places = places ? (int)places : 1;
    l->zone = places ? 0 : -1;
    rc = l->client_token ? aws_launch_try(l) : FERRY_ENOMEM;
    if (rc != 0)
        aws_launch_free(l);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* terminate, list, describe: EC2's requests and answers for the SDK's kit  */

static int aws_terminate_call(ferry_cloud_task *t, ferry_cloud_answer_fn done)
{
    aws_params p;
    char *ids[] = {t->instance_id};
    aws_terminate_params(&p, ids, 1);
    return aws_call_start(t->state, &p, done, t);
}

static int aws_list_page(ferry_cloud_task *t, const char *next_token, ferry_cloud_answer_fn done)
{
    aws_state *st = t->state;
    aws_params p;
    aws_describe_by_daemon_params(&p, t->daemon_id, st->cfg.list_page_size, next_token);
    return aws_call_start(st, &p, done, t);
}

static int aws_describe_call(ferry_cloud_task *t, ferry_cloud_answer_fn done)
{
    aws_params p;
    aws_describe_one_params(&p, t->instance_id);
    return aws_call_start(t->state, &p, done, t);
}

/* Every instance of a DescribeInstances answer to the kit, and the next
 * page's token when `next_token` is not NULL. */
static int aws_list_parse(ferry_cloud_task *t, const char *body, size_t len, char **next_token)
{
    aws_instances got;
    int rc = aws_xml_instances(body, len, &got);
    for (size_t i = 0; rc == 0 && i < got.n; i++) {
        const aws_instance *in = &got.v[i];
        char reason[300];
        aws_reason_text(in, reason, sizeof(reason));
        ferry_cloud_instance view = {.id = in->id,
                                     .state = in->state,
                                     .worker_id = in->worker_id,
                                     .environment = in->environment,
                                     .zone = in->zone,
                                     .reason = reason,
                                     .ending = aws_state_ending(in->state)};
        rc = ferry_cloud_found(t, &view);
    }
    if (rc == 0 && next_token) {
        *next_token = got.next_token; /* taken */
        got.next_token = NULL;
    }
    aws_instances_free(&got);
    return rc;
}

static int aws_describe_parse(ferry_cloud_task *t, const char *body, size_t len)
{
    return aws_list_parse(t, body, len, NULL);
}

static const ferry_cloud_provider aws_cloud = {
    .name = "aws",
    .list_what = "EC2 DescribeInstances",
    .describe_what = "EC2 DescribeInstances",
    .not_found_code = "InvalidInstanceID.NotFound",
    .list_page = aws_list_page,
    .list_parse = aws_list_parse,
    .describe = aws_describe_call,
    .describe_parse = aws_describe_parse,
    .terminate = aws_terminate_call,
};

static int aws_op_terminate(void *state, const char *instance_id, ferry_op *op)
{
    return ferry_cloud_terminate(&((aws_state *)state)->cloud, instance_id, op);
}

/* EC2 lists a region's instances in one listing: one place. */
static int aws_op_list(void *state, const char *daemon_id, ferry_op *op)
{
    return ferry_cloud_list(&((aws_state *)state)->cloud, daemon_id, 1, op);
}

static int aws_op_describe(void *state, const char *instance_id, ferry_op *op)
{
    return ferry_cloud_describe(&((aws_state *)state)->cloud, instance_id, op);
}

static const ferry_compute_ops aws_ops = {
    .struct_size = sizeof(ferry_compute_ops),
    .launch = aws_op_launch,
    .terminate = aws_op_terminate,
    .list = aws_op_list,
    .describe = aws_op_describe,
    .flags = FERRY_COMPUTE_USER_DATA,
};

/* ------------------------------------------------------------------------ */
/* Lifecycle                                                                */

static void aws_state_free(aws_state *st)
{
    aws_config_free(&st->cfg);
    ferry_aws_credentials_free(&st->creds);
    ferry_strlist_free(&st->cloud.known);
    free(st);
}

static int aws_init(ferry_plugin_ctx *ctx, const ferry_host_api *host, void **state,
                    ferry_error_detail *err)
{
    aws_state *st = calloc(1, sizeof(*st));
    if (st == NULL)
        return ferry_error_set(err, FERRY_ENOMEM, 0, NULL, "aws: out of memory");
    st->ctx = ctx;
    st->host = host;
    st->loop = host->loop(ctx);
    st->cloud = (ferry_cloud){.provider = &aws_cloud, .state = st, .ctx = ctx, .host = host};
    aws_xml_init();
    int rc = aws_config_load(&st->cfg, ctx, host, err);
    if (rc == 0)
        rc = ferry_aws_credentials_load(&st->creds, ctx, host, "aws", "the environment's settings",
                                        err);
    if (rc == 0 && ferry_http_client_new(st->loop, &st->http) != 0)
        rc = ferry_error_set(err, FERRY_ENOMEM, 0, NULL, "aws: cannot make an HTTP client");
    if (rc != 0) {
        aws_state_free(st);
        return rc;
    }
    host->log(ctx, FERRY_LOG_INFO, "EC2 at %s, region %s, %s in %zu zone%s%s, credentials from %s",
              st->cfg.url, st->cfg.region, st->cfg.instance_type, st->cfg.zones.n,
              st->cfg.zones.n == 1 ? "" : "s", st->cfg.spot ? " (spot)" : "", st->creds.source);
    *state = st;
    return 0;
}

/* What this instance launched or saw alive, terminated in one call, so that
 * ferryd's stop leaves nothing running (its records go at shutdown). */
static void aws_retire_known(aws_state *st)
{
    const ferry_strlist *known = &st->cloud.known;
    if (known->n == 0)
        return;
    st->host->log(st->ctx, FERRY_LOG_INFO, "terminating %zu instance%s at shutdown", known->n,
                  known->n == 1 ? "" : "s");
    for (size_t done = 0; done < known->n;) {
        size_t n = known->n - done > 1000 ? 1000 : known->n - done;
        aws_params p;
        aws_terminate_params(&p, known->v + done, n);
        ferry_error_detail err = {0};
        int rc = aws_call_blocking(st, &p, AWS_FINI_TIMEOUT_MS, AWS_FINI_ATTEMPTS, &err);
        if (rc != 0 && rc != FERRY_ENOENT)
            st->host->log(st->ctx, FERRY_LOG_WARN,
                          "could not terminate at shutdown (ferryd's next start will): %s",
                          err.message);
        done += n;
    }
}

/* Calls in flight are canceled (the host cancels their ops); the instances
 * known alive are terminated before fini returns. */
static void aws_fini(void *state)
{
    aws_state *st = state;
    st->cloud.closing = 1;
    aws_call_cancel_all(st);
    /* ferryd's stop keeps the instances unless its operator asked otherwise
     * (retire_workers_on_stop): the next start takes them back. */
    const char *retire = st->host->config_get(st->ctx, "retire_workers_on_stop");
    if (retire == NULL || strcmp(retire, "false") != 0)
        aws_retire_known(st);
    ferry_http_client_close(st->http, NULL, NULL);
    aws_state_free(st);
}

static const char *const aws_setting_names[] = {"region",
                                                "zones",
                                                "instance_type",
                                                "image_id",
                                                "subnet_ids",
                                                "security_group_ids",
                                                "instance_profile",
                                                "key_name",
                                                "root_device",
                                                "spot",
                                                "disk_gb",
                                                "endpoint",
                                                "access_key_id",
                                                "secret_access_key",
                                                "session_token",
                                                "max_attempts",
                                                "call_timeout",
                                                "list_page_size",
                                                NULL};

static const ferry_plugin_descriptor aws_descriptor = {
    .struct_size = sizeof(ferry_plugin_descriptor),
    .abi_major = FERRY_ABI_MAJOR,
    .abi_minor = FERRY_ABI_MINOR,
    .kind = FERRY_PLUGIN_COMPUTE,
    .name = "aws",
    .version = "1.0.0",
    .init = aws_init,
    .fini = aws_fini,
    .ops = &aws_ops,
    .settings = aws_setting_names,
};

FERRY_PLUGIN_DEFINE(aws_descriptor)
