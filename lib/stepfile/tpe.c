/* The Bayesian optimiser of bayesian_tpe tasks (issue 21): a
 * tree-structured Parzen estimator of our own (Bergstra et al. 2011,
 * "Algorithms for Hyper-Parameter Optimization"), as hyperopt and optuna
 * build it. stepfile.h says what it does; the choices are here:
 *
 * - Values live in an internal space: a loguniform parameter's log, an
 *   integer's value (a real in [min - 0.5, max + 0.5], rounded when drawn),
 *   a categorical one's index.
 * - The split is optuna's default gamma, n_good = min(ceil(0.1 n), 25), all
 *   observations weighted alike (optuna's ramp of old ones is left out).
 * - A numeric estimator is hyperopt's adaptive Parzen: a truncated Gaussian
 *   at each observation and one for the prior (the middle, sigma the width),
 *   equal weights; a kernel's sigma is the larger distance to its sorted
 *   neighbours, clipped to [width / min(100, 1 + n), width]. An integer's
 *   density is the mass of its unit bin, so l/g compare probabilities.
 * - A categorical estimator is smoothed counts: (count + 1/k) / (n + 1).
 * - 24 candidates are drawn from l per proposal; the best by the sum of
 *   log l - log g over the parameters wins. Within a batch each chosen
 *   point is a liar observation of the worst loss until the batch is done.
 */
#include "stepfile_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <ferry/error.h>

#include "util.h"

#define FERRY__TPE_STARTUP 20
#define FERRY__TPE_CANDIDATES 24
#define FERRY__TPE_TRIES 100 /* draws for a distinct point before a repeat */

typedef struct ferry__tpe_param {
    char *name;
    ferry_tpe_kind kind;
    double min, max; /* as given */
    double lo, hi;   /* internal space (CATEGORICAL: 0 and k) */
    json_t *choices; /* CATEGORICAL: our copy */
    size_t k;        /* CATEGORICAL: number of choices */
} ferry__tpe_param;

struct ferry_tpe {
    ferry__tpe_param *params;
    size_t n_params;
    int minimize;
    size_t n_startup, n_proposed;
    ferry__rng rng;
    /* observations (and, during a batch, liars after them): row i is
     * xs[i * n_params ...], internal values, and its loss (lower is better) */
    double *xs, *loss;
    size_t n_obs, cap;
};

/* A Parzen estimator of one numeric parameter over [lo, hi]. */
typedef struct ferry__parzen {
    size_t n;
    double *mu, *sigma;
    double *logc; /* log(weight / Z) with Z the kernel's mass in [lo, hi] */
    double *logk; /* the same less log(sigma sqrt(2 pi)): the density's constant */
    double *inv;  /* 1 / sigma */
    double lo, hi;
} ferry__parzen;

/* ------------------------------------------------------------------------ */
/* The space                                                                 */

static int ferry__tpe_fail(char *err, size_t cap, const char *name, const char *why, double a,
                           double b)
{
    if (err && cap)
        snprintf(err, cap, "parameter '%s': %s, got min %.17g, max %.17g", name ? name : "", why, a,
                 b);
    return FERRY_EINVAL;
}

static int ferry__tpe_param_check(const ferry_tpe_space *p, char *err, size_t cap)
{
    if (!p->name || !*p->name) {
        if (err && cap)
            snprintf(err, cap, "a parameter has no name");
        return FERRY_EINVAL;
    }
    switch (p->kind) {
    case FERRY_TPE_UNIFORM:
        if (!isfinite(p->min) || !isfinite(p->max) || !(p->min < p->max))
            return ferry__tpe_fail(err, cap, p->name, "uniform needs finite min < max", p->min,
                                   p->max);
        return 0;
    case FERRY_TPE_LOGUNIFORM:
        if (!isfinite(p->min) || !isfinite(p->max) || !(0 < p->min && p->min < p->max))
            return ferry__tpe_fail(err, cap, p->name, "loguniform needs 0 < min < max", p->min,
                                   p->max);
        return 0;
    case FERRY_TPE_INTEGER:
        if (!(fabs(p->min) < 9e15 && fabs(p->max) < 9e15) || p->min != floor(p->min) ||
            p->max != floor(p->max) || !(p->min <= p->max))
            return ferry__tpe_fail(err, cap, p->name, "integer needs integers min <= max", p->min,
                                   p->max);
        return 0;
    case FERRY_TPE_CATEGORICAL:
        if (!json_is_array(p->choices) || json_array_size(p->choices) == 0) {
            if (err && cap)
                snprintf(err, cap, "parameter '%s': categorical needs a non-empty array of choices",
                         p->name);
            return FERRY_EINVAL;
        }
        return 0;
    }
    if (err && cap)
        snprintf(err, cap, "parameter '%s': unknown kind %d", p->name, (int)p->kind);
    return FERRY_EINVAL;
}

