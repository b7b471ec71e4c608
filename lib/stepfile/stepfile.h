/* Step files: ferry.yaml / valohai.yaml (the valohai.yaml step schema).
 *
 * Parsing (libyaml), parameter validation, and command building with
 * placeholders and shell quoting. Used by ferryd (authoritative) and by the
 * CLI (to fail fast before uploading a snapshot).
 */
#ifndef FERRY_STEPFILE_H
#define FERRY_STEPFILE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

typedef enum ferry_param_type {
    FERRY_PARAM_STRING = 0,
    FERRY_PARAM_INTEGER,
    FERRY_PARAM_FLOAT,
    FERRY_PARAM_FLAG,
} ferry_param_type;

typedef enum ferry_param_multiple {
    FERRY_MULTIPLE_NONE = 0, /* a single value; a list is an error */
    FERRY_MULTIPLE_REPEAT,   /* pass-as repeated once per value */
    FERRY_MULTIPLE_SEPARATE, /* one pass-as with values joined by the separator */
} ferry_param_multiple;

typedef struct ferry_param_def {
    char *name;
    ferry_param_type type;
    json_t *default_value; /* NULL when none; array for multiple */
    int optional;
    char *pass_as;       /* NULL: "--{name}={value}" */
    char *pass_true_as;  /* flags; NULL: "--{name}" */
    char *pass_false_as; /* flags; NULL: nothing */
    int has_min, has_max;
    double min, max;
    json_t *choices; /* array or NULL */
    ferry_param_multiple multiple;
    char *multiple_separator; /* default "," */
    char *description;
    /* A float default as the file writes it where valohai-yaml passes that
     * text on (PyYAML leaves 1e-5 a string): the command shows "1e-5", not
     * Python's 1e-05, while the value is the number. NULL otherwise. */
    char *default_text;
    /* Why the written default cannot be used (outside min/max, of the wrong
     * type, not a choice): valohai-yaml only warns, so the file is usable
     * and a run that gives a value works; one that needs the default is
     * refused with this ("valohai.yaml:9: ... 11 is above the maximum"). */
    char *default_error;
} ferry_param_def;

typedef struct ferry_input_def {
    char *name;
    char **default_urls;
    size_t n_default_urls;
    int optional;
    char *filename; /* NULL: the URL's basename */
    int on_demand;  /* download: on-demand: not fetched; inputs.json has a URL */
} ferry_input_def;

typedef struct ferry_env_def {
    char *name;
    char *default_value; /* NULL when none */
    int optional;
} ferry_env_def;

/* One of a step's `mounts`: "source:destination", or a mapping. */
typedef struct ferry_mount_def {
    char *source;
    char *destination;
    int readonly;
    char *type; /* NULL: a bind mount of a host path; else e.g. "nfs" */
    int line;
} ferry_mount_def;

typedef struct ferry_step {
    char *name;
    char *image;
    char **commands;
    size_t n_commands;
    ferry_param_def *params;
    size_t n_params;
    ferry_input_def *inputs;
    size_t n_inputs;
    ferry_env_def *env;
    size_t n_env;
    int64_t time_limit_s;        /* 0 = none */
    int64_t no_output_timeout_s; /* 0 = none */
    char *environment;           /* default environment name, or NULL */
    int line;                    /* 1-based line of the step in the file */
    /* Why this step cannot run, though the file is usable: what valohai-yaml
     * only warns of ("ferry.yaml:2: step 'a' is defined twice (lines 1 and
     * 2)"), refused when the step is run; NULL for a step that runs. */
    char *broken;
    /* stop-condition: the run stops once it holds for the latest metadata
     * (ferry_condition_eval); NULL when the step has none. */
    char *stop_condition;
    /* The keys it has that ferry accepts but does not act on, e.g.
     * "cache-volumes (line 12), input 'data': keep-directories (line 9)",
     * for one warning at submission; NULL when none. */
    char *unused_keys;
    /* ferry.yaml's auto-restart: true: its executions restart when their
     * worker is lost (a spot interruption); valohai.yaml has no such key. */
    int auto_restart;
    /* resources: the limits the runtime applies (local-docker): each the
     * max, else the min when there is no max; 0 = none. Memory is in MB,
     * as on Valohai. */
    double cpu_limit;
    int64_t memory_limit_mb;
    /* mounts: host paths bound into the container, checked at submission
     * against the environment's allowed_mounts. */
    ferry_mount_def *mounts;
    size_t n_mounts;
    /* environment-variable-groups: names of ferryd's configured groups. */
    char **env_groups;
    size_t n_env_groups;
} ferry_step;

