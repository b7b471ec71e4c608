/* The aws plugin's EC2 Query requests (plugins/aws/aws_query.c) and
 * settings (aws_config.c), against tests/vectors/ec2:
 *   - the derived, botocore-checked RunInstances POST: the same parameters
 *     give the same form body byte for byte, and signing it with the SDK's
 *     SigV4 gives its canonical request, string to sign and signature;
 *   - the Smithy/botocore ec2 query protocol tests: lists flattened with
 *     1-based indices, nested structures, blobs, timestamps, tokens;
 *   - what ferry's RunInstances carries: zone and subnet, security groups,
 *     instance profile, disk, spot, user-data (base64), ClientToken, tags;
 *     DescribeInstances by tag with paging, TerminateInstances;
 *   - settings: lists, endpoint, the errors an operator gets.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "aws.h"
#include "ferry/sigv4.h"
#include "test.h"
#include "util.h"

static const char *vectors;

static json_t *load_json(const char *rel)
{
    char *path = ferry_asprintf("%s/ec2/%s", vectors, rel);
    json_error_t e;
    json_t *j = json_load_file(path, 0, &e);
    if (j == NULL)
        fprintf(stderr, "%s: %s\n", path, e.text);
    free(path);
    return j;
}

/* %XX back into bytes (the vector's body, read as parameters). */
static char *pct_decode(const char *s, size_t n)
{
    char *out = malloc(n + 1), *o = out;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%' && i + 2 < n + 1 && isxdigit((unsigned char)s[i + 1]) &&
            isxdigit((unsigned char)s[i + 2])) {
            char hex[3] = {s[i + 1], s[i + 2], 0};
            *o++ = (char)strtol(hex, NULL, 16);
            i += 2;
        } else {
            *o++ = s[i];
        }
    }
    *o = '\0';
    return out;
}

/* A form body into parameters, in order, without Action/Version magic. */
static void params_from_body(aws_params *p, const char *body)
{
    memset(p, 0, sizeof(*p));
    for (const char *s = body; *s;) {
        size_t n = strcspn(s, "&");
        const char *eq = memchr(s, '=', n);
        size_t kn = eq ? (size_t)(eq - s) : n;
        char *k = pct_decode(s, kn);
        char *v = eq ? pct_decode(eq + 1, n - kn - 1) : strdup("");
        aws_params_add(p, k, v);
        free(k);
        free(v);
        s += n + (s[n] == '&');
    }
}

/* ------------------------------------------------------------------------ */

static void test_derived_runinstances(void)
{
    json_t *v = load_json("sigv4_runinstances_post_derived.json");
    CHECK(v != NULL);
    if (v == NULL)
        return;
    const char *body = json_string_value(json_object_get(v, "body"));
    aws_params p;
    params_from_body(&p, body);
    CHECK_STR(aws_params_get(&p, "Action"), "RunInstances");
    CHECK_STR(aws_params_get(&p, "KeyName"), "my key");
    char *got = aws_params_body(&p);
    CHECK_STR(got, body);
    char sha[65];
    ferry_sigv4_sha256_hex(got, strlen(got), sha);
    CHECK_STR(sha, json_string_value(json_object_get(v, "body_sha256")));

    /* Signed the way aws_call.c signs: Content-Type and Host. */
    json_t *cred = json_object_get(v, "credentials"), *hdrs = json_object_get(v, "headers");
    char ct[128];
    snprintf(ct, sizeof(ct), "Content-Type: %s",
             json_string_value(json_object_get(hdrs, "Content-Type")));
    const char *headers[] = {ct, NULL};
    ferry_sigv4_request r = {
        .struct_size = sizeof(r),
        .access_key_id = json_string_value(json_object_get(cred, "access_key_id")),
        .secret_access_key = json_string_value(json_object_get(cred, "secret_access_key")),
        .service = "ec2",
        .region = json_string_value(json_object_get(v, "region")),
        .method = "POST",
        .host = json_string_value(json_object_get(hdrs, "Host")),
        .path = "/",
        .headers = headers,
        .payload_hash = sha,
        .time = 1440938160, /* 20150830T123600Z */
    };
    ferry_sigv4_signature sig;
    CHECK_INT(ferry_sigv4_sign(&r, &sig), 0);
    CHECK_STR(sig.amz_date, json_string_value(json_object_get(v, "x_amz_date")));
    CHECK_STR(sig.canonical_request, json_string_value(json_object_get(v, "canonical_request")));
    CHECK_STR(sig.string_to_sign, json_string_value(json_object_get(v, "string_to_sign")));
    CHECK_STR(sig.signature, json_string_value(json_object_get(v, "signature")));
    CHECK_STR(sig.authorization, json_string_value(json_object_get(v, "authorization")));
    ferry_sigv4_signature_free(&sig);
    free(got);
    aws_params_free(&p);
    json_decref(v);
}

