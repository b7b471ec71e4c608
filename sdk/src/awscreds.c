/* AWS credentials in aws-cli's order (see ferry/awscreds.h). Moved here from
 * the s3-storage plugin so that every AWS plugin reads them alike. */
#include "ferry/awscreds.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static char *awscreds__strdup(const char *s)
{
    return s ? strdup(s) : NULL;
}

/* A setting, or the secret of the same name (operators may keep keys in
 * the secrets rather than the configuration). */
static const char *awscreds__setting(ferry_plugin_ctx *ctx, const ferry_host_api *host,
                                     const char *name)
{
    const char *v = host->config_get(ctx, name);
    if ((v == NULL || v[0] == '\0') && host->secret_get)
        v = host->secret_get(ctx, name);
    return v && v[0] ? v : NULL;
}

static int awscreds__set(ferry_aws_credentials *c, const char *id, const char *secret,
                         const char *token, const char *source)
{
    c->access_key_id = awscreds__strdup(id);
    c->secret_access_key = awscreds__strdup(secret);
    c->session_token = token && token[0] ? awscreds__strdup(token) : NULL;
    snprintf(c->source, sizeof(c->source), "%s", source);
    if (!c->access_key_id || !c->secret_access_key || (token && token[0] && !c->session_token))
        return FERRY_ENOMEM;
    return 0;
}

static char *awscreds__trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    return s;
}

typedef struct awscreds__keys {
    char *id, *secret, *token;
} awscreds__keys;

static void awscreds__keys_free(awscreds__keys *k)
{
    if (k->secret)
        memset(k->secret, 0, strlen(k->secret));
    if (k->token)
        memset(k->token, 0, strlen(k->token));
    free(k->id);
    free(k->secret);
    free(k->token);
}

/* One "key = value" line of the wanted profile's section. */
static void awscreds__profile_line(awscreds__keys *k, char *line)
{
    char *eq = strchr(line, '=');
    if (eq == NULL)
        return;
    *eq = '\0';
    char *name = awscreds__trim(line), *value = awscreds__trim(eq + 1);
    char **slot = NULL;
    if (strcasecmp(name, "aws_access_key_id") == 0)
        slot = &k->id;
    else if (strcasecmp(name, "aws_secret_access_key") == 0)
        slot = &k->secret;
    else if (strcasecmp(name, "aws_session_token") == 0 ||
             (strcasecmp(name, "aws_security_token") == 0 && k->token == NULL))
        slot = &k->token;
    if (slot) {
        free(*slot);
        *slot = strdup(value);
    }
}

/* The INI file aws-cli writes: [profile] sections of key = value lines;
 * '#' and ';' start comments. 0 when read (the keys may still be absent),
 * -1 when the file cannot be opened. */
static int awscreds__read_profile(const char *path, const char *profile, awscreds__keys *k)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    char line[4096];
    int in_section = 0;
    while (fgets(line, sizeof(line), f) != NULL) {
        char *s = awscreds__trim(line);
        if (s[0] == '#' || s[0] == ';' || s[0] == '\0')
            continue;
        if (s[0] == '[') {
            char *end = strchr(s, ']');
            if (end)
                *end = '\0';
            in_section = strcmp(awscreds__trim(s + 1), profile) == 0;
            continue;
        }
        if (in_section)
            awscreds__profile_line(k, s);
    }
    memset(line, 0, sizeof(line)); /* it may have held a key */
    fclose(f);
    return 0;
}

static const char *awscreds__profile_name(void)
{
    const char *profile = getenv("AWS_PROFILE");
    if (profile == NULL || profile[0] == '\0')
        profile = getenv("AWS_DEFAULT_PROFILE");
    return profile && profile[0] ? profile : "default";
}

static int awscreds__from_file(ferry_aws_credentials *c, const char *who, ferry_error_detail *err,
                               int *found)
{
    *found = 0;
    const char *file = getenv("AWS_SHARED_CREDENTIALS_FILE");
    char def[4096];
    if (file == NULL || file[0] == '\0') {
        const char *home = getenv("HOME");
        if (home == NULL || home[0] == '\0')
            return 0;
        snprintf(def, sizeof(def), "%s/.aws/credentials", home);
        file = def;
    }
    const char *profile = awscreds__profile_name();
    awscreds__keys k = {0};
    if (awscreds__read_profile(file, profile, &k) != 0)
        return 0;
    int rc = 0;
    if (k.id && k.secret && k.id[0] && k.secret[0]) {
        char source[160];
        snprintf(source, sizeof(source), "the shared credentials file %.100s, profile %.40s", file,
                 profile);
        *found = 1;
        rc = awscreds__set(c, k.id, k.secret, k.token, source);
    } else if (k.id || k.secret) {
        rc = ferry_error_set(err, FERRY_ECONFIG, 0, NULL,
                             "%s: profile \"%s\" of %s lacks aws_access_key_id or "
                             "aws_secret_access_key",
                             who, profile, file);
    }
    awscreds__keys_free(&k);
    return rc;
}

int ferry_aws_credentials_load(ferry_aws_credentials *c, ferry_plugin_ctx *ctx,
                               const ferry_host_api *host, const char *who, const char *block,
                               ferry_error_detail *err)
{
    memset(c, 0, sizeof(*c));
    c->struct_size = sizeof(*c);
    const char *id = awscreds__setting(ctx, host, "access_key_id");
    const char *secret = awscreds__setting(ctx, host, "secret_access_key");
    if (id || secret) {
        if (!id || !secret)
            return ferry_error_set(err, FERRY_ECONFIG, 0, NULL,
                                   "%s: access_key_id and secret_access_key go together; "
                                   "only %s is set",
                                   who, id ? "access_key_id" : "secret_access_key");
        return awscreds__set(c, id, secret, awscreds__setting(ctx, host, "session_token"), block);
    }
    id = getenv("AWS_ACCESS_KEY_ID");
    secret = getenv("AWS_SECRET_ACCESS_KEY");
    if (id && id[0] && secret && secret[0])
        return awscreds__set(c, id, secret, getenv("AWS_SESSION_TOKEN"),
                             "the environment (AWS_ACCESS_KEY_ID)");
    int found;
    int rc = awscreds__from_file(c, who, err, &found);
    if (rc != 0 || found)
        return rc;
    return ferry_error_set(err, FERRY_ECONFIG, 0, NULL,
                           "%s: no credentials: set access_key_id and secret_access_key, "
                           "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or a profile in the "
                           "shared credentials file",
                           who);
}

void ferry_aws_credentials_free(ferry_aws_credentials *c)
{
    /* Keys must not linger in freed memory. */
    if (c->secret_access_key)
        memset(c->secret_access_key, 0, strlen(c->secret_access_key));
    if (c->session_token)
        memset(c->session_token, 0, strlen(c->session_token));
    free(c->access_key_id);
    free(c->secret_access_key);
    free(c->session_token);
    memset(c, 0, sizeof(*c));
}
