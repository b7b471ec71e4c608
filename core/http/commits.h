/* Executions of a git commit (issue 17): POST /v1/executions with
 * "commit": "REF" and "project" in place of "snapshot". The ref is
 * resolved in the project's mirror (core/git/), and the snapshot of the
 * commit's tree is found in the cache (state/gitrows.h) or built once and
 * stored like an uploaded one; then the creation goes on as for a snapshot. */
#ifndef FERRY_COMMITS_H
#define FERRY_COMMITS_H

#include <stdint.h>

#include "request.h"

/* What a creation of a commit carries on to the execution. */
typedef struct ferry_commit_info {
    json_t *json;      /* {sha, ref, repository, message, author, date} */
    int64_t lfs_files; /* Git LFS pointer files in its snapshot, as they are */
} ferry_commit_info;

/* Called, on a later loop turn, with the request still open, `body` (taken)
 * with its "snapshot" set to the commit's, and the commit (the callee's:
 * json_incref what it keeps). */
typedef void (*ferry_commit_ready_fn)(ferry_http_req *r, json_t *body,
                                      const ferry_commit_info *commit);
/* Takes `body`, whose "project" and "commit" are checked here: an unknown
 * project is a 404, one without a repository a 400, an unknown ref a 404
 * and an ambiguous one a 400 (field "commit"), a server that cannot be
 * reached or refuses ferryd's credentials a 502, a commit beyond
 * max_snapshot_mb a 413. Answers those itself; else calls `ready`. */
void ferry_commit_prepare(ferry_http_req *r, json_t *body, ferry_commit_ready_fn ready);
/* At shutdown, after ferry_git_close (no build is in flight then). */
void ferry_commits_close(ferryd *d);

#endif
