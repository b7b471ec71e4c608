/* Datums, aliases and lineage, in SQLite (issue 19).
 *
 * A datum is a stored output: its id (a UUID) is a column of the output's
 * row, given when the output is first stored, and `datum://<id>` names it
 * for ever (outputs are never deleted). An alias is a name that points at
 * one datum and moves; every move is kept (alias_history). There is one
 * namespace of aliases per ferryd: an alias records who set it, and a user
 * resolves (and lists) only aliases whose datum they may see, the datums
 * of their own executions (an admin: all). execution_inputs holds, per
 * input file that came from a datum, what it resolved to at creation, so
 * that lineage goes both ways: a datum's producer and its consumers.
 *
 * `viewer` below: the user whose view it is, or NULL for an admin's. */
#ifndef FERRY_DATUMROWS_H
#define FERRY_DATUMROWS_H

#include <jansson.h>
#include <stdint.h>

#include "daemon.h"

#define FERRY_DATUM_SCHEME "datum://"

typedef struct ferry_datum {
    char id[37];
    char exec_id[37];
    char name[1024]; /* the output's name */
    int64_t size;
    char sha256[65];
    char owner[128]; /* the producing execution's owner ("" when none) */
} ferry_datum;

/* The part after "datum://", or NULL when `url` is no datum URL. */
const char *ferry_datum_ref(const char *url);
/* Whether `ref` has the shape of a datum id (a UUID): never an alias. */
int ferry_datum_id_shaped(const char *ref);
/* Whether `name` is a valid alias: [a-z0-9][a-z0-9._-]{0,63}, not
 * UUID-shaped (a datum id wins over an alias of the same name). */
int ferry_alias_name_ok(const char *name);

/* The datum `id`: 1, or 0 when none. */
int ferry_datums_find(ferryd *d, const char *id, ferry_datum *out);
/* Whether `viewer` may see a datum (NULL viewer: an admin, always). */
int ferry_datum_visible(const ferry_datum *dt, const char *viewer);
/* The datum `ref` names, a datum id or an alias, as `viewer` sees it: 1
 * (`*alias` 1 when it came through an alias), or 0 when it names nothing
 * they may see. */
int ferry_datums_resolve(ferryd *d, const char *ref, const char *viewer, ferry_datum *out,
                         int *alias);

/* Point alias `name` at datum `datum_id` and record the move (set_by may
 * be NULL; source says how: "ferry alias set", "output NAME of execution
 * ID"). 0 or FERRY_EIO. Names are checked by the caller. */
int ferry_alias_set(ferryd *d, const char *name, const char *datum_id, const char *set_by,
                    const char *source);
/* [{"name", "datum", "set_by", "set_at", "source", "output", "execution"}]
 * of the aliases `viewer` may resolve, by name. */
json_t *ferry_alias_list(ferryd *d, const char *viewer);
/* The moves of alias `name`, oldest first (the same objects, those of
 * datums `viewer` may not see have "datum": null); NULL when the alias
 * was never set. */
json_t *ferry_alias_history(ferryd *d, const char *name, const char *viewer);
/* Names of the aliases that point at `datum_id` now (a JSON array). */
json_t *ferry_alias_names_of(ferryd *d, const char *datum_id);

/* Record one input file of an execution that came from a datum. */
int ferry_datums_record_input(ferryd *d, const char *exec_id, const char *input,
                              const ferry_datum *dt, const char *alias);
/* The execution's input files that came from datums: [{"input", "datum",
 * "alias", "size", "sha256", "output", "producer": {"id", "counter",
 * "project", "step"}}]. */
json_t *ferry_datums_exec_inputs(ferryd *d, const char *exec_id);
/* The executions that used `datum_id` as an input, oldest first (of
 * `viewer`'s only, unless NULL): [{"id", "counter", "project", "step",
 * "status", "input", "alias"}]. */
json_t *ferry_datums_consumers(ferryd *d, const char *datum_id, const char *viewer);

/* Give each output of `outputs` (ferry_exec_outputs_json's) its "datum":
 * "datum://<id>". */
void ferry_datums_annotate_outputs(ferryd *d, const char *exec_id, json_t *outputs);

/* An output of execution `exec_id` was stored: an alias its metadata asks
 * for ("ferry.alias", or Valohai's "valohai.alias") now points at its
 * datum. A name that breaks the rule is said in the execution's log. */
void ferry_datums_output_stored(ferryd *d, const char *exec_id, const char *name);

#endif
