/* aws: the environment's settings (see README.md's AWS paragraph).
 *
 * Zones are tried in the order given; subnet_ids, when set, name one subnet
 * per zone (a subnet lies in one zone), so a launch in zones[i] goes into
 * subnet_ids[i]. Without zones the subnets alone are the places to try.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "aws.h"

static int aws_bad(ferry_error_detail *err, const char *name, const char *value, const char *want)
{
    return ferry_error_set(err, FERRY_ECONFIG, 0, NULL, "aws: %s \"%s\" %s", name,
                           value ? value : "", want);
}

/* "https://host[:port][/path]" into the URL, Host header and path. */
static int aws_endpoint(aws_config *cfg, const char *endpoint, ferry_error_detail *err)
{
    const char *sep = strstr(endpoint, "://");
    size_t scheme_len = sep ? (size_t)(sep - endpoint) : 0;
    if (!(scheme_len == 5 && strncasecmp(endpoint, "https", 5) == 0) &&
        !(scheme_len == 4 && strncasecmp(endpoint, "http", 4) == 0))
        return aws_bad(err, "endpoint", endpoint, "must be http(s)://host[:port][/path]");
    const char *host = sep + 3;
    size_t host_len = strcspn(host, "/?#@");
    if (host_len == 0 || strpbrk(host, "?#@ ") != NULL)
        return aws_bad(err, "endpoint", endpoint, "must be http(s)://host[:port][/path]");
    size_t n = strlen(endpoint);
    while (n > scheme_len + 3 + host_len && endpoint[n - 1] == '/')
        n--; /* "http://h:1/x/" and "http://h:1/x" are one endpoint */
    cfg->host = strndup(host, host_len);
    cfg->url = strndup(endpoint, n);
    /* What is signed is what curl sends: the path, "/" when there is none. */
    size_t path_at = scheme_len + 3 + host_len;
    cfg->path = n > path_at ? strndup(endpoint + path_at, n - path_at) : strdup("/");
    if (!cfg->host || !cfg->path || !cfg->url)
        return ferry_error_set(err, FERRY_ENOMEM, 0, NULL, "aws: out of memory");
    return 0;
}

static const char *aws_region_default(void)
{
    const char *r = getenv("AWS_REGION");
    if (r == NULL || r[0] == '\0')
        r = getenv("AWS_DEFAULT_REGION");
    return r && r[0] ? r : NULL;
}

static int aws_required(aws_config *cfg, ferry_plugin_ctx *ctx, const ferry_host_api *host,
                        ferry_error_detail *err)
{
    const char *region = host->config_get(ctx, "region");
    if (region == NULL || region[0] == '\0')
        region = aws_region_default();
    if (region == NULL)
        return ferry_error_set(err, FERRY_ECONFIG, 0, NULL,
                               "aws: setting \"region\" is required (or AWS_REGION)");
    const char *type = host->config_get(ctx, "instance_type");
    const char *image = host->config_get(ctx, "image_id");
    if (!ferry_setting_word_ok(region, NULL))
        return aws_bad(err, "region", region, "is not a region name");
    if (!ferry_setting_word_ok(type, NULL))
        return aws_bad(err, "instance_type", type, "is required (\"g5.xlarge\")");
    if (!ferry_setting_word_ok(image, NULL))
        return aws_bad(err, "image_id", image, "is required (\"ami-...\")");
    cfg->region = strdup(region);
    cfg->instance_type = strdup(type);
    cfg->image_id = strdup(image);
    if (!cfg->region || !cfg->instance_type || !cfg->image_id)
        return ferry_error_set(err, FERRY_ENOMEM, 0, NULL, "aws: out of memory");
    return 0;
}

static int aws_lists(aws_config *cfg, ferry_plugin_ctx *ctx, const ferry_host_api *host,
                     ferry_error_detail *err)
{
    if (ferry_strlist_parse(&cfg->zones, host->config_get(ctx, "zones")) != 0 ||
        ferry_strlist_parse(&cfg->subnets, host->config_get(ctx, "subnet_ids")) != 0 ||
        ferry_strlist_parse(&cfg->security_groups, host->config_get(ctx, "security_group_ids")) !=
            0)
        return ferry_error_set(err, FERRY_ENOMEM, 0, NULL, "aws: out of memory");
    if (cfg->zones.n && cfg->subnets.n && cfg->zones.n != cfg->subnets.n)
        return ferry_error_set(err, FERRY_ECONFIG, 0, NULL,
                               "aws: subnet_ids names %zu subnet%s for %zu zone%s: give one "
                               "subnet per zone, in the order of zones",
                               cfg->subnets.n, cfg->subnets.n == 1 ? "" : "s", cfg->zones.n,
                               cfg->zones.n == 1 ? "" : "s");
    ferry_strlist *lists[] = {&cfg->zones, &cfg->subnets, &cfg->security_groups};
    const char *names[] = {"zones", "subnet_ids", "security_group_ids"};
    for (size_t k = 0; k < 3; k++)
        for (size_t i = 0; i < lists[k]->n; i++)
            if (!ferry_setting_word_ok(lists[k]->v[i], NULL))
                return aws_bad(err, names[k], lists[k]->v[i], "is not a valid name");
    return 0;
}

