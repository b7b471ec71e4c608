/* Execution records in SQLite, and the in-memory table of active ones. */
#include "exec.h"

#include <stdlib.h>
#include <string.h>

#include "datumrows.h"
#include "db.h"
#include "log.h"
#include "util.h"

static const char *status_names[] = {"created", "queued", "started", "stopping",
                                     "stopped", "error",  "complete"};

const char *ferry_status_name(ferry_status s)
{
    return (unsigned)s < sizeof(status_names) / sizeof(status_names[0]) ? status_names[s] : "?";
}

int ferry_status_parse(const char *text, ferry_status *out)
{
    for (size_t i = 0; i < sizeof(status_names) / sizeof(status_names[0]); i++)
        if (strcmp(text, status_names[i]) == 0) {
            *out = (ferry_status)i;
            return 0;
        }
    return FERRY_EINVAL;
}

int ferry_status_is_terminal(ferry_status s)
{
    return s == FERRY_STATUS_STOPPED || s == FERRY_STATUS_ERROR || s == FERRY_STATUS_COMPLETE;
}

ferry_exec *ferry_exec_new(void)
{
    ferry_exec *e = ferry_xcalloc(1, sizeof(*e));
    e->log_fd = -1;
    e->gpu_index = -1;
    return e;
}

void ferry_exec_free(ferry_exec *e)
{
    if (e == NULL)
        return;
    free(e->project);
    free(e->step);
    free(e->environment);
    free(e->image);
    free(e->snapshot);
    free(e->command);
    free(e->worker_id);
    free(e->owner);
    free(e->gpus);
    free(e->status_reason);
    json_decref(e->parameters);
    json_decref(e->inputs);
    json_decref(e->env);
    json_decref(e->tags);
    json_decref(e->metadata);
    free(e->reuse_key);
    json_decref(e->git_commit);
    free(e->based_on);
    free(e->title);
    free(e->stop_condition);
    free(e->restarted_from);
    free(e->restarted_as);
    free(e);
}

int64_t ferry_exec_next_counter(ferryd *d, const char *project)
{
    ferry_db_write(d);
    sqlite3_stmt *st =
        ferry_db_prepare(d, "INSERT INTO projects (name, last_counter) VALUES (?, 1) "
                            "ON CONFLICT (name) DO UPDATE SET last_counter = last_counter + 1 "
                            "RETURNING last_counter");
    sqlite3_bind_text(st, 1, project, -1, SQLITE_STATIC);
    int64_t n = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
    sqlite3_reset(st);
    return n;
}

static char *exec__json_text(const json_t *j, const char *fallback)
{
    char *s = j ? json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(15)) : NULL;
    return s ? s : ferry_strdup(fallback);
}

static void exec__bind_time(sqlite3_stmt *st, int col, double t)
{
    if (t > 0)
        sqlite3_bind_double(st, col, t);
    else
        sqlite3_bind_null(st, col);
}

int ferry_exec_insert(ferryd *d, ferry_exec *e)
{
    ferry_db_write(d);
    sqlite3_stmt *st = ferry_db_prepare(
        d, "INSERT INTO executions (id, counter, project, step, status, environment, image,"
           " snapshot, command, parameters, inputs, env, tags, time_limit, valohai, created_at,"
           " owner, priority, no_output_timeout, git_commit, commit_sha, based_on, title,"
           " stop_condition, autorestart, restarted_from, restarts, reuse_key)"
           " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)");
    char *params = exec__json_text(e->parameters, "{}"), *inputs = exec__json_text(e->inputs, "{}");
    char *commit = e->git_commit ? exec__json_text(e->git_commit, "null") : NULL;
    char *env = exec__json_text(e->env, "{}"), *tags = exec__json_text(e->tags, "[]");
    sqlite3_bind_text(st, 1, e->id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, e->counter);
    sqlite3_bind_text(st, 3, e->project, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, e->step, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, ferry_status_name(e->status), -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, e->environment, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 7, e->image, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 8, e->snapshot, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 9, e->command, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 10, params, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 11, inputs, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 12, env, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 13, tags, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 14, e->time_limit);
    sqlite3_bind_int(st, 15, e->valohai);
    sqlite3_bind_double(st, 16, e->created_at);
    sqlite3_bind_text(st, 17, e->owner, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 18, e->priority);
    sqlite3_bind_int64(st, 19, e->no_output_timeout);
    sqlite3_bind_text(st, 20, commit, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 21, json_string_value(json_object_get(e->git_commit, "sha")), -1,
                      SQLITE_STATIC);
    sqlite3_bind_text(st, 22, e->based_on, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 23, e->title, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 24, e->stop_condition, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 25, e->autorestart);
    sqlite3_bind_text(st, 26, e->restarted_from, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 27, e->restarts);
    sqlite3_bind_text(st, 28, e->reuse_key, -1, SQLITE_STATIC);
    int rc = ferry_db_step_done(d, st);
    free(commit);
    free(params);
    free(inputs);
    free(env);
    free(tags);
    return rc == SQLITE_DONE ? 0 : FERRY_EIO;
}

