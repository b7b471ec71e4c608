/* Sweeps (issue 21): the CLI's value grammar (ferry_sweep_parse), a task
 * parameter's rules as values, and the points of grid, random and manual
 * searches: their order, the grid's cap, typing by the step, and seeds that
 * give the same points again. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <ferry/error.h>

#include "unit/stepfile_fixture.h"

static char errbuf[4096];

/* `text` parses to a list of `want` (JSON). */
static void check_list(const char *text, const char *want, int line)
{
    ferry_sweep_values v;
    int rc = ferry_sweep_parse(text, &v, errbuf, sizeof(errbuf));
    if (rc != 0) {
        fprintf(stderr, "line %d: %s: %s\n", line, text, errbuf);
        ferry_test_failures++;
        return;
    }
    CHECK_INT(v.kind, FERRY_SWEEP_LIST);
    stepfile_fixture_json(v.values, want, line);
    ferry_sweep_values_clear(&v);
}
#define CHECK_LIST(text, want) check_list(text, want, __LINE__)

static void check_bad(const char *text, const char *want, int line)
{
    ferry_sweep_values v;
    errbuf[0] = '\0';
    int rc = ferry_sweep_parse(text, &v, errbuf, sizeof(errbuf));
    if (rc != FERRY_EINVAL || !strstr(errbuf, want)) {
        fprintf(stderr, "line %d: %s: rc %d, \"%s\", expected \"%s\"\n", line, text, rc, errbuf,
                want);
        ferry_test_failures++;
    }
    CHECK(v.values == NULL && v.texts == NULL); /* nothing left to free */
    ferry_sweep_values_clear(&v);
}
#define CHECK_BAD(text, want) check_bad(text, want, __LINE__)

static void test_grammar(void)
{
    CHECK_LIST("0.1", "[0.1]");
    CHECK_LIST("  7 ", "[7]");
    CHECK_LIST("adam", "[\"adam\"]");
    CHECK_LIST("[0.1,0.01]", "[0.1, 0.01]");
    CHECK_LIST("[1, 'a,b', \"c\\\"d\", e f ]", "[1, \"a,b\", \"c\\\"d\", \"e f\"]");
    CHECK_LIST("['007']", "[\"007\"]");
    CHECK_LIST("linear(1,5,1)", "[1, 2, 3, 4, 5]");
    CHECK_LIST("LINEAR( 1 , 5 , 2 )", "[1, 3, 5]");
    CHECK_LIST("linear(5,1,-2)", "[5, 3, 1]");
    CHECK_LIST("linear(1,4,2)", "[1, 3]"); /* the end is not on a step */
    CHECK_LIST("linear(0,1,0.25)", "[0.0, 0.25, 0.5, 0.75, 1.0]");
    CHECK_LIST("logspace(0,3,4)", "[1.0, 10.0, 100.0, 1000.0]");
    CHECK_LIST("logspace(0,4,3,2)", "[1.0, 4.0, 16.0]");
    CHECK_LIST("logspace(2,2,1)", "[100.0]");

    /* no float noise: 0.1 + 2 * 0.1 is 0.30000000000000004 unrounded */
    ferry_sweep_values v;
    CHECK_INT(ferry_sweep_parse("linear(0.1,0.5,0.1)", &v, errbuf, sizeof(errbuf)), 0);
    CHECK_INT(json_array_size(v.values), 5);
    const double tenths[] = {0.1, 0.2, 0.3, 0.4, 0.5};
    for (size_t i = 0; i < 5 && i < json_array_size(v.values); i++) {
        CHECK(json_is_real(json_array_get(v.values, i)));
        CHECK(json_real_value(json_array_get(v.values, i)) == tenths[i]);
    }
    ferry_sweep_values_clear(&v);
    CHECK_INT(ferry_sweep_parse("logspace(-4,-1,4)", &v, errbuf, sizeof(errbuf)), 0);
    const double decades[] = {0.0001, 0.001, 0.01, 0.1};
    CHECK_INT(json_array_size(v.values), 4);
    for (size_t i = 0; i < 4 && i < json_array_size(v.values); i++)
        CHECK(json_real_value(json_array_get(v.values, i)) == decades[i]);
    ferry_sweep_values_clear(&v);

    /* the texts as written, for the step's types */
    CHECK_INT(ferry_sweep_parse("[007, 1.50]", &v, errbuf, sizeof(errbuf)), 0);
    CHECK_JSON(v.values, "[7, 1.5]");
    CHECK_JSON(v.texts, "[\"007\", \"1.50\"]");
    ferry_sweep_values_clear(&v);

    CHECK_INT(ferry_sweep_parse("random(0.001, 0.1, loguniform)", &v, errbuf, sizeof(errbuf)), 0);
    CHECK_INT(v.kind, FERRY_SWEEP_RANDOM);
    CHECK_INT(v.distribution, FERRY_DIST_LOGUNIFORM);
    CHECK(v.min == 0.001 && v.max == 0.1);
    CHECK(v.values == NULL);
    ferry_sweep_values_clear(&v);
    CHECK_INT(ferry_sweep_parse("random(-1,1)", &v, errbuf, sizeof(errbuf)), 0);
    CHECK_INT(v.distribution, FERRY_DIST_UNIFORM);
    CHECK(v.min == -1 && v.max == 1);
    ferry_sweep_values_clear(&v);
    CHECK_INT(ferry_sweep_parse("random(5,2,Normal)", &v, errbuf, sizeof(errbuf)), 0);
    CHECK_INT(v.distribution, FERRY_DIST_NORMAL);
    CHECK(v.min == 5 && v.max == 2);
    ferry_sweep_values_clear(&v);
}

