/* Projects and their mirrors (git.h): the per-daemon state, the queue of
 * each project's jobs on the thread pool, and what is shown of a project. */
#include "git.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "git_int.h"
#include "lsan_libgit2.h" /* once per program: ferryd's */
#include "gitrows.h"
#include "log.h"
#include "util.h"

const ferry_project *ferry_git_project(const ferryd *d, const char *name)
{
    for (size_t i = 0; i < d->cfg.n_projects; i++)
        if (strcmp(d->cfg.projects[i].name, name) == 0)
            return &d->cfg.projects[i];
    return NULL;
}

int ferry_git_init(ferryd *d, char *err, size_t cap)
{
    if (git_libgit2_init() < 0) {
        snprintf(err, cap, "libgit2 could not start");
        return FERRY_EIO;
    }
    /* Mirrors are ferryd's own; the repositories of file:// URLs (tests)
     * may belong to another user. */
    git_libgit2_opts(GIT_OPT_SET_OWNER_VALIDATION, 0);
    if (git__stream_init(d->cfg.git_timeout) < 0) {
        snprintf(err, cap, "libgit2 took no socket stream: %s",
                 git_error_last() ? git_error_last()->message : "");
        git_libgit2_shutdown();
        return FERRY_EIO;
    }
    struct ferry_git *g = ferry_xcalloc(1, sizeof(*g));
    snprintf(g->root, sizeof(g->root), "%s/git", d->data_dir);
    g->started = ferry_now();
    atomic_init(&g->cancel, 0);
    char tmp[PATH_MAX]; /* where snapshots are built (ferryd makes it too) */
    snprintf(tmp, sizeof(tmp), "%s/tmp", d->data_dir);
    int rc = ferry_file_mkdirs(g->root, 0700);
    if (rc == 0)
        rc = ferry_file_mkdirs(tmp, 0700);
    if (rc < 0) {
        snprintf(err, cap, "cannot make %s or %s: %s", g->root, tmp, strerror(errno));
        free(g);
        git_libgit2_shutdown();
        return rc;
    }
    d->git = g;
    return 0;
}

void ferry_git_close(ferryd *d)
{
    struct ferry_git *g = d->git;
    if (g == NULL)
        return;
    /* Running jobs see the flag (a fetch's progress, a build's walk) and
     * stop; queued ones are cancelled. Each job's after_work still runs
     * and answers its caller (FERRY_ECANCELED): nothing a job uses is
     * freed before. */
    atomic_store(&g->cancel, 1);
    git__stream_cancel_all(); /* a fetch waiting on a silent server gives up now */
    for (size_t i = 0; i < g->n_queues; i++) {
        git__queue *q = &g->queues[i];
        for (git__job *j = q->busy && q->head ? q->head->next : q->head; j; j = j->next)
            j->rc = FERRY_ECANCELED; /* the running one's is its thread's */
    }
    while (g->inflight > 0)
        uv_run(d->loop, UV_RUN_ONCE);
    for (size_t i = 0; i < g->n_queues; i++)
        free(g->queues[i].name);
    free(g->queues);
    free(g);
    d->git = NULL;
    git_libgit2_shutdown();
}

const char *ferry_git_public_url(const char *url, char *out, size_t cap)
{
    if (cap == 0)
        return out;
    if (url == NULL) {
        out[0] = '\0';
        return out;
    }
    const char *scheme = strstr(url, "://");
    if (scheme == NULL) { /* scp-like user@host:path: the user is no secret */
        snprintf(out, cap, "%s", url);
        return out;
    }
    const char *host = scheme + 3;
    size_t hostlen = strcspn(host, "/?#");
    const char *at = NULL;
    for (const char *c = host; c < host + hostlen; c++)
        if (*c == '@')
            at = c; /* the last '@' ends the userinfo */
    if (at == NULL) {
        snprintf(out, cap, "%s", url);
        return out;
    }
    /* ssh://git@host keeps its user (no password); every other userinfo
     * (a token as the user, user:password) goes. */
    int keep_user =
        strncmp(url, "ssh://", 6) == 0 && memchr(host, ':', (size_t)(at - host)) == NULL;
    if (keep_user)
        snprintf(out, cap, "%s", url);
    else
        snprintf(out, cap, "%.*s%s", (int)(host - url), url, at + 1);
    return out;
}

