/* Step files: ferry.yaml / valohai.yaml (the valohai.yaml step schema).
 *
 * The file is loaded into a libyaml document tree and then walked: steps are
 * turned into ferry_step; pipelines, tasks and endpoints are checked (we
 * don't run them yet) and, with deployments, counted in n_unsupported. Every problem
 * found is collected with its line, so that one run of `ferry` shows all the
 * mistakes of a file at once, in file order.
 *
 * Scalars follow YAML 1.1 as PyYAML reads them (what valohai itself uses):
 * `yes` is a boolean, `0755` is octal, `1_000` is an integer. Where the step
 * schema wants a string, such a value is an error with a hint to quote it,
 * just as valohai rejects `image: yes`.
 */
#include "stepfile.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <yaml.h>

#include <ferry/error.h>

#include "util.h"

/* ------------------------------------------------------------------------ */
/* Growable strings                                                          */

typedef struct ferry__buf {
    char *s;
    size_t len, cap;
} ferry__buf;

static void ferry__buf_add(ferry__buf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->len + n + 1)
            cap *= 2;
        b->s = ferry_xrealloc(b->s, cap);
        b->cap = cap;
    }
    if (n)
        memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

static void ferry__buf_puts(ferry__buf *b, const char *s)
{
    ferry__buf_add(b, s, strlen(s));
}

static void ferry__buf_vprintf(ferry__buf *b, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));
static void ferry__buf_vprintf(ferry__buf *b, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n <= 0)
        return;
    char *tmp = ferry_xmalloc((size_t)n + 1);
    vsnprintf(tmp, (size_t)n + 1, fmt, ap);
    ferry__buf_add(b, tmp, (size_t)n);
    free(tmp);
}

static void ferry__buf_printf(ferry__buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void ferry__buf_printf(ferry__buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ferry__buf_vprintf(b, fmt, ap);
    va_end(ap);
}

/* The buffer's string (never NULL); the buffer is left empty. */
static char *ferry__buf_take(ferry__buf *b)
{
    char *s = b->s ? b->s : ferry_strdup("");
    b->s = NULL;
    b->len = b->cap = 0;
    return s;
}

/* Write a message into a caller's (err, err_cap) and return `code`. */
static int ferry__fail(char *err, size_t err_cap, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int ferry__fail(char *err, size_t err_cap, int code, const char *fmt, ...)
{
    if (err && err_cap) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, err_cap, fmt, ap);
        va_end(ap);
    }
    return code;
}

/* Same for the short "why" texts of value validation; always -1. */
static int ferry__why(char *why, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int ferry__why(char *why, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, cap, fmt, ap);
    va_end(ap);
    return -1;
}

static int ferry__in_list(const char *s, const char *const *list)
{
    for (; *list; list++)
        if (strcmp(s, *list) == 0)
            return 1;
    return 0;
}

/* "a, b, c" of a NULL-terminated list, for "expected ..." messages. */
static char *ferry__join_list(const char *const *list)
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
static void ferry__fmt_real(double d, char *buf, size_t cap)
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

/* A JSON atom as text. Booleans print the way valohai (Python) prints them
 * when `python_bools` is set, so that `{parameter-value:flag}` and
 * `pass-as: --x={value}` behave as an unchanged valohai.yaml expects. */
