/* The SDK cloud kit's ops (sdk/src/cloud.c), which the aws and gcp plugins
 * run with their own requests and parses: a launch's checks and its end,
 * and list, describe and terminate: paging and places, the JSON the host
 * reads, the instances known alive, errors, and no completion once fini
 * began. A fake provider records each call; the test answers it as a cloud
 * would. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "test.h"

#include "ferry/cloud.h"

/* The call the fake provider was last asked for, waiting for its answer. */
static struct {
    ferry_cloud_task *task;
    ferry_cloud_answer_fn done;
    char what[32];
    char token[32];
    size_t place;
    int refuse; /* the next call starter fails with this */
} pending;

/* What the host was told last. */
static struct {
    int calls;
    int status;
    char text[512];
    char provider_code[64];
    char message[256];
} completed;

static void fake_op_complete(ferry_op *op, int status, const ferry_op_result *r)
{
    (void)op;
    completed.calls++;
    completed.status = status;
    snprintf(completed.text, sizeof(completed.text), "%s", r->text ? r->text : "");
    completed.provider_code[0] = completed.message[0] = '\0';
    if (r->error) {
        snprintf(completed.provider_code, sizeof(completed.provider_code), "%s",
                 r->error->provider_code);
        snprintf(completed.message, sizeof(completed.message), "%s", r->error->message);
    }
}

static int fake_start(ferry_cloud_task *t, const char *what, const char *token,
                      ferry_cloud_answer_fn done)
{
    if (pending.refuse) {
        int rc = pending.refuse;
        pending.refuse = 0;
        return rc;
    }
    pending.task = t;
    pending.done = done;
    pending.place = t->place;
    snprintf(pending.what, sizeof(pending.what), "%s", what);
    snprintf(pending.token, sizeof(pending.token), "%s", token ? token : "");
    return 0;
}

static int fake_list_page(ferry_cloud_task *t, const char *token, ferry_cloud_answer_fn done)
{
    return fake_start(t, "list", token, done);
}

static int fake_describe(ferry_cloud_task *t, ferry_cloud_answer_fn done)
{
    return fake_start(t, "describe", NULL, done);
}

static int fake_terminate(ferry_cloud_task *t, ferry_cloud_answer_fn done)
{
    return fake_start(t, "terminate", NULL, done);
}

/* Bodies are "id:state[,id:state...][;next]" ("-" for an empty page);
 * "garbled" is not one. */
