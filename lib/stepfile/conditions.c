/* Stop-condition expressions, in the Python-like language valohai
 * evaluates: checked when the step file is read (a condition that can
 * never work is caught there), and evaluated against an execution's latest
 * metadata while it runs. One recursive descent does both: each rule also
 * computes its value, which a check ignores. */
#include "stepfile_int.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include <ferry/error.h>

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
    const json_t *metadata;   /* the latest value of each key, or NULL */
    const json_t *parameters; /* the execution's, or NULL */
} ferry__lex;

/* A value of the language. UNKNOWN is what Python would raise on (a name
 * with no value yet, a type error, a call): it spreads through what uses
 * it, and a condition that is UNKNOWN does not hold. */
enum { FERRY__V_UNKNOWN, FERRY__V_BOOL, FERRY__V_NUM, FERRY__V_STR, FERRY__V_LIST };
#define FERRY__LIST_MAX 16

typedef struct ferry__atomv {
    int kind;
    double num; /* BOOL (0/1), NUM */
    const char *str;
    size_t len; /* STR: into the expression or a metadata value */
} ferry__atomv;

typedef struct ferry__val {
    ferry__atomv a;
    size_t n; /* LIST */
    ferry__atomv items[FERRY__LIST_MAX];
} ferry__val;

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
    return FERRY_EINVAL;
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

static int ferry__expr(ferry__lex *lx, ferry__val *out);
static int ferry__expr_factor(ferry__lex *lx, ferry__val *out);

static void ferry__set_unknown(ferry__val *v)
{
    v->a.kind = FERRY__V_UNKNOWN;
    v->n = 0;
}

static void ferry__set_num(ferry__val *v, int kind, double num)
{
    v->a.kind = kind;
    v->a.num = num;
    v->n = 0;
}

static int ferry__truthy(const ferry__atomv *a, size_t n)
{
    switch (a->kind) {
    case FERRY__V_BOOL:
    case FERRY__V_NUM:
        return a->num != 0;
    case FERRY__V_STR:
        return a->len > 0;
    case FERRY__V_LIST:
        return n > 0;
    default:
        return 0;
    }
}

/* A metadata or parameter value as a value of the language. */
static void ferry__from_json(const json_t *j, ferry__val *v)
{
    if (json_is_boolean(j))
        ferry__set_num(v, FERRY__V_BOOL, json_is_true(j));
    else if (json_is_number(j))
        ferry__set_num(v, FERRY__V_NUM, json_number_value(j));
    else if (json_is_string(j)) {
        v->a.kind = FERRY__V_STR;
        v->a.str = json_string_value(j);
        v->a.len = json_string_length(j);
        v->n = 0;
    } else
        ferry__set_unknown(v);
}

static const json_t *ferry__lookup(const json_t *obj, const char *name, size_t len)
{
    char key[256];
    if (!json_is_object(obj) || len >= sizeof(key))
        return NULL;
    memcpy(key, name, len);
    key[len] = '\0';
    return json_object_get(obj, key);
}

/* A name: True/False/None, else the metadata key of that name. */
static void ferry__name_value(ferry__lex *lx, const char *name, size_t len, ferry__val *v)
{
    if (len == 4 && !strncmp(name, "True", 4))
        ferry__set_num(v, FERRY__V_BOOL, 1);
    else if (len == 5 && !strncmp(name, "False", 5))
        ferry__set_num(v, FERRY__V_BOOL, 0);
    else
        ferry__from_json(ferry__lookup(lx->metadata, name, len), v);
}

/* '(' expr, ... ')' or '[' expr, ... ']' with the opener current; a list of
 * scalars, or UNKNOWN (a longer list, a list of lists). */
static int ferry__expr_list(ferry__lex *lx, const char *close, ferry__val *out)
{
    out->a.kind = FERRY__V_LIST;
    out->n = 0;
    int unknown = 0;
    if (ferry__lex_next(lx))
        return FERRY_EINVAL;
    while (!ferry__lex_is(lx, close)) {
        ferry__val item;
        if (ferry__expr(lx, &item))
            return FERRY_EINVAL;
        if (item.a.kind == FERRY__V_LIST || out->n == FERRY__LIST_MAX)
            unknown = 1;
        else
            out->items[out->n++] = item.a;
        if (!ferry__lex_is(lx, ","))
            break;
        if (ferry__lex_next(lx))
            return FERRY_EINVAL;
    }
    if (unknown)
        ferry__set_unknown(out);
    return ferry__lex_expect(lx, close);
}