static char *ferry__atom_text(const json_t *v, int python_bools)
{
    char num[64];
    switch (json_typeof(v)) {
    case JSON_STRING:
        return ferry_strdup(json_string_value(v));
    case JSON_INTEGER:
        return ferry_asprintf("%" JSON_INTEGER_FORMAT, json_integer_value(v));
    case JSON_REAL:
        ferry__fmt_real(json_real_value(v), num, sizeof(num));
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
        return -1;
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

/* ------------------------------------------------------------------------ */
/* Collected errors                                                          */

#define FERRY__MAX_MSGS 64

typedef struct ferry__msg {
    int line;
    char *text;
} ferry__msg;

typedef struct ferry__ctx {
    const char *path;
    yaml_document_t *doc;
    ferry_stepfile *sf;
    ferry__msg msgs[FERRY__MAX_MSGS];
    size_t n_msgs;
    size_t n_errors;
    size_t budget;           /* YAML nodes we still convert: aliases can blow up a tree */
    const char **task_names; /* top-level task names, for pipeline task nodes */
    size_t n_task_names;
} ferry__ctx;

static void ferry__err(ferry__ctx *c, int line, const char *label, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void ferry__err(ferry__ctx *c, int line, const char *label, const char *fmt, ...)
{
    c->n_errors++;
    if (c->n_msgs == FERRY__MAX_MSGS)
        return;
    ferry__buf b = {0};
    ferry__buf_printf(&b, "%s:%d: ", c->path, line);
    if (label && *label)
        ferry__buf_printf(&b, "%s: ", label);
    va_list ap;
    va_start(ap, fmt);
    ferry__buf_vprintf(&b, fmt, ap);
    va_end(ap);
    c->msgs[c->n_msgs].line = line;
    c->msgs[c->n_msgs].text = ferry__buf_take(&b);
    c->n_msgs++;
}

/* All messages, in file order (steps are checked before pipelines, which
 * need every step), one a line, into err. */
static void ferry__report(ferry__ctx *c, char *err, size_t err_cap)
{
    for (size_t i = 1; i < c->n_msgs; i++) { /* stable insertion sort */
        ferry__msg m = c->msgs[i];
        size_t j = i;
        while (j > 0 && c->msgs[j - 1].line > m.line) {
            c->msgs[j] = c->msgs[j - 1];
            j--;
        }
        c->msgs[j] = m;
    }
    ferry__buf b = {0};
    for (size_t i = 0; i < c->n_msgs; i++)
        ferry__buf_printf(&b, "%s%s", i ? "\n" : "", c->msgs[i].text);
    if (c->n_errors > c->n_msgs)
        ferry__buf_printf(&b, "\n(and %zu more errors)", c->n_errors - c->n_msgs);
    char *all = ferry__buf_take(&b);
    if (err && err_cap)
        snprintf(err, err_cap, "%s", all);
    free(all);
}

static void ferry__ctx_free(ferry__ctx *c)
{
    for (size_t i = 0; i < c->n_msgs; i++)
        free(c->msgs[i].text);
    free(c->task_names);
}

/* ------------------------------------------------------------------------ */
/* YAML nodes                                                                */

typedef enum ferry__kind {
    FERRY__NULL,
    FERRY__BOOL,
    FERRY__INT,
    FERRY__FLOAT,
    FERRY__STR,
    FERRY__SEQ,
    FERRY__MAP,
} ferry__kind;

static yaml_node_t *ferry__node(ferry__ctx *c, int id)
{
    return yaml_document_get_node(c->doc, id);
}

static int ferry__line(const yaml_node_t *n)
{
    return (int)n->start_mark.line + 1;
}

static const char *ferry__text(const yaml_node_t *n)
{
    return (const char *)n->data.scalar.value;
}

static int ferry__plain_null(const char *s)
{
    return !*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") || !strcmp(s, "NULL");
}

/* YAML 1.1 booleans: 1 true, 0 false, -1 not a boolean. */
static int ferry__plain_bool(const char *s)
{
    static const char *const yes[] = {"yes",  "Yes", "YES", "true", "True",
                                      "TRUE", "on",  "On",  "ON",   NULL};
    static const char *const no[] = {"no",    "No",  "NO",  "false", "False",
                                     "FALSE", "off", "Off", "OFF",   NULL};
    if (ferry__in_list(s, yes))
        return 1;
    if (ferry__in_list(s, no))
        return 0;
    return -1;
}

static int ferry__digit(char ch, int base)
{
    int d = -1;
    if (ch >= '0' && ch <= '9')
        d = ch - '0';
    else if (ch >= 'a' && ch <= 'f')
        d = ch - 'a' + 10;
    else if (ch >= 'A' && ch <= 'F')
        d = ch - 'A' + 10;
    return d < base ? d : -1;
}

/* YAML 1.1 integers as PyYAML reads them: 0b1010, 0x1f, 0755 (octal), 1_000.
 * Values that overflow are left to be strings rather than silently wrong. */
static int ferry__yaml_int(const char *s, long long *out)
{
    const char *p = s;
    int neg = 0;
    if (*p == '+' || *p == '-')
        neg = *p++ == '-';
    int base = 10;
    if (p[0] == '0' && p[1] == 'b') {
        base = 2;
        p += 2;
    } else if (p[0] == '0' && p[1] == 'x') {
        base = 16;
        p += 2;
    } else if (p[0] == '0' && p[1]) {
        base = 8;
        p++;
    } else if (!isdigit((unsigned char)p[0])) {
        return 0;
    }
    unsigned long long v = 0;
    int digits = 0;
    for (; *p; p++) {
        if (*p == '_')
            continue;
        int d = ferry__digit(*p, base);
        if (d < 0 || v > (ULLONG_MAX - (unsigned)d) / (unsigned)base)
            return 0;
        v = v * (unsigned)base + (unsigned)d;
        digits++;
    }
    if (!digits || v > (unsigned long long)LLONG_MAX)
        return 0;
    *out = neg ? -(long long)v : (long long)v;
    return 1;
}

/* YAML floats: 1.5, .5, 1., 6.02e23, .inf, .nan; also 1e-3, which PyYAML
 * would leave a string, because users write learning rates that way. */
static int ferry__yaml_float(const char *s, double *out)
{
    const char *p = s;
    int neg = 0;
    if (*p == '+' || *p == '-')
        neg = *p++ == '-';
    if (!strcmp(p, ".inf") || !strcmp(p, ".Inf") || !strcmp(p, ".INF")) {
        *out = neg ? -INFINITY : INFINITY;
        return 1;
    }
    if (p == s && (!strcmp(p, ".nan") || !strcmp(p, ".NaN") || !strcmp(p, ".NAN"))) {
        *out = NAN;
        return 1;
    }
    char num[80];
    size_t n = 0, before = 0, after = 0;
    int dot = 0, exp = 0;
    if (neg)
        num[n++] = '-';
    for (; isdigit((unsigned char)*p) || (*p == '_' && before); p++)
        if (*p != '_' && n + 1 < sizeof(num))
            num[n++] = *p, before++;
    if (*p == '.') {
        dot = 1;
        num[n++] = *p++;
        for (; isdigit((unsigned char)*p) || (*p == '_' && after); p++)
            if (*p != '_' && n + 1 < sizeof(num))
                num[n++] = *p, after++;
    }
    if (!before && !after)
        return 0;
    if (*p == 'e' || *p == 'E') {
        num[n++] = *p++;
        if (*p == '+' || *p == '-')
            num[n++] = *p++;
        if (!isdigit((unsigned char)*p))
            return 0;
        for (; isdigit((unsigned char)*p) && n + 1 < sizeof(num); p++)
            num[n++] = *p;
        exp = 1;
    }
    if (*p || (!dot && !exp) || n + 1 >= sizeof(num))
        return 0;
    num[n] = '\0';
    *out = strtod(num, NULL);
    return 1;
}

static ferry__kind ferry__kind_of_tag(const char *tag)
{
    if (!strcmp(tag, YAML_NULL_TAG))
        return FERRY__NULL;
    if (!strcmp(tag, YAML_BOOL_TAG))
        return FERRY__BOOL;
    if (!strcmp(tag, YAML_INT_TAG))
        return FERRY__INT;
    if (!strcmp(tag, YAML_FLOAT_TAG))
        return FERRY__FLOAT;
    return FERRY__STR;
}

static ferry__kind ferry__kind_of(const yaml_node_t *n)
{
    if (!n)
        return FERRY__NULL;
    if (n->type == YAML_SEQUENCE_NODE)
        return FERRY__SEQ;
    if (n->type == YAML_MAPPING_NODE)
        return FERRY__MAP;
    if (n->type != YAML_SCALAR_NODE)
        return FERRY__NULL;
    const char *tag = (const char *)n->tag;
    /* The loader gives plain scalars the default str tag; only other tags
     * were written explicitly (`!!int 5`). */
    if (tag && strcmp(tag, YAML_DEFAULT_SCALAR_TAG) != 0)
        return ferry__kind_of_tag(tag);
    if (n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return FERRY__STR;
    const char *s = ferry__text(n);
    long long ll;
    double d;
    if (ferry__plain_null(s))
        return FERRY__NULL;
    if (ferry__plain_bool(s) >= 0)
        return FERRY__BOOL;
    if (ferry__yaml_int(s, &ll))
        return FERRY__INT;
    if (ferry__yaml_float(s, &d))
        return FERRY__FLOAT;
    return FERRY__STR;
}

/* "a boolean (yes)" etc., for "expected X, got Y" messages. */
static const char *ferry__describe(const yaml_node_t *n, char *buf, size_t cap)
{
    const char *s = n && n->type == YAML_SCALAR_NODE ? ferry__text(n) : "";
    switch (ferry__kind_of(n)) {
    case FERRY__NULL:
        snprintf(buf, cap, "nothing");
        break;
    case FERRY__BOOL:
        snprintf(buf, cap, "a boolean (%.40s)", s);
        break;
    case FERRY__INT:
        snprintf(buf, cap, "an integer (%.40s)", s);
        break;
    case FERRY__FLOAT:
        snprintf(buf, cap, "a number (%.40s)", s);
        break;
    case FERRY__STR:
        snprintf(buf, cap, "a string ('%.40s')", s);
        break;
    case FERRY__SEQ:
        snprintf(buf, cap, "a list");
        break;
    case FERRY__MAP:
        snprintf(buf, cap, "a mapping");
        break;
    }
    return buf;
}

static int ferry__scalar_bool(const yaml_node_t *n)
{
    const char *s = ferry__text(n);
    return ferry__plain_bool(s) == 1 || !strcmp(s, "1") || !strcasecmp(s, "y");
}

/* A scalar as JSON: null, true/false, integer, real or string. */
static json_t *ferry__scalar_json(const yaml_node_t *n)
{
    const char *s = ferry__text(n);
    long long ll;
    double d;
    switch (ferry__kind_of(n)) {
    case FERRY__NULL:
        return json_null();
    case FERRY__BOOL:
        return json_boolean(ferry__scalar_bool(n));
    case FERRY__INT:
        if (ferry__yaml_int(s, &ll))
            return json_integer(ll);
        break;
    case FERRY__FLOAT:
        if (ferry__yaml_float(s, &d) && isfinite(d))
            return json_real(d);
        break;
    default:
        break;
    }
    return json_stringn(s, n->data.scalar.length);
}

/* A YAML subtree as JSON (defaults, choices). NULL when it is too deep or too
 * big (a small file with nested aliases can expand to billions of nodes). */
static json_t *ferry__to_json(ferry__ctx *c, yaml_node_t *n, int depth)
{
    if (!n)
        return json_null();
    if (depth > 32 || c->budget == 0)
        return NULL;
    c->budget--;
    if (n->type == YAML_SCALAR_NODE)
        return ferry__scalar_json(n);
    if (n->type == YAML_SEQUENCE_NODE) {
        json_t *arr = json_array();
        for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top;
             it++) {
            json_t *item = ferry__to_json(c, ferry__node(c, *it), depth + 1);
            if (!item || json_array_append_new(arr, item) != 0) {
                json_decref(arr);
                return NULL;
            }
        }
        return arr;
    }
    json_t *obj = json_object();
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *k = ferry__node(c, p->key);
        json_t *v = ferry__to_json(c, ferry__node(c, p->value), depth + 1);
        if (!v || !k || k->type != YAML_SCALAR_NODE ||
            json_object_set_new(obj, ferry__text(k), v)) {
            json_decref(v);
            json_decref(obj);
            return NULL;
        }
    }
    return obj;
}

/* ------------------------------------------------------------------------ */
/* Mappings, with YAML merge keys (`<<: *defaults`) as PyYAML applies them    */

typedef struct ferry__pair {
    const char *key;
    yaml_node_t *knode;
    yaml_node_t *value;
} ferry__pair;

typedef struct ferry__map {
    ferry__pair *p;
    size_t n;
    int line;
} ferry__map;

static const ferry__pair *ferry__map_find(const ferry__map *m, const char *key)
{
    for (size_t i = 0; i < m->n; i++)
        if (!strcmp(m->p[i].key, key))
            return &m->p[i];
    return NULL;
}

static yaml_node_t *ferry__map_get(const ferry__map *m, const char *key)
{
    const ferry__pair *p = ferry__map_find(m, key);
    return p ? p->value : NULL;
}

static void ferry__map_add(ferry__ctx *c, ferry__map *m, yaml_node_t *node, int explicit_keys,
                           int depth, const char *label);

static void ferry__map_merge(ferry__ctx *c, ferry__map *m, yaml_node_t *src, int depth,
                             const char *label)
{
    if (src && src->type == YAML_MAPPING_NODE) {
        ferry__map_add(c, m, src, 0, depth + 1, label);
        return;
    }
    if (src && src->type == YAML_SEQUENCE_NODE) {
        /* Earlier mappings win, which adding only missing keys gives. */
        for (yaml_node_item_t *it = src->data.sequence.items.start;
             it < src->data.sequence.items.top; it++)
            ferry__map_merge(c, m, ferry__node(c, *it), depth, label);
        return;
    }
    ferry__err(c, src ? ferry__line(src) : m->line, label, "'<<' must merge a mapping");
}

/* Add the pairs of `node` that m lacks. Keys written in the mapping itself
 * (explicit_keys) may not repeat; merged ones give way to them. */
static void ferry__map_add(ferry__ctx *c, ferry__map *m, yaml_node_t *node, int explicit_keys,
                           int depth, const char *label)
{
    if (depth > 8) {
        ferry__err(c, ferry__line(node), label, "'<<' merges nest too deep");
        return;
    }
    for (yaml_node_pair_t *p = node->data.mapping.pairs.start; p < node->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = ferry__node(c, p->key), *v = ferry__node(c, p->value);
        if (!k || k->type != YAML_SCALAR_NODE) {
            ferry__err(c, k ? ferry__line(k) : m->line, label, "a key must be a plain name");
            continue;
        }
        const char *key = ferry__text(k);
        if (!strcmp(key, "<<") && k->data.scalar.style == YAML_PLAIN_SCALAR_STYLE)
            continue; /* after the mapping's own keys */
        const ferry__pair *have = ferry__map_find(m, key);
        if (have && explicit_keys)
            ferry__err(c, ferry__line(k), label, "duplicate key '%s' (also on line %d)", key,
                       ferry__line(have->knode));
        if (have)
            continue;
        m->p = ferry_xrealloc(m->p, (m->n + 1) * sizeof(*m->p));
        m->p[m->n++] = (ferry__pair){key, k, v};
    }
    for (yaml_node_pair_t *p = node->data.mapping.pairs.start; p < node->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = ferry__node(c, p->key);
        if (k && k->type == YAML_SCALAR_NODE && !strcmp(ferry__text(k), "<<") &&
            k->data.scalar.style == YAML_PLAIN_SCALAR_STYLE)
            ferry__map_merge(c, m, ferry__node(c, p->value), depth, label);
    }
}

/* A view of a mapping node's keys (the node must be a mapping). */
static void ferry__map_load(ferry__ctx *c, yaml_node_t *node, const char *label, ferry__map *m)
{
    m->p = NULL;
    m->n = 0;
    m->line = ferry__line(node);
    ferry__map_add(c, m, node, 1, 0, label);
}

static void ferry__map_free(ferry__map *m)
{
    free(m->p);
    m->p = NULL;
    m->n = 0;
}

/* Edit distance, for "did you mean" on misspelt keys. */
static size_t ferry__distance(const char *a, const char *b)
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

/* Keys outside `allowed` are errors: valohai refuses them too, and a typo
 * such as `time-limt` would otherwise be silently ignored. */
static void ferry__check_keys(ferry__ctx *c, const ferry__map *m, const char *label,
                              const char *const *allowed)
{
    for (size_t i = 0; i < m->n; i++) {
        const char *key = m->p[i].key;
        if (ferry__in_list(key, allowed))
            continue;
        const char *best = NULL;
        size_t best_d = 3;
        for (const char *const *a = allowed; *a; a++) {
            size_t d = ferry__distance(key, *a);
            if (d < best_d)
                best = *a, best_d = d;
        }
        if (best)
            ferry__err(c, ferry__line(m->p[i].knode), label,
                       "unknown key '%s' (did you mean '%s'?)", key, best);
        else
            ferry__err(c, ferry__line(m->p[i].knode), label, "unknown key '%s'", key);
    }
}

/* ------------------------------------------------------------------------ */
/* Typed fields. Each returns 1 (found), 0 (absent) or -1 (error reported).  */

static int ferry__missing(ferry__ctx *c, const ferry__map *m, const char *label, const char *key,
                          int required)
{
    if (!required)
        return 0;
    ferry__err(c, m->line, label, "missing required '%s'", key);
    return -1;
}

/* A field the schema types as a string: `name: yes` or `command: 8` is an
 * error with a hint, as in valohai. */
static int ferry__get_str(ferry__ctx *c, const ferry__map *m, const char *key, const char *label,
                          int required, const char **out)
{
    *out = NULL;
    const ferry__pair *p = ferry__map_find(m, key);
    if (!p)
        return ferry__missing(c, m, label, key, required);
    char what[80];
    if (ferry__kind_of(p->value) != FERRY__STR) {
        ferry__kind k = ferry__kind_of(p->value);
        ferry__err(
            c, ferry__line(p->value ? p->value : p->knode), label,
            "%s: expected a string, got %s%s", key, ferry__describe(p->value, what, sizeof(what)),
            k == FERRY__BOOL || k == FERRY__INT || k == FERRY__FLOAT ? "; put it in quotes" : "");
        return -1;
    }
    if (strlen(ferry__text(p->value)) != p->value->data.scalar.length) {
        ferry__err(c, ferry__line(p->value), label, "%s: contains a NUL character", key);
        return -1;
    }
    *out = ferry__text(p->value);
    return 1;
}

/* A free-text field: any scalar is taken as written (`environment: 123`). */
static int ferry__get_text(ferry__ctx *c, const ferry__map *m, const char *key, const char *label,
                           int required, const char **out)
{
    *out = NULL;
    const ferry__pair *p = ferry__map_find(m, key);
    if (!p || ferry__kind_of(p->value) == FERRY__NULL)
        return ferry__missing(c, m, label, key, required);
    if (p->value->type != YAML_SCALAR_NODE) {
        char what[80];
        ferry__err(c, ferry__line(p->value), label, "%s: expected a string, got %s", key,
                   ferry__describe(p->value, what, sizeof(what)));
        return -1;
    }
    *out = ferry__text(p->value);
    return 1;
}

static int ferry__get_bool(ferry__ctx *c, const ferry__map *m, const char *key, const char *label,
                           int *out)
{
    const ferry__pair *p = ferry__map_find(m, key);
    if (!p || ferry__kind_of(p->value) == FERRY__NULL)
        return 0;
    if (ferry__kind_of(p->value) != FERRY__BOOL) {
        char what[80];
        ferry__err(c, ferry__line(p->value), label, "%s: expected true or false, got %s", key,
                   ferry__describe(p->value, what, sizeof(what)));
        return -1;
    }
    *out = ferry__scalar_bool(p->value);
    return 1;
}

static int ferry__node_number(const yaml_node_t *n, double *out)
{
    long long ll;
    ferry__kind k = ferry__kind_of(n);
    if (k == FERRY__INT && ferry__yaml_int(ferry__text(n), &ll)) {
        *out = (double)ll;
        return 0;
    }
    if (k == FERRY__FLOAT && ferry__yaml_float(ferry__text(n), out) && isfinite(*out))
        return 0;
    return -1;
}

static int ferry__get_number(ferry__ctx *c, const ferry__map *m, const char *key, const char *label,
                             double *out)
{
    const ferry__pair *p = ferry__map_find(m, key);
    if (!p || ferry__kind_of(p->value) == FERRY__NULL)
        return 0;
    if (ferry__node_number(p->value, out) != 0) {
        char what[80];
        ferry__err(c, ferry__line(p->value), label, "%s: expected a number, got %s", key,
                   ferry__describe(p->value, what, sizeof(what)));
        return -1;
    }
    return 1;
}

/* A value from a fixed set (`on-error`, `edge-merge-mode`). */
static int ferry__get_enum(ferry__ctx *c, const ferry__map *m, const char *key, const char *label,
                           const char *const *allowed, const char **out)
{
    int rc = ferry__get_text(c, m, key, label, 0, out);
    if (rc <= 0)
        return rc;
    if (ferry__in_list(*out, allowed))
        return 1;
    char *list = ferry__join_list(allowed);
    ferry__err(c, ferry__line(ferry__map_get(m, key)), label, "unknown %s '%s' (expected %s)", key,
               *out, list);
    free(list);
    return -1;
}

/* A field that must be a list; returns its node or NULL (absent or error). */
static yaml_node_t *ferry__get_seq(ferry__ctx *c, const ferry__map *m, const char *key,
                                   const char *label)
{
    yaml_node_t *n = ferry__map_get(m, key);
    if (!n || ferry__kind_of(n) == FERRY__NULL)
        return NULL;
    if (n->type != YAML_SEQUENCE_NODE) {
        char what[80];
        ferry__err(c, ferry__line(n), label, "%s: expected a list, got %s", key,
                   ferry__describe(n, what, sizeof(what)));
        return NULL;
    }
    return n;
}

#define FERRY__SEQ_EACH(seq, it)                                                                   \
    for (yaml_node_item_t *it = (seq)->data.sequence.items.start;                                  \
         it < (seq)->data.sequence.items.top; it++)

static size_t ferry__seq_len(const yaml_node_t *seq)
{
    return (size_t)(seq->data.sequence.items.top - seq->data.sequence.items.start);
}

/* ------------------------------------------------------------------------ */
/* Expressions (stop-condition): a syntax check of the Python-like language   */
/* valohai evaluates, so that a condition that can never work is caught here. */

enum { FERRY__T_END, FERRY__T_NAME, FERRY__T_KW, FERRY__T_NUM, FERRY__T_STR, FERRY__T_OP };

typedef struct ferry__lex {
    const char *s;
    size_t pos;   /* next character */
    int tok;      /* current token */
    size_t start; /* its offset */
    size_t len;
    int depth;
    char *why;
    size_t why_cap;
    int failed;
} ferry__lex;

static int ferry__lex_fail(ferry__lex *lx, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int ferry__lex_fail(ferry__lex *lx, const char *fmt, ...)
{
    if (!lx->failed) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(lx->why, lx->why_cap, fmt, ap);
        va_end(ap);
    }
    lx->failed = 1;
    return -1;
}

static int ferry__lex_number(ferry__lex *lx)
{
    const char *s = lx->s;
    size_t p = lx->pos;
    while (isdigit((unsigned char)s[p]) || s[p] == '_')
        p++;
    if (s[p] == '.')
        for (p++; isdigit((unsigned char)s[p]) || s[p] == '_'; p++)
            ;
    if (s[p] == 'e' || s[p] == 'E') {
        p++;
        if (s[p] == '+' || s[p] == '-')
            p++;
        if (!isdigit((unsigned char)s[p]))
            return ferry__lex_fail(lx, "malformed number at column %zu", lx->start + 1);
        while (isdigit((unsigned char)s[p]))
            p++;
    }
    if (isalpha((unsigned char)s[p]) || s[p] == '_')
        return ferry__lex_fail(lx, "malformed number at column %zu", lx->start + 1);
    lx->pos = p;
    lx->tok = FERRY__T_NUM;
    return 0;
}

static int ferry__lex_string(ferry__lex *lx)
{
    char quote = lx->s[lx->pos];
    size_t p = lx->pos + 1;
    for (; lx->s[p] && lx->s[p] != quote && lx->s[p] != '\n'; p++)
        if (lx->s[p] == '\\' && lx->s[p + 1])
            p++;
    if (lx->s[p] != quote)
        return ferry__lex_fail(lx, "unterminated string starting at column %zu", lx->start + 1);
    lx->pos = p + 1;
    lx->tok = FERRY__T_STR;
    return 0;
}

static int ferry__lex_next(ferry__lex *lx)
{
    static const char *const kws[] = {"and", "or", "not", "in", "is", "if", "else", "lambda", NULL};
    static const char *const ops[] = {"**", "//", "==", "!=", "<=", ">=", "<", ">", "+", "-", "*",
                                      "/",  "%",  "~",  "(",  ")",  "[",  "]", ",", ".", NULL};
    const char *s = lx->s;
    while (isspace((unsigned char)s[lx->pos]))
        lx->pos++;
    lx->start = lx->pos;
    unsigned char ch = (unsigned char)s[lx->pos];
    int rc = 0;
    if (!ch) {
        lx->tok = FERRY__T_END;
    } else if (isdigit(ch) || (ch == '.' && isdigit((unsigned char)s[lx->pos + 1]))) {
        rc = ferry__lex_number(lx);
    } else if (isalpha(ch) || ch == '_') {
        while (isalnum((unsigned char)s[lx->pos]) || s[lx->pos] == '_')
            lx->pos++;
        char word[16] = "";
        if (lx->pos - lx->start < sizeof(word))
            memcpy(word, s + lx->start, lx->pos - lx->start);
        lx->tok = ferry__in_list(word, kws) ? FERRY__T_KW : FERRY__T_NAME;
    } else if (ch == '\'' || ch == '"') {
        rc = ferry__lex_string(lx);
    } else {
        const char *const *op = ops;
        for (; *op; op++)
            if (!strncmp(s + lx->pos, *op, strlen(*op)))
                break;
        if (!*op)
            return ferry__lex_fail(lx, "unexpected character '%c' at column %zu", ch,
                                   lx->start + 1);
        lx->pos += strlen(*op);
        lx->tok = FERRY__T_OP;
    }
    lx->len = lx->pos - lx->start;
    return rc;
}

/* Is the current token exactly `text` (an operator or keyword)? */
static int ferry__lex_is(const ferry__lex *lx, const char *text)
{
    return (lx->tok == FERRY__T_OP || lx->tok == FERRY__T_KW) && strlen(text) == lx->len &&
           !strncmp(lx->s + lx->start, text, lx->len);
}

static int ferry__lex_unexpected(ferry__lex *lx)
{
    if (lx->tok == FERRY__T_END)
        return ferry__lex_fail(lx, "unexpected end of expression");
    return ferry__lex_fail(lx, "unexpected '%.*s' at column %zu", (int)lx->len, lx->s + lx->start,
                           lx->start + 1);
}

static int ferry__lex_expect(ferry__lex *lx, const char *text)
{
    if (!ferry__lex_is(lx, text))
        return ferry__lex_unexpected(lx);
    return ferry__lex_next(lx);
}

static int ferry__expr(ferry__lex *lx);
static int ferry__expr_factor(ferry__lex *lx);

/* '(' expr, ... ')' or '[' expr, ... ']' with the opener current. */
static int ferry__expr_list(ferry__lex *lx, const char *close)
{
    if (ferry__lex_next(lx))
        return -1;
    while (!ferry__lex_is(lx, close)) {
        if (ferry__expr(lx))
            return -1;
        if (!ferry__lex_is(lx, ","))
            break;
        if (ferry__lex_next(lx))
            return -1;
    }
    return ferry__lex_expect(lx, close);
}

static int ferry__expr_atom(ferry__lex *lx)
{
    if (lx->tok == FERRY__T_NAME || lx->tok == FERRY__T_NUM)
        return ferry__lex_next(lx);
    if (lx->tok == FERRY__T_STR) {
        while (lx->tok == FERRY__T_STR) /* "a" "b" concatenates */
            if (ferry__lex_next(lx))
                return -1;
        return 0;
    }
    if (ferry__lex_is(lx, "(")) {
        if (ferry__lex_next(lx) || ferry__expr(lx))
            return -1;
        return ferry__lex_expect(lx, ")");
    }
    if (ferry__lex_is(lx, "["))
        return ferry__expr_list(lx, "]");
    return ferry__lex_unexpected(lx);
}

/* atom, then any of .name (call) [index] */
static int ferry__expr_primary(ferry__lex *lx)
{
    if (ferry__expr_atom(lx))
        return -1;
    for (;;) {
        if (ferry__lex_is(lx, ".")) {
            if (ferry__lex_next(lx))
                return -1;
            if (lx->tok != FERRY__T_NAME)
                return ferry__lex_unexpected(lx);
            if (ferry__lex_next(lx))
                return -1;
        } else if (ferry__lex_is(lx, "(")) {
            if (ferry__expr_list(lx, ")"))
                return -1;
        } else if (ferry__lex_is(lx, "[")) {
            if (ferry__lex_next(lx) || ferry__expr(lx) || ferry__lex_expect(lx, "]"))
                return -1;
        } else {
            return 0;
        }
    }
}

static int ferry__expr_factor(ferry__lex *lx)
{
    if (++lx->depth > 64)
        return ferry__lex_fail(lx, "expression nests too deep");
    int rc;
    if (ferry__lex_is(lx, "-") || ferry__lex_is(lx, "+") || ferry__lex_is(lx, "~")) {
        rc = ferry__lex_next(lx) || ferry__expr_factor(lx) ? -1 : 0;
    } else {
        rc = ferry__expr_primary(lx);
        if (!rc && ferry__lex_is(lx, "**"))
            rc = ferry__lex_next(lx) || ferry__expr_factor(lx) ? -1 : 0;
    }
    lx->depth--;
    return rc;
}

/* Binary operators, by precedence level (0 binds loosest). */
static int ferry__expr_binary(ferry__lex *lx, int level)
{
    static const char *const levels[][7] = {
        {"or", NULL},     {"and", NULL},
        {NULL}, /* not, comparisons: below */
        {"+", "-", NULL}, {"*", "/", "//", "%", NULL},
    };
    if (level == 2) { /* not_test and comparison */
        if (ferry__lex_is(lx, "not")) {
            if (++lx->depth > 64)
                return ferry__lex_fail(lx, "expression nests too deep");
            int rc = ferry__lex_next(lx) || ferry__expr_binary(lx, 2) ? -1 : 0;
            lx->depth--;
            return rc;
        }
        static const char *const cmp[] = {"<", ">", "==", "!=", "<=", ">=", "in", NULL};
        if (ferry__expr_binary(lx, 3))
            return -1;
        for (;;) {
            int is_cmp = 0;
            for (const char *const *op = cmp; *op; op++)
                is_cmp |= ferry__lex_is(lx, *op);
            if (ferry__lex_is(lx, "not") || ferry__lex_is(lx, "is")) {
                int was_not = ferry__lex_is(lx, "not");
                if (ferry__lex_next(lx))
                    return -1;
                if (was_not && !ferry__lex_is(lx, "in"))
                    return ferry__lex_unexpected(lx);
                if ((was_not || ferry__lex_is(lx, "not")) && ferry__lex_next(lx))
                    return -1;
            } else if (is_cmp) {
                if (ferry__lex_next(lx))
                    return -1;
            } else {
                return 0;
            }
            if (ferry__expr_binary(lx, 3))
                return -1;
        }
    }
    if (level == 5)
        return ferry__expr_factor(lx);
    if (ferry__expr_binary(lx, level + 1))
        return -1;
    for (;;) {
        int match = 0;
        for (const char *const *op = levels[level]; *op; op++)
            match |= ferry__lex_is(lx, *op);
        if (!match)
            return 0;
        if (ferry__lex_next(lx) || ferry__expr_binary(lx, level + 1))
            return -1;
    }
}

/* or_test ['if' or_test 'else' expr] */
static int ferry__expr(ferry__lex *lx)
{
    if (++lx->depth > 64)
        return ferry__lex_fail(lx, "expression nests too deep");
    int rc = ferry__expr_binary(lx, 0);
    if (!rc && ferry__lex_is(lx, "if")) {
        rc = ferry__lex_next(lx) || ferry__expr_binary(lx, 0) || ferry__lex_expect(lx, "else") ||
                     ferry__expr(lx)
                 ? -1
                 : 0;
    }
    lx->depth--;
    return rc;
}

static int ferry__expr_check(const char *text, char *why, size_t why_cap)
{
    ferry__lex lx = {.s = text, .why = why, .why_cap = why_cap};
    if (ferry__lex_next(&lx))
        return -1;
    if (lx.tok == FERRY__T_END)
        return ferry__lex_fail(&lx, "the expression is empty");
    if (ferry__expr(&lx))
        return -1;
    if (lx.tok != FERRY__T_END)
        return ferry__lex_unexpected(&lx);
    return 0;
}

static void ferry__check_expression(ferry__ctx *c, const ferry__map *m, const char *key,
                                    const char *label)
{
    const char *text;
    if (ferry__get_text(c, m, key, label, 0, &text) <= 0)
        return;
    char why[160];
    if (ferry__expr_check(text, why, sizeof(why)) != 0)
        ferry__err(c, ferry__line(ferry__map_get(m, key)), label,
                   "%s: '%s' is not a valid expression: %s", key, text, why);
}

/* ------------------------------------------------------------------------ */
/* Parameter values: one set of rules for defaults in the file and for the   */
/* values users give, so a default can never be something a user can't type. */

/* Strip blanks around a value typed on a command line. */
static char *ferry__trimmed(const char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *t = ferry_strdup(s);
    size_t n = strlen(t);
    while (n && isspace((unsigned char)t[n - 1]))
        t[--n] = '\0';
    return t;
}

static int ferry__to_integer(const json_t *v, json_t **out, char *why, size_t cap)
{
    if (json_is_integer(v)) {
        *out = json_incref((json_t *)v);
        return 0;
    }
    if (json_is_real(v)) { /* 3.0 from a JSON client is 3; 5.3 is an error */
        double d = json_real_value(v);
        if (d > -9.2e18 && d < 9.2e18 && d == (double)(json_int_t)d) {
            *out = json_integer((json_int_t)d);
            return 0;
        }
    }
    char *text = ferry__atom_text(v, 0);
    int rc = -1;
    if (json_is_string(v)) {
        char *t = ferry__trimmed(text), *end = NULL;
        errno = 0;
        long long ll = *t ? strtoll(t, &end, 10) : 0;
        if (!*t)
            ferry__why(why, cap, "No value supplied");
        else if (!errno && end && !*end)
            *out = json_integer(ll), rc = 0;
        else
            ferry__why(why, cap, "%s is not an integer", text);
        free(t);
    } else {
        ferry__why(why, cap, "%s is not an integer", text);
    }
    free(text);
    return rc;
}

static int ferry__to_float(const json_t *v, json_t **out, char *why, size_t cap)
{
    if (json_is_number(v)) {
        *out = json_real(json_number_value(v));
        return 0;
    }
    char *text = ferry__atom_text(v, 0);
    int rc = -1;
    if (json_is_string(v)) {
        char *t = ferry__trimmed(text), *end = NULL;
        errno = 0;
        /* strtod also reads hex, "inf" and "nan": none is a number here */
        double d = *t && !strpbrk(t, "xXnN") ? strtod(t, &end) : 0;
        if (!*t)
            ferry__why(why, cap, "No value supplied");
        else if (end && !*end && !errno && isfinite(d))
            *out = json_real(d), rc = 0;
        else
            ferry__why(why, cap, "%s is not a floating-point number", text);
        free(t);
    } else {
        ferry__why(why, cap, "%s is not a floating-point number", text);
    }
    free(text);
    return rc;
}

static int ferry__to_flag(const json_t *v, json_t **out, char *why, size_t cap)
{
    static const char *const yes[] = {"true", "yes", "1", "on", "y", NULL};
    static const char *const no[] = {"false", "no", "0", "off", "n", NULL};
    if (json_is_boolean(v)) {
        *out = json_incref((json_t *)v);
        return 0;
    }
    if (json_is_integer(v) && (json_integer_value(v) == 0 || json_integer_value(v) == 1)) {
        *out = json_boolean(json_integer_value(v));
        return 0;
    }
    char *text = ferry__atom_text(v, 0);
    char *t = ferry__trimmed(text);
    for (char *p = t; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    int rc = -1;
    if (json_is_string(v) && ferry__in_list(t, yes))
        *out = json_true(), rc = 0;
    else if (json_is_string(v) && ferry__in_list(t, no))
        *out = json_false(), rc = 0;
    else
        ferry__why(why, cap, "%s is not a flag value (expected true or false)", text);
    free(t);
    free(text);
    return rc;
}

/* One value to the parameter's type: "3" is 3 for an integer, since values
 * from `ferry run -p NAME=VALUE` arrive as strings. */
static int ferry__coerce_atom(const ferry_param_def *p, const json_t *v, json_t **out, char *why,
                              size_t cap)
{
    *out = NULL;
    if (json_is_null(v))
        return ferry__why(why, cap, "No value supplied");
    if (json_is_array(v) || json_is_object(v))
        return ferry__why(why, cap, "nested lists and mappings are not allowed");
    switch (p->type) {
    case FERRY_PARAM_INTEGER:
        return ferry__to_integer(v, out, why, cap);
    case FERRY_PARAM_FLOAT:
        return ferry__to_float(v, out, why, cap);
    case FERRY_PARAM_FLAG:
        return ferry__to_flag(v, out, why, cap);
    case FERRY_PARAM_STRING:
        break;
    }
    if (json_is_string(v)) {
        *out = json_incref((json_t *)v);
        return 0;
    }
    char *text = ferry__atom_text(v, 0); /* 5 for a string parameter is "5" */
    *out = json_string(text);
    free(text);
    return 0;
}

static int ferry__atom_equal(const json_t *a, const json_t *b)
{
    if (json_is_number(a) && json_is_number(b))
        return json_number_value(a) == json_number_value(b);
    return json_equal((json_t *)a, (json_t *)b);
}

/* min, max and choices, on a value already of the parameter's type. */
static int ferry__check_atom(const ferry_param_def *p, const json_t *v, char *why, size_t cap)
{
    char a[64], b[64];
    if (json_is_number(v)) {
        double d = json_number_value(v);
        ferry__fmt_real(d, a, sizeof(a));
        if (p->has_min && d < p->min) {
            ferry__fmt_real(p->min, b, sizeof(b));
            return ferry__why(why, cap, "%s is less than the minimum %s", a, b);
        }
        if (p->has_max && d > p->max) {
            ferry__fmt_real(p->max, b, sizeof(b));
            return ferry__why(why, cap, "%s is greater than the maximum %s", a, b);
        }
    }
    if (p->type == FERRY_PARAM_FLAG || !p->choices || json_array_size(p->choices) == 0)
        return 0;
    size_t i;
    json_t *choice;
    json_array_foreach(p->choices, i, choice)
    {
        if (ferry__atom_equal(v, choice))
            return 0;
    }
    ferry__buf list = {0};
    json_array_foreach(p->choices, i, choice)
    {
        char *t = ferry__atom_text(choice, 0);
        ferry__buf_printf(&list, "%s%s", i ? ", " : "", t);
        free(t);
    }
    char *text = ferry__atom_text(v, 0), *all = ferry__buf_take(&list);
    ferry__why(why, cap, "'%s' is not one of: %s", text, all);
    free(text);
    free(all);
    return -1;
}

static int ferry__coerce_checked(const ferry_param_def *p, const json_t *v, json_t **out, char *why,
                                 size_t cap)
{
    if (ferry__coerce_atom(p, v, out, why, cap) != 0)
        return -1;
    if (ferry__check_atom(p, *out, why, cap) != 0) {
        json_decref(*out);
        *out = NULL;
        return -1;
    }
    return 0;
}

/* A whole value: an atom, or a list for a `multiple` parameter (where a
 * single atom becomes a list of one). */
static int ferry__coerce_value(const ferry_param_def *p, const json_t *v, json_t **out, char *why,
                               size_t cap)
{
    *out = NULL;
    if (json_is_array(v)) {
        if (p->multiple == FERRY_MULTIPLE_NONE)
            return ferry__why(why, cap, "expected a single value, got a list");
        json_t *arr = json_array();
        size_t i;
        json_t *item;
        json_array_foreach(v, i, item)
        {
            json_t *atom;
            if (ferry__coerce_checked(p, item, &atom, why, cap) != 0) {
                json_decref(arr);
                return -1;
            }
            json_array_append_new(arr, atom);
        }
        *out = arr;
        return 0;
    }
    if (json_is_object(v))
        return ferry__why(why, cap, "expected a value, got a mapping");
    json_t *atom;
    if (ferry__coerce_checked(p, v, &atom, why, cap) != 0)
        return -1;
    if (p->multiple == FERRY_MULTIPLE_NONE) {
        *out = atom;
        return 0;
    }
    *out = json_array();
    json_array_append_new(*out, atom);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Steps                                                                     */

static const char *const ferry__step_keys[] = {"name",
                                               "image",
                                               "command",
                                               "parameters",
                                               "inputs",
                                               "outputs",
                                               "mounts",
                                               "environment-variables",
                                               "environment",
                                               "time-limit",
                                               "no-output-timeout",
                                               "description",
                                               "upload-store",
                                               "icon",
                                               "category",
                                               "source-path",
                                               "resources",
                                               "stop-condition",
                                               "runtime-config-preset",
                                               "cache-volumes",
                                               "environment-variable-groups",
                                               "autorestart",
                                               NULL};

static const char *const ferry__param_keys[] = {
    "name",          "type",   "default",  "optional", "pass-as",  "pass-true-as",
    "pass-false-as", "min",    "max",      "choices",  "multiple", "multiple-separator",
    "description",   "widget", "category", NULL};

static const char *const ferry__input_keys[] = {
    "name",     "default",         "optional",      "filename", "description", "keep-directories",
    "download", "edge-merge-mode", "override-mode", NULL};

static const char *const ferry__env_keys[] = {"name", "default", "optional", "description", NULL};

static const char *const ferry__merge_modes[] = {"replace", "append", NULL};

/* The mapping's own `name: <string>`, read before the mapping is checked so
 * that every message about it (duplicate keys too) can name it. */
static const char *ferry__peek_name(ferry__ctx *c, yaml_node_t *map)
{
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = ferry__node(c, p->key), *v = ferry__node(c, p->value);
        if (k && k->type == YAML_SCALAR_NODE && !strcmp(ferry__text(k), "name") &&
            ferry__kind_of(v) == FERRY__STR)
            return ferry__text(v);
    }
    return NULL;
}

/* "step 'train'", or where the name is missing, the line. */
static char *ferry__label(const char *kind, const char *name, int line)
{
    if (name)
        return ferry_asprintf("%s '%s'", kind, name);
    return ferry_asprintf("%s at line %d", kind, line);
}

static char *ferry__sublabel(const char *parent, const char *kind, const char *name, size_t index)
{
    if (name)
        return ferry_asprintf("%s: %s '%s'", parent, kind, name);
    return ferry_asprintf("%s: %s #%zu", parent, kind, index + 1);
}

static int ferry__param_type(ferry__ctx *c, const ferry__map *m, const char *label,
                             ferry_param_type *out)
{
    static const char *const names[] = {"string", "integer", "float", "flag", NULL};
    const char *t;
    *out = FERRY_PARAM_STRING;
    int rc = ferry__get_text(c, m, "type", label, 0, &t);
    if (rc <= 0)
        return rc;
    for (int i = 0; names[i]; i++)
        if (!strcmp(t, names[i])) {
            *out = (ferry_param_type)i;
            return 1;
        }
    ferry__err(c, ferry__line(ferry__map_get(m, "type")), label,
               "unknown type '%s' (expected string, integer, float, flag)", t);
    return -1;
}

static void ferry__param_multiple(ferry__ctx *c, const ferry__map *m, const char *label,
                                  ferry_param_def *p)
{
    const char *t;
    if (ferry__get_text(c, m, "multiple", label, 0, &t) > 0) {
        if (!strcasecmp(t, "repeat"))
            p->multiple = FERRY_MULTIPLE_REPEAT;
        else if (!strcasecmp(t, "separate"))
            p->multiple = FERRY_MULTIPLE_SEPARATE;
        else if (strcasecmp(t, "none") != 0)
            ferry__err(c, ferry__line(ferry__map_get(m, "multiple")), label,
                       "unknown multiple '%s' (expected none, repeat, separate)", t);
        if (p->multiple && p->type == FERRY_PARAM_FLAG)
            ferry__err(c, ferry__line(ferry__map_get(m, "multiple")), label,
                       "a flag can't take multiple values");
    }
    const char *sep = NULL;
    ferry__get_text(c, m, "multiple-separator", label, 0, &sep);
    p->multiple_separator = ferry_strdup(sep && *sep ? sep : ",");
}

static void ferry__param_range(ferry__ctx *c, const ferry__map *m, const char *label,
                               ferry_param_def *p)
{
    p->has_min = ferry__get_number(c, m, "min", label, &p->min) > 0;
    p->has_max = ferry__get_number(c, m, "max", label, &p->max) > 0;
    if (p->has_min && p->has_max && p->min > p->max)
        ferry__err(c, ferry__line(ferry__map_get(m, "max")), label,
                   "max is smaller than min: no value could pass");
}

static void ferry__param_choices(ferry__ctx *c, const ferry__map *m, const char *label,
                                 ferry_param_def *p)
{
    yaml_node_t *seq = ferry__get_seq(c, m, "choices", label);
    if (!seq || ferry__seq_len(seq) == 0 || p->type == FERRY_PARAM_FLAG)
        return;
    p->choices = json_array();
    FERRY__SEQ_EACH(seq, it)
    {
        yaml_node_t *n = ferry__node(c, *it);
        json_t *raw = n && n->type == YAML_SCALAR_NODE ? ferry__scalar_json(n) : NULL, *typed;
        char why[256];
        if (!raw)
            ferry__err(c, n ? ferry__line(n) : m->line, label, "choices: expected plain values");
        else if (ferry__coerce_atom(p, raw, &typed, why, sizeof(why)) != 0)
            ferry__err(c, ferry__line(n), label, "choices: %s", why);
        else
            json_array_append_new(p->choices, typed);
        json_decref(raw);
    }
}

/* The default, checked like a user's value so that a bad one is reported at
 * its line rather than when someone runs the step. */
static void ferry__param_default(ferry__ctx *c, const ferry__map *m, const char *label,
                                 ferry_param_def *p)
{
    yaml_node_t *n = ferry__map_get(m, "default");
    if (!n || ferry__kind_of(n) == FERRY__NULL)
        return;
    json_t *raw = ferry__to_json(c, n, 0);
    char why[256];
    if (!raw)
        ferry__err(c, ferry__line(n), label, "default: too deeply nested or too large");
    else if (json_is_array(raw) && p->multiple == FERRY_MULTIPLE_NONE)
        ferry__err(c, ferry__line(n), label,
                   "default: a list needs 'multiple: repeat' or 'multiple: separate'");
    else if (ferry__coerce_value(p, raw, &p->default_value, why, sizeof(why)) != 0)
        ferry__err(c, ferry__line(n), label, "default: %s", why);
    json_decref(raw);
}

static void ferry__parse_param(ferry__ctx *c, yaml_node_t *n, const char *step_label, size_t index,
                               ferry_param_def *p)
{
    char what[80];
    if (ferry__kind_of(n) != FERRY__MAP) {
        ferry__err(c, n ? ferry__line(n) : 1, step_label,
                   "parameter #%zu: expected a mapping with at least 'name', got %s", index + 1,
                   ferry__describe(n, what, sizeof(what)));
        return;
    }
    ferry__map m;
    char *label = ferry__sublabel(step_label, "parameter", ferry__peek_name(c, n), index);
    ferry__map_load(c, n, label, &m);
    const char *name, *text;
    if (ferry__get_str(c, &m, "name", label, 1, &name) > 0)
        p->name = ferry_strdup(name);
    ferry__param_type(c, &m, label, &p->type);
    ferry__get_bool(c, &m, "optional", label, &p->optional);
    if (p->type == FERRY_PARAM_FLAG)
        p->optional = 1; /* a flag is off unless set */
    if (ferry__get_text(c, &m, "pass-as", label, 0, &text) > 0 && *text)
        p->pass_as = ferry_strdup(text);
    if (ferry__get_text(c, &m, "pass-true-as", label, 0, &text) > 0)
        p->pass_true_as = ferry_strdup(text);
    if (ferry__get_text(c, &m, "pass-false-as", label, 0, &text) > 0)
        p->pass_false_as = ferry_strdup(text);
    if (ferry__get_text(c, &m, "description", label, 0, &text) > 0)
        p->description = ferry_strdup(text);
    ferry__param_range(c, &m, label, p);
    ferry__param_multiple(c, &m, label, p);
    ferry__param_choices(c, &m, label, p);
    ferry__param_default(c, &m, label, p);
    ferry__check_keys(c, &m, label, ferry__param_keys);
    ferry__map_free(&m);
    free(label);
}

/* Input names and file names become folders and files under inputs/: they
 * must not be able to point anywhere else. */
static int ferry__plain_file_name(const char *s)
{
    return *s && strcmp(s, ".") != 0 && strcmp(s, "..") != 0 && !strchr(s, '/') && !strchr(s, '\\');
}

static void ferry__input_defaults(ferry__ctx *c, const ferry__map *m, const char *label,
                                  ferry_input_def *in)
{
    yaml_node_t *n = ferry__map_get(m, "default");
    if (!n || ferry__kind_of(n) == FERRY__NULL)
        return;
    size_t count = n->type == YAML_SEQUENCE_NODE ? ferry__seq_len(n) : 1;
    in->default_urls = ferry_xcalloc(count ? count : 1, sizeof(char *));
    for (size_t i = 0; i < count; i++) {
        yaml_node_t *u =
            n->type == YAML_SEQUENCE_NODE ? ferry__node(c, n->data.sequence.items.start[i]) : n;
        char what[80];
        if (!u || u->type != YAML_SCALAR_NODE || ferry__kind_of(u) == FERRY__NULL) {
            ferry__err(c, u ? ferry__line(u) : m->line, label,
                       "default: expected a URL or a list of URLs, got %s",
                       ferry__describe(u, what, sizeof(what)));
            continue;
        }
        if (*ferry__text(u))
            in->default_urls[in->n_default_urls++] = ferry_strdup(ferry__text(u));
    }
}

static void ferry__input_extras(ferry__ctx *c, const ferry__map *m, const char *label)
{
    const char *t;
    yaml_node_t *kd = ferry__map_get(m, "keep-directories");
    if (kd && ferry__kind_of(kd) != FERRY__BOOL && ferry__kind_of(kd) != FERRY__NULL) {
        static const char *const modes[] = {"none", "full", "suffix", NULL};
        ferry__get_enum(c, m, "keep-directories", label, modes, &t);
    }
    ferry__get_enum(c, m, "edge-merge-mode", label, ferry__merge_modes, &t);
    ferry__get_enum(c, m, "override-mode", label, ferry__merge_modes, &t);
    ferry__get_text(c, m, "download", label, 0, &t);
    ferry__get_text(c, m, "description", label, 0, &t);
}

static void ferry__parse_input(ferry__ctx *c, yaml_node_t *n, const char *step_label, size_t index,
                               ferry_input_def *in)
{
    char what[80];
    if (ferry__kind_of(n) != FERRY__MAP) {
        ferry__err(c, n ? ferry__line(n) : 1, step_label,
                   "input #%zu: expected a mapping with at least 'name', got %s", index + 1,
                   ferry__describe(n, what, sizeof(what)));
        return;
    }
    ferry__map m;
    char *label = ferry__sublabel(step_label, "input", ferry__peek_name(c, n), index);
    ferry__map_load(c, n, label, &m);
    const char *name, *text;
    if (ferry__get_str(c, &m, "name", label, 1, &name) > 0) {
        in->name = ferry_strdup(name);
        int line = ferry__line(ferry__map_get(&m, "name"));
        if (strlen(name) > 64)
            ferry__err(c, line, label, "name is too long (%zu characters, at most 64)",
                       strlen(name));
        else if (!ferry__plain_file_name(name))
            ferry__err(c, line, label,
                       "name can't be empty, '.', '..' or contain '/' or '\\' "
                       "(it names a folder under inputs/)");
    }
    ferry__input_defaults(c, &m, label, in);
    ferry__get_bool(c, &m, "optional", label, &in->optional);
    if (ferry__get_text(c, &m, "filename", label, 0, &text) > 0) {
        if (ferry__plain_file_name(text))
            in->filename = ferry_strdup(text);
        else
            ferry__err(c, ferry__line(ferry__map_get(&m, "filename")), label,
                       "filename '%s' must be a plain file name, without '/'", text);
    }
    ferry__input_extras(c, &m, label);
    ferry__check_keys(c, &m, label, ferry__input_keys);
    ferry__map_free(&m);
    free(label);
}

static void ferry__parse_env(ferry__ctx *c, yaml_node_t *n, const char *step_label, size_t index,
                             ferry_env_def *e)
{
    char what[80];
    e->optional = 1; /* valohai: environment variables are optional by default */
    if (ferry__kind_of(n) != FERRY__MAP) {
        ferry__err(c, n ? ferry__line(n) : 1, step_label,
                   "environment variable #%zu: expected a mapping with at least 'name', got %s",
                   index + 1, ferry__describe(n, what, sizeof(what)));
        return;
    }
    ferry__map m;
    char *label =
        ferry__sublabel(step_label, "environment variable", ferry__peek_name(c, n), index);
    ferry__map_load(c, n, label, &m);
    const char *name, *text;
    if (ferry__get_str(c, &m, "name", label, 1, &name) > 0) {
        e->name = ferry_strdup(name);
        if (!*name || strchr(name, '='))
            ferry__err(c, ferry__line(ferry__map_get(&m, "name")), label,
                       "name can't be empty or contain '='");
    }
    if (ferry__get_text(c, &m, "default", label, 0, &text) > 0)
        e->default_value = ferry_strdup(text);
    ferry__get_bool(c, &m, "optional", label, &e->optional);
    ferry__get_text(c, &m, "description", label, 0, &text);
    ferry__check_keys(c, &m, label, ferry__env_keys);
    ferry__map_free(&m);
    free(label);
}

/* Lists of named items, each parsed by `parse` into an array of `size`-byte
 * structs; names must be unique within the step. */
typedef void (*ferry__item_fn)(ferry__ctx *, yaml_node_t *, const char *, size_t, void *);

static void ferry__parse_items_of(ferry__ctx *c, const ferry__map *m, const char *key,
                                  const char *label, size_t size, void **items, size_t *n_items,
                                  ferry__item_fn parse, const char *what)
{
    yaml_node_t *seq = ferry__get_seq(c, m, key, label);
    if (!seq)
        return;
    size_t n = ferry__seq_len(seq);
    char *arr = ferry_xcalloc(n ? n : 1, size);
    *items = arr;
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *item = ferry__node(c, seq->data.sequence.items.start[i]);
        parse(c, item, label, i, arr + i * size);
        (*n_items)++;
        /* every item struct starts with its `char *name` */
        const char *name = *(char **)(void *)(arr + i * size);
        for (size_t j = 0; name && j < i; j++) {
            const char *other = *(char **)(void *)(arr + j * size);
            if (other && !strcmp(other, name))
                ferry__err(c, ferry__line(item), label, "%s '%s' is defined twice", what, name);
        }
    }
}

static void ferry__param_fn(ferry__ctx *c, yaml_node_t *n, const char *l, size_t i, void *out)
{
    ferry__parse_param(c, n, l, i, out);
}
static void ferry__input_fn(ferry__ctx *c, yaml_node_t *n, const char *l, size_t i, void *out)
{
    ferry__parse_input(c, n, l, i, out);
}
static void ferry__env_fn(ferry__ctx *c, yaml_node_t *n, const char *l, size_t i, void *out)
{
    ferry__parse_env(c, n, l, i, out);
}

static void ferry__parse_command(ferry__ctx *c, const ferry__map *m, const char *label,
                                 ferry_step *s)
{
    const ferry__pair *p = ferry__map_find(m, "command");
    if (!p) {
        ferry__missing(c, m, label, "command", 1);
        return;
    }
    yaml_node_t *n = p->value;
    char what[80];
    if (ferry__kind_of(n) == FERRY__STR) {
        s->commands = ferry_xcalloc(1, sizeof(char *));
        s->commands[s->n_commands++] = ferry_strdup(ferry__text(n));
        return;
    }
    if (ferry__kind_of(n) != FERRY__SEQ) {
        ferry__err(c, ferry__line(n ? n : p->knode), label,
                   "command: expected a string or a list of strings, got %s",
                   ferry__describe(n, what, sizeof(what)));
        return;
    }
    s->commands = ferry_xcalloc(ferry__seq_len(n) + 1, sizeof(char *));
    FERRY__SEQ_EACH(n, it)
    {
        yaml_node_t *item = ferry__node(c, *it);
        if (ferry__kind_of(item) == FERRY__STR)
            s->commands[s->n_commands++] = ferry_strdup(ferry__text(item));
        else
            ferry__err(c, item ? ferry__line(item) : m->line, label,
                       "command: expected a string, got %s%s",
                       ferry__describe(item, what, sizeof(what)),
                       item && item->type == YAML_SCALAR_NODE ? "; put it in quotes" : "");
    }
}

static int64_t ferry__parse_duration_field(ferry__ctx *c, const ferry__map *m, const char *key,
                                           const char *label)
{
    yaml_node_t *n = ferry__map_get(m, key);
    int64_t secs = 0;
    char what[80];
    if (!n || ferry__kind_of(n) == FERRY__NULL)
        return 0;
    ferry__kind k = ferry__kind_of(n);
    double d = -1;
    int bad;
    if (k == FERRY__INT || k == FERRY__FLOAT) /* seconds, read as YAML reads them */
        bad = ferry__node_number(n, &d) != 0 || d < 0 || d > 1e15;
    else
        bad = k != FERRY__STR || ferry_duration_parse(ferry__text(n), &secs) != 0;
    if (d >= 0 && !bad)
        secs = (int64_t)(d + 0.5);
    if (bad)
        ferry__err(c, ferry__line(n), label,
                   "%s: can't read %s as a duration (e.g. 90, '30m', '1h 30m', '2d')", key,
                   ferry__describe(n, what, sizeof(what)));
    return secs;
}

/* resources: {cpu: {min, max}, memory: {min, max}, devices: {name: count}} */
static void ferry__parse_resources(ferry__ctx *c, const ferry__map *m, const char *label)
{
    yaml_node_t *n = ferry__map_get(m, "resources");
    if (!n || ferry__kind_of(n) == FERRY__NULL)
        return;
    char what[80];
    if (n->type != YAML_MAPPING_NODE) {
        ferry__err(c, ferry__line(n), label, "resources: expected a mapping, got %s",
                   ferry__describe(n, what, sizeof(what)));
        return;
    }
    static const char *const kinds[] = {"cpu", "memory", "ephemeral-storage", "devices", NULL};
    static const char *const bounds[] = {"min", "max", NULL};
    ferry__map r;
    ferry__map_load(c, n, label, &r);
    ferry__check_keys(c, &r, label, kinds);
    for (size_t i = 0; i < r.n; i++) {
        yaml_node_t *v = r.p[i].value;
        if (!ferry__in_list(r.p[i].key, kinds) || ferry__kind_of(v) == FERRY__NULL)
            continue;
        char *sub = ferry_asprintf("%s: resources: %s", label, r.p[i].key);
        if (v->type != YAML_MAPPING_NODE) {
            ferry__err(c, ferry__line(v), sub, "expected a mapping, got %s",
                       ferry__describe(v, what, sizeof(what)));
        } else {
            ferry__map b;
            ferry__map_load(c, v, sub, &b);
            int devices = !strcmp(r.p[i].key, "devices");
            if (!devices)
                ferry__check_keys(c, &b, sub, bounds);
            for (size_t j = 0; j < b.n; j++) {
                double d;
                if (ferry__get_number(c, &b, b.p[j].key, sub, &d) > 0 && devices && d < 1)
                    ferry__err(c, ferry__line(b.p[j].value), sub, "%s: must be at least 1",
                               b.p[j].key);
            }
            ferry__map_free(&b);
        }
        free(sub);
    }
    ferry__map_free(&r);
}

/* Keys we accept for valohai.yaml compatibility but don't use: still
 * type-checked where valohai's schema says what they must be. */
static void ferry__parse_step_extras(ferry__ctx *c, const ferry__map *m, const char *label,
                                     const ferry_step *s)
{
    const char *t;
    static const char *const texts[] = {"description", "icon", "category", "source-path", NULL};
    for (const char *const *k = texts; *k; k++)
        ferry__get_text(c, m, *k, label, 0, &t);
    if (ferry__get_text(c, m, "upload-store", label, 0, &t) > 0 && strlen(t) > 64)
        ferry__err(c, ferry__line(ferry__map_get(m, "upload-store")), label,
                   "upload-store is too long (%zu characters, at most 64)", strlen(t));
    static const char *const lists[] = {"outputs", "mounts", "cache-volumes",
                                        "environment-variable-groups", NULL};
    for (const char *const *k = lists; *k; k++)
        ferry__get_seq(c, m, *k, label);
    if (ferry__get_text(c, m, "runtime-config-preset", label, 0, &t) > 0 && !s->environment)
        ferry__err(c, ferry__line(ferry__map_get(m, "runtime-config-preset")), label,
                   "runtime-config-preset needs 'environment' too: a preset belongs to an "
                   "environment");
    int autorestart = 0;
    if (ferry__get_bool(c, m, "autorestart", label, &autorestart) > 0 && autorestart &&
        !s->environment)
        ferry__err(c, ferry__line(ferry__map_get(m, "autorestart")), label,
                   "autorestart needs 'environment' too (a spot instance environment)");
    ferry__parse_resources(c, m, label);
    ferry__check_expression(c, m, "stop-condition", label);
}

static void ferry__parse_step(ferry__ctx *c, yaml_node_t *key, yaml_node_t *val, ferry_step *s)
{
    ferry__map m;
    s->line = ferry__line(key);
    char *label = ferry__label("step", ferry__peek_name(c, val), s->line);
    ferry__map_load(c, val, label, &m);
    m.line = s->line;
    const char *text;
    if (ferry__get_str(c, &m, "name", label, 1, &text) > 0)
        s->name = ferry_strdup(text);
    if (ferry__get_str(c, &m, "image", label, 1, &text) > 0)
        s->image = ferry_strdup(text);
    ferry__parse_command(c, &m, label, s);
    if (ferry__get_text(c, &m, "environment", label, 0, &text) > 0)
        s->environment = ferry_strdup(text);
    s->time_limit_s = ferry__parse_duration_field(c, &m, "time-limit", label);
    s->no_output_timeout_s = ferry__parse_duration_field(c, &m, "no-output-timeout", label);
    ferry__parse_items_of(c, &m, "parameters", label, sizeof(ferry_param_def), (void **)&s->params,
                          &s->n_params, ferry__param_fn, "parameter");
    ferry__parse_items_of(c, &m, "inputs", label, sizeof(ferry_input_def), (void **)&s->inputs,
                          &s->n_inputs, ferry__input_fn, "input");
    ferry__parse_items_of(c, &m, "environment-variables", label, sizeof(ferry_env_def),
                          (void **)&s->env, &s->n_env, ferry__env_fn, "environment variable");
    ferry__parse_step_extras(c, &m, label, s);
    ferry__check_keys(c, &m, label, ferry__step_keys);
    ferry__map_free(&m);
    free(label);
}

/* ------------------------------------------------------------------------ */
/* Pipelines, tasks, endpoints: not run (yet), but checked within reason, so */
/* that a file valohai would refuse is refused here too.                     */

static const char *const ferry__edge_types[] = {
    "input",      "output", "parameter", "metadata", "file", "deployment", "environment-variable",
    "dependency", NULL};
static const char *const ferry__on_error[] = {"stop-all", "stop-next", "continue", "retry", NULL};

static int ferry__has_name(const char *const *names, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(names[i], name))
            return 1;
    return 0;
}

static int ferry__step_has_input(const ferry_step *s, const char *name)
{
    for (size_t i = 0; i < s->n_inputs; i++)
        if (s->inputs[i].name && !strcmp(s->inputs[i].name, name))
            return 1;
    return 0;
}

static int ferry__step_has_param(const ferry_step *s, const char *name)
{
    for (size_t i = 0; i < s->n_params; i++)
        if (s->params[i].name && !strcmp(s->params[i].name, name))
            return 1;
    return 0;
}

/* override: inputs / parameters must be the step's own. */
static void ferry__check_override_items(ferry__ctx *c, const ferry__map *ov, const char *label,
                                        const ferry_step *s, const char *key, const char *what)
{
    yaml_node_t *seq = ferry__get_seq(c, ov, key, label);
    if (!seq)
        return;
    FERRY__SEQ_EACH(seq, it)
    {
        yaml_node_t *item = ferry__node(c, *it);
        if (ferry__kind_of(item) != FERRY__MAP)
            continue;
        ferry__map im;
        const char *name;
        ferry__map_load(c, item, label, &im);
        if (ferry__get_str(c, &im, "name", label, 1, &name) > 0 && s) {
            int known = !strcmp(key, "inputs") ? ferry__step_has_input(s, name)
                                               : ferry__step_has_param(s, name);
            if (!known)
                ferry__err(c, ferry__line(ferry__map_get(&im, "name")), label,
                           "override: %s '%s' does not exist in step '%s'", what, name, s->name);
        }
        ferry__map_free(&im);
    }
}

static void ferry__check_override(ferry__ctx *c, const ferry__map *node, const char *label,
                                  const ferry_step *s)
{
    yaml_node_t *n = ferry__map_get(node, "override");
    char what[80];
    if (!n || ferry__kind_of(n) == FERRY__NULL)
        return;
    if (n->type != YAML_MAPPING_NODE) {
        ferry__err(c, ferry__line(n), label, "override: expected a mapping, got %s",
                   ferry__describe(n, what, sizeof(what)));
        return;
    }
    ferry__map ov;
    ferry__map_load(c, n, label, &ov);
    yaml_node_t *preset = ferry__map_get(&ov, "runtime-config-preset");
    if (preset && ferry__kind_of(preset) != FERRY__NULL && !ferry__map_get(&ov, "environment"))
        ferry__err(c, ferry__line(preset), label,
                   "override: runtime-config-preset needs 'environment' in the same override "
                   "(a preset belongs to an environment)");
    ferry__check_override_items(c, &ov, label, s, "inputs", "input");
    ferry__check_override_items(c, &ov, label, s, "parameters", "parameter");
    ferry__map_free(&ov);
}

/* The step an execution or task node runs; NULL when it doesn't exist (an
 * error unless the node names another commit, which we can't see). */
static const ferry_step *ferry__node_step(ferry__ctx *c, const ferry__map *m, const char *label,
                                          int required)
{
    const char *step_name;
    if (ferry__get_str(c, m, "step", label, required, &step_name) <= 0)
        return NULL;
    const ferry_step *s = ferry_stepfile_find(c->sf, step_name);
    if (!s && !ferry__map_get(m, "commit")) {
        char *known = ferry_stepfile_step_names(c->sf);
        ferry__err(c, ferry__line(ferry__map_get(m, "step")), label,
                   "step '%s' does not exist (%s)", step_name, known);
        free(known);
    }
    return s;
}

static void ferry__parse_task_node(ferry__ctx *c, const ferry__map *m, const char *label)
{
    const char *task;
    int has_task = ferry__get_str(c, m, "task", label, 0, &task) > 0;
    if (has_task && !ferry__has_name(c->task_names, c->n_task_names, task))
        ferry__err(c, ferry__line(ferry__map_get(m, "task")), label, "task '%s' does not exist",
                   task);
    if (!has_task && !ferry__map_get(m, "step"))
        ferry__err(c, m->line, label, "a task node needs 'step' or 'task'");
    const ferry_step *s = ferry__node_step(c, m, label, 0);
    ferry__check_override(c, m, label, s);
}

static void ferry__parse_node(ferry__ctx *c, yaml_node_t *n, const char *plabel, size_t index,
                              const char **names, size_t *n_names)
{
    static const char *const types[] = {"execution", "task", "deployment", NULL};
    char what[80];
    if (ferry__kind_of(n) != FERRY__MAP) {
        ferry__err(c, n ? ferry__line(n) : 1, plabel, "node #%zu: expected a mapping, got %s",
                   index + 1, ferry__describe(n, what, sizeof(what)));
        return;
    }
    ferry__map m;
    char *label = ferry__sublabel(plabel, "node", ferry__peek_name(c, n), index);
    ferry__map_load(c, n, label, &m);
    const char *name, *type, *t;
    if (ferry__get_str(c, &m, "name", label, 1, &name) > 0) {
        if (ferry__has_name(names, *n_names, name))
            ferry__err(c, ferry__line(n), label, "node '%s' is defined twice", name);
        names[(*n_names)++] = name;
    }
    if (ferry__get_enum(c, &m, "type", label, types, &type) == 0)
        ferry__missing(c, &m, label, "type", 1);
    ferry__get_enum(c, &m, "on-error", label, ferry__on_error, &t);
    ferry__get_enum(c, &m, "edge-merge-mode", label, ferry__merge_modes, &t);
    if (type && !strcmp(type, "execution"))
        ferry__check_override(c, &m, label, ferry__node_step(c, &m, label, 1));
    else if (type && !strcmp(type, "task"))
        ferry__parse_task_node(c, &m, label);
    ferry__map_free(&m);
    free(label);
}

/* "node.type.name": the name may hold dots (an output "model.pb"). */
static void ferry__check_socket(ferry__ctx *c, int line, const char *label, const char *end,
                                const char *spec, const char *const *names, size_t n_names)
{
    const char *dot1 = strchr(spec, '.'), *dot2 = dot1 ? strchr(dot1 + 1, '.') : NULL;
    if (!dot2) {
        ferry__err(c, line, label, "edge %s '%s' must have 3 parts (node.type.name), it has %d",
                   end, spec, dot1 ? 2 : 1);
        return;
    }
    char *node = ferry_strdup(spec), *type = node + (dot1 - spec) + 1;
    node[dot1 - spec] = '\0';
    node[dot2 - spec] = '\0';
    if (!ferry__has_name(names, n_names, node))
        ferry__err(c, line, label, "edge %s '%s': node '%s' does not exist", end, spec, node);
    if (!ferry__in_list(type, ferry__edge_types)) {
        char *list = ferry__join_list(ferry__edge_types);
        ferry__err(c, line, label, "edge %s '%s': unknown type '%s' (expected %s)", end, spec, type,
                   list);
        free(list);
    }
    free(node);
}

static void ferry__parse_edge(ferry__ctx *c, yaml_node_t *e, const char *label,
                              const char *const *names, size_t n_names)
{
    const char *ends[2] = {NULL, NULL};
    char what[80];
    int line = e ? ferry__line(e) : 1;
    if (ferry__kind_of(e) == FERRY__SEQ) {
        size_t n = ferry__seq_len(e);
        if (n != 2) {
            ferry__err(c, line, label,
                       "malformed edge: a short edge is [source, target], got %zu item%s", n,
                       n == 1 ? "" : "s");
            return;
        }
        for (int i = 0; i < 2; i++) {
            yaml_node_t *v = ferry__node(c, e->data.sequence.items.start[i]);
            if (ferry__kind_of(v) == FERRY__STR)
                ends[i] = ferry__text(v);
            else
                ferry__err(c, line, label, "edge: expected 'node.type.name', got %s",
                           ferry__describe(v, what, sizeof(what)));
        }
    } else if (ferry__kind_of(e) == FERRY__MAP) {
        ferry__map m;
        ferry__map_load(c, e, label, &m);
        ferry__get_str(c, &m, "source", label, 1, &ends[0]);
        ferry__get_str(c, &m, "target", label, 1, &ends[1]);
        ferry__map_free(&m);
    } else {
        ferry__err(c, line, label, "edge: expected [source, target] or a mapping, got %s",
                   ferry__describe(e, what, sizeof(what)));
        return;
    }
    if (ends[0])
        ferry__check_socket(c, line, label, "source", ends[0], names, n_names);
    if (ends[1])
        ferry__check_socket(c, line, label, "target", ends[1], names, n_names);
}

static void ferry__parse_pipeline(ferry__ctx *c, yaml_node_t *key, yaml_node_t *val)
{
    ferry__map m;
    char *label = ferry__label("pipeline", ferry__peek_name(c, val), ferry__line(key));
    ferry__map_load(c, val, label, &m);
    m.line = ferry__line(key);
    const char *name;
    ferry__get_str(c, &m, "name", label, 1, &name);
    yaml_node_t *nodes = ferry__get_seq(c, &m, "nodes", label);
    if (!ferry__map_get(&m, "nodes"))
        ferry__missing(c, &m, label, "nodes", 1);
    size_t n_nodes = nodes ? ferry__seq_len(nodes) : 0, n_names = 0;
    const char **names = ferry_xcalloc(n_nodes + 1, sizeof(char *));
    for (size_t i = 0; i < n_nodes; i++)
        ferry__parse_node(c, ferry__node(c, nodes->data.sequence.items.start[i]), label, i, names,
                          &n_names);
    yaml_node_t *edges = ferry__get_seq(c, &m, "edges", label);
    for (size_t i = 0; edges && i < ferry__seq_len(edges); i++)
        ferry__parse_edge(c, ferry__node(c, edges->data.sequence.items.start[i]), label, names,
                          n_names);
    ferry__get_seq(c, &m, "parameters", label);
    free(names);
    ferry__map_free(&m);
    free(label);
}

static void ferry__parse_task_param(ferry__ctx *c, yaml_node_t *n, const char *tlabel, size_t i)
{
    static const char *const styles[] = {"single",   "linear", "logspace",
                                         "multiple", "random", NULL};
    char what[80];
    if (ferry__kind_of(n) != FERRY__MAP) {
        ferry__err(c, n ? ferry__line(n) : 1, tlabel, "parameter #%zu: expected a mapping, got %s",
                   i + 1, ferry__describe(n, what, sizeof(what)));
        return;
    }
    ferry__map m;
    char *label = ferry__sublabel(tlabel, "parameter", ferry__peek_name(c, n), i);
    ferry__map_load(c, n, label, &m);
    const char *name, *style;
    ferry__get_str(c, &m, "name", label, 1, &name);
    if (ferry__get_enum(c, &m, "style", label, styles, &style) == 0)
        ferry__missing(c, &m, label, "style", 1);
    yaml_node_t *rules = ferry__map_get(&m, "rules");
    if (!ferry__map_find(&m, "rules"))
        ferry__missing(c, &m, label, "rules", 1);
    else if (ferry__kind_of(rules) != FERRY__MAP)
        ferry__err(c, rules ? ferry__line(rules) : m.line, label,
                   "rules: expected a mapping, got %s", ferry__describe(rules, what, sizeof(what)));
    ferry__map_free(&m);
    free(label);
}

static void ferry__parse_task(ferry__ctx *c, yaml_node_t *key, yaml_node_t *val)
{
    ferry__map m;
    char *label = ferry__label("task", ferry__peek_name(c, val), ferry__line(key));
    ferry__map_load(c, val, label, &m);
    m.line = ferry__line(key);
    const char *name;
    ferry__get_str(c, &m, "name", label, 1, &name);
    ferry__node_step(c, &m, label, 1);
    yaml_node_t *params = ferry__get_seq(c, &m, "parameters", label);
    for (size_t i = 0; params && i < ferry__seq_len(params); i++)
        ferry__parse_task_param(c, ferry__node(c, params->data.sequence.items.start[i]), label, i);
    ferry__get_seq(c, &m, "parameter-sets", label);
    ferry__check_expression(c, &m, "stop-condition", label);
    ferry__map_free(&m);
    free(label);
}

/* Endpoint names become part of a URL: ^[a-z][a-z0-9-]+$ as in valohai. */
static int ferry__endpoint_name_ok(const char *s)
{
    if (!(*s >= 'a' && *s <= 'z') || !s[1])
        return 0;
    for (s++; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || isdigit((unsigned char)*s) || *s == '-'))
            return 0;
    return 1;
}