/* A pipeline's definition, as the file writes it, for the pipeline engine
 * (issue 20): checked when parsed, so the engine needs no YAML. */
typedef enum ferry_edge_kind {
    FERRY_EDGE_INPUT = 1,
    FERRY_EDGE_OUTPUT,
    FERRY_EDGE_PARAMETER,
    FERRY_EDGE_METADATA,
    FERRY_EDGE_FILE,
    FERRY_EDGE_DEPLOYMENT,
    FERRY_EDGE_ENVIRONMENT_VARIABLE,
    FERRY_EDGE_DEPENDENCY,
} ferry_edge_kind;

/* "node.kind.name": name is everything after the second dot (it may hold
 * dots, "model.pb", and globs, "processed-images*"; "*" for a dependency). */
typedef struct ferry_edge_end {
    char *node;
    ferry_edge_kind kind;
    char *name;
} ferry_edge_end;

typedef struct ferry_pipeline_edge {
    ferry_edge_end source, target;
    json_t *configuration; /* the edge's `configuration:` mapping as JSON, or NULL */
    int line;
} ferry_pipeline_edge;

typedef enum ferry_on_error {
    FERRY_ON_ERROR_STOP_ALL = 0, /* valohai's default */
    FERRY_ON_ERROR_STOP_NEXT,
    FERRY_ON_ERROR_CONTINUE,
    FERRY_ON_ERROR_RETRY,
} ferry_on_error;

typedef struct ferry_node_action {
    char **when; /* node-starting, node-complete, node-error (a string or a list in YAML) */
    size_t n_when;
    char **ifs; /* `if:` conditions (a string or a list: all must hold); may be 0 */
    size_t n_ifs;
    char **then; /* stop-pipeline, require-approval, error-pipeline, noop ... (string or list) */
    size_t n_then;
    int line;
} ferry_node_action;

typedef struct ferry_pipeline_node {
    char *name;
    char *type;   /* "execution", "task" or "deployment" */
    char *step;   /* NULL when absent (deployment nodes) */
    char *task;   /* a task node's `task:`, else NULL */
    char *commit; /* the node's own `commit:`, else NULL */
    ferry_on_error on_error;
    int merge_append; /* edge-merge-mode: append (1) or replace (0, the default) */
    /* The `override:` mapping as JSON (PyYAML-typed scalars, as
     * ferry_yaml_to_json gives), or NULL. */
    json_t *override;
    ferry_node_action *actions;
    size_t n_actions;
    json_t *deployment; /* a deployment node's whole mapping as JSON, else NULL (parsed, not run) */
    int line;
} ferry_pipeline_node;

typedef struct ferry_pipeline_param {
    char *name;
    char **targets; /* "node.parameter.name": `targets:` (string or list) or `target:` */
    size_t n_targets;
    json_t *default_value; /* JSON, PyYAML-typed (123 an integer, [abc, def] an array), or NULL */
    int line;
} ferry_pipeline_param;

typedef struct ferry_pipeline_def {
    ferry_pipeline_node *nodes;
    size_t n_nodes;
    ferry_pipeline_edge *edges;
    size_t n_edges;
    ferry_pipeline_param *params;
    size_t n_params;
    int reuse_executions; /* reuse-executions: true */
} ferry_pipeline_def;

/* A task's definition (issue 21), as the file writes it, checked when
 * parsed and normalised as valohai-yaml normalises it, for the task engine. */
typedef enum ferry_task_type {
    FERRY_TASK_GRID_SEARCH = 0, /* valohai's default */
    FERRY_TASK_RANDOM_SEARCH,
    FERRY_TASK_MANUAL_SEARCH,
    FERRY_TASK_BAYESIAN_TPE,
    FERRY_TASK_DISTRIBUTED,
} ferry_task_type;

/* on-child-error, valohai's three values (valohai-yaml lower-cases and
 * turns '_' into '-': "stop_all-AND_error" is stop-all-and-error). */