/* The serialized body a protocol test case expects, by its id. */
static const char *protocol_body(json_t *suites, const char *id)
{
    size_t i, k;
    json_t *suite, *c;
    json_array_foreach(suites, i, suite)
    {
        json_array_foreach(json_object_get(suite, "cases"), k, c)
        {
            if (strcmp(json_string_value(json_object_get(c, "id")), id) == 0)
                return json_string_value(json_object_get(json_object_get(c, "serialized"), "body"));
        }
    }
    return NULL;
}

static void check_case(json_t *suites, const char *id, const char *action, const char *const *kv)
{
    aws_params p;
    memset(&p, 0, sizeof(p));
    aws_params_add(&p, "Action", action);
    aws_params_add(&p, "Version", "2020-01-08");
    for (; kv[0]; kv += 2)
        aws_params_add(&p, kv[0], kv[1]);
    char *got = aws_params_body(&p);
    const char *want = protocol_body(suites, id);
    if (want == NULL || got == NULL || strcmp(got, want) != 0) {
        fprintf(stderr, "protocol case %s:\n  got  %s\n  want %s\n", id, got ? got : "(null)",
                want ? want : "(no such case)");
        ferry_test_failures++;
    }
    free(got);
    aws_params_free(&p);
}

static void test_protocol_cases(void)
{
    json_t *suites = load_json("protocol-tests/botocore_input_ec2.json");
    CHECK(suites != NULL);
    if (suites == NULL)
        return;
    check_case(suites, "Ec2Lists", "QueryLists",
               (const char *const[]){"ListArg.1", "foo", "ListArg.2", "bar", "ListArg.3", "baz",
                                     "ComplexListArg.1.Hi", "hello", "ComplexListArg.2.Hi", "hola",
                                     NULL});
    check_case(suites, "Ec2EmptyQueryLists", "QueryLists", (const char *const[]){NULL});
    check_case(suites, "Ec2ListNestedStructWithList", "QueryLists",
               (const char *const[]){"NestedWithList.ListArg.1", "A", "NestedWithList.ListArg.2",
                                     "B", NULL});
    check_case(suites, "Ec2NestedStructures", "NestedStructures",
               (const char *const[]){"Nested.StringArg", "foo", "Nested.OtherArg", "true",
                                     "Nested.RecursiveArg.StringArg", "baz", NULL});
    check_case(suites, "Ec2SimpleInputParamsStrings", "SimpleInputParams",
               (const char *const[]){"Foo", "val1", "Bar", "val2", NULL});
    /* A blob is base64, whose '=' is encoded. */
    check_case(suites, "Ec2SimpleInputParamsBlob", "SimpleInputParams",
               (const char *const[]){"Qux", "dmFsdWU=", NULL});
    check_case(suites, "Ec2TimestampsInput", "QueryTimestamps",
               (const char *const[]){"NormalFormat", "2015-01-25T08:00:00Z", "EpochMember",
                                     "1422172800", "EpochTarget", "1422172800", NULL});
    check_case(suites, "Ec2ProtocolIdempotencyTokenAutoFillIsSet", "QueryIdempotencyTokenAutoFill",
               (const char *const[]){"Token", "00000000-0000-4000-8000-000000000123", NULL});
    json_decref(suites);
}

