/* The bare mirror of a project and its fetch (pool thread). */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "git_int.h"
#include "util.h"

/* Lock files left by a ferryd that was killed mid-fetch: the folder is
 * this ferryd's alone, so a lock older than its start is nobody's. */
static void mirror__remove_stale_locks(const char *dir, double started, int depth)
{
    DIR *dh = opendir(dir);
    if (dh == NULL)
        return;
    struct dirent *de;
    while ((de = readdir(dh)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (depth == 0 && strcmp(de->d_name, "objects") == 0)
            continue; /* packs are written under temporary names, then renamed */
        char path[PATH_MAX];
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        struct stat st;
        if (lstat(path, &st) != 0)
            continue;
        if (S_ISDIR(st.st_mode)) {
            if (depth < 16)
                mirror__remove_stale_locks(path, started, depth + 1);
            continue;
        }
        size_t n = strlen(de->d_name);
        if (n > 5 && strcmp(de->d_name + n - 5, ".lock") == 0 && (double)st.st_mtime < started)
            unlink(path);
    }
    closedir(dh);
}

static int mirror__looks_whole(const char *path)
{
    char f[PATH_MAX + 16];
    struct stat st;
    snprintf(f, sizeof(f), "%s/HEAD", path);
    if (stat(f, &st) != 0 || st.st_size == 0)
        return 0;
    snprintf(f, sizeof(f), "%s/config", path);
    if (stat(f, &st) != 0 || st.st_size == 0)
        return 0;
    snprintf(f, sizeof(f), "%s/objects", path);
    return stat(f, &st) == 0 && S_ISDIR(st.st_mode);
}

int git__mirror_open(const git__job *j, const char *path, git_repository **out, char *err,
                     size_t cap)
{
    *out = NULL;
    struct stat st;
    if (stat(path, &st) == 0) {
        mirror__remove_stale_locks(path, j->started, 0);
        if (mirror__looks_whole(path) && git_repository_open_bare(out, path) == 0)
            return 0;
        /* Broken (a kill -9 while it was made): everything in it can be
         * fetched again. */
        ferry_rmtree(path);
    }
    char parent[PATH_MAX];
    snprintf(parent, sizeof(parent), "%s", path);
    char *slash = strrchr(parent, '/');
    if (slash) {
        *slash = '\0';
        ferry_file_mkdirs(parent, 0700);
    }
    /* Made aside and renamed, so that a half-made mirror is never seen. */
    char tmp[PATH_MAX + 16];
    snprintf(tmp, sizeof(tmp), "%s.new", path);
    ferry_rmtree(tmp);
    git_repository *r = NULL;
    if (git_repository_init(&r, tmp, 1) < 0) {
        char why[512];
        git__error_text(NULL, why, sizeof(why));
        snprintf(err, cap, "project '%s': cannot make the mirror %s: %s", j->p.name, path, why);
        return FERRY_EIO;
    }
    git_repository_free(r);
    if (rename(tmp, path) != 0) {
        snprintf(err, cap, "project '%s': cannot make the mirror %s: %s", j->p.name, path,
                 strerror(errno));
        ferry_rmtree(tmp);
        return FERRY_EIO;
    }
    if (git_repository_open_bare(out, path) < 0) {
        char why[512];
        git__error_text(NULL, why, sizeof(why));
        snprintf(err, cap, "project '%s': cannot open the mirror %s: %s", j->p.name, path, why);
        return FERRY_EIO;
    }
    return 0;
}

/* The branches and tags of a repository: name -> target. */
typedef struct mirror__refs {
    char **names;
    git_oid *oids;
    size_t n, cap;
} mirror__refs;

static void mirror__refs_load(git_repository *repo, mirror__refs *r)
{
    memset(r, 0, sizeof(*r));
    git_reference_iterator *it = NULL;
    if (git_reference_iterator_glob_new(&it, repo, "refs/*") < 0)
        return;
    git_reference *ref;
    while (git_reference_next(&ref, it) == 0) {
        const char *name = git_reference_name(ref);
        const git_oid *oid = git_reference_target(ref);
        if (oid &&
            (strncmp(name, "refs/heads/", 11) == 0 || strncmp(name, "refs/tags/", 10) == 0)) {
            if (r->n == r->cap) {
                r->cap = r->cap ? r->cap * 2 : 16;
                r->names = ferry_xrealloc(r->names, r->cap * sizeof(*r->names));
                r->oids = ferry_xrealloc(r->oids, r->cap * sizeof(*r->oids));
            }
            r->names[r->n] = ferry_strdup(name);
            git_oid_cpy(&r->oids[r->n], oid);
            r->n++;
        }
        git_reference_free(ref);
    }
    git_reference_iterator_free(it);
}

static void mirror__refs_free(mirror__refs *r)
{
    for (size_t i = 0; i < r->n; i++)
        free(r->names[i]);
    free(r->names);
    free(r->oids);
}

static const git_oid *mirror__refs_get(const mirror__refs *r, const char *name)
{
    for (size_t i = 0; i < r->n; i++)
        if (strcmp(r->names[i], name) == 0)
            return &r->oids[i];
    return NULL;
}

/* A ref's commit as shown (an annotated tag peeled), full hex, or null. */
static json_t *mirror__sha_json(git_repository *repo, const git_oid *oid)
{
    if (oid == NULL)
        return json_null();
    git_object *o = NULL, *peeled = NULL;
    char hex[GIT_OID_HEXSZ + 1];
    git_oid_tostr(hex, sizeof(hex), oid);
    if (git_object_lookup(&o, repo, oid, GIT_OBJECT_ANY) == 0 &&
        git_object_peel(&peeled, o, GIT_OBJECT_COMMIT) == 0)
        git_oid_tostr(hex, sizeof(hex), git_object_id(peeled));
    git_object_free(peeled);
    git_object_free(o);
    return json_string(hex);
}

static const char *mirror__short(const char *name)
{
    return strncmp(name, "refs/heads/", 11) == 0  ? name + 11
           : strncmp(name, "refs/tags/", 10) == 0 ? name + 10
                                                  : name;
}

static void mirror__change(json_t *changes, git_repository *repo, const char *name,
                           const git_oid *old, const git_oid *new)
{
    json_t *c = json_object();
    json_object_set_new(c, "ref", json_string(mirror__short(name)));
    json_object_set_new(c, "old", mirror__sha_json(repo, old));
    json_object_set_new(c, "new", mirror__sha_json(repo, new));
    json_array_append_new(changes, c);
}

int git__fetch_repo(const git__job *j, git_repository *repo, const char *url, json_t **changes,
                    char *err, size_t cap)
{
    char pub[2048];
    ferry_git_public_url(url, pub, sizeof(pub));
    mirror__refs before;
    if (changes)
        mirror__refs_load(repo, &before);
    git_remote *remote = NULL;
    git__remote_ctx ctx = {.p = &j->p, .url = url, .cancel = &j->g->cancel};
    int rc = git_remote_create_anonymous(&remote, repo, url);
    if (rc == 0) {
        git_fetch_options fo;
        git_fetch_options_init(&fo, GIT_FETCH_OPTIONS_VERSION);
        git__remote_callbacks(&fo.callbacks, &ctx);
        fo.prune = GIT_FETCH_PRUNE;
        fo.update_fetchhead = 0;
        fo.download_tags = GIT_REMOTE_DOWNLOAD_TAGS_NONE;
        char *specs[] = {"+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"};
        git_strarray refspecs = {specs, 2};
        rc = git_remote_fetch(remote, &refspecs, &fo, NULL);
    }
    if (rc < 0) {
        char why[1024];
        git__error_text(url, why, sizeof(why));
        git_remote_free(remote);
        if (changes)
            mirror__refs_free(&before);
        if (atomic_load(&j->g->cancel)) {
            snprintf(err, cap, "project '%s': fetch of %s stopped: ferryd is stopping", j->p.name,
                     pub);
            return FERRY_ECANCELED;
        }
        if (ctx.auth_failed || rc == GIT_EAUTH) {
            snprintf(err, cap, "project '%s': authentication failed at %s", j->p.name, pub);
            return FERRY_EAUTH;
        }
        snprintf(err, cap, "project '%s': cannot fetch %s: %s", j->p.name, pub,
                 ctx.cert_err[0] ? ctx.cert_err : why);
        return FERRY_ECONN;
    }
    /* The prune of an anonymous remote: what the server no longer lists. */
    const git_remote_head **heads = NULL;
    size_t n_heads = 0;
    if (git_remote_ls(&heads, &n_heads, remote) == 0) {
        mirror__refs now;
        mirror__refs_load(repo, &now);
        for (size_t i = 0; i < now.n; i++) {
            int listed = 0;
            for (size_t k = 0; !listed && k < n_heads; k++)
                listed = strcmp(heads[k]->name, now.names[i]) == 0;
            if (!listed) {
                git_reference *ref = NULL;
                if (git_reference_lookup(&ref, repo, now.names[i]) == 0)
                    git_reference_delete(ref);
                git_reference_free(ref);
            }
        }
        mirror__refs_free(&now);
    }
    git_remote_free(remote);
    if (changes) {
        mirror__refs after;
        mirror__refs_load(repo, &after);
        json_t *list = json_array();
        for (size_t i = 0; i < after.n; i++) {
            const git_oid *old = mirror__refs_get(&before, after.names[i]);
            if (old == NULL || !git_oid_equal(old, &after.oids[i]))
                mirror__change(list, repo, after.names[i], old, &after.oids[i]);
        }
        for (size_t i = 0; i < before.n; i++)
            if (mirror__refs_get(&after, before.names[i]) == NULL)
                mirror__change(list, repo, before.names[i], &before.oids[i], NULL);
        mirror__refs_free(&after);
        mirror__refs_free(&before);
        *changes = list;
    }
    /* HEAD of the mirror names the default branch when there is one, so
     * that tools looking at the folder see something sensible. */
    char head[300];
    snprintf(head, sizeof(head), "refs/heads/%s", j->p.default_ref);
    git_reference *h = NULL;
    if (git_reference_lookup(&h, repo, head) == 0)
        git_repository_set_head(repo, head);
    git_reference_free(h);
    return 0;
}

void git__run_fetch(git__job *j)
{
    git_repository *repo = NULL;
    json_t *changes = NULL;
    int rc = git__mirror_open(j, j->mirror, &repo, j->err, sizeof(j->err));
    if (rc == 0)
        rc = git__fetch_repo(j, repo, j->p.repository, &changes, j->err, sizeof(j->err));
    git_repository_free(repo);
    j->fetched = rc != FERRY_ECANCELED;
    j->fetched_at = ferry_now();
    j->fetch_rc = rc;
    snprintf(j->fetch_err, sizeof(j->fetch_err), "%s", rc < 0 ? j->err : "");
    j->rc = rc;
    if (rc == 0) {
        j->result = json_object();
        json_object_set_new(j->result, "project", json_string(j->p.name));
        json_object_set_new(j->result, "changes", changes ? changes : json_array());
        json_object_set_new(j->result, "errors", json_array());
    } else if (changes) {
        json_decref(changes);
    }
}
