/* Text helpers: messages into a caller's buffer, word lists, numbers and
 * JSON atoms as text, shell quoting, durations, edit distance. */
#include "stepfile_int.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ferry/error.h>

#include "util.h"

int ferry__fail(char *err, size_t err_cap, int code, const char *fmt, ...)
{
    if (err && err_cap) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, err_cap, fmt, ap);
        va_end(ap);
    }
    return code;
}

int ferry__why(char *why, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, cap, fmt, ap);
    va_end(ap);
    return FERRY_EINVAL;
}

int ferry__in_list(const char *s, const char *const *list)
{
    for (; *list; list++)
        if (strcmp(s, *list) == 0)
            return 1;
    return 0;
}

char *ferry__join_list(const char *const *list)
{
    ferry__buf b = {0};
    for (size_t i = 0; list[i]; i++)
        ferry__buf_printf(&b, "%s%s", i ? ", " : "", list[i]);
    return ferry__buf_take(&b);
}

/* ------------------------------------------------------------------------ */
/* Numbers and values as text                                                */

/* Shortest text that reads back as the same double, and no ".0" on whole
 * numbers, so that a float parameter of 1000 is passed as "1000" and 0.001
 * as "0.001" (not "0.0010000000000000000208"). */
void ferry__fmt_real(double d, char *buf, size_t cap)
{
    if (d > -1e15 && d < 1e15 && d == (double)(long long)d) {
        snprintf(buf, cap, "%lld", (long long)d);
        return;
    }
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, cap, "%.*g", prec, d);
        if (strtod(buf, NULL) == d)
            return;
    }
}

/* repr() of a Python float, since valohai builds commands in Python: the
 * shortest digits that read back the same double, in fixed notation for
 * exponents -4 to 15 with at least one decimal ("1.0", "0.001", "1000.0"),
 * else in scientific notation with a signed exponent of two digits or more
 * ("1e-05", "1.5e+16"). */
void ferry__python_float(double d, char *buf, size_t cap)
{
    char e[64];
    for (int prec = 0; prec <= 16; prec++) { /* prec + 1 significant digits */
        snprintf(e, sizeof(e), "%.*e", prec, d);
        if (strtod(e, NULL) == d)
            break;
    }
    char *mark = strchr(e, 'e');
    if (mark == NULL) { /* inf or nan: no parameter holds one */
        snprintf(buf, cap, "%s", e);
        return;
    }
    int exp = atoi(mark + 1);
    *mark = '\0';
    char digits[32];
    size_t n = 0;
    for (const char *p = e; *p && n + 1 < sizeof(digits); p++)
        if (isdigit((unsigned char)*p))
            digits[n++] = *p;
    while (n > 1 && digits[n - 1] == '0')
        n--;
    digits[n] = '\0';
    const char *sign = e[0] == '-' ? "-" : "";
    if (exp < -4 || exp >= 16) {
        snprintf(buf, cap, "%s%c%s%se%c%02d", sign, digits[0], n > 1 ? "." : "", digits + 1,
                 exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
        return;
    }
    /* Fixed: the digits with the point placed, zeros around them as needed. */
    char out[64];
    size_t k = 0;
    if (exp < 0) {
        out[k++] = '0';
        out[k++] = '.';
        for (int z = 0; z < -exp - 1; z++)
            out[k++] = '0';
        for (size_t i = 0; i < n; i++)
            out[k++] = digits[i];
    } else {
        for (int i = 0; i <= exp; i++)
            out[k++] = (size_t)i < n ? digits[i] : '0';
        out[k++] = '.';
        if ((size_t)exp + 1 >= n)
            out[k++] = '0';
        for (size_t i = (size_t)exp + 1; i < n; i++)
            out[k++] = digits[i];
    }
    out[k] = '\0';
    snprintf(buf, cap, "%s%s", sign, out);
}

/* A JSON atom as text. Booleans print the way valohai (Python) prints them
 * when `python_bools` is set, so that `{parameter-value:flag}` and
 * `pass-as: --x={value}` behave as an unchanged valohai.yaml expects. */
char *ferry__atom_text(const json_t *v, int python_bools)
{
    char num[64];
    switch (json_typeof(v)) {
    case JSON_STRING:
        return ferry_strdup(json_string_value(v));
    case JSON_INTEGER:
        return ferry_asprintf("%" JSON_INTEGER_FORMAT, json_integer_value(v));
    case JSON_REAL: /* as Python prints a float: 1.0, 1e-05 */
        ferry__python_float(json_real_value(v), num, sizeof(num));
        return ferry_strdup(num);
    case JSON_TRUE:
        return ferry_strdup(python_bools ? "True" : "true");
    case JSON_FALSE:
        return ferry_strdup(python_bools ? "False" : "false");
    case JSON_NULL:
        return ferry_strdup(python_bools ? "None" : "null");
    default: {
        char *dump = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        char *s = ferry_strdup(dump ? dump : "?");
        free(dump);
        return s;
    }
    }
}

/* repr() of a Python str: single quotes unless the text has a ' and no ",
 * backslashes, the quote and control characters escaped. */
static void ferry__python_str_repr(ferry__buf *b, const char *s)
{
    char q = strchr(s, '\'') && !strchr(s, '"') ? '"' : '\'';
    ferry__buf_printf(b, "%c", q);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '\\' || *p == (unsigned char)q)
            ferry__buf_printf(b, "\\%c", *p);
        else if (*p == '\n')
            ferry__buf_puts(b, "\\n");
        else if (*p == '\r')
            ferry__buf_puts(b, "\\r");
        else if (*p == '\t')
            ferry__buf_puts(b, "\\t");
        else if (*p < 0x20 || *p == 0x7f)
            ferry__buf_printf(b, "\\x%02x", *p);
        else
            ferry__buf_printf(b, "%c", *p);
    }
    ferry__buf_printf(b, "%c", q);
}

