/* aws: EC2's XML answers, read with libxml2.
 *
 * Success documents are <ActionResponse xmlns="http://ec2.amazonaws.com/
 * doc/2016-11-15/"> with a lower-case <requestId>; errors are
 * <Response><Errors><Error><Code/><Message/></Error></Errors><RequestID/>
 * without a namespace. The SDK's ferry/xml.h reads them: by local name,
 * fetching nothing and expanding no entity.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ferry/xml.h"

#include "aws.h"

void aws_xml_init(void)
{
    ferry_xml_init();
}

int aws_xml_error(const char *body, size_t len, char *code, size_t code_cap, char *message,
                  size_t message_cap, char *request_id, size_t request_id_cap)
{
    return ferry_xml_error(body, len, "Response/Errors/Error", "Response/RequestID", code, code_cap,
                           message, message_cap, request_id, request_id_cap);
}

static void aws_instance_tags(xmlNodePtr item, aws_instance *in)
{
    char key[128], value[256];
    for (xmlNodePtr t = ferry_xml_child(ferry_xml_child(item, "tagSet"), "item"); t; t = t->next) {
        if (!ferry_xml_named(t, "item"))
            continue;
        ferry_xml_copy(t, "key", key, sizeof(key));
        ferry_xml_copy(t, "value", value, sizeof(value));
        if (strcmp(key, AWS_TAG_DAEMON) == 0)
            snprintf(in->daemon_id, sizeof(in->daemon_id), "%s", value);
        else if (strcmp(key, AWS_TAG_WORKER) == 0)
            snprintf(in->worker_id, sizeof(in->worker_id), "%s", value);
        else if (strcmp(key, AWS_TAG_ENVIRONMENT) == 0)
            snprintf(in->environment, sizeof(in->environment), "%s", value);
    }
}

static void aws_instance_read(xmlNodePtr item, aws_instance *in)
{
    memset(in, 0, sizeof(*in));
    ferry_xml_copy(item, "instanceId", in->id, sizeof(in->id));
    ferry_xml_copy(item, "instanceState/name", in->state, sizeof(in->state));
    if (in->state[0] == '\0') /* TerminateInstances */
        ferry_xml_copy(item, "currentState/name", in->state, sizeof(in->state));
    ferry_xml_copy(item, "stateReason/code", in->reason_code, sizeof(in->reason_code));
    ferry_xml_copy(item, "stateReason/message", in->reason_message, sizeof(in->reason_message));
    ferry_xml_copy(item, "placement/availabilityZone", in->zone, sizeof(in->zone));
    aws_instance_tags(item, in);
}

static int aws_instances_push(aws_instances *l, xmlNodePtr item)
{
    aws_instance *v = realloc(l->v, (l->n + 1) * sizeof(*v));
    if (v == NULL)
        return FERRY_ENOMEM;
    l->v = v;
    aws_instance_read(item, &l->v[l->n]);
    if (l->v[l->n].id[0])
        l->n++;
    return 0;
}

/* Every <instancesSet> under `n` (RunInstances and TerminateInstances have
 * one at the top, DescribeInstances one per reservation). */
static int aws_collect(xmlNodePtr n, aws_instances *l)
{
    for (; n; n = n->next) {
        if (n->type != XML_ELEMENT_NODE)
            continue;
        if (ferry_xml_named(n, "instancesSet")) {
            for (xmlNodePtr it = n->children; it; it = it->next)
                if (ferry_xml_named(it, "item") && aws_instances_push(l, it) != 0)
                    return FERRY_ENOMEM;
            continue;
        }
        if (ferry_xml_named(n, "reservationSet") || ferry_xml_named(n, "item")) {
            int rc = aws_collect(n->children, l);
            if (rc != 0)
                return rc;
        }
    }
    return 0;
}

int aws_xml_instances(const char *body, size_t len, aws_instances *out)
{
    memset(out, 0, sizeof(*out));
    xmlDocPtr doc = ferry_xml_parse(body, len);
    xmlNodePtr root = doc ? xmlDocGetRootElement(doc) : NULL;
    const char *name = root ? (const char *)root->name : "";
    size_t nlen = strlen(name);
    if (root == NULL || nlen < 8 || strcmp(name + nlen - 8, "Response") != 0 ||
        strcmp(name, "Response") == 0) {
        xmlFreeDoc(doc);
        return FERRY_EPROTO;
    }
    int rc = aws_collect(root->children, out);
    char token[2048];
    ferry_xml_copy(root, "nextToken", token, sizeof(token));
    if (rc == 0 && token[0] && (out->next_token = strdup(token)) == NULL)
        rc = FERRY_ENOMEM;
    xmlFreeDoc(doc);
    if (rc != 0)
        aws_instances_free(out);
    return rc;
}

void aws_instances_free(aws_instances *l)
{
    free(l->v);
    free(l->next_token);
    memset(l, 0, sizeof(*l));
}

/* ------------------------------------------------------------------------ */
/* What EC2's error codes mean to ferry                                     */

typedef struct aws_code_map {
    const char *code;
    int ferry;
    int retry; /* try the same call again */
} aws_code_map;

