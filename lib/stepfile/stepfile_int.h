/* The step-file module's private declarations, shared by its files:
 *
 *   buf.c         growable strings (the module's own; to be replaced by the SDK's buffer)
 *   text.c        messages, word lists, numbers and JSON atoms as text, shell quoting, durations
 *   yaml.c        YAML 1.1 scalars as PyYAML reads them, merge keys, loading the document
 *   fields.c      collected errors, labels, and the field-table walker
 *   conditions.c  the syntax check of stop-condition and action `if:` expressions
 *   params.c      parameter values (coercion, min/max/choices) and the parameter table
 *   steps.c       the step, input and environment-variable tables; freeing a step
 *   flows.c       the pipeline, node, edge, task and endpoint tables; pipeline and task definitions
 *   sweep.c       sweep values (the CLI's grammar, a task's rules) and grid/random/manual points
 *   tpe.c         the Bayesian optimiser (tree-structured Parzen estimator) of bayesian_tpe tasks
 *   command.c     resolving what a user gives, building the command
 *   stepfile.c    the top level: items, parsing a file, finding steps
 *
 * Every YAML object of the schema is one ferry__object: a table of its keys,
 * what type each must be and the handler that takes the value. One function,
 * ferry__walk_node, walks any of them; a key is added in its table only.
 */
#ifndef FERRY_STEPFILE_INT_H
#define FERRY_STEPFILE_INT_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <yaml.h>

#include "ferry/buf.h"
#include "stepfile.h"

/* ------------------------------------------------------------------------ */
/* buf.c: growable strings: the SDK's ferry_buf, where running out of      */
/* memory aborts as everywhere in the host (ferry_xcheck)                   */

typedef ferry_buf ferry__buf;