typedef enum ferry_child_error {
    FERRY_CHILD_ERROR_UNSET = 0, /* not written: the engine's default */
    FERRY_CHILD_ERROR_CONTINUE_AND_COMPLETE,
    FERRY_CHILD_ERROR_CONTINUE_AND_ERROR,
    FERRY_CHILD_ERROR_STOP_ALL_AND_ERROR,
} ferry_child_error;

/* A variant parameter's style; the rules each reads:
 *   single    value
 *   multiple  items (a list)
 *   linear    start, end, step
 *   logspace  start, end, count, base (default 10), integerify
 *   random    min, max, distribution (uniform, loguniform, normal: then
 *             min is the mean and max the standard deviation), count, seed,
 *             integerify */
typedef enum ferry_sweep_style {
    FERRY_STYLE_SINGLE = 0,
    FERRY_STYLE_MULTIPLE,
    FERRY_STYLE_LINEAR,
    FERRY_STYLE_LOGSPACE,
    FERRY_STYLE_RANDOM,
} ferry_sweep_style;

typedef struct ferry_task_param {
    char *name;
    ferry_sweep_style style;
    json_t *rules; /* the `rules:` mapping as JSON (checked for the style) */
    int line;
} ferry_task_param;

typedef struct ferry_task_def {
    char *step; /* as written; the flow is `broken` when the file has no such step */
    ferry_task_type type;
    /* 0 where not written */
    int64_t execution_count;
    int64_t execution_batch_size;
    int64_t maximum_queued_executions;
    ferry_child_error on_child_error;
    char *optimization_target_metric; /* NULL when none */
    int has_optimization_target_value;
    double optimization_target_value;
    char *engine;         /* NULL when none */
    char *stop_condition; /* a valid expression (ferry_condition_eval), or NULL */
    int reuse_children;
    /* parameter-sets: an array of objects (parameter name -> value, typed as
     * ferry_yaml_to_json types them; empty ones dropped as valohai drops
     * them), or NULL when none */
    json_t *parameter_sets;
    ferry_task_param *params;
    size_t n_params;
} ferry_task_def;

/* "grid_search", "random_search", "manual_search", "bayesian_tpe", "distributed". */
const char *ferry_task_type_name(ferry_task_type type);
/* valohai-yaml's normalisation (lower case, '-' is '_'): "RANDOM-SEARCH" is
 * random_search. With `short_names`, also the CLI's grid, random, manual,
 * bayesian. 0, or FERRY_EINVAL for anything else. */
int ferry_task_type_parse(const char *text, int short_names, ferry_task_type *out);
/* "continue-and-complete", "continue-and-error", "stop-all-and-error"; NULL when UNSET. */
const char *ferry_child_error_name(ferry_child_error e);
/* valohai-yaml's normalisation (lower case, '_' is '-'). With `short_names`,
 * also the CLI's continue (continue-and-complete) and stop-all
 * (stop-all-and-error). 0, or FERRY_EINVAL. */
int ferry_child_error_parse(const char *text, int short_names, ferry_child_error *out);
/* "single", "multiple", "linear", "logspace", "random". */
const char *ferry_sweep_style_name(ferry_sweep_style style);

/* A pipeline or a task of the file (pipelines: issue 20; tasks: 21). */
typedef struct ferry_flow {
    const char *kind; /* "pipeline" or "task" */
    char *name;
    int line;
    /* Why it cannot run, though the file is usable: a step it names does
     * not exist (valohai-yaml only warns), or a task names a parameter its
     * step lacks; refused when it is run. */
    char *broken;
    ferry_pipeline_def *pipeline; /* kind "pipeline": its definition; NULL for tasks */
    ferry_task_def *task;         /* kind "task": its definition; NULL for pipelines */
} ferry_flow;

typedef struct ferry_stepfile {
    char *path;  /* as given, for messages */
    int valohai; /* the file is a valohai.yaml */
    ferry_step *steps;
    size_t n_steps;
    size_t n_unsupported; /* pipelines, endpoints, tasks: parsed, not run */
    ferry_flow *flows;    /* pipelines and tasks, in file order */
    size_t n_flows;
} ferry_stepfile;

/* Parse a step file. On error returns a negative ferry code and writes a
 * message naming the file, the line and what is wrong into err, e.g.
 * "ferry.yaml:12: step 'train': parameter 'lr': unknown type 'double'". */
int ferry_stepfile_parse_file(const char *path, ferry_stepfile **out, char *err, size_t err_cap);
/* Same, from memory; `path` is only used in messages and to tell valohai.yaml. */
int ferry_stepfile_parse_buffer(const char *path, const char *buf, size_t len, ferry_stepfile **out,
                                char *err, size_t err_cap);
