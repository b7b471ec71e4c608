/* The gcp plugin's Compute Engine bodies and answers (plugins/gcp/
 * gcp_json.c, gcp_config.c) against tests/vectors/gcp: the insert request's
 * shape, libcloud's operation and instance fixtures, Google's error
 * envelopes; plus ferry's labels, names, spot and GPU scheduling, list
 * filter and paging, what each error means to the scheduler, and the
 * settings' checks. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "gcp.h"
#include "test.h"
#include "util.h"

static const char *vectors;

static char *read_vector(const char *rel, size_t *len)
{
    char *path = ferry_asprintf("%s/gcp/%s", vectors, rel);
    char *text = ferry_read_file(path, len);
    if (text == NULL)
        fprintf(stderr, "cannot read %s\n", path);
    free(path);
    return text;
}

/* Settings from a NULL-terminated name, value list. */
static const char *settings_get(void *arg, const char *name)
{
    const char **kv = arg;
    for (; kv[0]; kv += 2)
        if (strcmp(kv[0], name) == 0)
            return kv[1];
    return NULL;
}

static char *key_path;

static int load(gcp_config *cfg, const char **kv, ferry_error_detail *err)
{
    return gcp_config_load(cfg, settings_get, (void *)kv, err);
}

static void test_config(void)
{
    key_path =
        ferry_asprintf("%s/gcp/service_account_jwt/google-auth-test-service_account.json", vectors);
    gcp_config cfg;
    ferry_error_detail err = {0};
    const char *ok[] = {"credentials_file",
                        key_path,
                        "zones",
                        "us-central1-a, us-central1-b",
                        "machine_type",
                        "g2-standard-8",
                        "image",
                        "projects/debian-cloud/global/images/family/debian-12",
                        "disk_gb",
                        "100",
                        "spot",
                        "true",
                        "accelerators",
                        "nvidia-l4:2",
                        "endpoint",
                        "http://127.0.0.1:9/compute/v1/",
                        NULL};
    CHECK_INT(load(&cfg, ok, &err), 0);
    CHECK_STR(cfg.project, "example-project"); /* the key's */
    CHECK_INT(cfg.zones.n, 2);
    CHECK_STR(cfg.zones.v[1], "us-central1-b");
    CHECK_STR(cfg.endpoint, "http://127.0.0.1:9/compute/v1");
    CHECK_INT(cfg.n_accelerators, 1);
    CHECK_INT(cfg.accelerators[0].count, 2);
    CHECK_STR(cfg.termination_action, "DELETE");
    CHECK_STR(cfg.network, "default");
    CHECK_INT(cfg.disk_gb, 100);
    CHECK_CONTAINS(cfg.credentials_source, "credentials_file");
    gcp_config_free(&cfg);

    const char *no_zone[] = {
        "credentials_file", key_path, "machine_type", "e2-medium", "image", "x", NULL};
    CHECK_INT(load(&cfg, no_zone, &err), FERRY_ECONFIG);
    CHECK_CONTAINS(err.message, "zones");
    gcp_config_free(&cfg);
    /* The form: groups, which ferryd hands over as "type=...;count=...". */
    const char *groups[] = {"credentials_file",
                            key_path,
                            "zones",
                            "z",
                            "machine_type",
                            "m",
                            "image",
                            "i",
                            "accelerators",
                            "type=nvidia-l4;count=2,count=1;type=nvidia-t4,type=nvidia-a100",
                            NULL};
    CHECK_INT(load(&cfg, groups, &err), 0);
    CHECK_INT(cfg.n_accelerators, 3);
    CHECK_STR(cfg.accelerators[0].type, "nvidia-l4");
    CHECK_INT(cfg.accelerators[0].count, 2);
    CHECK_STR(cfg.accelerators[1].type, "nvidia-t4");
    CHECK_INT(cfg.accelerators[1].count, 1);
    CHECK_STR(cfg.accelerators[2].type, "nvidia-a100");
    CHECK_INT(cfg.accelerators[2].count, 1);
    gcp_config_free(&cfg);
    const char *bad_group[] = {"credentials_file",
                               key_path,
                               "zones",
                               "z",
                               "machine_type",
                               "m",
                               "image",
                               "i",
                               "accelerators",
                               "kind=nvidia-l4;count=1",
                               NULL};
    CHECK_INT(load(&cfg, bad_group, &err), FERRY_ECONFIG);
    CHECK_CONTAINS(err.message, "{ type = ");
    gcp_config_free(&cfg);
    /* An empty list is refused, never read as "no GPUs". */
    const char *bad_acc[] = {"credentials_file", key_path, "zones", "z",
                             "machine_type",     "m",      "image", "i",
                             "accelerators",     "",       NULL};
    CHECK_INT(load(&cfg, bad_acc, &err), FERRY_ECONFIG);
    CHECK_CONTAINS(err.message, "leave it out for none");
    gcp_config_free(&cfg);
    const char *bad_acc2[] = {"credentials_file", key_path,      "zones", "z",
                              "machine_type",     "m",           "image", "i",
                              "accelerators",     "nvidia-l4:x", NULL};
    CHECK_INT(load(&cfg, bad_acc2, &err), FERRY_ECONFIG);
    CHECK_CONTAINS(err.message, "type:count");
    gcp_config_free(&cfg);
    const char *no_key[] = {"credentials_file", "/nonexistent/key.json", NULL};
    CHECK_INT(load(&cfg, no_key, &err), FERRY_ECONFIG);
    CHECK_CONTAINS(err.message, "/nonexistent/key.json");
    gcp_config_free(&cfg);
    const char *bad_action[] = {"credentials_file",   key_path, "zones", "z",
                                "machine_type",       "m",      "image", "i",
                                "termination_action", "KEEP",   NULL};
    CHECK_INT(load(&cfg, bad_action, &err), FERRY_ECONFIG);
    gcp_config_free(&cfg);
}