/* EC2's codes that mean something particular to ferry. The rest are
 * FERRY_EPROVIDER, retried when the status is 5xx. */
static const aws_code_map aws_codes[] = {
    /* throttling: the call is retried with a longer backoff */
    {"RequestLimitExceeded", FERRY_ETHROTTLED, 1},
    {"Throttling", FERRY_ETHROTTLED, 1},
    {"ThrottlingException", FERRY_ETHROTTLED, 1},
    {"EC2ThrottledException", FERRY_ETHROTTLED, 1},
    {"RequestThrottled", FERRY_ETHROTTLED, 1},
    {"InternalError", FERRY_EPROVIDER, 1},
    {"InternalFailure", FERRY_EPROVIDER, 1},
    {"ServiceUnavailable", FERRY_EPROVIDER, 1},
    {"Unavailable", FERRY_EPROVIDER, 1},
    /* no room in this zone (EC2 sends the first as a 500): the next zone */
    {"InsufficientInstanceCapacity", FERRY_ECAPACITY, 0},
    {"InsufficientHostCapacity", FERRY_ECAPACITY, 0},
    {"InsufficientReservedInstanceCapacity", FERRY_ECAPACITY, 0},
    {"InsufficientCapacity", FERRY_ECAPACITY, 0},
    {"InsufficientFreeAddressesInSubnet", FERRY_ECAPACITY, 0},
    {"Unsupported", FERRY_ECAPACITY, 0},
    {"SpotMaxPriceTooLow", FERRY_ECAPACITY, 0},
    {"UnfulfillableCapacity", FERRY_ECAPACITY, 0},
    /* the account's limits: regional, so no other zone helps */
    {"InstanceLimitExceeded", FERRY_EQUOTA, 0},
    {"VcpuLimitExceeded", FERRY_EQUOTA, 0},
    {"MaxSpotInstanceCountExceeded", FERRY_EQUOTA, 0},
    /* credentials and permissions: nothing gets better by trying again */
    {"AuthFailure", FERRY_EAUTH, 0},
    {"InvalidClientTokenId", FERRY_EAUTH, 0},
    {"SignatureDoesNotMatch", FERRY_EAUTH, 0},
    {"MissingAuthenticationToken", FERRY_EAUTH, 0},
    {"IncompleteSignature", FERRY_EAUTH, 0},
    {"ExpiredToken", FERRY_EAUTH, 0},
    {"RequestExpired", FERRY_EAUTH, 0},
    {"OptInRequired", FERRY_EAUTH, 0},
    {"Blocked", FERRY_EAUTH, 0},
    {"UnauthorizedOperation", FERRY_EPERM, 0},
    /* instances that are not there (any more) */
    {"InvalidInstanceID.NotFound", FERRY_ENOENT, 0},
    {"InvalidInstanceID.Malformed", FERRY_EINVAL, 0},
    /* the environment's settings name what does not exist */
    {"InvalidAMIID.NotFound", FERRY_ECONFIG, 0},
    {"InvalidAMIID.Malformed", FERRY_ECONFIG, 0},
    {"InvalidSubnetID.NotFound", FERRY_ECONFIG, 0},
    {"InvalidGroup.NotFound", FERRY_ECONFIG, 0},
    {"InvalidKeyPair.NotFound", FERRY_ECONFIG, 0},
    {"InvalidParameterValue", FERRY_ECONFIG, 0},
    {"InvalidParameterCombination", FERRY_ECONFIG, 0},
    {"InvalidParameter", FERRY_ECONFIG, 0},
    {"MissingParameter", FERRY_ECONFIG, 0},
};

int aws_error_code(const char *code, long http_status, int *retry)
{
    for (size_t i = 0; i < sizeof(aws_codes) / sizeof(aws_codes[0]); i++)
        if (strcmp(code, aws_codes[i].code) == 0) {
            *retry = aws_codes[i].retry;
            return aws_codes[i].ferry;
        }
    *retry = http_status >= 500;
    return http_status == 503 ? FERRY_ETHROTTLED : FERRY_EPROVIDER;
}

int aws_state_ending(const char *state)
{
    return strcmp(state, "shutting-down") == 0 || strcmp(state, "terminated") == 0 ||
           strcmp(state, "stopping") == 0 || strcmp(state, "stopped") == 0;
}

void aws_reason_text(const aws_instance *in, char *buf, size_t cap)
{
    static const struct {
        const char *code, *text;
    } known[] = {
        {"Server.SpotInstanceTermination", "spot interruption"},
        {"Server.SpotInstanceShutdown", "spot interruption"},
        {"Client.UserInitiatedShutdown", "terminated by a user or the API, outside ferry"},
        {"Client.InstanceInitiatedShutdown", "shut down from inside the instance"},
        {"Server.InsufficientInstanceCapacity", "insufficient capacity"},
        {"Server.InternalError", "an internal error of EC2"},
        {"Server.ScheduledStop", "scheduled retirement"},
    };
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
        if (strcmp(in->reason_code, known[i].code) == 0) {
            snprintf(buf, cap, "%s", known[i].text);
            return;
        }
    snprintf(buf, cap, "%s", in->reason_message[0] ? in->reason_message : in->reason_code);
}