static int aws_optional_words(aws_config *cfg, ferry_plugin_ctx *ctx, const ferry_host_api *host,
                              ferry_error_detail *err)
{
    struct {
        const char *name;
        char **slot;
        const char *def;
    } words[] = {{"instance_profile", &cfg->instance_profile, NULL},
                 {"key_name", &cfg->key_name, NULL},
                 {"root_device", &cfg->root_device, "/dev/xvda"}};
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
        const char *v = host->config_get(ctx, words[i].name);
        if (v == NULL || v[0] == '\0')
            v = words[i].def;
        if (v == NULL)
            continue;
        if (!ferry_setting_word_ok(v, NULL))
            return aws_bad(err, words[i].name, v, "is not a valid name");
        if ((*words[i].slot = strdup(v)) == NULL)
            return ferry_error_set(err, FERRY_ENOMEM, 0, NULL, "aws: out of memory");
    }
    return 0;
}

static int aws_numbers(aws_config *cfg, ferry_plugin_ctx *ctx, const ferry_host_api *host,
                       ferry_error_detail *err)
{
    const char *v;
    long n;
    if ((v = host->config_get(ctx, "spot")) != NULL && ferry_setting_bool(v, &cfg->spot) != 0)
        return aws_bad(err, "spot", v, "must be true or false");
    if ((v = host->config_get(ctx, "disk_gb")) != NULL) {
        if (ferry_setting_long(v, 1, 65536, &n) != 0)
            return aws_bad(err, "disk_gb", v, "must be a size in GiB from 1 to 65536");
        cfg->disk_gb = (int)n;
    }
    if ((v = host->config_get(ctx, "max_attempts")) != NULL) {
        if (ferry_setting_long(v, 1, 20, &n) != 0)
            return aws_bad(err, "max_attempts", v, "must be 1 to 20");
        cfg->max_attempts = (int)n;
    }
    if ((v = host->config_get(ctx, "call_timeout")) != NULL) {
        if (ferry_setting_long(v, 1, 600, &n) != 0)
            return aws_bad(err, "call_timeout", v, "must be 1 to 600 seconds");
        cfg->call_timeout_ms = n * 1000;
    }
    if ((v = host->config_get(ctx, "list_page_size")) != NULL) {
        if (ferry_setting_long(v, 5, 1000, &n) != 0)
            return aws_bad(err, "list_page_size", v, "must be 5 to 1000");
        cfg->list_page_size = (int)n;
    }
    return 0;
}

int aws_config_load(aws_config *cfg, ferry_plugin_ctx *ctx, const ferry_host_api *host,
                    ferry_error_detail *err)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->max_attempts = 5;
    cfg->call_timeout_ms = 30000;
    cfg->list_page_size = 1000;
    int rc;
    if ((rc = aws_required(cfg, ctx, host, err)) != 0 ||
        (rc = aws_lists(cfg, ctx, host, err)) != 0 ||
        (rc = aws_optional_words(cfg, ctx, host, err)) != 0 ||
        (rc = aws_numbers(cfg, ctx, host, err)) != 0)
        return rc;
    const char *endpoint = host->config_get(ctx, "endpoint");
    if (endpoint && endpoint[0])
        return aws_endpoint(cfg, endpoint, err);
    char def[160];
    snprintf(def, sizeof(def), "https://ec2.%s.amazonaws.com", cfg->region);
    return aws_endpoint(cfg, def, err);
}

void aws_config_free(aws_config *cfg)
{
    free(cfg->region);
    ferry_strlist_free(&cfg->zones);
    ferry_strlist_free(&cfg->subnets);
    ferry_strlist_free(&cfg->security_groups);
    free(cfg->instance_type);
    free(cfg->image_id);
    free(cfg->instance_profile);
    free(cfg->key_name);
    free(cfg->root_device);
    free(cfg->url);
    free(cfg->host);
    free(cfg->path);
    memset(cfg, 0, sizeof(*cfg));
}