static void test_bad_grammar(void)
{
    CHECK_BAD("", "no value given");
    CHECK_BAD("  ", "no value given");
    CHECK_BAD("[]", "[]: an empty list gives no values");
    CHECK_BAD("[1,]", "[1,]: an empty item after the last ','");
    CHECK_BAD("[1,,2]", "[1,,2]: an empty item or a nested list");
    CHECK_BAD("[1,[2]]", "an empty item or a nested list");
    CHECK_BAD("[1,2", "[1,2: a list ends with ']'");
    CHECK_BAD("['a]", "['a]: a quote (') is not closed");
    CHECK_BAD("['a' b]", "expected ',' after the quoted 'a'");
    CHECK_BAD("linear(1,5)", "linear(1,5): expected 3 numbers (start, end, step), got 2");
    CHECK_BAD("linear(1,5,1,1)", "linear(1,5,1,1): expected 3 numbers (start, end, step), got 4");
    CHECK_BAD("linear(1,5,0)", "linear(1,5,0): step must not be 0");
    CHECK_BAD("linear(5,1,1)", "linear(5,1,1): a step of 1 goes away from the end (5 to 1)");
    CHECK_BAD("linear(1,x,1)", "linear(1,x,1): 'x' is not a number");
    CHECK_BAD("linear(1,0x10,1)", "'0x10' is not a number");
    CHECK_BAD("linear(1,2,1", "linear(1,2,1: expected ')' at the end");
    CHECK_BAD("linear(0,1e9,1)", "linear makes 1000000001 values; at most 1000000 are allowed");
    CHECK_BAD("logspace(0,1)",
              "logspace(0,1): expected 3 or 4 numbers (start, end, count[, base])");
    CHECK_BAD("logspace(0,1,0)", "count must be a whole number of at least 1");
    CHECK_BAD("logspace(0,1,2.5)", "count must be a whole number of at least 1");
    CHECK_BAD("logspace(0,1,2,-1)", "base must be above 0");
    CHECK_BAD("logspace(0,400,2)", "10^400 is too large");
    CHECK_BAD("random(1)", "random(1): expected min, max and a distribution");
    CHECK_BAD("random(1,0)", "random(1,0): min 1 is above max 0");
    CHECK_BAD("random(0,1,gauss)", "random(0,1,gauss): unknown distribution 'gauss'");
    CHECK_BAD("random(0,1,loguniform)", "loguniform needs a min above 0, got 0");
    CHECK_BAD("random(0,-1,normal)", "the standard deviation (the second number) must not be "
                                     "negative");
    CHECK_BAD("random(0,1,normal,3)", "unexpected '3' after 'normal'");
}

