/* The git working copy `ferry run` starts from, read with libgit2: HEAD,
 * the remotes, what changed since HEAD, and files of a commit (the step
 * file ferryd will read). Nothing here touches the network. */
#include "worktree.h"

#include "lsan_libgit2.h" /* once per program: the CLI's (and test_worktree's) */
#include "util.h"

#include <ctype.h>
#include <git2.h>
#include <stdlib.h>
#include <string.h>

struct ferry_worktree {
    git_repository *repo;
    char head[GIT_OID_HEXSZ + 1]; /* "" while HEAD is unborn */
    char **remotes;
    size_t n_remotes;
};

static void ferry__read_remotes(ferry_worktree *wt)
{
    git_strarray names = {NULL, 0};
    if (git_remote_list(&names, wt->repo) != 0)
        return;
    wt->remotes = ferry_xmalloc((names.count + 1) * sizeof(*wt->remotes));
    for (size_t i = 0; i < names.count; i++) {
        git_remote *remote = NULL;
        if (git_remote_lookup(&remote, wt->repo, names.strings[i]) != 0)
            continue;
        const char *url = git_remote_url(remote);
        if (url != NULL && url[0] != '\0')
            wt->remotes[wt->n_remotes++] = ferry_strdup(url);
        git_remote_free(remote);
    }
    git_strarray_dispose(&names);
}

int ferry_worktree_open(const char *dir, ferry_worktree **out)
{
    *out = NULL;
    /* Reference-counted by libgit2: one init per open working copy. */
    git_libgit2_init();
    git_repository *repo = NULL;
    int err = git_repository_open_ext(&repo, dir, 0, NULL);
    if (err != 0 || git_repository_is_bare(repo)) {
        git_repository_free(repo);
        git_libgit2_shutdown();
        return err == 0 || err == GIT_ENOTFOUND ? FERRY_ENOENT : FERRY_EIO;
    }
    ferry_worktree *wt = ferry_xmalloc(sizeof(*wt));
    memset(wt, 0, sizeof(*wt));
    wt->repo = repo;
    git_oid oid;
    if (git_reference_name_to_id(&oid, repo, "HEAD") == 0)
        git_oid_tostr(wt->head, sizeof(wt->head), &oid);
    ferry__read_remotes(wt);
    *out = wt;
    return 0;
}

void ferry_worktree_free(ferry_worktree *wt)
{
    if (wt == NULL)
        return;
    for (size_t i = 0; i < wt->n_remotes; i++)
        free(wt->remotes[i]);
    free(wt->remotes);
    git_repository_free(wt->repo);
    free(wt);
    git_libgit2_shutdown();
}

const char *ferry_worktree_head(const ferry_worktree *wt)
{
    return wt->head[0] != '\0' ? wt->head : NULL;
}

size_t ferry_worktree_n_remotes(const ferry_worktree *wt)
{
    return wt->n_remotes;
}

const char *ferry_worktree_remote(const ferry_worktree *wt, size_t i)
{
    return i < wt->n_remotes ? wt->remotes[i] : NULL;
}

int ferry_worktree_changed(ferry_worktree *wt)
{
    git_status_options opts;
    git_status_options_init(&opts, GIT_STATUS_OPTIONS_VERSION);
    opts.show = GIT_STATUS_SHOW_INDEX_AND_WORKDIR;
    /* Files, not folders: an untracked folder of three files is three. A
     * submodule's own changes are not files of this commit. */
    opts.flags = GIT_STATUS_OPT_INCLUDE_UNTRACKED | GIT_STATUS_OPT_RECURSE_UNTRACKED_DIRS |
                 GIT_STATUS_OPT_EXCLUDE_SUBMODULES;
    git_status_list *list = NULL;
    if (git_status_list_new(&list, wt->repo, &opts) != 0)
        return FERRY_EIO;
    int n = 0;
    size_t count = git_status_list_entrycount(list);
    for (size_t i = 0; i < count; i++) {
        const git_status_entry *e = git_status_byindex(list, i);
        if (e->status != GIT_STATUS_CURRENT && !(e->status & GIT_STATUS_IGNORED))
            n++;
    }
    git_status_list_free(list);
    return n;
}

