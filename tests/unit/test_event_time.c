/* Times ferryd writes (issue 25 #7): ferry_time_format on any double, and
 * the time ferryd stores for an agent's event, whatever the agent sent. */
#include "test.h"

#include <math.h>

#include "agentapi.h"
#include "util.h"

static void test_time_format(void)
{
    static const struct {
        double t;
        const char *want;
    } cases[] = {
        {1764979318.5, "2025-12-06T00:01:58.500Z"},
        {0, "1970-01-01T00:00:00.000Z"},
        {253402300799.5, "9999-12-31T23:59:59.500Z"},
        /* out of range: clamped, never an uninitialised struct tm */
        {INFINITY, "9999-12-31T23:59:59.999Z"},
        {1e300, "9999-12-31T23:59:59.999Z"},
        {253402300800.0, "9999-12-31T23:59:59.999Z"},
        {-INFINITY, "1970-01-01T00:00:00.000Z"},
        {-1e300, "1970-01-01T00:00:00.000Z"},
        {-5, "1970-01-01T00:00:00.000Z"},
        {NAN, "1970-01-01T00:00:00.000Z"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char buf[40];
        memset(buf, 'x', sizeof(buf));
        CHECK_STR(ferry_time_format(cases[i].t, buf, sizeof(buf)), cases[i].want);
    }
}

static void test_agent_event_time(void)
{
    CHECK(ferry_agentapi_event_time(1764979318.5) == 1764979318.5);
    CHECK(ferry_agentapi_event_time(253402300799.0) == 253402300799.0);
    /* none, or not a time of [1970, 9999]: ferryd's clock */
    const double bad[] = {0, -1, INFINITY, -INFINITY, NAN, 1e300, 253402300800.0, -1e300};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        double before = ferry_now(), t = ferry_agentapi_event_time(bad[i]), after = ferry_now();
        if (!(t >= before && t <= after)) {
            fprintf(stderr, "event time of %g: %g, not ferryd's clock\n", bad[i], t);
            ferry_test_failures++;
        }
    }
}

int main(void)
{
    test_time_format();
    test_agent_event_time();
    TEST_MAIN_END();
}
