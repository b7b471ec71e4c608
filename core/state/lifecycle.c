/* The lifecycle: the one module that writes an execution's status. */
#include "lifecycle.h"

#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "log.h"
#include "logstore.h"
#include "util.h"

/* Executions that ended this loop turn, freed once the turn is over. */
struct lifecycle__grave {
    ferry_exec *e;
    struct lifecycle__grave *next;
};
typedef struct lifecycle__grave lifecycle__grave;

static void lifecycle__reap(uv_prepare_t *h)
{
    ferryd *d = h->data;
    while (d->graveyard) {
        lifecycle__grave *g = d->graveyard;
        d->graveyard = g->next;
        ferry_exec_free(g->e);
        free(g);
    }
}

int ferry_lifecycle_init(ferryd *d)
{
    uv_prepare_init(d->loop, &d->reaper);
    d->reaper.data = d;
    uv_prepare_start(&d->reaper, lifecycle__reap);
    uv_unref((uv_handle_t *)&d->reaper);
    return 0;
}

void ferry_lifecycle_close(ferryd *d)
{
    lifecycle__reap(&d->reaper);
    uv_prepare_stop(&d->reaper);
    uv_close((uv_handle_t *)&d->reaper, NULL);
}

static int lifecycle__allowed(ferry_status from, ferry_status to)
{
    switch (from) {
    case FERRY_STATUS_CREATED:
        return to == FERRY_STATUS_QUEUED || to == FERRY_STATUS_STOPPED || to == FERRY_STATUS_ERROR;
    case FERRY_STATUS_QUEUED:
        return to == FERRY_STATUS_STARTED || to == FERRY_STATUS_STOPPED || to == FERRY_STATUS_ERROR;
    case FERRY_STATUS_STARTED:
        return to == FERRY_STATUS_COMPLETE || to == FERRY_STATUS_ERROR ||
               to == FERRY_STATUS_STOPPING;
    case FERRY_STATUS_STOPPING:
        return to == FERRY_STATUS_STOPPED || to == FERRY_STATUS_ERROR;
    default:
        return 0; /* terminal statuses never change */
    }
}

int ferry_lifecycle_observe(ferryd *d, const ferry_lifecycle_observer *o)
{
    for (size_t i = 0; i < FERRY_LIFECYCLE_OBSERVERS; i++) {
        if (d->observers[i] == NULL || d->observers[i] == o) {
            d->observers[i] = o;
            return 0;
        }
    }
    return FERRY_ETOOBIG;
}

static void lifecycle__notify_create(ferryd *d, ferry_exec *e)
{
    for (size_t i = 0; i < FERRY_LIFECYCLE_OBSERVERS && d->observers[i]; i++)
        if (d->observers[i]->on_create)
            d->observers[i]->on_create(d, e);
}

static void lifecycle__notify_transition(ferryd *d, ferry_exec *e, ferry_status from)
{
    for (size_t i = 0; i < FERRY_LIFECYCLE_OBSERVERS && d->observers[i]; i++)
        if (d->observers[i]->on_transition)
            d->observers[i]->on_transition(d, e, from);
}

static void lifecycle__notify_end(ferryd *d, ferry_exec *e)
{
    for (size_t i = 0; i < FERRY_LIFECYCLE_OBSERVERS && d->observers[i]; i++)
        if (d->observers[i]->on_end)
            d->observers[i]->on_end(d, e);
}

static void lifecycle__log_status(ferryd *d, ferry_exec *e)
{
    char text[600];
    int n = snprintf(text, sizeof(text), "status: %s", ferry_status_name(e->status));
    if (e->status_reason && n > 0 && (size_t)n < sizeof(text))
        snprintf(text + n, sizeof(text) - (size_t)n, " (%s)", e->status_reason);
    ferry_logstore_append(d, e, "status", ferry_now(), text, strlen(text), 0);
}

static void lifecycle__bury(ferryd *d, ferry_exec *e)
{
    if (e->metadata_dirty)
        ferry_exec_save_progress(d, e);
    lifecycle__notify_end(d, e);
    ferry_logstore_close(e);
    for (ferry_exec_watcher *w = e->watchers, *next; w; w = next) {
        next = w->next;
        ferry_exec_unwatch(e, w);
        if (w->on_end)
            w->on_end(w, e);
    }
    ferry_map_del(&d->active, e->id);
    e->active = 0;
    lifecycle__grave *g = ferry_xmalloc(sizeof(*g));
    g->e = e;
    g->next = d->graveyard;
    d->graveyard = g;
}