static int ferry__is_hex_prefix(const char *s)
{
    size_t n = strlen(s);
    if (n < GIT_OID_MINPREFIXLEN || n > GIT_OID_HEXSZ)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isxdigit((unsigned char)s[i]))
            return 0;
    return 1;
}

/* OBJ peeled to its commit, its sha into sha. */
static int ferry__commit_sha(git_object *obj, char sha[41])
{
    git_object *commit = NULL;
    if (git_object_peel(&commit, obj, GIT_OBJECT_COMMIT) != 0)
        return FERRY_ENOENT;
    git_oid_tostr(sha, GIT_OID_HEXSZ + 1, git_object_id(commit));
    git_object_free(commit);
    return 0;
}

int ferry_worktree_find_commit(ferry_worktree *wt, const char *ref, char sha[41])
{
    git_object *obj = NULL;
    int rc = FERRY_ENOENT;
    if (ferry__is_hex_prefix(ref)) {
        git_oid oid;
        size_t n = strlen(ref);
        if (git_oid_fromstrn(&oid, ref, n) == 0 &&
            git_object_lookup_prefix(&obj, wt->repo, &oid, n, GIT_OBJECT_ANY) == 0)
            rc = ferry__commit_sha(obj, sha);
        git_object_free(obj);
        if (rc == 0)
            return rc;
        obj = NULL;
    }
    char *name = ferry_asprintf("refs/tags/%s", ref);
    if (git_revparse_single(&obj, wt->repo, name) == 0)
        rc = ferry__commit_sha(obj, sha);
    git_object_free(obj);
    free(name);
    return rc;
}

int ferry_worktree_read_file(ferry_worktree *wt, const char *sha, const char *name, char **buf,
                             size_t *len)
{
    *buf = NULL;
    *len = 0;
    git_oid oid;
    git_commit *commit = NULL;
    git_tree *tree = NULL;
    if (git_oid_fromstr(&oid, sha) != 0 || git_commit_lookup(&commit, wt->repo, &oid) != 0)
        return FERRY_EINVAL;
    int rc = FERRY_EIO;
    if (git_commit_tree(&tree, commit) == 0) {
        const git_tree_entry *entry = git_tree_entry_byname(tree, name);
        git_blob *blob = NULL;
        rc = FERRY_ENOENT;
        if (entry != NULL && git_tree_entry_type(entry) == GIT_OBJECT_BLOB &&
            git_tree_entry_filemode(entry) != GIT_FILEMODE_LINK &&
            git_blob_lookup(&blob, wt->repo, git_tree_entry_id(entry)) == 0) {
            size_t n = (size_t)git_blob_rawsize(blob);
            *buf = ferry_xmalloc(n + 1);
            memcpy(*buf, git_blob_rawcontent(blob), n);
            (*buf)[n] = '\0';
            *len = n;
            rc = 0;
        }
        git_blob_free(blob);
    }
    git_tree_free(tree);
    git_commit_free(commit);
    return rc;
}

/* ---- URLs ---- */

static const char *ferry__default_port(const char *scheme)
{
    static const char *const ports[][2] = {
        {"http", "80"}, {"https", "443"}, {"ssh", "22"}, {"git", "9418"}};
    for (size_t i = 0; i < sizeof(ports) / sizeof(ports[0]); i++)
        if (strcmp(scheme, ports[i][0]) == 0)
            return ports[i][1];
    return NULL;
}

/* "scheme://" at the start of url: its length before "://", else 0. */
static size_t ferry__scheme_len(const char *url)
{
    size_t n = 0;
    while (isalnum((unsigned char)url[n]) || url[n] == '+' || url[n] == '-' || url[n] == '.')
        n++;
    return n > 0 && strncmp(url + n, "://", 3) == 0 ? n : 0;
}

