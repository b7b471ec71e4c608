/* s3-storage: settings, credentials and where requests go.
 *
 * Credentials come from the SDK's chain (ferry/awscreds.h), in aws-cli's
 * order: the store's own settings (or secrets of the same names), the
 * AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN variables,
 * then the shared credentials file (AWS_SHARED_CREDENTIALS_FILE or
 * ~/.aws/credentials), profile AWS_PROFILE or "default". Instance roles and
 * SSO are not read.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ferry/settings.h"
#include "s3.h"

/* ------------------------------------------------------------------------ */
/* Settings                                                                 */

int64_t s3_parse_size(const char *s)
{
    if (s == NULL)
        return -1;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || end == s || v < 0)
        return -1;
    while (*end == ' ')
        end++;
    int64_t mult = 1;
    if (*end == 'k' || *end == 'K')
        mult = 1024;
    else if (*end == 'm' || *end == 'M')
        mult = S3_MIB;
    else if (*end == 'g' || *end == 'G')
        mult = 1024 * S3_MIB;
    else if (*end != '\0' && strcasecmp(end, "b") != 0)
        return -1;
    if (mult > 1) { /* "M", "MB", "MiB": all binary, as aws-cli reads them */
        end++;
        if (strcasecmp(end, "") != 0 && strcasecmp(end, "b") != 0 && strcasecmp(end, "ib") != 0)
            return -1;
    }
    if (v > INT64_MAX / mult)
        return -1;
    return (int64_t)v * mult;
}

static int s3_bad(ferry_error_detail *err, const char *fmt, const char *a, const char *b)
{
    return ferry_error_set(err, FERRY_ECONFIG, 0, NULL, fmt, a, b);
}

/* Bucket names as S3 allows them: 3-63 of a-z 0-9 . -, so that a name can
 * never change the URL it goes into. */
static int s3_bucket_ok(const char *b)
{
    size_t n = strlen(b);
    if (n < 3 || n > 63)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!(islower((unsigned char)b[i]) || isdigit((unsigned char)b[i]) || b[i] == '.' ||
              b[i] == '-'))
            return 0;
    return 1;
}

/* A literal IPv4/IPv6 address or localhost cannot carry the bucket as a
 * subdomain: such endpoints (MinIO, s3rver) take the bucket in the path. */
static int s3_host_needs_path_style(const char *hostport)
{
    if (hostport[0] == '[')
        return 1;
    size_t n = strcspn(hostport, ":");
    if (n == 9 && strncasecmp(hostport, "localhost", 9) == 0)
        return 1;
    for (size_t i = 0; i < n; i++)
        if (!isdigit((unsigned char)hostport[i]) && hostport[i] != '.')
            return 0;
    return 1;
}

/* "https://host[:port][/]" into scheme and host. */
static int s3_endpoint(s3_config *cfg, const char *endpoint, ferry_error_detail *err)
{
    const char *sep = strstr(endpoint, "://");
    if (sep == NULL)
        return s3_bad(err, "s3-storage: endpoint \"%s\" is not http(s)://host[:port]%s", endpoint,
                      "");
    size_t scheme_len = (size_t)(sep - endpoint);
    if (!((scheme_len == 5 && strncasecmp(endpoint, "https", 5) == 0) ||
          (scheme_len == 4 && strncasecmp(endpoint, "http", 4) == 0)))
        return s3_bad(err, "s3-storage: endpoint \"%s\" must start with https:// or http://%s",
                      endpoint, "");
    const char *host = sep + 3;
    size_t host_len = strcspn(host, "/?#@");
    if (host_len == 0 || (host[host_len] != '\0' && strcmp(host + host_len, "/") != 0))
        return s3_bad(err, "s3-storage: endpoint \"%s\" must be scheme://host[:port] only%s",
                      endpoint, "");
    cfg->scheme = strndup(endpoint, scheme_len);
    cfg->host = strndup(host, host_len);
    for (char *p = cfg->scheme; p && *p; p++)
        *p = (char)tolower((unsigned char)*p);
    return 0;
}

