/* Collected errors, labels, and the field-table walker.
 *
 * Every problem found is collected with its line, so that one run of `ferry`
 * shows all the mistakes of a file at once, in file order. Each YAML object
 * of the schema is a table of fields (stepfile_int.h); ferry__walk_node reads
 * each field as its type says, hands the value to the field's handler, and
 * refuses keys that are not in a closed table.
 */
#include "stepfile_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <ferry/error.h>

#include "util.h"

/* ------------------------------------------------------------------------ */
/* Collected errors                                                          */

/* "PATH:LINE: LABEL: message" among the messages; the text, or NULL when
 * there are too many already. */
static const char *ferry__add_msg(ferry__ctx *c, int line, const char *label, const char *fmt,
                                  va_list ap)
{
    if (c->n_msgs == FERRY__MAX_MSGS)
        return NULL;
    ferry__buf b = {0};
    ferry__buf_printf(&b, "%s:%d: ", c->path, line);
    if (label && *label)
        ferry__buf_printf(&b, "%s: ", label);
    ferry__buf_vprintf(&b, fmt, ap);
    c->msgs[c->n_msgs].line = line;
    c->msgs[c->n_msgs].text = ferry__buf_take(&b);
    return c->msgs[c->n_msgs++].text;
}

void ferry__err(ferry__ctx *c, int line, const char *label, const char *fmt, ...)
{
    c->n_errors++;
    va_list ap;
    va_start(ap, fmt);
    ferry__add_msg(c, line, label, fmt, ap);
    va_end(ap);
}

void ferry__broken(ferry__ctx *c, int line, const char *label, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    const char *text = ferry__add_msg(c, line, label, fmt, ap);
    va_end(ap);
    if (text && !c->flow_broken)
        c->flow_broken = ferry_strdup(text);
}

/* All messages, in file order (steps are checked before pipelines, which
 * need every step), one a line, into err. */
void ferry__report(ferry__ctx *c, char *err, size_t err_cap)
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

void ferry__ctx_free(ferry__ctx *c)
{
    for (size_t i = 0; i < c->n_msgs; i++)
        free(c->msgs[i].text);
    free(c->task_names);
    free(c->flow_broken);
}

/* ------------------------------------------------------------------------ */
/* Labels                                                                    */

char *ferry__label(const char *kind, const char *name, int line)
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

/* ------------------------------------------------------------------------ */
/* Reading one field                                                         */

/* What a null value (`key:` or `key: ~`) means: as if the key were absent
 * (so a required one is missing), nothing at all, a wrong type, or a value
 * for the handler to judge. */
enum { FERRY__NULL_ABSENT, FERRY__NULL_SKIP, FERRY__NULL_WRONG, FERRY__NULL_PASS };

static const struct {
    const char *expected; /* "expected X, got Y" */
    int null_optional;    /* a null value of an optional field */
    int null_required;    /* of a required one */
} ferry__types[] = {
    [FERRY__F_ANY] = {NULL, FERRY__NULL_PASS, FERRY__NULL_PASS},
    [FERRY__F_STR] = {"a string", FERRY__NULL_WRONG, FERRY__NULL_WRONG},
    [FERRY__F_TEXT] = {"a string", FERRY__NULL_ABSENT, FERRY__NULL_ABSENT},
    [FERRY__F_ENUM] = {"a string", FERRY__NULL_ABSENT, FERRY__NULL_ABSENT},
    [FERRY__F_BOOL] = {"true or false", FERRY__NULL_ABSENT, FERRY__NULL_ABSENT},
    [FERRY__F_NUMBER] = {"a number", FERRY__NULL_ABSENT, FERRY__NULL_ABSENT},
    [FERRY__F_DURATION] = {NULL, FERRY__NULL_ABSENT, FERRY__NULL_ABSENT},
    [FERRY__F_SEQ] = {"a list", FERRY__NULL_SKIP, FERRY__NULL_SKIP}, /* an empty list */
    [FERRY__F_MAP] = {"a mapping", FERRY__NULL_SKIP, FERRY__NULL_WRONG},
};

