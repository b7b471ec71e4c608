/* The SDK's settings helpers (sdk/src/settings.c), which the aws and gcp
 * plugins share: lists "a, b", numbers, flags, names, and the lists of ids
 * a plugin keeps. */
#include "test.h"

#include "ferry/error.h"
#include "ferry/settings.h"

static void test_lists(void)
{
    ferry_strlist l;
    CHECK_INT(ferry_strlist_parse(&l, " us-east-1a ,us-east-1b,  c "), 0);
    CHECK_INT(l.n, 3);
    CHECK_STR(l.v[0], "us-east-1a");
    CHECK_STR(l.v[1], "us-east-1b");
    CHECK_STR(l.v[2], "c");
    ferry_strlist_free(&l);
    CHECK(l.v == NULL && l.n == 0);
    /* Nothing, or no text at all: an empty list. A trailing comma ends it. */
    CHECK_INT(ferry_strlist_parse(&l, ""), 0);
    CHECK_INT(l.n, 0);
    CHECK_INT(ferry_strlist_parse(&l, NULL), 0);
    CHECK_INT(l.n, 0);
    CHECK_INT(ferry_strlist_parse(&l, "a,"), 0);
    CHECK_INT(l.n, 1);
    ferry_strlist_free(&l);
    /* An empty item stays, for the plugin's check to refuse by name. */
    CHECK_INT(ferry_strlist_parse(&l, "a,,b"), 0);
    CHECK_INT(l.n, 3);
    CHECK_STR(l.v[1], "");
    CHECK(!ferry_setting_word_ok(l.v[1], NULL));
    ferry_strlist_free(&l);
}

static void test_known_ids(void)
{
    ferry_strlist l = {0};
    CHECK_INT(ferry_strlist_add_unique(&l, "i-1"), 0);
    CHECK_INT(ferry_strlist_add_unique(&l, "i-2"), 0);
    CHECK_INT(ferry_strlist_add_unique(&l, "i-1"), 0);
    CHECK_INT(ferry_strlist_add_unique(&l, ""), 0);
    CHECK_INT(ferry_strlist_add_unique(&l, NULL), 0);
    CHECK_INT(l.n, 2);
    CHECK_INT(ferry_strlist_index(&l, "i-2"), 1);
    CHECK_INT(ferry_strlist_index(&l, "i-3"), -1);
    ferry_strlist_remove(&l, "i-1");
    ferry_strlist_remove(&l, "i-9");
    CHECK_INT(l.n, 1);
    CHECK_STR(l.v[0], "i-2");
    ferry_strlist_free(&l);
}

static void test_values(void)
{
    long v = 0;
    CHECK_INT(ferry_setting_long("42", 1, 100, &v), 0);
    CHECK_INT(v, 42);
    CHECK_INT(ferry_setting_long("-3", -5, 5, &v), 0);
    CHECK_INT(v, -3);
    static const char *bad_numbers[] = {"", " 4", "4 ", "4x", "0", "101", "99999999999999999999"};
    for (size_t i = 0; i < sizeof(bad_numbers) / sizeof(*bad_numbers); i++)
        CHECK_INT(ferry_setting_long(bad_numbers[i], 1, 100, &v), -1);
    int b = -1;
    CHECK_INT(ferry_setting_bool("YES", &b), 0);
    CHECK_INT(b, 1);
    CHECK_INT(ferry_setting_bool("0", &b), 0);
    CHECK_INT(b, 0);
    CHECK_INT(ferry_setting_bool("maybe", &b), -1);
    CHECK(ferry_setting_word_ok("ami-0abc", NULL));
    CHECK(!ferry_setting_word_ok("a b", NULL));
    CHECK(!ferry_setting_word_ok("a,b", NULL));
    CHECK(!ferry_setting_word_ok("a\tb", NULL));
    CHECK(!ferry_setting_word_ok(NULL, NULL));
    CHECK(ferry_setting_word_ok("a?b", NULL));
    CHECK(!ferry_setting_word_ok("a?b", "?#"));
    char long_name[300];
    memset(long_name, 'a', sizeof(long_name) - 1);
    long_name[sizeof(long_name) - 1] = '\0';
    CHECK(!ferry_setting_word_ok(long_name, NULL));
    long_name[255] = '\0';
    CHECK(ferry_setting_word_ok(long_name, NULL));
}

int main(void)
{
    test_lists();
    test_known_ids();
    test_values();
    TEST_MAIN_END();
}