static int s3_sizes(s3_config *cfg, ferry_plugin_ctx *ctx, const ferry_host_api *host,
                    ferry_error_detail *err)
{
    const char *v;
    if ((v = host->config_get(ctx, "multipart_threshold")) != NULL) {
        cfg->multipart_threshold = s3_parse_size(v);
        if (cfg->multipart_threshold < S3_MIN_PART_SIZE ||
            cfg->multipart_threshold > S3_MAX_SINGLE_PUT)
            return s3_bad(err, "s3-storage: multipart_threshold \"%s\" must be a size from %s", v,
                          "5MiB to 5GiB");
    }
    if ((v = host->config_get(ctx, "part_size")) != NULL) {
        cfg->part_size = s3_parse_size(v);
        if (cfg->part_size < S3_MIN_PART_SIZE || cfg->part_size > S3_MAX_PART_SIZE)
            return s3_bad(err, "s3-storage: part_size \"%s\" must be a size from %s", v,
                          "5MiB to 5GiB");
    }
    long n;
    if ((v = host->config_get(ctx, "parallel_parts")) != NULL) {
        if (ferry_setting_long(v, 1, 64, &n) != 0)
            return s3_bad(err, "s3-storage: parallel_parts \"%s\" must be %s", v, "1 to 64");
        cfg->parallel_parts = (int)n;
    }
    if ((v = host->config_get(ctx, "max_attempts")) != NULL) {
        if (ferry_setting_long(v, 1, 20, &n) != 0)
            return s3_bad(err, "s3-storage: max_attempts \"%s\" must be %s", v, "1 to 20");
        cfg->max_attempts = (int)n;
    }
    if ((v = host->config_get(ctx, "stall_timeout")) != NULL) {
        if (ferry_setting_long(v, 1, 3600, &n) != 0)
            return s3_bad(err, "s3-storage: stall_timeout \"%s\" must be %s", v,
                          "1 to 3600 seconds");
        cfg->stall_timeout_ms = n * 1000;
    }
    if ((v = host->config_get(ctx, "list_page_size")) != NULL) {
        if (ferry_setting_long(v, 1, 1000, &n) != 0)
            return s3_bad(err, "s3-storage: list_page_size \"%s\" must be %s", v, "1 to 1000");
        cfg->list_page_size = (int)n;
    }
    return 0;
}

/* A prefix is a key, or a folder of keys ("prod/"). */
static int s3_prefix_ok(const char *prefix)
{
    size_t n = strlen(prefix);
    if (n == 0)
        return 1;
    char *copy = strdup(prefix);
    if (copy == NULL)
        return 0;
    if (copy[n - 1] == '/')
        copy[n - 1] = '\0';
    int ok = s3_key_is_safe(copy);
    free(copy);
    return ok;
}

int s3_config_load(s3_config *cfg, ferry_plugin_ctx *ctx, const ferry_host_api *host,
                   ferry_error_detail *err)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->multipart_threshold = 16 * S3_MIB;
    cfg->part_size = 16 * S3_MIB;
    cfg->parallel_parts = 8;
    cfg->max_attempts = 5;
    cfg->stall_timeout_ms = 30000;
    cfg->connect_timeout_ms = 10000;
    cfg->list_page_size = 1000;
    const char *bucket = host->config_get(ctx, "bucket");
    if (bucket == NULL || bucket[0] == '\0')
        return s3_bad(err, "s3-storage: setting \"bucket\" is required%s%s", "", "");
    if (!s3_bucket_ok(bucket))
        return s3_bad(err, "s3-storage: bucket \"%s\" is not a valid S3 bucket name%s", bucket, "");
    const char *region = host->config_get(ctx, "region");
    const char *prefix = host->config_get(ctx, "prefix");
    if (prefix && !s3_prefix_ok(prefix))
        return s3_bad(err, "s3-storage: prefix \"%s\" must be a relative key prefix such as %s",
                      prefix, "\"prod/\"");
    cfg->bucket = strdup(bucket);
    cfg->region = strdup(region && region[0] ? region : "us-east-1");
    /* "prod" and "prod/" both mean the folder prod/. */
    size_t plen = prefix ? strlen(prefix) : 0;
    cfg->prefix = malloc(plen + 2);
    if (cfg->prefix)
        snprintf(cfg->prefix, plen + 2, "%s%s", plen ? prefix : "",
                 plen && prefix[plen - 1] != '/' ? "/" : "");
    const char *endpoint = host->config_get(ctx, "endpoint");
    int rc;
    if (endpoint && endpoint[0]) {
        rc = s3_endpoint(cfg, endpoint, err);
    } else {
        char def[160];
        snprintf(def, sizeof(def), "https://s3.%s.amazonaws.com", cfg->region);
        rc = s3_endpoint(cfg, def, err);
    }
    if (rc != 0)
        return rc;
    if (!cfg->bucket || !cfg->region || !cfg->prefix || !cfg->scheme || !cfg->host)
        return ferry_error_set(err, FERRY_ENOMEM, 0, NULL, "s3-storage: out of memory");
    cfg->path_style = s3_host_needs_path_style(cfg->host) || strchr(cfg->bucket, '.') != NULL;
    const char *ps = host->config_get(ctx, "path_style");
    if (ps && ferry_setting_bool(ps, &cfg->path_style) != 0)
        return s3_bad(err, "s3-storage: path_style \"%s\" must be true or false%s", ps, "");
    return s3_sizes(cfg, ctx, host, err);
}

