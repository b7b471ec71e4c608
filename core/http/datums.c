/* Datums and aliases over HTTP (datums.h). Who may see what: a datum is
 * its producing execution's owner's (an admin sees all); a datum a user
 * may not see does not exist for them, so an error never tells them it
 * does. */
#include "datums.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blobs.h"
#include "datumrows.h"
#include "db.h"
#include "exec.h"
#include "log.h"
#include "logstore.h"
#include "util.h"
#include "views.h"

#define DATUMS__RULE "[a-z0-9][a-z0-9._-]{0,63}, and not shaped like a datum id"

/* The user whose view a request has, or NULL for an admin (everyone on
 * the unauthenticated loopback default, as api.c's). */
static const char *datums__viewer_of(const ferryd *d, const ferry_user *user)
{
    if (d->cfg.n_users == 0 || (user && user->admin))
        return NULL;
    return user ? user->name : "";
}

static const char *datums__viewer(const ferry_http_req *r)
{
    return datums__viewer_of(r->d, r->user);
}

/* ---- at creation ---- */

int ferry_http_datums_resolve(ferryd *d, const ferry_user *user, ferry_reply *reply, json_t *inputs,
                              json_t **records)
{
    *records = NULL;
    const char *viewer = datums__viewer_of(d, user);
    const char *name;
    json_t *urls;
    json_object_foreach(inputs, name, urls)
    {
        size_t i;
        json_t *u;
        json_array_foreach(urls, i, u)
        {
            const char *url = json_string_value(u);
            const char *ref = ferry_datum_ref(url);
            if (ref == NULL)
                continue;
            ferry_datum dt;
            int via_alias = 0;
            if (!ferry_datums_resolve(d, ref, viewer, &dt, &via_alias)) {
                ferry_reply_error(reply, 400, "inputs", "input '%s': %.300s is no alias or datum",
                                  name, url);
                json_decref(*records);
                *records = NULL;
                return FERRY_REPLIED;
            }
            if (*records == NULL)
                *records = json_array();
            json_array_append_new(*records,
                                  json_pack("{s:s, s:s, s:s?, s:s, s:s}", "input", name, "datum",
                                            dt.id, "alias", via_alias ? ref : NULL, "given", url,
                                            "output", dt.name));
            /* The execution keeps what it resolved to: a copy of it, or a
             * rerun, gets the same file even after the alias moved. */
            json_array_set_new(urls, i, json_sprintf(FERRY_DATUM_SCHEME "%s", dt.id));
        }
    }
    return 0;
}

void ferry_http_datums_save(ferryd *d, const char *exec_id, const json_t *records)
{
    size_t i;
    json_t *rec;
    json_array_foreach(records, i, rec)
    {
        ferry_datum dt;
        const char *input = json_string_value(json_object_get(rec, "input"));
        if (!ferry_datums_find(d, json_string_value(json_object_get(rec, "datum")), &dt) ||
            ferry_datums_record_input(d, exec_id, input, &dt,
                                      json_string_value(json_object_get(rec, "alias"))) < 0)
            ferry_error("execution %s: the datum of input %s is not recorded", exec_id, input);
    }
}

void ferry_http_datums_note(ferryd *d, ferry_exec *e, const json_t *records)
{
    size_t i;
    json_t *rec;
    json_array_foreach(e ? records : NULL, i, rec)
    {
        const char *alias = json_string_value(json_object_get(rec, "alias"));
        char *text =
            ferry_asprintf("input %s: %s%s" FERRY_DATUM_SCHEME "%s (output %s)",
                           json_string_value(json_object_get(rec, "input")),
                           alias ? json_string_value(json_object_get(rec, "given")) : "",
                           alias ? " is " : "", json_string_value(json_object_get(rec, "datum")),
                           json_string_value(json_object_get(rec, "output")));
        ferry_logstore_append(d, e, "status", ferry_now(), text, strlen(text), 0);
        free(text);
    }
}

char *ferry_http_datums_basename(ferryd *d, const char *url)
{
    ferry_datum dt;
    if (!ferry_datums_find(d, ferry_datum_ref(url), &dt))
        return ferry_strdup("input");
    const char *slash = strrchr(dt.name, '/');
    return ferry_strdup(slash ? slash + 1 : dt.name);
}

/* ---- the work spec ---- */

json_t *ferry_http_datums_input_file(ferryd *d, const char *url, const char *filename)
{
    json_t *file = json_pack("{s:s, s:s}", "filename", filename, "source", url);
    ferry_datum dt;
    if (!ferry_datums_find(d, ferry_datum_ref(url), &dt)) { /* resolved at creation */
        json_object_set_new(file, "error", json_sprintf("%s no longer exists", url));
        return file;
    }
    char *key = ferry_asprintf("executions/%s/outputs/%s", dt.exec_id, dt.name);
    char *get = ferry_blobs_worker_url(d, "GET", key, d->cfg.presigned_url_ttl_s, NULL, NULL);
    free(key);
    json_object_set_new(file, "url", json_string(get));
    json_object_set_new(file, "size", json_integer(dt.size));
    json_object_set_new(file, "sha256", json_string(dt.sha256));
    /* A datum never changes: its sha256 is a tag no other content has, so
     * the worker's input cache (keyed by ETag) serves one it holds. */
    json_object_set_new(file, "etag", json_string(dt.sha256));
    free(get);
    return file;
}