/* What reading a field gave. */
enum { FERRY__R_FOUND, FERRY__R_ABSENT, FERRY__R_NONE /* reported, or nothing to do */ };

static int ferry__wrong_type(ferry__walk *w, const ferry__field *f, const ferry__value *v)
{
    char what[80];
    ferry__kind k = ferry__kind_of(v->node);
    /* `image: yes` and `command: 8` are YAML 1.1 booleans and numbers */
    int quote =
        f->type == FERRY__F_STR && (k == FERRY__BOOL || k == FERRY__INT || k == FERRY__FLOAT);
    if (f->type == FERRY__F_DURATION)
        ferry__err(w->c, v->line, w->label,
                   "%s: can't read %s as a duration (e.g. 90, '30m', '1h 30m', '2d')", f->key,
                   ferry__describe(v->node, what, sizeof(what)));
    else
        ferry__err(w->c, v->line, w->label, "%s: expected %s, got %s%s", f->key,
                   ferry__types[f->type].expected, ferry__describe(v->node, what, sizeof(what)),
                   quote ? "; put it in quotes" : "");
    return FERRY__R_NONE;
}

static int ferry__read_enum(ferry__walk *w, const ferry__field *f, ferry__value *v)
{
    for (size_t i = 0; f->values[i]; i++) {
        int same = f->flags & FERRY__NOCASE ? !strcasecmp(v->text, f->values[i])
                                            : !strcmp(v->text, f->values[i]);
        if (same) {
            v->index = i;
            return FERRY__R_FOUND;
        }
    }
    char *list = ferry__join_list(f->values);
    ferry__err(w->c, v->line, w->label, "unknown %s '%s' (expected %s)", f->key, v->text, list);
    free(list);
    return FERRY__R_NONE;
}

/* Numbers are seconds, read as YAML reads them; text is a duration. */
static int ferry__read_duration(ferry__walk *w, const ferry__field *f, ferry__value *v)
{
    ferry__kind k = ferry__kind_of(v->node);
    double d = -1;
    int bad;
    if (k == FERRY__INT || k == FERRY__FLOAT)
        bad = ferry__node_number(v->node, &d) != 0 || d < 0 || d > 1e15;
    else
        bad = k != FERRY__STR || ferry_duration_parse(ferry__text(v->node), &v->seconds) != 0;
    if (bad)
        return ferry__wrong_type(w, f, v);
    if (d >= 0)
        v->seconds = (int64_t)(d + 0.5);
    return FERRY__R_FOUND;
}

static int ferry__read(ferry__walk *w, const ferry__field *f, const ferry__pair *p, ferry__value *v)
{
    yaml_node_t *n = p->value;
    *v = (ferry__value){.node = n, .line = ferry__line(n ? n : p->knode)};
    if (ferry__kind_of(n) == FERRY__NULL) {
        int what = f->flags & FERRY__REQUIRED ? ferry__types[f->type].null_required
                                              : ferry__types[f->type].null_optional;
        if (what == FERRY__NULL_ABSENT)
            return FERRY__R_ABSENT;
        if (what == FERRY__NULL_SKIP)
            return FERRY__R_NONE;
        if (what == FERRY__NULL_WRONG)
            return ferry__wrong_type(w, f, v);
        return FERRY__R_FOUND;
    }
    switch (f->type) {
    case FERRY__F_ANY:
        return FERRY__R_FOUND;
    case FERRY__F_STR:
        if (ferry__kind_of(n) != FERRY__STR)
            return ferry__wrong_type(w, f, v);
        if (strlen(ferry__text(n)) != n->data.scalar.length) {
            ferry__err(w->c, v->line, w->label, "%s: contains a NUL character", f->key);
            return FERRY__R_NONE;
        }
        v->text = ferry__text(n);
        return FERRY__R_FOUND;
    case FERRY__F_TEXT:
    case FERRY__F_ENUM:
        if (n->type != YAML_SCALAR_NODE)
            return ferry__wrong_type(w, f, v);
        v->text = ferry__text(n);
        return f->type == FERRY__F_ENUM ? ferry__read_enum(w, f, v) : FERRY__R_FOUND;
    case FERRY__F_BOOL:
        if (ferry__kind_of(n) != FERRY__BOOL)
            return ferry__wrong_type(w, f, v);
        v->boolean = ferry__scalar_bool(n);
        return FERRY__R_FOUND;
    case FERRY__F_NUMBER:
        return ferry__node_number(n, &v->number) == 0 ? FERRY__R_FOUND : ferry__wrong_type(w, f, v);
    case FERRY__F_DURATION:
        return ferry__read_duration(w, f, v);
    case FERRY__F_SEQ:
        return n->type == YAML_SEQUENCE_NODE ? FERRY__R_FOUND : ferry__wrong_type(w, f, v);
    case FERRY__F_MAP:
        return n->type == YAML_MAPPING_NODE ? FERRY__R_FOUND : ferry__wrong_type(w, f, v);
    }
    return FERRY__R_NONE;
}

