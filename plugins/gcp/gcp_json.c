/* gcp: the OAuth2 assertion and token answer; Compute Engine request
 * bodies, answers and errors (jansson). No I/O. */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ferry/jwt.h"
#include "gcp.h"

/* ------------------------------------------------------------------------ */
/* OAuth2                                                                   */

char *gcp_claims_json(const char *iss, const char *scope, const char *aud, long long iat)
{
    json_t *c = json_object();
    if (c == NULL)
        return NULL;
    json_object_set_new(c, "iss", json_string(iss));
    json_object_set_new(c, "scope", json_string(scope));
    json_object_set_new(c, "aud", json_string(aud));
    json_object_set_new(c, "iat", json_integer(iat));
    json_object_set_new(c, "exp", json_integer(iat + GCP_JWT_LIFETIME));
    char *text = json_dumps(c, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(c);
    return text;
}

int gcp_assertion(const gcp_key *key, const char *scope, long long iat, char **out,
                  ferry_error_detail *err)
{
    *out = NULL;
    json_t *h = json_object();
    if (h) {
        json_object_set_new(h, "alg", json_string("RS256"));
        json_object_set_new(h, "typ", json_string("JWT"));
        if (key->private_key_id)
            json_object_set_new(h, "kid", json_string(key->private_key_id));
    }
    char *header = h ? json_dumps(h, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(h);
    char *claims = gcp_claims_json(key->client_email, scope, key->token_uri, iat);
    int rc = header && claims ? ferry_jwt_rs256(key->private_key, header, claims, out, err)
                              : ferry_error_set(err, FERRY_ENOMEM, 0, NULL, "gcp: out of memory");
    free(header);
    free(claims);
    if (rc == FERRY_EINVAL)
        rc = ferry_error_set(err, FERRY_EAUTH, 0, NULL,
                             "gcp: the service-account key's private_key is not a usable RSA key");
    return rc;
}

#define GCP_GRANT "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion="

char *gcp_token_body(const char *assertion)
{
    /* A JWT is base64url and dots: nothing to encode. */
    size_t n = strlen(GCP_GRANT) + strlen(assertion) + 1;
    char *body = malloc(n);
    if (body)
        snprintf(body, n, "%s%s", GCP_GRANT, assertion);
    return body;
}

int gcp_token_parse(const char *body, char **token, long *expires_in, ferry_error_detail *err)
{
    *token = NULL;
    json_t *j = json_loads(body ? body : "", 0, NULL);
    const char *t = json_string_value(json_object_get(j, "access_token"));
    const char *e = json_string_value(json_object_get(j, "error"));
    const char *d = json_string_value(json_object_get(j, "error_description"));
    int rc = 0;
    if (t && t[0]) {
        json_t *exp = json_object_get(j, "expires_in");
        *expires_in = json_is_integer(exp) ? (long)json_integer_value(exp) : 3600;
        if ((*token = strdup(t)) == NULL)
            rc = ferry_error_set(err, FERRY_ENOMEM, 1, NULL, "gcp: out of memory");
    } else if (e)
        rc = ferry_error_set(err, FERRY_EAUTH, 0, e, "OAuth2 token: %.64s%s%.300s", e,
                             d ? ": " : "", d ? d : "");
    else
        rc = ferry_error_set(err, FERRY_EPROTO, 1, NULL, "OAuth2 token: an answer we cannot read");
    json_decref(j);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Names                                                                    */

static void gcp_clean(const char *s, char *buf, size_t cap, int underscore)
{
    size_t o = 0;
    for (const char *p = s ? s : ""; *p && o + 1 < cap && o < 63; p++) {
        char c = (char)tolower((unsigned char)*p);
        if (!(isalnum((unsigned char)c) || c == '-' || (underscore && c == '_')) ||
            (unsigned char)c > 0x7f)
            c = '-';
        buf[o++] = c;
    }
    buf[o] = '\0';
}

void gcp_instance_name(const char *worker_id, char *buf, size_t cap)
{
    char tmp[64];
    gcp_clean(worker_id, tmp, sizeof(tmp), 0);
    snprintf(buf, cap, "ferry-%.57s", tmp);
    size_t n = strlen(buf);
    while (n > 0 && buf[n - 1] == '-')
        buf[--n] = '\0';
}

void gcp_label_value(const char *s, char *buf, size_t cap)
{
    gcp_clean(s, buf, cap, 1);
}

/* ------------------------------------------------------------------------ */
/* Requests                                                                 */

static char *gcp_fmt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static char *gcp_fmt(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *out = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (out) {
        va_start(ap, fmt);
        vsnprintf(out, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    return out;
}

/* A partial URL for a global resource ("default" to
 * "global/networks/default"); full or partial paths kept. */
static char *gcp_resource(const char *kind, const char *name)
{
    if (strchr(name, '/'))
        return strdup(name);
    return gcp_fmt("global/%s/%s", kind, name);
}

json_t *gcp_insert_body(const gcp_config *cfg, const gcp_launch_spec *s)
{
    char name[64], daemon[64], worker[64], env[64];
    gcp_instance_name(s->worker_id, name, sizeof(name));
    gcp_label_value(s->daemon_id, daemon, sizeof(daemon));
    gcp_label_value(s->worker_id, worker, sizeof(worker));
    gcp_label_value(s->environment, env, sizeof(env));
    char *mt = gcp_fmt("zones/%s/machineTypes/%s", s->zone, cfg->machine_type);
    char *net = gcp_resource("networks", cfg->network);
    char *disk_gb = cfg->disk_gb > 0 ? gcp_fmt("%d", cfg->disk_gb) : NULL;
    json_t *b = NULL;
    if (mt == NULL || net == NULL || (cfg->disk_gb > 0 && disk_gb == NULL))
        goto out;
    json_t *init = json_pack("{s:s}", "sourceImage", cfg->image);
    if (init && disk_gb)
        json_object_set_new(init, "diskSizeGb", json_string(disk_gb));
    json_t *nic = json_pack("{s:s}", "network", net);
    if (nic && cfg->subnetwork)
        json_object_set_new(nic, "subnetwork", json_string(cfg->subnetwork));
    if (nic && cfg->external_ip)
        json_object_set_new(
            nic, "accessConfigs",
            json_pack("[{s:s, s:s}]", "type", "ONE_TO_ONE_NAT", "name", "External NAT"));
    b = json_pack("{s:s, s:s, s:{s:s, s:s, s:s}, s:[{s:b, s:b, s:s, s:o*}], s:[o*], "
                  "s:{s:[{s:s, s:s}]}}",
                  "name", name, "machineType", mt, "labels", GCP_LABEL_DAEMON, daemon,
                  GCP_LABEL_WORKER, worker, GCP_LABEL_ENVIRONMENT, env, "disks", "boot", 1,
                  "autoDelete", 1, "type", "PERSISTENT", "initializeParams", init,
                  "networkInterfaces", nic, "metadata", "items", "key", "startup-script", "value",
                  s->user_data ? s->user_data : "");
    if (b == NULL)
        goto out;
    if (cfg->service_account)
        json_object_set_new(b, "serviceAccounts",
                            json_pack("[{s:s, s:[s]}]", "email", cfg->service_account, "scopes",
                                      "https://www.googleapis.com/auth/cloud-platform"));
    json_t *sched = json_object();
    if (cfg->spot) {
        /* Spot VMs cannot restart on their own; what ends them is
         * termination_action: DELETE (the default) leaves nothing billed. */
        json_object_set_new(sched, "provisioningModel", json_string("SPOT"));
        json_object_set_new(sched, "instanceTerminationAction",
                            json_string(cfg->termination_action));
        json_object_set_new(sched, "automaticRestart", json_false());
        json_object_set_new(sched, "onHostMaintenance", json_string("TERMINATE"));
    }
    if (cfg->n_accelerators) {
        json_t *acc = json_array();
        for (size_t i = 0; i < cfg->n_accelerators; i++) {
            char *t = gcp_fmt("zones/%s/acceleratorTypes/%s", s->zone, cfg->accelerators[i].type);
            json_array_append_new(acc, json_pack("{s:s*, s:i}", "acceleratorType", t,
                                                 "acceleratorCount", cfg->accelerators[i].count));
            free(t);
        }
        json_object_set_new(b, "guestAccelerators", acc);
        /* GPUs cannot live-migrate. */
        json_object_set_new(sched, "onHostMaintenance", json_string("TERMINATE"));
        if (!cfg->spot)
            json_object_set_new(sched, "automaticRestart", json_true());
    }
    if (json_object_size(sched))
        json_object_set_new(b, "scheduling", sched);
    else
        json_decref(sched);
out:
    free(mt);
    free(net);
    free(disk_gb);
    return b;
}

char *gcp_instances_url(const gcp_config *cfg, const char *zone, const char *name)
{
    if (name)
        return gcp_fmt("%s/projects/%s/zones/%s/instances/%s", cfg->endpoint, cfg->project, zone,
                       name);
    return gcp_fmt("%s/projects/%s/zones/%s/instances", cfg->endpoint, cfg->project, zone);
}

char *gcp_list_url(const gcp_config *cfg, const char *zone, const char *daemon_id,
                   const char *page_token)
{
    char daemon[64], token[512] = "";
    gcp_label_value(daemon_id, daemon, sizeof(daemon));
    if (page_token) { /* opaque: percent-encode all but unreserved */
        size_t o = 0;
        for (const char *p = page_token; *p && o + 4 < sizeof(token); p++) {
            unsigned char c = (unsigned char)*p;
            if (isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~')
                token[o++] = (char)c;
            else
                o += (size_t)snprintf(token + o, sizeof(token) - o, "%%%02X", c);
        }
        token[o] = '\0';
    }
    /* filter=labels.ferry-daemon = "<id>" */
    return gcp_fmt("%s/projects/%s/zones/%s/instances?filter=labels.%s%%3D%%22%s%%22"
                   "&maxResults=%d%s%s",
                   cfg->endpoint, cfg->project, zone, GCP_LABEL_DAEMON, daemon, cfg->list_page_size,
                   page_token ? "&pageToken=" : "", token);
}

/* ------------------------------------------------------------------------ */
/* Answers                                                                  */

static void gcp_copy(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src ? src : "");
}

/* The last path segment of a URL ("…/zones/us-central1-a"). */
static const char *gcp_last_segment(const char *s)
{
    const char *slash = s ? strrchr(s, '/') : NULL;
    return slash ? slash + 1 : s;
}

int gcp_operation_parse(const char *body, size_t len, gcp_operation *op)
{
    memset(op, 0, sizeof(*op));
    json_t *j = json_loadb(body ? body : "", body ? len : 0, 0, NULL);
    const char *status = json_string_value(json_object_get(j, "status"));
    if (!json_is_object(j) || status == NULL) {
        json_decref(j);
        return FERRY_EPROTO;
    }
    gcp_copy(op->name, sizeof(op->name), json_string_value(json_object_get(j, "name")));
    gcp_copy(op->status, sizeof(op->status), status);
    gcp_copy(op->zone, sizeof(op->zone),
             gcp_last_segment(json_string_value(json_object_get(j, "zone"))));
    json_t *e0 = json_array_get(json_object_get(json_object_get(j, "error"), "errors"), 0);
    if (e0) {
        const char *code = json_string_value(json_object_get(e0, "code"));
        gcp_copy(op->error_code, sizeof(op->error_code), code ? code : "UNKNOWN");
        gcp_copy(op->error_message, sizeof(op->error_message),
                 json_string_value(json_object_get(e0, "message")));
    }
    op->http_error_status = (long)json_integer_value(json_object_get(j, "httpErrorStatusCode"));
    json_decref(j);
    return 0;
}

const char *gcp_state_of(const char *s)
{
    if (s == NULL)
        return "pending";
    if (strcmp(s, "PROVISIONING") == 0 || strcmp(s, "STAGING") == 0)
        return "pending";
    if (strcmp(s, "RUNNING") == 0 || strcmp(s, "REPAIRING") == 0)
        return "running";
    if (strcmp(s, "STOPPING") == 0 || strcmp(s, "SUSPENDING") == 0)
        return "stopping";
    if (strcmp(s, "STOPPED") == 0 || strcmp(s, "SUSPENDED") == 0 || strcmp(s, "TERMINATED") == 0)
        return "stopped"; /* GCE's TERMINATED is a stopped VM: it may start again */
    return "pending";
}

int gcp_state_ending(const char *state)
{
    return strcmp(state, "stopping") == 0 || strcmp(state, "stopped") == 0 ||
           strcmp(state, "shutting-down") == 0 || strcmp(state, "terminated") == 0;
}

static void gcp_instance_from(json_t *o, gcp_instance *in)
{
    memset(in, 0, sizeof(*in));
    gcp_copy(in->name, sizeof(in->name), json_string_value(json_object_get(o, "name")));
    gcp_copy(in->zone, sizeof(in->zone),
             gcp_last_segment(json_string_value(json_object_get(o, "zone"))));
    snprintf(in->id, sizeof(in->id), "%s/%s", in->zone, in->name);
    gcp_copy(in->status, sizeof(in->status), json_string_value(json_object_get(o, "status")));
    gcp_copy(in->state, sizeof(in->state), gcp_state_of(in->status));
    json_t *labels = json_object_get(o, "labels");
    gcp_copy(in->daemon_id, sizeof(in->daemon_id),
             json_string_value(json_object_get(labels, GCP_LABEL_DAEMON)));
    gcp_copy(in->worker_id, sizeof(in->worker_id),
             json_string_value(json_object_get(labels, GCP_LABEL_WORKER)));
    gcp_copy(in->environment, sizeof(in->environment),
             json_string_value(json_object_get(labels, GCP_LABEL_ENVIRONMENT)));
    if (gcp_state_ending(in->state)) {
        const char *msg = json_string_value(json_object_get(o, "statusMessage"));
        const char *model = json_string_value(
            json_object_get(json_object_get(o, "scheduling"), "provisioningModel"));
        int spot = model && strcmp(model, "SPOT") == 0;
        snprintf(in->reason, sizeof(in->reason), "%s%s%s",
                 spot ? "spot preemption" : "instance stopped outside ferry", msg ? ": " : "",
                 msg ? msg : "");
    }
}

int gcp_instance_parse(const char *body, size_t len, gcp_instance *out)
{
    json_t *j = json_loadb(body ? body : "", body ? len : 0, 0, NULL);
    int ok = json_is_object(j) && json_is_string(json_object_get(j, "name")) &&
             json_is_string(json_object_get(j, "zone"));
    if (ok)
        gcp_instance_from(j, out);
    json_decref(j);
    return ok ? 0 : FERRY_EPROTO;
}

int gcp_instances_parse(const char *body, size_t len, gcp_instances *out)
{
    json_t *j = json_loadb(body ? body : "", body ? len : 0, 0, NULL);
    if (!json_is_object(j)) {
        json_decref(j);
        return FERRY_EPROTO;
    }
    json_t *items = json_object_get(j, "items");
    size_t n = json_array_size(items);
    int rc = 0;
    if (n) {
        gcp_instance *v = realloc(out->v, (out->n + n) * sizeof(*v));
        if (v == NULL)
            rc = FERRY_ENOMEM;
        else {
            out->v = v;
            for (size_t i = 0; i < n; i++)
                gcp_instance_from(json_array_get(items, i), &out->v[out->n++]);
        }
    }
    free(out->next_page_token);
    const char *next = json_string_value(json_object_get(j, "nextPageToken"));
    out->next_page_token = next && next[0] ? strdup(next) : NULL;
    json_decref(j);
    return rc;
}

void gcp_instances_free(gcp_instances *l)
{
    free(l->v);
    free(l->next_page_token);
    memset(l, 0, sizeof(*l));
}

int gcp_error_parse(const char *body, size_t len, char *reason, size_t reason_cap, char *message,
                    size_t message_cap)
{
    reason[0] = message[0] = '\0';
    json_t *j = json_loadb(body ? body : "", body ? len : 0, 0, NULL);
    json_t *e = json_object_get(j, "error");
    if (!json_is_object(e)) {
        json_decref(j);
        return 0;
    }
    json_t *e0 = json_array_get(json_object_get(e, "errors"), 0);
    const char *r = json_string_value(json_object_get(e0, "reason"));
    const char *status = json_string_value(json_object_get(e, "status"));
    gcp_copy(reason, reason_cap, r ? r : status);
    gcp_copy(message, message_cap, json_string_value(json_object_get(e, "message")));
    json_decref(j);
    return 1;
}

int gcp_error_code(const char *reason, long http_status, int *retry)
{
    *retry = 0;
    if (strcmp(reason, "rateLimitExceeded") == 0 || strcmp(reason, "userRateLimitExceeded") == 0 ||
        http_status == 429) {
        *retry = 1;
        return FERRY_ETHROTTLED;
    }
    if (strcmp(reason, "quotaExceeded") == 0)
        return FERRY_EQUOTA;
    if (strcmp(reason, "notFound") == 0 || http_status == 404)
        return FERRY_ENOENT;
    if (strcmp(reason, "alreadyExists") == 0 || http_status == 409)
        return FERRY_EEXIST;
    if (http_status == 401)
        return FERRY_EAUTH;
    if (http_status == 403)
        return FERRY_EPERM;
    if (http_status >= 500) {
        *retry = 1;
        return FERRY_EPROVIDER;
    }
    if (http_status == 400)
        return FERRY_EINVAL;
    return FERRY_EPROVIDER;
}

int gcp_operation_error_code(const char *code)
{
    if (strcmp(code, "ZONE_RESOURCE_POOL_EXHAUSTED") == 0 ||
        strcmp(code, "ZONE_RESOURCE_POOL_EXHAUSTED_WITH_DETAILS") == 0 ||
        strcmp(code, "QUOTA_EXCEEDED") == 0 || strcmp(code, "RESOURCE_NOT_READY") == 0 ||
        strcmp(code, "UNSUPPORTED_OPERATION") == 0)
        return FERRY_ECAPACITY;
    if (strcmp(code, "RESOURCE_ALREADY_EXISTS") == 0)
        return FERRY_EEXIST;
    if (strcmp(code, "RESOURCE_NOT_FOUND") == 0)
        return FERRY_ENOENT;
    return FERRY_EPROVIDER;
}