static void ferry__parse_endpoint(ferry__ctx *c, yaml_node_t *key, yaml_node_t *val)
{
    ferry__map m;
    char *label = ferry__label("endpoint", ferry__peek_name(c, val), ferry__line(key));
    ferry__map_load(c, val, label, &m);
    m.line = ferry__line(key);
    const char *name;
    if (ferry__get_str(c, &m, "name", label, 1, &name) > 0) {
        if (!ferry__endpoint_name_ok(name))
            ferry__err(c, ferry__line(ferry__map_get(&m, "name")), label,
                       "name '%s' is not valid: it must start with a lower-case letter and hold "
                       "only lower-case letters, digits and dashes (^[a-z][a-z0-9-]+$)",
                       name);
    }
    ferry__map_free(&m);
    free(label);
}

/* ------------------------------------------------------------------------ */
/* The top level: a list of one-key mappings                                 */

static const char *const ferry__kinds[] = {"step",     "pipeline",   "task",
                                           "endpoint", "deployment", NULL};

/* `- step:` with the step's keys beside it instead of under it: valid YAML,
 * the most common indentation slip; say so rather than "step is null". */
static void ferry__item_shape_error(ferry__ctx *c, yaml_node_t *item, const ferry__map *m)
{
    const ferry__pair *kind = NULL;
    for (size_t i = 0; i < m->n && !kind; i++)
        if (ferry__in_list(m->p[i].key, ferry__kinds))
            kind = &m->p[i];
    int line = ferry__line(item);
    if (m->n == 0) {
        ferry__err(c, line, NULL, "empty item: expected '- step:' (or pipeline, task, endpoint)");
        return;
    }
    ferry__buf others = {0};
    for (size_t i = 0; i < m->n; i++)
        if (&m->p[i] != kind)
            ferry__buf_printf(&others, "%s'%s'", others.len ? ", " : "", m->p[i].key);
    char *list = ferry__buf_take(&others);
    if (kind && ferry__kind_of(kind->value) == FERRY__NULL)
        ferry__err(c, line, NULL,
                   "'%s:' is empty and %s sit beside it: indent the %s's properties under "
                   "'%s:' (check the indentation)",
                   kind->key, list, kind->key, kind->key);
    else
        ferry__err(c, line, NULL,
                   "each top-level item has exactly one key (step, pipeline, task, endpoint, "
                   "deployment), this one has %s%s%s%s (check the indentation)",
                   kind ? "'" : "", kind ? kind->key : "", kind ? "' and " : "", list);
    free(list);
}