json_t *ferry_git_project_json(ferryd *d, const ferry_project *p)
{
    json_t *j = json_object();
    json_object_set_new(j, "name", json_string(p->name));
    char pub[2048];
    json_object_set_new(j, "repository",
                        p->repository
                            ? json_string(ferry_git_public_url(p->repository, pub, sizeof(pub)))
                            : json_null());
    json_object_set_new(j, "default_ref", json_string(p->default_ref ? p->default_ref : "main"));
    json_object_set_new(j, "submodules", json_boolean(p->submodules));
    double at = 0;
    char *error = NULL;
    if (ferry_gitrows_fetch(d, p->name, &at, &error) == 0 && at > 0) {
        char buf[40];
        json_object_set_new(j, "fetched_at", json_string(ferry_time_format(at, buf, sizeof(buf))));
    } else {
        json_object_set_new(j, "fetched_at", json_null());
    }
    json_object_set_new(j, "last_fetch_error", error ? json_string(error) : json_null());
    free(error);
    return j;
}

void ferry_git_commit_copy(ferry_git_commit *dst, const ferry_git_commit *src)
{
    memcpy(dst->sha, src->sha, sizeof(dst->sha));
    memcpy(dst->tree, src->tree, sizeof(dst->tree));
    dst->ref = src->ref ? ferry_strdup(src->ref) : NULL;
    dst->message = src->message ? ferry_strdup(src->message) : NULL;
    dst->author = src->author ? ferry_strdup(src->author) : NULL;
    dst->date = src->date;
}

void ferry_git_commit_clear(ferry_git_commit *c)
{
    free(c->ref);
    free(c->message);
    free(c->author);
    memset(c, 0, sizeof(*c));
}

void git__commit_fill(ferry_git_commit *out, git_commit *c)
{
    git_oid_tostr(out->sha, sizeof(out->sha), git_commit_id(c));
    git_oid_tostr(out->tree, sizeof(out->tree), git_commit_tree_id(c));
    const char *msg = git_commit_message(c);
    msg = msg ? msg : "";
    size_t n = strcspn(msg, "\r\n");
    free(out->message);
    out->message = ferry_xmalloc(n + 1);
    memcpy(out->message, msg, n);
    out->message[n] = '\0';
    const git_signature *a = git_commit_author(c);
    free(out->author);
    out->author =
        ferry_asprintf("%s <%s>", a && a->name ? a->name : "", a && a->email ? a->email : "");
    out->date = (int64_t)git_commit_time(c);
}

/* "user:password@" of `url` (what must never be shown), or NULL. */
static int git__userinfo(const char *url, const char **start, size_t *len)
{
    const char *scheme = url ? strstr(url, "://") : NULL;
    if (scheme == NULL)
        return 0;
    const char *host = scheme + 3;
    size_t hostlen = strcspn(host, "/?#");
    const char *at = NULL;
    for (const char *c = host; c < host + hostlen; c++)
        if (*c == '@')
            at = c;
    if (at == NULL)
        return 0;
    *start = host;
    *len = (size_t)(at + 1 - host);
    return 1;
}

void git__error_text(const char *url, char *out, size_t cap)
{
    const git_error *e = git_error_last();
    snprintf(out, cap, "%s", e && e->message && e->message[0] ? e->message : "unknown error");
    size_t n = strlen(out);
    while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == '.' || out[n - 1] == ' '))
        out[--n] = '\0';
    const char *ui;
    size_t uilen;
    if (!git__userinfo(url, &ui, &uilen))
        return;
    /* libgit2 may repeat the URL it was given: cut every userinfo out. */
    char *hit;
    char needle[512];
    if (uilen < sizeof(needle)) {
        memcpy(needle, ui, uilen);
        needle[uilen] = '\0';
        while ((hit = strstr(out, needle)) != NULL)
            memmove(hit, hit + uilen, strlen(hit + uilen) + 1);
    }
    /* And any bare occurrence of the password itself. */
    const char *colon = memchr(ui, ':', uilen);
    if (colon) {
        size_t pwlen = (size_t)(ui + uilen - 1 - (colon + 1));
        char pw[512];
        if (pwlen > 0 && pwlen < sizeof(pw)) {
            memcpy(pw, colon + 1, pwlen);
            pw[pwlen] = '\0';
            while ((hit = strstr(out, pw)) != NULL) {
                memmove(hit + 3, hit + pwlen, strlen(hit + pwlen) + 1);
                memcpy(hit, "***", 3);
            }
        }
    }
}

/* --- the queues --- */