static int fake_parse(ferry_cloud_task *t, const char *body, char **next_token)
{
    if (strcmp(body, "garbled") == 0)
        return FERRY_EPROTO;
    char copy[256];
    snprintf(copy, sizeof(copy), "%s", body);
    char *next = strchr(copy, ';');
    if (next) {
        *next++ = '\0';
        if (next_token)
            *next_token = strdup(next);
    }
    char *save = NULL;
    for (char *it = strtok_r(copy, ",", &save); it; it = strtok_r(NULL, ",", &save)) {
        char *colon = strchr(it, ':');
        if (colon == NULL)
            continue;
        *colon = '\0';
        int ending = strcmp(colon + 1, "terminated") == 0;
        ferry_cloud_instance in = {.id = it,
                                   .state = colon + 1,
                                   .worker_id = "w",
                                   .environment = "env",
                                   .zone = "z",
                                   .reason = "spot interruption",
                                   .ending = ending};
        int rc = ferry_cloud_found(t, &in);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static int fake_list_parse(ferry_cloud_task *t, const char *body, size_t len, char **next_token)
{
    (void)len;
    return fake_parse(t, body, next_token);
}

static int fake_describe_parse(ferry_cloud_task *t, const char *body, size_t len)
{
    (void)len;
    return fake_parse(t, body, NULL);
}

static const ferry_cloud_provider fake_provider = {
    .name = "fake",
    .list_what = "Fake list",
    .describe_what = "Fake get",
    .not_found_code = "NotThere",
    .list_page = fake_list_page,
    .list_parse = fake_list_parse,
    .describe = fake_describe,
    .describe_parse = fake_describe_parse,
    .terminate = fake_terminate,
};

static char logged[512];

static void fake_log(ferry_plugin_ctx *ctx, ferry_log_level level, const char *fmt, ...)
{
    (void)ctx;
    (void)level;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(logged, sizeof(logged), fmt, ap);
    va_end(ap);
}

static ferry_host_api fake_host = {
    .struct_size = sizeof(ferry_host_api), .log = fake_log, .op_complete = fake_op_complete};

/* The pending call answered with `body` (or the error `status`). */
static void answer(int status, const char *body)
{
    ferry_cloud_task *t = pending.task;
    ferry_cloud_answer_fn done = pending.done;
    ferry_error_detail err;
    ferry_error_set(&err, status, 0, status ? "Said" : NULL, "the cloud said no");
    pending.task = NULL;
    done(t, status, body, body ? strlen(body) : 0, status ? &err : NULL);
}

static void test_list(void)
{
    int state;
    ferry_cloud c = {.provider = &fake_provider, .state = &state, .host = &fake_host};
    ferry_op *op = (ferry_op *)&state;
    CHECK_INT(ferry_cloud_list(&c, NULL, 2, op), FERRY_EINVAL);
    CHECK_INT(ferry_cloud_list(&c, "", 2, op), FERRY_EINVAL);

    /* Two places; the first has two pages. */
    completed.calls = 0;
    CHECK_INT(ferry_cloud_list(&c, "d1", 2, op), 0);
    CHECK(pending.task && pending.task->state == &state);
    CHECK_STR(pending.task->daemon_id, "d1");
    CHECK_STR(pending.token, "");
    answer(0, "i-1:running,i-2:terminated;tok");
    CHECK_STR(pending.what, "list");
    CHECK_STR(pending.token, "tok");
    CHECK_INT(pending.place, 0);
    answer(0, "-");
    CHECK_STR(pending.token, "");
    CHECK_INT(pending.place, 1);
    CHECK_INT(completed.calls, 0);
    answer(0, "i-3:pending");
    CHECK_INT(completed.calls, 1);
    CHECK_INT(completed.status, 0);
    json_t *j = json_loads(completed.text, 0, NULL);
    CHECK_INT(json_array_size(j), 3);
    CHECK_STR(json_string_value(json_object_get(json_array_get(j, 0), "instance_id")), "i-1");
    CHECK_STR(json_string_value(json_object_get(json_array_get(j, 0), "environment")), "env");
    CHECK(json_object_get(json_array_get(j, 0), "reason") == NULL); /* not ending */
    CHECK_STR(json_string_value(json_object_get(json_array_get(j, 1), "reason")),
              "spot interruption");
    json_decref(j);
    /* What is alive is known (retired at fini); what is ending is not. */
    CHECK_INT(c.known.n, 2);
    CHECK(ferry_strlist_index(&c.known, "i-1") >= 0 && ferry_strlist_index(&c.known, "i-3") >= 0);

    /* A page that cannot be read, and a call that failed. */
    CHECK_INT(ferry_cloud_list(&c, "d1", 1, op), 0);
    answer(0, "garbled");
    CHECK_INT(completed.status, FERRY_EPROTO);
    CHECK_STR(completed.message, "Fake list: an answer we cannot read");
    CHECK_INT(ferry_cloud_list(&c, "d1", 1, op), 0);
    answer(FERRY_ETHROTTLED, NULL);
    CHECK_INT(completed.status, FERRY_ETHROTTLED);
    CHECK_STR(completed.provider_code, "Said");

    /* The next page cannot be asked for: what was found so far. */
    CHECK_INT(ferry_cloud_list(&c, "d1", 1, op), 0);
    pending.refuse = FERRY_ENOMEM;
    answer(0, "i-4:running;more");
    CHECK_INT(completed.status, 0);
    CHECK_CONTAINS(completed.text, "\"i-4\"");
    /* Nor the first. */
    pending.refuse = FERRY_ECONN;
    CHECK_INT(ferry_cloud_list(&c, "d1", 1, op), FERRY_ECONN);
    ferry_strlist_free(&c.known);
}

static void test_describe_terminate(void)
{
    int state;
    ferry_cloud c = {.provider = &fake_provider, .state = &state, .host = &fake_host};
    ferry_op *op = (ferry_op *)&state;
    ferry_strlist_add_unique(&c.known, "i-1");
    ferry_strlist_add_unique(&c.known, "i-2");
    CHECK_INT(ferry_cloud_describe(&c, "", op), FERRY_EINVAL);
    CHECK_INT(ferry_cloud_terminate(&c, NULL, op), FERRY_EINVAL);

    CHECK_INT(ferry_cloud_describe(&c, "i-1", op), 0);
    CHECK_STR(pending.what, "describe");
    CHECK_STR(pending.task->instance_id, "i-1");
    answer(0, "i-1:terminated");
    CHECK_INT(completed.status, 0);
    json_t *j = json_loads(completed.text, 0, NULL);
    CHECK(json_is_object(j));
    CHECK_STR(json_string_value(json_object_get(j, "state")), "terminated");
    CHECK_STR(json_string_value(json_object_get(j, "reason")), "spot interruption");
    json_decref(j);
    CHECK_INT(c.known.n, 2); /* a describe does not retire */

    /* An empty answer is not found, with the provider's code; not found is
     * no longer known. */
    CHECK_INT(ferry_cloud_describe(&c, "i-1", op), 0);
    answer(0, "-");
    CHECK_INT(completed.status, FERRY_ENOENT);
    CHECK_STR(completed.provider_code, "NotThere");
    CHECK_STR(completed.message, "Fake get: no instance i-1");
    CHECK_INT(ferry_strlist_index(&c.known, "i-1"), -1);
    CHECK_INT(ferry_cloud_describe(&c, "i-2", op), 0);
    answer(0, "garbled");
    CHECK_INT(completed.status, FERRY_EPROTO);
    CHECK_STR(completed.message, "Fake get: an answer we cannot read");

    /* terminate: done, or not found, is no longer known; other errors keep it. */
    CHECK_INT(ferry_cloud_terminate(&c, "i-2", op), 0);
    CHECK_STR(pending.what, "terminate");
    answer(FERRY_ETHROTTLED, NULL);
    CHECK_INT(completed.status, FERRY_ETHROTTLED);
    CHECK_INT(ferry_strlist_index(&c.known, "i-2"), 0);
    CHECK_INT(ferry_cloud_terminate(&c, "i-2", op), 0);
    answer(0, "");
    CHECK_INT(completed.status, 0);
    CHECK_INT(c.known.n, 0);

    /* Once fini began, answers complete nothing (the host cancels). */
    completed.calls = 0;
    CHECK_INT(ferry_cloud_terminate(&c, "i-3", op), 0);
    ferry_cloud_task *term = pending.task;
    ferry_cloud_answer_fn term_done = pending.done;
    CHECK_INT(ferry_cloud_describe(&c, "i-3", op), 0);
    ferry_cloud_task *desc = pending.task;
    ferry_cloud_answer_fn desc_done = pending.done;
    CHECK_INT(ferry_cloud_list(&c, "d1", 1, op), 0);
    c.closing = 1;
    answer(0, "i-3:running");
    desc_done(desc, 0, "i-3:running", 11, NULL);
    term_done(term, 0, "", 0, NULL);
    CHECK_INT(completed.calls, 0);
    CHECK_INT(c.known.n, 0); /* the listing's page was not taken in */
    ferry_strlist_free(&c.known);
}

static void test_launch(void)
{
    int state;
    ferry_cloud c = {.provider = &fake_provider, .state = &state, .host = &fake_host};
    ferry_op *op = (ferry_op *)&state;
    ferry_cloud_launch l;
    ferry_launch_request req = {.struct_size = sizeof(req),
                                .daemon_id = "d1",
                                .worker_id = "w-1",
                                .user_data = "#!/bin/sh\ntoken=secret\n"};
    CHECK_INT(ferry_cloud_launch_init(&l, NULL, 100, "m1", op), FERRY_EINVAL);
    req.worker_id = "";
    CHECK_INT(ferry_cloud_launch_init(&l, &req, 100, "m1", op), FERRY_EINVAL);
    req.worker_id = "w-1";
    req.struct_size = offsetof(ferry_launch_request, user_data); /* before ABI 1.2 */
    CHECK_INT(ferry_cloud_launch_init(&l, &req, 100, "m1", op), FERRY_EINVAL);
    req.struct_size = sizeof(req);
    CHECK_INT(ferry_cloud_launch_init(&l, &req, 10, "m1", op), FERRY_ETOOBIG);
    CHECK_INT(ferry_cloud_launch_init(&l, &req, 100, "m1", op), 0);
    CHECK_STR(l.worker_id, "w-1");
    CHECK_STR(l.environment, ""); /* none given */
    CHECK_STR(l.user_data, req.user_data);

    /* One place said no, the next launched: known at once, the note and
     * the id to the host. */
    ferry_error_detail err;
    ferry_error_set(&err, FERRY_ECAPACITY, 0, "NoRoom", "NoRoom: full");
    ferry_cloud_note_error(l.note, sizeof(l.note), "z-a", &err);
    ferry_cloud_launched(&c, &l, "z-b", "z-b/i-1", "i-1");
    CHECK_INT(completed.status, 0);
    CHECK_STR(completed.text, "z-a: NoRoom (full); z-b: launched i-1");
    CHECK_INT(ferry_strlist_index(&c.known, "z-b/i-1"), 0);
    CHECK_CONTAINS(logged, "worker w-1: instance z-b/i-1 (m1, ");
    ferry_cloud_launch_clear(&l);
    CHECK(l.user_data == NULL && l.worker_id == NULL);
    ferry_cloud_launch_clear(&l); /* twice is harmless */

    /* Every place said no. */
    CHECK_INT(ferry_cloud_launch_init(&l, &req, 100, "m1", op), 0);
    ferry_cloud_note_error(l.note, sizeof(l.note), "z-a", &err);
    ferry_cloud_launch_failed(&c, &l, &err);
    CHECK_INT(completed.status, FERRY_ECAPACITY);
    CHECK_STR(completed.message, "no zone could launch a m1: z-a: NoRoom (full)");
    CHECK_CONTAINS(logged, "launch of worker w-1 failed: no zone could launch a m1");
    ferry_cloud_launch_clear(&l);
    ferry_strlist_free(&c.known);
}

int main(void)
{
    test_launch();
    test_list();
    test_describe_terminate();
    TEST_MAIN_END();
}