void ferry__buf_add(ferry__buf *b, const char *s, size_t n);
void ferry__buf_puts(ferry__buf *b, const char *s);
void ferry__buf_vprintf(ferry__buf *b, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));
void ferry__buf_printf(ferry__buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The buffer's string (never NULL); the buffer is left empty. */
char *ferry__buf_take(ferry__buf *b);

/* ------------------------------------------------------------------------ */
/* text.c                                                                    */

/* Write a message into a caller's (err, err_cap) and return `code`. */
int ferry__fail(char *err, size_t err_cap, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Same for the short "why" texts of value validation; returns FERRY_EINVAL. */
int ferry__why(char *why, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int ferry__in_list(const char *s, const char *const *list);
/* "a, b, c" of a NULL-terminated list, for "expected ..." messages. */
char *ferry__join_list(const char *const *list);
void ferry__fmt_real(double d, char *buf, size_t cap);
void ferry__python_float(double d, char *buf, size_t cap);
char *ferry__atom_text(const json_t *v, int python_bools);
char *ferry__python_list(const json_t *list);
size_t ferry__distance(const char *a, const char *b);
/* A copy without the blanks around; ferry__strip does it in place. */
char *ferry__trimmed(const char *s);
char *ferry__strip(char *s);

/* ------------------------------------------------------------------------ */
/* fields.c: collected errors                                                */

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
    char *flow_broken; /* the first ferry__broken of the pipeline or task being read */
    ferry_step *step;  /* the step being read, for its unused_keys */
} ferry__ctx;

/* What valohai-yaml only warns of in a pipeline or task: it becomes that
 * object's `broken` (ferry_flow), and is listed with the errors when the
 * file has some, but does not make the file unusable. */
void ferry__broken(ferry__ctx *c, int line, const char *label, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void ferry__err(ferry__ctx *c, int line, const char *label, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void ferry__report(ferry__ctx *c, char *err, size_t err_cap);
void ferry__ctx_free(ferry__ctx *c);

/* ------------------------------------------------------------------------ */
/* yaml.c: nodes                                                             */

typedef enum ferry__kind {
    FERRY__NULL,
    FERRY__BOOL,
    FERRY__INT,
    FERRY__FLOAT,
    FERRY__STR,
    FERRY__SEQ,
    FERRY__MAP,
} ferry__kind;

yaml_node_t *ferry__node(ferry__ctx *c, int id);
int ferry__line(const yaml_node_t *n);
const char *ferry__text(const yaml_node_t *n);
ferry__kind ferry__kind_of(const yaml_node_t *n);
/* "a boolean (yes)" etc., for "expected X, got Y" messages. */
const char *ferry__describe(const yaml_node_t *n, char *buf, size_t cap);
int ferry__scalar_bool(const yaml_node_t *n);
int ferry__node_number(const yaml_node_t *n, double *out);
json_t *ferry__scalar_json(const yaml_node_t *n);
int ferry__yaml_float_pyyaml_str(const char *s);
json_t *ferry__to_json(ferry__ctx *c, yaml_node_t *n, int depth);
size_t ferry__seq_len(const yaml_node_t *seq);
yaml_node_t *ferry__seq_item(ferry__ctx *c, const yaml_node_t *seq, size_t i);
/* The value of the mapping's own `name: <string>`, or NULL. */
const char *ferry__peek_name(ferry__ctx *c, yaml_node_t *map);

/* A mapping's keys, merge keys (`<<: *defaults`) applied as PyYAML does. */
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

void ferry__map_load(ferry__ctx *c, yaml_node_t *node, const char *label, ferry__map *m);
void ferry__map_free(ferry__map *m);
const ferry__pair *ferry__map_find(const ferry__map *m, const char *key);
yaml_node_t *ferry__map_get(const ferry__map *m, const char *key);

/* Load the file's one document: 0, or FERRY_EINVAL with the problem reported. */
int ferry__load(ferry__ctx *c, const char *buf, size_t len, yaml_document_t *doc);

/* ------------------------------------------------------------------------ */
/* fields.c: field tables                                                    */

typedef enum ferry__ftype {
    FERRY__F_ANY,      /* anything, null included: the handler checks it */
    FERRY__F_STR,      /* a string: `yes`, 8 or 1.5 are errors with a hint to quote them */
    FERRY__F_TEXT,     /* any scalar, as written (`environment: 123`) */
    FERRY__F_ENUM,     /* a TEXT from the field's `values` */
    FERRY__F_BOOL,     /* true or false */
    FERRY__F_NUMBER,   /* an integer or a finite number */
    FERRY__F_DURATION, /* seconds, or text such as "1h 30m" */
    FERRY__F_SEQ,      /* a list */
    FERRY__F_MAP,      /* a mapping */
} ferry__ftype;

#define FERRY__REQUIRED 1u /* the key must be written */
#define FERRY__NOCASE 2u   /* ENUM: "Repeat" is "repeat" */
/* Accepted (and checked) for valohai.yaml's sake but not acted on: listed
 * in the step's unused_keys, which a submission warns of. Not for keys
 * that only describe (description, icon): there is nothing to act on. */
#define FERRY__UNUSED 4u

/* A value that passed its field's type. */
typedef struct ferry__value {
    yaml_node_t *node;
    int line;
    const char *text; /* STR, TEXT, ENUM */
    size_t index;     /* ENUM: which of the field's values */
    int boolean;      /* BOOL */
    double number;    /* NUMBER */
    int64_t seconds;  /* DURATION */
} ferry__value;

typedef struct ferry__walk ferry__walk;
typedef struct ferry__field ferry__field;
typedef struct ferry__object ferry__object;

typedef void (*ferry__field_fn)(ferry__walk *w, const ferry__field *f, const ferry__value *v);

/* Table entries name the key and the type, then the members they set by
 * designator; FERRY__CHECKED is a key that is type-checked, not kept. */
#define FERRY__CHECKED(key, type)                                                                  \
    {                                                                                              \
        key, type, .fn = NULL                                                                      \
    }
#define FERRY__FIELDS_END                                                                          \
    {                                                                                              \
        NULL, FERRY__F_ANY, .fn = NULL                                                             \
    }

struct ferry__field {
    const char *key;
    ferry__ftype type;
    unsigned flags;
    ferry__field_fn fn;          /* NULL: the value is checked, not kept */
    size_t offset;               /* ferry__keep_*: where in the object the value goes */
    const char *const *values;   /* ENUM */
    const ferry__object *object; /* ferry__keep_items, ferry__walk_object: what the value holds */
    size_t count_offset;         /* ferry__keep_items: where the number of items goes */
};

struct ferry__object {
    const char *what;             /* "parameter": in labels and messages */
    const ferry__field *fields;   /* ends with FERRY__FIELDS_END */
    int closed;                   /* keys not in `fields` are errors */
    int unique;                   /* in a list, names (each item's first member) are unique */
    const char *shape;            /* in a list, what an item must be ("a mapping") */
    size_t size;                  /* in a list, the bytes of one kept item (0: not kept) */
    void (*init)(void *obj);      /* defaults, set before the walk */
    void (*done)(ferry__walk *w); /* after the fields */
};

/* One object being walked: what its handlers see. */
struct ferry__walk {
    ferry__ctx *c;
    yaml_node_t *node; /* the mapping walked */
    ferry__map m;
    const char *label;
    void *obj;       /* what the handlers fill (may be NULL) */
    const void *arg; /* what they need besides, e.g. the step an override is about */
};

/* Walk the mapping `node` as an `o`; `line` (when not 0) is the line of
 * "missing required" messages. */
void ferry__walk_node(ferry__ctx *c, yaml_node_t *node, int line, const char *label,
                      const ferry__object *o, void *obj, const void *arg);
/* An object at the top level, labelled "step 'train'" (or "step at line 3"). */
void ferry__walk_top(ferry__ctx *c, yaml_node_t *key, yaml_node_t *val, const ferry__object *o,
                     void *obj);
/* One field of the walk's mapping: read, type-checked, handed to f->fn. */
void ferry__walk_field(ferry__walk *w, const ferry__field *f);
/* More fields of the same mapping (fields that depend on an earlier one). */
void ferry__walk_fields(ferry__walk *w, const ferry__field *fields);

/* Handlers for a SEQ of f->object items, kept (f->object->size bytes each)
 * in an array at f->offset and its count at f->count_offset; and for a MAP
 * walked as an f->object, labelled "<label>: <key>". */
void ferry__keep_items(ferry__walk *w, const ferry__field *f, const ferry__value *v);
void ferry__walk_object(ferry__walk *w, const ferry__field *f, const ferry__value *v);
#define FERRY__LIST(key, type, member, count, object)                                              \
    {                                                                                              \
        key, FERRY__F_SEQ, 0, ferry__keep_items, offsetof(type, member), NULL, object,             \
            offsetof(type, count)                                                                  \
    }

/* Handlers that keep a value at f->offset in w->obj. */
void ferry__keep_str(ferry__walk *w, const ferry__field *f, const ferry__value *v); /* char * */
void ferry__keep_ref(ferry__walk *w, const ferry__field *f,
                     const ferry__value *v); /* const char * into the document */
void ferry__keep_bool(ferry__walk *w, const ferry__field *f, const ferry__value *v); /* int */
void ferry__keep_seconds(ferry__walk *w, const ferry__field *f,
                         const ferry__value *v); /* int64_t */

/* "step 'train'", or where the name is missing, the line. */
char *ferry__label(const char *kind, const char *name, int line);

/* ------------------------------------------------------------------------ */
/* The modules' entry points                                                 */

/* conditions.c: whether `text`, the value of `key` written at `line`, is a
 * valid expression: 1, or 0 with "<key>: '<text>' is not a valid expression:
 * <why>" reported at that line under the walk's label. */
int ferry__expression_valid(ferry__walk *w, const char *key, const char *text, int line);
/* A field handler (TEXT) for stop-condition: the check above. */
void ferry__check_expression(ferry__walk *w, const ferry__field *f, const ferry__value *v);
/* The same, then kept as a char * at f->offset when it is valid. */
void ferry__keep_expression(ferry__walk *w, const ferry__field *f, const ferry__value *v);

/* params.c */
extern const ferry__object ferry__param_object;
int ferry__coerce_value(const ferry_param_def *p, const json_t *v, json_t **out, char *why,
                        size_t cap);
const ferry_param_def *ferry__find_param(const ferry_step *s, const char *name);
const ferry_input_def *ferry__find_input(const ferry_step *s, const char *name);

/* sweep.c: the names of ferry_task_type, ferry_child_error (from its
 * first value) and ferry_sweep_style, in the enums' orders, NULL-ended */
extern const char *const ferry__task_type_names[];
extern const char *const ferry__child_error_names[];
extern const char *const ferry__sweep_styles[];
/* A style's values from its rules (JSON); on error `*bad` names
 * the rule at fault (NULL: the rules as a whole), for its line. */
int ferry__sweep_from_rules(ferry_sweep_style style, const json_t *rules, ferry_sweep_values *out,
                            const char **bad, char *why, size_t cap);

/* sweep.c: the random generator of sweeps and the TPE (xoshiro256**,
 * seeded by splitmix64): the same seed gives the same numbers on any machine */
typedef struct ferry__rng {
    uint64_t s[4];
} ferry__rng;
void ferry__rng_seed(ferry__rng *r, uint64_t seed);
uint64_t ferry__rng_next(ferry__rng *r);
/* In [0, 1), 53 random bits. */
double ferry__rng_unit(ferry__rng *r);
/* `d` to `digits` significant digits: what libm's last bit, which may
 * differ between machines, cannot change, and 0.010000000000000002 is 0.01. */
double ferry__round_significant(double d, int digits);

/* steps.c */
extern const char *const ferry__merge_modes[];
void ferry__parse_step(ferry__ctx *c, yaml_node_t *key, yaml_node_t *val, ferry_step *s);
void ferry__free_step(ferry_step *s);

/* flows.c */
void ferry__parse_pipeline(ferry__ctx *c, yaml_node_t *key, yaml_node_t *val);
void ferry__parse_task(ferry__ctx *c, yaml_node_t *key, yaml_node_t *val);
void ferry__parse_endpoint(ferry__ctx *c, yaml_node_t *key, yaml_node_t *val);
void ferry__free_pipeline_def(ferry_pipeline_def *def);
void ferry__free_task_def(ferry_task_def *def);

#endif
