/* local-docker: the cleanup op. Containers labelled ferry.execution that no
 * live run owns are removed: this instance's own leftovers, and those of
 * instances whose process is gone (a crashed or killed agent; see owner.h).
 * Containers of other live agents on the same daemon, and containers that
 * are not ferry's, are left alone. Completes with a JSON text:
 * {"removed": ["<id>", ...], "kept": N}.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "body.h"
#include "container.h"
#include "owner.h"

struct ld_cleanup {
    ld_state *st;
    ferry_op *op;
    ferry_http_request *req; /* the version or the listing */
    int pending;             /* removals in flight */
    int kept;
    int failures;
    char why[600];
    json_t *removed;
    int abandoned; /* fini: the op is the host's to cancel */
    ld_cleanup *prev, *next;
};

static void ld_cleanup_finish(ld_cleanup *c, int status)
{
    ld_state *st = c->st;
    if (c->prev != NULL)
        c->prev->next = c->next;
    else if (st->cleanups == c)
        st->cleanups = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    if (!c->abandoned) {
        if (status == 0 && c->failures > 0)
            status = FERRY_EPROVIDER;
        ferry_error_detail err;
        memset(&err, 0, sizeof(err));
        if (status < 0)
            ferry_error_set(&err, status, 1, NULL, "%s", c->why);
        json_t *text = json_pack("{s:O, s:i}", "removed", c->removed, "kept", c->kept);
        char *dump = json_dumps(text, JSON_COMPACT);
        ferry_op_result res = {.struct_size = sizeof(res),
                               .text = status == 0 ? dump : NULL,
                               .error = status < 0 ? &err : NULL};
        st->host->op_complete(c->op, status, &res);
        free(dump);
        json_decref(text);
    }
    json_decref(c->removed);
    free(c);
    ld_state_unref(st);
}

static void ld_cleanup_on_removed(void *arg, const ferry_http_response *res)
{
    ld_cleanup *c = arg;
    c->pending--;
    if (!ld_api_ok(res) && res->status != 404) { /* 404: gone already, fine */
        c->failures++;
        char why[500];
        snprintf(c->why, sizeof(c->why), "removing a leftover container: %s",
                 ld_api_why(c->st, res, why, sizeof(why)));
    }
    if (c->pending == 0)
        ld_cleanup_finish(c, 0);
}

static void ld_cleanup_remove(ld_cleanup *c, const char *id, const char *execution)
{
    if (ld_container_remove(c->st, id, ld_cleanup_on_removed, c, NULL) < 0) {
        c->failures++;
        snprintf(c->why, sizeof(c->why), "removing a leftover container: out of memory");
        return;
    }
    c->pending++;
    json_array_append_new(c->removed, json_stringn(id, strlen(id) < 12 ? strlen(id) : 12));
    ld_log(c->st, FERRY_LOG_INFO, "removing leftover container %.12s (execution %s)", id,
           execution ? execution : "?");
}

/* Whether a listed container is a leftover to remove. */
static int ld_cleanup_orphaned(ld_cleanup *c, const char *id, json_t *labels)
{
    const char *execution = json_string_value(json_object_get(labels, LD_LABEL_EXECUTION));
    const char *owner = json_string_value(json_object_get(labels, LD_LABEL_OWNER));
    switch (ld_owner_judge(owner, c->st->owner)) {
    case LD_OWNER_MINE:
        return !ld_run_owns(c->st, id, execution);
    case LD_OWNER_ORPHANED:
        return 1;
    case LD_OWNER_LIVE:
        break;
    }
    return 0;
}

static void ld_cleanup_on_list(void *arg, const ferry_http_response *res)
{
    ld_cleanup *c = arg;
    c->req = NULL;
    char why[500];
    if (c->abandoned) {
        ld_cleanup_finish(c, FERRY_ECANCELED);
        return;
    }
    json_t *list = ld_api_ok(res) ? json_loadb(res->body, res->body_len, 0, NULL) : NULL;
    if (!json_is_array(list)) {
        snprintf(c->why, sizeof(c->why), "listing containers: %s",
                 ld_api_ok(res) ? "not a list" : ld_api_why(c->st, res, why, sizeof(why)));
        json_decref(list);
        ld_cleanup_finish(c, res->code ? res->code : FERRY_EPROVIDER);
        return;
    }
    size_t i;
    json_t *e;
    json_array_foreach(list, i, e)
    {
        const char *id = json_string_value(json_object_get(e, "Id"));
        json_t *labels = json_object_get(e, "Labels");
        if (id == NULL)
            continue;
        if (ld_cleanup_orphaned(c, id, labels))
            ld_cleanup_remove(c, id,
                              json_string_value(json_object_get(labels, LD_LABEL_EXECUTION)));
        else
            c->kept++;
    }
    json_decref(list);
    if (c->pending == 0)
        ld_cleanup_finish(c, 0);
}

static void ld_cleanup_on_version(void *arg, int rc, const char *why)
{
    ld_cleanup *c = arg;
    c->req = NULL;
    if (rc < 0 || c->abandoned) {
        snprintf(c->why, sizeof(c->why), "%s", why ? why : "canceled");
        ld_cleanup_finish(c, rc < 0 ? rc : FERRY_ECANCELED);
        return;
    }
    if (ld_container_list_ours(c->st, ld_cleanup_on_list, c, &c->req) < 0) {
        snprintf(c->why, sizeof(c->why), "listing containers: out of memory");
        ld_cleanup_finish(c, FERRY_ENOMEM);
    }
}

int ld_cleanup_start(void *state, ferry_op *op)
{
    ld_state *st = state;
    ld_cleanup *c = calloc(1, sizeof(*c));
    if (c == NULL || (c->removed = json_array()) == NULL) {
        free(c);
        return FERRY_ENOMEM;
    }
    c->st = st;
    c->op = op;
    int rc = st->api[0] == '\0' ? ld_api_negotiate(st, ld_cleanup_on_version, c, &c->req)
                                : ld_container_list_ours(st, ld_cleanup_on_list, c, &c->req);
    if (rc < 0) {
        json_decref(c->removed);
        free(c);
        return rc;
    }
    st->refs++;
    c->next = st->cleanups;
    if (st->cleanups != NULL)
        st->cleanups->prev = c;
    st->cleanups = c;
    return 0;
}

void ld_cleanups_abandon(ld_state *st)
{
    for (ld_cleanup *c = st->cleanups; c != NULL; c = c->next)
        c->abandoned = 1; /* removals in flight go on; nothing is completed */
}
