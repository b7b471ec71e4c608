/* The snapshot of a commit (pool thread): its tree as a .tar.gz written
 * straight from the blobs (each is read once and handed to libarchive as
 * it is), the same bytes for the same tree and commit time. */
#include <archive.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>
#include <archive_entry.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "git_int.h"
#include "tarball.h"
#include "util.h"

#define SNAP__LFS "version https://git-lfs.github.com/spec/v1"
#define SNAP__MAX_DEPTH 8 /* submodules within submodules */
/* A step file larger than this is read back from the archive, on the pool. */
#define SNAP__STEPFILE_MAX (1 << 20)

typedef struct snap__module {
    char *name, *path, *url;
} snap__module;

typedef struct snap__modules {
    snap__module *v;
    size_t n, cap;
} snap__modules;

/* Where the archive's bytes go: the file, and their hash as they pass. */
typedef struct snap__out {
    int fd;
    EVP_MD_CTX *sha;
    int64_t len;
} snap__out;

typedef struct snap__ctx {
    git__job *j;
    struct archive *a;
    struct archive_entry *e;
    int64_t total; /* uncompressed bytes so far */
    int64_t lfs;
    int64_t members; /* entries so far: an agent extracts at most FERRY_ARCHIVE_MAX_MEMBERS */
    int rc;
} snap__ctx;

static la_ssize_t snap__write(struct archive *a, void *arg, const void *buf, size_t len)
{
    snap__out *o = arg;
    if (ferry_write_all(o->fd, buf, len) < 0) {
        archive_set_error(a, errno, "cannot write the snapshot: %s", strerror(errno));
        return -1;
    }
    EVP_DigestUpdate(o->sha, buf, len);
    o->len += (int64_t)len;
    return (la_ssize_t)len;
}

static int snap__fail(snap__ctx *x, int rc, const char *fmt, const char *a1, const char *a2)
{
    if (x->rc == 0) {
        x->rc = rc;
        snprintf(x->j->err, sizeof(x->j->err), fmt, a1, a2);
    }
    return rc;
}

static int snap__too_big(snap__ctx *x)
{
    if (x->rc == 0) {
        x->rc = FERRY_ETOOBIG;
        snprintf(x->j->err, sizeof(x->j->err), "commit %.7s is larger than max_snapshot_mb = %lld",
                 x->j->commit.sha, (long long)(x->j->max_bytes >> 20));
    }
    return x->rc;
}

/* --- .gitmodules --- */

static char *snap__trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    return s;
}