int ferry_exec_save_status(ferryd *d, ferry_exec *e)
{
    ferry_db_write(d);
    sqlite3_stmt *st = ferry_db_prepare(
        d, "UPDATE executions SET status = ?, status_reason = ?, exit_code = ?, queued_at = ?,"
           " started_at = ?, ended_at = ? WHERE id = ?");
    sqlite3_bind_text(st, 1, ferry_status_name(e->status), -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, e->status_reason, -1, SQLITE_STATIC);
    if (e->has_exit_code)
        sqlite3_bind_int(st, 3, e->exit_code);
    else
        sqlite3_bind_null(st, 3);
    exec__bind_time(st, 4, e->queued_at);
    exec__bind_time(st, 5, e->started_at);
    exec__bind_time(st, 6, e->ended_at);
    sqlite3_bind_text(st, 7, e->id, -1, SQLITE_STATIC);
    return ferry_db_step_done(d, st) == SQLITE_DONE ? 0 : FERRY_EIO;
}

int ferry_exec_save_progress(ferryd *d, ferry_exec *e)
{
    ferry_db_write(d);
    sqlite3_stmt *st = ferry_db_prepare(
        d,
        "UPDATE executions SET agent_seq = ?, metadata = ?, worker_id = ?, gpus = ? WHERE id = ?");
    char *meta = exec__json_text(e->metadata, "{}");
    sqlite3_bind_int64(st, 1, e->agent_seq);
    sqlite3_bind_text(st, 2, meta, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, e->worker_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, e->gpus, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, e->id, -1, SQLITE_STATIC);
    int rc = ferry_db_step_done(d, st);
    free(meta);
    e->metadata_dirty = 0;
    return rc == SQLITE_DONE ? 0 : FERRY_EIO;
}

int ferry_exec_save_restarted_as(ferryd *d, ferry_exec *e)
{
    ferry_db_write(d);
    sqlite3_stmt *st = ferry_db_prepare(d, "UPDATE executions SET restarted_as = ? WHERE id = ?");
    sqlite3_bind_text(st, 1, e->restarted_as, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, e->id, -1, SQLITE_STATIC);
    return ferry_db_step_done(d, st) == SQLITE_DONE ? 0 : FERRY_EIO;
}

#define EXEC__COLUMNS                                                                              \
    "id, counter, project, step, status, status_reason, exit_code, environment, image,"            \
    " snapshot, command, parameters, inputs, env, tags, time_limit, valohai, metadata,"            \
    " agent_seq, worker_id, created_at, queued_at, started_at, ended_at, owner, priority,"         \
    " no_output_timeout, gpus, git_commit, based_on, title, stop_condition, autorestart,"          \
    " restarted_from, restarted_as, restarts"

static char *exec__col_text(sqlite3_stmt *st, int col)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    return t ? ferry_strdup((const char *)t) : NULL;
}

static json_t *exec__col_json(sqlite3_stmt *st, int col)
{
    const char *t = (const char *)sqlite3_column_text(st, col);
    json_t *j = t ? json_loads(t, 0, NULL) : NULL;
    return j ? j : json_object();
}