/* str() of a Python list of the values, as valohai-yaml writes
 * {parameter-value:NAME} of a multiple parameter: "['a', 'b']", "[1, 2.0]". */
char *ferry__python_list(const json_t *list)
{
    ferry__buf b = {0};
    ferry__buf_puts(&b, "[");
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v)
    {
        if (i)
            ferry__buf_puts(&b, ", ");
        if (json_is_string(v)) {
            ferry__python_str_repr(&b, json_string_value(v));
        } else {
            char *t = ferry__atom_text(v, 1);
            ferry__buf_puts(&b, t);
            free(t);
        }
    }
    ferry__buf_puts(&b, "]");
    return ferry__buf_take(&b);
}

/* ------------------------------------------------------------------------ */
/* Shell quoting                                                             */

static int ferry__shell_safe(unsigned char ch)
{
    return isalnum(ch) || strchr("_@%+=:,./-", ch) != NULL;
}

/* Python's shlex.quote: the quoting valohai applies to every value. */
char *ferry_shell_quote(const char *s)
{
    if (!s || !*s)
        return ferry_strdup("''");
    int safe = 1;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (!ferry__shell_safe(*p) || *p >= 0x80)
            safe = 0;
    if (safe)
        return ferry_strdup(s);
    ferry__buf b = {0};
    ferry__buf_puts(&b, "'");
    for (const char *p = s; *p; p++) {
        if (*p == '\'')
            ferry__buf_puts(&b, "'\"'\"'");
        else
            ferry__buf_add(&b, p, 1);
    }
    ferry__buf_puts(&b, "'");
    return ferry__buf_take(&b);
}

/* ------------------------------------------------------------------------ */
/* Durations                                                                 */

static int64_t ferry__unit_seconds(char unit)
{
    switch (tolower((unsigned char)unit)) {
    case 's':
        return 1;
    case 'm':
        return 60;
    case 'h':
        return 3600;
    case 'd':
        return 86400;
    case 'w':
        return 7 * 86400;
    default:
        return 0;
    }
}

/* Read "1.5" at *pp; only digits and one dot, as in valohai's duration text. */
static int ferry__duration_number(const char **pp, double *out)
{
    const char *p = *pp;
    char num[64];
    size_t n = 0;
    int dots = 0;
    while ((isdigit((unsigned char)*p) || *p == '.') && n + 1 < sizeof(num)) {
        dots += *p == '.';
        num[n++] = *p++;
    }
    num[n] = '\0';
    if (n == 0 || dots > 1 || (n == 1 && dots == 1))
        return FERRY_EINVAL;
    *out = strtod(num, NULL);
    *pp = p;
    return 0;
}

/* valohai's durations: numbers each followed by a unit word, of which the
 * first letter counts (s, m, h, d, w: "60 minutes", "1h10m", "1.5d"); a
 * number without a unit is seconds. Junk between the parts is refused rather
 * than skipped, so that a typo can't silently shorten a time limit. */
int ferry_duration_parse(const char *text, int64_t *seconds)
{
    *seconds = 0;
    if (!text)
        return 0;
    const char *p = text;
    double total = 0;
    int parts = 0;
    for (;;) {
        while (isspace((unsigned char)*p) || *p == ',')
            p++;
        if (!*p)
            break;
        double value;
        if (ferry__duration_number(&p, &value) != 0)
            return FERRY_EINVAL;
        while (isspace((unsigned char)*p))
            p++;
        int64_t unit = 1;
        if (isalpha((unsigned char)*p)) {
            unit = ferry__unit_seconds(*p);
            if (!unit)
                return FERRY_EINVAL;
            while (isalpha((unsigned char)*p))
                p++;
        }
        total += value * (double)unit;
        parts++;
        if (total > 1e15)
            return FERRY_EINVAL;
    }
    if (!parts)
        return 0; /* "" or blanks: no limit */
    int64_t whole = (int64_t)(total + 0.5);
    if (whole == 0 && total > 0)
        whole = 1; /* "0.2s" must not turn into "no limit" */
    *seconds = whole;
    return 0;
}

/* Edit distance, for "did you mean" on misspelt keys. */
size_t ferry__distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 40 || lb > 40)
        return 99;
    size_t row[41];
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

/* Strip blanks around a value typed on a command line. */
char *ferry__trimmed(const char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *t = ferry_strdup(s);
    size_t n = strlen(t);
    while (n && isspace((unsigned char)t[n - 1]))
        t[--n] = '\0';
    return t;
}

char *ferry__strip(char *s)
{
    char *start = s;
    while (isspace((unsigned char)*start))
        start++;
    size_t n = strlen(start);
    while (n && isspace((unsigned char)start[n - 1]))
        n--;
    memmove(s, start, n);
    s[n] = '\0';
    return s;
}
