/* gcp: the environment's settings (see plugins/gcp/README.md) and the
 * service-account key file. Zones are tried in the order given. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ferry/file.h"

#include "gcp.h"

/* Besides what no name has (spaces, controls, ','): what would change the
 * meaning of a URL or of a JSON string. */
#define GCP_REFUSED "?#\"\\%"
/* A service-account key is about 2 KiB. */
#define GCP_KEY_FILE_MAX (1u << 20)

static int gcp_bad(ferry_error_detail *err, const char *name, const char *value, const char *want)
{
    return ferry_error_set(err, FERRY_ECONFIG, 0, NULL, "gcp: %s \"%s\" %s", name,
                           value ? value : "", want);
}

static int gcp_oom(ferry_error_detail *err)
{
    return ferry_error_set(err, FERRY_ENOMEM, 0, NULL, "gcp: out of memory");
}

void gcp_key_free(gcp_key *key)
{
    if (key->private_key)
        memset(key->private_key, 0, strlen(key->private_key));
    free(key->private_key);
    free(key->client_email);
    free(key->private_key_id);
    free(key->token_uri);
    free(key->project_id);
    memset(key, 0, sizeof(*key));
}

static char *gcp_json_str(json_t *o, const char *name)
{
    const char *s = json_string_value(json_object_get(o, name));
    return s && s[0] ? strdup(s) : NULL;
}

int gcp_key_parse(gcp_key *key, const char *text, ferry_error_detail *err)
{
    memset(key, 0, sizeof(*key));
    json_t *j = json_loads(text, 0, NULL); /* its error text would quote the key */
    if (!json_is_object(j)) {
        json_decref(j);
        return ferry_error_set(err, FERRY_ECONFIG, 0, NULL,
                               "gcp: the credentials are not a JSON service-account key");
    }
    const char *type = json_string_value(json_object_get(j, "type"));
    int wrong_type = type && strcmp(type, "service_account") != 0;
    key->client_email = gcp_json_str(j, "client_email");
    key->private_key = gcp_json_str(j, "private_key");
    key->private_key_id = gcp_json_str(j, "private_key_id");
    key->token_uri = gcp_json_str(j, "token_uri");
    key->project_id = gcp_json_str(j, "project_id");
    json_decref(j);
    const char *missing = wrong_type                  ? "type service_account"
                          : key->client_email == NULL ? "client_email"
                          : key->private_key == NULL  ? "private_key"
                          : key->token_uri == NULL    ? "token_uri"
                                                      : NULL;
    if (missing) {
        gcp_key_free(key);
        return ferry_error_set(err, FERRY_ECONFIG, 0, NULL,
                               "gcp: the service-account key has no %s", missing);
    }
    if (strncmp(key->token_uri, "https://", 8) != 0 && strncmp(key->token_uri, "http://", 7) != 0) {
        gcp_key_free(key);
        return ferry_error_set(err, FERRY_ECONFIG, 0, NULL,
                               "gcp: the service-account key's token_uri is not an http(s) URL");
    }
    return 0;
}

static int gcp_load_key(gcp_config *cfg, gcp_setting_fn get, void *arg, ferry_error_detail *err)
{
    const char *path = get(arg, "credentials_file");
    const char *source = "credentials_file";
    if (path == NULL || path[0] == '\0') {
        path = getenv("GOOGLE_APPLICATION_CREDENTIALS");
        source = "GOOGLE_APPLICATION_CREDENTIALS";
    }
    if (path == NULL || path[0] == '\0')
        return ferry_error_set(err, FERRY_ECONFIG, 0, NULL,
                               "gcp: no credentials: set \"credentials_file\" to a service-account "
                               "key file (or GOOGLE_APPLICATION_CREDENTIALS)");
    char *text;
    size_t len;
    int rc = ferry_file_read(path, GCP_KEY_FILE_MAX, &text, &len);
    if (rc == FERRY_ENOMEM)
        return gcp_oom(err);
    if (rc != 0)
        return ferry_error_set(err, FERRY_ECONFIG, 0, NULL, "gcp: cannot read %s (%s): %s", path,
                               source, rc == FERRY_EIO ? strerror(errno) : ferry_strerror(rc));
    rc = gcp_key_parse(&cfg->key, text, err);
    memset(text, 0, len);
    free(text);
    if (rc != 0) {
        size_t n = strlen(err->message);
        snprintf(err->message + n, sizeof(err->message) - n, " (%s)", path);
        return rc;
    }
    char src[512];
    snprintf(src, sizeof(src), "%s (%s)", path, source);
    cfg->credentials_source = strdup(src);
    return cfg->credentials_source ? 0 : gcp_oom(err);
}

/* One accelerator as the host hands a group over, "type=nvidia-l4;count=1",
 * rewritten in place as "nvidia-l4:1". 0, or -1 when it is not that shape. */
