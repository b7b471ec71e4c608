/* Datums, aliases and lineage in SQLite (datumrows.h). */
#include "datumrows.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "exec.h"
#include "log.h"
#include "logstore.h"
#include "util.h"

const char *ferry_datum_ref(const char *url)
{
    size_t n = strlen(FERRY_DATUM_SCHEME);
    return url && strncmp(url, FERRY_DATUM_SCHEME, n) == 0 ? url + n : NULL;
}

int ferry_datum_id_shaped(const char *ref)
{
    if (ref == NULL || strlen(ref) != 36)
        return 0;
    for (int i = 0; i < 36; i++) {
        int dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? ref[i] != '-' : strchr("0123456789abcdef", ref[i]) == NULL || ref[i] == '\0')
            return 0;
    }
    return 1;
}

int ferry_alias_name_ok(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    if (n == 0 || n > 64 || ferry_datum_id_shaped(name))
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        int alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
        if (!alnum && (i == 0 || strchr("._-", c) == NULL))
            return 0;
    }
    return 1;
}

static void datums__text(char *out, size_t cap, sqlite3_stmt *st, int col)
{
    const char *t = (const char *)sqlite3_column_text(st, col);
    snprintf(out, cap, "%s", t ? t : "");
}

static json_t *datums__text_json(sqlite3_stmt *st, int col)
{
    const char *t = (const char *)sqlite3_column_text(st, col);
    return t ? json_string(t) : json_null();
}

static json_t *datums__uri_json(sqlite3_stmt *st, int col)
{
    const char *t = (const char *)sqlite3_column_text(st, col);
    return t ? json_sprintf(FERRY_DATUM_SCHEME "%s", t) : json_null();
}

int ferry_datums_find(ferryd *d, const char *id, ferry_datum *out)
{
    sqlite3_stmt *st = ferry_db_prepare(
        d, "SELECT o.datum_id, o.execution_id, o.name, o.size, o.sha256, e.owner FROM outputs o"
           " LEFT JOIN executions e ON e.id = o.execution_id WHERE o.datum_id = ?");
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    int found = sqlite3_step(st) == SQLITE_ROW;
    if (found) {
        datums__text(out->id, sizeof(out->id), st, 0);
        datums__text(out->exec_id, sizeof(out->exec_id), st, 1);
        datums__text(out->name, sizeof(out->name), st, 2);
        out->size = sqlite3_column_int64(st, 3);
        datums__text(out->sha256, sizeof(out->sha256), st, 4);
        datums__text(out->owner, sizeof(out->owner), st, 5);
    }
    sqlite3_reset(st);
    return found;
}

int ferry_datum_visible(const ferry_datum *dt, const char *viewer)
{
    return viewer == NULL || (dt->owner[0] && strcmp(dt->owner, viewer) == 0);
}

/* The datum alias `name` points at now: 1, or 0. */
static int datums__alias_target(ferryd *d, const char *name, char *datum_id)
{
    sqlite3_stmt *st = ferry_db_prepare(d, "SELECT datum_id FROM aliases WHERE name = ?");
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    int found = sqlite3_step(st) == SQLITE_ROW;
    if (found)
        datums__text(datum_id, 37, st, 0);
    sqlite3_reset(st);
    return found;
}

int ferry_datums_resolve(ferryd *d, const char *ref, const char *viewer, ferry_datum *out,
                         int *alias)
{
    *alias = 0;
    if (ref == NULL || ref[0] == '\0')
        return 0;
    if (ferry_datum_id_shaped(ref))
        return ferry_datums_find(d, ref, out) && ferry_datum_visible(out, viewer);
    char target[37];
    if (!ferry_alias_name_ok(ref) || !datums__alias_target(d, ref, target))
        return 0;
    *alias = 1;
    return ferry_datums_find(d, target, out) && ferry_datum_visible(out, viewer);
}

int ferry_alias_set(ferryd *d, const char *name, const char *datum_id, const char *set_by,
                    const char *source)
{
    double now = ferry_now();
    ferry_db_write(d);
    sqlite3_stmt *st = ferry_db_prepare(d, "INSERT OR REPLACE INTO aliases (name, datum_id, set_by,"
                                           " set_at, source) VALUES (?,?,?,?,?)");
    for (int pass = 0; pass < 2; pass++) {
        sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, datum_id, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, set_by, -1, SQLITE_STATIC);
        sqlite3_bind_double(st, 4, now);
        sqlite3_bind_text(st, 5, source, -1, SQLITE_STATIC);
        if (ferry_db_step_done(d, st) != SQLITE_DONE)
            return FERRY_EIO;
        st = ferry_db_prepare(d, "INSERT INTO alias_history (name, datum_id, set_by, set_at,"
                                 " source) VALUES (?,?,?,?,?)");
    }
    return 0;
}

/* One alias (or move) row: name, datum_id, set_by, set_at, source,
 * output name, producer id, producer owner. */
