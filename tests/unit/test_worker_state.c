/* The worker state machine (core/sched/worker_state.c) without a daemon:
 * every allowed transition, every other one refused, the setter (no-op on
 * the same state, refusal keeps the state), the questions the scheduler
 * asks of a state, and the workers table's state column. */
#include "test.h"

#include "scheduler.h"
#include "worker_state.h"

#define N FERRY_WORKER_N_STATES
#define W(x) FERRY_WORKER_##x

/* The table, written out once more by hand: a change to worker_state.c
 * must be a change here too. */
static const struct {
    ferry_worker_state from, to;
} allowed[] = {
    {W(NEW), W(BUNDLING)},
    {W(NEW), W(LAUNCHING)},
    {W(NEW), W(BOOTING)},
    {W(NEW), W(READY)},
    {W(NEW), W(RETIRING)},
    {W(NEW), W(GONE)},
    {W(BUNDLING), W(LAUNCHING)},
    {W(BUNDLING), W(RETIRING)},
    {W(BUNDLING), W(GONE)},
    {W(LAUNCHING), W(BOOTING)},
    {W(LAUNCHING), W(READY_LAUNCHING)},
    {W(LAUNCHING), W(RETIRE_LAUNCHING)},
    {W(LAUNCHING), W(GONE)},
    {W(BOOTING), W(READY)},
    {W(BOOTING), W(RETIRING)},
    {W(BOOTING), W(GONE)},
    {W(READY), W(PROBING)},
    {W(READY), W(RETIRING)},
    {W(READY), W(GONE)},
    {W(READY_LAUNCHING), W(READY)},
    {W(READY_LAUNCHING), W(RETIRE_LAUNCHING)},
    {W(READY_LAUNCHING), W(GONE)},
    {W(PROBING), W(READY)},
    {W(PROBING), W(RETIRING)},
    {W(PROBING), W(GONE)},
    {W(RETIRE_LAUNCHING), W(RETIRING)},
    {W(RETIRE_LAUNCHING), W(GONE)},
    {W(RETIRING), W(TERMINATING)},
    {W(RETIRING), W(GONE)},
    {W(TERMINATING), W(RETIRING)},
    {W(TERMINATING), W(GONE)},
};

static int listed(ferry_worker_state from, ferry_worker_state to)
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
            if (ferry_worker_state_allowed(f, t) != want)
                fprintf(stderr, "worker %s -> %s: expected %s\n", ferry_worker_state_name(f),
                        ferry_worker_state_name(t), want ? "allowed" : "refused");
            CHECK_INT(ferry_worker_state_allowed(f, t), want);
            n_allowed += want;
        }
    CHECK_INT(n_allowed, sizeof(allowed) / sizeof(allowed[0]));
    /* A sample of the refused, said out loud. */
    CHECK(!ferry_worker_state_allowed(W(GONE), W(READY)));          /* nothing comes back */
    CHECK(!ferry_worker_state_allowed(W(RETIRING), W(READY)));      /* retired stays retired */
    CHECK(!ferry_worker_state_allowed(W(TERMINATING), W(PROBING))); /* nor probes */
    CHECK(!ferry_worker_state_allowed(W(BUNDLING), W(READY)));      /* its token is not out */
    CHECK(!ferry_worker_state_allowed(W(READY), W(LAUNCHING)));
    CHECK(!ferry_worker_state_allowed(W(READY), W(TERMINATING)));  /* through retiring */
    CHECK(!ferry_worker_state_allowed(W(LAUNCHING), W(RETIRING))); /* waits for the launch */
    CHECK(!ferry_worker_state_allowed(W(READY), W(READY)));
    CHECK(!ferry_worker_state_allowed(W(READY), N));
    CHECK(!ferry_worker_state_allowed(N, W(READY)));
    for (int s = 0; s < N; s++)
        CHECK(strcmp(ferry_worker_state_name(s), "?") != 0);
    CHECK_STR(ferry_worker_state_name(N), "?");
}

/* Every live state can end (gone): no record is stuck for ever. */
static void test_all_reach_gone(void)
{
    for (int s = 0; s < N; s++) {
        int seen[N] = {0}, stack[N], top = 0;
        stack[top++] = s;
        seen[s] = 1;
        while (top > 0) {
            int f = stack[--top];
            for (int t = 0; t < N; t++)
                if (!seen[t] && ferry_worker_state_allowed(f, t)) {
                    seen[t] = 1;
                    stack[top++] = t;
                }
        }
        CHECK(seen[W(GONE)]);
    }
}

