/* core/git/'s insides, shared by its files. A job is one piece of work on
 * the thread pool: it carries copies of everything it needs (the project,
 * paths, limits), so that nothing of the ferryd is read off the loop, and
 * its results, which the after_work hands to the caller's callback on the
 * loop. The jobs of one project run one at a time, in the order asked. */
#ifndef FERRY_GIT_INT_H
#define FERRY_GIT_INT_H

#include <git2.h>
#include <limits.h>
#include <stdatomic.h>

#include "ferry/buf.h"
#include "git.h"

typedef enum { GIT__FETCH, GIT__RESOLVE, GIT__BUILD } git__kind;

typedef struct git__job git__job;

/* The project's queue: the job running (busy) and those waiting for it. */
typedef struct git__queue {
    char *name;
    int busy;
    git__job *head, *tail;
} git__queue;

/* stream.c: libgit2's sockets, ours: every wait for a server bounded by
 * `timeout_s` seconds of silence (git_timeout); all shut down at a stop. */
int git__stream_init(int timeout_s);
void git__stream_cancel_all(void);

struct ferry_git {
    char root[PATH_MAX]; /* <data_dir>/git */
    double started;      /* lock files older than this are stale */
    atomic_int cancel;   /* set by ferry_git_close: running jobs give up */
    int inflight;        /* jobs queued on the pool or running there */
    git__queue *queues;
    size_t n_queues;
};

struct git__job {
    uv_work_t req;
    ferryd *d; /* read in the after_work only */
    struct ferry_git *g;
    git__queue *q;
    git__job *next;
    git__kind kind;
    /* What the pool thread may read: copies. */
    ferry_project p;
    char root[PATH_MAX];
    char mirror[PATH_MAX];
    double started;
    int64_t max_bytes;
    char *ref;               /* resolve: as given (default_ref when NULL) */
    ferry_git_commit commit; /* build: the commit; resolve: the answer */
    /* What it found. */
    int rc;
    char err[1024];
    json_t *result; /* fetch */
    int fetched;    /* a fetch ran (fetch, or resolve's retry): record it */
    double fetched_at;
    int fetch_rc;
    char fetch_err[1024];
    char tar_path[PATH_MAX]; /* build: the .tar.gz, in <data_dir>/tmp; the caller's once built */
    int64_t tar_len;
    char sha256[65];
    int64_t lfs_files;
    const char *stepfile_name; /* build: see ferry_git_snapshot */
    char *stepfile;
    size_t stepfile_len;
    int stepfile_link; /* build: ferry.yaml or valohai.yaml is a symlink */
    /* The caller's. */
    void *cb;
    void *arg;
};

/* --- pool side: these read only the job --- */

/* Opens the mirror at `path` (a bare repository), making it when missing
 * and making it again when it is broken; stale lock files are removed. */
int git__mirror_open(const git__job *j, const char *path, git_repository **out, char *err,
                     size_t cap);
/* Fetches branches and tags of `url` into `repo` with `j`'s credentials,
 * pruning what went: 0 with *changes (may be NULL), or a FERRY_E* with
 * `err` ("project 'NAME': ..."). */
int git__fetch_repo(const git__job *j, git_repository *repo, const char *url, json_t **changes,
                    char *err, size_t cap);
/* The whole fetch of the project's mirror: sets j->fetched, fetch_rc, ... */
void git__run_fetch(git__job *j);
void git__run_resolve(git__job *j);
void git__run_build(git__job *j);

/* The remote callbacks' payload: credentials of the project and their
 * use, so that a rejected one is not tried again and again. */
typedef struct git__remote_ctx {
    const ferry_project *p;
    const char *url;
    int attempts;
    int auth_failed;
    char cert_err[256];
    const atomic_int *cancel;
} git__remote_ctx;
void git__remote_callbacks(git_remote_callbacks *cb, git__remote_ctx *ctx);

/* libgit2's last error text, or `dflt`; credentials of `url` removed. */
void git__error_text(const char *url, char *out, size_t cap);

/* A submodule's URL `rel` ("../lib.git") against its superproject's
 * `base`, as git resolves it; malloc'd. An absolute one as it is. */
char *git__resolve_url(const char *base, const char *rel);

/* The first line, author and date of `c` into `out` (strings malloc'd). */
void git__commit_fill(ferry_git_commit *out, git_commit *c);

#endif
