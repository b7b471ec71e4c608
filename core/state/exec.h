/* Executions: the record (persisted in SQLite) and the in-memory state of
 * every non-terminal execution. Only lifecycle.c changes `status`. */
#ifndef FERRY_EXEC_H
#define FERRY_EXEC_H

#include <jansson.h>
#include <stdint.h>

#include "daemon.h"

typedef enum ferry_status {
    FERRY_STATUS_CREATED = 0,
    FERRY_STATUS_QUEUED,
    FERRY_STATUS_STARTED,
    FERRY_STATUS_STOPPING,
    FERRY_STATUS_STOPPED,
    FERRY_STATUS_ERROR,
    FERRY_STATUS_COMPLETE,
} ferry_status;

const char *ferry_status_name(ferry_status s);
int ferry_status_parse(const char *text, ferry_status *out);
int ferry_status_is_terminal(ferry_status s);

typedef struct ferry_exec ferry_exec;
typedef struct ferry_worker ferry_worker;

/* Someone waiting on an execution: log followers get every new event line,
 * everyone gets on_end once the terminal status is stored. */
typedef struct ferry_exec_watcher {
    void (*on_event)(struct ferry_exec_watcher *w, ferry_exec *e, const char *line, size_t len);
    void (*on_end)(struct ferry_exec_watcher *w, ferry_exec *e);
    struct ferry_exec_watcher *prev, *next;
} ferry_exec_watcher;

struct ferry_exec {
    char id[37];
    int64_t counter;
    char *project, *step, *environment, *image, *snapshot, *command, *worker_id;
    char *owner; /* the user who created it; NULL without users */
    char *gpus;  /* GPU indices on its worker ("1"), or NULL */
    int priority;
    int64_t no_output_timeout;
    json_t *parameters, *inputs, *env, *tags, *metadata;
    int64_t time_limit;
    int valohai;
    /* The git commit it runs (issue 17): {sha, ref, repository, message,
     * author, date}; NULL for an ad-hoc execution, whose snapshot was
     * uploaded, and `based_on` the commit its working copy was on, or NULL. */
    json_t *git_commit;
    char *based_on;
    char *title;          /* given at creation, or NULL */
    char *stop_condition; /* the step's, or NULL: lifecycle.c stops the run once it holds */
    /* Spot auto-restart (sched/restart.c): asked for at creation; the
     * execution this one restarts and the one that restarted it (uuids, or
     * NULL); the restarts before this one in its chain. */
    int autorestart;
    char *restarted_from, *restarted_as;
    int restarts;
    /* What makes two executions the same run (submit.c): the same key and a
     * complete one may be reused (pipelines); set at creation, stored. */
    char *reuse_key;
    ferry_status status;
    char *status_reason;
    int has_exit_code, exit_code;
    double created_at, queued_at, started_at, ended_at;
    int64_t agent_seq; /* highest agent event seq stored */

    /* In memory only, for active executions. */
    int active;
    int64_t log_count; /* logstore.c: events stored; -1 until counted after a restart */
    int log_fd;        /* logstore.c */
    int metadata_dirty;
    ferry_worker *worker;      /* scheduler.c */
    int delivered;             /* scheduler.c: spec handed to the worker */
    ferry_exec *qprev, *qnext; /* scheduler.c: the user's created list or an env queue */
    int gpu_index;             /* scheduler.c: GPU slot on its worker, or -1 */
    ferry_exec_watcher *watchers;
};

/* A new record (not yet stored). */
ferry_exec *ferry_exec_new(void);
void ferry_exec_free(ferry_exec *e);
/* Next counter of a project (stored in the current transaction). */
int64_t ferry_exec_next_counter(ferryd *d, const char *project);
int ferry_exec_insert(ferryd *d, ferry_exec *e);
/* Persist status, reason, exit code and timestamps. */
int ferry_exec_save_status(ferryd *d, ferry_exec *e);
int ferry_exec_save_progress(ferryd *d, ferry_exec *e);     /* agent_seq, metadata, worker */
int ferry_exec_save_restarted_as(ferryd *d, ferry_exec *e); /* once its restart exists */

/* Look up by uuid or counter (in `project` when non-NULL; a counter only
 * among `owner`'s executions when non-NULL). Active
 * executions are returned from memory (*owned = 0); others are loaded
 * (*owned = 1, free with ferry_exec_free). FERRY_ENOENT, or FERRY_EEXIST when
 * a counter is ambiguous across projects. */
int ferry_exec_find(ferryd *d, const char *ref, const char *project, const char *owner,
                    ferry_exec **out, int *owned);
void ferry_exec_release(ferry_exec *e, int owned);
/* Load every non-terminal execution into d->active, oldest first, calling
 * `each` for each one (the scheduler re-queues them). */
int ferry_exec_load_active(ferryd *d, void (*each)(ferryd *d, ferry_exec *e));
/* Which executions a list wants: each field NULL for any. */
typedef struct ferry_exec_filter {
    const char *status, *project, *step;
    const char *owner;  /* NULL: everyone's */
    const char *commit; /* a commit sha or a prefix of one (lowercase hex) */
    const char *tag;    /* one of its tags */
    int limit;
} ferry_exec_filter;
/* Executions newest first, filtered, loaded from their rows: *n_out
 * records, each to ferry_exec_free, in an array to free(). */
ferry_exec **ferry_exec_list(ferryd *d, const ferry_exec_filter *f, size_t *n_out);

int ferry_exec_add_output(ferryd *d, const char *id, const char *name, int64_t size,
                          const char *sha256);
json_t *ferry_exec_outputs_json(ferryd *d, const char *id);
/* The newest complete execution of `project` whose reuse_key is `key`
 * (among the ids of `only` when non-NULL): 0 with its id, or FERRY_ENOENT. */
int ferry_exec_find_reusable(ferryd *d, const char *project, const char *key, const json_t *only,
                             char id[37]);

void ferry_exec_watch(ferry_exec *e, ferry_exec_watcher *w);
void ferry_exec_unwatch(ferry_exec *e, ferry_exec_watcher *w);

#endif
