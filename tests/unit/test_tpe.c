/* The TPE of bayesian_tpe tasks (issue 21, lib/stepfile/tpe.c): it beats
 * random search on Branin (60 evaluations, 20 seeds each; the test prints
 * by how much), the same seed gives the same points, points stay in their
 * space, the first n_startup come from the prior whatever is observed,
 * batches are distinct, maximising works, and bad spaces and points are
 * refused with why. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <ferry/error.h>

#include "stepfile.h"
#include "test.h"

static char errbuf[1024];

/* Branin-Hoo: x1 in [-5, 10], x2 in [0, 15]; minimum 0.397887 at three points. */
static double branin(double x1, double x2)
{
    const double pi = 3.14159265358979323846;
    double b = 5.1 / (4 * pi * pi), c = 5 / pi, t = 1 / (8 * pi);
    double a = x2 - b * x1 * x1 + c * x1 - 6;
    return a * a + 10 * (1 - t) * cos(x1) + 10;
}

static const ferry_tpe_space branin_space[] = {
    {"x1", FERRY_TPE_UNIFORM, -5, 10, NULL},
    {"x2", FERRY_TPE_UNIFORM, 0, 15, NULL},
};

static double num(const json_t *point, const char *name)
{
    return json_number_value(json_object_get(point, name));
}

/* The best Branin value of `evals` evaluations proposed one at a time by a
 * TPE of `seed`, with `n_startup` random points first (n_startup = evals:
 * random search, the same space drawn uniformly from the same seed). */