void ferry_stepfile_free(ferry_stepfile *sf);
/* A YAML document (JSON is YAML) as JSON, its scalars typed as PyYAML types
 * them (1e-5 a float, yes a boolean); NULL with "PATH:LINE: ..." in `err`. */
json_t *ferry_yaml_to_json(const char *path, const char *buf, size_t len, char *err,
                           size_t err_cap);

const ferry_step *ferry_stepfile_find(const ferry_stepfile *sf, const char *name);
/* The step named `name`, else the one step whose name starts with it (as
 * `vh exec run tr` picks "train"); NULL with *ambiguous set when several
 * do, NULL alone when none does. */
const ferry_step *ferry_stepfile_find_prefix(const ferry_stepfile *sf, const char *name,
                                             int *ambiguous);
/* "known steps: a, b, c" for messages; caller frees. */
char *ferry_stepfile_step_names(const ferry_stepfile *sf);
/* The pipeline named `name` (exact), or NULL. */
const ferry_flow *ferry_stepfile_find_pipeline(const ferry_stepfile *sf, const char *name);
/* "known pipelines: a, b" for messages (or "the file has no pipelines"); caller frees. */
char *ferry_stepfile_pipeline_names(const ferry_stepfile *sf);

/* The task named `name` (exact), or NULL. */
const ferry_flow *ferry_stepfile_find_task(const ferry_stepfile *sf, const char *name);
/* "known tasks: a, b" for messages (or "the file has no tasks"); caller frees. */
char *ferry_stepfile_task_names(const ferry_stepfile *sf);

/* ------------------------------------------------------------------------ */
/* Sweeps (sweep.c): the values a task gives a parameter, and the points of
 * the parameter space a task runs. */

typedef enum ferry_sweep_kind {
    FERRY_SWEEP_LIST = 1, /* finite values: one, a list, linear, logspace */
    FERRY_SWEEP_RANDOM,   /* a distribution to draw from */
} ferry_sweep_kind;

typedef enum ferry_distribution {
    FERRY_DIST_UNIFORM = 0,
    FERRY_DIST_LOGUNIFORM, /* log(x) uniform in [log min, log max]; 0 < min <= max */
    FERRY_DIST_NORMAL,     /* mean `min`, standard deviation `max` */
} ferry_distribution;

typedef struct ferry_sweep_values {
    ferry_sweep_kind kind;
    /* LIST: the values, typed as well as can be told without a step
     * (numbers as numbers, 1 an integer and 0.1 a real, else strings) */
    json_t *values;
    /* LIST from the CLI's text: each value as written (an array of strings
     * as long as `values`), which the step's types read, so that a string
     * parameter's "007" stays "007"; NULL otherwise */
    json_t *texts;
    /* RANDOM */
    ferry_distribution distribution;
    double min, max;
    int64_t count; /* rules' count (values drawn for a grid); 0 when not given */
    int has_seed;  /* rules' seed */
    uint64_t seed;
    int integerify; /* rules' integerify: drawn or logspace values rounded to integers */
} ferry_sweep_values;

/* The CLI's VALUES of `-p NAME=VALUES`: one value ("0.1"); a list
 * ("[0.1, 0.01]", "[adam, 'sgd']": numbers, quoted or bare strings);
 * linear(start,end,step) (end included when a step lands on it);
 * logspace(start,end,count[,base]) (base^x for `count` x evenly from start
 * to end, as numpy.logspace; base 10 by default); random(min,max[,dist])
 * with dist uniform (the default), loguniform or normal (then min is the
 * mean and max the standard deviation). 0, or FERRY_EINVAL with why
 * ("linear(1,5): expected 3 numbers (start, end, step), got 2"). */
int ferry_sweep_parse(const char *text, ferry_sweep_values *out, char *err, size_t err_cap);
/* A task definition's parameter (style and rules) as the same values; on
 * error "parameter 'A': rules: step must not be 0". */
int ferry_task_param_values(const ferry_task_param *p, ferry_sweep_values *out, char *err,
                            size_t err_cap);
void ferry_sweep_values_clear(ferry_sweep_values *v);

typedef struct ferry_sweep_param {
    const char *name;
    ferry_sweep_values values;
} ferry_sweep_param;

