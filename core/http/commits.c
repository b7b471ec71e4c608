/* Executions of a git commit (commits.h): resolve, find or build the
 * snapshot of the commit's tree, store it, go on with the creation. */
#include "commits.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "git.h"
#include "gitrows.h"
#include "log.h"
#include "snapshots.h"
#include "util.h"

#define COMMITS__REF_MAX 255

/* One creation waiting for its commit's snapshot. */
typedef struct commits__wait {
    ferry_reply *reply;
    const ferry_user *user;
    json_t *body;
    ferry_commit_ready_fn ready;
    const ferry_project *p;
    ferry_git_commit commit;
    struct commits__wait *next;
} commits__wait;

/* One build of a tree's snapshot, shared by every creation that waits for
 * it: a sweep of fifty executions of one new commit builds it once. It is
 * in d->commit_builds (tree -> build) while core/git/ builds it. */
typedef struct commits__build {
    char tree[41];
    char snapshot[65];
    int64_t lfs_files;
    const char *stepfile_name; /* what the build found, or NULL */
    char *stepfile;
    size_t stepfile_len;
    commits__wait *waits;
} commits__build;

static void commits__wait_free(commits__wait *w)
{
    ferry_reply_release(w->reply);
    json_decref(w->body);
    ferry_git_commit_clear(&w->commit);
    free(w);
}

/* Answers the waiting creation with an error (when its client is still
 * there) and frees it. */
static void commits__fail(commits__wait *w, int status, const char *field, const char *msg)
{
    ferry_reply_error(w->reply, status, field, "%s", msg);
    commits__wait_free(w);
}

static void commits__build_free(commits__build *b)
{
    free(b->stepfile);
    free(b);
}

static void commits__fail_all(commits__build *b, int status, const char *field, const char *msg)
{
    while (b->waits) {
        commits__wait *w = b->waits;
        b->waits = w->next;
        commits__fail(w, status, field, msg);
    }
    commits__build_free(b);
}

/* What the execution records of its commit. */
static json_t *commits__json(const ferry_project *p, const ferry_git_commit *c)
{
    char url[1024];
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:I}", "sha", c->sha, "ref", c->ref ? c->ref : "",
                     "repository", ferry_git_public_url(p->repository, url, sizeof(url)), "message",
                     c->message ? c->message : "", "author", c->author ? c->author : "", "date",
                     (json_int_t)c->date);
}

/* The snapshot is in the store: the creation goes on. */
static void commits__ready(ferryd *d, commits__wait *w, const char *snapshot, int64_t lfs_files)
{
    if (!ferry_reply_gone(w->reply)) {
        json_object_set_new(w->body, "snapshot", json_string(snapshot));
        ferry_commit_info info = {.json = commits__json(w->p, &w->commit), .lfs_files = lfs_files};
        ferry_reply *reply = w->reply;
        w->reply = NULL;
        w->ready(d, w->user, json_incref(w->body), &info, reply);
        json_decref(info.json);
    }
    commits__wait_free(w);
}

static void commits__stored(ferryd *d, int status, void *arg)
{
    commits__build *b = arg;
    if (status < 0) {
        char msg[256];
        snprintf(msg, sizeof(msg), "the store did not take the snapshot of the commit: %s",
                 ferry_strerror(status));
        commits__fail_all(b, status == FERRY_ENOSPC ? 507 : 503, NULL, msg);
        return;
    }
    ferry_gitrows_put_snapshot(d, b->tree, b->snapshot, b->lfs_files);
    /* The build read the step file from the tree: not again from the archive. */
    if (b->stepfile_name)
        ferry_snapshot_seed_stepfile(d, b->snapshot, b->stepfile_name, b->stepfile,
                                     b->stepfile_len);
    while (b->waits) {
        commits__wait *w = b->waits;
        b->waits = w->next;
        commits__ready(d, w, b->snapshot, b->lfs_files);
    }
    commits__build_free(b);
}

static int commits__build_status(int rc)
{
    if (rc == FERRY_ETOOBIG)
        return 413;
    if (rc == FERRY_ECONN || rc == FERRY_EAUTH)
        return 502; /* a submodule's server */
    return rc == FERRY_ECANCELED ? 503 : 500;
}

static void commits__built(ferryd *d, int rc, const ferry_git_snapshot *snap, const char *err,
                           void *arg)
{
    commits__build *b = arg;
    ferry_map_del(&d->commit_builds, b->tree);
    if (rc < 0) {
        commits__fail_all(b, commits__build_status(rc), rc == FERRY_ETOOBIG ? "commit" : NULL,
                          err ? err : ferry_strerror(rc));
        return;
    }
    snprintf(b->snapshot, sizeof(b->snapshot), "%s", snap->sha256);
    b->lfs_files = snap->lfs_files;
    if (snap->stepfile_name) {
        b->stepfile_name = snap->stepfile_name; /* a static string */
        b->stepfile = ferry_xmalloc(snap->stepfile_len + 1);
        memcpy(b->stepfile, snap->stepfile, snap->stepfile_len);
        b->stepfile_len = snap->stepfile_len;
    }
    if (ferry_snapshot_store_file(d, snap->sha256, snap->path, commits__stored, b) < 0) {
        unlink(snap->path);
        commits__fail_all(b, 503, NULL, "cannot store the snapshot of the commit now");
    }
}

