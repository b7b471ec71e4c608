/* The one error space (sdk/src/error.c): errno values map to ferry codes,
 * every code has a text and a name, and FERRY_HAS_FIELD reads struct_size
 * the way the ABI's append-only rule needs. */
#include <errno.h>
#include <stdint.h>

#include "ferry/error.h"
#include "ferry/plugin.h"
#include "test.h"

static void test_from_errno(void)
{
    static const struct {
        int err, code;
    } cases[] = {
        {ENOENT, FERRY_ENOENT},
        {ENOMEM, FERRY_ENOMEM},
        {EACCES, FERRY_EPERM},
        {EPERM, FERRY_EPERM},
        {EROFS, FERRY_EPERM},
        {EEXIST, FERRY_EEXIST},
        {EINVAL, FERRY_EINVAL},
        {EAGAIN, FERRY_EAGAIN},
        {EWOULDBLOCK, FERRY_EAGAIN},
        {EINTR, FERRY_EAGAIN},
        {ETIMEDOUT, FERRY_ETIMEDOUT},
        {ECANCELED, FERRY_ECANCELED},
        {ENOTSUP, FERRY_ENOTSUP},
        {ENOSYS, FERRY_ENOTSUP},
        {ECONNREFUSED, FERRY_ECONN},
        {ECONNRESET, FERRY_ECONN},
        {EPIPE, FERRY_ECONN},
        {EPROTO, FERRY_EPROTO},
        {EDQUOT, FERRY_EQUOTA},
        {ENOEXEC, FERRY_ESPAWN},
        {EFBIG, FERRY_ETOOBIG},
        {ELOOP, FERRY_EUNSAFE},
        {ENOSPC, FERRY_ENOSPC},
        {ENAMETOOLONG, FERRY_ENAMETOOLONG},
        {ENOTDIR, FERRY_ENOTDIR},
        {EISDIR, FERRY_EISDIR},
        {EMFILE, FERRY_EMFILE},
        {ENFILE, FERRY_EMFILE},
        {EIO, FERRY_EIO},
        {ENOTEMPTY, FERRY_EIO}, /* no closer code: the default */
        {0, FERRY_EIO},         /* a failure that set no errno is still a failure */
        {100000, FERRY_EIO},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        CHECK_INT(ferry_from_errno(cases[i].err), cases[i].code);
        /* libuv's codes are -errno on Unix: the same answer. */
        CHECK_INT(ferry_from_errno(-cases[i].err), cases[i].code);
    }
    /* The bug this replaces: -ENOENT read as a ferry code was FERRY_ENOMEM. */
    CHECK(ferry_from_errno(ENOENT) != FERRY_ENOMEM);
    /* Whatever errno comes in, a known ferry code comes out. */
    for (int e = 0; e < 4096; e++) {
        int code = ferry_from_errno(e);
        CHECK(code < 0 && code > FERRY_ERRNO_LAST_);
    }
}

static void test_codes(void)
{
    /* Codes are never renumbered: spot checks of old and appended ones. */
    CHECK_INT(FERRY_EINVAL, -1);
    CHECK_INT(FERRY_ENOENT, -3);
    CHECK_INT(FERRY_EUNSAFE, -23);
    CHECK_INT(FERRY_ENOSPC, -24);
    CHECK_INT(FERRY_ENAMETOOLONG, -25);
    CHECK_INT(FERRY_ENOTDIR, -26);
    CHECK_INT(FERRY_EISDIR, -27);
    CHECK_INT(FERRY_EMFILE, -28);
    CHECK_INT(FERRY_ERRNO_LAST_, -29);

    CHECK_STR(ferry_strerror(0), "success");
    CHECK_STR(ferry_err_name(0), "FERRY_OK");
    CHECK_STR(ferry_strerror(FERRY_ENOENT), "not found");
    CHECK_STR(ferry_err_name(FERRY_ENOSPC), "FERRY_ENOSPC");
    CHECK_STR(ferry_strerror(FERRY_ENOSPC), "no space left on device");
    /* Every code has its own text and name. */
    for (int c = -1; c > FERRY_ERRNO_LAST_; c--) {
        const char *text = ferry_strerror(c), *name = ferry_err_name(c);
        CHECK(text != NULL && text[0] != '\0' && strcmp(text, "unknown error") != 0);
        CHECK(name != NULL && strncmp(name, "FERRY_E", 7) == 0);
        for (int d = c + 1; d < 0; d++) {
            CHECK(strcmp(text, ferry_strerror(d)) != 0);
            CHECK(strcmp(name, ferry_err_name(d)) != 0);
        }
    }
    /* Outside the list: never NULL. */
    const int outside[] = {FERRY_ERRNO_LAST_, FERRY_ERRNO_LAST_ - 1, 1, 12345, INT32_MIN};
    for (size_t i = 0; i < sizeof(outside) / sizeof(outside[0]); i++) {
        CHECK_STR(ferry_strerror(outside[i]), "unknown error");
        CHECK_STR(ferry_err_name(outside[i]), "FERRY_UNKNOWN");
    }
}

/* One struct in two minor versions: v2 appends `name`. */
typedef struct sized_v1 {
    size_t struct_size;
    int64_t count;
} sized_v1;
typedef struct sized_v2 {
    size_t struct_size;
    int64_t count;
    const char *name;
} sized_v2;

static void test_has_field(void)
{
    CHECK_INT(FERRY_FIELD_END(sized_v2, count), sizeof(sized_v1));
    CHECK_INT(FERRY_FIELD_END(sized_v2, name), sizeof(sized_v2));

    sized_v2 s = {.struct_size = sizeof(sized_v1), .count = 3, .name = "x"};
    CHECK(FERRY_HAS_FIELD(&s, sized_v2, count));
    CHECK(!FERRY_HAS_FIELD(&s, sized_v2, name)); /* an older caller's struct */
    s.struct_size = sizeof(sized_v2);
    CHECK(FERRY_HAS_FIELD(&s, sized_v2, name));
    /* Part of a field is not the field. */
    s.struct_size = sizeof(sized_v2) - 1;
    CHECK(!FERRY_HAS_FIELD(&s, sized_v2, name));
    s.struct_size = 0;
    CHECK(!FERRY_HAS_FIELD(&s, sized_v2, struct_size));
    CHECK(!FERRY_HAS_FIELD(&s, sized_v2, count));
    /* Evaluates its pointer argument once. */
    sized_v2 arr[2] = {{.struct_size = sizeof(sized_v2)}, {.struct_size = 0}};
    sized_v2 *p = arr;
    CHECK(FERRY_HAS_FIELD(p++, sized_v2, name));
    CHECK(p == &arr[1]);
}

int main(void)
{
    test_from_errno();
    test_codes();
    test_has_field();
    TEST_MAIN_END();
}