/* The points of a sweep, each an object name -> value with the parameters
 * in the order given. With a step, each value is typed and checked by the
 * step's parameter (ferry_step_resolve_parameters' rules: integers stay
 * integers, a float parameter's values are reals, min/max/choices hold;
 * drawn values are rounded for an integer parameter, normal draws clamped to
 * its min/max); a name the step lacks is an error. Without one, values are
 * as ferry_sweep_values holds them. Errors are FERRY_EINVAL with why
 * ("parameter 'epochs': 110 is greater than the maximum 100"), or
 * FERRY_ETOOBIG for a grid above its cap.
 *
 * Grid: the cartesian product of every parameter's values, the first
 * parameter varying slowest; a RANDOM one gives its rules' `count` draws
 * (refused without). More than `cap` points is refused, naming the size.
 * Random: `count` points, each parameter drawn from its distribution (a LIST
 * one picks among its values) by its own generator, seeded from `seed` and
 * its name (or its rules' seed): the same seed gives the same points, on
 * any machine (xoshiro256**, reals rounded to 12 significant digits).
 * Manual: the parameter sets as given (an array of objects), typed. */
int ferry_sweep_grid(const ferry_sweep_param *params, size_t n, const ferry_step *step,
                     uint64_t seed, size_t cap, json_t **out, char *err, size_t err_cap);
int ferry_sweep_random(const ferry_sweep_param *params, size_t n, const ferry_step *step,
                       uint64_t seed, size_t count, json_t **out, char *err, size_t err_cap);
int ferry_sweep_manual(const json_t *parameter_sets, const ferry_step *step, json_t **out,
                       char *err, size_t err_cap);

/* A task definition's points, as above: grid_search the grid of its
 * parameters; manual_search its parameter-sets, or where it has none the
 * grid of its parameters; random_search `execution_count` draws (refused
 * without one, or above `cap`). bayesian_tpe tasks propose points as
 * results arrive and distributed ones run members together: FERRY_ENOTSUP,
 * both are the engine's. */
int ferry_task_points(const ferry_task_def *task, const ferry_step *step, uint64_t seed, size_t cap,
                      json_t **out, char *err, size_t err_cap);

/* ------------------------------------------------------------------------ */
/* The Bayesian optimiser of bayesian_tpe tasks (tpe.c): a tree-structured
 * Parzen estimator (Bergstra et al. 2011, as hyperopt and optuna do it).
 *
 * The first `n_startup` proposals are drawn from the prior (each parameter
 * uniform in its space); after that each proposal splits the observations
 * by value into the best n_good = min(ceil(0.1 n), 25) (optuna's default
 * gamma) and the rest, fits per parameter a Parzen estimator to each group
 * (l(x) to the good, g(x) to the bad), draws 24 candidates from l and keeps
 * the one with the greatest sum over parameters of log l(x) - log g(x)
 * (independent TPE). A batch is `batch` distinct points: after each one is
 * chosen it stands as an observation of the worst value seen (a constant
 * liar) until the batch is done. The same seed and the same calls give the
 * same points (xoshiro256**, reals rounded to 12 significant digits). */

typedef enum ferry_tpe_kind {
    FERRY_TPE_UNIFORM = 1, /* a real in [min, max] */
    FERRY_TPE_LOGUNIFORM,  /* a real in [min, max], 0 < min, modelled in log space */
    FERRY_TPE_INTEGER,     /* an integer in [min, max] (both integers) */
    FERRY_TPE_CATEGORICAL, /* one of `choices` (a JSON array, any values) */
} ferry_tpe_kind;

typedef struct ferry_tpe_space {
    const char *name; /* the key of the parameter in points */
    ferry_tpe_kind kind;
    double min, max;       /* UNIFORM, LOGUNIFORM, INTEGER: min < max (INTEGER: min <= max) */
    const json_t *choices; /* CATEGORICAL: a non-empty array; the TPE keeps its own copy */
} ferry_tpe_space;

typedef struct ferry_tpe ferry_tpe;

/* 0 when `space` (n_params entries, n_params > 0) can be optimised; else
 * FERRY_EINVAL with why ("parameter 'lr': loguniform needs 0 < min < max,
 * got min 0, max 1"). */