/* The item's one key and value, or -1 (reported). */
static int ferry__item(ferry__ctx *c, yaml_node_t *item, const char **kind, yaml_node_t **key,
                       yaml_node_t **val)
{
    char what[80];
    if (ferry__kind_of(item) != FERRY__MAP) {
        ferry__err(c, item ? ferry__line(item) : 1, NULL,
                   "expected a mapping like '- step: ...', got %s",
                   ferry__describe(item, what, sizeof(what)));
        return -1;
    }
    ferry__map m;
    ferry__map_load(c, item, NULL, &m);
    int rc = -1;
    if (m.n != 1) {
        ferry__item_shape_error(c, item, &m);
    } else if (!ferry__in_list(m.p[0].key, ferry__kinds)) {
        ferry__err(c, ferry__line(m.p[0].knode), NULL,
                   "unknown item '%s' (expected step, pipeline, task, endpoint, deployment)",
                   m.p[0].key);
    } else if (ferry__kind_of(m.p[0].value) != FERRY__MAP) {
        ferry__err(c, ferry__line(m.p[0].knode), NULL,
                   "%s: expected a mapping of the %s's properties, got %s (check the "
                   "indentation)",
                   m.p[0].key, m.p[0].key, ferry__describe(m.p[0].value, what, sizeof(what)));
    } else {
        *kind = m.p[0].key;
        *key = m.p[0].knode;
        *val = m.p[0].value;
        rc = 0;
    }
    ferry__map_free(&m);
    return rc;
}