/* A step: epochs integer 1..100, lr float, name string, multiple repeat. */
static ferry_stepfile *parse_step(void)
{
    static const char yaml[] = "- step:\n"
                               "    name: s\n"
                               "    image: busybox\n"
                               "    command: \"true\"\n"
                               "    parameters:\n"
                               "      - name: epochs\n"
                               "        type: integer\n"
                               "        min: 1\n"
                               "        max: 100\n"
                               "      - name: lr\n"
                               "        type: float\n"
                               "      - name: opt\n"
                               "        type: string\n"
                               "        choices: [adam, sgd, '007']\n"
                               "      - name: layers\n"
                               "        type: integer\n"
                               "        multiple: repeat\n";
    return stepfile_fixture_buffer(yaml, errbuf, sizeof(errbuf));
}

/* params[i] from texts[i]; 0 when all parse. */
static int make_params(ferry_sweep_param *params, const char *const *names,
                       const char *const *texts, size_t n)
{
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        params[i].name = names[i];
        if (ferry_sweep_parse(texts[i], &params[i].values, errbuf, sizeof(errbuf)) != 0) {
            fprintf(stderr, "%s: %s\n", texts[i], errbuf);
            ferry_test_failures++;
            rc = -1;
        }
    }
    return rc;
}

static void clear_params(ferry_sweep_param *params, size_t n)
{
    for (size_t i = 0; i < n; i++)
        ferry_sweep_values_clear(&params[i].values);
}

static void test_grid(void)
{
    const char *names[] = {"lr", "bs"}, *texts[] = {"[0.1,0.01]", "[16,32,64]"};
    ferry_sweep_param p[2];
    if (make_params(p, names, texts, 2) != 0)
        return;
    json_t *points = NULL;
    CHECK_INT(ferry_sweep_grid(p, 2, NULL, 0, 6, &points, errbuf, sizeof(errbuf)), 0);
    /* the first parameter varies slowest; keys in the parameters' order */
    char *dump = points ? json_dumps(points, JSON_COMPACT | JSON_REAL_PRECISION(15)) : NULL;
    CHECK_STR(dump, "[{\"lr\":0.1,\"bs\":16},{\"lr\":0.1,\"bs\":32},{\"lr\":0.1,\"bs\":64},"
                    "{\"lr\":0.01,\"bs\":16},{\"lr\":0.01,\"bs\":32},{\"lr\":0.01,\"bs\":64}]");
    free(dump);
    json_decref(points);

    /* the cap: 6 points are refused under a limit of 5, naming the size */
    points = NULL;
    CHECK_INT(ferry_sweep_grid(p, 2, NULL, 0, 5, &points, errbuf, sizeof(errbuf)), FERRY_ETOOBIG);
    CHECK(points == NULL);
    CHECK_STR(errbuf, "the grid has 6 points, more than the limit of 5");
    clear_params(p, 2);

    /* a large product is refused before anything is built */
    const char *n3[] = {"a", "b", "c"};
    const char *t3[] = {"linear(1,1000,1)", "linear(1,1000,1)", "linear(1,1000,1)"};
    ferry_sweep_param q[3];
    if (make_params(q, n3, t3, 3) == 0) {
        CHECK_INT(ferry_sweep_grid(q, 3, NULL, 0, 1000, &points, errbuf, sizeof(errbuf)),
                  FERRY_ETOOBIG);
        CHECK_STR(errbuf, "the grid has 1000000000 points, more than the limit of 1000");
    }
    clear_params(q, 3);

    /* a distribution has no values for a grid unless its rules give a count */
    ferry_sweep_param r = {"lr", {0}};
    CHECK_INT(ferry_sweep_parse("random(0,1)", &r.values, errbuf, sizeof(errbuf)), 0);
    CHECK_INT(ferry_sweep_grid(&r, 1, NULL, 0, 100, &points, errbuf, sizeof(errbuf)), FERRY_EINVAL);
    CHECK_CONTAINS(errbuf, "parameter 'lr': a random distribution has no values for a grid");
    r.values.count = 3;
    CHECK_INT(ferry_sweep_grid(&r, 1, NULL, 9, 100, &points, errbuf, sizeof(errbuf)), 0);
    CHECK_INT(json_array_size(points), 3);
    for (size_t i = 0; i < json_array_size(points); i++) {
        double d = json_real_value(json_object_get(json_array_get(points, i), "lr"));
        CHECK(d >= 0 && d <= 1);
    }
    json_decref(points);
    ferry_sweep_values_clear(&r.values);
}