static int ferry__expr_atom(ferry__lex *lx, ferry__val *out)
{
    if (lx->tok == FERRY__T_NAME) {
        ferry__name_value(lx, lx->s + lx->start, lx->len, out);
        return ferry__lex_next(lx);
    }
    if (lx->tok == FERRY__T_NUM) {
        char num[64];
        size_t k = 0;
        for (size_t i = 0; i < lx->len && k + 1 < sizeof(num); i++)
            if (lx->s[lx->start + i] != '_')
                num[k++] = lx->s[lx->start + i];
        num[k] = '\0';
        ferry__set_num(out, FERRY__V_NUM, strtod(num, NULL));
        return ferry__lex_next(lx);
    }
    if (lx->tok == FERRY__T_STR) {
        out->a.kind = FERRY__V_STR;
        out->a.str = lx->s + lx->start + 1; /* between the quotes, as written */
        out->a.len = lx->len - 2;
        out->n = 0;
        if (ferry__lex_next(lx))
            return FERRY_EINVAL;
        if (lx->tok == FERRY__T_STR) /* "a" "b" concatenates: not evaluated */
            ferry__set_unknown(out);
        while (lx->tok == FERRY__T_STR)
            if (ferry__lex_next(lx))
                return FERRY_EINVAL;
        return 0;
    }
    if (ferry__lex_is(lx, "(")) {
        if (ferry__lex_next(lx) || ferry__expr(lx, out))
            return FERRY_EINVAL;
        return ferry__lex_expect(lx, ")");
    }
    if (ferry__lex_is(lx, "["))
        return ferry__expr_list(lx, "]", out);
    return ferry__lex_unexpected(lx);
}

/* `metadata.KEY` and `parameter.NAME` (also `parameters.NAME`): the
 * sources valohai's conditions name. */
static const json_t *ferry__source(const ferry__lex *lx, const char *name, size_t len)
{
    if (len == 8 && !strncmp(name, "metadata", 8))
        return lx->metadata;
    if ((len == 9 && !strncmp(name, "parameter", 9)) ||
        (len == 10 && !strncmp(name, "parameters", 10)))
        return lx->parameters;
    return NULL;
}

/* atom, then any of .name (attribute), (call), [index] */
static int ferry__expr_primary(ferry__lex *lx, ferry__val *out)
{
    const char *name = lx->s + lx->start;
    size_t name_len = lx->tok == FERRY__T_NAME ? lx->len : 0;
    if (ferry__expr_atom(lx, out))
        return FERRY_EINVAL;
    for (int first = 1;; first = 0) {
        if (ferry__lex_is(lx, ".")) {
            if (ferry__lex_next(lx))
                return FERRY_EINVAL;
            if (lx->tok != FERRY__T_NAME)
                return ferry__lex_unexpected(lx);
            const json_t *src = first && name_len ? ferry__source(lx, name, name_len) : NULL;
            if (src)
                ferry__from_json(ferry__lookup(src, lx->s + lx->start, lx->len), out);
            else
                ferry__set_unknown(out);
            if (ferry__lex_next(lx))
                return FERRY_EINVAL;
        } else if (ferry__lex_is(lx, "(")) {
            ferry__val args;
            if (ferry__expr_list(lx, ")", &args))
                return FERRY_EINVAL;
            ferry__set_unknown(out); /* no functions */
        } else if (ferry__lex_is(lx, "[")) {
            ferry__val index;
            if (ferry__lex_next(lx) || ferry__expr(lx, &index) || ferry__lex_expect(lx, "]"))
                return FERRY_EINVAL;
            ferry__set_unknown(out);
        } else {
            return 0;
        }
    }
}

static int ferry__is_number(const ferry__val *v)
{
    return v->a.kind == FERRY__V_NUM || v->a.kind == FERRY__V_BOOL;
}