static void snap__modules_parse(const char *text, size_t len, snap__modules *m)
{
    char *buf = ferry_xmalloc(len + 1);
    memcpy(buf, text, len);
    buf[len] = '\0';
    snap__module *cur = NULL;
    for (char *save = NULL, *line = strtok_r(buf, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        char *l = snap__trim(line);
        if (*l == '#' || *l == ';' || *l == '\0')
            continue;
        if (*l == '[') {
            cur = NULL;
            char *q1 = strchr(l, '"'), *q2 = q1 ? strchr(q1 + 1, '"') : NULL;
            if (strncmp(l, "[submodule", 10) != 0 || q2 == NULL)
                continue;
            FERRY_XGROW(m->v, m->cap, m->n + 1);
            cur = &m->v[m->n++];
            memset(cur, 0, sizeof(*cur));
            cur->name = ferry_xmalloc((size_t)(q2 - q1));
            memcpy(cur->name, q1 + 1, (size_t)(q2 - q1 - 1));
            cur->name[q2 - q1 - 1] = '\0';
            continue;
        }
        char *eq = strchr(l, '=');
        if (cur == NULL || eq == NULL)
            continue;
        *eq = '\0';
        char *k = snap__trim(l), *v = snap__trim(eq + 1);
        size_t vl = strlen(v);
        if (vl >= 2 && v[0] == '"' && v[vl - 1] == '"') {
            v[vl - 1] = '\0';
            v++;
        }
        char **f = strcasecmp(k, "path") == 0  ? &cur->path
                   : strcasecmp(k, "url") == 0 ? &cur->url
                                               : NULL;
        if (f) {
            free(*f);
            *f = ferry_strdup(v);
        }
    }
    free(buf);
}

static void snap__modules_free(snap__modules *m)
{
    for (size_t i = 0; i < m->n; i++) {
        free(m->v[i].name);
        free(m->v[i].path);
        free(m->v[i].url);
    }
    free(m->v);
    memset(m, 0, sizeof(*m));
}

static void snap__modules_load(git_repository *repo, git_tree *root, snap__modules *m)
{
    memset(m, 0, sizeof(*m));
    const git_tree_entry *te = git_tree_entry_byname(root, ".gitmodules");
    if (te == NULL || git_tree_entry_type(te) != GIT_OBJECT_BLOB)
        return;
    git_blob *b = NULL;
    if (git_blob_lookup(&b, repo, git_tree_entry_id(te)) < 0)
        return;
    snap__modules_parse(git_blob_rawcontent(b), (size_t)git_blob_rawsize(b), m);
    git_blob_free(b);
}

/* A submodule URL relative to its superproject's ("../lib.git"), as git
 * resolves it: each "../" drops one part of the base. */
char *git__resolve_url(const char *base, const char *rel)
{
    if (strncmp(rel, "./", 2) != 0 && strncmp(rel, "../", 3) != 0)
        return ferry_strdup(rel);
    char *b = ferry_strdup(base);
    size_t n = strlen(b);
    while (n > 0 && b[n - 1] == '/')
        b[--n] = '\0';
    const char *scheme = strstr(b, "://");
    char *floor = scheme ? (char *)scheme + 3 : b; /* never cut into the scheme */
    char sep = '/';
    for (;;) {
        if (strncmp(rel, "./", 2) == 0) {
            rel += 2;
        } else if (strncmp(rel, "../", 3) == 0) {
            char *cut = strrchr(floor, '/');
            char *colon = scheme ? NULL : strrchr(b, ':');
            if (cut == NULL || (colon && colon > cut)) {
                cut = colon;
                sep = ':';
            } else {
                sep = '/';
            }
            if (cut)
                *cut = '\0';
            rel += 3;
        } else {
            break;
        }
    }
    char *out = ferry_asprintf("%s%c%s", b, sep, rel);
    free(b);
    return out;
}

/* --- the walk --- */

static int snap__tree(snap__ctx *x, git_repository *repo, git_tree *tree, const char *prefix,
                      const char *url, const snap__modules *mods, const char *root_prefix,
                      int depth);

static void snap__header(snap__ctx *x, const char *path, mode_t type, mode_t perm, int64_t size)
{
    struct archive_entry *e = x->e;
    archive_entry_clear(e);
    archive_entry_set_pathname(e, path);
    archive_entry_set_filetype(e, type);
    archive_entry_set_perm(e, perm);
    archive_entry_set_size(e, size);
    archive_entry_set_uid(e, 0);
    archive_entry_set_gid(e, 0);
    archive_entry_set_mtime(e, (time_t)x->j->commit.date, 0);
}

static int snap__archive_error(snap__ctx *x)
{
    return snap__fail(x, FERRY_EIO, "cannot write the snapshot: %s%s", archive_error_string(x->a),
                      "");
}

/* Keeps the top-level step file ferryd will read (ferry.yaml first, as the
 * reader looks), so that it is not read back out of the archive. */
static void snap__note_stepfile(git__job *j, const char *path, git_filemode_t fm, const void *data,
                                int64_t size)
{
    static const char *const names[] = {"ferry.yaml", "valohai.yaml"};
    int which = strcmp(path, names[0]) == 0 ? 0 : strcmp(path, names[1]) == 0 ? 1 : -1;
    if (which < 0)
        return;
    if (fm == GIT_FILEMODE_LINK || size > SNAP__STEPFILE_MAX) {
        j->stepfile_link = 1; /* followed, or too big: the archive's reader decides */
        return;
    }
    if (j->stepfile_name != NULL && which == 1)
        return; /* ferry.yaml is there: it wins */
    free(j->stepfile);
    j->stepfile = ferry_xmalloc((size_t)size + 1);
    memcpy(j->stepfile, data, (size_t)size);
    j->stepfile_len = (size_t)size;
    j->stepfile_name = names[which];
}

static int snap__blob(snap__ctx *x, git_repository *repo, const git_tree_entry *te,
                      const char *path)
{
    git_blob *b = NULL;
    if (git_blob_lookup(&b, repo, git_tree_entry_id(te)) < 0)
        return snap__fail(x, FERRY_EIO, "cannot read %s from the mirror: %s", path,
                          git_error_last() ? git_error_last()->message : "");
    const void *data = git_blob_rawcontent(b);
    int64_t size = (int64_t)git_blob_rawsize(b);
    x->total += size + 512;
    if (x->total > x->j->max_bytes) {
        git_blob_free(b);
        return snap__too_big(x);
    }
    git_filemode_t fm = git_tree_entry_filemode(te);
    snap__note_stepfile(x->j, path, fm, data, size);
    int rc = 0;
    if (fm == GIT_FILEMODE_LINK) {
        char *target = ferry_xmalloc((size_t)size + 1);
        memcpy(target, data, (size_t)size);
        target[size] = '\0';
        snap__header(x, path, AE_IFLNK, 0777, 0);
        archive_entry_set_symlink(x->e, target);
        free(target);
        if (archive_write_header(x->a, x->e) != ARCHIVE_OK)
            rc = snap__archive_error(x);
    } else {
        if ((size_t)size >= sizeof(SNAP__LFS) - 1 && size < 1024 &&
            memcmp(data, SNAP__LFS, sizeof(SNAP__LFS) - 1) == 0)
            x->lfs++;
        snap__header(x, path, AE_IFREG, fm == GIT_FILEMODE_BLOB_EXECUTABLE ? 0755 : 0644, size);
        if (archive_write_header(x->a, x->e) != ARCHIVE_OK ||
            (size > 0 && archive_write_data(x->a, data, (size_t)size) != (la_ssize_t)size))
            rc = snap__archive_error(x);
    }
    git_blob_free(b);
    return rc;
}

/* Sanitised for a folder name: a submodule's name may hold '/'. */
static void snap__module_dir(const char *name, char *out, size_t cap)
{
    size_t i = 0;
    for (; name[i] && i + 1 < cap; i++)
        out[i] =
            isalnum((unsigned char)name[i]) || name[i] == '-' || name[i] == '_' ? name[i] : '_';
    out[i] = '\0';
}

static int snap__submodule(snap__ctx *x, const git_tree_entry *te, const char *path,
                           const char *rel, const char *url, const snap__modules *mods, int depth)
{
    const snap__module *m = NULL;
    for (size_t i = 0; i < mods->n; i++)
        if (mods->v[i].path && strcmp(mods->v[i].path, rel) == 0)
            m = &mods->v[i];
    if (m == NULL || m->url == NULL)
        return snap__fail(x, FERRY_ENOENT, "submodule %s: not in .gitmodules%s", path, "");
    if (depth >= SNAP__MAX_DEPTH)
        return snap__fail(x, FERRY_EINVAL, "submodule %s: nested too deep%s", path, "");
    git__job *j = x->j;
    char *sub_url = git__resolve_url(url, m->url);
    char dir[256], mirror[PATH_MAX];
    snap__module_dir(m->name, dir, sizeof(dir));
    snprintf(mirror, sizeof(mirror), "%s/%s.modules/%s.git", j->root, j->p.name, dir);
    git_repository *repo = NULL;
    int rc = git__mirror_open(j, mirror, &repo, j->err, sizeof(j->err));
    git_commit *c = NULL;
    if (rc == 0 && git_commit_lookup(&c, repo, git_tree_entry_id(te)) < 0) {
        rc = git__fetch_repo(j, repo, sub_url, NULL, j->err, sizeof(j->err));
        if (rc == 0 && git_commit_lookup(&c, repo, git_tree_entry_id(te)) < 0) {
            char pub[2048], hex[GIT_OID_HEXSZ + 1];
            git_oid_tostr(hex, sizeof(hex), git_tree_entry_id(te));
            snprintf(j->err, sizeof(j->err), "submodule %s: commit %.7s is not in %s", path, hex,
                     ferry_git_public_url(sub_url, pub, sizeof(pub)));
            rc = FERRY_ECONN;
        }
    }
    if (rc < 0 && x->rc == 0)
        x->rc = rc == FERRY_EAUTH || rc == FERRY_ECANCELED ? rc : FERRY_ECONN;
    git_tree *tree = NULL;
    if (rc == 0 && git_commit_tree(&tree, c) < 0)
        rc = snap__fail(x, FERRY_EIO, "submodule %s: cannot read its tree%s", path, "");
    if (rc == 0) {
        snap__modules sub;
        snap__modules_load(repo, tree, &sub);
        char prefix[PATH_MAX];
        snprintf(prefix, sizeof(prefix), "%s/", path);
        rc = snap__tree(x, repo, tree, prefix, sub_url, &sub, prefix, depth + 1);
        snap__modules_free(&sub);
    }
    git_tree_free(tree);
    git_commit_free(c);
    git_repository_free(repo);
    free(sub_url);
    return x->rc ? x->rc : rc;
}

static int snap__tree(snap__ctx *x, git_repository *repo, git_tree *tree, const char *prefix,
                      const char *url, const snap__modules *mods, const char *root_prefix,
                      int depth)
{
    size_t n = git_tree_entrycount(tree);
    for (size_t i = 0; i < n && x->rc == 0; i++) {
        if (atomic_load(&x->j->g->cancel))
            return snap__fail(x, FERRY_ECANCELED, "the build of commit %.7s stopped: %s",
                              x->j->commit.sha, "ferryd is stopping");
        const git_tree_entry *te = git_tree_entry_byindex(tree, i);
        if (++x->members > FERRY_ARCHIVE_MAX_MEMBERS) {
            char bound[24];
            snprintf(bound, sizeof(bound), "%d", FERRY_ARCHIVE_MAX_MEMBERS);
            return snap__fail(x, FERRY_ETOOBIG, "commit %.7s has more than %s files and folders",
                              x->j->commit.sha, bound);
        }
        char path[PATH_MAX];
        if (snprintf(path, sizeof(path), "%s%s", prefix, git_tree_entry_name(te)) >=
            (int)sizeof(path))
            return snap__fail(x, FERRY_ENAMETOOLONG, "a path is too long: %.200s%s", path, "");
        switch (git_tree_entry_type(te)) {
        case GIT_OBJECT_BLOB:
            snap__blob(x, repo, te, path);
            break;
        case GIT_OBJECT_TREE: {
            x->total += 512;
            if (x->total > x->j->max_bytes)
                return snap__too_big(x);
            snap__header(x, path, AE_IFDIR, 0755, 0);
            if (archive_write_header(x->a, x->e) != ARCHIVE_OK)
                return snap__archive_error(x);
            git_tree *sub = NULL;
            if (git_tree_lookup(&sub, repo, git_tree_entry_id(te)) < 0)
                return snap__fail(x, FERRY_EIO, "cannot read %s from the mirror%s", path, "");
            char p2[PATH_MAX];
            snprintf(p2, sizeof(p2), "%s/", path);
            snap__tree(x, repo, sub, p2, url, mods, root_prefix, depth);
            git_tree_free(sub);
            break;
        }
        case GIT_OBJECT_COMMIT: /* a gitlink */
            if (x->j->p.submodules)
                snap__submodule(x, te, path, path + strlen(root_prefix), url, mods, depth);
            break;
        default:
            break;
        }
    }
    return x->rc;
}

void git__run_build(git__job *j)
{
    git_repository *repo = NULL;
    git_commit *c = NULL;
    git_tree *tree = NULL;
    git_oid oid;
    j->rc = git__mirror_open(j, j->mirror, &repo, j->err, sizeof(j->err));
    if (j->rc < 0)
        return;
    if (git_oid_fromstr(&oid, j->commit.sha) < 0 || git_commit_lookup(&c, repo, &oid) < 0 ||
        git_commit_tree(&tree, c) < 0) {
        char pub[2048];
        snprintf(j->err, sizeof(j->err), "project '%s': no commit %.40s in %s", j->p.name,
                 j->commit.sha, ferry_git_public_url(j->p.repository, pub, sizeof(pub)));
        j->rc = FERRY_ENOENT;
        git_commit_free(c);
        git_repository_free(repo);
        return;
    }
    j->commit.date = (int64_t)git_commit_time(c);
    snap__out out = {.fd = mkstemp(j->tar_path), .sha = EVP_MD_CTX_new()};
    if (out.fd < 0 || out.sha == NULL || EVP_DigestInit_ex(out.sha, EVP_sha256(), NULL) != 1) {
        snprintf(j->err, sizeof(j->err), "cannot make %s: %s", j->tar_path, strerror(errno));
        j->rc = FERRY_EIO;
        if (out.fd >= 0)
            close(out.fd);
        else
            j->tar_path[0] = '\0';
        EVP_MD_CTX_free(out.sha);
        git_tree_free(tree);
        git_commit_free(c);
        git_repository_free(repo);
        return;
    }
    fchmod(out.fd, 0644); /* mkstemp's 0600: the store keeps the mode it is given */
    snap__ctx x = {.j = j};
    x.a = archive_write_new();
    x.e = archive_entry_new();
    int ok = archive_write_set_format_pax_restricted(x.a) == ARCHIVE_OK &&
             archive_write_add_filter_gzip(x.a) == ARCHIVE_OK &&
             /* no time (nor name) in the gzip header: the same tree, the same bytes */
             archive_write_set_filter_option(x.a, "gzip", "timestamp", NULL) == ARCHIVE_OK &&
             archive_write_set_bytes_in_last_block(x.a, 1) == ARCHIVE_OK &&
             archive_write_open(x.a, &out, NULL, snap__write, NULL) == ARCHIVE_OK;
    if (!ok) {
        snap__archive_error(&x);
    } else {
        snap__modules mods;
        snap__modules_load(repo, tree, &mods);
        snap__tree(&x, repo, tree, "", j->p.repository, &mods, "", 0);
        snap__modules_free(&mods);
        if (archive_write_close(x.a) != ARCHIVE_OK)
            snap__archive_error(&x);
    }
    archive_entry_free(x.e);
    archive_write_free(x.a);
    git_tree_free(tree);
    git_commit_free(c);
    git_repository_free(repo);
    j->rc = x.rc;
    j->lfs_files = x.lfs;
    if (j->rc == 0 && close(out.fd) != 0) {
        snprintf(j->err, sizeof(j->err), "cannot write %s: %s", j->tar_path, strerror(errno));
        j->rc = FERRY_EIO;
    } else if (j->rc != 0) {
        close(out.fd);
    }
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_DigestFinal_ex(out.sha, md, &n);
    EVP_MD_CTX_free(out.sha);
    for (unsigned int i = 0; i < n && i < 32; i++)
        snprintf(j->sha256 + 2 * i, 3, "%02x", md[i]);
    j->tar_len = out.len;
}