static ferry_exec *exec__from_row(sqlite3_stmt *st)
{
    ferry_exec *e = ferry_exec_new();
    e->log_count = -1; /* counted from the file on its next append */
    snprintf(e->id, sizeof(e->id), "%s", (const char *)sqlite3_column_text(st, 0));
    e->counter = sqlite3_column_int64(st, 1);
    e->project = exec__col_text(st, 2);
    e->step = exec__col_text(st, 3);
    ferry_status_parse((const char *)sqlite3_column_text(st, 4), &e->status);
    e->status_reason = exec__col_text(st, 5);
    e->has_exit_code = sqlite3_column_type(st, 6) != SQLITE_NULL;
    e->exit_code = sqlite3_column_int(st, 6);
    e->environment = exec__col_text(st, 7);
    e->image = exec__col_text(st, 8);
    e->snapshot = exec__col_text(st, 9);
    e->command = exec__col_text(st, 10);
    e->parameters = exec__col_json(st, 11);
    e->inputs = exec__col_json(st, 12);
    e->env = exec__col_json(st, 13);
    e->tags = exec__col_json(st, 14);
    e->time_limit = sqlite3_column_int64(st, 15);
    e->valohai = sqlite3_column_int(st, 16);
    e->metadata = exec__col_json(st, 17);
    e->agent_seq = sqlite3_column_int64(st, 18);
    e->worker_id = exec__col_text(st, 19);
    e->created_at = sqlite3_column_double(st, 20);
    e->queued_at = sqlite3_column_double(st, 21);
    e->started_at = sqlite3_column_double(st, 22);
    e->ended_at = sqlite3_column_double(st, 23);
    e->owner = exec__col_text(st, 24);
    e->priority = sqlite3_column_int(st, 25);
    e->no_output_timeout = sqlite3_column_int64(st, 26);
    e->gpus = exec__col_text(st, 27);
    const char *commit = (const char *)sqlite3_column_text(st, 28);
    e->git_commit = commit ? json_loads(commit, 0, NULL) : NULL;
    e->based_on = exec__col_text(st, 29);
    e->title = exec__col_text(st, 30);
    e->stop_condition = exec__col_text(st, 31);
    e->autorestart = sqlite3_column_int(st, 32);
    e->restarted_from = exec__col_text(st, 33);
    e->restarted_as = exec__col_text(st, 34);
    e->restarts = sqlite3_column_int(st, 35);
    return e;
}

static int exec__find_by_counter(ferryd *d, const char *ref, const char *project, const char *owner,
                                 ferry_exec **out)
{
    /* Only the executions this user may see count: another user's #1 must
     * neither shadow nor reveal itself. */
    sqlite3_stmt *st = ferry_db_prepare(
        d, "SELECT " EXEC__COLUMNS " FROM executions WHERE counter = ?1"
           " AND (?2 IS NULL OR project = ?2) AND (?3 IS NULL OR owner = ?3) LIMIT 2");
    if (project)
        sqlite3_bind_text(st, 2, project, -1, SQLITE_STATIC);
    if (owner)
        sqlite3_bind_text(st, 3, owner, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 1, strtoll(ref, NULL, 10));
    ferry_exec *found = NULL;
    int rows = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        if (rows++ == 0)
            found = exec__from_row(st);
    }
    sqlite3_reset(st);
    if (rows > 1) {
        ferry_exec_free(found);
        return FERRY_EEXIST;
    }
    *out = found;
    return found ? 0 : FERRY_ENOENT;
}

