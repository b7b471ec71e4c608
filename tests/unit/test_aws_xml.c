/* The aws plugin's reading of EC2's answers (plugins/aws/aws_xml.c) against
 * tests/vectors/ec2: RunInstances and DescribeInstances (compared with
 * botocore's own parse of the same documents), the AWS documentation's
 * DescribeInstances and TerminateInstances, error documents (the docs, real
 * InsufficientInstanceCapacity and RequestLimitExceeded bodies, botocore's
 * and the protocol tests' errors), plus what ferry adds: its tags, state
 * reasons, paging tokens, and what each error code means to the scheduler.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "aws.h"
#include "test.h"
#include "util.h"

static const char *vectors;

static char *read_vector(const char *rel, size_t *len)
{
    char *path = ferry_asprintf("%s/ec2/%s", vectors, rel);
    char *text = ferry_read_file(path, len);
    if (text == NULL)
        fprintf(stderr, "cannot read %s\n", path);
    free(path);
    return text;
}

static json_t *read_json(const char *rel)
{
    char *path = ferry_asprintf("%s/ec2/%s", vectors, rel);
    json_t *j = json_load_file(path, 0, NULL);
    free(path);
    return j;
}

/* Every instance botocore found in the document, in order, is ours too:
 * same id, state and zone. */
static void check_against_botocore(const aws_instances *got, json_t *instances)
{
    size_t i;
    json_t *in;
    json_array_foreach(instances, i, in)
    {
        if (i >= got->n) {
            fprintf(stderr, "instance %zu of botocore's parse is missing\n", i);
            ferry_test_failures++;
            return;
        }
        CHECK_STR(got->v[i].id, json_string_value(json_object_get(in, "InstanceId")));
        CHECK_STR(got->v[i].state,
                  json_string_value(json_object_get(json_object_get(in, "State"), "Name")));
        CHECK_STR(got->v[i].zone, json_string_value(json_object_get(
                                      json_object_get(in, "Placement"), "AvailabilityZone")));
    }
    CHECK_INT(got->n, json_array_size(instances));
}

static void test_botocore_documents(void)
{
    size_t len;
    aws_instances got;
    char *xml = read_vector("botocore/responses__ec2-run-instances.xml", &len);
    json_t *want = read_json("botocore/responses__ec2-run-instances.json");
    CHECK_INT(aws_xml_instances(xml, len, &got), 0);
    check_against_botocore(&got, json_object_get(want, "Instances"));
    CHECK_STR(got.v[0].reason_code, "pending");
    CHECK(got.next_token == NULL);
    aws_instances_free(&got);
    json_decref(want);
    free(xml);

    xml = read_vector("botocore/responses__ec2-describe-instances.xml", &len);
    want = read_json("botocore/responses__ec2-describe-instances.json");
    CHECK_INT(aws_xml_instances(xml, len, &got), 0);
    json_t *all = json_array();
    size_t i;
    json_t *r;
    json_array_foreach(json_object_get(want, "Reservations"), i, r)
        json_array_extend(all, json_object_get(r, "Instances"));
    check_against_botocore(&got, all);
    json_decref(all);
    aws_instances_free(&got);
    json_decref(want);
    free(xml);
}

static void test_aws_docs(void)
{
    size_t len;
    aws_instances got;
    char *xml = read_vector("aws-docs/DescribeInstancesResponse.xml", &len);
    CHECK_INT(aws_xml_instances(xml, len, &got), 0);
    CHECK_INT(got.n, 1);
    CHECK_STR(got.v[0].id, "i-1234567890abcdef0");
    CHECK_STR(got.v[0].state, "running");
    CHECK_STR(got.v[0].zone, "eu-west-1c");
    CHECK_STR(got.v[0].daemon_id, ""); /* its only tag is Name */
    CHECK(!aws_state_ending(got.v[0].state));
    aws_instances_free(&got);
    free(xml);

    xml = read_vector("aws-docs/TerminateInstancesResponse.xml", &len);
    CHECK_INT(aws_xml_instances(xml, len, &got), 0);
    CHECK_INT(got.n, 1);
    CHECK_STR(got.v[0].id, "i-1234567890abcdef0");
    CHECK_STR(got.v[0].state, "shutting-down"); /* currentState, not previousState */
    CHECK(aws_state_ending(got.v[0].state));
    aws_instances_free(&got);
    free(xml);
}