static void git__project_copy(ferry_project *dst, const ferry_project *src)
{
    char **d[] = {&dst->name,     &dst->repository,      &dst->default_ref,
                  &dst->ssh_key,  &dst->ssh_known_hosts, &dst->token_file,
                  &dst->username, &dst->password_file,   &dst->ca_file};
    char *const s[] = {src->name,     src->repository,      src->default_ref,
                       src->ssh_key,  src->ssh_known_hosts, src->token_file,
                       src->username, src->password_file,   src->ca_file};
    for (size_t i = 0; i < sizeof(d) / sizeof(d[0]); i++)
        *d[i] = s[i] ? ferry_strdup(s[i]) : NULL;
    dst->submodules = src->submodules;
    dst->line = src->line;
    if (dst->default_ref == NULL)
        dst->default_ref = ferry_strdup("main");
}

static void git__project_free(ferry_project *p)
{
    char *f[] = {p->name,       p->repository, p->default_ref,   p->ssh_key, p->ssh_known_hosts,
                 p->token_file, p->username,   p->password_file, p->ca_file};
    for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++)
        free(f[i]);
    memset(p, 0, sizeof(*p));
}

static git__queue *git__queue_of(struct ferry_git *g, const char *name)
{
    for (size_t i = 0; i < g->n_queues; i++)
        if (strcmp(g->queues[i].name, name) == 0)
            return &g->queues[i];
    /* Queues are found by index from jobs: grow only when none is busy... */
    g->queues = ferry_xrealloc(g->queues, (g->n_queues + 1) * sizeof(*g->queues));
    git__queue *q = &g->queues[g->n_queues++];
    memset(q, 0, sizeof(*q));
    q->name = ferry_strdup(name);
    /* The realloc moved the queues: jobs point at theirs, so fix them. */
    for (size_t i = 0; i < g->n_queues; i++)
        for (git__job *j = g->queues[i].head; j; j = j->next)
            j->q = &g->queues[i];
    return q;
}

static void git__work(uv_work_t *req)
{
    git__job *j = req->data;
    if (j->rc != 0)
        return; /* cancelled before it ran */
    switch (j->kind) {
    case GIT__FETCH:
        git__run_fetch(j);
        break;
    case GIT__RESOLVE:
        git__run_resolve(j);
        break;
    case GIT__BUILD:
        git__run_build(j);
        break;
    }
}

static void git__job_free(git__job *j)
{
    git__project_free(&j->p);
    free(j->ref);
    ferry_git_commit_clear(&j->commit);
    if (j->result)
        json_decref(j->result);
    if (j->kind == GIT__BUILD && j->rc != 0 && j->tar_path[0])
        unlink(j->tar_path); /* built, it is the caller's */
    free(j->stepfile);
    free(j);
}

static void git__start_next(struct ferry_git *g, git__queue *q);

static void git__answer(git__job *j)
{
    ferryd *d = j->d;
    if (j->fetched && j->rc != FERRY_ECANCELED && d->db)
        ferry_gitrows_put_fetch(d, j->p.name, j->fetched_at, j->fetch_rc < 0 ? j->fetch_err : NULL);
    if (j->fetched && j->fetch_rc < 0)
        ferry_warn("git: %s", j->fetch_err);
    if (j->rc == FERRY_ECANCELED && j->err[0] == '\0')
        snprintf(j->err, sizeof(j->err), "project '%s': ferryd is stopping", j->p.name);
    switch (j->kind) {
    case GIT__FETCH: {
        ferry_git_fetched_fn cb = (ferry_git_fetched_fn)j->cb;
        cb(d, j->rc, j->rc == 0 ? j->result : NULL, j->rc == 0 ? NULL : j->err, j->arg);
        break;
    }
    case GIT__RESOLVE: {
        ferry_git_resolved_fn cb = (ferry_git_resolved_fn)j->cb;
        cb(d, j->rc, j->rc == 0 ? &j->commit : NULL, j->rc == 0 ? NULL : j->err, j->arg);
        break;
    }
    case GIT__BUILD: {
        ferry_git_built_fn cb = (ferry_git_built_fn)j->cb;
        if (j->rc == 0 && j->lfs_files > 0)
            ferry_info("git: commit %.7s of project '%s' holds %lld Git LFS pointer files, "
                       "left as they are",
                       j->commit.sha, j->p.name, (long long)j->lfs_files);
        ferry_git_snapshot snap = {.sha256 = j->sha256,
                                   .path = j->tar_path,
                                   .len = (size_t)j->tar_len,
                                   .lfs_files = j->lfs_files,
                                   .stepfile_name = j->stepfile_link ? NULL : j->stepfile_name,
                                   .stepfile = j->stepfile,
                                   .stepfile_len = j->stepfile_len};
        if (snap.stepfile_name == NULL) {
            snap.stepfile = NULL;
            snap.stepfile_len = 0;
        }
        cb(d, j->rc, j->rc == 0 ? &snap : NULL, j->rc == 0 ? NULL : j->err, j->arg);
        break;
    }
    }
}

