/* Pipelines and their nodes in SQLite (pipelinerows.h). */
#include "pipelinerows.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "util.h"

static void pipelinerows__node_free(ferry_pnode *n)
{
    free(n->name);
    free(n->status);
    free(n->approval);
    free(n->approval_by);
    free(n->reason);
    json_decref(n->base);
    json_decref(n->commit);
}

void ferry_pipeline_free(ferry_pipeline *p)
{
    if (p == NULL)
        return;
    for (size_t i = 0; i < p->n_nodes; i++)
        pipelinerows__node_free(&p->nodes[i]);
    free(p->nodes);
    free(p->project);
    free(p->name);
    free(p->owner);
    free(p->status);
    free(p->reason);
    free(p->ending);
    free(p->snapshot);
    json_decref(p->git_commit);
    json_decref(p->definition);
    json_decref(p->parameters);
    free(p->reuse_from);
    free(p->title);
    json_decref(p->tags);
    free(p);
}

ferry_pnode *ferry_pipeline_find_node(const ferry_pipeline *p, const char *name)
{
    for (size_t i = 0; i < p->n_nodes; i++)
        if (strcmp(p->nodes[i].name, name) == 0)
            return &p->nodes[i];
    return NULL;
}

int ferry_pipeline_status_final(const char *status)
{
    return strcmp(status, "complete") == 0 || strcmp(status, "error") == 0 ||
           strcmp(status, "stopped") == 0;
}

static void pipelinerows__bind_text(sqlite3_stmt *st, int col, const char *text)
{
    if (text)
        sqlite3_bind_text(st, col, text, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(st, col);
}

/* Binds `j` as its compact text (NULL: SQL NULL). */
static void pipelinerows__bind_json(sqlite3_stmt *st, int col, const json_t *j)
{
    char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    if (text)
        sqlite3_bind_text(st, col, text, -1, free);
    else
        sqlite3_bind_null(st, col);
}

static void pipelinerows__bind_time(sqlite3_stmt *st, int col, double t)
{
    if (t > 0)
        sqlite3_bind_double(st, col, t);
    else
        sqlite3_bind_null(st, col);
}

static int64_t pipelinerows__next_counter(ferryd *d, const char *project)
{
    sqlite3_stmt *st = ferry_db_prepare(
        d, "SELECT COALESCE(MAX(counter), 0) + 1 FROM pipelines WHERE project = ?");
    sqlite3_bind_text(st, 1, project, -1, SQLITE_STATIC);
    int64_t next = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 1;
    sqlite3_reset(st);
    return next;
}

int ferry_pipelines_insert(ferryd *d, ferry_pipeline *p)
{
    ferry_db_write(d);
    p->counter = pipelinerows__next_counter(d, p->project);
    sqlite3_stmt *st = ferry_db_prepare(
        d, "INSERT INTO pipelines (id, counter, project, name, owner, status, snapshot, git_commit,"
           " definition, parameters, reuse, reuse_from, title, tags, created_at)"
           " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)");
    sqlite3_bind_text(st, 1, p->id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, p->counter);
    sqlite3_bind_text(st, 3, p->project, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, p->name, -1, SQLITE_STATIC);
    pipelinerows__bind_text(st, 5, p->owner);
    sqlite3_bind_text(st, 6, p->status, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 7, p->snapshot, -1, SQLITE_STATIC);
    pipelinerows__bind_json(st, 8, p->git_commit);
    pipelinerows__bind_json(st, 9, p->definition);
    pipelinerows__bind_json(st, 10, p->parameters);
    sqlite3_bind_int(st, 11, p->reuse);
    pipelinerows__bind_text(st, 12, p->reuse_from);
    pipelinerows__bind_text(st, 13, p->title);
    pipelinerows__bind_json(st, 14, p->tags);
    sqlite3_bind_double(st, 15, p->created_at);
    if (ferry_db_step_done(d, st) != SQLITE_DONE)
        return FERRY_EIO;
    for (size_t i = 0; i < p->n_nodes; i++)
        if (ferry_pipelines_save_node(d, p, &p->nodes[i]) < 0)
            return FERRY_EIO;
    return 0;
}

int ferry_pipelines_save(ferryd *d, const ferry_pipeline *p)
{
    ferry_db_write(d);
    sqlite3_stmt *st = ferry_db_prepare(
        d, "UPDATE pipelines SET status = ?2, reason = ?3, ending = ?4, started_at = ?5,"
           " ended_at = ?6 WHERE id = ?1");
    sqlite3_bind_text(st, 1, p->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, p->status, -1, SQLITE_STATIC);
    pipelinerows__bind_text(st, 3, p->reason);
    pipelinerows__bind_text(st, 4, p->ending);
    pipelinerows__bind_time(st, 5, p->started_at);
    pipelinerows__bind_time(st, 6, p->ended_at);
    return ferry_db_step_done(d, st) == SQLITE_DONE ? 0 : FERRY_EIO;
}

int ferry_pipelines_save_node(ferryd *d, const ferry_pipeline *p, const ferry_pnode *n)
{
    ferry_db_write(d);
    sqlite3_stmt *st = ferry_db_prepare(
        d, "INSERT INTO pipeline_nodes (pipeline_id, seq, name, status, execution_id, attempts,"
           " reused, approval, approval_by, approval_at, reason, base, git_commit)"
           " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"
           " ON CONFLICT (pipeline_id, name) DO UPDATE SET status = ?4, execution_id = ?5,"
           " attempts = ?6, reused = ?7, approval = ?8, approval_by = ?9, approval_at = ?10,"
           " reason = ?11");
    sqlite3_bind_text(st, 1, p->id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)(n - p->nodes));
    sqlite3_bind_text(st, 3, n->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, n->status, -1, SQLITE_STATIC);
    pipelinerows__bind_text(st, 5, n->exec_id[0] ? n->exec_id : NULL);
    sqlite3_bind_int(st, 6, n->attempts);
    sqlite3_bind_int(st, 7, n->reused);
    pipelinerows__bind_text(st, 8, n->approval);
    pipelinerows__bind_text(st, 9, n->approval_by);
    pipelinerows__bind_time(st, 10, n->approval_at);
    pipelinerows__bind_text(st, 11, n->reason);
    pipelinerows__bind_json(st, 12, n->base);
    pipelinerows__bind_json(st, 13, n->commit);
    return ferry_db_step_done(d, st) == SQLITE_DONE ? 0 : FERRY_EIO;
}

