/* The SDK's hex digits (sdk/include/ferry/hex.h): every byte value encoded
 * and read back, each character's digit value against strtol, and a write
 * that stops at exactly 2n digits and a NUL; lib/util's digest checks
 * (ferry_is_sha256_hex: lower case only; ferry_is_hex: either case). */
#include "test.h"

#include <stdlib.h>
#include <string.h>

#include "ferry/hex.h"
#include "util.h"

static void test_encode(void)
{
    unsigned char all[256];
    for (int i = 0; i < 256; i++)
        all[i] = (unsigned char)i;
    char out[513];
    ferry_hex_encode(all, sizeof(all), out);
    CHECK_INT((long long)strlen(out), 512);
    for (int i = 0; i < 256; i++) {
        char two[3] = {out[2 * i], out[2 * i + 1], '\0'};
        CHECK_INT(strtol(two, NULL, 16), i);
    }
    CHECK(strncmp(out, "000102", 6) == 0);
    CHECK_STR(out + 508, "feff");
    char small[8];
    memset(small, 'x', sizeof(small));
    ferry_hex_encode("\xab\x01", 2, small);
    CHECK_STR(small, "ab01");
    CHECK(small[5] == 'x'); /* nothing past the NUL */
    ferry_hex_encode("", 0, small);
    CHECK_STR(small, "");
}

static void test_digit(void)
{
    for (int c = 0; c < 256; c++) {
        char s[2] = {(char)c, '\0'};
        char *end;
        long want = strchr("0123456789abcdefABCDEF", c) && c ? strtol(s, &end, 16) : -1;
        CHECK_INT(ferry_hex_digit(c), want);
    }
    CHECK_INT(ferry_hex_digit(-1), -1);
}

static void test_digests(void)
{
    char lower[65], upper[65];
    memset(lower, 'a', 64);
    lower[64] = '\0';
    memcpy(upper, lower, sizeof(upper));
    upper[10] = 'F';
    CHECK(ferry_is_sha256_hex(lower));
    CHECK(!ferry_is_sha256_hex(upper));
    CHECK(ferry_is_hex(lower, 64));
    CHECK(ferry_is_hex(upper, 64));
    CHECK(!ferry_is_hex(lower, 63));
    lower[63] = 'g';
    CHECK(!ferry_is_sha256_hex(lower));
    CHECK(!ferry_is_hex(lower, 64));
    CHECK(!ferry_is_sha256_hex(NULL));
    CHECK(!ferry_is_hex(NULL, 0));
    CHECK(!ferry_is_sha256_hex(""));
}

int main(void)
{
    test_encode();
    test_digit();
    test_digests();
    TEST_MAIN_END();
}