static json_t *datums__alias_json(sqlite3_stmt *st, const char *viewer)
{
    const char *owner = (const char *)sqlite3_column_text(st, 7);
    int visible = viewer == NULL || (owner && strcmp(owner, viewer) == 0);
    char when[40];
    json_t *j = json_object();
    json_object_set_new(j, "name", datums__text_json(st, 0));
    json_object_set_new(j, "datum", visible ? datums__uri_json(st, 1) : json_null());
    json_object_set_new(j, "set_by", datums__text_json(st, 2));
    json_object_set_new(
        j, "set_at",
        json_string(ferry_time_format(sqlite3_column_double(st, 3), when, sizeof(when))));
    json_object_set_new(j, "source", datums__text_json(st, 4));
    json_object_set_new(j, "output", visible ? datums__text_json(st, 5) : json_null());
    json_object_set_new(j, "execution", visible ? datums__text_json(st, 6) : json_null());
    return j;
}

json_t *ferry_alias_list(ferryd *d, const char *viewer)
{
    sqlite3_stmt *st = ferry_db_prepare(
        d, "SELECT a.name, a.datum_id, a.set_by, a.set_at, a.source, o.name, o.execution_id,"
           " e.owner FROM aliases a JOIN outputs o ON o.datum_id = a.datum_id"
           " LEFT JOIN executions e ON e.id = o.execution_id"
           " WHERE ?1 IS NULL OR e.owner = ?1 ORDER BY a.name");
    if (viewer)
        sqlite3_bind_text(st, 1, viewer, -1, SQLITE_STATIC);
    json_t *arr = json_array();
    while (sqlite3_step(st) == SQLITE_ROW)
        json_array_append_new(arr, datums__alias_json(st, viewer));
    sqlite3_reset(st);
    return arr;
}

json_t *ferry_alias_history(ferryd *d, const char *name, const char *viewer)
{
    sqlite3_stmt *st = ferry_db_prepare(
        d, "SELECT h.name, h.datum_id, h.set_by, h.set_at, h.source, o.name, o.execution_id,"
           " e.owner FROM alias_history h LEFT JOIN outputs o ON o.datum_id = h.datum_id"
           " LEFT JOIN executions e ON e.id = o.execution_id"
           " WHERE h.name = ? ORDER BY h.set_at, h.rowid");
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    json_t *arr = json_array();
    while (sqlite3_step(st) == SQLITE_ROW)
        json_array_append_new(arr, datums__alias_json(st, viewer));
    sqlite3_reset(st);
    if (json_array_size(arr) == 0) {
        json_decref(arr);
        return NULL;
    }
    return arr;
}

json_t *ferry_alias_names_of(ferryd *d, const char *datum_id)
{
    sqlite3_stmt *st =
        ferry_db_prepare(d, "SELECT name FROM aliases WHERE datum_id = ? ORDER BY name");
    sqlite3_bind_text(st, 1, datum_id, -1, SQLITE_STATIC);
    json_t *arr = json_array();
    while (sqlite3_step(st) == SQLITE_ROW)
        json_array_append_new(arr, datums__text_json(st, 0));
    sqlite3_reset(st);
    return arr;
}

int ferry_datums_record_input(ferryd *d, const char *exec_id, const char *input,
                              const ferry_datum *dt, const char *alias)
{
    ferry_db_write(d);
    sqlite3_stmt *st = ferry_db_prepare(d, "INSERT OR REPLACE INTO execution_inputs (execution_id,"
                                           " input, datum_id, alias, size, sha256)"
                                           " VALUES (?,?,?,?,?,?)");
    sqlite3_bind_text(st, 1, exec_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, input, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, dt->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, alias, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, dt->size);
    sqlite3_bind_text(st, 6, dt->sha256, -1, SQLITE_STATIC);
    return ferry_db_step_done(d, st) == SQLITE_DONE ? 0 : FERRY_EIO;
}

json_t *ferry_datums_exec_inputs(ferryd *d, const char *exec_id)
{
    sqlite3_stmt *st = ferry_db_prepare(
        d, "SELECT i.input, i.datum_id, i.alias, i.size, i.sha256, o.name, e.id, e.counter,"
           " e.project, e.step FROM execution_inputs i"
           " LEFT JOIN outputs o ON o.datum_id = i.datum_id"
           " LEFT JOIN executions e ON e.id = o.execution_id"
           " WHERE i.execution_id = ? ORDER BY i.input, i.rowid");
    sqlite3_bind_text(st, 1, exec_id, -1, SQLITE_STATIC);
    json_t *arr = json_array();
    while (sqlite3_step(st) == SQLITE_ROW) {
        json_t *j = json_object();
        json_object_set_new(j, "input", datums__text_json(st, 0));
        json_object_set_new(j, "datum", datums__uri_json(st, 1));
        json_object_set_new(j, "alias", datums__text_json(st, 2));
        json_object_set_new(j, "size", json_integer(sqlite3_column_int64(st, 3)));
        json_object_set_new(j, "sha256", datums__text_json(st, 4));
        json_object_set_new(j, "output", datums__text_json(st, 5));
        json_object_set_new(j, "producer",
                            sqlite3_column_type(st, 6) == SQLITE_NULL
                                ? json_null()
                                : json_pack("{s:o, s:I, s:o, s:o}", "id", datums__text_json(st, 6),
                                            "counter", (json_int_t)sqlite3_column_int64(st, 7),
                                            "project", datums__text_json(st, 8), "step",
                                            datums__text_json(st, 9)));
        json_array_append_new(arr, j);
    }
    sqlite3_reset(st);
    return arr;
}