static void ferry__add_step(ferry__ctx *c, yaml_node_t *key, yaml_node_t *val)
{
    ferry_stepfile *sf = c->sf;
    sf->steps = ferry_xrealloc(sf->steps, (sf->n_steps + 1) * sizeof(*sf->steps));
    ferry_step *s = &sf->steps[sf->n_steps++];
    memset(s, 0, sizeof(*s));
    ferry__parse_step(c, key, val, s);
    for (size_t i = 0; s->name && i + 1 < sf->n_steps; i++)
        if (sf->steps[i].name && !strcmp(sf->steps[i].name, s->name))
            ferry__err(c, s->line, NULL, "step '%s' is defined twice (also on line %d)", s->name,
                       sf->steps[i].line);
}

/* Task names, known before any pipeline refers to one. */
static void ferry__add_task_name(ferry__ctx *c, yaml_node_t *val)
{
    for (yaml_node_pair_t *p = val->data.mapping.pairs.start; p < val->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = ferry__node(c, p->key), *v = ferry__node(c, p->value);
        if (k && k->type == YAML_SCALAR_NODE && !strcmp(ferry__text(k), "name") &&
            ferry__kind_of(v) == FERRY__STR) {
            c->task_names =
                ferry_xrealloc(c->task_names, (c->n_task_names + 1) * sizeof(*c->task_names));
            c->task_names[c->n_task_names++] = ferry__text(v);
        }
    }
}