/* "cache-volumes (line 12)", or "input 'data': keep-directories (line 9)"
 * for a key of an object inside the step, added to its unused_keys. */
static void ferry__note_unused(ferry__walk *w, const ferry__field *f, const ferry__value *v)
{
    ferry_step *s = w->c->step;
    if (s == NULL)
        return;
    const char *inner = strstr(w->label, ": "); /* past "step 'train'" */
    char *note = ferry_asprintf("%s%s%s (line %d)", inner ? inner + 2 : "", inner ? ": " : "",
                                f->key, v->line);
    char *all = s->unused_keys ? ferry_asprintf("%s, %s", s->unused_keys, note) : note;
    if (all != note)
        free(note);
    free(s->unused_keys);
    s->unused_keys = all;
}

void ferry__walk_field(ferry__walk *w, const ferry__field *f)
{
    const ferry__pair *p = ferry__map_find(&w->m, f->key);
    ferry__value v;
    int rc = p ? ferry__read(w, f, p, &v) : FERRY__R_ABSENT;
    if (rc == FERRY__R_ABSENT && (f->flags & FERRY__REQUIRED))
        ferry__err(w->c, w->m.line, w->label, "missing required '%s'", f->key);
    else if (rc == FERRY__R_FOUND && f->fn)
        f->fn(w, f, &v);
    if (rc == FERRY__R_FOUND && (f->flags & FERRY__UNUSED))
        ferry__note_unused(w, f, &v);
}

void ferry__walk_fields(ferry__walk *w, const ferry__field *fields)
{
    for (const ferry__field *f = fields; f->key; f++)
        ferry__walk_field(w, f);
}

/* ------------------------------------------------------------------------ */
/* Unknown keys                                                              */

static const ferry__field *ferry__field_of(const ferry__field *fields, const char *key)
{
    for (const ferry__field *f = fields; f->key; f++)
        if (!strcmp(f->key, key))
            return f;
    return NULL;
}

/* Keys outside a closed table are errors: valohai refuses them too, and a
 * typo such as `time-limt` would otherwise be silently ignored. */
static void ferry__check_keys(ferry__walk *w, const ferry__field *fields)
{
    for (size_t i = 0; i < w->m.n; i++) {
        const char *key = w->m.p[i].key;
        if (ferry__field_of(fields, key))
            continue;
        const char *best = NULL;
        size_t best_d = 3;
        for (const ferry__field *f = fields; f->key; f++) {
            size_t d = ferry__distance(key, f->key);
            if (d < best_d)
                best = f->key, best_d = d;
        }
        int line = ferry__line(w->m.p[i].knode);
        if (best)
            ferry__err(w->c, line, w->label, "unknown key '%s' (did you mean '%s'?)", key, best);
        else
            ferry__err(w->c, line, w->label, "unknown key '%s'", key);
    }
}

/* ------------------------------------------------------------------------ */
/* Walking objects                                                           */