/* ------------------------------------------------------------------------ */
/* ferry's requests                                                         */

static void config_fixture(aws_config *c)
{
    memset(c, 0, sizeof(*c));
    c->region = strdup("us-east-1");
    ferry_strlist_parse(&c->zones, "us-east-1a, us-east-1b");
    ferry_strlist_parse(&c->subnets, "subnet-aaa,subnet-bbb");
    ferry_strlist_parse(&c->security_groups, "sg-1,sg-2");
    c->instance_type = strdup("g5.xlarge");
    c->image_id = strdup("ami-0abc");
    c->instance_profile = strdup("ferry-worker");
    c->root_device = strdup("/dev/xvda");
    c->spot = 1;
    c->disk_gb = 100;
}

static char *unbase64(const char *s)
{
    size_t n = strlen(s);
    unsigned char *out = calloc(1, n + 1);
    int len = EVP_DecodeBlock(out, (const unsigned char *)s, (int)n);
    while (len > 0 && n > 0 && s[n - 1] == '=') { /* DecodeBlock counts the padding */
        len--;
        n--;
    }
    if (len >= 0)
        out[len] = '\0';
    return (char *)out;
}

static void test_run_instances(void)
{
    aws_config c;
    config_fixture(&c);
    const char *ud = "#!/bin/sh\nFERRY_WORKER_ID='w1'\necho hello >/tmp/x\n";
    aws_launch_spec s = {.daemon_id = "d0d0",
                         .environment = "aws-gpu",
                         .worker_id = "3f1c-worker",
                         .client_token = "3f1c-worker-1",
                         .user_data = ud,
                         .zone = 1};
    aws_params p;
    CHECK_INT(aws_run_instances_params(&p, &c, &s), 0);
    CHECK_STR(aws_params_get(&p, "Action"), "RunInstances");
    CHECK_STR(aws_params_get(&p, "Version"), "2016-11-15");
    CHECK_STR(aws_params_get(&p, "ImageId"), "ami-0abc");
    CHECK_STR(aws_params_get(&p, "InstanceType"), "g5.xlarge");
    CHECK_STR(aws_params_get(&p, "MinCount"), "1");
    CHECK_STR(aws_params_get(&p, "MaxCount"), "1");
    CHECK_STR(aws_params_get(&p, "Placement.AvailabilityZone"), "us-east-1b");
    CHECK_STR(aws_params_get(&p, "SubnetId"), "subnet-bbb");
    CHECK_STR(aws_params_get(&p, "SecurityGroupId.1"), "sg-1");
    CHECK_STR(aws_params_get(&p, "SecurityGroupId.2"), "sg-2");
    CHECK_STR(aws_params_get(&p, "IamInstanceProfile.Name"), "ferry-worker");
    CHECK_STR(aws_params_get(&p, "BlockDeviceMapping.1.DeviceName"), "/dev/xvda");
    CHECK_STR(aws_params_get(&p, "BlockDeviceMapping.1.Ebs.VolumeSize"), "100");
    CHECK_STR(aws_params_get(&p, "BlockDeviceMapping.1.Ebs.DeleteOnTermination"), "true");
    CHECK_STR(aws_params_get(&p, "InstanceMarketOptions.MarketType"), "spot");
    CHECK_STR(aws_params_get(&p, "InstanceMarketOptions.SpotOptions.InstanceInterruptionBehavior"),
              "terminate");
    CHECK_STR(aws_params_get(&p, "InstanceInitiatedShutdownBehavior"), "terminate");
    CHECK_STR(aws_params_get(&p, "MetadataOptions.HttpTokens"), "required");
    CHECK_STR(aws_params_get(&p, "ClientToken"), "3f1c-worker-1");
    char *decoded = unbase64(aws_params_get(&p, "UserData"));
    CHECK_STR(decoded, ud);
    free(decoded);
    CHECK_STR(aws_params_get(&p, "TagSpecification.1.ResourceType"), "instance");
    CHECK_STR(aws_params_get(&p, "TagSpecification.1.Tag.1.Key"), "ferry:daemon");
    CHECK_STR(aws_params_get(&p, "TagSpecification.1.Tag.1.Value"), "d0d0");
    CHECK_STR(aws_params_get(&p, "TagSpecification.1.Tag.2.Key"), "ferry:worker");
    CHECK_STR(aws_params_get(&p, "TagSpecification.1.Tag.2.Value"), "3f1c-worker");
    CHECK_STR(aws_params_get(&p, "TagSpecification.1.Tag.3.Value"), "aws-gpu");
    CHECK_STR(aws_params_get(&p, "TagSpecification.2.ResourceType"), "volume");
    CHECK_STR(aws_params_get(&p, "TagSpecification.2.Tag.1.Value"), "d0d0");
    /* The body carries the base64 with '+', '/' and '=' encoded. */
    char *body = aws_params_body(&p);
    CHECK_CONTAINS(body, "Action=RunInstances&Version=2016-11-15&ImageId=ami-0abc&");
    CHECK_CONTAINS(body, "&TagSpecification.1.Tag.1.Key=ferry%3Adaemon&");
    CHECK(strstr(body, "FERRY_WORKER_ID") == NULL); /* never in the clear */
    free(body);
    aws_params_free(&p);

    /* An ARN profile, no spot, no zone, no disk. */
    free(c.instance_profile);
    c.instance_profile = strdup("arn:aws:iam::123456789012:instance-profile/ferry");
    c.spot = 0;
    c.disk_gb = 0;
    s.zone = -1;
    CHECK_INT(aws_run_instances_params(&p, &c, &s), 0);
    CHECK_STR(aws_params_get(&p, "IamInstanceProfile.Arn"), c.instance_profile);
    CHECK(aws_params_get(&p, "IamInstanceProfile.Name") == NULL);
    CHECK(aws_params_get(&p, "InstanceMarketOptions.MarketType") == NULL);
    CHECK(aws_params_get(&p, "Placement.AvailabilityZone") == NULL);
    CHECK(aws_params_get(&p, "SubnetId") == NULL);
    CHECK(aws_params_get(&p, "BlockDeviceMapping.1.DeviceName") == NULL);
    aws_params_free(&p);

    /* EC2 takes at most 16 KiB of user-data. */
    char *big = malloc(AWS_USER_DATA_MAX + 2);
    memset(big, 'x', AWS_USER_DATA_MAX + 1);
    big[AWS_USER_DATA_MAX + 1] = '\0';
    s.user_data = big;
    CHECK_INT(aws_run_instances_params(&p, &c, &s), FERRY_ETOOBIG);
    aws_params_free(&p);
    free(big);
    aws_config_free(&c);
}