/* The same as ferry__item, quietly, for the second pass. */
static int ferry__item_peek(ferry__ctx *c, yaml_node_t *item, const char **kind, yaml_node_t **key,
                            yaml_node_t **val)
{
    if (ferry__kind_of(item) != FERRY__MAP ||
        item->data.mapping.pairs.top - item->data.mapping.pairs.start != 1)
        return -1;
    *key = ferry__node(c, item->data.mapping.pairs.start->key);
    *val = ferry__node(c, item->data.mapping.pairs.start->value);
    if (!*key || (*key)->type != YAML_SCALAR_NODE || ferry__kind_of(*val) != FERRY__MAP)
        return -1;
    *kind = ferry__text(*key);
    return ferry__in_list(*kind, ferry__kinds) ? 0 : -1;
}

static void ferry__parse_root(ferry__ctx *c, yaml_node_t *root)
{
    char what[80];
    yaml_node_t *key, *val;
    const char *kind;
    if (ferry__kind_of(root) != FERRY__SEQ) {
        ferry__err(c, ferry__line(root), NULL,
                   "expected a list of items like '- step: ...' at the top level, got %s",
                   ferry__describe(root, what, sizeof(what)));
        return;
    }
    /* Steps (and task names) first: pipelines may use those defined later. */
    FERRY__SEQ_EACH(root, it)
    {
        if (ferry__item(c, ferry__node(c, *it), &kind, &key, &val) != 0)
            continue;
        if (!strcmp(kind, "step"))
            ferry__add_step(c, key, val);
        else if (!strcmp(kind, "task"))
            ferry__add_task_name(c, val);
    }
    FERRY__SEQ_EACH(root, it)
    {
        if (ferry__item_peek(c, ferry__node(c, *it), &kind, &key, &val) != 0 ||
            !strcmp(kind, "step"))
            continue;
        c->sf->n_unsupported++;
        if (!strcmp(kind, "pipeline"))
            ferry__parse_pipeline(c, key, val);
        else if (!strcmp(kind, "task"))
            ferry__parse_task(c, key, val);
        else if (!strcmp(kind, "endpoint"))
            ferry__parse_endpoint(c, key, val);
    }
}

