/* lib/text.c: JSON string escaping (its 8-bytes-at-a-time scan must agree
 * with the plain byte-by-byte rules on every input) and UTF-8 cleaning. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "text.h"

static int failures;

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            failures++;                                                                            \
            printf("not ok: " __VA_ARGS__);                                                        \
            printf("\n");                                                                          \
        }                                                                                          \
    } while (0)

/* What a JSON string of the escaped bytes decodes to, or NULL. */
static char *decode(const char *escaped, size_t n, size_t *len)
{
    char *doc = malloc(n + 3);
    doc[0] = '"';
    memcpy(doc + 1, escaped, n);
    doc[n + 1] = '"';
    json_error_t err;
    json_t *j = json_loadb(doc, n + 2, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
    free(doc);
    if (!json_is_string(j)) {
        json_decref(j);
        return NULL;
    }
    *len = json_string_length(j);
    char *out = malloc(*len + 1);
    memcpy(out, json_string_value(j), *len + 1);
    json_decref(j);
    return out;
}

static void check_escape(const char *what, const char *in, size_t n, const char *want,
                         size_t want_len)
{
    char *out = malloc(n * 6 + 1);
    size_t o = ferry_json_escape(in, n, out);
    size_t got_len = 0;
    char *got = decode(out, o, &got_len);
    CHECK(got != NULL, "%s: the escaped text is not a JSON string: %.*s", what, (int)o, out);
    CHECK(got && got_len == want_len && memcmp(got, want, want_len) == 0,
          "%s: decodes to %zu bytes, want %zu", what, got_len, want_len);
    free(got);
    free(out);
}

static void test_fixed(void)
{
    check_escape("plain", "hello world", 11, "hello world", 11);
    check_escape("quotes and backslashes", "a\"b\\c", 5, "a\"b\\c", 5);
    check_escape("controls", "t\tn\nr\rx\x01", 8, "t\tn\nr\rx\x01", 8);
    check_escape("NUL becomes U+FFFD", "a\0b", 3,
                 "a\xEF\xBF\xBD"
                 "b",
                 5);
    check_escape("valid UTF-8 kept", "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80", 14,
                 "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80", 14);
    check_escape("invalid byte becomes U+FFFD", "ab\xFFgh", 5, "ab\xEF\xBF\xBDgh", 7);
    check_escape("overlong becomes U+FFFD", "\xC0\xAF", 2, "\xEF\xBF\xBD\xEF\xBF\xBD", 6);
    check_escape("surrogate becomes U+FFFD", "\xED\xA0\x80", 3,
                 "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD", 9);
    check_escape("truncated sequence at the end", "abcdefgh\xE2\x82", 10,
                 "abcdefgh\xEF\xBF\xBD\xEF\xBF\xBD", 14);
    /* Special bytes at each position of an 8-byte word, and past it. */
    for (int pos = 0; pos < 17; pos++) {
        char in[18], want[18];
        memset(in, 'x', sizeof(in));
        in[pos] = '"';
        memcpy(want, in, sizeof(in));
        char what[64];
        snprintf(what, sizeof(what), "a quote at %d", pos);
        check_escape(what, in, sizeof(in), want, sizeof(want));
    }
}

/* Random mixes of the classes the fast scan distinguishes, compared with
 * jansson's own decoding of the result and with plain ASCII kept as is. */
static void test_random(void)
{
    srand(7);
    char in[64];
    for (int t = 0; t < 200000; t++) {
        size_t n = (size_t)(rand() % 40);
        int special = 0;
        for (size_t i = 0; i < n; i++) {
            int r = rand() % 12;
            in[i] = r < 8    ? (char)(' ' + rand() % 95)
                    : r == 8 ? '"'
                    : r == 9 ? '\\'
                             : (char)(rand() % 32);
            special |= in[i] == '"' || in[i] == '\\' || (unsigned char)in[i] < 0x20;
        }
        char out[64 * 6];
        size_t o = ferry_json_escape(in, n, out);
        size_t got_len = 0;
        char *got = decode(out, o, &got_len);
        /* NUL is the one byte that does not come back. */
        int has_nul = memchr(in, 0, n) != NULL;
        CHECK(got != NULL, "random %d: not a JSON string", t);
        if (got && !has_nul)
            CHECK(got_len == n && memcmp(got, in, n) == 0, "random %d: round trip", t);
        if (!special)
            CHECK(o == n && memcmp(out, in, n) == 0, "random %d: plain text changed", t);
        free(got);
        if (failures > 5)
            return;
    }
}

static void test_utf8(void)
{
    size_t n = 0;
    char *c = ferry_utf8_clean("ok\xFFok", 5, &n);
    CHECK(n == 7 && memcmp(c, "ok\xEF\xBF\xBDok", 7) == 0, "utf8_clean replaces an invalid byte");
    free(c);
    CHECK(ferry_utf8_cut("ab\xE2\x82\xAC", 5, 4) == 2, "utf8_cut does not split a sequence");
    CHECK(ferry_utf8_cut("abcdef", 6, 4) == 4, "utf8_cut of ASCII");
    CHECK(ferry_utf8_cut("abc", 3, 4) == 3, "utf8_cut of a short text");
}

/* Against a byte-at-a-time count: every length around the 16-byte steps,
 * every alignment, and runs past the 255 rounds that one lane holds. */
static void test_count_byte(void)
{
    static char buf[20000];
    srand(11);
    for (size_t i = 0; i < sizeof(buf); i++)
        buf[i] = rand() % 3 == 0 ? '\n' : (char)('a' + rand() % 26);
    memset(buf + 9000, '\n', 8000); /* lanes that fill up */
    size_t lens[] = {0, 1, 15, 16, 17, 31, 32, 33, 255 * 16, 255 * 16 + 1, 4095, 8191, 19000};
    for (size_t k = 0; k < sizeof(lens) / sizeof(*lens); k++) {
        for (size_t at = 0; at < 17; at++) {
            size_t want = 0;
            for (size_t i = 0; i < lens[k]; i++)
                want += buf[at + i] == '\n';
            CHECK(ferry_count_byte(buf + at, lens[k], '\n') == want,
                  "count_byte of %zu bytes at %zu", lens[k], at);
        }
    }
    CHECK(ferry_count_byte("\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff",
                           17, (char)0xff) == 17,
          "count_byte of a byte above 127");
}

int main(void)
{
    test_fixed();
    test_random();
    test_utf8();
    test_count_byte();
    printf("test_text: %s\n", failures ? "FAILED" : "ok");
    return failures ? 1 : 0;
}