static void test_insert_body(void)
{
    gcp_config cfg;
    ferry_error_detail err = {0};
    const char *kv[] = {"credentials_file",
                        key_path,
                        "project",
                        "my-project",
                        "zones",
                        "us-central1-a",
                        "machine_type",
                        "e2-medium",
                        "image",
                        "projects/debian-cloud/global/images/family/debian-12",
                        "disk_gb",
                        "10",
                        NULL};
    CHECK_INT(load(&cfg, kv, &err), 0);
    gcp_launch_spec s = {.daemon_id = "D-1234",
                         .environment = "GCP_gpu",
                         .worker_id = "0f8e5c1a-1111-4222-8333-444455556666",
                         .user_data = "#! /bin/bash\necho hello > /tmp/hello.txt\n",
                         .zone = "us-central1-a"};
    json_t *b = gcp_insert_body(&cfg, &s);
    CHECK(b != NULL);
    /* Every field the vector's request has, with the same shape. */
    char *vpath = ferry_asprintf("%s/gcp/instances_insert_request.json", vectors);
    json_t *v = json_load_file(vpath, 0, NULL);
    free(vpath);
    CHECK(v != NULL);
    CHECK_STR(json_string_value(json_object_get(b, "machineType")),
              json_string_value(json_object_get(v, "machineType")));
    CHECK(json_equal(json_object_get(b, "disks"), json_object_get(v, "disks")));
    CHECK(json_equal(json_object_get(b, "networkInterfaces"),
                     json_object_get(v, "networkInterfaces")));
    CHECK(json_equal(json_object_get(b, "metadata"), json_object_get(v, "metadata")));
    CHECK_STR(json_string_value(json_object_get(b, "name")),
              "ferry-0f8e5c1a-1111-4222-8333-444455556666");
    json_t *labels = json_object_get(b, "labels");
    CHECK_STR(json_string_value(json_object_get(labels, GCP_LABEL_DAEMON)), "d-1234");
    CHECK_STR(json_string_value(json_object_get(labels, GCP_LABEL_WORKER)), s.worker_id);
    CHECK_STR(json_string_value(json_object_get(labels, GCP_LABEL_ENVIRONMENT)), "gcp_gpu");
    CHECK(json_object_get(b, "scheduling") == NULL);
    CHECK(json_object_get(b, "guestAccelerators") == NULL);
    CHECK(json_object_get(b, "serviceAccounts") == NULL); /* none unless asked */
    json_decref(b);
    json_decref(v);
    gcp_config_free(&cfg);

    /* Spot with GPUs and a service account. */
    const char *kv2[] = {"credentials_file",
                         key_path,
                         "project",
                         "p",
                         "zones",
                         "z1",
                         "machine_type",
                         "g2-standard-8",
                         "image",
                         "i",
                         "spot",
                         "true",
                         "accelerators",
                         "nvidia-l4",
                         "service_account",
                         "sa@p.iam.gserviceaccount.com",
                         "termination_action",
                         "stop",
                         "network",
                         "projects/p/global/networks/n",
                         NULL};
    CHECK_INT(load(&cfg, kv2, &err), 0);
    s.zone = "z1";
    b = gcp_insert_body(&cfg, &s);
    json_t *sched = json_object_get(b, "scheduling");
    CHECK_STR(json_string_value(json_object_get(sched, "provisioningModel")), "SPOT");
    CHECK_STR(json_string_value(json_object_get(sched, "instanceTerminationAction")), "STOP");
    CHECK_STR(json_string_value(json_object_get(sched, "onHostMaintenance")), "TERMINATE");
    CHECK(json_is_false(json_object_get(sched, "automaticRestart")));
    json_t *acc = json_array_get(json_object_get(b, "guestAccelerators"), 0);
    CHECK_STR(json_string_value(json_object_get(acc, "acceleratorType")),
              "zones/z1/acceleratorTypes/nvidia-l4");
    CHECK_INT(json_integer_value(json_object_get(acc, "acceleratorCount")), 1);
    CHECK_STR(json_string_value(json_object_get(
                  json_array_get(json_object_get(b, "serviceAccounts"), 0), "email")),
              "sa@p.iam.gserviceaccount.com");
    CHECK_STR(json_string_value(json_object_get(
                  json_array_get(json_object_get(b, "networkInterfaces"), 0), "network")),
              "projects/p/global/networks/n");
    CHECK(json_object_get(
              json_object_get(json_array_get(json_object_get(b, "disks"), 0), "initializeParams"),
              "diskSizeGb") == NULL);
    json_decref(b);

    char *u = gcp_instances_url(&cfg, "z1", "ferry-x");
    CHECK_STR(u, "https://compute.googleapis.com/compute/v1/projects/p/zones/z1/instances/ferry-x");
    free(u);
    u = gcp_list_url(&cfg, "z1", "D1", "a b/c");
    CHECK_STR(u, "https://compute.googleapis.com/compute/v1/projects/p/zones/z1/instances?"
                 "filter=labels.ferry-daemon%3D%22d1%22&maxResults=500&pageToken=a%20b%2Fc");
    free(u);
    gcp_config_free(&cfg);

    char name[64];
    gcp_instance_name("ABC_def--", name, sizeof(name));
    CHECK_STR(name, "ferry-abc-def");
    gcp_instance_name("0123456789012345678901234567890123456789012345678901234567890123456789",
                      name, sizeof(name));
    CHECK_INT(strlen(name), 63);
}

