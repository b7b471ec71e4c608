/* aws: EC2 Query API requests (version 2016-11-15).
 *
 * A request is a form body of name=value pairs, POSTed to the regional
 * endpoint and signed with SigV4 over exactly those bytes. Lists are
 * flattened with 1-based indices (SecurityGroupId.1, TagSpecification.1.
 * Tag.2.Key), structures with dots (Placement.AvailabilityZone).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "aws.h"
#include "ferry/buf.h"
#include "ferry/sigv4.h"

/* ------------------------------------------------------------------------ */
/* Parameters                                                               */

void aws_params_init(aws_params *p, const char *action)
{
    memset(p, 0, sizeof(*p));
    aws_params_add(p, "Action", action);
    aws_params_add(p, "Version", AWS_EC2_VERSION);
}

void aws_params_add(aws_params *p, const char *name, const char *value)
{
    if (p->oom)
        return;
    size_t cap = p->cap; /* the two arrays grow alike */
    if (FERRY_GROW(p->names, cap, p->n + 1) != 0 || FERRY_GROW(p->values, p->cap, p->n + 1) != 0) {
        p->oom = 1;
        return;
    }
    p->names[p->n] = strdup(name);
    p->values[p->n] = strdup(value ? value : "");
    if (p->names[p->n] == NULL || p->values[p->n] == NULL) {
        free(p->names[p->n]);
        free(p->values[p->n]);
        p->oom = 1;
        return;
    }
    p->n++;
}

void aws_params_addf(aws_params *p, const char *value, const char *name_fmt, ...)
{
    char name[256];
    va_list ap;
    va_start(ap, name_fmt);
    int n = vsnprintf(name, sizeof(name), name_fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(name)) {
        p->oom = 1; /* never with the names below; refuse rather than cut */
        return;
    }
    aws_params_add(p, name, value);
}

const char *aws_params_get(const aws_params *p, const char *name)
{
    for (size_t i = 0; i < p->n; i++)
        if (strcmp(p->names[i], name) == 0)
            return p->values[i];
    return NULL;
}

char *aws_params_body(const aws_params *p)
{
    if (p->oom)
        return NULL;
    ferry_buf body = FERRY_BUF_INIT;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < p->n; i++) {
        char *k = ferry_sigv4_uri_encode(p->names[i], strlen(p->names[i]), 0);
        char *v = ferry_sigv4_uri_encode(p->values[i], strlen(p->values[i]), 0);
        rc = k && v ? ferry_buf_appendf(&body, "%s%s=%s", i ? "&" : "", k, v) : FERRY_ENOMEM;
        free(k);
        free(v);
    }
    char *text = rc == 0 ? ferry_buf_take(&body, NULL) : NULL;
    ferry_buf_free(&body);
    return text;
}

void aws_params_free(aws_params *p)
{
    for (size_t i = 0; i < p->n; i++) {
        free(p->names[i]);
        /* Values may hold user-data (a bootstrap token): wipe them. */
        memset(p->values[i], 0, strlen(p->values[i]));
        free(p->values[i]);
    }
    free(p->names);
    free(p->values);
    memset(p, 0, sizeof(*p));
}

/* ------------------------------------------------------------------------ */
/* RunInstances                                                             */

static char *aws_base64(const char *text)
{
    size_t n = strlen(text);
    char *out = malloc(4 * ((n + 2) / 3) + 1);
    if (out)
        EVP_EncodeBlock((unsigned char *)out, (const unsigned char *)text, (int)n);
    return out;
}

/* Where: a zone (Placement) and its subnet, with the security groups. */
static void aws_run_placement(aws_params *p, const aws_config *cfg, int zone)
{
    if (zone >= 0 && (size_t)zone < cfg->zones.n)
        aws_params_add(p, "Placement.AvailabilityZone", cfg->zones.v[zone]);
    if (zone >= 0 && (size_t)zone < cfg->subnets.n)
        aws_params_add(p, "SubnetId", cfg->subnets.v[zone]);
    for (size_t i = 0; i < cfg->security_groups.n; i++)
        aws_params_addf(p, cfg->security_groups.v[i], "SecurityGroupId.%zu", i + 1);
}

/* The root volume at disk_gb, gone with the instance: no volume outlives
 * its worker. */
static void aws_run_disk(aws_params *p, const aws_config *cfg)
{
    if (cfg->disk_gb <= 0)
        return;
    char size[16];
    snprintf(size, sizeof(size), "%d", cfg->disk_gb);
    aws_params_add(p, "BlockDeviceMapping.1.DeviceName", cfg->root_device);
    aws_params_add(p, "BlockDeviceMapping.1.Ebs.VolumeSize", size);
    aws_params_add(p, "BlockDeviceMapping.1.Ebs.VolumeType", "gp3");
    aws_params_add(p, "BlockDeviceMapping.1.Ebs.DeleteOnTermination", "true");
}