int ferry_tpe_space_check(const ferry_tpe_space *space, size_t n_params, char *err, size_t err_cap)
{
    if (!space || n_params == 0) {
        if (err && err_cap)
            snprintf(err, err_cap, "the space has no parameters");
        return FERRY_EINVAL;
    }
    for (size_t i = 0; i < n_params; i++) {
        int rc = ferry__tpe_param_check(&space[i], err, err_cap);
        if (rc)
            return rc;
        for (size_t j = 0; j < i; j++)
            if (strcmp(space[j].name, space[i].name) == 0) {
                if (err && err_cap)
                    snprintf(err, err_cap, "parameter '%s': given twice", space[i].name);
                return FERRY_EINVAL;
            }
    }
    return 0;
}

ferry_tpe *ferry_tpe_new(const ferry_tpe_space *space, size_t n_params, int minimize, uint64_t seed,
                         size_t n_startup)
{
    if (ferry_tpe_space_check(space, n_params, NULL, 0))
        return NULL;
    ferry_tpe *t = ferry_xcalloc(1, sizeof(*t));
    t->params = ferry_xcalloc(n_params, sizeof(*t->params));
    t->n_params = n_params;
    t->minimize = minimize != 0;
    t->n_startup = n_startup ? n_startup : FERRY__TPE_STARTUP;
    ferry__rng_seed(&t->rng, seed);
    for (size_t i = 0; i < n_params; i++) {
        ferry__tpe_param *p = &t->params[i];
        p->name = ferry_strdup(space[i].name);
        p->kind = space[i].kind;
        p->min = space[i].min;
        p->max = space[i].max;
        switch (p->kind) {
        case FERRY_TPE_LOGUNIFORM:
            p->lo = log(p->min);
            p->hi = log(p->max);
            break;
        case FERRY_TPE_INTEGER:
            p->lo = p->min - 0.5;
            p->hi = p->max + 0.5;
            break;
        case FERRY_TPE_CATEGORICAL:
            p->choices = json_deep_copy(space[i].choices);
            p->k = json_array_size(p->choices);
            p->lo = 0;
            p->hi = (double)p->k;
            break;
        default:
            p->lo = p->min;
            p->hi = p->max;
            break;
        }
    }
    return t;
}

void ferry_tpe_free(ferry_tpe *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->n_params; i++) {
        free(t->params[i].name);
        json_decref(t->params[i].choices);
    }
    free(t->params);
    free(t->xs);
    free(t->loss);
    free(t);
}

size_t ferry_tpe_observations(const ferry_tpe *t)
{
    return t->n_obs;
}

/* ------------------------------------------------------------------------ */
/* Values between the caller's units and the internal space                  */

/* A caller's value as internal; 0, or FERRY_EINVAL outside the space. */
static int ferry__tpe_to_internal(const ferry__tpe_param *p, double v, double *out)
{
    if (!isfinite(v))
        return FERRY_EINVAL;
    switch (p->kind) {
    case FERRY_TPE_CATEGORICAL:
        if (v < 0 || v >= (double)p->k || v != floor(v))
            return FERRY_EINVAL;
        *out = v;
        return 0;
    case FERRY_TPE_INTEGER:
        if (v != floor(v))
            return FERRY_EINVAL;
        break;
    default:
        break;
    }
    if (v < p->min || v > p->max)
        return FERRY_EINVAL;
    *out = p->kind == FERRY_TPE_LOGUNIFORM ? log(v) : v;
    return 0;
}

