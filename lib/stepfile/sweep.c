/* Sweeps (issue 21): the values a task gives a parameter, from the CLI's
 * text (`-p lr=logspace(-4,-1,4)`) or a task definition's style and rules,
 * and the points of the parameter space that grid, random and manual
 * searches run. Random draws come from a generator of our own
 * (xoshiro256**, seeded by splitmix64), not rand(), so that a recorded seed
 * gives the same points on any machine.
 */
#include "stepfile_int.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <ferry/error.h>

#include "util.h"

/* A list holds at most this many values: linear(0,1e9,1) is a mistake,
 * not a sweep, and would otherwise take the memory of the machine. */
#define FERRY__SWEEP_MAX_VALUES 1000000

/* ------------------------------------------------------------------------ */
/* Names                                                                     */

const char *const ferry__task_type_names[] = {"grid_search",  "random_search", "manual_search",
                                              "bayesian_tpe", "distributed",   NULL};
static const char *const ferry__task_types_short[] = {"grid", "random", "manual", "bayesian", NULL};
const char *const ferry__child_error_names[] = {"continue-and-complete", "continue-and-error",
                                                "stop-all-and-error", NULL};
const char *const ferry__sweep_styles[] = {"single",   "multiple", "linear",
                                           "logspace", "random",   NULL};
static const char *const ferry__distributions[] = {"uniform", "loguniform", "normal", NULL};

/* `text` lower-cased with `from` turned into `to`, as valohai-yaml's casts
 * do; the index of the result in `list`, or -1. */
static int ferry__normal_index(const char *text, char from, char to, const char *const *list)
{
    if (!text)
        return -1;
    char *t = ferry__trimmed(text);
    for (char *p = t; *p; p++)
        *p = *p == from ? to : (char)tolower((unsigned char)*p);
    int found = -1;
    for (int i = 0; list[i] && found < 0; i++)
        if (!strcmp(list[i], t))
            found = i;
    free(t);
    return found;
}

const char *ferry_task_type_name(ferry_task_type type)
{
    return (unsigned)type <= FERRY_TASK_DISTRIBUTED ? ferry__task_type_names[type] : "unknown";
}

int ferry_task_type_parse(const char *text, int short_names, ferry_task_type *out)
{
    int i = ferry__normal_index(text, '-', '_', ferry__task_type_names);
    if (i < 0 && short_names) /* the short names are in the enum's order */
        i = ferry__normal_index(text, '-', '_', ferry__task_types_short);
    if (i < 0)
        return FERRY_EINVAL;
    *out = (ferry_task_type)i;
    return 0;
}

const char *ferry_child_error_name(ferry_child_error e)
{
    if (e < FERRY_CHILD_ERROR_CONTINUE_AND_COMPLETE || e > FERRY_CHILD_ERROR_STOP_ALL_AND_ERROR)
        return NULL;
    return ferry__child_error_names[e - 1];
}

int ferry_child_error_parse(const char *text, int short_names, ferry_child_error *out)
{
    int i = ferry__normal_index(text, '_', '-', ferry__child_error_names);
    if (i >= 0) {
        *out = (ferry_child_error)(i + 1);
        return 0;
    }
    static const char *const shorts[] = {"continue", "stop-all", NULL};
    i = short_names ? ferry__normal_index(text, '_', '-', shorts) : -1;
    if (i < 0)
        return FERRY_EINVAL;
    *out = i == 0 ? FERRY_CHILD_ERROR_CONTINUE_AND_COMPLETE : FERRY_CHILD_ERROR_STOP_ALL_AND_ERROR;
    return 0;
}

const char *ferry_sweep_style_name(ferry_sweep_style style)
{
    return (unsigned)style <= FERRY_STYLE_RANDOM ? ferry__sweep_styles[style] : "unknown";
}

void ferry_sweep_values_clear(ferry_sweep_values *v)
{
    if (!v)
        return;
    json_decref(v->values);
    json_decref(v->texts);
    memset(v, 0, sizeof(*v));
}

/* ------------------------------------------------------------------------ */
/* Numbers                                                                   */

/* The fewest decimals that write `d` exactly (0.25 has 2), at most 15. */
static int ferry__decimals(double d)
{
    char buf[64];
    for (int n = 0; n < 15; n++) {
        snprintf(buf, sizeof(buf), "%.*f", n, d);
        if (strtod(buf, NULL) == d)
            return n;
    }
    return 15;
}

static double ferry__round_decimals(double d, int decimals)
{
    char buf[400];
    snprintf(buf, sizeof(buf), "%.*f", decimals, d);
    return strtod(buf, NULL);
}

/* `d` to `digits` significant digits: what libm's last bit, which may
 * differ between machines, cannot change, and 0.010000000000000002 is 0.01. */
double ferry__round_significant(double d, int digits)
{
    char buf[64];
    snprintf(buf, sizeof(buf), "%.*g", digits, d);
    return strtod(buf, NULL);
}

