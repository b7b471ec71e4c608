/* UTF-8 checks and JSON string escaping (see text.h). */
#include "text.h"

#include <stdint.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "util.h"

/* Length of the valid sequence at s[0..len), or 0 when it is not valid. */
static size_t text__utf8_seq(const unsigned char *s, size_t len)
{
    unsigned char c = s[0];
    size_t n;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        n = 2;
    else if (c >= 0xE0 && c <= 0xEF)
        n = 3;
    else if (c >= 0xF0 && c <= 0xF4)
        n = 4;
    else
        return 0;
    if (c == 0xE0)
        lo = 0xA0; /* overlong */
    else if (c == 0xED)
        hi = 0x9F; /* surrogates */
    else if (c == 0xF0)
        lo = 0x90; /* overlong */
    else if (c == 0xF4)
        hi = 0x8F; /* above U+10FFFF */
    if (len < n || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    return n;
}

char *ferry_utf8_clean(const char *data, size_t len, size_t *out_len)
{
    const unsigned char *s = (const unsigned char *)data;
    char *out = ferry_xmalloc(len * 3 + 1);
    size_t o = 0;
    for (size_t i = 0; i < len;) {
        size_t n = text__utf8_seq(s + i, len - i);
        if (n == 0) {
            memcpy(out + o, "\xEF\xBF\xBD", 3); /* U+FFFD */
            o += 3;
            i++;
        } else {
            memcpy(out + o, s + i, n);
            o += n;
            i += n;
        }
    }
    out[o] = '\0';
    if (out_len)
        *out_len = o;
    return out;
}

size_t ferry_utf8_cut(const char *data, size_t len, size_t max)
{
    if (len <= max)
        return len;
    size_t cut = max;
    while (cut > 0 && max - cut < 3 && ((unsigned char)data[cut] & 0xC0) == 0x80)
        cut--;
    return cut > 0 ? cut : max;
}

/* JSON string content: printable ASCII is copied in runs, the rest is
 * escaped; invalid UTF-8 and NUL (which ferryd's parser refuses) become
 * U+FFFD. */
/* Nonzero when one of the 8 bytes in w may be a control byte, non-ASCII,
 * '"' or '\\': the "has a byte below N" test on w, w ^ '"' and w ^ '\\'.
 * A borrow can flag a clean byte only above a byte that is flagged rightly,
 * so a zero is always right and the caller looks closer at the rest. */
static uint64_t text__needs_escape8(uint64_t w)
{
    const uint64_t ones = 0x0101010101010101ull, high = 0x8080808080808080ull;
    uint64_t quote = w ^ (ones * '"'), backslash = w ^ (ones * '\\');
    return (w | (w - ones * 0x20) | (quote - ones) | (backslash - ones)) & high;
}

/* Bytes from `i` on that need no escaping: 8 at a time, then one by one. */
static size_t text__plain_run(const unsigned char *s, size_t i, size_t len)
{
    while (i + 8 <= len) {
        uint64_t w;
        memcpy(&w, s + i, 8);
        if (text__needs_escape8(w))
            break;
        i += 8;
    }
    while (i < len && s[i] >= 0x20 && s[i] < 0x80 && s[i] != '"' && s[i] != '\\')
        i++;
    return i;
}

size_t ferry_json_escape(const char *data, size_t len, char *out)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *s = (const unsigned char *)data;
    char *o = out;
    size_t i = 0;
    while (i < len) {
        size_t j = text__plain_run(s, i, len);
        memcpy(o, s + i, j - i);
        o += j - i;
        if ((i = j) == len)
            break;
        unsigned char c = s[i];
        size_t n = c >= 0x80 ? text__utf8_seq(s + i, len - i) : 1;
        if (c == '"' || c == '\\') {
            *o++ = '\\';
            *o++ = (char)c;
        } else if (c == '\n' || c == '\t' || c == '\r') {
            *o++ = '\\';
            *o++ = c == '\n' ? 'n' : c == '\t' ? 't' : 'r';
        } else if (c > 0 && c < 0x20) {
            memcpy(o, "\\u00", 4);
            o[4] = hex[c >> 4];
            o[5] = hex[c & 15];
            o += 6;
        } else if (c == 0 || n == 0) {
            memcpy(o, "\xEF\xBF\xBD", 3);
            o += 3;
            n = 1;
        } else {
            memcpy(o, s + i, n);
            o += n;
        }
        i += n;
    }
    return (size_t)(o - out);
}

size_t ferry_count_byte(const char *data, size_t len, char c)
{
    size_t count = 0, i = 0;
#if defined(__SSE2__)
    /* Each matching byte adds 1 to its lane (a compare gives -1); a lane
     * holds at most 255, so the lanes are summed every 255 rounds. */
    const __m128i needle = _mm_set1_epi8(c), zero = _mm_setzero_si128();
    while (len - i >= 16) {
        size_t rounds = (len - i) / 16;
        if (rounds > 255)
            rounds = 255;
        __m128i lanes = zero;
        for (size_t r = 0; r < rounds; r++, i += 16) {
            __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(data + i));
            lanes = _mm_sub_epi8(lanes, _mm_cmpeq_epi8(v, needle));
        }
        __m128i sums = _mm_sad_epu8(lanes, zero); /* two 16-bit sums, one per half */
        count += (size_t)_mm_cvtsi128_si32(sums) + (size_t)_mm_extract_epi16(sums, 4);
    }
#endif
    for (; i < len; i++)
        count += data[i] == c;
    return count;
}