static void test_describe_terminate(void)
{
    aws_params p;
    aws_describe_by_daemon_params(&p, "d0d0", 5, NULL);
    char *body = aws_params_body(&p);
    CHECK_STR(body, "Action=DescribeInstances&Version=2016-11-15&Filter.1.Name=tag%3Aferry%3Adaemon"
                    "&Filter.1.Value.1=d0d0&MaxResults=5");
    free(body);
    aws_params_free(&p);
    aws_describe_by_daemon_params(&p, "d0d0", 1000, "eyJ2IjoxfQ==");
    CHECK_STR(aws_params_get(&p, "NextToken"), "eyJ2IjoxfQ==");
    aws_params_free(&p);
    aws_describe_one_params(&p, "i-0123");
    CHECK_STR(aws_params_get(&p, "InstanceId.1"), "i-0123");
    CHECK(aws_params_get(&p, "MaxResults") == NULL); /* EC2 refuses both at once */
    aws_params_free(&p);
    char *ids[] = {"i-1", "i-2", "i-3"};
    aws_terminate_params(&p, ids, 3);
    body = aws_params_body(&p);
    CHECK_STR(body, "Action=TerminateInstances&Version=2016-11-15&InstanceId.1=i-1&InstanceId.2=i-2"
                    "&InstanceId.3=i-3");
    free(body);
    aws_params_free(&p);
}

