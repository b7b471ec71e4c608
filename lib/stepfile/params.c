/* Parameters: their values, with one set of rules for defaults in the file
 * and for the values users give (so a default can never be something a user
 * can't type), and the table of a parameter's keys.
 */
#include "stepfile_int.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <ferry/error.h>

#include "util.h"

/* ------------------------------------------------------------------------ */
/* Values                                                                    */

/* A value typed on a command line: `parse` reads the trimmed text; "" is no
 * value, and what it can't read (or a value that isn't text) is not `noun`. */
typedef int (*ferry__parse_fn)(const char *text, json_t **out);

static int ferry__from_text(const json_t *v, ferry__parse_fn parse, const char *noun, json_t **out,
                            char *why, size_t cap)
{
    char *text = ferry__atom_text(v, 0);
    char *t = json_is_string(v) ? ferry__trimmed(text) : NULL;
    int rc = FERRY_EINVAL;
    if (t && !*t)
        ferry__why(why, cap, "No value supplied");
    else if (t && parse(t, out) == 0)
        rc = 0;
    else
        ferry__why(why, cap, "%s is not %s", text, noun);
    free(t);
    free(text);
    return rc;
}

static int ferry__parse_integer(const char *t, json_t **out)
{
    char *end = NULL;
    errno = 0;
    long long ll = strtoll(t, &end, 10);
    if (errno || !end || *end)
        return FERRY_EINVAL;
    *out = json_integer(ll);
    return 0;
}

static int ferry__parse_float(const char *t, json_t **out)
{
    char *end = NULL;
    if (strpbrk(t, "xXnN")) /* strtod also reads hex, "inf" and "nan": none is a number here */
        return FERRY_EINVAL;
    errno = 0;
    double d = strtod(t, &end);
    if (errno || !end || *end || !isfinite(d))
        return FERRY_EINVAL;
    *out = json_real(d);
    return 0;
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
    return ferry__from_text(v, ferry__parse_integer, "an integer", out, why, cap);
}

static int ferry__to_float(const json_t *v, json_t **out, char *why, size_t cap)
{
    if (json_is_number(v)) { /* an integer stays one, as valohai-yaml keeps it: 1000, not 1000.0 */
        *out = json_incref((json_t *)v);
        return 0;
    }
    return ferry__from_text(v, ferry__parse_float, "a floating-point number", out, why, cap);
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
    int rc = FERRY_EINVAL;
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
    /* As Python's str() makes it: 5 for a string parameter is "5", a YAML
     * `yes` or JSON true is "True", 1.0 is "1.0" (issue 18, point 10). */
    char *text = ferry__atom_text(v, 1);
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
    return FERRY_EINVAL;
}

static int ferry__coerce_checked(const ferry_param_def *p, const json_t *v, json_t **out, char *why,
                                 size_t cap)
{
    if (ferry__coerce_atom(p, v, out, why, cap) != 0)
        return FERRY_EINVAL;
    if (ferry__check_atom(p, *out, why, cap) != 0) {
        json_decref(*out);
        *out = NULL;
        return FERRY_EINVAL;
    }
    return 0;
}

/* A whole value: an atom, or a list for a `multiple` parameter (where a
 * single atom becomes a list of one). */
int ferry__coerce_value(const ferry_param_def *p, const json_t *v, json_t **out, char *why,
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
                return FERRY_EINVAL;
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
        return FERRY_EINVAL;
    if (p->multiple == FERRY_MULTIPLE_NONE) {
        *out = atom;
        return 0;
    }
    *out = json_array();
    json_array_append_new(*out, atom);
    return 0;
}

/* ------------------------------------------------------------------------ */

/* ------------------------------------------------------------------------ */
/* The parameter table                                                       */

static void ferry__param_init(void *obj)
{
    ferry_param_def *p = obj;
    p->multiple_separator = ferry_strdup(",");
}

static void ferry__param_type(ferry__walk *w, const ferry__field *f, const ferry__value *v)
{
    (void)f;
    ferry_param_def *p = w->obj;
    p->type = (ferry_param_type)v->index; /* the values are in the enum's order */
}

static void ferry__param_pass_as(ferry__walk *w, const ferry__field *f, const ferry__value *v)
{
    if (*v->text) /* "" is the default --{name}={value} */
        ferry__keep_str(w, f, v);
}

static void ferry__param_min(ferry__walk *w, const ferry__field *f, const ferry__value *v)
{
    (void)f;
    ferry_param_def *p = w->obj;
    p->has_min = 1;
    p->min = v->number;
}

static void ferry__param_max(ferry__walk *w, const ferry__field *f, const ferry__value *v)
{
    (void)f;
    ferry_param_def *p = w->obj;
    p->has_max = 1;
    p->max = v->number;
    if (p->has_min && p->min > p->max)
        ferry__err(w->c, v->line, w->label, "max is smaller than min: no value could pass");
}

static void ferry__param_multiple(ferry__walk *w, const ferry__field *f, const ferry__value *v)
{
    (void)f;
    ferry_param_def *p = w->obj;
    p->multiple = (ferry_param_multiple)v->index;
    if (p->multiple && p->type == FERRY_PARAM_FLAG)
        ferry__err(w->c, v->line, w->label, "a flag can't take multiple values");
}

static void ferry__param_separator(ferry__walk *w, const ferry__field *f, const ferry__value *v)
{
    if (*v->text)
        ferry__keep_str(w, f, v);
}