static char *pipelinerows__text(sqlite3_stmt *st, int col)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    return t ? ferry_strdup((const char *)t) : NULL;
}

/* The column's JSON, or NULL (SQL NULL, or text that does not parse). */
static json_t *pipelinerows__json(sqlite3_stmt *st, int col)
{
    const char *t = (const char *)sqlite3_column_text(st, col);
    return t ? json_loads(t, 0, NULL) : NULL;
}

static void pipelinerows__load_nodes(ferryd *d, ferry_pipeline *p)
{
    sqlite3_stmt *st = ferry_db_prepare(
        d, "SELECT name, status, execution_id, attempts, reused, approval, approval_by,"
           " approval_at, reason, base, git_commit FROM pipeline_nodes WHERE pipeline_id = ?"
           " ORDER BY seq");
    sqlite3_bind_text(st, 1, p->id, -1, SQLITE_STATIC);
    size_t cap = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        if (p->n_nodes == cap) {
            cap = cap ? cap * 2 : 8;
            p->nodes = ferry_xrealloc(p->nodes, cap * sizeof(*p->nodes));
        }
        ferry_pnode *n = &p->nodes[p->n_nodes++];
        memset(n, 0, sizeof(*n));
        n->name = pipelinerows__text(st, 0);
        n->status = pipelinerows__text(st, 1);
        const char *exec = (const char *)sqlite3_column_text(st, 2);
        snprintf(n->exec_id, sizeof(n->exec_id), "%s", exec ? exec : "");
        n->attempts = sqlite3_column_int(st, 3);
        n->reused = sqlite3_column_int(st, 4);
        n->approval = pipelinerows__text(st, 5);
        n->approval_by = pipelinerows__text(st, 6);
        n->approval_at = sqlite3_column_double(st, 7);
        n->reason = pipelinerows__text(st, 8);
        n->base = pipelinerows__json(st, 9);
        if (n->base == NULL)
            n->base = json_object();
        n->commit = pipelinerows__json(st, 10);
    }
    sqlite3_reset(st);
}

#define PIPELINEROWS__COLUMNS                                                                      \
    "id, counter, project, name, owner, status, reason, ending, snapshot, git_commit,"             \
    " definition, parameters, reuse, reuse_from, title, tags, created_at, started_at, ended_at"