/* The cached snapshot of `w`'s tree, else a build (joined when one of
 * the same tree is under way). */
static void commits__snapshot(ferryd *d, commits__wait *w)
{
    char snapshot[65];
    int64_t lfs_files = 0;
    if (ferry_gitrows_snapshot(d, w->commit.tree, snapshot, &lfs_files) == 0) {
        if (ferry_snapshot_exists(d, snapshot)) {
            commits__ready(d, w, snapshot, lfs_files);
            return;
        }
        ferry_gitrows_drop_snapshot(d, w->commit.tree); /* gone from the store: built again */
    }
    commits__build *b = ferry_map_get(&d->commit_builds, w->commit.tree);
    if (b) { /* in order of arrival: their counters follow the requests */
        commits__wait **tail = &b->waits;
        while (*tail)
            tail = &(*tail)->next;
        *tail = w;
        return;
    }
    b = ferry_xcalloc(1, sizeof(*b));
    memcpy(b->tree, w->commit.tree, sizeof(b->tree));
    b->waits = w;
    if (ferry_git_build_snapshot(d, w->p, &w->commit, commits__built, b) < 0) {
        commits__fail_all(b, 503, NULL, "cannot build the snapshot of the commit now");
        return;
    }
    ferry_map_put(&d->commit_builds, b->tree, b);
}

static int commits__resolve_status(int rc)
{
    switch (rc) {
    case FERRY_ENOENT:
        return 404;
    case FERRY_EEXIST:
    case FERRY_EINVAL:
        return 400;
    case FERRY_EAUTH:
    case FERRY_ECONN:
        return 502;
    case FERRY_ECANCELED:
        return 503;
    default:
        return 500;
    }
}

static void commits__resolved(ferryd *d, int rc, const ferry_git_commit *c, const char *err,
                              void *arg)
{
    commits__wait *w = arg;
    if (rc < 0) {
        int status = commits__resolve_status(rc);
        commits__fail(w, status, status < 500 ? "commit" : NULL, err ? err : ferry_strerror(rc));
        return;
    }
    if (ferry_reply_gone(w->reply)) { /* the client went away */
        commits__wait_free(w);
        return;
    }
    ferry_git_commit_copy(&w->commit, c);
    commits__snapshot(d, w);
}

/* The project and the ref a creation names; 0 or FERRY_REPLIED. */
static int commits__fields(ferryd *d, ferry_reply *reply, const json_t *body,
                           const ferry_project **p, const char **ref)
{
    const char *name = json_string_value(json_object_get(body, "project"));
    *ref = json_string_value(json_object_get(body, "commit"));
    if (*ref == NULL || **ref == '\0' || strlen(*ref) > COMMITS__REF_MAX ||
        strpbrk(*ref, " \t\r\n~^:?*[\\") != NULL) {
        ferry_reply_error(reply, 400, "commit",
                          "'commit' must be a commit sha (4 to 40 hex digits), a branch or a tag");
        return FERRY_REPLIED;
    }
    *p = name ? ferry_git_project(d, name) : NULL;
    if (*p == NULL) {
        ferry_reply_error(reply, name ? 404 : 400, "project",
                          name ? "no project '%s' in ferryd's config: a commit runs only in a "
                                 "project linked to a repository"
                               : "'project' is required with 'commit'%s",
                          name ? name : "");
        return FERRY_REPLIED;
    }
    if ((*p)->repository == NULL) {
        ferry_reply_error(reply, 400, "project",
                          "project '%s' has no repository: it runs ad-hoc snapshots only",
                          (*p)->name);
        return FERRY_REPLIED;
    }
    if (json_object_get(body, "snapshot") || json_object_get(body, "based_on")) {
        ferry_reply_error(reply, 400, json_object_get(body, "snapshot") ? "snapshot" : "based_on",
                          "give 'commit' or 'snapshot' (with 'based_on'), not both");
        return FERRY_REPLIED;
    }
    return 0;
}

void ferry_commit_resolve(ferryd *d, const ferry_user *user, json_t *body, ferry_reply *reply,
                          ferry_commit_ready_fn ready)
{
    const ferry_project *p;
    const char *ref;
    if (commits__fields(d, reply, body, &p, &ref) < 0) {
        ferry_reply_release(reply);
        json_decref(body);
        return;
    }
    commits__wait *w = ferry_xcalloc(1, sizeof(*w));
    w->reply = reply;
    w->user = user;
    w->body = body;
    w->ready = ready;
    w->p = p;
    if (ferry_git_resolve(d, p, ref, commits__resolved, w) < 0)
        commits__fail(w, 503, NULL, "cannot resolve the commit now");
}

void ferry_commit_prepare(ferry_http_req *r, json_t *body, ferry_commit_ready_fn ready)
{
    ferry_commit_resolve(r->d, r->user, body, ferry_http_reply(r->d, r->req), ready);
}

void ferry_commits_close(ferryd *d)
{
    size_t it = 0;
    const char *k;
    void *v;
    while (ferry_map_next(&d->commit_builds, &it, &k, &v))
        commits__fail_all(v, 503, NULL, "ferryd is shutting down");
    ferry_map_free(&d->commit_builds);
}