/* An internal value as the caller's, rounded as points carry it (12
 * significant digits, integers and indices whole), inside the bounds. */
static double ferry__tpe_external(const ferry__tpe_param *p, double x)
{
    double v;
    switch (p->kind) {
    case FERRY_TPE_CATEGORICAL:
        v = floor(x);
        return v < 0 ? 0 : v > (double)(p->k - 1) ? (double)(p->k - 1) : v;
    case FERRY_TPE_INTEGER:
        v = floor(x + 0.5);
        break;
    case FERRY_TPE_LOGUNIFORM:
        v = ferry__round_significant(exp(x), 12);
        break;
    default:
        v = ferry__round_significant(x, 12);
        break;
    }
    return v < p->min ? p->min : v > p->max ? p->max : v;
}

static void ferry__tpe_push(ferry_tpe *t, const double *internal, double loss)
{
    if (t->n_obs == t->cap) {
        t->cap = t->cap ? 2 * t->cap : 64;
        t->xs = ferry_xrealloc(t->xs, t->cap * t->n_params * sizeof(*t->xs));
        t->loss = ferry_xrealloc(t->loss, t->cap * sizeof(*t->loss));
    }
    memcpy(t->xs + t->n_obs * t->n_params, internal, t->n_params * sizeof(*internal));
    t->loss[t->n_obs++] = loss;
}

/* What the optimiser minimises: y, or -y when maximising; a failed run
 * (y not a number) is the worst of all. */
static double ferry__tpe_loss(const ferry_tpe *t, double y)
{
    if (isnan(y))
        return INFINITY;
    return t->minimize ? y : -y;
}

int ferry_tpe_observe(ferry_tpe *t, const double *x, double y)
{
    double *in = ferry_xmalloc(t->n_params * sizeof(*in));
    for (size_t i = 0; i < t->n_params; i++)
        if (ferry__tpe_to_internal(&t->params[i], x[i], &in[i])) {
            free(in);
            return FERRY_EINVAL;
        }
    ferry__tpe_push(t, in, ferry__tpe_loss(t, y));
    free(in);
    return 0;
}

/* A point's value of `p` in the caller's units; 0, or FERRY_EINVAL with why. */
static int ferry__tpe_point_value(const ferry__tpe_param *p, const json_t *v, double *out,
                                  char *err, size_t cap)
{
    if (!v) {
        snprintf(err, cap, "parameter '%s': missing", p->name);
        return FERRY_EINVAL;
    }
    if (p->kind == FERRY_TPE_CATEGORICAL) {
        for (size_t c = 0; c < p->k; c++)
            if (json_equal(json_array_get(p->choices, c), (json_t *)v)) {
                *out = (double)c;
                return 0;
            }
        char *text = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
        snprintf(err, cap, "parameter '%s': %s is not one of the choices", p->name,
                 text ? text : "?");
        free(text);
        return FERRY_EINVAL;
    }
    if (!json_is_number(v)) {
        snprintf(err, cap, "parameter '%s': expected a number", p->name);
        return FERRY_EINVAL;
    }
    *out = json_number_value(v);
    double ignored;
    if (ferry__tpe_to_internal(p, *out, &ignored)) {
        snprintf(err, cap, "parameter '%s': %.17g is outside [%.17g, %.17g]%s", p->name, *out,
                 p->min, p->max, p->kind == FERRY_TPE_INTEGER ? " or not an integer" : "");
        return FERRY_EINVAL;
    }
    return 0;
}