static ferry_pipeline *pipelinerows__from_row(sqlite3_stmt *st)
{
    ferry_pipeline *p = ferry_xcalloc(1, sizeof(*p));
    snprintf(p->id, sizeof(p->id), "%s", (const char *)sqlite3_column_text(st, 0));
    p->counter = sqlite3_column_int64(st, 1);
    p->project = pipelinerows__text(st, 2);
    p->name = pipelinerows__text(st, 3);
    p->owner = pipelinerows__text(st, 4);
    p->status = pipelinerows__text(st, 5);
    p->reason = pipelinerows__text(st, 6);
    p->ending = pipelinerows__text(st, 7);
    p->snapshot = pipelinerows__text(st, 8);
    p->git_commit = pipelinerows__json(st, 9);
    p->definition = pipelinerows__json(st, 10);
    if (p->definition == NULL)
        p->definition = json_pack("{s:[], s:[]}", "nodes", "edges");
    p->parameters = pipelinerows__json(st, 11);
    if (p->parameters == NULL)
        p->parameters = json_object();
    p->reuse = sqlite3_column_int(st, 12);
    p->reuse_from = pipelinerows__text(st, 13);
    p->title = pipelinerows__text(st, 14);
    p->tags = pipelinerows__json(st, 15);
    if (p->tags == NULL)
        p->tags = json_array();
    p->created_at = sqlite3_column_double(st, 16);
    p->started_at = sqlite3_column_double(st, 17);
    p->ended_at = sqlite3_column_double(st, 18);
    return p;
}

int ferry_pipelines_find(ferryd *d, const char *ref, const char *project, const char *owner,
                         ferry_pipeline **out)
{
    /* A counter counts only among the pipelines this user may see, as an
     * execution's does: another user's #1 neither shadows nor shows. */
    int by_counter = ferry_is_digits(ref);
    sqlite3_stmt *st =
        by_counter
            ? ferry_db_prepare(d, "SELECT " PIPELINEROWS__COLUMNS " FROM pipelines WHERE"
                                  " counter = ?1 AND (?2 IS NULL OR project = ?2)"
                                  " AND (?3 IS NULL OR owner = ?3) LIMIT 2")
            : ferry_db_prepare(d, "SELECT " PIPELINEROWS__COLUMNS " FROM pipelines WHERE id = ?1"
                                  " AND (?2 IS NULL OR project = ?2)"
                                  " AND (?3 IS NULL OR owner = ?3)");
    if (by_counter)
        sqlite3_bind_int64(st, 1, strtoll(ref, NULL, 10));
    else
        sqlite3_bind_text(st, 1, ref, -1, SQLITE_STATIC);
    pipelinerows__bind_text(st, 2, project);
    pipelinerows__bind_text(st, 3, owner);
    ferry_pipeline *found = NULL;
    int rows = 0;
    while (sqlite3_step(st) == SQLITE_ROW)
        if (rows++ == 0)
            found = pipelinerows__from_row(st);
    sqlite3_reset(st);
    if (rows > 1) {
        ferry_pipeline_free(found);
        return FERRY_EEXIST;
    }
    if (found == NULL)
        return FERRY_ENOENT;
    pipelinerows__load_nodes(d, found);
    *out = found;
    return 0;
}

json_t *ferry_pipelines_ids(ferryd *d, const char *project, const char *owner, int unfinished,
                            int limit)
{
    sqlite3_stmt *st =
        unfinished ? ferry_db_prepare(d, "SELECT id FROM pipelines WHERE status IN"
                                         " ('created', 'started') ORDER BY created_at, counter")
                   : ferry_db_prepare(d, "SELECT id FROM pipelines WHERE (?1 IS NULL OR"
                                         " project = ?1) AND (?2 IS NULL OR owner = ?2)"
                                         " ORDER BY created_at DESC, counter DESC LIMIT ?3");
    if (!unfinished) {
        pipelinerows__bind_text(st, 1, project);
        pipelinerows__bind_text(st, 2, owner);
        sqlite3_bind_int(st, 3, limit > 0 ? limit : -1);
    }
    json_t *ids = json_array();
    while (sqlite3_step(st) == SQLITE_ROW)
        json_array_append_new(ids, json_string((const char *)sqlite3_column_text(st, 0)));
    sqlite3_reset(st);
    return ids;
}