/* Job `j`, at the head of its queue, is done (or never started): it leaves
 * the queue, its caller is answered, and the next job of the project runs. */
static void git__finish(struct ferry_git *g, git__job *j)
{
    git__queue *q = j->q;
    q->busy = 0;
    q->head = j->next;
    if (q->head == NULL)
        q->tail = NULL;
    g->inflight--;
    git__answer(j);
    git__job_free(j);
    git__start_next(g, q);
}

static void git__after(uv_work_t *req, int status)
{
    git__job *j = req->data;
    struct ferry_git *g = j->g;
    if (status == UV_ECANCELED)
        j->rc = FERRY_ECANCELED;
    git__finish(g, j);
}

static void git__start_next(struct ferry_git *g, git__queue *q)
{
    if (q->busy || q->head == NULL)
        return;
    git__job *j = q->head;
    q->busy = 1;
    j->req.data = j;
    if (atomic_load(&g->cancel))
        j->rc = FERRY_ECANCELED;
    if (uv_queue_work(j->d->loop, &j->req, git__work, git__after) != 0) {
        j->rc = FERRY_EIO;
        snprintf(j->err, sizeof(j->err), "project '%s': cannot queue the work", j->p.name);
        git__finish(g, j);
    }
}

static git__job *git__job_new(ferryd *d, const ferry_project *p, git__kind kind, void *cb,
                              void *arg)
{
    struct ferry_git *g = d->git;
    git__job *j = ferry_xcalloc(1, sizeof(*j));
    j->d = d;
    j->g = g;
    j->kind = kind;
    git__project_copy(&j->p, p);
    snprintf(j->root, sizeof(j->root), "%s", g->root);
    snprintf(j->mirror, sizeof(j->mirror), "%s/%s.git", g->root, p->name);
    j->started = g->started;
    j->max_bytes = (int64_t)d->cfg.max_snapshot_mb << 20;
    j->cb = cb;
    j->arg = arg;
    return j;
}

static void git__submit(ferryd *d, git__job *j)
{
    struct ferry_git *g = d->git;
    git__queue *q = git__queue_of(g, j->p.name);
    j->q = q;
    if (q->tail)
        q->tail->next = j;
    else
        q->head = j;
    q->tail = j;
    g->inflight++;
    git__start_next(g, q);
}

int ferry_git_fetch(ferryd *d, const ferry_project *p, ferry_git_fetched_fn cb, void *arg)
{
    if (p->repository == NULL)
        return FERRY_ENOTSUP;
    if (d->git == NULL)
        return FERRY_ESTATE;
    git__submit(d, git__job_new(d, p, GIT__FETCH, (void *)cb, arg));
    return 0;
}

int ferry_git_resolve(ferryd *d, const ferry_project *p, const char *ref, ferry_git_resolved_fn cb,
                      void *arg)
{
    if (p->repository == NULL)
        return FERRY_ENOTSUP;
    if (d->git == NULL)
        return FERRY_ESTATE;
    git__job *j = git__job_new(d, p, GIT__RESOLVE, (void *)cb, arg);
    j->ref = ferry_strdup(ref ? ref : j->p.default_ref);
    git__submit(d, j);
    return 0;
}

int ferry_git_build_snapshot(ferryd *d, const ferry_project *p, const ferry_git_commit *c,
                             ferry_git_built_fn cb, void *arg)
{
    if (p->repository == NULL)
        return FERRY_ENOTSUP;
    if (d->git == NULL)
        return FERRY_ESTATE;
    git__job *j = git__job_new(d, p, GIT__BUILD, (void *)cb, arg);
    snprintf(j->tar_path, sizeof(j->tar_path), "%s/tmp/git-snapshot.XXXXXX", d->data_dir);
    ferry_git_commit_copy(&j->commit, c);
    git__submit(d, j);
    return 0;
}