/* Arithmetic on numbers, as Python does it; anything else is UNKNOWN. */
static void ferry__arith(const char *op, ferry__val *l, const ferry__val *r)
{
    if (!ferry__is_number(l) || !ferry__is_number(r)) {
        ferry__set_unknown(l);
        return;
    }
    double a = l->a.num, b = r->a.num, v;
    if (!strcmp(op, "+"))
        v = a + b;
    else if (!strcmp(op, "-"))
        v = a - b;
    else if (!strcmp(op, "*"))
        v = a * b;
    else if (!strcmp(op, "**"))
        v = pow(a, b);
    else if (b == 0) { /* ZeroDivisionError */
        ferry__set_unknown(l);
        return;
    } else if (!strcmp(op, "/"))
        v = a / b;
    else if (!strcmp(op, "//"))
        v = floor(a / b);
    else
        v = a - b * floor(a / b); /* % takes the sign of the divisor */
    ferry__set_num(l, FERRY__V_NUM, v);
}

/* ~x of an integer, exactly where a double holds it; UNKNOWN otherwise. */
static void ferry__invert(ferry__val *v)
{
    double x = v->a.num;
    if (x != floor(x) || fabs(x) > 9007199254740992.0) /* 2^53 */
        ferry__set_unknown(v);
    else
        ferry__set_num(v, FERRY__V_NUM, -x - 1);
}

static int ferry__expr_factor(ferry__lex *lx, ferry__val *out)
{
    if (++lx->depth > 64)
        return ferry__lex_fail(lx, "expression nests too deep");
    int rc;
    if (ferry__lex_is(lx, "-") || ferry__lex_is(lx, "+") || ferry__lex_is(lx, "~")) {
        char op = lx->s[lx->start];
        rc = ferry__lex_next(lx) || ferry__expr_factor(lx, out) ? FERRY_EINVAL : 0;
        if (!rc && !ferry__is_number(out))
            ferry__set_unknown(out);
        else if (!rc && op == '-')
            ferry__set_num(out, FERRY__V_NUM, -out->a.num);
        else if (!rc && op == '~') /* ints only (a float is Python's TypeError): -x - 1 */
            ferry__invert(out);
    } else {
        rc = ferry__expr_primary(lx, out);
        if (!rc && ferry__lex_is(lx, "**")) {
            ferry__val r;
            rc = ferry__lex_next(lx) || ferry__expr_factor(lx, &r) ? FERRY_EINVAL : 0;
            if (!rc)
                ferry__arith("**", out, &r);
        }
    }
    lx->depth--;
    return rc;
}

static int ferry__atom_eq(const ferry__atomv *a, const ferry__atomv *b)
{
    int an = a->kind == FERRY__V_NUM || a->kind == FERRY__V_BOOL;
    int bn = b->kind == FERRY__V_NUM || b->kind == FERRY__V_BOOL;
    if (an && bn)
        return a->num == b->num;
    if (a->kind == FERRY__V_STR && b->kind == FERRY__V_STR)
        return a->len == b->len && !memcmp(a->str, b->str, a->len);
    return 0;
}

/* 1 or 0 for `l op r`, -1 where Python raises (or a side is UNKNOWN). */
static int ferry__compare(const char *op, const ferry__val *l, const ferry__val *r)
{
    if (l->a.kind == FERRY__V_UNKNOWN || r->a.kind == FERRY__V_UNKNOWN)
        return -1;
    int neg = !strncmp(op, "not", 3) || !strcmp(op, "!=") || !strcmp(op, "is not");
    if (!strcmp(op, "in") || !strcmp(op, "not in")) {
        int found = 0;
        if (r->a.kind == FERRY__V_LIST) {
            for (size_t i = 0; i < r->n && !found; i++)
                found = ferry__atom_eq(&l->a, &r->items[i]);
        } else if (r->a.kind == FERRY__V_STR && l->a.kind == FERRY__V_STR) {
            for (size_t i = 0; l->a.len <= r->a.len && i + l->a.len <= r->a.len && !found; i++)
                found = !memcmp(r->a.str + i, l->a.str, l->a.len);
        } else {
            return -1;
        }
        return found != neg;
    }
    if (!strcmp(op, "==") || !strcmp(op, "!=") || !strncmp(op, "is", 2)) {
        if (l->a.kind == FERRY__V_LIST || r->a.kind == FERRY__V_LIST)
            return -1;
        return ferry__atom_eq(&l->a, &r->a) != neg;
    }
    int c;
    if (ferry__is_number(l) && ferry__is_number(r)) {
        c = (l->a.num > r->a.num) - (l->a.num < r->a.num);
    } else if (l->a.kind == FERRY__V_STR && r->a.kind == FERRY__V_STR) {
        size_t n = l->a.len < r->a.len ? l->a.len : r->a.len;
        c = memcmp(l->a.str, r->a.str, n);
        if (c == 0)
            c = (l->a.len > r->a.len) - (l->a.len < r->a.len);
    } else {
        return -1;
    }
    if (!strcmp(op, "<"))
        return c < 0;
    if (!strcmp(op, "<="))
        return c <= 0;
    if (!strcmp(op, ">"))
        return c > 0;
    return c >= 0;
}