static void check_error(const char *rel, const char *code, const char *message_part,
                        const char *request_id)
{
    size_t len;
    char *xml = read_vector(rel, &len);
    char c[64], m[512], rid[128];
    CHECK_INT(aws_xml_error(xml, len, c, sizeof(c), m, sizeof(m), rid, sizeof(rid)), 1);
    CHECK_STR(c, code);
    CHECK_CONTAINS(m, message_part);
    CHECK_STR(rid, request_id);
    aws_instances got;
    CHECK_INT(aws_xml_instances(xml, len, &got), FERRY_EPROTO); /* not an answer */
    free(xml);
}

static void test_errors(void)
{
    check_error("aws-docs/Error_InvalidInstanceID.NotFound.xml", "InvalidInstanceID.NotFound",
                "does not exist", "ea966190-f9aa-478e-9ede-example");
    check_error("wire/Error_InsufficientInstanceCapacity_http500_real.xml",
                "InsufficientInstanceCapacity", "capacity in the Availability Zone you requested",
                "80586c44-65e6-4676-80f1-e96a47206379");
    check_error("wire/Error_InsufficientInstanceCapacity.xml", "InsufficientInstanceCapacity",
                "Insufficient capacity.", "bd5b4071-755d-440e-8381-aa09bad52d69");
    check_error("wire/Error_RequestLimitExceeded.xml", "RequestLimitExceeded",
                "Request limit exceeded.", "6280e71d-9be4-442c-8ddf-00265efeafe6");
    check_error("botocore/errors__ec2-describe-instances.xml", "InvalidInstanceID.Malformed",
                "Invalid id", "dfb14b43-9a55-4d8e-b676-e8034d12bbeb");

    /* The protocol tests' error cases: code, message and RequestID. */
    json_t *suites = read_json("protocol-tests/botocore_output_ec2.json");
    CHECK(suites != NULL);
    size_t i, k, seen = 0;
    json_t *suite, *c;
    json_array_foreach(suites, i, suite) json_array_foreach(json_object_get(suite, "cases"), k, c)
    {
        const char *id = json_string_value(json_object_get(c, "id"));
        if (strcmp(id, "Ec2InvalidGreetingError") != 0 && strcmp(id, "Ec2ComplexError") != 0)
            continue;
        const char *body =
            json_string_value(json_object_get(json_object_get(c, "response"), "body"));
        char code[64], msg[256], rid[64];
        CHECK_INT(aws_xml_error(body, strlen(body), code, sizeof(code), msg, sizeof(msg), rid,
                                sizeof(rid)),
                  1);
        CHECK_STR(code, strcmp(id, "Ec2ComplexError") == 0 ? "ComplexError" : "InvalidGreeting");
        CHECK_STR(msg, "Hi");
        CHECK_STR(rid, "foo-id");
        seen++;
    }
    CHECK_INT(seen, 2);
    json_decref(suites);

    char code[64], msg[64], rid[64];
    CHECK_INT(aws_xml_error("<html>busy</html>", 17, code, sizeof(code), msg, sizeof(msg), rid,
                            sizeof(rid)),
              0);
    CHECK_INT(aws_xml_error("", 0, code, sizeof(code), msg, sizeof(msg), rid, sizeof(rid)), 0);
}

/* What ferry reads beyond botocore's samples: its tags, a spot
 * interruption's reason, the paging token, and nested items that are not
 * the instance's own. */
