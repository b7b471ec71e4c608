/* YAML nodes: the YAML 1.1 scalar resolver (as PyYAML reads scalars),
 * YAML to JSON, mappings with merge keys, and loading the one document. */
#include "stepfile_int.h"

#include <ctype.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <ferry/error.h>

#include "util.h"

yaml_node_t *ferry__node(ferry__ctx *c, int id)
{
    return yaml_document_get_node(c->doc, id);
}

int ferry__line(const yaml_node_t *n)
{
    return (int)n->start_mark.line + 1;
}

const char *ferry__text(const yaml_node_t *n)
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

/* The longest number ferry__yaml_float reads, in characters: longer is not
 * a float (a string, as it always was). */
#define FERRY__FLOAT_MAX 78

/* Appends c to the number being copied; 0 when it would be too long. Every
 * write goes through here, so none can pass the end of the buffer. */
static int ferry__num_put(char *num, size_t *n, char c)
{
    if (*n >= FERRY__FLOAT_MAX)
        return 0;
    num[(*n)++] = c;
    return 1;
}

/* Copies the digits (and YAML's '_' separators, which it drops) at *p into
 * num; the count of digits, or -1 when the number is too long. */
static long ferry__num_digits(const char **p, char *num, size_t *n)
{
    long digits = 0;
    for (; isdigit((unsigned char)**p) || (**p == '_' && digits); (*p)++) {
        if (**p == '_')
            continue;
        if (!ferry__num_put(num, n, **p))
            return -1;
        digits++;
    }
    return digits;
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
    char num[FERRY__FLOAT_MAX + 1];
    size_t n = 0;
    long before, after = 0;
    int dot = 0, exp = 0;
    if (neg && !ferry__num_put(num, &n, '-'))
        return 0;
    if ((before = ferry__num_digits(&p, num, &n)) < 0)
        return 0;
    if (*p == '.') {
        dot = 1;
        if (!ferry__num_put(num, &n, *p++) || (after = ferry__num_digits(&p, num, &n)) < 0)
            return 0;
    }
    if (!before && !after)
        return 0;
    if (*p == 'e' || *p == 'E') {
        if (!ferry__num_put(num, &n, *p++))
            return 0;
        if ((*p == '+' || *p == '-') && !ferry__num_put(num, &n, *p++))
            return 0;
        if (!isdigit((unsigned char)*p))
            return 0;
        for (; isdigit((unsigned char)*p); p++)
            if (!ferry__num_put(num, &n, *p))
                return 0;
        exp = 1;
    }
    if (*p || (!dot && !exp))
        return 0;
    num[n] = '\0';
    *out = strtod(num, NULL);
    return 1;
}

/* Whether PyYAML leaves plain scalar `s` a string though it reads as a
 * float here: an exponent without a '.' before it or a sign after it
 * (1e-5, 2.5e3). valohai-yaml then passes it on as written. */
int ferry__yaml_float_pyyaml_str(const char *s)
{
    double d;
    if (!ferry__yaml_float(s, &d))
        return 0;
    const char *e = strpbrk(s, "eE");
    if (e == NULL)
        return 0; /* no exponent (.inf and .nan have none) */
    return memchr(s, '.', (size_t)(e - s)) == NULL || (e[1] != '+' && e[1] != '-');
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

ferry__kind ferry__kind_of(const yaml_node_t *n)
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

const char *ferry__describe(const yaml_node_t *n, char *buf, size_t cap)
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

int ferry__scalar_bool(const yaml_node_t *n)
{
    const char *s = ferry__text(n);
    return ferry__plain_bool(s) == 1 || !strcmp(s, "1") || !strcasecmp(s, "y");
}

/* A scalar as JSON: null, true/false, integer, real or string. */
json_t *ferry__scalar_json(const yaml_node_t *n)
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

int ferry__node_number(const yaml_node_t *n, double *out)
{
    long long ll;
    ferry__kind k = ferry__kind_of(n);
    if (k == FERRY__INT && ferry__yaml_int(ferry__text(n), &ll)) {
        *out = (double)ll;
        return 0;
    }
    if (k == FERRY__FLOAT && ferry__yaml_float(ferry__text(n), out) && isfinite(*out))
        return 0;
    return FERRY_EINVAL;
}

size_t ferry__seq_len(const yaml_node_t *seq)
{
    return (size_t)(seq->data.sequence.items.top - seq->data.sequence.items.start);
}

yaml_node_t *ferry__seq_item(ferry__ctx *c, const yaml_node_t *seq, size_t i)
{
    return ferry__node(c, seq->data.sequence.items.start[i]);
}

/* Read before the mapping is checked, so that every message about it
 * (duplicate keys too) can name it. */
const char *ferry__peek_name(ferry__ctx *c, yaml_node_t *map)
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

/* A YAML subtree as JSON (defaults, choices). NULL when it is too deep or too
 * big (a small file with nested aliases can expand to billions of nodes). */
json_t *ferry__to_json(ferry__ctx *c, yaml_node_t *n, int depth)
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

const ferry__pair *ferry__map_find(const ferry__map *m, const char *key)
{
    for (size_t i = 0; i < m->n; i++)
        if (!strcmp(m->p[i].key, key))
            return &m->p[i];
    return NULL;
}

yaml_node_t *ferry__map_get(const ferry__map *m, const char *key)
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
void ferry__map_load(ferry__ctx *c, yaml_node_t *node, const char *label, ferry__map *m)
{
    m->p = NULL;
    m->n = 0;
    m->line = ferry__line(node);
    ferry__map_add(c, m, node, 1, 0, label);
}

void ferry__map_free(ferry__map *m)
{
    free(m->p);
    m->p = NULL;
    m->n = 0;
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

int ferry__load(ferry__ctx *c, const char *buf, size_t len, yaml_document_t *doc)
{
    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser))
        abort(); /* out of memory: fatal in all of ferry */
    yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);
    int rc = FERRY_EINVAL;
    if (!yaml_parser_load(&parser, doc)) {
        ferry__yaml_error(c, &parser);
        yaml_parser_delete(&parser);
        return FERRY_EINVAL;
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