/* The comparison operator at the current token ("not in", "is not"...),
 * consumed; "" when there is none. */
static int ferry__cmp_op(ferry__lex *lx, char *op, size_t cap)
{
    static const char *const cmp[] = {"<", ">", "==", "!=", "<=", ">=", "in", NULL};
    op[0] = '\0';
    if (ferry__lex_is(lx, "not") || ferry__lex_is(lx, "is")) {
        int was_not = ferry__lex_is(lx, "not");
        if (ferry__lex_next(lx))
            return FERRY_EINVAL;
        if (was_not && !ferry__lex_is(lx, "in"))
            return ferry__lex_unexpected(lx);
        int then_not = !was_not && ferry__lex_is(lx, "not");
        snprintf(op, cap, "%s", was_not ? "not in" : then_not ? "is not" : "is");
        if ((was_not || then_not) && ferry__lex_next(lx))
            return FERRY_EINVAL;
        return 0;
    }
    for (const char *const *c = cmp; *c; c++)
        if (ferry__lex_is(lx, *c)) {
            snprintf(op, cap, "%s", *c);
            return ferry__lex_next(lx);
        }
    return 0;
}

/* not_test: 'not' not_test | comparison (chained: a < b < c) */
static int ferry__expr_not(ferry__lex *lx, ferry__val *out);
static int ferry__expr_binary(ferry__lex *lx, int level, ferry__val *out);

static int ferry__expr_comparison(ferry__lex *lx, ferry__val *out)
{
    if (ferry__expr_binary(lx, 3, out))
        return FERRY_EINVAL;
    ferry__val left = *out;
    int result = 1, compared = 0;
    for (;;) {
        char op[8];
        if (ferry__cmp_op(lx, op, sizeof(op)))
            return FERRY_EINVAL;
        if (!op[0])
            break;
        ferry__val right;
        if (ferry__expr_binary(lx, 3, &right))
            return FERRY_EINVAL;
        int c = ferry__compare(op, &left, &right);
        result = result < 0 ? -1 : c < 0 ? -1 : result && c;
        compared = 1;
        left = right;
    }
    if (compared && result < 0)
        ferry__set_unknown(out);
    else if (compared)
        ferry__set_num(out, FERRY__V_BOOL, result);
    return 0;
}

static int ferry__expr_not(ferry__lex *lx, ferry__val *out)
{
    if (!ferry__lex_is(lx, "not"))
        return ferry__expr_comparison(lx, out);
    if (++lx->depth > 64)
        return ferry__lex_fail(lx, "expression nests too deep");
    int rc = ferry__lex_next(lx) || ferry__expr_not(lx, out) ? FERRY_EINVAL : 0;
    if (!rc && out->a.kind != FERRY__V_UNKNOWN)
        ferry__set_num(out, FERRY__V_BOOL, !ferry__truthy(&out->a, out->n));
    lx->depth--;
    return rc;
}

/* `l or r` / `l and r` as Python gives them: one of the operands. */
static void ferry__logic(int is_or, ferry__val *l, const ferry__val *r)
{
    if (l->a.kind == FERRY__V_UNKNOWN)
        return;
    if (ferry__truthy(&l->a, l->n) != is_or)
        *l = *r;
}