static void test_typed(void)
{
    ferry_stepfile *sf = parse_step();
    const ferry_step *step = sf ? ferry_stepfile_find(sf, "s") : NULL;
    if (!step)
        return;
    json_t *points = NULL;
    /* integers stay integers, a float parameter's values are reals, a
     * string's are as written, a multiple one's are lists */
    const char *names[] = {"epochs", "lr", "opt", "layers"};
    const char *texts[] = {"linear(1,3,1)", "[1, 0.5]", "[007, adam]", "4"};
    ferry_sweep_param p[4];
    if (make_params(p, names, texts, 4) == 0) {
        CHECK_INT(ferry_sweep_grid(p, 4, step, 0, 100, &points, errbuf, sizeof(errbuf)), 0);
        CHECK_INT(json_array_size(points), 12);
        CHECK_JSON(json_array_get(points, 0),
                   "{\"epochs\": 1, \"lr\": 1.0, \"opt\": \"007\", \"layers\": [4]}");
        CHECK_JSON(json_array_get(points, 11),
                   "{\"epochs\": 3, \"lr\": 0.5, \"opt\": \"adam\", \"layers\": [4]}");
        json_decref(points);
        points = NULL;
    }
    clear_params(p, 4);

    /* the step's rules hold: a maximum, an integer, a choice, a name */
    struct {
        const char *name, *text, *want;
    } bad[] = {
        {"epochs", "linear(90,110,10)", "parameter 'epochs': 110 is greater than the maximum 100"},
        {"epochs", "[1.5]", "parameter 'epochs': 1.5 is not an integer"},
        {"opt", "[adam, rmsprop]", "parameter 'opt': 'rmsprop' is not one of: adam, sgd, 007"},
        {"nope", "1", "parameter 'nope' is not a parameter of step 's'"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ferry_sweep_param b = {bad[i].name, {0}};
        CHECK_INT(ferry_sweep_parse(bad[i].text, &b.values, errbuf, sizeof(errbuf)), 0);
        points = NULL;
        errbuf[0] = '\0';
        CHECK_INT(ferry_sweep_grid(&b, 1, step, 0, 100, &points, errbuf, sizeof(errbuf)),
                  FERRY_EINVAL);
        CHECK(points == NULL);
        CHECK_STR(errbuf, bad[i].want);
        ferry_sweep_values_clear(&b.values);
    }

    /* drawn values of an integer parameter are integers within its bounds */
    ferry_sweep_param d = {"epochs", {0}};
    CHECK_INT(ferry_sweep_parse("random(1,100)", &d.values, errbuf, sizeof(errbuf)), 0);
    CHECK_INT(ferry_sweep_random(&d, 1, step, 5, 200, &points, errbuf, sizeof(errbuf)), 0);
    CHECK_INT(json_array_size(points), 200);
    int all_ints = 1, distinct_low = 0, distinct_high = 0;
    for (size_t i = 0; i < json_array_size(points); i++) {
        const json_t *e = json_object_get(json_array_get(points, i), "epochs");
        all_ints &=
            json_is_integer(e) && json_integer_value(e) >= 1 && json_integer_value(e) <= 100;
        distinct_low |= json_integer_value(e) <= 50;
        distinct_high |= json_integer_value(e) > 50;
    }
    CHECK(all_ints);
    CHECK(distinct_low && distinct_high);
    json_decref(points);
    /* a normal draw is clamped to the parameter's bounds */
    ferry_sweep_values_clear(&d.values);
    CHECK_INT(ferry_sweep_parse("random(100,50,normal)", &d.values, errbuf, sizeof(errbuf)), 0);
    CHECK_INT(ferry_sweep_random(&d, 1, step, 5, 100, &points, errbuf, sizeof(errbuf)), 0);
    int clamped = 1, at_max = 0;
    for (size_t i = 0; i < json_array_size(points); i++) {
        json_int_t e = json_integer_value(json_object_get(json_array_get(points, i), "epochs"));
        clamped &= e >= 1 && e <= 100;
        at_max += e == 100;
    }
    CHECK(clamped);
    CHECK(at_max > 30); /* about half the draws are above the mean, 100 */
    json_decref(points);
    ferry_sweep_values_clear(&d.values);

    /* manual: the sets as given, typed */
    json_t *sets = json_loads("[{\"epochs\": \"5\", \"lr\": 1}, {\"opt\": \"sgd\"}]", 0, NULL);
    CHECK_INT(ferry_sweep_manual(sets, step, &points, errbuf, sizeof(errbuf)), 0);
    CHECK_JSON(points, "[{\"epochs\": 5, \"lr\": 1.0}, {\"opt\": \"sgd\"}]");
    json_decref(points);
    json_decref(sets);
    sets = json_loads("[{\"epochs\": 5}, {\"epochs\": 500}]", 0, NULL);
    CHECK_INT(ferry_sweep_manual(sets, step, &points, errbuf, sizeof(errbuf)), FERRY_EINVAL);
    CHECK_STR(errbuf, "parameter set #2: parameter 'epochs': 500 is greater than the maximum 100");
    json_decref(sets);
    sets = json_loads("[{\"epochs\": 5}, 3]", 0, NULL);
    CHECK_INT(ferry_sweep_manual(sets, NULL, &points, errbuf, sizeof(errbuf)), FERRY_EINVAL);
    CHECK_STR(errbuf, "parameter set #2: expected a mapping of parameter names to values");
    json_decref(sets);
    sets = json_loads("[{\"x\": 5}]", 0, NULL);
    CHECK_INT(ferry_sweep_manual(sets, step, &points, errbuf, sizeof(errbuf)), FERRY_EINVAL);
    CHECK_STR(errbuf, "parameter set #1: parameter 'x' is not a parameter of step 's'");
    CHECK_INT(ferry_sweep_manual(sets, NULL, &points, errbuf, sizeof(errbuf)), 0);
    CHECK_JSON(points, "[{\"x\": 5}]");
    json_decref(points);
    json_decref(sets);
    sets = json_array();
    CHECK_INT(ferry_sweep_manual(sets, NULL, &points, errbuf, sizeof(errbuf)), FERRY_EINVAL);
    CHECK_STR(errbuf, "parameter sets: expected a list of at least one mapping");
    json_decref(sets);
    ferry_stepfile_free(sf);
}

static json_t *draw(const char *const *texts, const char *const *names, size_t n, uint64_t seed,
                    size_t count)
{
    ferry_sweep_param p[4];
    json_t *points = NULL;
    if (make_params(p, names, texts, n) == 0 &&
        ferry_sweep_random(p, n, NULL, seed, count, &points, errbuf, sizeof(errbuf)) != 0) {
        fprintf(stderr, "random: %s\n", errbuf);
        ferry_test_failures++;
    }
    clear_params(p, n);
    return points;
}

static void test_random(void)
{
    const char *names[] = {"lr", "opt", "momentum"};
    const char *texts[] = {"random(0.001,0.1,loguniform)", "[adam, sgd, rms]", "random(0.5,0.9)"};
    json_t *a = draw(texts, names, 3, 42, 1000), *b = draw(texts, names, 3, 42, 1000);
    json_t *c = draw(texts, names, 3, 43, 1000);
    CHECK_INT(json_array_size(a), 1000);
    CHECK(a && b && json_equal(a, b)); /* the same seed, the same points */
    CHECK(a && c && !json_equal(a, c));
    /* the first points of seed 42, as any machine draws them: recorded seeds
     * stay good only while the generator does not change */
    char *first = json_dumps(json_array_get(a, 0), JSON_COMPACT | JSON_REAL_PRECISION(12));
    CHECK_STR(first, "{\"lr\":0.0145859867503,\"opt\":\"adam\",\"momentum\":0.862496822949}");
    free(first);

    /* loguniform: within its bounds, and log-spread: half the draws are
     * below 0.01 (a uniform draw would put 9% there) */
    int in_bounds = 1, below = 0, momentum_ok = 1;
    int seen[3] = {0, 0, 0};
    for (size_t i = 0; i < json_array_size(a); i++) {
        const json_t *pt = json_array_get(a, i);
        double lr = json_real_value(json_object_get(pt, "lr"));
        double m = json_real_value(json_object_get(pt, "momentum"));
        in_bounds &= json_is_real(json_object_get(pt, "lr")) && lr >= 0.001 && lr <= 0.1;
        below += lr < 0.01;
        momentum_ok &= m >= 0.5 && m <= 0.9;
        const char *opt = json_string_value(json_object_get(pt, "opt"));
        seen[0] += opt && !strcmp(opt, "adam");
        seen[1] += opt && !strcmp(opt, "sgd");
        seen[2] += opt && !strcmp(opt, "rms");
    }
    CHECK(in_bounds);
    CHECK(below > 400 && below < 600);
    CHECK(momentum_ok);
    CHECK(seen[0] > 250 && seen[1] > 250 && seen[2] > 250); /* each a third, about */
    CHECK_INT(seen[0] + seen[1] + seen[2], 1000);

    /* a parameter added leaves the others' draws as they were */
    const char *names2[] = {"lr", "opt", "momentum", "extra"};
    const char *texts2[] = {texts[0], texts[1], texts[2], "random(0,1)"};
    json_t *d = draw(texts2, names2, 4, 42, 1000);
    int same = d != NULL;
    for (size_t i = 0; d && i < json_array_size(a); i++)
        same &= json_equal(json_object_get(json_array_get(a, i), "lr"),
                           json_object_get(json_array_get(d, i), "lr"));
    CHECK(same);
    json_decref(a);
    json_decref(b);
    json_decref(c);
    json_decref(d);

    /* normal: mean `min`, standard deviation `max` */
    const char *nn[] = {"x"}, *nt[] = {"random(5,2,normal)"};
    json_t *n = draw(nt, nn, 1, 7, 4000);
    double sum = 0, sq = 0;
    size_t count = json_array_size(n);
    for (size_t i = 0; i < count; i++) {
        double x = json_real_value(json_object_get(json_array_get(n, i), "x"));
        sum += x;
        sq += x * x;
    }
    double mean = count ? sum / (double)count : 0;
    double sd = count ? sqrt(sq / (double)count - mean * mean) : 0;
    CHECK_INT(count, 4000);
    CHECK(fabs(mean - 5) < 0.15);
    CHECK(fabs(sd - 2) < 0.15);
    json_decref(n);

    json_t *none = NULL;
    ferry_sweep_param p = {"x", {0}};
    CHECK_INT(ferry_sweep_random(&p, 1, NULL, 1, 0, &none, errbuf, sizeof(errbuf)), FERRY_EINVAL);
    CHECK_STR(errbuf, "a random search needs a count of at least 1");
}

/* A task parameter's rules as values; a rules' seed is its own. */
static void test_rules(void)
{
    struct {
        ferry_sweep_style style;
        const char *rules, *want;
    } ok[] = {
        {FERRY_STYLE_SINGLE, "{\"value\": \"adam\"}", "[\"adam\"]"},
        {FERRY_STYLE_MULTIPLE, "{\"items\": [1, 2.5, \"x\"]}", "[1, 2.5, \"x\"]"},
        {FERRY_STYLE_LINEAR, "{\"start\": 1, \"end\": 3, \"step\": 1}", "[1, 2, 3]"},
        {FERRY_STYLE_LOGSPACE, "{\"start\": 0, \"end\": 2, \"count\": 3}", "[1.0, 10.0, 100.0]"},
        {FERRY_STYLE_LOGSPACE, "{\"start\": 0, \"end\": 1, \"count\": 3, \"integerify\": true}",
         "[1, 3, 10]"},
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        ferry_task_param tp = {"A", ok[i].style, json_loads(ok[i].rules, 0, NULL), 1};
        ferry_sweep_values v;
        int rc = ferry_task_param_values(&tp, &v, errbuf, sizeof(errbuf));
        if (rc != 0)
            fprintf(stderr, "%s: %s\n", ok[i].rules, errbuf);
        CHECK_INT(rc, 0);
        CHECK_INT(v.kind, FERRY_SWEEP_LIST);
        CHECK_JSON(v.values, ok[i].want);
        ferry_sweep_values_clear(&v);
        json_decref(tp.rules);
    }
    ferry_task_param tp = {"A", FERRY_STYLE_LINEAR,
                           json_loads("{\"start\": 1, \"end\": 3, \"step\": 0}", 0, NULL), 1};
    ferry_sweep_values v;
    CHECK_INT(ferry_task_param_values(&tp, &v, errbuf, sizeof(errbuf)), FERRY_EINVAL);
    CHECK_STR(errbuf, "parameter 'A': rules: step must not be 0");
    json_decref(tp.rules);

    /* the rules' seed gives the same draws whatever the sweep's seed */
    tp = (ferry_task_param){
        "A", FERRY_STYLE_RANDOM,
        json_loads("{\"min\": 0, \"max\": 1, \"count\": 4, \"seed\": 3}", 0, NULL), 1};
    ferry_sweep_param p = {"A", {0}};
    CHECK_INT(ferry_task_param_values(&tp, &p.values, errbuf, sizeof(errbuf)), 0);
    CHECK_INT(p.values.count, 4);
    CHECK_INT(p.values.has_seed, 1);
    json_t *g1 = NULL, *g2 = NULL;
    CHECK_INT(ferry_sweep_grid(&p, 1, NULL, 1, 10, &g1, errbuf, sizeof(errbuf)), 0);
    CHECK_INT(ferry_sweep_grid(&p, 1, NULL, 2, 10, &g2, errbuf, sizeof(errbuf)), 0);
    CHECK_INT(json_array_size(g1), 4);
    CHECK(g1 && g2 && json_equal(g1, g2));
    json_decref(g1);
    json_decref(g2);
    ferry_sweep_values_clear(&p.values);
    json_decref(tp.rules);
}

/* valohai-yaml's normalisation, and the CLI's short names where asked for. */
static void test_names(void)
{
    struct {
        const char *text;
        int short_names, rc, want;
    } types[] =
        {
            {"RANDOM-SEARCH", 0, 0, FERRY_TASK_RANDOM_SEARCH},
            {"Bayesian_TPE", 0, 0, FERRY_TASK_BAYESIAN_TPE},
            {"grid", 0, FERRY_EINVAL, 0},
            {"grid", 1, 0, FERRY_TASK_GRID_SEARCH},
            {"bayesian", 1, 0, FERRY_TASK_BAYESIAN_TPE},
            {"sideways", 1, FERRY_EINVAL, 0},
        },
      errors[] = {
          {"stop_all-AND_error", 0, 0, FERRY_CHILD_ERROR_STOP_ALL_AND_ERROR},
          {"continue", 0, FERRY_EINVAL, 0},
          {"continue", 1, 0, FERRY_CHILD_ERROR_CONTINUE_AND_COMPLETE},
          {"stop_all", 1, 0, FERRY_CHILD_ERROR_STOP_ALL_AND_ERROR},
      };
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        ferry_task_type t = FERRY_TASK_GRID_SEARCH;
        CHECK_INT(ferry_task_type_parse(types[i].text, types[i].short_names, &t), types[i].rc);
        CHECK_INT(t, types[i].want);
    }
    for (size_t i = 0; i < sizeof(errors) / sizeof(errors[0]); i++) {
        ferry_child_error e = FERRY_CHILD_ERROR_UNSET;
        CHECK_INT(ferry_child_error_parse(errors[i].text, errors[i].short_names, &e), errors[i].rc);
        CHECK_INT(e, errors[i].want);
    }
    CHECK_STR(ferry_task_type_name(FERRY_TASK_MANUAL_SEARCH), "manual_search");
    CHECK_STR(ferry_task_type_name(FERRY_TASK_DISTRIBUTED), "distributed");
    CHECK_STR(ferry_child_error_name(FERRY_CHILD_ERROR_CONTINUE_AND_ERROR), "continue-and-error");
    CHECK_STR(ferry_sweep_style_name(FERRY_STYLE_LOGSPACE), "logspace");
}

int main(void)
{
    test_grammar();
    test_bad_grammar();
    test_grid();
    test_typed();
    test_random();
    test_rules();
    test_names();
    TEST_MAIN_END();
}
