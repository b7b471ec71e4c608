/* The agent's execution state machine (exec_state.h): its table and its one
 * setter. */
#include "exec_state.h"

#include "ferry/error.h"
#include "log.h"

#define BIT(s) (1u << (s))

static const char *const exec_state__names[EXEC_N_STATES] = {
    [EXEC_NEW] = "new",
    [EXEC_PREPARING] = "preparing",
    [EXEC_PREP_STOPPING] = "prep_stopping",
    [EXEC_STARTING] = "starting",
    [EXEC_STARTING_STOPPED] = "starting_stopped",
    [EXEC_STARTING_FAILED] = "starting_failed",
    [EXEC_RUNNING] = "running",
    [EXEC_STOPPING] = "stopping",
    [EXEC_RECOVERED] = "recovered",
    [EXEC_FINISHING] = "finishing",
    [EXEC_CLEANING] = "cleaning",
    [EXEC_DONE] = "done",
};

/* to-states allowed from each state. Whatever happened, an execution that
 * started goes through finishing: outputs and the finished report are never
 * skipped. */
static const unsigned exec_state__next[EXEC_N_STATES] = {
    [EXEC_NEW] = BIT(EXEC_PREPARING) | BIT(EXEC_PREP_STOPPING) | BIT(EXEC_RECOVERED),
    [EXEC_PREPARING] = BIT(EXEC_PREP_STOPPING) | BIT(EXEC_STARTING) | BIT(EXEC_STARTING_FAILED),
    [EXEC_PREP_STOPPING] = BIT(EXEC_FINISHING),
    [EXEC_STARTING] = BIT(EXEC_STARTING_STOPPED) | BIT(EXEC_STARTING_FAILED) | BIT(EXEC_RUNNING),
    [EXEC_STARTING_STOPPED] = BIT(EXEC_STARTING_FAILED) | BIT(EXEC_FINISHING),
    [EXEC_STARTING_FAILED] = BIT(EXEC_FINISHING),
    /* a runtime that cannot start the commands: finishing at once */
    [EXEC_RUNNING] = BIT(EXEC_STOPPING) | BIT(EXEC_FINISHING),
    [EXEC_STOPPING] = BIT(EXEC_FINISHING),
    /* stopped before it was resumed: kept on disk for the next agent */
    [EXEC_RECOVERED] = BIT(EXEC_FINISHING) | BIT(EXEC_DONE),
    /* given up on ferryd: the folder keeps the report for the next agent */
    [EXEC_FINISHING] = BIT(EXEC_CLEANING) | BIT(EXEC_DONE),
    [EXEC_CLEANING] = BIT(EXEC_DONE),
    [EXEC_DONE] = 0,
};

static int exec_state__valid(exec_state s)
{
    return (unsigned)s < EXEC_N_STATES;
}

const char *exec_state_name(exec_state s)
{
    return exec_state__valid(s) ? exec_state__names[s] : "?";
}

int exec_state_allowed(exec_state from, exec_state to)
{
    return exec_state__valid(from) && exec_state__valid(to) &&
           (exec_state__next[from] & BIT(to)) != 0;
}

int exec_state_set(exec_state *state, const char *id, exec_state to)
{
    exec_state from = *state;
    if (from == to)
        return 0;
    if (!exec_state_allowed(from, to)) {
        ferry_error("execution %s: state %s -> %s refused", id, exec_state_name(from),
                    exec_state_name(to));
        return FERRY_ESTATE;
    }
    *state = to;
    ferry_debug("execution %s: %s -> %s", id, exec_state_name(from), exec_state_name(to));
    return 0;
}