/* Binary operators, by precedence level (0 binds loosest). */
static int ferry__expr_binary(ferry__lex *lx, int level, ferry__val *out)
{
    static const char *const levels[][7] = {
        {"or", NULL},     {"and", NULL},
        {NULL}, /* not, comparisons: ferry__expr_not */
        {"+", "-", NULL}, {"*", "/", "//", "%", NULL},
    };
    if (level == 2)
        return ferry__expr_not(lx, out);
    if (level == 5)
        return ferry__expr_factor(lx, out);
    if (ferry__expr_binary(lx, level + 1, out))
        return FERRY_EINVAL;
    for (;;) {
        const char *match = NULL;
        for (const char *const *op = levels[level]; *op; op++)
            if (ferry__lex_is(lx, *op))
                match = *op;
        if (!match)
            return 0;
        ferry__val r;
        if (ferry__lex_next(lx) || ferry__expr_binary(lx, level + 1, &r))
            return FERRY_EINVAL;
        if (level <= 1)
            ferry__logic(level == 0, out, &r);
        else
            ferry__arith(match, out, &r);
    }
}

/* or_test ['if' or_test 'else' expr] */
static int ferry__expr(ferry__lex *lx, ferry__val *out)
{
    if (++lx->depth > 64)
        return ferry__lex_fail(lx, "expression nests too deep");
    int rc = ferry__expr_binary(lx, 0, out);
    if (!rc && ferry__lex_is(lx, "if")) {
        ferry__val cond, other;
        rc = ferry__lex_next(lx) || ferry__expr_binary(lx, 0, &cond) ||
                     ferry__lex_expect(lx, "else") || ferry__expr(lx, &other)
                 ? FERRY_EINVAL
                 : 0;
        if (!rc && cond.a.kind == FERRY__V_UNKNOWN)
            ferry__set_unknown(out);
        else if (!rc && !ferry__truthy(&cond.a, cond.n))
            *out = other;
    }
    lx->depth--;
    return rc;
}

/* Parses (and evaluates) the whole expression; 0, or FERRY_EINVAL with why. */
static int ferry__expr_run(ferry__lex *lx, ferry__val *out)
{
    if (ferry__lex_next(lx))
        return FERRY_EINVAL;
    if (lx->tok == FERRY__T_END)
        return ferry__lex_fail(lx, "the expression is empty");
    if (ferry__expr(lx, out))
        return FERRY_EINVAL;
    if (lx->tok != FERRY__T_END)
        return ferry__lex_unexpected(lx);
    return 0;
}

/* Whether `text`, the value of `key` at `line`, parses; when not, reported
 * there. Nothing is evaluated against real values: names are unknown. */
int ferry__expression_valid(ferry__walk *w, const char *key, const char *text, int line)
{
    char why[160];
    ferry__lex lx = {.s = text, .why = why, .why_cap = sizeof(why)};
    ferry__val ignored;
    if (ferry__expr_run(&lx, &ignored) == 0)
        return 1;
    ferry__err(w->c, line, w->label, "%s: '%s' is not a valid expression: %s", key, text, why);
    return 0;
}

void ferry__check_expression(ferry__walk *w, const ferry__field *f, const ferry__value *v)
{
    ferry__expression_valid(w, f->key, v->text, v->line);
}

void ferry__keep_expression(ferry__walk *w, const ferry__field *f, const ferry__value *v)
{
    if (ferry__expression_valid(w, f->key, v->text, v->line))
        ferry__keep_str(w, f, v);
}

int ferry_condition_eval(const char *expr, const json_t *metadata, const json_t *parameters,
                         char *why, size_t why_cap)
{
    char scratch[160];
    ferry__lex lx = {.s = expr ? expr : "",
                     .why = why && why_cap ? why : scratch,
                     .why_cap = why && why_cap ? why_cap : sizeof(scratch),
                     .metadata = metadata,
                     .parameters = parameters};
    ferry__val v;
    if (ferry__expr_run(&lx, &v) != 0)
        return FERRY_EINVAL;
    return v.a.kind != FERRY__V_UNKNOWN && ferry__truthy(&v.a, v.n);
}