static int ferry__is_integral(double d)
{
    return d > -9e15 && d < 9e15 && d == floor(d);
}

/* An integer where it is one and `integers` says the values are; else a real. */
static json_t *ferry__number_json(double d, int integers)
{
    if (d == 0)
        d = 0; /* no -0 */
    return integers && ferry__is_integral(d) ? json_integer((json_int_t)d) : json_real(d);
}

/* A JSON number's value; 0 when it is one. */
static int ferry__json_number(const json_t *v, double *out)
{
    if (!json_is_number(v))
        return FERRY_EINVAL;
    *out = json_number_value(v);
    return isfinite(*out) ? 0 : FERRY_EINVAL;
}

/* ------------------------------------------------------------------------ */
/* The random generator: xoshiro256**, seeded by splitmix64                  */

static uint64_t ferry__splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void ferry__rng_seed(ferry__rng *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++)
        r->s[i] = ferry__splitmix64(&seed);
}

static uint64_t ferry__rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

uint64_t ferry__rng_next(ferry__rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = ferry__rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = ferry__rotl(s[3], 45);
    return result;
}

double ferry__rng_unit(ferry__rng *r)
{
    return (double)(ferry__rng_next(r) >> 11) * 0x1.0p-53;
}

/* One parameter's generator: its rules' seed, else the sweep's seed mixed
 * with its name (FNV-1a), so that adding a parameter leaves the others'
 * values as they were. */
static void ferry__param_rng(ferry__rng *r, const ferry_sweep_param *p, uint64_t seed)
{
    if (p->values.has_seed) {
        ferry__rng_seed(r, p->values.seed);
        return;
    }
    uint64_t h = 0xcbf29ce484222325ULL;
    for (const char *c = p->name ? p->name : ""; *c; c++)
        h = (h ^ (unsigned char)*c) * 0x100000001b3ULL;
    ferry__rng_seed(r, seed ^ h);
}

static double ferry__draw(ferry__rng *r, const ferry_sweep_values *v)
{
    double d;
    switch (v->distribution) {
    case FERRY_DIST_LOGUNIFORM: {
        double lo = log(v->min), hi = log(v->max);
        d = exp(lo + ferry__rng_unit(r) * (hi - lo));
        break;
    }
    case FERRY_DIST_NORMAL: { /* Box-Muller; 1 - u is in (0, 1] */
        double u1 = 1.0 - ferry__rng_unit(r), u2 = ferry__rng_unit(r);
        d = v->min + v->max * sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
        break;
    }
    default:
        d = v->min + ferry__rng_unit(r) * (v->max - v->min);
        break;
    }
    d = ferry__round_significant(d, 12);
    if (v->distribution != FERRY_DIST_NORMAL) /* rounding may step past a bound */
        d = d < v->min ? v->min : d > v->max ? v->max : d;
    return v->integerify ? floor(d + 0.5) : d;
}

/* ------------------------------------------------------------------------ */
/* Building values                                                           */

static int ferry__list_too_long(double n, const char *what, char *err, size_t cap)
{
    return ferry__fail(err, cap, FERRY_EINVAL, "%s makes %.0f values; at most %d are allowed", what,
                       n, FERRY__SWEEP_MAX_VALUES);
}

/* linear: start, start + step, ... up to end (included when a step lands
 * on it, within rounding), rounded to the decimals of start and step. */
static int ferry__linear(double start, double end, double step, ferry_sweep_values *out, char *err,
                         size_t cap)
{
    if (step == 0)
        return ferry__fail(err, cap, FERRY_EINVAL, "step must not be 0");
    double span = (end - start) / step;
    if (span < 0)
        return ferry__fail(err, cap, FERRY_EINVAL,
                           "a step of %g goes away from the end (%g to %g): no values", step, start,
                           end);
    double n = floor(span + 1e-9) + 1;
    if (n > FERRY__SWEEP_MAX_VALUES)
        return ferry__list_too_long(n, "linear", err, cap);
    int da = ferry__decimals(start), db = ferry__decimals(step);
    int decimals = da > db ? da : db, integers = decimals == 0;
    out->kind = FERRY_SWEEP_LIST;
    out->values = json_array();
    for (size_t i = 0; i < (size_t)n; i++) {
        double d = ferry__round_decimals(start + (double)i * step, decimals);
        json_array_append_new(out->values, ferry__number_json(d, integers));
    }
    return 0;
}