int ferry_exec_find(ferryd *d, const char *ref, const char *project, const char *owner,
                    ferry_exec **out, int *owned)
{
    ferry_exec *e = ferry_map_get(&d->active, ref);
    if (e) {
        *out = e;
        *owned = 0;
        return 0;
    }
    int rc;
    if (ferry_is_digits(ref)) {
        rc = exec__find_by_counter(d, ref, project, owner, &e);
    } else {
        sqlite3_stmt *st =
            ferry_db_prepare(d, "SELECT " EXEC__COLUMNS " FROM executions WHERE id = ?");
        sqlite3_bind_text(st, 1, ref, -1, SQLITE_STATIC);
        e = sqlite3_step(st) == SQLITE_ROW ? exec__from_row(st) : NULL;
        sqlite3_reset(st);
        rc = e ? 0 : FERRY_ENOENT;
    }
    if (rc < 0)
        return rc;
    /* A counter may name an active execution: hand out the live copy. */
    ferry_exec *live = ferry_map_get(&d->active, e->id);
    if (live) {
        ferry_exec_free(e);
        *out = live;
        *owned = 0;
        return 0;
    }
    *out = e;
    *owned = 1;
    return 0;
}

void ferry_exec_release(ferry_exec *e, int owned)
{
    if (owned)
        ferry_exec_free(e);
}

int ferry_exec_load_active(ferryd *d, void (*each)(ferryd *d, ferry_exec *e))
{
    sqlite3_stmt *st = ferry_db_prepare(
        d, "SELECT " EXEC__COLUMNS " FROM executions WHERE status IN"
           " ('created', 'queued', 'started', 'stopping') ORDER BY created_at, rowid");
    ferry_exec **all = NULL;
    size_t n = 0, cap = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        FERRY_XGROW(all, cap, n + 1);
        ferry_exec *e = exec__from_row(st);
        e->active = 1;
        ferry_map_put(&d->active, e->id, e);
        all[n++] = e;
    }
    sqlite3_reset(st);
    /* Call back only after the statement is done (callbacks write), in
     * creation order so that queues and quotas keep it. */
    for (size_t i = 0; i < n; i++)
        each(d, all[i]);
    free(all);
    return (int)n;
}

ferry_exec **ferry_exec_list(ferryd *d, const ferry_exec_filter *f, size_t *n_out)
{
    /* A commit prefix as a range of the index: every sha that starts with
     * "5d6e" lies in ["5d6e", "5d6eg"), 'g' sorting after every hex digit. */
    sqlite3_stmt *st = ferry_db_prepare(
        d, "SELECT " EXEC__COLUMNS " FROM executions WHERE (?1 IS NULL OR status = ?1)"
           " AND (?2 IS NULL OR project = ?2) AND (?4 IS NULL OR owner = ?4)"
           " AND (?5 IS NULL OR step = ?5)"
           " AND (?6 IS NULL OR (commit_sha >= ?6 AND commit_sha < ?6 || 'g'))"
           " AND (?7 IS NULL OR EXISTS (SELECT 1 FROM json_each(executions.tags)"
           " WHERE json_each.value = ?7))"
           " ORDER BY created_at DESC, rowid DESC LIMIT ?3");
    const char *text[] = {f->status, f->project, NULL, f->owner, f->step, f->commit, f->tag};
    for (int i = 0; i < 7; i++)
        if (text[i])
            sqlite3_bind_text(st, i + 1, text[i], -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 3, f->limit);
    ferry_exec **rows = NULL;
    size_t n = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        rows = ferry_xrealloc(rows, (n + 1) * sizeof(*rows));
        rows[n++] = exec__from_row(st);
    }
    sqlite3_reset(st);
    *n_out = n;
    return rows;
}

int ferry_exec_add_output(ferryd *d, const char *id, const char *name, int64_t size,
                          const char *sha256)
{
    ferry_db_write(d);
    /* With the metadata the worker declared (uploadrows.h); a second store
     * of the same output after that was forgotten keeps the one recorded.
     * Its datum id (datumrows.h) is new, unless the same bytes were stored
     * under this name before: a retried PUT keeps the datum it made. */
    char datum_id[37];
    ferry_uuid(datum_id);
    sqlite3_stmt *st = ferry_db_prepare(
        d, "INSERT OR REPLACE INTO outputs (execution_id, name, size, sha256, metadata, datum_id)"
           " VALUES (?1,?2,?3,?4, COALESCE((SELECT metadata FROM output_metadata"
           " WHERE execution_id = ?1 AND name = ?2), (SELECT metadata FROM outputs"
           " WHERE execution_id = ?1 AND name = ?2)), COALESCE((SELECT datum_id FROM outputs"
           " WHERE execution_id = ?1 AND name = ?2 AND sha256 = ?4), ?5))");
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, size);
    sqlite3_bind_text(st, 4, sha256, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, datum_id, -1, SQLITE_STATIC);
    if (ferry_db_step_done(d, st) != SQLITE_DONE)
        return FERRY_EIO;
    ferry_datums_output_stored(d, id, name); /* an alias its metadata asks for */
    return 0;
}