json_t *ferry_datums_consumers(ferryd *d, const char *datum_id, const char *viewer)
{
    sqlite3_stmt *st =
        ferry_db_prepare(d, "SELECT e.id, e.counter, e.project, e.step, e.status, i.input, i.alias"
                            " FROM execution_inputs i JOIN executions e ON e.id = i.execution_id"
                            " WHERE i.datum_id = ?1 AND (?2 IS NULL OR e.owner = ?2)"
                            " ORDER BY e.created_at, e.counter");
    sqlite3_bind_text(st, 1, datum_id, -1, SQLITE_STATIC);
    if (viewer)
        sqlite3_bind_text(st, 2, viewer, -1, SQLITE_STATIC);
    json_t *arr = json_array();
    while (sqlite3_step(st) == SQLITE_ROW)
        json_array_append_new(
            arr, json_pack("{s:o, s:I, s:o, s:o, s:o, s:o, s:o}", "id", datums__text_json(st, 0),
                           "counter", (json_int_t)sqlite3_column_int64(st, 1), "project",
                           datums__text_json(st, 2), "step", datums__text_json(st, 3), "status",
                           datums__text_json(st, 4), "input", datums__text_json(st, 5), "alias",
                           datums__text_json(st, 6)));
    sqlite3_reset(st);
    return arr;
}

/* A line in the execution's own log, while it runs (its outputs are
 * stored before it ends). */
static void datums__note(ferryd *d, const char *exec_id, const char *text)
{
    ferry_exec *live = ferry_map_get(&d->active, exec_id);
    if (live)
        ferry_logstore_append(d, live, "status", ferry_now(), text, strlen(text), 0);
}

void ferry_datums_output_stored(ferryd *d, const char *exec_id, const char *name)
{
    sqlite3_stmt *st = ferry_db_prepare(d, "SELECT o.datum_id, o.metadata, e.owner FROM outputs o"
                                           " LEFT JOIN executions e ON e.id = o.execution_id"
                                           " WHERE o.execution_id = ? AND o.name = ?");
    sqlite3_bind_text(st, 1, exec_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
    char datum_id[37] = "", owner[128] = "";
    json_t *meta = NULL;
    if (sqlite3_step(st) == SQLITE_ROW) {
        datums__text(datum_id, sizeof(datum_id), st, 0);
        const char *text = (const char *)sqlite3_column_text(st, 1);
        meta = text ? json_loads(text, 0, NULL) : NULL;
        datums__text(owner, sizeof(owner), st, 2);
    }
    sqlite3_reset(st);
    json_t *alias = json_object_get(meta, "ferry.alias");
    if (!json_is_string(alias))
        alias = json_object_get(meta, "valohai.alias");
    const char *want = json_string_value(alias);
    char now[37];
    if (want && datum_id[0] && ferry_alias_name_ok(want) && datums__alias_target(d, want, now) &&
        strcmp(now, datum_id) == 0) {
        /* A retried store of the same bytes: the alias points here already. */
    } else if (want && datum_id[0] && ferry_alias_name_ok(want)) {
        char *source = ferry_asprintf("output %s of execution %s", name, exec_id);
        if (ferry_alias_set(d, want, datum_id, owner[0] ? owner : NULL, source) < 0)
            ferry_error("execution %s: alias %s of output %s is not recorded", exec_id, want, name);
        free(source);
        char *text =
            ferry_asprintf("output %s: alias '%s' now points at datum://%s", name, want, datum_id);
        datums__note(d, exec_id, text);
        free(text);
    } else if (want && datum_id[0]) {
        char *text = ferry_asprintf("output %s: alias '%.100s' ignored: an alias name is "
                                    "[a-z0-9][a-z0-9._-]{0,63} and no datum id",
                                    name, want);
        datums__note(d, exec_id, text);
        free(text);
    }
    json_decref(meta);
}

void ferry_datums_annotate_outputs(ferryd *d, const char *exec_id, json_t *outputs)
{
    sqlite3_stmt *st =
        ferry_db_prepare(d, "SELECT datum_id FROM outputs WHERE execution_id = ? AND name = ?");
    size_t i;
    json_t *o;
    json_array_foreach(outputs, i, o)
    {
        sqlite3_bind_text(st, 1, exec_id, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, json_string_value(json_object_get(o, "name")), -1, SQLITE_STATIC);
        json_object_set_new(o, "datum",
                            sqlite3_step(st) == SQLITE_ROW ? datums__uri_json(st, 0) : json_null());
        sqlite3_reset(st);
    }
}