/* ------------------------------------------------------------------------ */
/* Loading                                                                   */

static void ferry__yaml_error(ferry__ctx *c, const yaml_parser_t *p)
{
    const char *problem = p->problem ? p->problem : "malformed YAML";
    int line = (int)p->problem_mark.line + 1;
    if (p->error == YAML_READER_ERROR) {
        ferry__err(c, 1, NULL, "%s (at byte %zu)", problem, p->problem_offset);
        return;
    }
    ferry__buf b = {0};
    ferry__buf_printf(&b, "%s (column %zu", problem, p->problem_mark.column + 1);
    if (p->context)
        ferry__buf_printf(&b, "; %s at line %zu", p->context, p->context_mark.line + 1);
    if (strstr(problem, "mapping values are not allowed") || strstr(problem, "indentation"))
        ferry__buf_puts(&b, "; check the indentation");
    ferry__buf_puts(&b, ")");
    char *msg = ferry__buf_take(&b);
    ferry__err(c, line, NULL, "%s", msg);
    free(msg);
}

static int ferry__basename_is(const char *path, const char *name)
{
    const char *slash = strrchr(path, '/');
    return !strcmp(slash ? slash + 1 : path, name);
}

/* Load the one document of the file; 0, or -1 with the problem reported. */
static int ferry__load(ferry__ctx *c, const char *buf, size_t len, yaml_document_t *doc)
{
    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser))
        abort(); /* out of memory: fatal in all of ferry */
    yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);
    int rc = -1;
    if (!yaml_parser_load(&parser, doc)) {
        ferry__yaml_error(c, &parser);
        yaml_parser_delete(&parser);
        return -1;
    }
    yaml_document_t extra;
    if (!yaml_parser_load(&parser, &extra)) {
        ferry__yaml_error(c, &parser);
    } else {
        yaml_node_t *root = yaml_document_get_root_node(&extra);
        if (root)
            ferry__err(c, ferry__line(root), NULL,
                       "a step file holds one YAML document; this is a second one");
        else
            rc = 0;
        yaml_document_delete(&extra);
    }
    if (rc != 0)
        yaml_document_delete(doc);
    yaml_parser_delete(&parser);
    return rc;
}

int ferry_stepfile_parse_buffer(const char *path, const char *buf, size_t len, ferry_stepfile **out,
                                char *err, size_t err_cap)
{
    *out = NULL;
    if (err && err_cap)
        err[0] = '\0';
    if (!path)
        path = "ferry.yaml";
    ferry_stepfile *sf = ferry_xcalloc(1, sizeof(*sf));
    sf->path = ferry_strdup(path);
    sf->valohai =
        ferry__basename_is(path, "valohai.yaml") || ferry__basename_is(path, "valohai.yml");
    yaml_document_t doc;
    ferry__ctx c = {.path = path, .doc = &doc, .sf = sf, .budget = 100000};
    if (ferry__load(&c, buf ? buf : "", buf ? len : 0, &doc) == 0) {
        yaml_node_t *root = yaml_document_get_root_node(&doc);
        if (!root)
            ferry__err(&c, 1, NULL,
                       "the file is empty: expected a list of steps like '- step: ...'");
        else
            ferry__parse_root(&c, root);
        if (!c.n_errors && sf->n_steps == 0 && sf->n_unsupported == 0)
            ferry__err(&c, 1, NULL, "no steps: expected a list of steps like '- step: ...'");
        yaml_document_delete(&doc);
    }
    if (c.n_errors) {
        ferry__report(&c, err, err_cap);
        ferry__ctx_free(&c);
        ferry_stepfile_free(sf);
        return FERRY_EINVAL;
    }
    ferry__ctx_free(&c);
    *out = sf;
    return 0;
}

int ferry_stepfile_parse_file(const char *path, ferry_stepfile **out, char *err, size_t err_cap)
{
    size_t len = 0;
    *out = NULL;
    char *buf = ferry_read_file(path, &len);
    if (!buf) {
        int e = errno;
        return ferry__fail(err, err_cap, e == ENOENT ? FERRY_ENOENT : FERRY_EIO, "%s: %s", path,
                           strerror(e));
    }
    int rc = ferry_stepfile_parse_buffer(path, buf, len, out, err, err_cap);
    free(buf);
    return rc;
}

static void ferry__free_step(ferry_step *s)
{
    free(s->name);
    free(s->image);
    for (size_t i = 0; i < s->n_commands; i++)
        free(s->commands[i]);
    free(s->commands);
    for (size_t i = 0; i < s->n_params; i++) {
        ferry_param_def *p = &s->params[i];
        free(p->name);
        json_decref(p->default_value);
        free(p->pass_as);
        free(p->pass_true_as);
        free(p->pass_false_as);
        json_decref(p->choices);
        free(p->multiple_separator);
        free(p->description);
    }
    free(s->params);
    for (size_t i = 0; i < s->n_inputs; i++) {
        free(s->inputs[i].name);
        for (size_t j = 0; j < s->inputs[i].n_default_urls; j++)
            free(s->inputs[i].default_urls[j]);
        free(s->inputs[i].default_urls);
        free(s->inputs[i].filename);
    }
    free(s->inputs);
    for (size_t i = 0; i < s->n_env; i++) {
        free(s->env[i].name);
        free(s->env[i].default_value);
    }
    free(s->env);
    free(s->environment);
}

void ferry_stepfile_free(ferry_stepfile *sf)
{
    if (!sf)
        return;
    for (size_t i = 0; i < sf->n_steps; i++)
        ferry__free_step(&sf->steps[i]);
    free(sf->steps);
    free(sf->path);
    free(sf);
}

const ferry_step *ferry_stepfile_find(const ferry_stepfile *sf, const char *name)
{
    for (size_t i = 0; sf && name && i < sf->n_steps; i++)
        if (sf->steps[i].name && !strcmp(sf->steps[i].name, name))
            return &sf->steps[i];
    return NULL;
}

char *ferry_stepfile_step_names(const ferry_stepfile *sf)
{
    ferry__buf b = {0};
    ferry__buf_puts(&b, "known steps: ");
    size_t n = 0;
    for (size_t i = 0; sf && i < sf->n_steps; i++)
        if (sf->steps[i].name)
            ferry__buf_printf(&b, "%s%s", n++ ? ", " : "", sf->steps[i].name);
    if (!n)
        ferry__buf_puts(&b, "(none)");
    return ferry__buf_take(&b);
}

/* ------------------------------------------------------------------------ */
/* Resolving what a user gives                                               */

static const ferry_param_def *ferry__find_param(const ferry_step *s, const char *name)
{
    for (size_t i = 0; i < s->n_params; i++)
        if (s->params[i].name && !strcmp(s->params[i].name, name))
            return &s->params[i];
    return NULL;
}

static const ferry_input_def *ferry__find_input(const ferry_step *s, const char *name)
{
    for (size_t i = 0; i < s->n_inputs; i++)
        if (s->inputs[i].name && !strcmp(s->inputs[i].name, name))
            return &s->inputs[i];
    return NULL;
}

/* "unknown parameter 'x' (known parameters: a, b)"; `names` as listed. */
static int ferry__unknown_name(char *err, size_t err_cap, const char *what, const char *name,
                               const char *names)
{
    if (!*names)
        return ferry__fail(err, err_cap, FERRY_EINVAL, "unknown %s '%s' (this step has no %ss)",
                           what, name, what);
    return ferry__fail(err, err_cap, FERRY_EINVAL, "unknown %s '%s' (known %ss: %s)", what, name,
                       what, names);
}

static char *ferry__param_names(const ferry_step *s)
{
    ferry__buf b = {0};
    for (size_t i = 0; i < s->n_params; i++)
        ferry__buf_printf(&b, "%s%s", i ? ", " : "", s->params[i].name);
    return ferry__buf_take(&b);
}

static char *ferry__input_names(const ferry_step *s)
{
    ferry__buf b = {0};
    for (size_t i = 0; i < s->n_inputs; i++)
        ferry__buf_printf(&b, "%s%s", i ? ", " : "", s->inputs[i].name);
    return ferry__buf_take(&b);
}