/* An output's "metadata" (an empty object when none), and Valohai's
 * valohai.tags and valohai.alias lifted to "tags" and "alias" as well, for
 * scripts (they stay in the metadata too). */
static void exec__output_metadata(json_t *o, const char *text)
{
    json_t *meta = text ? json_loads(text, 0, NULL) : NULL;
    if (!json_is_object(meta)) {
        json_decref(meta);
        meta = json_object();
    }
    json_t *tags = json_object_get(meta, "valohai.tags");
    json_t *alias = json_object_get(meta, "valohai.alias");
    if (json_is_array(tags))
        json_object_set(o, "tags", tags);
    else if (json_is_string(tags)) /* one tag, as a user may write it */
        json_object_set_new(o, "tags", json_pack("[O]", tags));
    else
        json_object_set_new(o, "tags", json_array());
    if (json_is_string(alias))
        json_object_set(o, "alias", alias);
    json_object_set_new(o, "metadata", meta);
}

json_t *ferry_exec_outputs_json(ferryd *d, const char *id)
{
    sqlite3_stmt *st = ferry_db_prepare(d, "SELECT name, size, sha256, metadata FROM outputs"
                                           " WHERE execution_id = ? ORDER BY name");
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    json_t *arr = json_array();
    while (sqlite3_step(st) == SQLITE_ROW) {
        json_t *o = json_pack("{s:s, s:I, s:s}", "name", (const char *)sqlite3_column_text(st, 0),
                              "size", (json_int_t)sqlite3_column_int64(st, 1), "sha256",
                              (const char *)sqlite3_column_text(st, 2));
        exec__output_metadata(o, (const char *)sqlite3_column_text(st, 3));
        json_array_append_new(arr, o);
    }
    sqlite3_reset(st);
    return arr;
}

void ferry_exec_watch(ferry_exec *e, ferry_exec_watcher *w)
{
    w->prev = NULL;
    w->next = e->watchers;
    if (e->watchers)
        e->watchers->prev = w;
    e->watchers = w;
}

void ferry_exec_unwatch(ferry_exec *e, ferry_exec_watcher *w)
{
    if (w->prev)
        w->prev->next = w->next;
    else if (e->watchers == w)
        e->watchers = w->next;
    if (w->next)
        w->next->prev = w->prev;
    w->prev = w->next = NULL;
}

int ferry_exec_find_reusable(ferryd *d, const char *project, const char *key, const json_t *only,
                             char id[37])
{
    /* Newest first: the latest run of the same work is the one reused. The
     * rowid is the order of creation, and executions_reuse holds it in
     * that order for one key: no sort. */
    sqlite3_stmt *st = ferry_db_prepare(
        d, "SELECT id FROM executions WHERE project = ?1 AND reuse_key = ?2 AND status = 'complete'"
           " ORDER BY rowid DESC LIMIT CASE WHEN ?3 THEN -1 ELSE 1 END");
    sqlite3_bind_text(st, 1, project, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, key, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 3, only != NULL);
    int found = 0;
    while (!found && sqlite3_step(st) == SQLITE_ROW) {
        const char *each = (const char *)sqlite3_column_text(st, 0);
        found = only == NULL;
        size_t i;
        const json_t *v;
        json_array_foreach(only, i, v) found |= strcmp(json_string_value(v), each) == 0;
        if (found)
            snprintf(id, 37, "%s", each);
    }
    sqlite3_reset(st);
    return found ? 0 : FERRY_ENOENT;
}