static int gcp_accelerator_group(char *item)
{
    char type[128] = "", count[16] = "1";
    char *save = NULL;
    for (char *kv = strtok_r(item, ";", &save); kv; kv = strtok_r(NULL, ";", &save)) {
        char *eq = strchr(kv, '=');
        if (eq == NULL)
            return -1;
        *eq = '\0';
        if (strcmp(kv, "type") == 0 && strlen(eq + 1) < sizeof(type))
            strcpy(type, eq + 1);
        else if (strcmp(kv, "count") == 0 && strlen(eq + 1) < sizeof(count))
            strcpy(count, eq + 1);
        else
            return -1;
    }
    if (type[0] == '\0')
        return -1;
    snprintf(item, strlen(type) + strlen(count) + 2, "%s:%s", type, count);
    return 0;
}

/* "nvidia-l4:1, nvidia-t4" (count 1 when left out), or groups
 * { type = "nvidia-l4"; count = 1; } as the host hands them over. */
static int gcp_accelerators(gcp_config *cfg, const char *text, ferry_error_detail *err)
{
    ferry_strlist l;
    if (ferry_strlist_parse(&l, text) != 0)
        return gcp_oom(err);
    int rc = 0;
    cfg->accelerators = l.n ? calloc(l.n, sizeof(*cfg->accelerators)) : NULL;
    if (l.n && cfg->accelerators == NULL)
        rc = gcp_oom(err);
    for (size_t i = 0; rc == 0 && i < l.n; i++) {
        if (strchr(l.v[i], '=') != NULL && gcp_accelerator_group(l.v[i]) != 0) {
            rc = gcp_bad(err, "accelerators", text,
                         "a group must be { type = \"nvidia-l4\"; count = 1; }");
            break;
        }
        char *colon = strchr(l.v[i], ':');
        long count = 1;
        if (colon)
            *colon = '\0';
        if (!ferry_setting_word_ok(l.v[i], GCP_REFUSED) || strchr(l.v[i], '/') ||
            (colon && ferry_setting_long(colon + 1, 1, 16, &count) != 0)) {
            rc = gcp_bad(err, "accelerators", text,
                         "must be a list of \"type:count\" (\"nvidia-l4:1\")");
            break;
        }
        cfg->accelerators[i].type = strdup(l.v[i]);
        cfg->accelerators[i].count = (int)count;
        cfg->n_accelerators = i + 1;
        if (cfg->accelerators[i].type == NULL)
            rc = gcp_oom(err);
    }
    ferry_strlist_free(&l);
    return rc;
}

static int gcp_dup_word(char **out, const char *name, const char *value, const char *want,
                        ferry_error_detail *err)
{
    if (!ferry_setting_word_ok(value, GCP_REFUSED))
        return gcp_bad(err, name, value, want);
    *out = strdup(value);
    return *out ? 0 : gcp_oom(err);
}

static int gcp_numbers(gcp_config *cfg, gcp_setting_fn get, void *arg, ferry_error_detail *err)
{
    static const struct {
        const char *name;
        long lo, hi, def;
    } nums[] = {{"disk_gb", 0, 65536, 0},
                {"max_attempts", 1, 20, 5},
                {"call_timeout", 1, 600, 30},
                {"operation_timeout", 1, 3600, 300},
                {"poll_interval_ms", 10, 60000, 1000},
                {"list_page_size", 1, 500, 500}};
    long v[6];
    for (size_t i = 0; i < 6; i++) {
        const char *s = get(arg, nums[i].name);
        v[i] = nums[i].def;
        if (s && s[0] && ferry_setting_long(s, nums[i].lo, nums[i].hi, &v[i]) != 0) {
            char want[64];
            snprintf(want, sizeof(want), "must be a number from %ld to %ld", nums[i].lo,
                     nums[i].hi);
            return gcp_bad(err, nums[i].name, s, want);
        }
    }
    cfg->disk_gb = (int)v[0];
    cfg->max_attempts = (int)v[1];
    cfg->call_timeout_ms = v[2] * 1000;
    cfg->operation_timeout_ms = v[3] * 1000;
    cfg->poll_interval_ms = v[4];
    cfg->list_page_size = (int)v[5];
    return 0;
}

static int gcp_flags(gcp_config *cfg, gcp_setting_fn get, void *arg, ferry_error_detail *err)
{
    const char *spot = get(arg, "spot");
    if (spot && spot[0] && ferry_setting_bool(spot, &cfg->spot) != 0)
        return gcp_bad(err, "spot", spot, "must be true or false");
    const char *ext = get(arg, "external_ip");
    cfg->external_ip = 1;
    if (ext && ext[0] && ferry_setting_bool(ext, &cfg->external_ip) != 0)
        return gcp_bad(err, "external_ip", ext, "must be true or false");
    const char *action = get(arg, "termination_action");
    if (action == NULL || action[0] == '\0')
        action = "DELETE";
    if (strcasecmp(action, "DELETE") != 0 && strcasecmp(action, "STOP") != 0)
        return gcp_bad(err, "termination_action", action, "must be DELETE or STOP");
    cfg->termination_action = strdup(strcasecmp(action, "STOP") == 0 ? "STOP" : "DELETE");
    return cfg->termination_action ? 0 : gcp_oom(err);
}

