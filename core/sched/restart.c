/* Spot auto-restart: see restart.h. */
#include "restart.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "datumrows.h"
#include "exec.h"
#include "inputrows.h"
#include "lifecycle.h"
#include "log.h"
#include "logstore.h"
#include "util.h"

/* The reason workers.c gives an execution whose worker went away. */
#define RESTART__LOST "worker lost"

static int restart__lost(const ferry_exec *e)
{
    return e->status == FERRY_STATUS_ERROR && e->status_reason &&
           strncmp(e->status_reason, RESTART__LOST, strlen(RESTART__LOST)) == 0;
}

static void restart__note(ferryd *d, ferry_exec *e, const char *text)
{
    ferry_logstore_append(d, e, "status", ferry_now(), text, strlen(text), 0);
}

/* What `old` ran, as a new record: the same step, snapshot (and commit),
 * command, parameters, inputs, variables and limits; its own id and
 * counter. */
static ferry_exec *restart__copy(ferryd *d, const ferry_exec *old)
{
    ferry_exec *e = ferry_exec_new();
    ferry_uuid(e->id);
    e->project = ferry_strdup(old->project);
    e->counter = ferry_exec_next_counter(d, old->project);
    e->step = ferry_strdup(old->step);
    e->environment = ferry_strdup(old->environment);
    e->image = ferry_strdup(old->image);
    e->snapshot = ferry_strdup(old->snapshot);
    e->command = ferry_strdup(old->command);
    e->owner = ferry_strdup(old->owner);
    e->priority = old->priority;
    e->no_output_timeout = old->no_output_timeout;
    e->time_limit = old->time_limit;
    e->valohai = old->valohai;
    e->parameters = json_deep_copy(old->parameters);
    e->inputs = json_deep_copy(old->inputs);
    e->env = json_deep_copy(old->env);
    e->tags = json_deep_copy(old->tags);
    e->git_commit = old->git_commit ? json_deep_copy(old->git_commit) : NULL;
    e->based_on = ferry_strdup(old->based_on);
    e->title = ferry_strdup(old->title);
    e->stop_condition = ferry_strdup(old->stop_condition);
    e->autorestart = 1;
    e->restarted_from = ferry_strdup(old->id);
    e->restarts = old->restarts + 1;
    return e;
}

/* The first one's outputs so far (live ones included) as the input
 * _restart: each by its datum, fetched as any datum input, and recorded as
 * one for lineage. */
static void restart__outputs_input(ferryd *d, const ferry_exec *old, ferry_exec *e)
{
    json_t *outputs = ferry_exec_outputs_json(d, old->id), *urls = json_array();
    ferry_datums_annotate_outputs(d, old->id, outputs);
    size_t i;
    json_t *o;
    json_array_foreach(outputs, i, o)
    {
        const char *uri = json_string_value(json_object_get(o, "datum"));
        ferry_datum dt;
        if (uri && ferry_datums_find(d, ferry_datum_ref(uri), &dt) == 1) {
            json_array_append_new(urls, json_string(uri));
            ferry_datums_record_input(d, e->id, "_restart", &dt, NULL);
        }
    }
    if (json_array_size(urls) > 0)
        json_object_set(e->inputs, "_restart", urls);
    json_decref(urls);
    json_decref(outputs);
}

/* On the transition, not at the end: a run a user was stopping (from
 * `stopping`) is not restarted when its worker goes too. */
static void restart__on_transition(ferryd *d, ferry_exec *old, ferry_status from)
{
    if (!old->autorestart || from == FERRY_STATUS_STOPPING || !restart__lost(old) ||
        old->restarted_as)
        return;
    char text[256];
    if (old->restarts >= d->cfg.max_restarts) {
        snprintf(text, sizeof(text), "auto-restart: not restarted: max_restarts (%d) reached",
                 d->cfg.max_restarts);
        restart__note(d, old, text);
        return;
    }
    ferry_exec *e = restart__copy(d, old);
    restart__outputs_input(d, old, e);
    ferry_inputrows_copy(d, old->id, e->id);
    char id[37];
    memcpy(id, e->id, sizeof(id));
    int64_t counter = e->counter;
    int n = e->restarts;
    if (ferry_lifecycle_create(d, e) < 0) { /* e is freed */
        restart__note(d, old, "auto-restart: the new execution could not be stored");
        return;
    }
    old->restarted_as = ferry_strdup(id);
    ferry_exec_save_restarted_as(d, old);
    snprintf(text, sizeof(text), "auto-restart: restarted as #%lld (%s), restart %d of at most %d",
             (long long)counter, id, n, d->cfg.max_restarts);
    restart__note(d, old, text);
    ferry_info("execution %s: %s", old->id, text);
    ferry_exec *live = ferry_map_get(&d->active, id);
    if (live) {
        snprintf(text, sizeof(text), "auto-restart of #%lld (%s): %s", (long long)old->counter,
                 old->id, old->status_reason);
        restart__note(d, live, text);
    }
}

static const ferry_lifecycle_observer restart__observer = {.on_transition = restart__on_transition};

void ferry_restart_init(ferryd *d)
{
    ferry_lifecycle_observe(d, &restart__observer);
}
