/* Projects' endpoints (projects.h). */
#include "projects.h"

#include "git.h"

void ferry_projects_list(ferry_http_req *r)
{
    json_t *list = json_array();
    for (size_t i = 0; i < r->d->cfg.n_projects; i++)
        json_array_append_new(list, ferry_git_project_json(r->d, &r->d->cfg.projects[i]));
    ferry_http_json(r->req, 200, json_pack("{s:o}", "projects", list));
}

/* A fetch's answer: its changes, or 502 naming the project and the URL
 * (core/git/ made the text: no credentials in it). */
static void projects__fetched(ferryd *d, int rc, json_t *result, const char *err, void *arg)
{
    (void)d;
    ferry_reply *reply = arg;
    if (rc == 0)
        ferry_reply_json(reply, 200, json_incref(result));
    else if (rc == FERRY_ECANCELED)
        ferry_reply_error(reply, 503, NULL, "ferryd is shutting down");
    else
        ferry_reply_error(reply, 502, NULL, "%s", err ? err : ferry_strerror(rc));
    ferry_reply_release(reply);
}

void ferry_projects_fetch(ferry_http_req *r)
{
    const ferry_project *p = ferry_git_project(r->d, r->segs[2]);
    if (p == NULL) {
        ferry_http_error(r->req, 404, NULL, "no project '%s' in ferryd's config", r->segs[2]);
        return;
    }
    if (p->repository == NULL) {
        ferry_http_error(r->req, 400, NULL,
                         "project '%s' has no repository: it runs ad-hoc snapshots only", p->name);
        return;
    }
    ferry_reply *reply = ferry_http_reply(r->d, r->req);
    if (ferry_git_fetch(r->d, p, projects__fetched, reply) < 0) {
        ferry_reply_error(reply, 503, NULL, "project '%s': cannot start a fetch now", p->name);
        ferry_reply_release(reply);
    }
}