/* The first name in `given` that the step doesn't declare, or NULL. */
static const char *ferry__first_unknown(const json_t *given, const ferry_step *s, int inputs)
{
    const char *key;
    json_t *value;
    if (!json_is_object(given))
        return NULL;
    json_object_foreach((json_t *)given, key, value)
    {
        if (inputs ? !ferry__find_input(s, key) : !ferry__find_param(s, key))
            return key;
    }
    return NULL;
}

/* What both resolvers check first: `given` is an object (or absent) and
 * names only what the step declares (its inputs, or its parameters). */
static int ferry__check_given(const ferry_step *step, const json_t *given, int inputs, char *err,
                              size_t err_cap)
{
    if (err && err_cap)
        err[0] = '\0';
    if (given && !json_is_object(given) && !json_is_null(given))
        return ferry__fail(err, err_cap, FERRY_EINVAL,
                           inputs ? "inputs: expected an object of name -> URLs"
                                  : "parameters: expected an object of name -> value");
    const char *unknown = ferry__first_unknown(given, step, inputs);
    if (unknown == NULL)
        return 0;
    char *names = inputs ? ferry__input_names(step) : ferry__param_names(step);
    int rc = ferry__unknown_name(err, err_cap, inputs ? "input" : "parameter", unknown, names);
    free(names);
    return rc;
}

int ferry_step_resolve_parameters(const ferry_step *step, const json_t *given, json_t **resolved,
                                  char *err, size_t err_cap)
{
    *resolved = NULL;
    int rc = ferry__check_given(step, given, 0, err, err_cap);
    if (rc < 0)
        return rc;
    json_t *res = json_object();
    for (size_t i = 0; i < step->n_params; i++) {
        const ferry_param_def *p = &step->params[i];
        json_t *v = json_is_object(given) ? json_object_get(given, p->name) : NULL, *typed = NULL;
        char why[512];
        if (v && !json_is_null(v)) {
            if (ferry__coerce_value(p, v, &typed, why, sizeof(why)) != 0) {
                json_decref(res);
                return ferry__fail(err, err_cap, FERRY_EINVAL, "parameter '%s': %s", p->name, why);
            }
        } else if (!v && p->default_value) {
            typed = json_deep_copy(p->default_value);
        } else if (!v && p->type == FERRY_PARAM_FLAG) {
            typed = json_false(); /* an unset flag is off, as in valohai's UI */
        } else if (p->optional) {
            continue; /* unset (or set to null): left out of the command */
        } else {
            json_decref(res);
            return ferry__fail(err, err_cap, FERRY_EINVAL, "parameter '%s': No value supplied",
                               p->name);
        }
        json_object_set_new(res, p->name, typed);
    }
    *resolved = res;
    return 0;
}

/* The URLs given for one input: a string or a list of strings. */
static int ferry__given_urls(const json_t *v, json_t *urls)
{
    if (json_is_string(v)) {
        if (*json_string_value(v))
            json_array_append(urls, (json_t *)v);
        return 0;
    }
    if (!json_is_array(v))
        return json_is_null(v) ? 0 : -1;
    size_t i;
    json_t *u;
    json_array_foreach(v, i, u)
    {
        if (!json_is_string(u))
            return -1;
        if (*json_string_value(u))
            json_array_append(urls, u);
    }
    return 0;
}

int ferry_step_resolve_inputs(const ferry_step *step, const json_t *given, json_t **resolved,
                              char *err, size_t err_cap)
{
    *resolved = NULL;
    int rc = ferry__check_given(step, given, 1, err, err_cap);
    if (rc < 0)
        return rc;
    json_t *res = json_object();
    for (size_t i = 0; i < step->n_inputs; i++) {
        const ferry_input_def *in = &step->inputs[i];
        json_t *v = json_is_object(given) ? json_object_get(given, in->name) : NULL;
        json_t *urls = json_array();
        if (v && ferry__given_urls(v, urls) != 0) {
            json_decref(urls);
            json_decref(res);
            return ferry__fail(err, err_cap, FERRY_EINVAL,
                               "input '%s': expected a URL or a list of URLs", in->name);
        }
        for (size_t j = 0; !v && j < in->n_default_urls; j++)
            json_array_append_new(urls, json_string(in->default_urls[j]));
        if (json_array_size(urls) == 0) {
            json_decref(urls);
            if (in->optional)
                continue;
            json_decref(res);
            return ferry__fail(err, err_cap, FERRY_EINVAL,
                               "input '%s': No URL supplied (the input is required and has no "
                               "default)",
                               in->name);
        }
        json_object_set_new(res, in->name, urls);
    }
    *resolved = res;
    return 0;
}

int ferry_step_resolve_env(const ferry_step *step, const json_t *given, json_t **resolved,
                           char *err, size_t err_cap)
{
    *resolved = NULL;
    if (err && err_cap)
        err[0] = '\0';
    if (given && !json_is_object(given) && !json_is_null(given))
        return ferry__fail(err, err_cap, FERRY_EINVAL,
                           "environment variables: expected an object of name -> value");
    const char *key;
    json_t *value;
    json_t *res = json_object();
    for (size_t i = 0; i < step->n_env; i++) {
        const ferry_env_def *e = &step->env[i];
        if (e->default_value)
            json_object_set_new(res, e->name, json_string(e->default_value));
    }
    if (json_is_object(given)) {
        json_object_foreach((json_t *)given, key, value)
        {
            if (!*key || strchr(key, '=')) {
                json_decref(res);
                return ferry__fail(err, err_cap, FERRY_EINVAL,
                                   "environment variable name '%s' is not valid", key);
            }
            if (json_is_null(value)) {
                json_object_del(res, key); /* explicitly unset: no default either */
            } else if (json_is_array(value) || json_is_object(value)) {
                json_decref(res);
                /* no value in the message: environment values may be secrets */
                return ferry__fail(err, err_cap, FERRY_EINVAL,
                                   "environment variable '%s': expected a string", key);
            } else {
                char *text = ferry__atom_text(value, 0);
                json_object_set_new(res, key, json_string(text));
                free(text);
            }
        }
    }
    for (size_t i = 0; i < step->n_env; i++) {
        const ferry_env_def *e = &step->env[i];
        if (!e->optional && !json_object_get(res, e->name)) {
            json_decref(res);
            return ferry__fail(err, err_cap, FERRY_EINVAL,
                               "environment variable '%s': No value supplied (it is required and "
                               "has no default)",
                               e->name);
        }
    }
    *resolved = res;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Commands                                                                  */

/* Python's str.format on one word of a pass-as template: {name}, {value},
 * {v}; {{ and }} are literal braces; anything else is left as written. */
static char *ferry__format_word(const char *word, const char *name, const char *value)
{
    ferry__buf b = {0};
    for (const char *p = word; *p;) {
        if ((p[0] == '{' && p[1] == '{') || (p[0] == '}' && p[1] == '}')) {
            ferry__buf_add(&b, p, 1);
            p += 2;
            continue;
        }
        const char *close = p[0] == '{' ? strchr(p, '}') : NULL;
        if (close) {
            size_t n = (size_t)(close - p - 1);
            const char *sub = NULL;
            if (n == 4 && !strncmp(p + 1, "name", 4))
                sub = name;
            else if ((n == 5 && !strncmp(p + 1, "value", 5)) || (n == 1 && p[1] == 'v'))
                sub = value;
            if (sub) {
                ferry__buf_puts(&b, sub);
                p = close + 1;
                continue;
            }
        }
        ferry__buf_add(&b, p, 1);
        p++;
    }
    return ferry__buf_take(&b);
}

/* Which template a value is passed with; NULL: the parameter is left out.
 * Flags follow valohai: with pass-true-as or pass-false-as set, those two
 * decide (an unset one passes nothing); otherwise true passes pass-as or
 * --{name}, false passes nothing. */
static const char *ferry__pass_template(const ferry_param_def *p, const json_t *value)
{
    if (!value || json_is_null(value))
        return NULL;
    if (p->type == FERRY_PARAM_FLAG) {
        int on = json_is_true(value);
        if (p->pass_true_as || p->pass_false_as) {
            const char *t = on ? p->pass_true_as : p->pass_false_as;
            return t && *t ? t : NULL;
        }
        if (!on)
            return NULL;
        return p->pass_as ? p->pass_as : "--{name}";
    }
    return p->pass_as ? p->pass_as : "--{name}={value}";
}

/* Append one shell word, quoted, space-separated from the previous one. */
static void ferry__emit_word(ferry__buf *out, const char *word)
{
    char *q = ferry_shell_quote(word);
    if (out->len)
        ferry__buf_puts(out, " ");
    ferry__buf_puts(out, q);
    free(q);
}

/* Each word of the template, formatted with one value. */
static void ferry__emit_template(ferry__buf *out, const char *tmpl, const char *name,
                                 const char *value)
{
    const char *p = tmpl;
    for (;;) {
        while (isspace((unsigned char)*p))
            p++;
        if (!*p)
            return;
        const char *end = p;
        while (*end && !isspace((unsigned char)*end))
            end++;
        char *word = ferry_asprintf("%.*s", (int)(end - p), p);
        char *formatted = ferry__format_word(word, name, value);
        ferry__emit_word(out, formatted);
        free(formatted);
        free(word);
        p = end;
    }
}

/* A list joined by the parameter's separator ("1000-500-250"). */
static char *ferry__joined_values(const ferry_param_def *p, const json_t *list)
{
    ferry__buf b = {0};
    size_t i;
    json_t *atom;
    json_array_foreach(list, i, atom)
    {
        char *t = ferry__atom_text(atom, 1);
        if (i)
            ferry__buf_puts(&b, p->multiple_separator ? p->multiple_separator : ",");
        ferry__buf_puts(&b, t);
        free(t);
    }
    return ferry__buf_take(&b);
}

/* The shell words that pass one parameter (none when it is unset). */
static void ferry__emit_param(ferry__buf *out, const ferry_param_def *p, const json_t *value)
{
    const char *tmpl = ferry__pass_template(p, value);
    if (!tmpl)
        return;
    if (json_is_array(value) && p->multiple == FERRY_MULTIPLE_REPEAT) {
        size_t i;
        json_t *atom;
        json_array_foreach(value, i, atom)
        {
            char *t = ferry__atom_text(atom, 1);
            ferry__emit_template(out, tmpl, p->name, t);
            free(t);
        }
        return;
    }
    if (json_is_array(value) && json_array_size(value) == 0)
        return; /* no `--x=` for an empty list */
    char *t = json_is_array(value) ? ferry__joined_values(p, value) : ferry__atom_text(value, 1);
    ferry__emit_template(out, tmpl, p->name, t);
    free(t);
}

static const json_t *ferry__value_of(const json_t *resolved, const char *name)
{
    const json_t *v = json_is_object(resolved) ? json_object_get(resolved, name) : NULL;
    return v && !json_is_null(v) ? v : NULL;
}

/* The replacement for "{key}", or NULL to leave it as written. */
static char *ferry__placeholder(const ferry_step *s, const json_t *resolved, const char *key)
{
    ferry__buf out = {0};
    if (!strcmp(key, "parameters") || !strcmp(key, "params")) {
        for (size_t i = 0; i < s->n_params; i++)
            if (s->params[i].name)
                ferry__emit_param(&out, &s->params[i],
                                  ferry__value_of(resolved, s->params[i].name));
        return ferry__buf_take(&out);
    }
    if (!strncmp(key, "parameter:", 10)) {
        const ferry_param_def *p = ferry__find_param(s, key + 10);
        if (!p)
            return NULL;
        ferry__emit_param(&out, p, ferry__value_of(resolved, p->name));
        return ferry__buf_take(&out);
    }
    if (!strncmp(key, "parameter-value:", 16)) {
        const ferry_param_def *p = ferry__find_param(s, key + 16);
        const json_t *v = p ? ferry__value_of(resolved, p->name) : NULL;
        if (!v)
            return NULL;
        char *t = json_is_array(v) ? ferry__joined_values(p, v) : ferry__atom_text(v, 1);
        char *q = ferry_shell_quote(t);
        free(t);
        return q;
    }
    return NULL;
}

/* Expand {...} as valohai's /{(.+?)}/ does: the shortest non-empty text up to
 * a '}' on the same line; what isn't a known placeholder stays, so shell
 * syntax such as ${HOME} passes through. */
static char *ferry__expand(const ferry_step *s, const json_t *resolved, const char *cmd)
{
    ferry__buf out = {0};
    const char *p = cmd;
    while (*p) {
        const char *close = NULL;
        if (p[0] == '{' && p[1] && p[1] != '\n')
            for (const char *q = p + 2; *q && *q != '\n' && !close; q++)
                if (*q == '}')
                    close = q;
        if (!close) {
            ferry__buf_add(&out, p, 1);
            p++;
            continue;
        }
        char *key = ferry_asprintf("%.*s", (int)(close - p - 1), p + 1);
        char *sub = ferry__placeholder(s, resolved, key);
        if (sub)
            ferry__buf_puts(&out, sub);
        else
            ferry__buf_add(&out, p, (size_t)(close - p + 1));
        free(sub);
        free(key);
        p = close + 1;
    }
    return ferry__buf_take(&out);
}

static char *ferry__strip(char *s)
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

char *ferry_step_build_command(const ferry_step *step, const json_t *resolved)
{
    ferry__buf out = {0};
    int first = 1, shebang = 0;
    for (size_t i = 0; i < step->n_commands; i++) {
        char *cmd = ferry__strip(ferry__expand(step, resolved, step->commands[i]));
        if (*cmd) { /* an empty command would make "a &&  && b" */
            if (!first)
                ferry__buf_puts(&out, shebang ? "\n" : " && ");
            /* "#!/bin/bash" then commands: the shebang line must stay a
             * line of its own, the rest is one && chain after it */
            shebang = first && !strncmp(cmd, "#!", 2);
            ferry__buf_puts(&out, cmd);
            first = 0;
        }
        free(cmd);
    }
    return ferry__buf_take(&out);
}