/* scp-like "[user@]host:path": a ':' before any '/'. */
static const char *ferry__scp_colon(const char *url)
{
    const char *colon = strchr(url, ':');
    const char *slash = strchr(url, '/');
    if (colon == NULL || colon == url || (slash != NULL && slash < colon))
        return NULL;
    return colon;
}

/* "[user[:password]@]host[:port]" of length n: host lowercased, the port
 * unless it is the scheme's default. */
static char *ferry__authority(const char *scheme, const char *auth, size_t n)
{
    const char *at = NULL;
    for (size_t i = 0; i < n; i++)
        if (auth[i] == '@')
            at = auth + i;
    if (at != NULL) {
        n -= (size_t)(at + 1 - auth);
        auth = at + 1;
    }
    size_t host_n = n;
    /* An IPv6 address "[::1]" holds colons of its own. */
    const char *from = auth[0] == '[' ? memchr(auth, ']', n) : NULL;
    if (from == NULL)
        from = auth;
    const char *colon = memchr(from, ':', n - (size_t)(from - auth));
    if (colon != NULL)
        host_n = (size_t)(colon - auth);
    char *host = ferry_xmalloc(host_n + 1);
    for (size_t i = 0; i < host_n; i++)
        host[i] = (char)tolower((unsigned char)auth[i]);
    host[host_n] = '\0';
    if (colon == NULL)
        return host;
    char *port = ferry_asprintf("%.*s", (int)(n - host_n - 1), colon + 1);
    const char *dflt = ferry__default_port(scheme);
    char *out = port[0] == '\0' || (dflt != NULL && strcmp(port, dflt) == 0)
                    ? ferry_strdup(host)
                    : ferry_asprintf("%s:%s", host, port);
    free(port);
    free(host);
    return out;
}

/* The path with one leading "/" and no trailing "/" or ".git". */
static char *ferry__path(const char *path)
{
    while (path[0] == '/')
        path++;
    char *out = ferry_asprintf("/%s", path);
    size_t n = strlen(out);
    while (n > 1 && out[n - 1] == '/')
        out[--n] = '\0';
    if (n > 4 && strcmp(out + n - 4, ".git") == 0)
        out[n -= 4] = '\0';
    while (n > 1 && out[n - 1] == '/')
        out[--n] = '\0';
    return out;
}

char *ferry_url_normalise(const char *url)
{
    size_t sn = ferry__scheme_len(url);
    const char *colon = sn == 0 ? ferry__scp_colon(url) : NULL;
    if (sn == 0 && colon == NULL) { /* a local path */
        char *path = ferry__path(url);
        char *out = ferry_asprintf("file://%s", path);
        free(path);
        return out;
    }
    char scheme[32];
    const char *auth, *rest;
    if (sn > 0) {
        size_t n = sn < sizeof(scheme) - 1 ? sn : sizeof(scheme) - 1;
        for (size_t i = 0; i < n; i++)
            scheme[i] = (char)tolower((unsigned char)url[i]);
        scheme[n] = '\0';
        /* The spellings of ssh that git accepts. */
        if (strcmp(scheme, "git+ssh") == 0 || strcmp(scheme, "ssh+git") == 0)
            strcpy(scheme, "ssh");
        auth = url + sn + 3;
        rest = auth + strcspn(auth, "/");
    } else {
        strcpy(scheme, "ssh");
        auth = url;
        rest = colon + 1;
    }
    size_t auth_n = (size_t)((sn > 0 ? rest : colon) - auth);
    char *host = ferry__authority(scheme, auth, auth_n);
    char *path = ferry__path(rest);
    char *out = ferry_asprintf("%s://%s%s", scheme, host, path);
    free(host);
    free(path);
    return out;
}

int ferry_url_same_repository(const char *a, const char *b)
{
    if (a == NULL || b == NULL)
        return 0;
    char *na = ferry_url_normalise(a), *nb = ferry_url_normalise(b);
    int same = strcmp(na, nb) == 0;
    free(na);
    free(nb);
    return same;
}
