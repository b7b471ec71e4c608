/* The SDK's growable buffer and array growth (sdk/include/ferry/buf.h):
 * appends keep a C string, formatted appends that fit and that do not, bytes
 * written by hand into reserved room, take and reset, sizes that cannot be
 * allocated, and arrays grown element by element keeping their contents. */
#include "test.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ferry/buf.h"
#include "ferry/error.h"
#include "util.h"

static void test_append(void)
{
    ferry_buf b = FERRY_BUF_INIT;
    CHECK_INT(ferry_buf_append(&b, "ab", 2), 0);
    CHECK_INT(ferry_buf_append_char(&b, 'c'), 0);
    CHECK_INT(ferry_buf_append_str(&b, "de"), 0);
    CHECK_INT(ferry_buf_append(&b, "ignored", 0), 0);
    CHECK_INT(b.len, 5);
    CHECK_STR(b.data, "abcde");
    CHECK(b.cap > b.len);
    /* Bytes, not only text: a NUL inside is kept and counted. */
    CHECK_INT(ferry_buf_append(&b, "x\0y", 3), 0);
    CHECK_INT(b.len, 8);
    CHECK(memcmp(b.data, "abcdex\0y", 9) == 0);
    ferry_buf_free(&b);
    CHECK(b.data == NULL && b.len == 0 && b.cap == 0);
}

static void test_grows_keeping_bytes(void)
{
    ferry_buf b;
    ferry_buf_init(&b);
    for (int i = 0; i < 10000; i++)
        CHECK_INT(ferry_buf_append_char(&b, (char)('a' + i % 26)), 0);
    CHECK_INT(b.len, 10000);
    CHECK_INT(strlen(b.data), 10000);
    int same = 1;
    for (int i = 0; i < 10000; i++)
        same &= b.data[i] == (char)('a' + i % 26);
    CHECK(same);
    ferry_buf_free(&b);
}

static void test_appendf(void)
{
    ferry_buf b = FERRY_BUF_INIT;
    CHECK_INT(ferry_buf_appendf(&b, "%s=%d", "n", 42), 0); /* into no room at all */
    CHECK_STR(b.data, "n=42");
    CHECK_INT(ferry_buf_appendf(&b, "&%s", ""), 0);
    CHECK_STR(b.data, "n=42&");
    /* Longer than the room left: formatted again once the buffer has grown. */
    char big[3000];
    memset(big, 'z', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    size_t cap_before = b.cap;
    CHECK_INT(ferry_buf_appendf(&b, "[%s]", big), 0);
    CHECK(b.cap > cap_before);
    CHECK_INT(b.len, 5 + 2 + sizeof(big) - 1);
    CHECK(memcmp(b.data, "n=42&[zzz", 9) == 0);
    CHECK(b.data[b.len - 1] == ']' && b.data[b.len] == '\0');
    /* A short one after: fits the room, one vsnprintf. */
    cap_before = b.cap;
    CHECK_INT(ferry_buf_appendf(&b, "%c", '!'), 0);
    CHECK_INT(b.cap, cap_before);
    CHECK(b.data[b.len - 1] == '!');
    ferry_buf_free(&b);
}

static void test_reserve_and_write_by_hand(void)
{
    ferry_buf b = FERRY_BUF_INIT;
    CHECK_INT(ferry_buf_append_str(&b, "head:"), 0);
    CHECK_INT(ferry_buf_reserve(&b, 100), 0);
    CHECK(b.cap >= b.len + 100 + 1);
    memcpy(b.data + b.len, "0123456789", 10); /* as logstore writes NDJSON */
    b.len += 10;
    size_t len = 0;
    char *s = ferry_buf_take(&b, &len);
    CHECK_STR(s, "head:0123456789"); /* take terminates what was written by hand */
    CHECK_INT(len, 15);
    CHECK(b.data == NULL && b.len == 0 && b.cap == 0);
    free(s);
}

static void test_take_and_reset(void)
{
    ferry_buf b = FERRY_BUF_INIT;
    size_t len = 99;
    char *s = ferry_buf_take(&b, &len); /* empty: "", never NULL */
    CHECK_STR(s, "");
    CHECK_INT(len, 0);
    free(s);

    CHECK_INT(ferry_buf_append_str(&b, "some text"), 0);
    char *data = b.data;
    size_t cap = b.cap;
    ferry_buf_reset(&b);
    CHECK_INT(b.len, 0);
    CHECK_STR(b.data, "");
    CHECK(b.data == data && b.cap == cap); /* the memory is kept */
    CHECK_INT(ferry_buf_append_str(&b, "new"), 0);
    s = ferry_buf_take(&b, NULL);
    CHECK_STR(s, "new");
    free(s);
    ferry_buf_reset(&b); /* a reset of an empty one is harmless */
    ferry_buf_free(&b);
}

static void test_too_large(void)
{
    ferry_buf b = FERRY_BUF_INIT;
    CHECK_INT(ferry_buf_append_str(&b, "kept"), 0);
    CHECK_INT(ferry_buf_reserve(&b, SIZE_MAX), FERRY_ENOMEM);
    CHECK_INT(ferry_buf_reserve(&b, SIZE_MAX - b.len), FERRY_ENOMEM);
    CHECK_STR(b.data, "kept"); /* unchanged */
    CHECK_INT(b.len, 4);
    ferry_buf_free(&b);

    int *v = NULL;
    size_t cap = 0;
    CHECK_INT(FERRY_GROW(v, cap, SIZE_MAX / 2), FERRY_ENOMEM); /* times sizeof(int) overflows */
    CHECK(v == NULL);
    CHECK_INT(cap, 0);
}

typedef struct pair {
    int key;
    double value;
} pair;

static void test_grow_arrays(void)
{
    pair *v = NULL;
    size_t n = 0, cap = 0;
    CHECK_INT(FERRY_GROW(v, cap, 0), 0); /* nothing needed: nothing allocated */
    CHECK(v == NULL && cap == 0);
    size_t grown = 0;
    for (int i = 0; i < 1000; i++) {
        size_t before = cap;
        CHECK_INT(FERRY_GROW(v, cap, n + 1), 0);
        CHECK(cap >= n + 1);
        grown += cap != before;
        v[n++] = (pair){.key = i, .value = i / 2.0};
    }
    CHECK(grown <= 8); /* doubling: 16, 32, ... 1024 */
    int same = 1;
    for (size_t i = 0; i < n; i++)
        same &= v[i].key == (int)i && v[i].value == (double)i / 2.0;
    CHECK(same);
    /* A need far past the doubling is met at once. */
    CHECK_INT(FERRY_GROW(v, cap, 100000), 0);
    CHECK(cap >= 100000);
    CHECK(v[999].key == 999);
    free(v);

    char **names = NULL;
    size_t names_cap = 0;
    CHECK_INT(FERRY_GROW(names, names_cap, 3), 0);
    names[0] = "a", names[1] = "b", names[2] = "c";
    CHECK_STR(names[2], "c");
    free(names);
}

/* The host's face: FERRY_XGROW aborts on failure, returns on success. */
static void test_host_wrappers(void)
{
    long *v = NULL;
    size_t cap = 0;
    FERRY_XGROW(v, cap, 10);
    CHECK(v != NULL && cap >= 10);
    v[9] = 9;
    free(v);
    ferry_xcheck(0);
}

int main(void)
{
    test_append();
    test_grows_keeping_bytes();
    test_appendf();
    test_reserve_and_write_by_hand();
    test_take_and_reset();
    test_too_large();
    test_grow_arrays();
    test_host_wrappers();
    TEST_MAIN_END();
}
