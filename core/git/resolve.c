/* A ref as a user writes it -> a commit of the mirror (pool thread). */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "git_int.h"
#include "util.h"

#define RESOLVE__MAX_LISTED 5

static int resolve__is_hex(const char *s)
{
    for (; *s; s++)
        if (!isxdigit((unsigned char)*s))
            return 0;
    return 1;
}

typedef struct resolve__prefix {
    git_odb *odb;
    char prefix[GIT_OID_HEXSZ + 1];
    size_t len;
    char found[RESOLVE__MAX_LISTED + 1][GIT_OID_HEXSZ + 1];
    size_t n; /* commits with the prefix, up to MAX_LISTED + 1 */
} resolve__prefix;

static int resolve__each(const git_oid *id, void *payload)
{
    resolve__prefix *x = payload;
    char hex[GIT_OID_HEXSZ + 1];
    git_oid_tostr(hex, sizeof(hex), id);
    if (strncmp(hex, x->prefix, x->len) != 0)
        return 0;
    size_t size;
    git_object_t type;
    if (git_odb_read_header(&size, &type, x->odb, id) < 0 || type != GIT_OBJECT_COMMIT)
        return 0;
    for (size_t i = 0; i < x->n; i++)
        if (strcmp(x->found[i], hex) == 0)
            return 0; /* the same object in a pack and loose */
    memcpy(x->found[x->n++], hex, sizeof(hex));
    return x->n > RESOLVE__MAX_LISTED ? GIT_EUSER : 0;
}

static int resolve__cmp(const void *a, const void *b)
{
    return strcmp(a, b);
}

/* The commit `ref` names, as a sha: 1 found (*out), 0 not, FERRY_EEXIST
 * ambiguous (err lists the candidates). */
static int resolve__sha(git__job *j, git_repository *repo, const char *ref, git_commit **out)
{
    size_t len = strlen(ref);
    if (len < 4 || len > GIT_OID_HEXSZ || !resolve__is_hex(ref))
        return 0;
    char lower[GIT_OID_HEXSZ + 1];
    for (size_t i = 0; i <= len; i++)
        lower[i] = (char)tolower((unsigned char)ref[i]);
    git_oid oid;
    if (git_oid_fromstrn(&oid, lower, len) < 0)
        return 0;
    if (len == GIT_OID_HEXSZ)
        return git_commit_lookup(out, repo, &oid) == 0;
    git_object *o = NULL;
    int rc = git_object_lookup_prefix(&o, repo, &oid, len, GIT_OBJECT_ANY);
    if (rc == 0) {
        if (git_object_type(o) == GIT_OBJECT_COMMIT) {
            *out = (git_commit *)o;
            return 1;
        }
        git_object_free(o);
        return 0; /* a tree or a blob: maybe a branch named so */
    }
    if (rc != GIT_EAMBIGUOUS)
        return 0;
    /* Several objects share it: the commits among them decide. */
    resolve__prefix x = {.len = len};
    memcpy(x.prefix, lower, len + 1);
    if (git_repository_odb(&x.odb, repo) < 0)
        return 0;
    git_odb_foreach(x.odb, resolve__each, &x);
    git_odb_free(x.odb);
    if (x.n == 0)
        return 0;
    if (x.n == 1) {
        git_oid_fromstr(&oid, x.found[0]);
        return git_commit_lookup(out, repo, &oid) == 0;
    }
    qsort(x.found, x.n > RESOLVE__MAX_LISTED ? RESOLVE__MAX_LISTED : x.n, sizeof(x.found[0]),
          resolve__cmp);
    int w = snprintf(j->err, sizeof(j->err), "project '%s': '%s' is ambiguous: ", j->p.name, ref);
    for (size_t i = 0; i < x.n && i < RESOLVE__MAX_LISTED && w > 0 && (size_t)w < sizeof(j->err);
         i++)
        w += snprintf(j->err + w, sizeof(j->err) - (size_t)w, "%s%.12s...", i ? ", " : "",
                      x.found[i]);
    if (x.n > RESOLVE__MAX_LISTED && w > 0 && (size_t)w < sizeof(j->err))
        snprintf(j->err + w, sizeof(j->err) - (size_t)w, ", and more");
    return FERRY_EEXIST;
}

static int resolve__named(git_repository *repo, const char *prefix, const char *ref,
                          git_commit **out)
{
    char name[1024];
    if (snprintf(name, sizeof(name), "%s%s", prefix, ref) >= (int)sizeof(name))
        return 0;
    git_reference *r = NULL;
    if (git_reference_lookup(&r, repo, name) < 0)
        return 0;
    git_object *o = NULL;
    int rc = git_reference_peel(&o, r, GIT_OBJECT_COMMIT);
    git_reference_free(r);
    if (rc < 0)
        return 0;
    *out = (git_commit *)o;
    return 1;
}

/* 1 found, 0 not, < 0 an error in j->err. */
static int resolve__in(git__job *j, git_repository *repo, git_commit **out)
{
    const char *ref = j->ref;
    int rc = resolve__sha(j, repo, ref, out);
    if (rc != 0)
        return rc;
    if (resolve__named(repo, "refs/heads/", ref, out) ||
        resolve__named(repo, "refs/tags/", ref, out))
        return 1;
    if (strncmp(ref, "refs/", 5) == 0 && resolve__named(repo, "", ref, out))
        return 1;
    return 0;
}

/* One look in the mirror: 1 found (j->commit filled), 0 not, < 0 error. */
static int resolve__look(git__job *j)
{
    git_repository *repo = NULL;
    if (git__mirror_open(j, j->mirror, &repo, j->err, sizeof(j->err)) < 0)
        return FERRY_EIO;
    git_commit *c = NULL;
    int found = resolve__in(j, repo, &c);
    if (found > 0) {
        git__commit_fill(&j->commit, c);
        j->commit.ref = ferry_strdup(j->ref);
    }
    git_commit_free(c);
    git_repository_free(repo);
    return found;
}

void git__run_resolve(git__job *j)
{
    struct stat st;
    int found = stat(j->mirror, &st) == 0 ? resolve__look(j) : 0;
    if (found == 0) {
        /* Not here: one fetch, and a second look. */
        git__run_fetch(j);
        if (j->result) {
            json_decref(j->result);
            j->result = NULL;
        }
        if (j->rc < 0)
            return;
        found = resolve__look(j);
    }
    if (found < 0) {
        j->rc = found;
    } else if (found == 0) {
        char pub[2048];
        snprintf(j->err, sizeof(j->err), "project '%s': no commit, branch or tag '%s' in %s",
                 j->p.name, j->ref, ferry_git_public_url(j->p.repository, pub, sizeof(pub)));
        j->rc = FERRY_ENOENT;
    } else {
        j->rc = 0;
    }
}