int gcp_config_load(gcp_config *cfg, gcp_setting_fn get, void *arg, ferry_error_detail *err)
{
    memset(cfg, 0, sizeof(*cfg));
    int rc = gcp_load_key(cfg, get, arg, err);
    if (rc != 0)
        return rc;
    const char *project = get(arg, "project");
    if (project == NULL || project[0] == '\0')
        project = cfg->key.project_id;
    if (project == NULL)
        return ferry_error_set(err, FERRY_ECONFIG, 0, NULL,
                               "gcp: setting \"project\" is required (or the key's project_id)");
    if ((rc = gcp_dup_word(&cfg->project, "project", project, "is not a project id", err)) != 0)
        return rc;
    const char *zones = get(arg, "zones");
    if (zones == NULL || zones[0] == '\0')
        zones = get(arg, "zone");
    if (zones == NULL || zones[0] == '\0')
        return ferry_error_set(err, FERRY_ECONFIG, 0, NULL,
                               "gcp: setting \"zones\" is required ([\"us-central1-a\", ...])");
    if (ferry_strlist_parse(&cfg->zones, zones) != 0)
        return gcp_oom(err);
    for (size_t i = 0; i < cfg->zones.n; i++)
        if (!ferry_setting_word_ok(cfg->zones.v[i], GCP_REFUSED) || strchr(cfg->zones.v[i], '/'))
            return gcp_bad(err, "zones", zones, "must be zone names (\"us-central1-a\")");
    const char *type = get(arg, "machine_type");
    const char *image = get(arg, "image");
    const char *network = get(arg, "network");
    const char *subnet = get(arg, "subnetwork");
    const char *sa = get(arg, "service_account");
    const char *endpoint = get(arg, "endpoint");
    const char *acc = get(arg, "accelerators");
    if ((rc = gcp_dup_word(&cfg->machine_type, "machine_type", type,
                           "is required (\"g2-standard-8\")", err)) != 0 ||
        (rc = gcp_dup_word(&cfg->image, "image", image,
                           "is required (\"projects/debian-cloud/global/images/family/debian-12\")",
                           err)) != 0 ||
        (rc = gcp_dup_word(&cfg->network, "network", network && network[0] ? network : "default",
                           "is not a network name", err)) != 0)
        return rc;
    if (subnet && subnet[0] &&
        (rc = gcp_dup_word(&cfg->subnetwork, "subnetwork", subnet, "is not a subnetwork", err)) !=
            0)
        return rc;
    if (sa && sa[0] &&
        (rc = gcp_dup_word(&cfg->service_account, "service_account", sa,
                           "is not a service account email", err)) != 0)
        return rc;
    if (endpoint == NULL || endpoint[0] == '\0')
        endpoint = GCP_DEFAULT_ENDPOINT;
    if ((strncmp(endpoint, "https://", 8) != 0 && strncmp(endpoint, "http://", 7) != 0) ||
        !ferry_setting_word_ok(endpoint, GCP_REFUSED))
        return gcp_bad(err, "endpoint", endpoint, "must be http(s)://host[:port][/path]");
    size_t n = strlen(endpoint);
    while (n > 8 && endpoint[n - 1] == '/')
        n--;
    if ((cfg->endpoint = strndup(endpoint, n)) == NULL)
        return gcp_oom(err);
    /* An empty list is a mistake, never read as "no GPUs". */
    if (acc && acc[0] == '\0')
        return gcp_bad(err, "accelerators", acc,
                       "must list accelerators ([ { type = \"nvidia-l4\"; count = 1; } ] or "
                       "[ \"nvidia-l4:1\" ]); leave it out for none");
    if (acc && (rc = gcp_accelerators(cfg, acc, err)) != 0)
        return rc;
    if ((rc = gcp_numbers(cfg, get, arg, err)) != 0)
        return rc;
    return gcp_flags(cfg, get, arg, err);
}

void gcp_config_free(gcp_config *cfg)
{
    free(cfg->project);
    ferry_strlist_free(&cfg->zones);
    free(cfg->machine_type);
    free(cfg->image);
    free(cfg->network);
    free(cfg->subnetwork);
    free(cfg->service_account);
    free(cfg->termination_action);
    for (size_t i = 0; i < cfg->n_accelerators; i++)
        free(cfg->accelerators[i].type);
    free(cfg->accelerators);
    free(cfg->endpoint);
    free(cfg->credentials_source);
    gcp_key_free(&cfg->key);
    memset(cfg, 0, sizeof(*cfg));
}