int ferry_tpe_observe_point(ferry_tpe *t, const json_t *point, double y, char *err, size_t err_cap)
{
    char dummy[1];
    if (!err || !err_cap) {
        err = dummy;
        err_cap = sizeof(dummy);
    }
    if (!json_is_object(point)) {
        snprintf(err, err_cap, "a point must be an object name -> value");
        return FERRY_EINVAL;
    }
    double *x = ferry_xmalloc(t->n_params * sizeof(*x));
    int rc = 0;
    for (size_t i = 0; i < t->n_params && rc == 0; i++)
        rc = ferry__tpe_point_value(&t->params[i], json_object_get(point, t->params[i].name), &x[i],
                                    err, err_cap);
    if (rc == 0)
        rc = ferry_tpe_observe(t, x, y);
    free(x);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Parzen estimators                                                         */

static double ferry__phi(double z)
{
    return 0.5 * erfc(-z / 1.4142135623730951);
}

/* Phi(b) - Phi(a) for a <= b, from the tail that keeps its digits. */
static double ferry__phi_between(double a, double b)
{
    if (a > 0)
        return 0.5 * (erfc(a / 1.4142135623730951) - erfc(b / 1.4142135623730951));
    if (b < 0)
        return 0.5 * (erfc(-b / 1.4142135623730951) - erfc(-a / 1.4142135623730951));
    return 1.0 - ferry__phi(a) - (1.0 - ferry__phi(b));
}

static int ferry__cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Kernels at `vals` (n, sorted here) and the prior, as the top of the file says. */
static void ferry__parzen_fit(ferry__parzen *e, double *vals, size_t n, double lo, double hi)
{
    size_t m = n + 1;
    e->n = m;
    e->lo = lo;
    e->hi = hi;
    e->mu = ferry_xrealloc(e->mu, m * sizeof(double));
    e->sigma = ferry_xrealloc(e->sigma, m * sizeof(double));
    e->logc = ferry_xrealloc(e->logc, m * sizeof(double));
    e->logk = ferry_xrealloc(e->logk, m * sizeof(double));
    e->inv = ferry_xrealloc(e->inv, m * sizeof(double));
    qsort(vals, n, sizeof(*vals), ferry__cmp_double);
    double width = hi - lo, prior = 0.5 * (lo + hi);
    /* the prior in its sorted place, as hyperopt does: its neighbours'
     * bandwidths see it */
    size_t at = 0;
    while (at < n && vals[at] < prior)
        at++;
    size_t prior_at = at;
    for (size_t i = 0, j = 0; i < m; i++)
        e->mu[i] = i == prior_at ? prior : vals[j++];
    double min_sigma = width / (m + 1 < 100 ? (double)(m + 1) : 100.0);
    for (size_t i = 0; i < m; i++) {
        double s;
        if (i == prior_at) {
            s = width;
        } else {
            double left = i > 0 ? e->mu[i] - e->mu[i - 1] : 0;
            double right = i + 1 < m ? e->mu[i + 1] - e->mu[i] : 0;
            s = left > right ? left : right;
            s = s < min_sigma ? min_sigma : s > width ? width : s;
        }
        e->sigma[i] = s;
        double z = ferry__phi_between((lo - e->mu[i]) / s, (hi - e->mu[i]) / s);
        e->logc[i] = -log((double)m) - log(z > 1e-300 ? z : 1e-300);
        e->logk[i] = e->logc[i] - log(s) - 0.9189385332046728;
        e->inv[i] = 1.0 / s;
    }
}

static void ferry__parzen_clear(ferry__parzen *e)
{
    free(e->mu);
    free(e->sigma);
    free(e->logc);
    free(e->logk);
    free(e->inv);
}

/* A standard normal draw (Box-Muller; 1 - u is in (0, 1]). */
static double ferry__gauss(ferry__rng *r)
{
    double u1 = 1.0 - ferry__rng_unit(r), u2 = ferry__rng_unit(r);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

static double ferry__parzen_draw(const ferry__parzen *e, ferry__rng *r)
{
    size_t i = (size_t)(ferry__rng_unit(r) * (double)e->n);
    if (i >= e->n)
        i = e->n - 1;
    /* a kernel's mass in [lo, hi] is at least Phi(0.5) - Phi(-0.5) = 0.38
     * (its mean is inside, its sigma at most the width): rejection ends */
    for (int k = 0; k < 64; k++) {
        double x = e->mu[i] + e->sigma[i] * ferry__gauss(r);
        if (x >= e->lo && x <= e->hi)
            return x;
    }
    return e->lo + ferry__rng_unit(r) * (e->hi - e->lo);
}

/* One kernel's exact log mass in x's unit bin (inside [lo, hi]). */
static double ferry__parzen_bin(const ferry__parzen *e, size_t i, double x)
{
    double lo = x - 0.5 < e->lo ? e->lo : x - 0.5, hi = x + 0.5 > e->hi ? e->hi : x + 0.5;
    double p = ferry__phi_between((lo - e->mu[i]) * e->inv[i], (hi - e->mu[i]) * e->inv[i]);
    return e->logc[i] + log(p > 1e-300 ? p : 1e-300);
}

/* log of the estimator's density at x, or with `bin` the log of its mass
 * in [x - 0.5, x + 0.5] (an integer's probability). `scratch` holds e->n.
 *
 * Most kernels are many sigmas from x and add nothing a double can hold:
 * a first pass takes a cheap upper bound of each term (the density's, exact
 * for reals; a bin's mass is at most the density at its nearest point, and
 * at most the kernel's weight), and only terms within 50 of the greatest
 * bound are computed and summed. Where a bin's bound was loose (the exact
 * best more than 20 below it) every term is computed. */
static double ferry__parzen_log(const ferry__parzen *e, double x, int bin, double *scratch)
{
    double top = -INFINITY;
    for (size_t i = 0; i < e->n; i++) {
        double d = fabs(x - e->mu[i]);
        if (bin)
            d = d > 0.5 ? d - 0.5 : 0;
        double z = d * e->inv[i], b = e->logk[i] - 0.5 * z * z;
        if (bin && b > e->logc[i])
            b = e->logc[i];
        scratch[i] = b;
        top = b > top ? b : top;
    }
    double best = -INFINITY, cut = top - 50;
    for (size_t i = 0; i < e->n; i++) {
        if (scratch[i] < cut) {
            scratch[i] = -INFINITY;
            continue;
        }
        if (bin)
            scratch[i] = ferry__parzen_bin(e, i, x);
        best = scratch[i] > best ? scratch[i] : best;
    }
    if (bin && best < top - 20)
        for (size_t i = 0; i < e->n; i++) {
            scratch[i] = ferry__parzen_bin(e, i, x);
            best = scratch[i] > best ? scratch[i] : best;
        }
    double sum = 0;
    for (size_t i = 0; i < e->n; i++)
        if (scratch[i] >= best - 50)
            sum += exp(scratch[i] - best);
    return best + log(sum);
}

/* ------------------------------------------------------------------------ */
/* Proposals                                                                 */

typedef struct ferry__ranked {
    double loss;
    size_t row;
} ferry__ranked;

typedef struct ferry__tpe_work {
    ferry__ranked *order; /* observation rows by loss */
    size_t *rows;         /* the same rows, in that order */
    double *good, *bad;   /* one parameter's values of each group */
    double *cand;         /* candidates x parameters, internal */
    double *score;        /* per candidate */
    double *ratio;        /* per candidate: one parameter's log l - log g */
    double *scratch;      /* per kernel */
    double *lcat, *gcat;
    ferry__parzen l, g;
} ferry__tpe_work;

static int ferry__cmp_ranked(const void *a, const void *b)
{
    const ferry__ranked *x = a, *y = b;
    if (x->loss != y->loss)
        return x->loss < y->loss ? -1 : 1;
    return x->row < y->row ? -1 : x->row > y->row; /* ties by age: one order everywhere */
}

static void ferry__tpe_prior_draw(const ferry_tpe *t, ferry__rng *r, double *x)
{
    for (size_t i = 0; i < t->n_params; i++) {
        const ferry__tpe_param *p = &t->params[i];
        double u = ferry__rng_unit(r);
        x[i] = p->lo + u * (p->hi - p->lo);
    }
}

/* One categorical parameter's smoothed probabilities of a group. */
static void ferry__cat_fit(const ferry_tpe *t, size_t param, const size_t *rows, size_t n,
                           double *prob)
{
    size_t k = t->params[param].k;
    for (size_t c = 0; c < k; c++)
        prob[c] = 1.0 / (double)k;
    for (size_t i = 0; i < n; i++)
        prob[(size_t)t->xs[rows[i] * t->n_params + param]] += 1.0;
    for (size_t c = 0; c < k; c++)
        prob[c] = log(prob[c] / ((double)n + 1.0));
}

static size_t ferry__cat_draw(const double *logp, size_t k, ferry__rng *r)
{
    double u = ferry__rng_unit(r), acc = 0;
    for (size_t c = 0; c + 1 < k; c++) {
        acc += exp(logp[c]);
        if (u < acc)
            return c;
    }
    return k - 1;
}

/* Draws `nc` candidates into w->cand and scores them by l/g. */
static void ferry__tpe_candidates(ferry_tpe *t, ferry__tpe_work *w, size_t nc)
{
    size_t n = t->n_obs, np = t->n_params;
    for (size_t i = 0; i < n; i++)
        w->order[i] = (ferry__ranked){t->loss[i], i};
    qsort(w->order, n, sizeof(*w->order), ferry__cmp_ranked);
    for (size_t i = 0; i < n; i++)
        w->rows[i] = w->order[i].row;
    size_t n_good = (n + 9) / 10;
    if (n_good > 25)
        n_good = 25;
    const size_t *good = w->rows, *bad = w->rows + n_good;
    size_t n_bad = n - n_good;
    for (size_t c = 0; c < nc; c++)
        w->score[c] = 0;
    for (size_t j = 0; j < np; j++) {
        const ferry__tpe_param *p = &t->params[j];
        if (p->kind == FERRY_TPE_CATEGORICAL) {
            ferry__cat_fit(t, j, good, n_good, w->lcat);
            ferry__cat_fit(t, j, bad, n_bad, w->gcat);
            for (size_t c = 0; c < nc; c++) {
                size_t pick = ferry__cat_draw(w->lcat, p->k, &t->rng);
                w->cand[c * np + j] = (double)pick;
                w->score[c] += w->lcat[pick] - w->gcat[pick];
            }
            continue;
        }
        for (size_t i = 0; i < n_good; i++)
            w->good[i] = t->xs[good[i] * np + j];
        for (size_t i = 0; i < n_bad; i++)
            w->bad[i] = t->xs[bad[i] * np + j];
        ferry__parzen_fit(&w->l, w->good, n_good, p->lo, p->hi);
        ferry__parzen_fit(&w->g, w->bad, n_bad, p->lo, p->hi);
        int bin = p->kind == FERRY_TPE_INTEGER;
        for (size_t c = 0; c < nc; c++) {
            double x = ferry__parzen_draw(&w->l, &t->rng);
            if (bin)
                x = floor(x + 0.5) < p->min   ? p->min
                    : floor(x + 0.5) > p->max ? p->max
                                              : floor(x + 0.5);
            w->cand[c * np + j] = x;
            /* integers repeat among candidates: an earlier one's ratio serves */
            size_t same = c;
            for (size_t d = 0; bin && d < c && same == c; d++)
                if (w->cand[d * np + j] == x)
                    same = d;
            w->ratio[c] = same < c ? w->ratio[same]
                                   : ferry__parzen_log(&w->l, x, bin, w->scratch) -
                                         ferry__parzen_log(&w->g, x, bin, w->scratch);
            w->score[c] += w->ratio[c];
        }
    }
}

/* The caller's values of internal `x`, and the same back in internal units,
 * so that what stands as a liar is what the point says. */
static void ferry__tpe_round(const ferry_tpe *t, const double *x, double *ext, double *in)
{
    for (size_t i = 0; i < t->n_params; i++) {
        ext[i] = ferry__tpe_external(&t->params[i], x[i]);
        in[i] = t->params[i].kind == FERRY_TPE_LOGUNIFORM ? log(ext[i]) : ext[i];
    }
}

static int ferry__tpe_seen(const double *batch, size_t n, const double *ext, size_t np)
{
    for (size_t i = 0; i < n; i++)
        if (memcmp(batch + i * np, ext, np * sizeof(*ext)) == 0)
            return 1;
    return 0;
}

/* One point into ext/in: random while in the startup, else the best
 * candidate that the batch does not hold yet. */
static void ferry__tpe_one(ferry_tpe *t, ferry__tpe_work *w, const double *batch, size_t n_batch,
                           double *ext, double *in)
{
    size_t np = t->n_params;
    int startup = t->n_proposed < t->n_startup;
    for (int tries = 0; tries < FERRY__TPE_TRIES; tries++) {
        if (startup || tries >= 10) { /* after 10 rounds of candidates: the prior */
            ferry__tpe_prior_draw(t, &t->rng, w->cand);
            ferry__tpe_round(t, w->cand, ext, in);
            if (!ferry__tpe_seen(batch, n_batch, ext, np))
                return;
            continue;
        }
        ferry__tpe_candidates(t, w, FERRY__TPE_CANDIDATES);
        /* best first; a candidate the batch holds is passed over */
        for (;;) {
            size_t best = FERRY__TPE_CANDIDATES;
            for (size_t c = 0; c < FERRY__TPE_CANDIDATES; c++)
                if (!isnan(w->score[c]) &&
                    (best == FERRY__TPE_CANDIDATES || w->score[c] > w->score[best]))
                    best = c;
            if (best == FERRY__TPE_CANDIDATES)
                break;
            ferry__tpe_round(t, w->cand + best * np, ext, in);
            if (!ferry__tpe_seen(batch, n_batch, ext, np))
                return;
            w->score[best] = NAN;
        }
    }
    /* a small discrete space: a repeat rather than no point */
}

static json_t *ferry__tpe_point(const ferry_tpe *t, const double *ext)
{
    json_t *o = json_object();
    for (size_t i = 0; i < t->n_params; i++) {
        const ferry__tpe_param *p = &t->params[i];
        json_t *v;
        if (p->kind == FERRY_TPE_CATEGORICAL)
            v = json_deep_copy(json_array_get(p->choices, (size_t)ext[i]));
        else if (p->kind == FERRY_TPE_INTEGER)
            v = json_integer((json_int_t)ext[i]);
        else
            v = json_real(ext[i] == 0 ? 0 : ext[i]);
        json_object_set_new(o, p->name, v);
    }
    return o;
}

int ferry_tpe_propose(ferry_tpe *t, size_t batch, json_t **points)
{
    if (!t || batch == 0 || !points)
        return FERRY_EINVAL;
    size_t np = t->n_params, n_real = t->n_obs, most = t->n_obs + batch;
    ferry__tpe_work w = {0};
    size_t max_k = 1;
    for (size_t i = 0; i < np; i++)
        if (t->params[i].k > max_k)
            max_k = t->params[i].k;
    w.order = ferry_xmalloc(most * sizeof(*w.order));
    w.rows = ferry_xmalloc(most * sizeof(*w.rows));
    w.good = ferry_xmalloc(most * sizeof(*w.good));
    w.bad = ferry_xmalloc(most * sizeof(*w.bad));
    w.cand = ferry_xmalloc(FERRY__TPE_CANDIDATES * np * sizeof(*w.cand));
    w.score = ferry_xmalloc(FERRY__TPE_CANDIDATES * sizeof(*w.score));
    w.ratio = ferry_xmalloc(FERRY__TPE_CANDIDATES * sizeof(*w.ratio));
    w.scratch = ferry_xmalloc((most + 1) * sizeof(*w.scratch));
    w.lcat = ferry_xmalloc(max_k * sizeof(*w.lcat));
    w.gcat = ferry_xmalloc(max_k * sizeof(*w.gcat));
    double *chosen = ferry_xmalloc(batch * np * sizeof(*chosen));
    double *in = ferry_xmalloc(np * sizeof(*in));
    /* the liar: the worst loss seen (none to lie with before any) */
    double liar = -INFINITY;
    for (size_t i = 0; i < n_real; i++)
        if (t->loss[i] > liar)
            liar = t->loss[i];
    json_t *out = json_array();
    for (size_t b = 0; b < batch; b++) {
        double *ext = chosen + b * np;
        ferry__tpe_one(t, &w, chosen, b, ext, in);
        t->n_proposed++;
        json_array_append_new(out, ferry__tpe_point(t, ext));
        if (n_real > 0)
            ferry__tpe_push(t, in, liar);
    }
    t->n_obs = n_real; /* the liars go */
    ferry__parzen_clear(&w.l);
    ferry__parzen_clear(&w.g);
    free(w.order);
    free(w.rows);
    free(w.good);
    free(w.bad);
    free(w.cand);
    free(w.score);
    free(w.ratio);
    free(w.scratch);
    free(w.lcat);
    free(w.gcat);
    free(chosen);
    free(in);
    *points = out;
    return 0;
}