void s3_config_free(s3_config *cfg)
{
    free(cfg->bucket);
    free(cfg->prefix);
    free(cfg->region);
    free(cfg->scheme);
    free(cfg->host);
    memset(cfg, 0, sizeof(*cfg));
}

/* ------------------------------------------------------------------------ */
/* Keys                                                                     */

int s3_key_is_safe(const char *key)
{
    if (key == NULL || key[0] == '\0' || key[0] == '/' || strchr(key, '\\') != NULL)
        return 0;
    for (const char *p = key; *p;) {
        size_t n = strcspn(p, "/");
        if (n == 0 || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
            return 0;
        for (size_t i = 0; i < n; i++)
            if ((unsigned char)p[i] < 0x20 || p[i] == 0x7f)
                return 0; /* control characters: never a name a user meant */
        p += n;
        if (*p == '/' && p[1] == '\0')
            return 0; /* a trailing '/' names a folder, not an object */
        if (*p == '/')
            p++;
    }
    return 1;
}

char *s3_full_key(const s3_state *st, const char *key)
{
    size_t a = strlen(st->cfg.prefix), b = strlen(key);
    char *s = malloc(a + b + 1);
    if (s == NULL)
        return NULL;
    memcpy(s, st->cfg.prefix, a);
    memcpy(s + a, key, b + 1);
    return s;
}

int s3_target_make(const s3_config *cfg, const char *key, s3_target *t)
{
    memset(t, 0, sizeof(*t));
    char *enc = key ? ferry_sigv4_uri_encode(key, strlen(key), 1) : strdup("");
    if (enc == NULL)
        return FERRY_ENOMEM;
    int n;
    if (cfg->path_style) {
        t->host = strdup(cfg->host);
        /* The bucket itself is "/bucket", an object "/bucket/key". */
        n = asprintf(&t->path, "/%s%s%s", cfg->bucket, key ? "/" : "", enc);
    } else {
        n = asprintf(&t->host, "%s.%s", cfg->bucket, cfg->host);
        if (n >= 0)
            n = asprintf(&t->path, "/%s", enc);
    }
    free(enc);
    if (n < 0 || t->host == NULL || t->path == NULL ||
        asprintf(&t->url, "%s://%s%s", cfg->scheme, t->host, t->path) < 0) {
        t->url = NULL;
        s3_target_free(t);
        return FERRY_ENOMEM;
    }
    return 0;
}

void s3_target_free(s3_target *t)
{
    free(t->host);
    free(t->path);
    free(t->url);
    memset(t, 0, sizeof(*t));
}

/* ------------------------------------------------------------------------ */
/* Inputs: s3://BUCKET/KEY                                                  */

#define S3_URL_SCHEME "s3://"
#define S3_URL_BUCKET_MAX 255

/* The bucket of an input URL: S3's alphabet with the legacy upper case and
 * '_' (older buckets may have them), so that the name cannot change the
 * host name or the path it goes into. Creating the instance then applies
 * the stricter rules of today's buckets (s3_bucket_ok). */
static int s3_url_bucket_ok(const char *b, size_t n)
{
    if (n == 0 || n > S3_URL_BUCKET_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!(isalnum((unsigned char)b[i]) || strchr(".-_", b[i])))
            return 0;
    return 1;
}

int s3_url_input(const char *url, ferry_store_url *in, ferry_error_detail *err)
{
    size_t scheme = strlen(S3_URL_SCHEME);
    const char *b = url && strncasecmp(url, S3_URL_SCHEME, scheme) == 0 ? url + scheme : NULL;
    const char *slash = b ? strchr(b, '/') : NULL;
    if (slash == NULL || !s3_url_bucket_ok(b, (size_t)(slash - b)) ||
        (size_t)(slash - b) >= sizeof(in->location) || !s3_key_is_safe(slash + 1))
        return ferry_error_set(err, FERRY_EINVAL, 0, NULL,
                               "s3://BUCKET/KEY (a key of safe path segments)");
    memcpy(in->location, b, (size_t)(slash - b));
    in->location[slash - b] = '\0';
    in->key = slash + 1;
    /* The store's endpoint, region and credentials; that bucket, no prefix
     * (the key is the object's whole name). */
    in->set(in->settings, "prefix", NULL);
    in->set(in->settings, "bucket", in->location);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Credentials: the SDK's chain, in aws-cli's order                         */

int s3_credentials_load(s3_credentials *c, ferry_plugin_ctx *ctx, const ferry_host_api *host,
                        ferry_error_detail *err)
{
    return ferry_aws_credentials_load(c, ctx, host, "s3-storage", "the store's settings", err);
}

void s3_credentials_free(s3_credentials *c)
{
    ferry_aws_credentials_free(c);
}
