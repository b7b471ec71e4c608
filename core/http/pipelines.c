/* The pipelines API (pipelines.h). A user sees and acts on their own
 * pipelines only (an admin: all), as with executions. */
#include "pipelines.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "commits.h"
#include "pipeline_engine.h"
#include "space.h"
#include "views.h"

void ferry_pipelines_create(ferry_http_req *r)
{
    ferry_api_create_with(r, ferry_pipeline_create);
}

/* The pipeline the path names, as this user may see it: the engine's own
 * while it runs (*loaded NULL), else loaded (*loaded, to free). NULL with
 * a 404 or 409 sent. */
static ferry_pipeline *pipelines__find(ferry_http_req *r, ferry_pipeline **loaded)
{
    char project[128];
    *loaded = NULL;
    int has_project = ferry_http_query_arg(r, "project", project, sizeof(project));
    if (has_project < 0)
        return NULL;
    ferry_pipeline *found = NULL;
    int rc = ferry_pipelines_find(r->d, r->segs[2], has_project ? project : NULL,
                                  ferry_api_owner_filter(r), &found);
    if (rc == FERRY_EEXIST) {
        ferry_http_error(r->req, 409, NULL,
                         "pipeline #%s exists in several projects; give the project or the id",
                         r->segs[2]);
        return NULL;
    }
    if (rc < 0) {
        ferry_http_error(r->req, 404, NULL, "no pipeline '%s'", r->segs[2]);
        return NULL;
    }
    ferry_pipeline *live = ferry_pipeline_live(r->d, found->id);
    if (live) {
        ferry_pipeline_free(found);
        return live;
    }
    *loaded = found;
    return found;
}

void ferry_pipelines_list(ferry_http_req *r)
{
    char project[128], limit_text[16];
    int has_project = ferry_http_query_arg(r, "project", project, sizeof(project));
    int has_limit = ferry_http_query_arg(r, "limit", limit_text, sizeof(limit_text));
    if (has_project < 0 || has_limit < 0)
        return;
    int limit = has_limit ? atoi(limit_text) : 100;
    json_t *ids = ferry_pipelines_ids(r->d, has_project ? project : NULL, ferry_api_owner_filter(r),
                                      0, limit > 0 ? limit : 100);
    json_t *list = json_array();
    size_t i;
    const json_t *id;
    json_array_foreach(ids, i, id)
    {
        ferry_pipeline *p = ferry_pipeline_live(r->d, json_string_value(id)), *loaded = NULL;
        if (p == NULL &&
            ferry_pipelines_find(r->d, json_string_value(id), NULL, NULL, &loaded) == 0)
            p = loaded;
        if (p)
            json_array_append_new(list, ferry_view_pipeline(r->d, p));
        ferry_pipeline_free(loaded);
    }
    json_decref(ids);
    ferry_http_json(r->req, 200, json_pack("{s:o}", "pipelines", list));
}

void ferry_pipelines_show(ferry_http_req *r)
{
    ferry_pipeline *loaded, *p = pipelines__find(r, &loaded);
    if (p)
        ferry_http_json(r->req, 200, ferry_view_pipeline(r->d, p));
    ferry_pipeline_free(loaded);
}

/* Answers the pipeline `id` as it is now (it may have ended meanwhile). */
static void pipelines__answer(ferry_http_req *r, const char *id)
{
    ferry_pipeline *p = ferry_pipeline_live(r->d, id), *loaded = NULL;
    if (p == NULL && ferry_pipelines_find(r->d, id, NULL, NULL, &loaded) == 0)
        p = loaded;
    if (p)
        ferry_http_json(r->req, 200, ferry_view_pipeline(r->d, p));
    else
        ferry_http_error(r->req, 500, NULL, "the pipeline vanished");
    ferry_pipeline_free(loaded);
}

static const char *pipelines__who(const ferry_http_req *r)
{
    return r->user ? r->user->name : "user";
}

void ferry_pipelines_stop(ferry_http_req *r)
{
    ferry_pipeline *loaded, *p = pipelines__find(r, &loaded);
    if (p == NULL)
        return;
    char id[37];
    memcpy(id, p->id, sizeof(id));
    if (loaded || ferry_pipeline_stop(r->d, p, pipelines__who(r)) < 0)
        ferry_http_error(r->req, 409, NULL, "pipeline #%lld has ended already (%s)",
                         (long long)p->counter, p->status);
    else
        pipelines__answer(r, id);
    ferry_pipeline_free(loaded);
}

static void pipelines__decide(ferry_http_req *r, int approve)
{
    ferry_pipeline *loaded, *p = pipelines__find(r, &loaded);
    if (p == NULL)
        return;
    const char *node = r->segs[4];
    char id[37];
    memcpy(id, p->id, sizeof(id));
    int rc =
        loaded ? FERRY_ESTATE : ferry_pipeline_approve(r->d, p, node, approve, pipelines__who(r));
    if (rc == FERRY_ENOENT)
        ferry_http_error(r->req, 404, "node", "pipeline #%lld has no node '%s'",
                         (long long)p->counter, node);
    else if (rc < 0)
        ferry_http_error(r->req, 409, "node", "node '%s' of pipeline #%lld waits for no approval",
                         node, (long long)p->counter);
    else
        pipelines__answer(r, id);
    ferry_pipeline_free(loaded);
}

void ferry_pipelines_approve(ferry_http_req *r)
{
    pipelines__decide(r, 1);
}

void ferry_pipelines_reject(ferry_http_req *r)
{
    pipelines__decide(r, 0);
}