static void ferry__param_choices(ferry__walk *w, const ferry__field *f, const ferry__value *v)
{
    ferry_param_def *p = w->obj;
    if (ferry__seq_len(v->node) == 0 || p->type == FERRY_PARAM_FLAG)
        return;
    p->choices = json_array();
    for (size_t i = 0; i < ferry__seq_len(v->node); i++) {
        yaml_node_t *n = ferry__seq_item(w->c, v->node, i);
        json_t *raw = n && n->type == YAML_SCALAR_NODE ? ferry__scalar_json(n) : NULL, *typed;
        char why[256];
        if (!raw)
            ferry__err(w->c, n ? ferry__line(n) : v->line, w->label, "%s: expected plain values",
                       f->key);
        else if (ferry__coerce_atom(p, raw, &typed, why, sizeof(why)) != 0)
            ferry__err(w->c, ferry__line(n), w->label, "%s: %s", f->key, why);
        else
            json_array_append_new(p->choices, typed);
        json_decref(raw);
    }
}

/* The default, checked like a user's value so that a bad one is reported at
 * its line rather than when someone runs the step. */
static void ferry__param_default(ferry__walk *w, const ferry__field *f, const ferry__value *v)
{
    ferry_param_def *p = w->obj;
    if (ferry__kind_of(v->node) == FERRY__NULL)
        return;
    json_t *raw = ferry__to_json(w->c, v->node, 0);
    const char *text = ferry__kind_of(v->node) == FERRY__FLOAT ? ferry__text(v->node) : NULL;
    if (text && !ferry__yaml_float_pyyaml_str(text))
        text = NULL;
    if (text && p->type == FERRY_PARAM_STRING) { /* PyYAML's str, as written */
        json_decref(raw);
        raw = json_string(text);
    } else if (text && p->type == FERRY_PARAM_FLOAT) {
        free(p->default_text);
        p->default_text = ferry_strdup(text);
    }
    char why[256];
    if (!raw)
        ferry__err(w->c, v->line, w->label, "%s: too deeply nested or too large", f->key);
    else if (json_is_array(raw) && p->multiple == FERRY_MULTIPLE_NONE)
        ferry__err(w->c, v->line, w->label,
                   "%s: a list needs 'multiple: repeat' or 'multiple: separate'", f->key);
    else if (ferry__coerce_value(p, raw, &p->default_value, why, sizeof(why)) != 0) {
        free(p->default_error); /* a warning in valohai-yaml: see default_error */
        p->default_error =
            ferry_asprintf("%s:%d: %s: %s: %s", w->c->path, v->line, w->label, f->key, why);
    }
    json_decref(raw);
}

static void ferry__param_done(ferry__walk *w)
{
    ferry_param_def *p = w->obj;
    if (p->type == FERRY_PARAM_FLAG)
        p->optional = 1; /* a flag is off unless set */
}

static const char *const ferry__param_types[] = {"string", "integer", "float", "flag", NULL};
static const char *const ferry__multiples[] = {"none", "repeat", "separate", NULL};

#define FERRY__PARAM(member) offsetof(ferry_param_def, member)

/* In this order: the type decides how min, max, choices and the default
 * read, and `multiple` whether the default may be a list. */
static const ferry__field ferry__param_fields[] = {
    {"name", FERRY__F_STR, .flags = FERRY__REQUIRED, .fn = ferry__keep_str,
     .offset = FERRY__PARAM(name)},
    {"type", FERRY__F_ENUM, .fn = ferry__param_type, .values = ferry__param_types},
    {"optional", FERRY__F_BOOL, .fn = ferry__keep_bool, .offset = FERRY__PARAM(optional)},
    {"pass-as", FERRY__F_TEXT, .fn = ferry__param_pass_as, .offset = FERRY__PARAM(pass_as)},
    {"pass-true-as", FERRY__F_TEXT, .fn = ferry__keep_str, .offset = FERRY__PARAM(pass_true_as)},
    {"pass-false-as", FERRY__F_TEXT, .fn = ferry__keep_str, .offset = FERRY__PARAM(pass_false_as)},
    {"description", FERRY__F_TEXT, .fn = ferry__keep_str, .offset = FERRY__PARAM(description)},
    {"min", FERRY__F_NUMBER, .fn = ferry__param_min},
    {"max", FERRY__F_NUMBER, .fn = ferry__param_max},
    {"multiple", FERRY__F_ENUM, .flags = FERRY__NOCASE, .fn = ferry__param_multiple,
     .values = ferry__multiples},
    {"multiple-separator", FERRY__F_TEXT, .fn = ferry__param_separator,
     .offset = FERRY__PARAM(multiple_separator)},
    {"choices", FERRY__F_SEQ, .fn = ferry__param_choices},
    {"default", FERRY__F_ANY, .fn = ferry__param_default},
    FERRY__CHECKED("widget", FERRY__F_ANY), /* valohai's UI only */
    FERRY__CHECKED("category", FERRY__F_ANY),
    FERRY__FIELDS_END,
};

const ferry__object ferry__param_object = {
    .what = "parameter",
    .fields = ferry__param_fields,
    .closed = 1,
    .unique = 1,
    .shape = "a mapping with at least 'name'",
    .size = sizeof(ferry_param_def),
    .init = ferry__param_init,
    .done = ferry__param_done,
};
