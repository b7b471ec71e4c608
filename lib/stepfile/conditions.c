/* Stop-condition expressions: a syntax check of the Python-like language
 * valohai evaluates, so that a condition that can never work is caught here. */
#include "stepfile_int.h"

#include <ctype.h>
#include <stdarg.h>
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

static int ferry__expr(ferry__lex *lx);
static int ferry__expr_factor(ferry__lex *lx);

/* '(' expr, ... ')' or '[' expr, ... ']' with the opener current. */
static int ferry__expr_list(ferry__lex *lx, const char *close)
{
    if (ferry__lex_next(lx))
        return FERRY_EINVAL;
    while (!ferry__lex_is(lx, close)) {
        if (ferry__expr(lx))
            return FERRY_EINVAL;
        if (!ferry__lex_is(lx, ","))
            break;
        if (ferry__lex_next(lx))
            return FERRY_EINVAL;
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
                return FERRY_EINVAL;
        return 0;
    }
    if (ferry__lex_is(lx, "(")) {
        if (ferry__lex_next(lx) || ferry__expr(lx))
            return FERRY_EINVAL;
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
        return FERRY_EINVAL;
    for (;;) {
        if (ferry__lex_is(lx, ".")) {
            if (ferry__lex_next(lx))
                return FERRY_EINVAL;
            if (lx->tok != FERRY__T_NAME)
                return ferry__lex_unexpected(lx);
            if (ferry__lex_next(lx))
                return FERRY_EINVAL;
        } else if (ferry__lex_is(lx, "(")) {
            if (ferry__expr_list(lx, ")"))
                return FERRY_EINVAL;
        } else if (ferry__lex_is(lx, "[")) {
            if (ferry__lex_next(lx) || ferry__expr(lx) || ferry__lex_expect(lx, "]"))
                return FERRY_EINVAL;
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
        rc = ferry__lex_next(lx) || ferry__expr_factor(lx) ? FERRY_EINVAL : 0;
    } else {
        rc = ferry__expr_primary(lx);
        if (!rc && ferry__lex_is(lx, "**"))
            rc = ferry__lex_next(lx) || ferry__expr_factor(lx) ? FERRY_EINVAL : 0;
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
            int rc = ferry__lex_next(lx) || ferry__expr_binary(lx, 2) ? FERRY_EINVAL : 0;
            lx->depth--;
            return rc;
        }
        static const char *const cmp[] = {"<", ">", "==", "!=", "<=", ">=", "in", NULL};
        if (ferry__expr_binary(lx, 3))
            return FERRY_EINVAL;
        for (;;) {
            int is_cmp = 0;
            for (const char *const *op = cmp; *op; op++)
                is_cmp |= ferry__lex_is(lx, *op);
            if (ferry__lex_is(lx, "not") || ferry__lex_is(lx, "is")) {
                int was_not = ferry__lex_is(lx, "not");
                if (ferry__lex_next(lx))
                    return FERRY_EINVAL;
                if (was_not && !ferry__lex_is(lx, "in"))
                    return ferry__lex_unexpected(lx);
                if ((was_not || ferry__lex_is(lx, "not")) && ferry__lex_next(lx))
                    return FERRY_EINVAL;
            } else if (is_cmp) {
                if (ferry__lex_next(lx))
                    return FERRY_EINVAL;
            } else {
                return 0;
            }
            if (ferry__expr_binary(lx, 3))
                return FERRY_EINVAL;
        }
    }
    if (level == 5)
        return ferry__expr_factor(lx);
    if (ferry__expr_binary(lx, level + 1))
        return FERRY_EINVAL;
    for (;;) {
        int match = 0;
        for (const char *const *op = levels[level]; *op; op++)
            match |= ferry__lex_is(lx, *op);
        if (!match)
            return 0;
        if (ferry__lex_next(lx) || ferry__expr_binary(lx, level + 1))
            return FERRY_EINVAL;
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
                 ? FERRY_EINVAL
                 : 0;
    }
    lx->depth--;
    return rc;
}

static int ferry__expr_check(const char *text, char *why, size_t why_cap)
{
    ferry__lex lx = {.s = text, .why = why, .why_cap = why_cap};
    if (ferry__lex_next(&lx))
        return FERRY_EINVAL;
    if (lx.tok == FERRY__T_END)
        return ferry__lex_fail(&lx, "the expression is empty");
    if (ferry__expr(&lx))
        return FERRY_EINVAL;
    if (lx.tok != FERRY__T_END)
        return ferry__lex_unexpected(&lx);
    return 0;
}

void ferry__check_expression(ferry__walk *w, const ferry__field *f, const ferry__value *v)
{
    char why[160];
    if (ferry__expr_check(v->text, why, sizeof(why)) != 0)
        ferry__err(w->c, v->line, w->label, "%s: '%s' is not a valid expression: %s", f->key,
                   v->text, why);
}