/* ------------------------------------------------------------------------ */
/* Settings                                                                 */

static const char *const *settings_now;

static const char *fake_config_get(ferry_plugin_ctx *ctx, const char *key)
{
    (void)ctx;
    for (const char *const *kv = settings_now; kv && kv[0]; kv += 2)
        if (strcmp(kv[0], key) == 0)
            return kv[1];
    return NULL;
}

static int load(aws_config *c, const char *const *kv, ferry_error_detail *err)
{
    ferry_host_api host = {.struct_size = sizeof(host), .config_get = fake_config_get};
    settings_now = kv;
    memset(err, 0, sizeof(*err));
    return aws_config_load(c, NULL, &host, err);
}

static void test_config(void)
{
    aws_config c;
    ferry_error_detail err;
    CHECK_INT(load(&c,
                   (const char *const[]){
                       "region", "eu-west-1", "instance_type", "t3.micro", "image_id", "ami-1",
                       "zones", "eu-west-1a,eu-west-1b", "subnet_ids", "subnet-1, subnet-2", "spot",
                       "true", "disk_gb", "50", "endpoint", "http://127.0.0.1:4000/", NULL},
                   &err),
              0);
    CHECK_INT(c.zones.n, 2);
    CHECK_STR(c.subnets.v[1], "subnet-2");
    CHECK_INT(c.spot, 1);
    CHECK_INT(c.disk_gb, 50);
    CHECK_STR(c.url, "http://127.0.0.1:4000");
    CHECK_STR(c.host, "127.0.0.1:4000");
    CHECK_STR(c.path, "/");
    CHECK_STR(c.root_device, "/dev/xvda");
    aws_config_free(&c);

    CHECK_INT(load(&c,
                   (const char *const[]){"region", "us-east-2", "instance_type", "t3.micro",
                                         "image_id", "ami-1", NULL},
                   &err),
              0);
    CHECK_STR(c.url, "https://ec2.us-east-2.amazonaws.com");
    CHECK_STR(c.host, "ec2.us-east-2.amazonaws.com");
    aws_config_free(&c);

    CHECK_INT(
        load(&c,
             (const char *const[]){"region", "us-east-1", "instance_type", "t3.micro", "image_id",
                                   "ami-1", "zones", "a,b", "subnet_ids", "s1", NULL},
             &err),
        FERRY_ECONFIG);
    CHECK_CONTAINS(err.message, "give one subnet per zone");
    aws_config_free(&c);
    CHECK_INT(
        load(&c, (const char *const[]){"region", "us-east-1", "image_id", "ami-1", NULL}, &err),
        FERRY_ECONFIG);
    CHECK_CONTAINS(err.message, "instance_type");
    aws_config_free(&c);
    CHECK_INT(load(&c,
                   (const char *const[]){"region", "us-east-1", "instance_type", "t3", "image_id",
                                         "ami-1", "endpoint", "ftp://x", NULL},
                   &err),
              FERRY_ECONFIG);
    CHECK_CONTAINS(err.message, "endpoint");
    aws_config_free(&c);
    CHECK_INT(load(&c,
                   (const char *const[]){"region", "us-east-1", "instance_type", "t3", "image_id",
                                         "ami-1", "spot", "maybe", NULL},
                   &err),
              FERRY_ECONFIG);
    aws_config_free(&c);
}

int main(void)
{
    vectors = getenv("FERRY_VECTORS_DIR");
    if (vectors == NULL) {
        fprintf(stderr, "FERRY_VECTORS_DIR is not set\n");
        return 1;
    }
    test_derived_runinstances();
    test_protocol_cases();
    test_run_instances();
    test_describe_terminate();
    test_config();
    TEST_MAIN_END();
}
