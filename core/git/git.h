/* Projects linked to git repositories (issue 17): a bare mirror of each
 * under <data_dir>/git/<project>.git, fetched with libgit2 on the thread
 * pool (never on the loop; one fetch at a time per project), refs resolved
 * to commits, and the snapshot of a commit's tree built as a deterministic
 * .tar.gz. Credentials stay here: never in a log line, an error text, the
 * API or a snapshot. Every callback runs on the loop thread, on a later
 * loop turn than the call that started it. */
#ifndef FERRY_GIT_H
#define FERRY_GIT_H

#include <jansson.h>
#include <stdint.h>

#include "daemon.h"

/* git_libgit2_init() and <data_dir>/git/; 0, or a negative code with `err`. */
int ferry_git_init(ferryd *d, char *err, size_t cap);
/* Waits for the fetches and builds in flight, then git_libgit2_shutdown(). */
void ferry_git_close(ferryd *d);

/* The configured project `name`, or NULL. */
const ferry_project *ferry_git_project(const ferryd *d, const char *name);
/* `url` without any user:password@ (for the API and messages), into `out`. */
const char *ferry_git_public_url(const char *url, char *out, size_t cap);

/* A project's JSON for GET /v1/projects: {name, repository (credentials
 * stripped), default_ref, submodules, fetched_at (or null),
 * last_fetch_error (or null)}. */
json_t *ferry_git_project_json(ferryd *d, const ferry_project *p);

/* --- fetch --- */

/* `rc` 0: `result` is {"project", "changes": [{"ref", "old", "new"}],
 * "errors": [{"ref", "error"}]} (refs as "main", "v1.0"; old/new full
 * shas, null for a ref that appeared or went), the callee's (do not keep;
 * json_incref it to). rc < 0: `err` says why, naming the project and the
 * URL: FERRY_EAUTH "project 'mnist': authentication failed at URL",
 * FERRY_ECONN "project 'mnist': cannot fetch URL: <libgit2's reason>". */
typedef void (*ferry_git_fetched_fn)(ferryd *d, int rc, json_t *result, const char *err, void *arg);
/* Fetches every branch and tag of `p` into its mirror (created on the first
 * fetch). A fetch asked for while one of the same project runs waits for it
 * and then runs. FERRY_ENOTSUP (sync, no callback) for a project without
 * a repository. */
int ferry_git_fetch(ferryd *d, const ferry_project *p, ferry_git_fetched_fn cb, void *arg);

/* --- resolve --- */

typedef struct ferry_git_commit {
    char sha[41];
    char tree[41];
    char *ref;     /* as it was given */
    char *message; /* the first line */
    char *author;  /* "Name <email>" */
    int64_t date;  /* committer time, unix seconds */
} ferry_git_commit;

/* `c` is the callee's (valid during the callback). rc < 0 with `err`:
 * FERRY_ENOENT "project 'mnist': no commit, branch or tag 'REF' in URL"
 * (after one fetch); FERRY_EEXIST "project 'mnist': 'abc1' is ambiguous:
 * abc1234..., abc19f0..."; a fetch's code and text when the fetch failed. */
typedef void (*ferry_git_resolved_fn)(ferryd *d, int rc, const ferry_git_commit *c, const char *err,
                                      void *arg);
/* Resolves `ref` (a full or abbreviated sha of at least 4 hex digits, a
 * branch, a tag; NULL: the project's default_ref) in `p`'s mirror; a ref
 * it does not know triggers one fetch, then it looks again. */
int ferry_git_resolve(ferryd *d, const ferry_project *p, const char *ref, ferry_git_resolved_fn cb,
                      void *arg);
/* The first line of a commit message, author and date into a ferry_git_commit
 * that the caller owns; ferry_git_commit_clear frees its strings. */
void ferry_git_commit_copy(ferry_git_commit *dst, const ferry_git_commit *src);
void ferry_git_commit_clear(ferry_git_commit *c);

/* --- snapshot of a commit (gitsnap.c) --- */

/* A built snapshot, the callee's (freed after the callback). */
typedef struct ferry_git_snapshot {
    const char *sha256; /* of the .tar.gz */
    /* The .tar.gz, a file in <data_dir>/tmp: the callee's, to move or
     * remove (built on the pool, never whole in memory). */
    const char *path;
    size_t len;
    int64_t lfs_files; /* Git LFS pointer files it holds, as they are */
    /* The step file ferryd would read from it (ferry.yaml, else
     * valohai.yaml, a file at the top of the tree), so that it need not be
     * read back out of the archive; NULL when there is none or one of the
     * two is a symlink (then the archive is read, as for an upload). */
    const char *stepfile_name;
    const char *stepfile;
    size_t stepfile_len;
} ferry_git_snapshot;

/* `rc` 0 and `snap`; rc < 0 (`snap` NULL) with `err`: FERRY_ETOOBIG
 * "commit 5d6e7f8 is larger than max_snapshot_mb = 1024", FERRY_ECONN for a
 * submodule that could not be fetched, ... */
typedef void (*ferry_git_built_fn)(ferryd *d, int rc, const ferry_git_snapshot *snap,
                                   const char *err, void *arg);
/* Builds the snapshot of commit `c` of `p` on the thread pool: a gzip'd tar
 * of its tree and nothing else (no .git, .gitignore irrelevant), members
 * sorted by path, mtime = the commit time, uid/gid 0, modes 0644 or 0755,
 * symlinks kept as symlinks, submodules (gitlinks) included from their own
 * mirrors when p->submodules, else left out; the same tree always gives the
 * same bytes. Bounded by max_snapshot_mb (uncompressed). The cache (tree
 * -> snapshot) is the caller's: state/gitrows.h. */
int ferry_git_build_snapshot(ferryd *d, const ferry_project *p, const ferry_git_commit *c,
                             ferry_git_built_fn cb, void *arg);

#endif