void ferry__walk_node(ferry__ctx *c, yaml_node_t *node, int line, const char *label,
                      const ferry__object *o, void *obj, const void *arg)
{
    ferry__walk w = {.c = c, .node = node, .label = label, .obj = obj, .arg = arg};
    ferry__map_load(c, node, label, &w.m);
    if (line)
        w.m.line = line;
    ferry__walk_fields(&w, o->fields);
    if (o->done)
        o->done(&w);
    if (o->closed)
        ferry__check_keys(&w, o->fields);
    ferry__map_free(&w.m);
}

void ferry__walk_top(ferry__ctx *c, yaml_node_t *key, yaml_node_t *val, const ferry__object *o,
                     void *obj)
{
    char *label = ferry__label(o->what, ferry__peek_name(c, val), ferry__line(key));
    if (o->init && obj)
        o->init(obj);
    ferry__walk_node(c, val, ferry__line(key), label, o, obj, NULL);
    free(label);
}

void ferry__walk_object(ferry__walk *w, const ferry__field *f, const ferry__value *v)
{
    char *label = ferry_asprintf("%s: %s", w->label, f->key);
    ferry__walk_node(w->c, v->node, 0, label, f->object, NULL, w->arg);
    free(label);
}

/* Every item struct of a unique list starts with its `char *name`. */
static const char *ferry__item_name(const char *item)
{
    return *(char *const *)(const void *)item;
}

/* Each item labelled "<label>: parameter 'x'" (or "parameter #2"). */
static void ferry__walk_items(ferry__walk *w, const ferry__value *v, const ferry__object *o,
                              void **items, size_t *n_items)
{
    size_t n = ferry__seq_len(v->node), size = o->size;
    char *arr = size ? ferry_xcalloc(n ? n : 1, size) : NULL;
    if (items)
        *items = arr;
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *item = ferry__seq_item(w->c, v->node, i);
        char *obj = arr ? arr + i * size : NULL, what[80];
        if (o->init && obj)
            o->init(obj);
        if (n_items)
            (*n_items)++;
        if (ferry__kind_of(item) != FERRY__MAP) {
            ferry__err(w->c, item ? ferry__line(item) : 1, w->label, "%s #%zu: expected %s, got %s",
                       o->what, i + 1, o->shape, ferry__describe(item, what, sizeof(what)));
            continue;
        }
        char *label = ferry__sublabel(w->label, o->what, ferry__peek_name(w->c, item), i);
        ferry__walk_node(w->c, item, 0, label, o, obj, w->arg);
        free(label);
        const char *name = o->unique && obj ? ferry__item_name(obj) : NULL;
        for (size_t j = 0; name && j < i; j++) {
            const char *other = ferry__item_name(arr + j * size);
            if (other && !strcmp(other, name))
                ferry__err(w->c, ferry__line(item), w->label, "%s '%s' is defined twice", o->what,
                           name);
        }
    }
}

/* ------------------------------------------------------------------------ */
/* Handlers that keep a value in the object                                  */

#define FERRY__AT(w, offset, type) ((type *)(void *)((char *)(w)->obj + (offset)))

void ferry__keep_items(ferry__walk *w, const ferry__field *f, const ferry__value *v)
{
    int kept = f->object->size != 0;
    ferry__walk_items(w, v, f->object, kept ? FERRY__AT(w, f->offset, void *) : NULL,
                      kept ? FERRY__AT(w, f->count_offset, size_t) : NULL);
}

void ferry__keep_str(ferry__walk *w, const ferry__field *f, const ferry__value *v)
{
    char **dst = FERRY__AT(w, f->offset, char *);
    free(*dst);
    *dst = ferry_strdup(v->text);
}

void ferry__keep_ref(ferry__walk *w, const ferry__field *f, const ferry__value *v)
{
    *FERRY__AT(w, f->offset, const char *) = v->text;
}

void ferry__keep_bool(ferry__walk *w, const ferry__field *f, const ferry__value *v)
{
    *FERRY__AT(w, f->offset, int) = v->boolean;
}

void ferry__keep_seconds(ferry__walk *w, const ferry__field *f, const ferry__value *v)
{
    *FERRY__AT(w, f->offset, int64_t) = v->seconds;
}
