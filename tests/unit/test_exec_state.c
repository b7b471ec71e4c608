/* The agent's execution state machine (agent/exec_state.c): every allowed
 * transition, every other one refused, and the setter. */
#include "test.h"

#include "exec_state.h"
#include "ferry/error.h"

#define N EXEC_N_STATES

/* The table, written out once more by hand. */
static const struct {
    exec_state from, to;
} allowed[] = {
    {EXEC_NEW, EXEC_PREPARING},
    {EXEC_NEW, EXEC_PREP_STOPPING},
    {EXEC_NEW, EXEC_RECOVERED},
    {EXEC_PREPARING, EXEC_PREP_STOPPING},
    {EXEC_PREPARING, EXEC_STARTING},
    {EXEC_PREPARING, EXEC_STARTING_FAILED},
    {EXEC_PREP_STOPPING, EXEC_FINISHING},
    {EXEC_STARTING, EXEC_STARTING_STOPPED},
    {EXEC_STARTING, EXEC_STARTING_FAILED},
    {EXEC_STARTING, EXEC_RUNNING},
    {EXEC_STARTING_STOPPED, EXEC_STARTING_FAILED},
    {EXEC_STARTING_STOPPED, EXEC_FINISHING},
    {EXEC_STARTING_FAILED, EXEC_FINISHING},
    {EXEC_RUNNING, EXEC_STOPPING},
    {EXEC_RUNNING, EXEC_FINISHING},
    {EXEC_STOPPING, EXEC_FINISHING},
    {EXEC_RECOVERED, EXEC_FINISHING},
    {EXEC_RECOVERED, EXEC_DONE},
    {EXEC_FINISHING, EXEC_CLEANING},
    {EXEC_FINISHING, EXEC_DONE},
    {EXEC_CLEANING, EXEC_DONE},
};

static int listed(exec_state from, exec_state to)
{
    for (size_t i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++)
        if (allowed[i].from == from && allowed[i].to == to)
            return 1;
    return 0;
}

static void test_table(void)
{
    int n_allowed = 0;
    for (int f = 0; f < N; f++)
        for (int t = 0; t < N; t++) {
            int want = listed(f, t);
            if (exec_state_allowed(f, t) != want)
                fprintf(stderr, "execution %s -> %s: expected %s\n", exec_state_name(f),
                        exec_state_name(t), want ? "allowed" : "refused");
            CHECK_INT(exec_state_allowed(f, t), want);
            n_allowed += want;
        }
    CHECK_INT(n_allowed, sizeof(allowed) / sizeof(allowed[0]));
    /* A sample of the refused, said out loud: reporting is never skipped,
     * and nothing runs after a stop or a failure. */
    CHECK(!exec_state_allowed(EXEC_RUNNING, EXEC_DONE));
    CHECK(!exec_state_allowed(EXEC_RUNNING, EXEC_CLEANING));
    CHECK(!exec_state_allowed(EXEC_PREPARING, EXEC_RUNNING));
    CHECK(!exec_state_allowed(EXEC_STARTING_STOPPED, EXEC_RUNNING));
    CHECK(!exec_state_allowed(EXEC_STARTING_FAILED, EXEC_RUNNING));
    CHECK(!exec_state_allowed(EXEC_STOPPING, EXEC_RUNNING));
    CHECK(!exec_state_allowed(EXEC_DONE, EXEC_PREPARING));
    CHECK(!exec_state_allowed(EXEC_RECOVERED, EXEC_RUNNING));
    CHECK(!exec_state_allowed(EXEC_FINISHING, EXEC_FINISHING));
    CHECK(!exec_state_allowed(EXEC_NEW, N));
    for (int s = 0; s < N; s++)
        CHECK(strcmp(exec_state_name(s), "?") != 0);
    CHECK_STR(exec_state_name(N), "?");
}

/* Every state but done leads to done: nothing is left half-way. */
static void test_all_reach_done(void)
{
    for (int s = 0; s < N; s++) {
        int seen[N] = {0}, stack[N], top = 0;
        stack[top++] = s;
        seen[s] = 1;
        while (top > 0) {
            int f = stack[--top];
            for (int t = 0; t < N; t++)
                if (!seen[t] && exec_state_allowed(f, t)) {
                    seen[t] = 1;
                    stack[top++] = t;
                }
        }
        if (!seen[EXEC_DONE])
            fprintf(stderr, "execution state %s never reaches done\n", exec_state_name(s));
        CHECK(seen[EXEC_DONE]);
    }
}

static void test_setter(void)
{
    exec_state s = EXEC_NEW;
    const exec_state path[] = {EXEC_PREPARING, EXEC_STARTING, EXEC_RUNNING, EXEC_STOPPING,
                               EXEC_FINISHING, EXEC_CLEANING, EXEC_DONE};
    for (size_t i = 0; i < sizeof(path) / sizeof(path[0]); i++) {
        CHECK_INT(exec_state_set(&s, "x", path[i]), 0);
        CHECK_INT(s, path[i]);
    }
    CHECK_INT(exec_state_set(&s, "x", EXEC_DONE), 0); /* the same state: no move */
    CHECK_INT(exec_state_set(&s, "x", EXEC_RUNNING), FERRY_ESTATE);
    CHECK_INT(s, EXEC_DONE);
    /* A recovered one stopped before it was resumed. */
    s = EXEC_NEW;
    CHECK_INT(exec_state_set(&s, "y", EXEC_RECOVERED), 0);
    CHECK_INT(exec_state_set(&s, "y", EXEC_DONE), 0);
    /* A stop during the preparation goes straight to finishing. */
    s = EXEC_PREPARING;
    CHECK_INT(exec_state_set(&s, "z", EXEC_PREP_STOPPING), 0);
    CHECK_INT(exec_state_set(&s, "z", EXEC_STARTING), FERRY_ESTATE);
    CHECK_INT(s, EXEC_PREP_STOPPING);
    CHECK_INT(exec_state_set(&s, "z", EXEC_FINISHING), 0);
}

int main(void)
{
    test_table();
    test_all_reach_done();
    test_setter();
    TEST_MAIN_END();
}