/* logspace: base^x for `count` x evenly from start to end, as numpy's. */
static int ferry__logspace(double start, double end, double count, double base, int integerify,
                           ferry_sweep_values *out, char *err, size_t cap)
{
    if (!ferry__is_integral(count) || count < 1)
        return ferry__fail(err, cap, FERRY_EINVAL, "count must be a whole number of at least 1");
    if (count > FERRY__SWEEP_MAX_VALUES)
        return ferry__list_too_long(count, "logspace", err, cap);
    if (!(base > 0))
        return ferry__fail(err, cap, FERRY_EINVAL, "base must be above 0");
    out->kind = FERRY_SWEEP_LIST;
    out->integerify = integerify;
    out->values = json_array();
    size_t n = (size_t)count;
    for (size_t i = 0; i < n; i++) {
        double x = n == 1 ? start : start + (end - start) * (double)i / (double)(n - 1);
        double d = ferry__round_significant(pow(base, x), 15);
        if (!isfinite(d)) {
            ferry_sweep_values_clear(out);
            return ferry__fail(err, cap, FERRY_EINVAL, "%g^%g is too large", base, x);
        }
        if (integerify)
            d = floor(d + 0.5);
        json_array_append_new(out->values, ferry__number_json(d, integerify));
    }
    return 0;
}