static void test_operations(void)
{
    size_t len;
    gcp_operation op;
    char *t = read_vector("libcloud-gce-fixtures/zones_us-central1-a_instances_post.json", &len);
    CHECK_INT(gcp_operation_parse(t, len, &op), 0);
    CHECK_STR(op.status, "PENDING");
    CHECK_STR(op.zone, "us-central1-a");
    CHECK_STR(op.name, "operation-zones_us-central1-a_instances_post");
    CHECK_STR(op.error_code, "");
    free(t);
    t = read_vector(
        "libcloud-gce-fixtures/operations_operation_zones_us-central1-a_instances_post.json", &len);
    CHECK_INT(gcp_operation_parse(t, len, &op), 0);
    CHECK_STR(op.status, "DONE");
    CHECK_STR(op.error_code, "");
    free(t);
    t = read_vector(
        "libcloud-gce-fixtures/operations_operation_zones_europe-west1-a_instances_post.json",
        &len);
    CHECK_INT(gcp_operation_parse(t, len, &op), 0);
    CHECK_STR(op.error_code, "RESOURCE_ALREADY_EXISTS");
    CHECK_INT(op.http_error_status, 409);
    CHECK_INT(gcp_operation_error_code(op.error_code), FERRY_EEXIST);
    free(t);
    t = read_vector("google_api_error_examples.json", &len);
    json_t *ex = json_loads(t, 0, NULL);
    free(t);
    char *o = json_dumps(
        json_object_get(ex, "operation_done_with_error_ZONE_RESOURCE_POOL_EXHAUSTED_EXAMPLE"), 0);
    CHECK_INT(gcp_operation_parse(o, strlen(o), &op), 0);
    CHECK_STR(op.error_code, "ZONE_RESOURCE_POOL_EXHAUSTED");
    CHECK_CONTAINS(op.error_message, "does not have enough resources");
    CHECK_INT(gcp_operation_error_code(op.error_code), FERRY_ECAPACITY);
    CHECK_INT(gcp_operation_error_code("QUOTA_EXCEEDED"), FERRY_ECAPACITY);
    free(o);

    /* Error envelopes. */
    char reason[64], msg[320];
    int retry = 7;
    o = json_dumps(json_object_get(ex, "http_404_notFound"), 0);
    CHECK_INT(gcp_error_parse(o, strlen(o), reason, sizeof(reason), msg, sizeof(msg)), 1);
    CHECK_STR(reason, "notFound");
    CHECK_CONTAINS(msg, "was not found");
    CHECK_INT(gcp_error_code(reason, 404, &retry), FERRY_ENOENT);
    CHECK_INT(retry, 0);
    free(o);
    o = json_dumps(json_object_get(ex, "http_403_quotaExceeded_EXAMPLE"), 0);
    CHECK_INT(gcp_error_parse(o, strlen(o), reason, sizeof(reason), msg, sizeof(msg)), 1);
    CHECK_STR(reason, "quotaExceeded");
    /* A 403 that is a quota is not an auth failure. */
    CHECK_INT(gcp_error_code(reason, 403, &retry), FERRY_EQUOTA);
    free(o);
    json_decref(ex);
    t = read_vector("libcloud-gce-fixtures/global_images_family_notfound.json", &len);
    CHECK_INT(gcp_error_parse(t, len, reason, sizeof(reason), msg, sizeof(msg)), 1);
    CHECK_STR(reason, "notFound");
    free(t);
    CHECK_INT(gcp_error_parse("<html>502</html>", 16, reason, sizeof(reason), msg, sizeof(msg)), 0);
    CHECK_INT(gcp_error_code("rateLimitExceeded", 403, &retry), FERRY_ETHROTTLED);
    CHECK_INT(retry, 1);
    CHECK_INT(gcp_error_code("", 429, &retry), FERRY_ETHROTTLED);
    CHECK_INT(gcp_error_code("", 503, &retry), FERRY_EPROVIDER);
    CHECK_INT(retry, 1);
    CHECK_INT(gcp_error_code("authError", 401, &retry), FERRY_EAUTH);
    CHECK_INT(retry, 0);
    CHECK_INT(gcp_error_code("forbidden", 403, &retry), FERRY_EPERM);
    CHECK_INT(retry, 0);
}

