/* gcp: a compute plugin whose workers are Compute Engine instances.
 *
 * launch: instances.insert in the first zone, then wait on the zone
 * operation; an operation that ends with ZONE_RESOURCE_POOL_EXHAUSTED or a
 * zone/region QUOTA_EXCEEDED (or a zone that kept failing with 5xx) goes on
 * to the next zone. The instance's name is ferry's ("ferry-<worker id>"), so
 * an insert retried after a lost answer meets alreadyExists and takes the
 * instance it made. The startup-script is ferryd's bootstrap script (a
 * one-time token): no Google credential leaves ferryd. terminate:
 * instances.delete (a gone instance is FERRY_ENOENT). list: instances.list
 * in every zone, filtered on the daemon's label, page by page. describe:
 * instances.get, with the reason an instance ended (spot preemption, a stop
 * outside ferry). fini deletes every instance this plugin instance launched
 * or saw alive.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gcp.h"

#define GCP_FINI_TIMEOUT_MS 10000

/* "zone/name" into its parts; 0 or FERRY_EINVAL. */
static int gcp_split_id(const char *id, char *zone, size_t zcap, char *name, size_t ncap)
{
    const char *slash = id ? strchr(id, '/') : NULL;
    if (slash == NULL || slash == id || slash[1] == '\0' || strchr(slash + 1, '/') ||
        (size_t)(slash - id) >= zcap || strlen(slash + 1) >= ncap)
        return FERRY_EINVAL;
    for (const char *p = id; *p; p++)
        if ((unsigned char)*p <= 0x20 || *p == '?' || *p == '#' || *p == '%')
            return FERRY_EINVAL;
    snprintf(zone, zcap, "%.*s", (int)(slash - id), id);
    snprintf(name, ncap, "%s", slash + 1);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* launch, zone by zone                                                     */

typedef struct gcp_launch {
    ferry_cloud_launch req; /* the request's copy, and the note */
    gcp_state *st;
    size_t zone;
    char name[64];
    char op_url[512]; /* the zone operation being waited on */
    uint64_t op_deadline;
    uv_timer_t timer;
    int timer_live;
    struct gcp_launch *next; /* st->launches */
} gcp_launch;

static void gcp_launch_unlink(gcp_launch *l)
{
    for (gcp_launch **p = &l->st->launches; *p; p = &(*p)->next)
        if (*p == l) {
            *p = l->next;
            return;
        }
}

static void gcp_launch_timer_closed(uv_handle_t *h)
{
    gcp_launch *l = h->data;
    free(l);
}

static void gcp_launch_free(gcp_launch *l)
{
    gcp_launch_unlink(l);
    ferry_cloud_launch_clear(&l->req);
    if (l->timer_live) {
        l->timer_live = 0;
        uv_close((uv_handle_t *)&l->timer, gcp_launch_timer_closed);
    } else
        free(l);
}

static const char *gcp_zone_name(const gcp_launch *l)
{
    return l->st->cfg.zones.v[l->zone];
}

static void gcp_launch_fail(gcp_launch *l, const ferry_error_detail *last)
{
    ferry_cloud_launch_failed(&l->st->cloud, &l->req, last);
    gcp_launch_free(l);
}

static void gcp_launch_succeeded(gcp_launch *l)
{
    char id[192];
    snprintf(id, sizeof(id), "%s/%s", gcp_zone_name(l), l->name);
    ferry_cloud_launched(&l->st->cloud, &l->req, gcp_zone_name(l), id, l->name);
    gcp_launch_free(l);
}

/* Whether the next zone may do better: no capacity, a zone quota, or a
 * zone that kept failing with 5xx. Throttling, project quotas, credentials
 * and settings are the same in every zone. */
static int gcp_next_zone_helps(const ferry_error_detail *err)
{
    return err->code == FERRY_ECAPACITY ||
           (err->code == FERRY_EPROVIDER && strncmp(err->provider_code, "HTTP5", 5) == 0) ||
           strcmp(err->provider_code, "backendError") == 0 ||
           strcmp(err->provider_code, "internalError") == 0;
}

static int gcp_launch_try(gcp_launch *l);

/* This zone said no: the next one, or the end. */
static void gcp_launch_zone_failed(gcp_launch *l, const ferry_error_detail *err)
{
    ferry_cloud_note_error(l->req.note, sizeof(l->req.note), gcp_zone_name(l), err);
    if (gcp_next_zone_helps(err) && l->zone + 1 < l->st->cfg.zones.n) {
        l->zone++;
        int rc = gcp_launch_try(l);
        if (rc == 0)
            return;
        ferry_error_detail d;
        ferry_error_set(&d, rc, 0, NULL, "Compute instances.insert: %s", ferry_strerror(rc));
        gcp_launch_fail(l, &d);
        return;
    }
    gcp_launch_fail(l, err);
}

static void gcp_launch_poll(gcp_launch *l);

static void gcp_launch_timer(uv_timer_t *t)
{
    gcp_launch_poll(t->data);
}

/* An Operation: done (well or not), or wait and ask again. */
static void gcp_launch_operation(gcp_launch *l, const char *body, size_t len)
{
    gcp_operation op;
    ferry_error_detail d;
    if (gcp_operation_parse(body, len, &op) != 0) {
        ferry_error_set(&d, FERRY_EPROTO, 1, NULL,
                        "Compute instances.insert: an operation we cannot read");
        gcp_launch_zone_failed(l, &d);
        return;
    }
    if (strcmp(op.status, "DONE") != 0) {
        if (op.name[0] && l->op_url[0] == '\0') {
            char *u = gcp_instances_url(&l->st->cfg, gcp_zone_name(l), NULL);
            if (u) {
                /* ".../zones/<z>/instances" to ".../zones/<z>/operations/<op>" */
                char *at = strrchr(u, '/');
                *at = '\0';
                snprintf(l->op_url, sizeof(l->op_url), "%s/operations/%s", u, op.name);
            }
            free(u);
        }
        if (l->op_url[0] == '\0' || uv_now(l->st->loop) > l->op_deadline) {
            ferry_error_set(&d, FERRY_ETIMEDOUT, 1, "OPERATION_TIMEOUT",
                            "Compute instances.insert: the operation did not finish in %ld s",
                            l->st->cfg.operation_timeout_ms / 1000);
            gcp_launch_fail(l, &d); /* the instance may come: its name is the worker's */
            return;
        }
        if (!l->timer_live) {
            uv_timer_init(l->st->loop, &l->timer);
            l->timer.data = l;
            l->timer_live = 1;
        }
        uv_timer_start(&l->timer, gcp_launch_timer, (uint64_t)l->st->cfg.poll_interval_ms, 0);
        return;
    }
    if (op.error_code[0] == '\0') {
        gcp_launch_succeeded(l);
        return;
    }
    int code = gcp_operation_error_code(op.error_code);
    if (code == FERRY_EEXIST) { /* our name: an earlier try of this launch */
        gcp_launch_succeeded(l);
        return;
    }
    ferry_error_set(&d, code, code == FERRY_ECAPACITY, op.error_code,
                    "Compute instances.insert: %s: %s", op.error_code, op.error_message);
    gcp_launch_zone_failed(l, &d);
}

static void gcp_launch_answer(void *arg, int status, const char *body, size_t len,
                              const ferry_error_detail *err)
{
    gcp_launch *l = arg;
    if (l->st->cloud.closing) { /* fini: the host cancels the op */
        gcp_launch_free(l);
        return;
    }
    if (status == 0) {
        gcp_launch_operation(l, body, len);
        return;
    }
    if (status == FERRY_EEXIST) {
        gcp_launch_succeeded(l);
        return;
    }
    gcp_launch_zone_failed(l, err);
}

static void gcp_launch_poll(gcp_launch *l)
{
    int rc = gcp_call_start(l->st, "zoneOperations.get", "GET", strdup(l->op_url), NULL,
                            gcp_launch_answer, l);
    if (rc != 0) {
        ferry_error_detail d;
        ferry_error_set(&d, rc, 1, NULL, "Compute zoneOperations.get: %s", ferry_strerror(rc));
        gcp_launch_fail(l, &d);
    }
}

static int gcp_launch_try(gcp_launch *l)
{
    gcp_launch_spec s = {.daemon_id = l->req.daemon_id,
                         .environment = l->req.environment,
                         .worker_id = l->req.worker_id,
                         .user_data = l->req.user_data,
                         .zone = gcp_zone_name(l)};
    json_t *b = gcp_insert_body(&l->st->cfg, &s);
    char *body = b ? json_dumps(b, JSON_COMPACT) : NULL;
    json_decref(b);
    if (body == NULL)
        return FERRY_ENOMEM;
    l->op_url[0] = '\0';
    l->op_deadline = uv_now(l->st->loop) + (uint64_t)l->st->cfg.operation_timeout_ms;
    return gcp_call_start(l->st, "instances.insert", "POST",
                          gcp_instances_url(&l->st->cfg, gcp_zone_name(l), NULL), body,
                          gcp_launch_answer, l);
}

static int gcp_op_launch(void *state, const ferry_launch_request *req, ferry_op *op)
{
    gcp_state *st = state;
    if (req && req->daemon_id && req->daemon_id[0] == '\0')
        return FERRY_EINVAL; /* the label filter of list needs one */
    gcp_launch *l = calloc(1, sizeof(*l));
    if (l == NULL)
        return FERRY_ENOMEM;
    int rc = ferry_cloud_launch_init(&l->req, req, GCP_USER_DATA_MAX, st->cfg.machine_type, op);
    if (rc != 0) {
        free(l);
        return rc;
    }
    l->st = st;
    gcp_instance_name(req->worker_id, l->name, sizeof(l->name));
    l->next = st->launches;
    st->launches = l;
    rc = gcp_launch_try(l);
    if (rc != 0)
        gcp_launch_free(l);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* terminate, list, describe: Compute's requests and answers for the kit    */

/* One call about one instance ("zone/name"). */
static int gcp_instance_call(ferry_cloud_task *t, const char *what, const char *method,
                             ferry_cloud_answer_fn done)
{
    gcp_state *st = t->state;
    char zone[64], name[64];
    if (gcp_split_id(t->instance_id, zone, sizeof(zone), name, sizeof(name)) != 0)
        return FERRY_EINVAL;
    return gcp_call_start(st, what, method, gcp_instances_url(&st->cfg, zone, name), NULL, done, t);
}

static int gcp_terminate_call(ferry_cloud_task *t, ferry_cloud_answer_fn done)
{
    return gcp_instance_call(t, "instances.delete", "DELETE", done);
}

static int gcp_describe_call(ferry_cloud_task *t, ferry_cloud_answer_fn done)
{
    return gcp_instance_call(t, "instances.get", "GET", done);
}

/* One zone's page (the kit goes through the zones: t->place). */
static int gcp_list_page(ferry_cloud_task *t, const char *page_token, ferry_cloud_answer_fn done)
{
    gcp_state *st = t->state;
    return gcp_call_start(
        st, "instances.list", "GET",
        gcp_list_url(&st->cfg, st->cfg.zones.v[t->place], t->daemon_id, page_token), NULL, done, t);
}

static int gcp_found(ferry_cloud_task *t, const gcp_instance *in)
{
    ferry_cloud_instance view = {.id = in->id,
                                 .state = in->state,
                                 .worker_id = in->worker_id,
                                 .environment = in->environment,
                                 .zone = in->zone,
                                 .reason = in->reason,
                                 .ending = gcp_state_ending(in->state)};
    return ferry_cloud_found(t, &view);
}

static int gcp_list_parse(ferry_cloud_task *t, const char *body, size_t len, char **next_token)
{
    gcp_instances got = {0};
    int rc = gcp_instances_parse(body, len, &got);
    for (size_t i = 0; rc == 0 && i < got.n; i++)
        rc = gcp_found(t, &got.v[i]);
    if (rc == 0) {
        *next_token = got.next_page_token; /* taken */
        got.next_page_token = NULL;
    }
    gcp_instances_free(&got);
    return rc;
}

static int gcp_describe_parse(ferry_cloud_task *t, const char *body, size_t len)
{
    gcp_instance in;
    int rc = gcp_instance_parse(body, len, &in);
    return rc == 0 ? gcp_found(t, &in) : rc;
}

static const ferry_cloud_provider gcp_cloud = {
    .name = "gcp",
    .list_what = "Compute instances.list",
    .describe_what = "Compute instances.get",
    .not_found_code = "notFound",
    .list_page = gcp_list_page,
    .list_parse = gcp_list_parse,
    .describe = gcp_describe_call,
    .describe_parse = gcp_describe_parse,
    .terminate = gcp_terminate_call,
};

static int gcp_op_terminate(void *state, const char *instance_id, ferry_op *op)
{
    return ferry_cloud_terminate(&((gcp_state *)state)->cloud, instance_id, op);
}

/* Every zone of the environment, one after the other. */
static int gcp_op_list(void *state, const char *daemon_id, ferry_op *op)
{
    gcp_state *st = state;
    return ferry_cloud_list(&st->cloud, daemon_id, st->cfg.zones.n, op);
}

static int gcp_op_describe(void *state, const char *instance_id, ferry_op *op)
{
    return ferry_cloud_describe(&((gcp_state *)state)->cloud, instance_id, op);
}

static const ferry_compute_ops gcp_ops = {
    .struct_size = sizeof(ferry_compute_ops),
    .launch = gcp_op_launch,
    .terminate = gcp_op_terminate,
    .list = gcp_op_list,
    .describe = gcp_op_describe,
    .flags = FERRY_COMPUTE_USER_DATA,
};

/* ------------------------------------------------------------------------ */
/* Lifecycle                                                                */

static void gcp_state_free(gcp_state *st)
{
    gcp_config_free(&st->cfg);
    ferry_strlist_free(&st->cloud.known);
    if (st->token)
        memset(st->token, 0, strlen(st->token));
    free(st->token);
    free(st);
}

static const char *gcp_setting(void *arg, const char *name)
{
    gcp_state *st = arg;
    return st->host->config_get(st->ctx, name);
}

static int gcp_init(ferry_plugin_ctx *ctx, const ferry_host_api *host, void **state,
                    ferry_error_detail *err)
{
    gcp_state *st = calloc(1, sizeof(*st));
    if (st == NULL)
        return ferry_error_set(err, FERRY_ENOMEM, 0, NULL, "gcp: out of memory");
    st->ctx = ctx;
    st->host = host;
    st->loop = host->loop(ctx);
    st->cloud = (ferry_cloud){.provider = &gcp_cloud, .state = st, .ctx = ctx, .host = host};
    int rc = gcp_config_load(&st->cfg, gcp_setting, st, err);
    if (rc == 0 && ferry_http_client_new(st->loop, &st->http) != 0)
        rc = ferry_error_set(err, FERRY_ENOMEM, 0, NULL, "gcp: cannot make an HTTP client");
    if (rc != 0) {
        gcp_state_free(st);
        return rc;
    }
    host->log(ctx, FERRY_LOG_INFO,
              "Compute Engine at %s, project %s, %s in %zu zone%s%s, service account %s from %s",
              st->cfg.endpoint, st->cfg.project, st->cfg.machine_type, st->cfg.zones.n,
              st->cfg.zones.n == 1 ? "" : "s", st->cfg.spot ? " (spot)" : "",
              st->cfg.key.client_email, st->cfg.credentials_source);
    *state = st;
    return 0;
}

/* What this instance launched or saw alive, deleted before fini returns. */
static void gcp_retire_known(gcp_state *st)
{
    const ferry_strlist *known = &st->cloud.known;
    if (known->n == 0)
        return;
    st->host->log(st->ctx, FERRY_LOG_INFO, "deleting %zu instance%s at shutdown", known->n,
                  known->n == 1 ? "" : "s");
    for (size_t i = 0; i < known->n; i++) {
        char zone[64], name[64];
        if (gcp_split_id(known->v[i], zone, sizeof(zone), name, sizeof(name)) != 0)
            continue;
        ferry_error_detail err = {0};
        int rc =
            gcp_call_blocking(st, "instances.delete", "DELETE",
                              gcp_instances_url(&st->cfg, zone, name), GCP_FINI_TIMEOUT_MS, &err);
        if (rc != 0 && rc != FERRY_ENOENT) {
            st->host->log(st->ctx, FERRY_LOG_WARN,
                          "could not delete %s at shutdown (ferryd's next start will): %s",
                          known->v[i], err.message);
            if (rc == FERRY_EAUTH || rc == FERRY_EPERM || rc == FERRY_ECONN ||
                rc == FERRY_ETIMEDOUT)
                break; /* the rest would say the same */
        }
    }
}

/* Calls in flight are canceled (the host cancels their ops); launches
 * waiting on an operation are dropped; the instances known alive are
 * deleted before fini returns. */
static void gcp_fini(void *state)
{
    gcp_state *st = state;
    st->cloud.closing = 1;
    gcp_call_cancel_all(st);
    while (st->launches) /* those waiting for their next operation poll */
        gcp_launch_free(st->launches);
    /* ferryd's stop keeps the instances unless its operator asked otherwise
     * (retire_workers_on_stop): the next start takes them back. */
    const char *retire = st->host->config_get(st->ctx, "retire_workers_on_stop");
    if (retire == NULL || strcmp(retire, "false") != 0)
        gcp_retire_known(st);
    ferry_http_client_close(st->http, NULL, NULL);
    gcp_state_free(st);
}

static const char *const gcp_setting_names[] = {"project",
                                                "zones",
                                                "zone",
                                                "machine_type",
                                                "image",
                                                "disk_gb",
                                                "network",
                                                "subnetwork",
                                                "service_account",
                                                "spot",
                                                "termination_action",
                                                "accelerators",
                                                "external_ip",
                                                "credentials_file",
                                                "endpoint",
                                                "max_attempts",
                                                "call_timeout",
                                                "operation_timeout",
                                                "poll_interval_ms",
                                                "list_page_size",
                                                NULL};

static const ferry_plugin_descriptor gcp_descriptor = {
    .struct_size = sizeof(ferry_plugin_descriptor),
    .abi_major = FERRY_ABI_MAJOR,
    .abi_minor = FERRY_ABI_MINOR,
    .kind = FERRY_PLUGIN_COMPUTE,
    .name = "gcp",
    .version = "1.0.0",
    .init = gcp_init,
    .fini = gcp_fini,
    .ops = &gcp_ops,
    .settings = gcp_setting_names,
};

FERRY_PLUGIN_DEFINE(gcp_descriptor)