int ferry_lifecycle_transition(ferryd *d, ferry_exec *e, ferry_status to, const char *reason,
                               int exit_code)
{
    ferry_status from = e->status;
    if (!lifecycle__allowed(from, to))
        return FERRY_ESTATE;
    double now = ferry_now();
    e->status = to;
    if (reason) {
        free(e->status_reason);
        e->status_reason = ferry_strdup(reason);
    }
    if (exit_code > FERRY_NO_EXIT_CODE) {
        e->has_exit_code = 1;
        e->exit_code = exit_code;
    }
    if (to == FERRY_STATUS_QUEUED)
        e->queued_at = now;
    if (to == FERRY_STATUS_STARTED)
        e->started_at = now;
    if (ferry_status_is_terminal(to))
        e->ended_at = now;
    int rc = ferry_exec_save_status(d, e);
    if (rc < 0)
        ferry_error("execution %s: status %s not stored", e->id, ferry_status_name(to));
    lifecycle__log_status(d, e);
    lifecycle__notify_transition(d, e, from);
    if (ferry_status_is_terminal(to))
        lifecycle__bury(d, e);
    return 0;
}

int ferry_lifecycle_create(ferryd *d, ferry_exec *e)
{
    e->status = FERRY_STATUS_CREATED;
    e->created_at = ferry_now();
    e->active = 1;
    int rc = ferry_exec_insert(d, e);
    if (rc < 0) {
        ferry_exec_free(e);
        return rc;
    }
    ferry_map_put(&d->active, e->id, e);
    lifecycle__log_status(d, e);
    lifecycle__notify_create(d, e);
    return 0;
}

int ferry_lifecycle_request_stop(ferryd *d, ferry_exec *e)
{
    switch (e->status) {
    case FERRY_STATUS_CREATED:
    case FERRY_STATUS_QUEUED:
        return ferry_lifecycle_transition(d, e, FERRY_STATUS_STOPPED, "stopped by user",
                                          FERRY_NO_EXIT_CODE);
    case FERRY_STATUS_STARTED:
        return ferry_lifecycle_transition(d, e, FERRY_STATUS_STOPPING, "stop requested",
                                          FERRY_NO_EXIT_CODE);
    case FERRY_STATUS_STOPPING:
        return 0;
    default:
        return FERRY_ESTATE;
    }
}

#define LIFECYCLE__CONDITION_MET "stop-condition met: "

int ferry_lifecycle_stop_condition_met(ferryd *d, ferry_exec *e)
{
    if (e->stop_condition == NULL || e->status != FERRY_STATUS_STARTED)
        return FERRY_ESTATE;
    char *reason = ferry_asprintf(LIFECYCLE__CONDITION_MET "%s", e->stop_condition);
    ferry_info("execution %s: %s", e->id, reason);
    int rc = ferry_lifecycle_transition(d, e, FERRY_STATUS_STOPPING, reason, FERRY_NO_EXIT_CODE);
    free(reason);
    return rc;
}

int ferry_lifecycle_finished(ferryd *d, ferry_exec *e, int exit_code, const char *reason)
{
    if (e->status == FERRY_STATUS_STOPPING) {
        /* Stopped by its stop-condition, the reason says so; else by a user. */
        const char *why = e->status_reason && !strncmp(e->status_reason, LIFECYCLE__CONDITION_MET,
                                                       strlen(LIFECYCLE__CONDITION_MET))
                              ? e->status_reason
                              : "stopped by user";
        char *kept = ferry_strdup(why); /* the transition replaces status_reason */
        int rc = ferry_lifecycle_transition(d, e, FERRY_STATUS_STOPPED, kept, exit_code);
        free(kept);
        return rc;
    }
    if (e->status != FERRY_STATUS_STARTED && e->status != FERRY_STATUS_QUEUED)
        return FERRY_ESTATE;
    if (exit_code == 0 && reason == NULL) {
        if (e->status == FERRY_STATUS_QUEUED) /* started report lost: record both */
            ferry_lifecycle_transition(d, e, FERRY_STATUS_STARTED, NULL, FERRY_NO_EXIT_CODE);
        return ferry_lifecycle_transition(d, e, FERRY_STATUS_COMPLETE, NULL, 0);
    }
    char why[600];
    if (reason)
        snprintf(why, sizeof(why), "%s", reason);
    else
        snprintf(why, sizeof(why), "exit code %d", exit_code);
    return ferry_lifecycle_transition(d, e, FERRY_STATUS_ERROR, why, exit_code);
}