/* ---- the user API ---- */

void ferry_api_alias_list(ferry_http_req *r)
{
    ferry_http_json(r->req, 200,
                    json_pack("{s:o}", "aliases", ferry_alias_list(r->d, datums__viewer(r))));
}

/* 0, or FERRY_REPLIED after a 400 naming the rule. */
static int datums__check_name(ferry_http_req *r, const char *name)
{
    if (ferry_alias_name_ok(name))
        return 0;
    ferry_http_error(r->req, 400, "name", "alias name '%.100s' is not valid: an alias name is %s",
                     name, DATUMS__RULE);
    return FERRY_REPLIED;
}

void ferry_api_alias_set(ferry_http_req *r)
{
    const char *name = r->segs[2];
    if (datums__check_name(r, name) < 0)
        return;
    json_t *body = ferry_http_body_object(r);
    if (body == NULL)
        return;
    const char *given = json_string_value(json_object_get(body, "datum"));
    const char *ref = ferry_datum_ref(given);
    ferry_datum dt;
    int via_alias;
    if (given == NULL) {
        ferry_http_error(r->req, 400, "datum", "expected {\"datum\": \"datum://<id>\"}");
    } else if (!ferry_datums_resolve(r->d, ref ? ref : given, datums__viewer(r), &dt, &via_alias)) {
        ferry_http_error(r->req, 404, "datum", "%.300s is no alias or datum", given);
    } else if (ferry_alias_set(r->d, name, dt.id, r->user ? r->user->name : NULL,
                               "ferry alias set") < 0) {
        ferry_http_error(r->req, 500, NULL, "the alias could not be stored");
    } else {
        ferry_db_commit(r->d);
        json_t *list = ferry_alias_history(r->d, name, datums__viewer(r));
        json_t *last = json_array_get(list, json_array_size(list) - 1);
        ferry_http_json(r->req, 200, json_incref(last));
        json_decref(list);
    }
    json_decref(body);
}

void ferry_api_alias_history(ferry_http_req *r)
{
    const char *name = r->segs[2];
    if (datums__check_name(r, name) < 0)
        return;
    json_t *list = ferry_alias_history(r->d, name, datums__viewer(r));
    if (list == NULL)
        ferry_http_error(r->req, 404, NULL, "no alias '%.100s'", name);
    else
        ferry_http_json(r->req, 200, json_pack("{s:s, s:o}", "name", name, "history", list));
}

/* What a datum's producer was: the execution, its commit or snapshot and
 * parameters. */
static json_t *datums__producer(ferryd *d, const char *exec_id)
{
    ferry_exec *e = NULL;
    int owned = 0;
    if (ferry_exec_find(d, exec_id, NULL, NULL, &e, &owned) != 0)
        return json_null();
    json_t *full = ferry_view_exec(d, e);
    ferry_exec_release(e, owned);
    json_t *j = json_object();
    const char *keep[] = {"id",     "counter", "project",  "step",       "status",    "owner",
                          "commit", "adhoc",   "snapshot", "parameters", "created_at"};
    for (size_t i = 0; i < sizeof(keep) / sizeof(keep[0]); i++)
        json_object_set(j, keep[i], json_object_get(full, keep[i]));
    json_decref(full);
    return j;
}

void ferry_api_datum_show(ferry_http_req *r)
{
    const char *ref = r->segs[2];
    const char *viewer = datums__viewer(r);
    ferry_datum dt;
    int via_alias;
    if (!ferry_datums_resolve(r->d, ferry_datum_ref(ref) ? ferry_datum_ref(ref) : ref, viewer, &dt,
                              &via_alias)) {
        ferry_http_error(r->req, 404, NULL, "datum://%.300s is no alias or datum", ref);
        return;
    }
    json_t *j = json_object();
    json_object_set_new(j, "datum", json_sprintf(FERRY_DATUM_SCHEME "%s", dt.id));
    json_object_set_new(j, "id", json_string(dt.id));
    json_object_set_new(j, "name", json_string(dt.name));
    json_object_set_new(j, "size", json_integer(dt.size));
    json_object_set_new(j, "sha256", json_string(dt.sha256));
    json_object_set_new(j, "aliases", ferry_alias_names_of(r->d, dt.id));
    json_object_set_new(j, "producer", datums__producer(r->d, dt.exec_id));
    json_object_set_new(j, "consumers", ferry_datums_consumers(r->d, dt.id, viewer));
    ferry_http_json(r->req, 200, j);
}