static void test_setter(void)
{
    ferry_worker w;
    memset(&w, 0, sizeof(w));
    snprintf(w.id, sizeof(w.id), "w-test");
    CHECK_INT(w.state, W(NEW));
    /* A whole life: launched, registered before the launch answered,
     * retired, terminated, gone. */
    const ferry_worker_state path[] = {
        W(LAUNCHING), W(READY_LAUNCHING), W(READY),    W(PROBING),     W(READY),
        W(RETIRING),  W(TERMINATING),     W(RETIRING), W(TERMINATING), W(GONE)};
    for (size_t i = 0; i < sizeof(path) / sizeof(path[0]); i++) {
        CHECK_INT(ferry_worker_set_state(&w, path[i], "test"), 0);
        CHECK_INT(w.state, path[i]);
    }
    /* Refused: the state stays. */
    CHECK_INT(ferry_worker_set_state(&w, W(READY), "back from the dead"), FERRY_ESTATE);
    CHECK_INT(w.state, W(GONE));
    /* The same state again is no move at all. */
    CHECK_INT(ferry_worker_set_state(&w, W(GONE), NULL), 0);
    w.state = W(LAUNCHING);
    CHECK_INT(ferry_worker_set_state(&w, W(READY), NULL), FERRY_ESTATE);
    CHECK_INT(w.state, W(LAUNCHING));
}

static void test_questions(void)
{
    for (int s = 0; s < N; s++) {
        int work = s == W(READY) || s == W(READY_LAUNCHING) || s == W(PROBING);
        int coming = s == W(NEW) || s == W(BUNDLING) || s == W(LAUNCHING) || s == W(BOOTING);
        int flight = s == W(LAUNCHING) || s == W(READY_LAUNCHING) || s == W(RETIRE_LAUNCHING);
        int retiring = s == W(RETIRE_LAUNCHING) || s == W(RETIRING) || s == W(TERMINATING);
        CHECK_INT(ferry_worker_state_takes_work(s), work);
        CHECK_INT(ferry_worker_state_is_coming(s), coming);
        CHECK_INT(ferry_worker_state_launch_in_flight(s), flight);
        CHECK_INT(ferry_worker_state_is_retiring(s), retiring);
        /* Every move these helpers pick is one the table allows. */
        ferry_worker_state l = ferry_worker_state_launched(s);
        CHECK((int)l == s || ferry_worker_state_allowed(s, l));
        CHECK_INT((int)l == s, !flight);
    }
    CHECK_INT(ferry_worker_state_registered(W(LAUNCHING)), W(READY_LAUNCHING));
    CHECK_INT(ferry_worker_state_registered(W(BOOTING)), W(READY));
    CHECK_INT(ferry_worker_state_registered(W(NEW)), W(READY)); /* joined by hand */
    CHECK(ferry_worker_state_allowed(W(LAUNCHING), ferry_worker_state_registered(W(LAUNCHING))));
    CHECK(ferry_worker_state_allowed(W(BOOTING), ferry_worker_state_registered(W(BOOTING))));
}

static void test_db_names(void)
{
    CHECK_STR(ferry_worker_state_db_name(W(NEW)), "launching");
    CHECK_STR(ferry_worker_state_db_name(W(BUNDLING)), "launching");
    CHECK_STR(ferry_worker_state_db_name(W(LAUNCHING)), "launching");
    CHECK_STR(ferry_worker_state_db_name(W(BOOTING)), "launching");
    CHECK_STR(ferry_worker_state_db_name(W(READY)), "ready");
    CHECK_STR(ferry_worker_state_db_name(W(READY_LAUNCHING)), "ready");
    CHECK_STR(ferry_worker_state_db_name(W(PROBING)), "ready");
    CHECK_STR(ferry_worker_state_db_name(W(RETIRING)), "terminating");
    CHECK_STR(ferry_worker_state_db_name(W(TERMINATING)), "terminating");
    /* After a restart nothing is in flight, and each comes back reachable
     * from a new record. */
    CHECK_INT(ferry_worker_state_from_db("launching"), W(BOOTING));
    CHECK_INT(ferry_worker_state_from_db("ready"), W(READY));
    CHECK_INT(ferry_worker_state_from_db("terminating"), W(RETIRING));
    CHECK_INT(ferry_worker_state_from_db(NULL), W(BOOTING));
    for (int s = 0; s < N; s++) {
        if (s == W(GONE))
            continue;
        ferry_worker_state back = ferry_worker_state_from_db(ferry_worker_state_db_name(s));
        CHECK(ferry_worker_state_allowed(W(NEW), back));
    }
}

int main(void)
{
    test_table();
    test_all_reach_gone();
    test_setter();
    test_questions();
    test_db_names();
    TEST_MAIN_END();
}
