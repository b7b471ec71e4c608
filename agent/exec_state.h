/* An execution's state machine on the agent: which steps it goes through
 * and which moves between them are allowed.
 *
 *   new -> preparing -> starting -> running -> finishing -> cleaning -> done
 *
 * and off that path: a stop while preparing (prep_stopping), while the
 * started report is in flight (starting_stopped) or while the commands run
 * (stopping); a failed preparation or a start ferryd refused
 * (starting_failed); an execution left by an earlier agent (recovered),
 * reported once this one holds a token. Every path that began runs through
 * finishing: outputs and the finished report are never skipped.
 *
 * The states stand for what used to be flags beside a four-valued phase
 * (skip_run, stop_requested, run_live, reported, recovered, resumed): each
 * combination that occurred is one state here. Only exec_state_set()
 * changes one. */
#ifndef FERRY_AGENT_EXEC_STATE_H
#define FERRY_AGENT_EXEC_STATE_H

typedef enum exec_state {
    EXEC_NEW = 0,          /* made, not started */
    EXEC_PREPARING,        /* folders, snapshot, inputs, config files */
    EXEC_PREP_STOPPING,    /* a stop came while preparing: the step in flight ends it */
    EXEC_STARTING,         /* the started report is in flight; the commands run if ferryd agrees */
    EXEC_STARTING_STOPPED, /* ... and a stop came meanwhile: they will not run */
    EXEC_STARTING_FAILED,  /* the preparation failed or ferryd refused: they will not run */
    EXEC_RUNNING,          /* the runtime runs the commands */
    EXEC_STOPPING,         /* ... and was asked to stop them: the stop's reason counts */
    EXEC_RECOVERED,        /* left by an earlier agent: reported once it holds a token */
    EXEC_FINISHING,        /* events, outputs, then the finished report */
    EXEC_CLEANING,         /* the finished report went out: its folder is being removed */
    EXEC_DONE,             /* handed back to the agent, which frees it */
    EXEC_N_STATES
} exec_state;

const char *exec_state_name(exec_state s);
/* Whether `from` may become `to` (a state never "becomes" itself). */
int exec_state_allowed(exec_state from, exec_state to);
/* Move *state to `to`, logged with the execution's id. Setting the state it
 * already has is a no-op. FERRY_ESTATE (logged as an error, *state kept)
 * when the table refuses the move. */
int exec_state_set(exec_state *state, const char *id, exec_state to);

#endif