/* random: the bounds a distribution can use. */
static int ferry__random(double min, double max, ferry_distribution dist, ferry_sweep_values *out,
                         char *err, size_t cap)
{
    if (dist == FERRY_DIST_NORMAL && max < 0)
        return ferry__fail(err, cap, FERRY_EINVAL,
                           "normal: the standard deviation (the second number) must not be "
                           "negative, got %g",
                           max);
    if (dist != FERRY_DIST_NORMAL && min > max)
        return ferry__fail(err, cap, FERRY_EINVAL, "min %g is above max %g", min, max);
    if (dist == FERRY_DIST_LOGUNIFORM && !(min > 0))
        return ferry__fail(err, cap, FERRY_EINVAL, "loguniform needs a min above 0, got %g", min);
    out->kind = FERRY_SWEEP_RANDOM;
    out->distribution = dist;
    out->min = min;
    out->max = max;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* The CLI's text                                                            */

/* A bare value as well as it can be typed without a step: an integer, a
 * real, else the text. */
static json_t *ferry__guess(const char *t)
{
    char *end = NULL;
    errno = 0;
    long long ll = strtoll(t, &end, 10);
    if (*t && !errno && end && !*end)
        return json_integer(ll);
    if (!strpbrk(t, "xXnN")) { /* no hex, inf or nan */
        errno = 0;
        double d = strtod(t, &end);
        if (*t && !errno && end && !*end && isfinite(d))
            return json_real(d);
    }
    return json_string(t);
}

static void ferry__add_value(ferry_sweep_values *out, const char *text, int quoted)
{
    json_array_append_new(out->values, quoted ? json_string(text) : ferry__guess(text));
    json_array_append_new(out->texts, json_string(text));
}

/* One item of a list, from `*p` to the next top-level comma or the end;
 * `*p` is left past it. */
static int ferry__list_item(const char **p, const char *end, ferry_sweep_values *out, char *err,
                            size_t cap)
{
    const char *s = *p;
    while (s < end && isspace((unsigned char)*s))
        s++;
    if (s < end && (*s == '"' || *s == '\'')) {
        char q = *s++;
        ferry__buf b = {0};
        while (s < end && *s != q) {
            if (*s == '\\' && q == '"' && s + 1 < end)
                s++;
            ferry__buf_add(&b, s++, 1);
        }
        char *text = ferry__buf_take(&b);
        if (s >= end) {
            free(text);
            return ferry__fail(err, cap, FERRY_EINVAL, "a quote (%c) is not closed", q);
        }
        for (s++; s < end && isspace((unsigned char)*s); s++)
            ;
        if (s < end && *s != ',') {
            ferry__fail(err, cap, FERRY_EINVAL, "expected ',' after the quoted '%s'", text);
            free(text);
            return FERRY_EINVAL;
        }
        ferry__add_value(out, text, 1);
        free(text);
    } else {
        const char *start = s;
        while (s < end && *s != ',')
            s++;
        char *text = ferry_asprintf("%.*s", (int)(s - start), start);
        ferry__strip(text);
        int bad = !*text || strpbrk(text, "[]{}") != NULL;
        if (!bad)
            ferry__add_value(out, text, 0);
        free(text);
        if (bad)
            return ferry__fail(err, cap, FERRY_EINVAL,
                               "an empty item or a nested list (the items are numbers or strings)");
    }
    *p = s < end ? s + 1 : s;
    return 0;
}

static int ferry__parse_list(const char *t, size_t len, ferry_sweep_values *out, char *err,
                             size_t cap)
{
    const char *p = t + 1, *end = t + len - 1; /* inside the brackets */
    out->kind = FERRY_SWEEP_LIST;
    out->values = json_array();
    out->texts = json_array();
    const char *q = p;
    while (q < end && isspace((unsigned char)*q))
        q++;
    if (q == end)
        return ferry__fail(err, cap, FERRY_EINVAL, "%s: an empty list gives no values", t);
    char why[256];
    while (p < end) {
        if (ferry__list_item(&p, end, out, why, sizeof(why)) != 0)
            return ferry__fail(err, cap, FERRY_EINVAL, "%s: %s", t, why);
        if (p == end && p[-1] == ',')
            return ferry__fail(err, cap, FERRY_EINVAL, "%s: an empty item after the last ','", t);
    }
    return 0;
}

/* The arguments of name(a, b, c): numbers, and a last word where `word`
 * is given; how many there were, or -1 with why. */
static int ferry__call_args(const char *args, double *nums, int max_nums, char *word,
                            size_t word_cap, char *why, size_t cap)
{
    char *copy = ferry_strdup(args);
    int n = 0, rc = 0;
    char *save = NULL;
    if (!*ferry__strip(copy)) {
        free(copy);
        return 0;
    }
    for (char *tok = strtok_r(copy, ",", &save); tok && rc == 0; tok = strtok_r(NULL, ",", &save)) {
        ferry__strip(tok);
        char *end = NULL;
        errno = 0;
        double d = *tok && !strpbrk(tok, "xXnN") ? strtod(tok, &end) : 0;
        if (word && word[0]) {
            rc = ferry__why(why, cap, "unexpected '%s' after '%s'", tok, word);
        } else if (*tok && end && !*end && !errno && isfinite(d) && n < max_nums) {
            nums[n++] = d;
        } else if (word && *tok && n >= 1 && isalpha((unsigned char)*tok)) {
            snprintf(word, word_cap, "%s", tok);
        } else {
            rc = ferry__why(why, cap, "'%s' is not a number", tok);
        }
    }
    free(copy);
    return rc ? -1 : n + (word && word[0] ? 1 : 0);
}

static int ferry__parse_call(const char *t, const char *name, const char *args,
                             ferry_sweep_values *out, char *err, size_t cap)
{
    double a[4];
    char word[32] = "", why[256];
    int random = !strcmp(name, "random");
    int n = ferry__call_args(args, a, random ? 2 : 4, random ? word : NULL, sizeof(word), why,
                             sizeof(why));
    if (n < 0)
        return ferry__fail(err, cap, FERRY_EINVAL, "%s: %s", t, why);
    int rc;
    if (!strcmp(name, "linear")) {
        if (n != 3)
            return ferry__fail(err, cap, FERRY_EINVAL,
                               "%s: expected 3 numbers (start, end, step), got %d", t, n);
        rc = ferry__linear(a[0], a[1], a[2], out, why, sizeof(why));
    } else if (!strcmp(name, "logspace")) {
        if (n != 3 && n != 4)
            return ferry__fail(err, cap, FERRY_EINVAL,
                               "%s: expected 3 or 4 numbers (start, end, count[, base]), got %d", t,
                               n);
        rc = ferry__logspace(a[0], a[1], a[2], n == 4 ? a[3] : 10, 0, out, why, sizeof(why));
    } else {
        int d = word[0] ? ferry__normal_index(word, '-', '-', ferry__distributions) : 0;
        if (n < 2 || (word[0] && n != 3) || (!word[0] && n != 2))
            return ferry__fail(err, cap, FERRY_EINVAL,
                               "%s: expected min, max and a distribution (uniform, loguniform or "
                               "normal), e.g. random(0.001, 0.1, loguniform)",
                               t);
        if (d < 0)
            return ferry__fail(err, cap, FERRY_EINVAL,
                               "%s: unknown distribution '%s' (expected uniform, loguniform, "
                               "normal)",
                               t, word);
        rc = ferry__random(a[0], a[1], (ferry_distribution)d, out, why, sizeof(why));
    }
    if (rc != 0) {
        ferry_sweep_values_clear(out);
        return ferry__fail(err, cap, FERRY_EINVAL, "%s: %s", t, why);
    }
    return 0;
}

static int ferry__sweep_parse_text(const char *t, ferry_sweep_values *out, char *err, size_t cap)
{
    size_t len = strlen(t);
    if (!len)
        return ferry__fail(err, cap, FERRY_EINVAL, "no value given");
    if (t[0] == '[') {
        if (t[len - 1] != ']')
            return ferry__fail(err, cap, FERRY_EINVAL, "%s: a list ends with ']'", t);
        return ferry__parse_list(t, len, out, err, cap);
    }
    static const char *const calls[] = {"linear", "logspace", "random", NULL};
    const char *paren = strchr(t, '(');
    for (int i = 0; paren && calls[i]; i++) {
        size_t n = strlen(calls[i]);
        if ((size_t)(paren - t) != n || strncasecmp(t, calls[i], n))
            continue;
        if (t[len - 1] != ')')
            return ferry__fail(err, cap, FERRY_EINVAL, "%s: expected ')' at the end", t);
        char *args = ferry_asprintf("%.*s", (int)(len - n - 2), paren + 1);
        int rc = ferry__parse_call(t, calls[i], args, out, err, cap);
        free(args);
        return rc;
    }
    out->kind = FERRY_SWEEP_LIST; /* one value, as written */
    out->values = json_array();
    out->texts = json_array();
    ferry__add_value(out, t, 0);
    return 0;
}

int ferry_sweep_parse(const char *text, ferry_sweep_values *out, char *err, size_t err_cap)
{
    memset(out, 0, sizeof(*out));
    char *t = ferry__trimmed(text ? text : "");
    int rc = ferry__sweep_parse_text(t, out, err, err_cap);
    free(t);
    if (rc != 0)
        ferry_sweep_values_clear(out);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* A task definition's rules                                                 */

/* The rule `key` as a number into *d; `need`: a missing one is an error. */
static int ferry__rule_number(const json_t *rules, const char *key, int need, double *d,
                              const char **bad, char *why, size_t cap)
{
    const json_t *v = json_object_get(rules, key);
    if (!v && !need)
        return 1; /* absent */
    *bad = key;
    if (!v)
        return ferry__why(why, cap, "missing required '%s'", key);
    if (ferry__json_number(v, d) != 0) {
        char *t = ferry__atom_text(v, 0);
        ferry__why(why, cap, "%s: expected a number, got %s", key, t);
        free(t);
        return FERRY_EINVAL;
    }
    *bad = NULL;
    return 0;
}

static int ferry__rule_bool(const json_t *rules, const char *key)
{
    return json_is_true(json_object_get(rules, key));
}

/* The random style's count and seed, whole numbers. */
static int ferry__rules_count_seed(const json_t *rules, ferry_sweep_values *out, const char **bad,
                                   char *why, size_t cap)
{
    double d;
    int rc = ferry__rule_number(rules, "count", 0, &d, bad, why, cap);
    if (rc < 0)
        return rc;
    if (rc == 0 && (!ferry__is_integral(d) || d < 1)) {
        *bad = "count";
        return ferry__why(why, cap, "count must be a whole number of at least 1");
    }
    out->count = rc == 0 ? (int64_t)d : 0;
    rc = ferry__rule_number(rules, "seed", 0, &d, bad, why, cap);
    if (rc < 0)
        return rc;
    if (rc == 0 && (!ferry__is_integral(d) || d < 0)) {
        *bad = "seed";
        return ferry__why(why, cap, "seed must be a whole number of at least 0");
    }
    out->has_seed = rc == 0;
    out->seed = rc == 0 ? (uint64_t)d : 0;
    return 0;
}

static int ferry__rules_random(const json_t *rules, ferry_sweep_values *out, const char **bad,
                               char *why, size_t cap)
{
    double min, max;
    if (ferry__rule_number(rules, "min", 1, &min, bad, why, cap) != 0 ||
        ferry__rule_number(rules, "max", 1, &max, bad, why, cap) != 0)
        return FERRY_EINVAL;
    const json_t *dist = json_object_get(rules, "distribution");
    int d = dist ? ferry__normal_index(json_string_value(dist), '-', '-', ferry__distributions) : 0;
    if (d < 0) {
        *bad = "distribution";
        char *t = ferry__atom_text(dist, 0);
        ferry__why(why, cap, "unknown distribution '%s' (expected uniform, loguniform, normal)", t);
        free(t);
        return FERRY_EINVAL;
    }
    if (ferry__random(min, max, (ferry_distribution)d, out, why, cap) != 0) {
        *bad = strstr(why, "loguniform") ? "min" : "max";
        return FERRY_EINVAL;
    }
    out->integerify = ferry__rule_bool(rules, "integerify");
    return ferry__rules_count_seed(rules, out, bad, why, cap);
}

static int ferry__rules_items(const json_t *rules, ferry_sweep_values *out, const char **bad,
                              char *why, size_t cap)
{
    const json_t *items = json_object_get(rules, "items");
    *bad = "items";
    if (!items)
        return ferry__why(why, cap, "missing required 'items'");
    if (!json_is_array(items) || json_array_size(items) == 0)
        return ferry__why(why, cap, "items: expected a list of at least one value");
    size_t i;
    json_t *item;
    json_array_foreach(items, i, item)
    {
        if (json_is_array(item) || json_is_object(item) || json_is_null(item))
            return ferry__why(why, cap, "items: item #%zu is not a plain value", i + 1);
    }
    *bad = NULL;
    out->kind = FERRY_SWEEP_LIST;
    out->values = json_deep_copy(items);
    return 0;
}

/* The style's values from its rules; on error `*bad` names the rule at
 * fault (NULL: the rules as a whole) and `why` says what is wrong. */
int ferry__sweep_from_rules(ferry_sweep_style style, const json_t *rules, ferry_sweep_values *out,
                            const char **bad, char *why, size_t cap)
{
    memset(out, 0, sizeof(*out));
    *bad = NULL;
    if (!json_is_object(rules))
        return ferry__why(why, cap, "expected a mapping");
    double a, b, c, base = 10;
    int rc = FERRY_EINVAL;
    switch (style) {
    case FERRY_STYLE_SINGLE: {
        const json_t *v = json_object_get(rules, "value");
        *bad = "value";
        if (!v || json_is_null(v))
            return ferry__why(why, cap, "missing required 'value'");
        if (json_is_array(v) || json_is_object(v))
            return ferry__why(why, cap,
                              "value: expected a plain value (style multiple takes a "
                              "list of items)");
        *bad = NULL;
        out->kind = FERRY_SWEEP_LIST;
        out->values = json_array();
        json_array_append(out->values, (json_t *)v);
        return 0;
    }
    case FERRY_STYLE_MULTIPLE:
        rc = ferry__rules_items(rules, out, bad, why, cap);
        break;
    case FERRY_STYLE_LINEAR:
        if (ferry__rule_number(rules, "start", 1, &a, bad, why, cap) != 0 ||
            ferry__rule_number(rules, "end", 1, &b, bad, why, cap) != 0 ||
            ferry__rule_number(rules, "step", 1, &c, bad, why, cap) != 0)
            return FERRY_EINVAL;
        rc = ferry__linear(a, b, c, out, why, cap);
        *bad = rc ? "step" : NULL;
        break;
    case FERRY_STYLE_LOGSPACE:
        if (ferry__rule_number(rules, "start", 1, &a, bad, why, cap) != 0 ||
            ferry__rule_number(rules, "end", 1, &b, bad, why, cap) != 0 ||
            ferry__rule_number(rules, "count", 1, &c, bad, why, cap) != 0 ||
            ferry__rule_number(rules, "base", 0, &base, bad, why, cap) < 0)
            return FERRY_EINVAL;
        rc = ferry__logspace(a, b, c, base, ferry__rule_bool(rules, "integerify"), out, why, cap);
        if (rc)
            *bad = strstr(why, "base") ? "base" : strstr(why, "count") ? "count" : "end";
        break;
    case FERRY_STYLE_RANDOM:
        rc = ferry__rules_random(rules, out, bad, why, cap);
        break;
    }
    if (rc != 0)
        ferry_sweep_values_clear(out);
    return rc;
}

int ferry_task_param_values(const ferry_task_param *p, ferry_sweep_values *out, char *err,
                            size_t err_cap)
{
    const char *bad;
    char why[512];
    if (ferry__sweep_from_rules(p->style, p->rules, out, &bad, why, sizeof(why)) != 0)
        return ferry__fail(err, err_cap, FERRY_EINVAL, "parameter '%s': rules: %s", p->name, why);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Typing by the step                                                        */

typedef struct ferry__typed {
    const ferry_param_def *def; /* NULL without a step */
    json_t *values;             /* LIST: the typed values */
} ferry__typed;

/* One value for the parameter: typed and checked by its definition. */
static int ferry__type_value(const ferry_param_def *def, const json_t *v, json_t **out, char *err,
                             size_t cap)
{
    if (!def) {
        *out = json_incref((json_t *)v);
        return 0;
    }
    json_t *num = NULL;
    if (def->type == FERRY_PARAM_FLOAT && json_is_integer(v)) /* a float parameter's are reals */
        v = num = json_real((double)json_integer_value(v));
    char why[512];
    int rc = ferry__coerce_value(def, v, out, why, sizeof(why));
    json_decref(num);
    if (rc != 0)
        return ferry__fail(err, cap, FERRY_EINVAL, "parameter '%s': %s", def->name, why);
    return 0;
}

/* A drawn number for the parameter: an integer parameter's rounded, a
 * normal draw clamped to its min and max. */
static int ferry__type_draw(const ferry_param_def *def, const ferry_sweep_values *v, double d,
                            json_t **out, char *err, size_t cap)
{
    int integers = v->integerify;
    if (def && def->type == FERRY_PARAM_INTEGER) {
        integers = 1;
        d = floor(d + 0.5);
    }
    if (def && v->distribution == FERRY_DIST_NORMAL) {
        d = def->has_min && d < def->min ? def->min : d;
        d = def->has_max && d > def->max ? def->max : d;
    }
    json_t *j = ferry__number_json(d, integers);
    int rc = ferry__type_value(def, j, out, err, cap);
    json_decref(j);
    return rc;
}

static int ferry__find_def(const ferry_step *step, const char *name, const ferry_param_def **out,
                           char *err, size_t cap)
{
    *out = NULL;
    if (!step)
        return 0;
    *out = ferry__find_param(step, name);
    if (*out)
        return 0;
    return ferry__fail(err, cap, FERRY_EINVAL, "parameter '%s' is not a parameter of step '%s'",
                       name ? name : "", step->name);
}

/* A LIST parameter's values, typed once for all the points. */
static int ferry__type_list(const ferry_sweep_values *v, const ferry_param_def *def, json_t **out,
                            char *err, size_t cap)
{
    const json_t *src = def && v->texts ? v->texts : v->values;
    *out = json_array();
    size_t i;
    json_t *item;
    json_array_foreach(src, i, item)
    {
        json_t *typed;
        if (ferry__type_value(def, item, &typed, err, cap) != 0) {
            json_decref(*out);
            *out = NULL;
            return FERRY_EINVAL;
        }
        json_array_append_new(*out, typed);
    }
    return 0;
}

/* `count` draws, typed: a RANDOM parameter's values in a grid. */
static int ferry__draw_list(const ferry_sweep_param *p, const ferry_param_def *def, uint64_t seed,
                            size_t count, json_t **out, char *err, size_t cap)
{
    ferry__rng r;
    ferry__param_rng(&r, p, seed);
    *out = json_array();
    for (size_t i = 0; i < count; i++) {
        json_t *typed;
        if (ferry__type_draw(def, &p->values, ferry__draw(&r, &p->values), &typed, err, cap) != 0) {
            json_decref(*out);
            *out = NULL;
            return FERRY_EINVAL;
        }
        json_array_append_new(*out, typed);
    }
    return 0;
}

static void ferry__free_typed(ferry__typed *t, size_t n)
{
    for (size_t i = 0; t && i < n; i++)
        json_decref(t[i].values);
    free(t);
}

/* ------------------------------------------------------------------------ */
/* Grid                                                                      */

/* Every parameter's typed values; NULL, with why, when one has none. */
static ferry__typed *ferry__grid_axes(const ferry_sweep_param *params, size_t n,
                                      const ferry_step *step, uint64_t seed, char *err, size_t cap)
{
    ferry__typed *axes = ferry_xcalloc(n ? n : 1, sizeof(*axes));
    for (size_t i = 0; i < n; i++) {
        const ferry_sweep_param *p = &params[i];
        int rc = ferry__find_def(step, p->name, &axes[i].def, err, cap);
        if (rc == 0 && p->values.kind == FERRY_SWEEP_RANDOM && p->values.count < 1)
            rc = ferry__fail(err, cap, FERRY_EINVAL,
                             "parameter '%s': a random distribution has no values for a grid "
                             "(give its rules a count, or run a random search)",
                             p->name);
        else if (rc == 0 && p->values.kind == FERRY_SWEEP_RANDOM)
            rc = ferry__draw_list(p, axes[i].def, seed, (size_t)p->values.count, &axes[i].values,
                                  err, cap);
        else if (rc == 0 && p->values.kind == FERRY_SWEEP_LIST)
            rc = ferry__type_list(&p->values, axes[i].def, &axes[i].values, err, cap);
        else if (rc == 0)
            rc = ferry__fail(err, cap, FERRY_EINVAL, "parameter '%s': no values", p->name);
        if (rc == 0 && json_array_size(axes[i].values) == 0)
            rc = ferry__fail(err, cap, FERRY_EINVAL, "parameter '%s': no values", p->name);
        if (rc != 0) {
            ferry__free_typed(axes, n);
            return NULL;
        }
    }
    return axes;
}

int ferry_sweep_grid(const ferry_sweep_param *params, size_t n, const ferry_step *step,
                     uint64_t seed, size_t cap, json_t **out, char *err, size_t err_cap)
{
    *out = NULL;
    ferry__typed *axes = ferry__grid_axes(params, n, step, seed, err, err_cap);
    if (!axes)
        return FERRY_EINVAL;
    /* the size first, as a double so that no product overflows */
    double size = 1;
    for (size_t i = 0; i < n; i++)
        size *= (double)json_array_size(axes[i].values);
    if (size > (double)cap) {
        ferry__free_typed(axes, n);
        return ferry__fail(err, err_cap, FERRY_ETOOBIG,
                           "the grid has %.0f points, more than the limit of %zu", size, cap);
    }
    json_t *points = json_array();
    size_t total = (size_t)size, *at = ferry_xcalloc(n ? n : 1, sizeof(*at));
    for (size_t k = 0; k < total; k++) {
        json_t *point = json_object();
        for (size_t i = 0; i < n; i++)
            json_object_set(point, params[i].name, json_array_get(axes[i].values, at[i]));
        json_array_append_new(points, point);
        for (size_t i = n; i-- > 0;) { /* the last parameter varies fastest */
            if (++at[i] < json_array_size(axes[i].values))
                break;
            at[i] = 0;
        }
    }
    free(at);
    ferry__free_typed(axes, n);
    *out = points;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Random                                                                    */

int ferry_sweep_random(const ferry_sweep_param *params, size_t n, const ferry_step *step,
                       uint64_t seed, size_t count, json_t **out, char *err, size_t err_cap)
{
    *out = NULL;
    if (count < 1)
        return ferry__fail(err, err_cap, FERRY_EINVAL,
                           "a random search needs a count of at least 1");
    ferry__typed *t = ferry_xcalloc(n ? n : 1, sizeof(*t));
    ferry__rng *rngs = ferry_xcalloc(n ? n : 1, sizeof(*rngs));
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        rc = ferry__find_def(step, params[i].name, &t[i].def, err, err_cap);
        if (rc == 0 && params[i].values.kind == FERRY_SWEEP_LIST)
            rc = ferry__type_list(&params[i].values, t[i].def, &t[i].values, err, err_cap);
        if (rc == 0 && params[i].values.kind == FERRY_SWEEP_LIST &&
            json_array_size(t[i].values) == 0)
            rc = ferry__fail(err, err_cap, FERRY_EINVAL, "parameter '%s': no values",
                             params[i].name);
        ferry__param_rng(&rngs[i], &params[i], seed);
    }
    json_t *points = rc == 0 ? json_array() : NULL;
    for (size_t k = 0; rc == 0 && k < count; k++) {
        json_t *point = json_object();
        json_array_append_new(points, point);
        for (size_t i = 0; i < n && rc == 0; i++) {
            const ferry_sweep_values *v = &params[i].values;
            json_t *value = NULL;
            if (v->kind == FERRY_SWEEP_LIST) { /* one of its values, evenly */
                size_t m = json_array_size(t[i].values);
                size_t pick = (size_t)(ferry__rng_unit(&rngs[i]) * (double)m);
                value = json_incref(json_array_get(t[i].values, pick < m ? pick : m - 1));
            } else {
                rc = ferry__type_draw(t[i].def, v, ferry__draw(&rngs[i], v), &value, err, err_cap);
            }
            if (value)
                json_object_set_new(point, params[i].name, value);
        }
    }
    free(rngs);
    ferry__free_typed(t, n);
    if (rc != 0) {
        json_decref(points);
        return rc;
    }
    *out = points;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Manual                                                                    */

int ferry_sweep_manual(const json_t *parameter_sets, const ferry_step *step, json_t **out,
                       char *err, size_t err_cap)
{
    *out = NULL;
    if (!json_is_array(parameter_sets) || json_array_size(parameter_sets) == 0)
        return ferry__fail(err, err_cap, FERRY_EINVAL,
                           "parameter sets: expected a list of at least one mapping");
    json_t *points = json_array();
    size_t i;
    json_t *set;
    json_array_foreach(parameter_sets, i, set)
    {
        if (!json_is_object(set)) {
            json_decref(points);
            return ferry__fail(err, err_cap, FERRY_EINVAL,
                               "parameter set #%zu: expected a mapping of parameter names to "
                               "values",
                               i + 1);
        }
        json_t *point = json_object(), *value;
        json_array_append_new(points, point);
        const char *name;
        json_object_foreach(set, name, value)
        {
            const ferry_param_def *def;
            json_t *typed;
            char why[512];
            if (ferry__find_def(step, name, &def, why, sizeof(why)) != 0 ||
                ferry__type_value(def, value, &typed, why, sizeof(why)) != 0) {
                json_decref(points);
                return ferry__fail(err, err_cap, FERRY_EINVAL, "parameter set #%zu: %s", i + 1,
                                   why);
            }
            json_object_set_new(point, name, typed);
        }
    }
    *out = points;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* A task definition's points                                                */

int ferry_task_points(const ferry_task_def *task, const ferry_step *step, uint64_t seed, size_t cap,
                      json_t **out, char *err, size_t err_cap)
{
    *out = NULL;
    if (task->type == FERRY_TASK_BAYESIAN_TPE)
        return ferry__fail(err, err_cap, FERRY_ENOTSUP,
                           "a bayesian_tpe task proposes its points as results arrive");
    if (task->type == FERRY_TASK_DISTRIBUTED)
        return ferry__fail(err, err_cap, FERRY_ENOTSUP,
                           "a distributed task runs members together, not points");
    if (task->type == FERRY_TASK_MANUAL_SEARCH && task->parameter_sets)
        return ferry_sweep_manual(task->parameter_sets, step, out, err, err_cap);
    if (task->type == FERRY_TASK_RANDOM_SEARCH && task->execution_count < 1)
        return ferry__fail(err, err_cap, FERRY_EINVAL, "a random search needs an execution-count");
    if (task->type == FERRY_TASK_RANDOM_SEARCH && (uint64_t)task->execution_count > cap)
        return ferry__fail(err, err_cap, FERRY_ETOOBIG,
                           "an execution-count of %lld is more than the limit of %zu",
                           (long long)task->execution_count, cap);
    ferry_sweep_param *params = ferry_xcalloc(task->n_params ? task->n_params : 1, sizeof(*params));
    int rc = 0;
    for (size_t i = 0; i < task->n_params && rc == 0; i++) {
        params[i].name = task->params[i].name;
        rc = ferry_task_param_values(&task->params[i], &params[i].values, err, err_cap);
    }
    if (rc == 0 && task->type == FERRY_TASK_RANDOM_SEARCH)
        rc = ferry_sweep_random(params, task->n_params, step, seed, (size_t)task->execution_count,
                                out, err, err_cap);
    else if (rc == 0)
        rc = ferry_sweep_grid(params, task->n_params, step, seed, cap, out, err, err_cap);
    for (size_t i = 0; i < task->n_params; i++)
        ferry_sweep_values_clear(&params[i].values);
    free(params);
    return rc;
}
