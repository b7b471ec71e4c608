/* The SDK's kit for cloud compute plugins (sdk/src/cloud.c): the launch
 * note people read in `ferry show`, the error a launch ends with, tasks. */
#include "test.h"

#include "ferry/cloud.h"

static void test_note(void)
{
    char note[FERRY_CLOUD_NOTE_CAP] = "";
    ferry_error_detail err;
    ferry_error_set(&err, FERRY_ECAPACITY, 1, "InsufficientInstanceCapacity",
                    "InsufficientInstanceCapacity: We currently do not have sufficient capacity");
    ferry_cloud_note_error(note, sizeof(note), "us-east-1a", &err);
    ferry_cloud_note(note, sizeof(note), "us-east-1b", "launched %s", "i-0abc");
    CHECK_STR(note, "us-east-1a: InsufficientInstanceCapacity (We currently do not have "
                    "sufficient capacity); us-east-1b: launched i-0abc");
    /* Without a provider code: ferry's name for the error, and no message. */
    char other[64] = "";
    ferry_error_set(&err, FERRY_ECONN, 1, NULL, "connection refused");
    ferry_cloud_note_error(other, sizeof(other), "z", &err);
    CHECK(strncmp(other, "z: ", 3) == 0 && strchr(other, '(') == NULL);
    /* What does not fit is left out, and the note stays a string. */
    char small[24] = "";
    for (int i = 0; i < 10; i++)
        ferry_cloud_note(small, sizeof(small), "zone-name", "said something long");
    CHECK(strlen(small) < sizeof(small));
}

static void test_launch_error(void)
{
    ferry_error_detail last, out;
    ferry_error_set(&last, FERRY_ECAPACITY, 0, "ZONE_RESOURCE_POOL_EXHAUSTED", "no room");
    ferry_cloud_launch_error(&out, &last, "g2-standard-4", "a: no; b: no");
    CHECK_INT(out.code, FERRY_ECAPACITY);
    CHECK_INT(out.retryable, 1);
    CHECK_STR(out.provider_code, "ZONE_RESOURCE_POOL_EXHAUSTED");
    CHECK_STR(out.message, "no zone could launch a g2-standard-4: a: no; b: no");
    static const int retryable[] = {FERRY_ETHROTTLED, FERRY_EQUOTA,    FERRY_EPROVIDER,
                                    FERRY_ECONN,      FERRY_ETIMEDOUT, FERRY_EPROTO};
    for (size_t i = 0; i < sizeof(retryable) / sizeof(*retryable); i++) {
        ferry_error_set(&last, retryable[i], 0, NULL, "later");
        ferry_cloud_launch_error(&out, &last, "m", "the note");
        CHECK_INT(out.retryable, 1);
        CHECK_STR(out.message, "the note");
    }
    ferry_error_set(&last, FERRY_EAUTH, 0, "AuthFailure", "bad key");
    ferry_cloud_launch_error(&out, &last, "m", "a: AuthFailure");
    CHECK_INT(out.code, FERRY_EAUTH);
    CHECK_INT(out.retryable, 0);
}

static void test_task(void)
{
    int state;
    ferry_cloud_task *t = ferry_cloud_task_new(&state, NULL, "i-1", NULL);
    CHECK(t != NULL && t->state == &state);
    CHECK_STR(t->instance_id, "i-1");
    CHECK(t->daemon_id == NULL && t->list == NULL && t->place == 0);
    t->list = json_array();
    ferry_cloud_task_free(t);
    ferry_cloud_task_free(NULL);
}

int main(void)
{
    test_note();
    test_launch_error();
    test_task();
    TEST_MAIN_END();
}
