/* The worker state machine (worker_state.h): its table and its one setter. */
#include "worker_state.h"

#include <string.h>

#include "log.h"
#include "scheduler.h"

#define BIT(s) (1u << (s))

static const char *const worker_state__names[FERRY_WORKER_N_STATES] = {
    [FERRY_WORKER_NEW] = "new",
    [FERRY_WORKER_BUNDLING] = "bundling",
    [FERRY_WORKER_LAUNCHING] = "launching",
    [FERRY_WORKER_BOOTING] = "booting",
    [FERRY_WORKER_READY] = "ready",
    [FERRY_WORKER_READY_LAUNCHING] = "ready_launching",
    [FERRY_WORKER_PROBING] = "probing",
    [FERRY_WORKER_RETIRE_LAUNCHING] = "retire_launching",
    [FERRY_WORKER_RETIRING] = "retiring",
    [FERRY_WORKER_TERMINATING] = "terminating",
    [FERRY_WORKER_GONE] = "gone",
};

/* to-states allowed from each state. Any live record may go at once (a
 * failed launch, the instance gone, ferryd shutting down); nothing comes
 * back from gone. */
static const unsigned worker_state__next[FERRY_WORKER_N_STATES] = {
    /* launched, joined by hand, or restored from the table */
    [FERRY_WORKER_NEW] = BIT(FERRY_WORKER_BUNDLING) | BIT(FERRY_WORKER_LAUNCHING) |
                         BIT(FERRY_WORKER_BOOTING) | BIT(FERRY_WORKER_READY) |
                         BIT(FERRY_WORKER_RETIRING) | BIT(FERRY_WORKER_GONE),
    [FERRY_WORKER_BUNDLING] =
        BIT(FERRY_WORKER_LAUNCHING) | BIT(FERRY_WORKER_RETIRING) | BIT(FERRY_WORKER_GONE),
    [FERRY_WORKER_LAUNCHING] = BIT(FERRY_WORKER_BOOTING) | BIT(FERRY_WORKER_READY_LAUNCHING) |
                               BIT(FERRY_WORKER_RETIRE_LAUNCHING) | BIT(FERRY_WORKER_GONE),
    [FERRY_WORKER_BOOTING] =
        BIT(FERRY_WORKER_READY) | BIT(FERRY_WORKER_RETIRING) | BIT(FERRY_WORKER_GONE),
    [FERRY_WORKER_READY] =
        BIT(FERRY_WORKER_PROBING) | BIT(FERRY_WORKER_RETIRING) | BIT(FERRY_WORKER_GONE),
    [FERRY_WORKER_READY_LAUNCHING] =
        BIT(FERRY_WORKER_READY) | BIT(FERRY_WORKER_RETIRE_LAUNCHING) | BIT(FERRY_WORKER_GONE),
    [FERRY_WORKER_PROBING] =
        BIT(FERRY_WORKER_READY) | BIT(FERRY_WORKER_RETIRING) | BIT(FERRY_WORKER_GONE),
    [FERRY_WORKER_RETIRE_LAUNCHING] = BIT(FERRY_WORKER_RETIRING) | BIT(FERRY_WORKER_GONE),
    [FERRY_WORKER_RETIRING] = BIT(FERRY_WORKER_TERMINATING) | BIT(FERRY_WORKER_GONE),
    [FERRY_WORKER_TERMINATING] = BIT(FERRY_WORKER_RETIRING) | BIT(FERRY_WORKER_GONE),
    [FERRY_WORKER_GONE] = 0,
};

static int worker_state__valid(ferry_worker_state s)
{
    return (unsigned)s < FERRY_WORKER_N_STATES;
}

const char *ferry_worker_state_name(ferry_worker_state s)
{
    return worker_state__valid(s) ? worker_state__names[s] : "?";
}

int ferry_worker_state_allowed(ferry_worker_state from, ferry_worker_state to)
{
    return worker_state__valid(from) && worker_state__valid(to) &&
           (worker_state__next[from] & BIT(to)) != 0;
}

int ferry_worker_set_state(ferry_worker *w, ferry_worker_state to, const char *reason)
{
    ferry_worker_state from = w->state;
    if (from == to)
        return 0;
    if (!ferry_worker_state_allowed(from, to)) {
        ferry_error("worker %s: state %s -> %s refused (%s)", w->id, ferry_worker_state_name(from),
                    ferry_worker_state_name(to), reason ? reason : "-");
        return FERRY_ESTATE;
    }
    w->state = to;
    ferry_debug("worker %s: %s -> %s%s%s", w->id, ferry_worker_state_name(from),
                ferry_worker_state_name(to), reason ? ": " : "", reason ? reason : "");
    return 0;
}

int ferry_worker_state_takes_work(ferry_worker_state s)
{
    return s == FERRY_WORKER_READY || s == FERRY_WORKER_READY_LAUNCHING ||
           s == FERRY_WORKER_PROBING;
}

int ferry_worker_state_is_coming(ferry_worker_state s)
{
    return s == FERRY_WORKER_NEW || s == FERRY_WORKER_BUNDLING || s == FERRY_WORKER_LAUNCHING ||
           s == FERRY_WORKER_BOOTING;
}

int ferry_worker_state_launch_in_flight(ferry_worker_state s)
{
    return s == FERRY_WORKER_LAUNCHING || s == FERRY_WORKER_READY_LAUNCHING ||
           s == FERRY_WORKER_RETIRE_LAUNCHING;
}

int ferry_worker_state_is_retiring(ferry_worker_state s)
{
    return s == FERRY_WORKER_RETIRE_LAUNCHING || s == FERRY_WORKER_RETIRING ||
           s == FERRY_WORKER_TERMINATING;
}

ferry_worker_state ferry_worker_state_registered(ferry_worker_state s)
{
    return s == FERRY_WORKER_LAUNCHING ? FERRY_WORKER_READY_LAUNCHING : FERRY_WORKER_READY;
}

ferry_worker_state ferry_worker_state_launched(ferry_worker_state s)
{
    switch (s) {
    case FERRY_WORKER_LAUNCHING:
        return FERRY_WORKER_BOOTING;
    case FERRY_WORKER_READY_LAUNCHING:
        return FERRY_WORKER_READY;
    case FERRY_WORKER_RETIRE_LAUNCHING:
        return FERRY_WORKER_RETIRING;
    default:
        return s;
    }
}

const char *ferry_worker_state_db_name(ferry_worker_state s)
{
    if (ferry_worker_state_takes_work(s))
        return "ready";
    if (ferry_worker_state_is_retiring(s) || s == FERRY_WORKER_GONE)
        return "terminating";
    return "launching";
}

ferry_worker_state ferry_worker_state_from_db(const char *name)
{
    if (name && strcmp(name, "ready") == 0)
        return FERRY_WORKER_READY;
    if (name && strcmp(name, "terminating") == 0)
        return FERRY_WORKER_RETIRING;
    return FERRY_WORKER_BOOTING;
}
