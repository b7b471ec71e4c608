/* The Bayesian optimiser's proposal time (issue 21, BENCHMARKS.md): a TPE
 * of 5 parameters (uniform, loguniform, integer, categorical, uniform) with
 * 1,000 observations of a made-up objective, then 20 proposals of one point
 * each, timed one by one. Not a test (the target, under 5 ms, is a figure).
 *
 *   tpe_bench [OBSERVATIONS [PROPOSALS]]
 *
 * Prints {"observations": N, "proposal_ms": [...], "median_ms": M} on stdout. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "stepfile.h"

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double objective(const double *x)
{
    double a = x[0] - 0.3, b = log10(x[1]) + 3, c = x[2] - 7, e = x[4] - 0.5;
    return a * a + b * b + 0.01 * c * c + (x[3] == 1 ? 0 : 0.5) + e * e;
}

int main(int argc, char **argv)
{
    size_t n_obs = argc > 1 ? strtoul(argv[1], NULL, 10) : 1000;
    size_t n_prop = argc > 2 ? strtoul(argv[2], NULL, 10) : 20;
    if (n_prop == 0 || n_prop > 10000) {
        fprintf(stderr, "usage: tpe_bench [OBSERVATIONS [PROPOSALS (1..10000)]]\n");
        return 2;
    }
    json_t *choices = json_loads("[\"adam\", \"sgd\", \"rmsprop\", \"adagrad\"]", 0, NULL);
    ferry_tpe_space space[] = {
        {"a", FERRY_TPE_UNIFORM, 0, 1, NULL},  {"lr", FERRY_TPE_LOGUNIFORM, 1e-5, 1e-1, NULL},
        {"n", FERRY_TPE_INTEGER, 1, 16, NULL}, {"opt", FERRY_TPE_CATEGORICAL, 0, 0, choices},
        {"e", FERRY_TPE_UNIFORM, -1, 1, NULL},
    };
    ferry_tpe *t = ferry_tpe_new(space, 5, 1, 1, 0);
    if (!t) {
        fprintf(stderr, "tpe_bench: the space was refused\n");
        return 1;
    }
    /* the observations as a task's results would be: random points */
    unsigned long long s = 12345;
    for (size_t i = 0; i < n_obs; i++) {
        double u[5];
        for (int j = 0; j < 5; j++) {
            s = s * 6364136223846793005ULL + 1442695040888963407ULL;
            u[j] = (double)(s >> 11) * 0x1.0p-53;
        }
        double x[5] = {u[0], exp(log(1e-5) + u[1] * (log(1e-1) - log(1e-5))), floor(1 + u[2] * 16),
                       floor(u[3] * 4), -1 + 2 * u[4]};
        if (x[2] > 16)
            x[2] = 16;
        ferry_tpe_observe(t, x, objective(x));
    }
    double *ms = malloc(n_prop * sizeof(*ms));
    /* past the startup: every timed proposal is a TPE one */
    json_t *warm = NULL;
    ferry_tpe_propose(t, 20, &warm);
    json_decref(warm);
    for (size_t i = 0; i < n_prop; i++) {
        json_t *pts = NULL;
        double t0 = now_ms();
        ferry_tpe_propose(t, 1, &pts);
        ms[i] = now_ms() - t0;
        json_decref(pts);
    }
    printf("{\"observations\": %zu, \"proposal_ms\": [", n_obs);
    for (size_t i = 0; i < n_prop; i++)
        printf("%s%.3f", i ? ", " : "", ms[i]);
    qsort(ms, n_prop, sizeof(*ms), cmp_double);
    double med = n_prop % 2 ? ms[n_prop / 2] : 0.5 * (ms[n_prop / 2 - 1] + ms[n_prop / 2]);
    printf("], \"median_ms\": %.3f}\n", med);
    free(ms);
    ferry_tpe_free(t);
    json_decref(choices);
    return 0;
}