static double branin_best(uint64_t seed, size_t n_startup, size_t evals)
{
    ferry_tpe *t = ferry_tpe_new(branin_space, 2, 1, seed, n_startup);
    double best = INFINITY;
    for (size_t i = 0; i < evals; i++) {
        json_t *pts = NULL;
        CHECK_INT(ferry_tpe_propose(t, 1, &pts), 0);
        json_t *p = json_array_get(pts, 0);
        double y = branin(num(p, "x1"), num(p, "x2"));
        best = y < best ? y : best;
        CHECK_INT(ferry_tpe_observe_point(t, p, y, errbuf, sizeof(errbuf)), 0);
        json_decref(pts);
    }
    CHECK_INT(ferry_tpe_observations(t), evals);
    ferry_tpe_free(t);
    return best;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, size_t n)
{
    qsort(v, n, sizeof(*v), cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static void test_branin(void)
{
    enum { SEEDS = 20, EVALS = 60 };
    double tpe[SEEDS], rnd[SEEDS];
    for (int s = 0; s < SEEDS; s++) {
        tpe[s] = branin_best((uint64_t)s + 1, 20, EVALS);
        rnd[s] = branin_best((uint64_t)s + 1, EVALS, EVALS);
        CHECK(tpe[s] >= 0.397887 - 1e-6 && rnd[s] >= 0.397887 - 1e-6);
    }
    double mt = median(tpe, SEEDS), mr = median(rnd, SEEDS);
    /* regret: how far above the minimum each one ends */
    double rt = mt - 0.397887, rr = mr - 0.397887;
    printf("branin, %d evaluations, %d seeds: median best TPE %.6f, random %.6f; "
           "random/TPE %.2fx, regret (best - 0.397887) random/TPE %.2fx\n",
           EVALS, SEEDS, mt, mr, mr / mt, rr / rt);
    CHECK(mt < mr);
}

static json_t *propose(ferry_tpe *t, size_t batch)
{
    json_t *pts = NULL;
    CHECK_INT(ferry_tpe_propose(t, batch, &pts), 0);
    CHECK_INT(json_array_size(pts), batch);
    return pts;
}

/* A space of every kind. */
static json_t *choices;
static ferry_tpe_space mixed[4];

static void mixed_init(void)
{
    choices = json_loads("[\"adam\", \"sgd\", 3, {\"a\": 1}]", 0, NULL);
    mixed[0] = (ferry_tpe_space){"lr", FERRY_TPE_LOGUNIFORM, 1e-5, 1e-1, NULL};
    mixed[1] = (ferry_tpe_space){"epochs", FERRY_TPE_INTEGER, 2, 9, NULL};
    mixed[2] = (ferry_tpe_space){"opt", FERRY_TPE_CATEGORICAL, 0, 0, choices};
    mixed[3] = (ferry_tpe_space){"drop", FERRY_TPE_UNIFORM, 0, 0.5, NULL};
}

/* A made-up objective of the mixed space: best at lr 1e-3, epochs 7, "sgd", drop 0.1. */
static double mixed_y(const json_t *p)
{
    double lr = log10(num(p, "lr")) + 3, ep = num(p, "epochs") - 7, d = num(p, "drop") - 0.1;
    const char *opt = json_string_value(json_object_get(p, "opt"));
    return lr * lr + 0.1 * ep * ep + 4 * d * d + (opt && strcmp(opt, "sgd") == 0 ? 0 : 1);
}

/* Each value of `p` inside its space, of its type; the counts of values seen. */
static void check_domain(const json_t *p, int *seen_epochs, int *seen_opt)
{
    CHECK_INT(json_object_size(p), 4);
    const json_t *lr = json_object_get(p, "lr"), *ep = json_object_get(p, "epochs");
    const json_t *opt = json_object_get(p, "opt"), *drop = json_object_get(p, "drop");
    CHECK(json_is_real(lr) && json_real_value(lr) >= 1e-5 && json_real_value(lr) <= 1e-1);
    CHECK(json_is_integer(ep) && json_integer_value(ep) >= 2 && json_integer_value(ep) <= 9);
    CHECK(json_is_real(drop) && json_real_value(drop) >= 0 && json_real_value(drop) <= 0.5);
    int found = -1;
    for (size_t c = 0; c < json_array_size(choices); c++)
        if (json_equal(json_array_get(choices, c), (json_t *)opt))
            found = (int)c;
    CHECK(found >= 0);
    if (found >= 0)
        seen_opt[found]++;
    if (json_is_integer(ep) && json_integer_value(ep) >= 2 && json_integer_value(ep) <= 9)
        seen_epochs[json_integer_value(ep) - 2]++;
}

/* 120 points (20 random, 100 TPE, in batches of 4) stay in the space; every
 * integer and choice is reached, and the TPE settles on the best choice. */
static void test_domains(void)
{
    ferry_tpe *t = ferry_tpe_new(mixed, 4, 1, 7, 0);
    CHECK(t != NULL);
    int seen_epochs[8] = {0}, seen_opt[4] = {0}, late_sgd = 0;
    for (int round = 0; round < 30; round++) {
        json_t *pts = propose(t, 4);
        for (size_t i = 0; i < json_array_size(pts); i++) {
            json_t *p = json_array_get(pts, i);
            check_domain(p, seen_epochs, seen_opt);
            if (round >= 20)
                late_sgd += json_is_string(json_object_get(p, "opt")) &&
                            strcmp(json_string_value(json_object_get(p, "opt")), "sgd") == 0;
            CHECK_INT(ferry_tpe_observe_point(t, p, mixed_y(p), errbuf, sizeof(errbuf)), 0);
        }
        json_decref(pts);
    }
    for (int i = 0; i < 8; i++)
        CHECK(seen_epochs[i] > 0);
    for (int i = 0; i < 4; i++)
        CHECK(seen_opt[i] > 0);
    /* 40 late points: chance (1/4) gives about 10 */
    printf("mixed space: %d of the last 40 points pick \"sgd\"\n", late_sgd);
    CHECK(late_sgd > 20);
    ferry_tpe_free(t);
}

/* The same seed and calls give the same points; another seed others. */
static void test_determinism(void)
{
    json_t *runs[3];
    uint64_t seeds[3] = {42, 42, 43};
    for (int r = 0; r < 3; r++) {
        ferry_tpe *t = ferry_tpe_new(mixed, 4, 1, seeds[r], 5);
        runs[r] = json_array();
        for (int round = 0; round < 8; round++) {
            json_t *pts = propose(t, 3);
            for (size_t i = 0; i < json_array_size(pts); i++)
                ferry_tpe_observe_point(t, json_array_get(pts, i), mixed_y(json_array_get(pts, i)),
                                        NULL, 0);
            json_array_extend(runs[r], pts);
            json_decref(pts);
        }
        ferry_tpe_free(t);
    }
    CHECK(json_equal(runs[0], runs[1]));
    CHECK(!json_equal(runs[0], runs[2]));
    for (int r = 0; r < 3; r++)
        json_decref(runs[r]);
}

/* The first n_startup proposals are the prior's whatever was observed; the
 * ones after follow the observations. */
static void test_startup(void)
{
    ferry_tpe *a = ferry_tpe_new(branin_space, 2, 1, 9, 0);
    ferry_tpe *b = ferry_tpe_new(branin_space, 2, 1, 9, 0);
    json_t *pa = json_array(), *pb = json_array();
    for (int i = 0; i < 25; i++) {
        json_t *x = propose(a, 1), *y = propose(b, 1);
        json_t *p = json_array_get(x, 0), *q = json_array_get(y, 0);
        /* a sees Branin, b its opposite */
        ferry_tpe_observe_point(a, p, branin(num(p, "x1"), num(p, "x2")), NULL, 0);
        ferry_tpe_observe_point(b, q, -branin(num(q, "x1"), num(q, "x2")), NULL, 0);
        json_array_extend(pa, x);
        json_array_extend(pb, y);
        json_decref(x);
        json_decref(y);
    }
    for (size_t i = 0; i < 20; i++)
        CHECK(json_equal(json_array_get(pa, i), json_array_get(pb, i)));
    int differ = 0;
    for (size_t i = 20; i < 25; i++)
        differ += !json_equal(json_array_get(pa, i), json_array_get(pb, i));
    CHECK_INT(differ, 5);
    /* the 20 startup points spread over the space: each half of x1 holds some */
    int low = 0;
    for (size_t i = 0; i < 20; i++)
        low += num(json_array_get(pa, i), "x1") < 2.5;
    CHECK(low >= 4 && low <= 16);
    json_decref(pa);
    json_decref(pb);
    ferry_tpe_free(a);
    ferry_tpe_free(b);
}

static int count_distinct(const json_t *pts)
{
    int dup = 0;
    for (size_t i = 0; i < json_array_size(pts); i++)
        for (size_t j = 0; j < i; j++)
            dup += json_equal(json_array_get(pts, i), json_array_get(pts, j));
    return (int)json_array_size(pts) - dup;
}

/* A batch's points differ from each other, in the startup and after; a
 * discrete space of 6 points gives its 6 in a batch of 6. */
static void test_batch(void)
{
    ferry_tpe *t = ferry_tpe_new(branin_space, 2, 1, 3, 10);
    for (int round = 0; round < 4; round++) {
        json_t *pts = propose(t, 8);
        CHECK_INT(count_distinct(pts), 8);
        for (size_t i = 0; i < json_array_size(pts); i++) {
            json_t *p = json_array_get(pts, i);
            ferry_tpe_observe_point(t, p, branin(num(p, "x1"), num(p, "x2")), NULL, 0);
        }
        json_decref(pts);
    }
    ferry_tpe_free(t);

    json_t *ab = json_loads("[\"a\", \"b\"]", 0, NULL);
    ferry_tpe_space small[] = {
        {"n", FERRY_TPE_INTEGER, 1, 3, NULL},
        {"c", FERRY_TPE_CATEGORICAL, 0, 0, ab},
    };
    t = ferry_tpe_new(small, 2, 1, 5, 2);
    json_decref(ab); /* the TPE holds its own copy */
    json_t *first = propose(t, 2);
    for (size_t i = 0; i < 2; i++)
        ferry_tpe_observe_point(t, json_array_get(first, i), (double)i, NULL, 0);
    json_decref(first);
    json_t *pts = propose(t, 6);
    CHECK_INT(count_distinct(pts), 6);
    json_decref(pts);
    ferry_tpe_free(t);
}

/* Maximising -Branin finds what minimising Branin does: from the same seed
 * the very same points (the losses are the same). */
static void test_maximize(void)
{
    ferry_tpe *mn = ferry_tpe_new(branin_space, 2, 1, 11, 0);
    ferry_tpe *mx = ferry_tpe_new(branin_space, 2, 0, 11, 0);
    double best = INFINITY;
    int same = 1;
    for (int i = 0; i < 40; i++) {
        json_t *a = propose(mn, 1), *b = propose(mx, 1);
        json_t *p = json_array_get(a, 0);
        double y = branin(num(p, "x1"), num(p, "x2"));
        same &= json_equal(a, b);
        ferry_tpe_observe_point(mn, p, y, NULL, 0);
        ferry_tpe_observe_point(mx, json_array_get(b, 0), -y, NULL, 0);
        best = y < best ? y : best;
        json_decref(a);
        json_decref(b);
    }
    CHECK(same);
    CHECK(best < 2.0);
    /* and maximising +Branin climbs: past the startup its points are
     * higher than the random ones, and the minimiser's lower */
    ferry_tpe *up = ferry_tpe_new(branin_space, 2, 0, 11, 0);
    ferry_tpe *down = ferry_tpe_new(branin_space, 2, 1, 11, 0);
    double mean_up[2] = {0, 0}, mean_down[2] = {0, 0};
    for (int i = 0; i < 40; i++) {
        json_t *a = propose(up, 1), *b = propose(down, 1);
        json_t *p = json_array_get(a, 0), *q = json_array_get(b, 0);
        double y = branin(num(p, "x1"), num(p, "x2")), z = branin(num(q, "x1"), num(q, "x2"));
        mean_up[i >= 20] += y / 20;
        mean_down[i >= 20] += z / 20;
        ferry_tpe_observe_point(up, p, y, NULL, 0);
        ferry_tpe_observe_point(down, q, z, NULL, 0);
        json_decref(a);
        json_decref(b);
    }
    printf("branin, mean of 20 random points %.1f; of the next 20 maximising %.1f, minimising "
           "%.1f\n",
           mean_up[0], mean_up[1], mean_down[1]);
    CHECK(mean_up[0] == mean_down[0]);    /* the same startup */
    CHECK(mean_up[1] > 1.3 * mean_up[0]); /* the wrong sign would give about 18 */
    CHECK(mean_down[1] < 0.5 * mean_down[0]);
    ferry_tpe_free(up);
    ferry_tpe_free(down);
    ferry_tpe_free(mn);
    ferry_tpe_free(mx);
}

/* Failed runs (y NaN) are the worst, not a crash; a TPE without any
 * observation past the startup still proposes from the prior. */
static void test_edges(void)
{
    ferry_tpe *t = ferry_tpe_new(branin_space, 2, 1, 1, 1);
    json_t *pts = propose(t, 3); /* 1 startup, 2 TPE with nothing seen */
    CHECK_INT(count_distinct(pts), 3);
    for (size_t i = 0; i < 3; i++)
        CHECK_INT(ferry_tpe_observe_point(t, json_array_get(pts, i), NAN, NULL, 0), 0);
    json_decref(pts);
    pts = propose(t, 2);
    CHECK_INT(count_distinct(pts), 2);
    json_decref(pts);
    CHECK_INT(ferry_tpe_propose(t, 0, &pts), FERRY_EINVAL);
    ferry_tpe_free(t);
}

#define CHECK_SPACE_BAD(sp, n, want)                                                               \
    do {                                                                                           \
        errbuf[0] = '\0';                                                                          \
        CHECK_INT(ferry_tpe_space_check(sp, n, errbuf, sizeof(errbuf)), FERRY_EINVAL);             \
        CHECK_CONTAINS(errbuf, want);                                                              \
        CHECK(ferry_tpe_new(sp, n, 1, 0, 0) == NULL);                                              \
    } while (0)

static void test_refusals(void)
{
    ferry_tpe_space s[2] = {{"lr", FERRY_TPE_LOGUNIFORM, 0, 1, NULL}};
    CHECK_SPACE_BAD(s, 1, "parameter 'lr': loguniform needs 0 < min < max, got min 0, max 1");
    s[0] = (ferry_tpe_space){"x", FERRY_TPE_UNIFORM, 2, 1, NULL};
    CHECK_SPACE_BAD(s, 1, "parameter 'x': uniform needs finite min < max");
    s[0] = (ferry_tpe_space){"n", FERRY_TPE_INTEGER, 1.5, 4, NULL};
    CHECK_SPACE_BAD(s, 1, "parameter 'n': integer needs integers");
    s[0] = (ferry_tpe_space){"c", FERRY_TPE_CATEGORICAL, 0, 0, NULL};
    CHECK_SPACE_BAD(s, 1, "parameter 'c': categorical needs a non-empty array");
    s[0] = (ferry_tpe_space){"x", FERRY_TPE_UNIFORM, 0, 1, NULL};
    s[1] = (ferry_tpe_space){"x", FERRY_TPE_UNIFORM, 0, 1, NULL};
    CHECK_SPACE_BAD(s, 2, "parameter 'x': given twice");
    CHECK_SPACE_BAD(s, 0, "no parameters");

    ferry_tpe *t = ferry_tpe_new(mixed, 4, 1, 0, 0);
    json_t *p =
        json_loads("{\"lr\": 0.01, \"epochs\": 3, \"opt\": \"rmsprop\", \"drop\": 0.2}", 0, NULL);
    CHECK_INT(ferry_tpe_observe_point(t, p, 1, errbuf, sizeof(errbuf)), FERRY_EINVAL);
    CHECK_STR(errbuf, "parameter 'opt': \"rmsprop\" is not one of the choices");
    json_object_set_new(p, "opt", json_integer(3)); /* a choice that is a number */
    CHECK_INT(ferry_tpe_observe_point(t, p, 1, errbuf, sizeof(errbuf)), 0);
    json_object_set_new(p, "lr", json_real(0.5));
    CHECK_INT(ferry_tpe_observe_point(t, p, 1, errbuf, sizeof(errbuf)), FERRY_EINVAL);
    CHECK_CONTAINS(errbuf, "parameter 'lr': 0.5 is outside [1.0000000000000001e-05, 0.1");
    json_object_set_new(p, "lr", json_real(0.001));
    json_object_set_new(p, "epochs", json_real(3.5));
    CHECK_INT(ferry_tpe_observe_point(t, p, 1, errbuf, sizeof(errbuf)), FERRY_EINVAL);
    CHECK_CONTAINS(errbuf, "parameter 'epochs': 3.5 is outside [2, 9] or not an integer");
    json_object_del(p, "epochs");
    CHECK_INT(ferry_tpe_observe_point(t, p, 1, errbuf, sizeof(errbuf)), FERRY_EINVAL);
    CHECK_STR(errbuf, "parameter 'epochs': missing");
    CHECK_INT(ferry_tpe_observations(t), 1); /* only the good one counted */
    double x[4] = {0.01, 4, 4 /* no fifth choice */, 0.2};
    CHECK_INT(ferry_tpe_observe(t, x, 1), FERRY_EINVAL);
    x[2] = 1;
    CHECK_INT(ferry_tpe_observe(t, x, 1), 0);
    CHECK_INT(ferry_tpe_observations(t), 2);
    json_decref(p);
    ferry_tpe_free(t);
}

int main(void)
{
    mixed_init();
    test_branin();
    test_domains();
    test_determinism();
    test_startup();
    test_batch();
    test_maximize();
    test_edges();
    test_refusals();
    json_decref(choices);
    TEST_MAIN_END();
}