static void aws_run_market(aws_params *p, const aws_config *cfg)
{
    if (!cfg->spot)
        return;
    /* One-time and terminated on interruption: a reclaimed worker is gone,
     * never a stopped instance that still costs its volume. */
    aws_params_add(p, "InstanceMarketOptions.MarketType", "spot");
    aws_params_add(p, "InstanceMarketOptions.SpotOptions.SpotInstanceType", "one-time");
    aws_params_add(p, "InstanceMarketOptions.SpotOptions.InstanceInterruptionBehavior",
                   "terminate");
}

/* Tags on the instance and its volumes: the daemon's id (the orphan sweep
 * lists by it), the worker's, the environment's. */
static void aws_run_tags(aws_params *p, const aws_launch_spec *s)
{
    static const char *const types[] = {"instance", "volume"};
    char name[192];
    snprintf(name, sizeof(name), "ferry-%s", s->environment ? s->environment : "worker");
    for (int t = 0; t < 2; t++) {
        const char *keys[] = {AWS_TAG_DAEMON, AWS_TAG_WORKER, AWS_TAG_ENVIRONMENT, "Name"};
        const char *values[] = {s->daemon_id, s->worker_id, s->environment, name};
        aws_params_addf(p, types[t], "TagSpecification.%d.ResourceType", t + 1);
        for (int i = 0; i < 4; i++) {
            aws_params_addf(p, keys[i], "TagSpecification.%d.Tag.%d.Key", t + 1, i + 1);
            aws_params_addf(p, values[i] ? values[i] : "", "TagSpecification.%d.Tag.%d.Value",
                            t + 1, i + 1);
        }
    }
}

int aws_run_instances_params(aws_params *p, const aws_config *cfg, const aws_launch_spec *s)
{
    if (s->user_data && strlen(s->user_data) > AWS_USER_DATA_MAX)
        return FERRY_ETOOBIG;
    aws_params_init(p, "RunInstances");
    aws_params_add(p, "ImageId", cfg->image_id);
    aws_params_add(p, "InstanceType", cfg->instance_type);
    aws_params_add(p, "MinCount", "1");
    aws_params_add(p, "MaxCount", "1");
    if (cfg->key_name)
        aws_params_add(p, "KeyName", cfg->key_name);
    aws_run_placement(p, cfg, s->zone);
    if (cfg->instance_profile)
        aws_params_add(p,
                       strncmp(cfg->instance_profile, "arn:", 4) == 0 ? "IamInstanceProfile.Arn"
                                                                      : "IamInstanceProfile.Name",
                       cfg->instance_profile);
    aws_run_disk(p, cfg);
    aws_run_market(p, cfg);
    /* A machine that shuts itself down is gone, not stopped. */
    aws_params_add(p, "InstanceInitiatedShutdownBehavior", "terminate");
    /* IMDSv2 only: the user-data (a one-time token) is not one SSRF away. */
    aws_params_add(p, "MetadataOptions.HttpTokens", "required");
    aws_params_add(p, "MetadataOptions.HttpEndpoint", "enabled");
    if (s->user_data) {
        char *b64 = aws_base64(s->user_data);
        if (b64 == NULL)
            p->oom = 1;
        else
            aws_params_add(p, "UserData", b64);
        if (b64)
            memset(b64, 0, strlen(b64));
        free(b64);
    }
    if (s->client_token)
        aws_params_add(p, "ClientToken", s->client_token);
    aws_run_tags(p, s);
    return p->oom ? FERRY_ENOMEM : 0;
}

/* ------------------------------------------------------------------------ */
/* DescribeInstances, TerminateInstances                                    */

void aws_describe_by_daemon_params(aws_params *p, const char *daemon_id, int page_size,
                                   const char *next_token)
{
    char n[16];
    snprintf(n, sizeof(n), "%d", page_size > 0 ? page_size : 1000);
    aws_params_init(p, "DescribeInstances");
    aws_params_add(p, "Filter.1.Name", "tag:" AWS_TAG_DAEMON);
    aws_params_add(p, "Filter.1.Value.1", daemon_id);
    aws_params_add(p, "MaxResults", n);
    if (next_token && next_token[0])
        aws_params_add(p, "NextToken", next_token);
}

void aws_describe_one_params(aws_params *p, const char *instance_id)
{
    aws_params_init(p, "DescribeInstances");
    aws_params_add(p, "InstanceId.1", instance_id);
}

void aws_terminate_params(aws_params *p, char *const *instance_ids, size_t n)
{
    aws_params_init(p, "TerminateInstances");
    for (size_t i = 0; i < n; i++)
        aws_params_addf(p, instance_ids[i], "InstanceId.%zu", i + 1);
}
