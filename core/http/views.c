/* The JSON of records as the API shows them (docs/api.md): an execution,
 * with the scheduler's word on why it waits. */
#include "views.h"

#include <stdlib.h>
#include <string.h>

#include "datumrows.h"
#include "pipeline_engine.h"
#include "scheduler.h"
#include "util.h"

json_t *ferry_view_time(double t)
{
    if (t <= 0)
        return json_null();
    char buf[40];
    return json_string(ferry_time_format(t, buf, sizeof(buf)));
}

static json_t *views__str_json(const char *s)
{
    return s ? json_string(s) : json_null();
}

json_t *ferry_view_exec(ferryd *d, const ferry_exec *e)
{
    json_t *j = json_object();
    json_object_set_new(j, "id", json_string(e->id));
    json_object_set_new(j, "counter", json_integer(e->counter));
    json_object_set_new(j, "project", json_string(e->project));
    json_object_set_new(j, "step", json_string(e->step));
    json_object_set_new(j, "title", views__str_json(e->title));
    json_object_set_new(j, "status", json_string(ferry_status_name(e->status)));
    char why[1024]; /* a launch note names every zone tried */
    if (d && ferry_scheduler_why(d, e, why, sizeof(why)) == 0)
        json_object_set_new(j, "status_reason", json_string(why));
    else
        json_object_set_new(j, "status_reason", views__str_json(e->status_reason));
    json_object_set_new(j, "exit_code",
                        e->has_exit_code ? json_integer(e->exit_code) : json_null());
    json_object_set_new(j, "environment", json_string(e->environment));
    json_object_set_new(j, "image", views__str_json(e->image));
    json_object_set_new(j, "snapshot", json_string(e->snapshot));
    /* What ran: a commit of the project's repository, or an uploaded
     * snapshot and the commit its working copy was on. */
    json_object_set_new(j, "commit", e->git_commit ? json_incref(e->git_commit) : json_null());
    json_object_set_new(j, "adhoc",
                        e->git_commit ? json_null()
                                      : json_pack("{s:s, s:o}", "snapshot", e->snapshot, "based_on",
                                                  views__str_json(e->based_on)));
    json_object_set_new(j, "command", json_string(e->command));
    json_object_set(j, "parameters", e->parameters);
    json_object_set(j, "inputs", e->inputs);
    json_object_set(j, "tags", e->tags);
    json_object_set_new(j, "time_limit", json_integer(e->time_limit));
    json_object_set_new(j, "no_output_timeout", json_integer(e->no_output_timeout));
    json_object_set_new(j, "stop_condition", views__str_json(e->stop_condition));
    json_object_set_new(j, "owner", views__str_json(e->owner));
    json_object_set_new(j, "priority", json_boolean(e->priority));
    json_object_set_new(j, "gpus", views__str_json(e->gpus));
    json_object_set_new(j, "autorestart", json_boolean(e->autorestart));
    json_object_set_new(j, "restarted_from", views__str_json(e->restarted_from));
    json_object_set_new(j, "restarted_as", views__str_json(e->restarted_as));
    json_object_set_new(j, "created_at", ferry_view_time(e->created_at));
    json_object_set_new(j, "queued_at", ferry_view_time(e->queued_at));
    json_object_set_new(j, "started_at", ferry_view_time(e->started_at));
    json_object_set_new(j, "ended_at", ferry_view_time(e->ended_at));
    json_object_set(j, "metadata", e->metadata);
    json_t *outputs = d ? ferry_exec_outputs_json(d, e->id) : json_array();
    if (d) { /* lineage (issue 19): each output's datum, the datums of the inputs */
        ferry_datums_annotate_outputs(d, e->id, outputs);
        json_object_set_new(j, "input_datums", ferry_datums_exec_inputs(d, e->id));
    }
    json_object_set_new(j, "outputs", outputs);
    return j;
}

json_t *ferry_view_exec_list(ferryd *d, const ferry_exec_filter *f)
{
    size_t n = 0;
    ferry_exec **rows = ferry_exec_list(d, f, &n);
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        /* Active executions have fresher state in memory than in the row. */
        ferry_exec *live = ferry_map_get(&d->active, rows[i]->id);
        json_array_append_new(arr, ferry_view_exec(d, live ? live : rows[i]));
        ferry_exec_free(rows[i]);
    }
    free(rows);
    return arr;
}

/* What a node shows: its execution's status while it runs, else its own. */
static json_t *views__node(ferryd *d, const ferry_pipeline *p, const ferry_pnode *n)
{
    const json_t *def = ferry_pipeline_def_node(p, n->name);
    const char *status = n->status;
    json_t *exec = json_null();
    ferry_exec *e = NULL;
    int owned = 0;
    if (n->exec_id[0] && ferry_exec_find(d, n->exec_id, NULL, NULL, &e, &owned) == 0) {
        exec = json_pack("{s:s, s:I, s:s}", "id", e->id, "counter", (json_int_t)e->counter,
                         "status", ferry_status_name(e->status));
        if (strcmp(status, FERRY_NODE_RUNNING) == 0)
            status = ferry_status_name(e->status);
    } else if (strcmp(status, FERRY_NODE_RUNNING) == 0) {
        status = FERRY_NODE_PENDING; /* its creation is under way */
    }
    json_t *j = json_pack("{s:s, s:s?, s:s?, s:s, s:o, s:i, s:b, s:s?, s:s?, s:o, s:s?}", "name",
                          n->name, "type", json_string_value(json_object_get(def, "type")), "step",
                          json_string_value(json_object_get(def, "step")), "status", status,
                          "execution", exec, "attempts", n->attempts, "reused", n->reused,
                          "approval", n->approval, "approval_by", n->approval_by, "approval_at",
                          ferry_view_time(n->approval_at), "reason", n->reason);
    ferry_exec_release(e, owned);
    return j;
}

json_t *ferry_view_pipeline(ferryd *d, const ferry_pipeline *p)
{
    json_t *nodes = json_array(), *edges = json_array();
    for (size_t i = 0; i < p->n_nodes; i++)
        json_array_append_new(nodes, views__node(d, p, &p->nodes[i]));
    size_t i;
    const json_t *e;
    json_array_foreach(json_object_get(p->definition, "edges"), i, e)
    {
        char *source = ferry_pipeline_edge_text(json_object_get(e, "source"));
        char *target = ferry_pipeline_edge_text(json_object_get(e, "target"));
        json_array_append_new(edges, json_pack("{s:s, s:s}", "source", source, "target", target));
        free(source);
        free(target);
    }
    json_t *j =
        json_pack("{s:s, s:I, s:s, s:s, s:s?, s:s, s:s?, s:s, s:O?, s:s?, s:O, s:b, s:s?,"
                  " s:O}",
                  "id", p->id, "counter", (json_int_t)p->counter, "project", p->project, "name",
                  p->name, "owner", p->owner, "status", p->status, "reason", p->reason, "snapshot",
                  p->snapshot, "commit", p->git_commit, "title", p->title, "tags", p->tags, "reuse",
                  p->reuse, "reuse_from", p->reuse_from, "parameters", p->parameters);
    json_object_set_new(j, "ending", p->ending ? json_string(p->ending) : json_null());
    json_object_set_new(j, "created_at", ferry_view_time(p->created_at));
    json_object_set_new(j, "started_at", ferry_view_time(p->started_at));
    json_object_set_new(j, "ended_at", ferry_view_time(p->ended_at));
    json_object_set_new(j, "nodes", nodes);
    json_object_set_new(j, "edges", edges);
    return j;
}