int ferry_tpe_space_check(const ferry_tpe_space *space, size_t n_params, char *err, size_t err_cap);
/* A new optimiser of the parameters `space` (copied: the caller's may go),
 * minimising the observed values (maximising when `minimize` is 0), seeded
 * by `seed`, with `n_startup` random proposals first (0: the default, 20).
 * NULL when ferry_tpe_space_check refuses the space. */
ferry_tpe *ferry_tpe_new(const ferry_tpe_space *space, size_t n_params, int minimize, uint64_t seed,
                         size_t n_startup);
/* An observation: the parameters' values `x` (n_params of them, in the
 * order of the space: a real or integer as itself, not its log; a
 * categorical one as the index of its choice) gave `y`. A y that is not a
 * number (a failed run) counts as the worst of all. FERRY_EINVAL when a
 * value is outside its space (nothing is recorded). */
int ferry_tpe_observe(ferry_tpe *t, const double *x, double y);
/* The same with the point as proposed: an object name -> value (other keys
 * are ignored); a categorical value is matched to its choice by json_equal.
 * FERRY_EINVAL with why ("parameter 'lr': missing", "parameter 'opt':
 * \"rmsprop\" is not one of the choices"). */
int ferry_tpe_observe_point(ferry_tpe *t, const json_t *point, double y, char *err, size_t err_cap);
/* `batch` (> 0) new points, as *points: an array of objects name -> value
 * in the order of the space (reals as reals, integers as integers, a
 * categorical one as a copy of its choice), distinct from each other (where
 * the space has that many: a small discrete space may repeat after 100
 * tries). The proposals count towards n_startup; they are not observations
 * until ferry_tpe_observe*. 0, or FERRY_EINVAL for a batch of 0. */
int ferry_tpe_propose(ferry_tpe *t, size_t batch, json_t **points);
/* The number of observations so far. */
size_t ferry_tpe_observations(const ferry_tpe *t);
void ferry_tpe_free(ferry_tpe *t);

/* Validate user values (an object name -> string/number/bool/array, may be
 * NULL) against the step, apply defaults, and return an object of the
 * parameter values in declaration order, typed (integer, real, true/false,
 * string, or array for multiple); unset optional parameters are absent. On
 * error returns a negative code with a message that names the parameter and
 * why ("parameter 'epochs': hello is not an integer"; "No value supplied";
 * unknown parameter names are an error too). */
int ferry_step_resolve_parameters(const ferry_step *step, const json_t *given, json_t **resolved,
                                  char *err, size_t err_cap);

/* Validate inputs (object name -> string or array of URLs, may be NULL),
 * apply defaults, return object name -> array of URLs. A required input with
 * no URL is an error naming it. Unknown input names are an error. */
int ferry_step_resolve_inputs(const ferry_step *step, const json_t *given, json_t **resolved,
                              char *err, size_t err_cap);

/* Environment variables for an execution (added): the step's defaults, then
 * `given` (object name -> string/number/bool; null unsets a default; names
 * the step doesn't declare are allowed, as in valohai). Returns an object
 * name -> string. A required variable (optional: false) with no value is an
 * error naming it; values never appear in messages (they may be secrets). */
int ferry_step_resolve_env(const ferry_step *step, const json_t *given, json_t **resolved,
                           char *err, size_t err_cap);

/* Build the command to run: placeholders {parameters} / {params},
 * {parameter:NAME}, {parameter-value:NAME} expanded with shell quoting,
 * unknown {...} left alone, one command per line (they all run, in order,
 * in one shell; the status is the last one's). Caller frees. */
char *ferry_step_build_command(const ferry_step *step, const json_t *resolved);

/* POSIX shell quoting: safe words unchanged, others in single quotes. Caller frees. */
char *ferry_shell_quote(const char *s);

/* A stop-condition (or a pipeline's `if:`), valohai's Python-like
 * expression, against an execution's latest metadata (key -> its last
 * value) and its parameters: names are metadata keys, `metadata.KEY` and
 * `parameter.NAME` name their sources. 1 when it holds; 0 when it does not,
 * or cannot be told yet (a key with no value, where Python would raise);
 * FERRY_EINVAL with why for an expression that does not parse. */
int ferry_condition_eval(const char *expr, const json_t *metadata, const json_t *parameters,
                         char *why, size_t why_cap);

/* Durations: "60 minutes", "1h10m", "2w", "1.5d", "90" (seconds), "" (none = 0). */
int ferry_duration_parse(const char *text, int64_t *seconds);

#endif