static void test_ferry_fields(void)
{
    const char *xml =
        "<DescribeInstancesResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\">"
        "<requestId>r</requestId><reservationSet><item><reservationId>r-1</reservationId>"
        "<instancesSet><item><instanceId>i-0aaa</instanceId>"
        "<instanceState><code>48</code><name>terminated</name></instanceState>"
        "<groupSet><item><groupId>sg-1</groupId><instanceId>i-nested</instanceId></item></groupSet>"
        "<stateReason><code>Server.SpotInstanceTermination</code>"
        "<message>Server.SpotInstanceTermination: Spot instance termination</message></stateReason>"
        "<placement><availabilityZone>us-east-1b</availabilityZone></placement>"
        "<tagSet><item><key>ferry:daemon</key><value>d0d0</value></item>"
        "<item><key>ferry:worker</key><value>w-1</value></item>"
        "<item><key>ferry:environment</key><value>gpu</value></item></tagSet></item>"
        "<item><instanceId>i-0bbb</instanceId><instanceState><code>80</code><name>stopped</name>"
        "</instanceState><stateReason><code>Client.Odd</code><message>odd reason</message>"
        "</stateReason></item></instancesSet></item>"
        "<item><instancesSet><item><instanceId>i-0ccc</instanceId><instanceState><code>16</code>"
        "<name>running</name></instanceState></item></instancesSet></item></reservationSet>"
        "<nextToken>page-2</nextToken></DescribeInstancesResponse>";
    aws_instances got;
    CHECK_INT(aws_xml_instances(xml, strlen(xml), &got), 0);
    CHECK_INT(got.n, 3);
    CHECK_STR(got.v[0].id, "i-0aaa");
    CHECK_STR(got.v[0].daemon_id, "d0d0");
    CHECK_STR(got.v[0].worker_id, "w-1");
    CHECK_STR(got.v[0].environment, "gpu");
    CHECK_STR(got.v[0].zone, "us-east-1b");
    char reason[128];
    aws_reason_text(&got.v[0], reason, sizeof(reason));
    CHECK_STR(reason, "spot interruption");
    CHECK_STR(got.v[1].state, "stopped");
    CHECK(aws_state_ending(got.v[1].state));
    aws_reason_text(&got.v[1], reason, sizeof(reason));
    CHECK_STR(reason, "odd reason");
    CHECK_STR(got.v[2].id, "i-0ccc");
    CHECK_STR(got.next_token, "page-2");
    aws_instances_free(&got);
    CHECK_INT(aws_xml_instances("not xml", 7, &got), FERRY_EPROTO);
}

static void test_codes(void)
{
    struct {
        const char *code;
        long status;
        int ferry, retry;
    } cases[] = {
        {"RequestLimitExceeded", 503, FERRY_ETHROTTLED, 1},
        {"InsufficientInstanceCapacity", 500, FERRY_ECAPACITY, 0}, /* the next zone, not again */
        {"Unsupported", 400, FERRY_ECAPACITY, 0},
        {"SpotMaxPriceTooLow", 400, FERRY_ECAPACITY, 0},
        {"AuthFailure", 401, FERRY_EAUTH, 0},
        {"UnauthorizedOperation", 403, FERRY_EPERM, 0},
        {"InvalidClientTokenId", 403, FERRY_EAUTH, 0},
        {"SignatureDoesNotMatch", 403, FERRY_EAUTH, 0},
        {"InvalidInstanceID.NotFound", 400, FERRY_ENOENT, 0},
        {"InvalidAMIID.NotFound", 400, FERRY_ECONFIG, 0},
        {"VcpuLimitExceeded", 400, FERRY_EQUOTA, 0},
        {"InternalError", 500, FERRY_EPROVIDER, 1},
        {"HTTP502", 502, FERRY_EPROVIDER, 1},
        {"HTTP503", 503, FERRY_ETHROTTLED, 1},
        {"SomethingNew", 400, FERRY_EPROVIDER, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int retry = -1;
        int got = aws_error_code(cases[i].code, cases[i].status, &retry);
        if (got != cases[i].ferry || retry != cases[i].retry) {
            fprintf(stderr, "%s (HTTP %ld): %s retry %d, expected %s retry %d\n", cases[i].code,
                    cases[i].status, ferry_err_name(got), retry, ferry_err_name(cases[i].ferry),
                    cases[i].retry);
            ferry_test_failures++;
        }
    }
}

int main(void)
{
    vectors = getenv("FERRY_VECTORS_DIR");
    if (vectors == NULL) {
        fprintf(stderr, "FERRY_VECTORS_DIR is not set\n");
        return 1;
    }
    aws_xml_init();
    test_botocore_documents();
    test_aws_docs();
    test_errors();
    test_ferry_fields();
    test_codes();
    TEST_MAIN_END();
}