static void test_instances(void)
{
    size_t len;
    gcp_instance in;
    char *t =
        read_vector("libcloud-gce-fixtures/zones_us-central1-a_instances_node-name.json", &len);
    CHECK_INT(gcp_instance_parse(t, len, &in), 0);
    CHECK_STR(in.id, "us-central1-a/node-name");
    CHECK_STR(in.state, "running");
    CHECK_STR(in.reason, "");
    free(t);
    t = read_vector("libcloud-gce-fixtures/zones_us_central1_a_instances_stopped_node.json", &len);
    CHECK_INT(gcp_instance_parse(t, len, &in), 0);
    CHECK_STR(in.status, "TERMINATED");
    CHECK_STR(in.state, "stopped");
    CHECK(gcp_state_ending(in.state));
    CHECK_CONTAINS(in.reason, "stopped outside ferry");
    free(t);
    const char *spot = "{\"name\":\"ferry-w\",\"zone\":\"https://x/zones/z1\",\"status\":"
                       "\"STOPPING\",\"scheduling\":{\"provisioningModel\":\"SPOT\"},"
                       "\"labels\":{\"ferry-daemon\":\"d\",\"ferry-worker\":\"w\"}}";
    CHECK_INT(gcp_instance_parse(spot, strlen(spot), &in), 0);
    CHECK_CONTAINS(in.reason, "spot preemption");
    CHECK_STR(in.worker_id, "w");
    CHECK_STR(in.state, "stopping");

    gcp_instances l = {0};
    t = read_vector("libcloud-gce-fixtures/zones_us-central1-a_instances.json", &len);
    CHECK_INT(gcp_instances_parse(t, len, &l), 0);
    CHECK_INT(l.n, 1);
    CHECK_STR(l.v[0].name, "node-name");
    CHECK(l.next_page_token == NULL);
    free(t);
    const char *page = "{\"kind\":\"compute#instanceList\",\"items\":[{\"name\":\"a\",\"zone\":"
                       "\"z/zones/z2\",\"status\":\"PROVISIONING\"}],\"nextPageToken\":\"tok\"}";
    CHECK_INT(gcp_instances_parse(page, strlen(page), &l), 0);
    CHECK_INT(l.n, 2);
    CHECK_STR(l.v[1].id, "z2/a");
    CHECK_STR(l.v[1].state, "pending");
    CHECK_STR(l.next_page_token, "tok");
    CHECK_INT(gcp_instances_parse("{\"kind\":\"compute#instanceList\"}", 31, &l), 0);
    CHECK_INT(l.n, 2);
    CHECK(l.next_page_token == NULL);
    CHECK_INT(gcp_instances_parse("[", 1, &l), FERRY_EPROTO);
    gcp_instances_free(&l);
}

int main(void)
{
    vectors = getenv("FERRY_VECTORS_DIR");
    if (vectors == NULL) {
        fprintf(stderr, "FERRY_VECTORS_DIR is not set\n");
        return 1;
    }
    test_config();
    test_insert_body();
    test_operations();
    test_instances();
    free(key_path);
    TEST_MAIN_END();
}
