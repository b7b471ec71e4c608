/* Executions of a git commit (issue 17): POST /v1/executions with
 * "commit": "REF" and "project" in place of "snapshot". The ref is
 * resolved in the project's mirror (core/git/), and the snapshot of the
 * commit's tree is found in the cache (state/gitrows.h) or built once and
 * stored like an uploaded one; then the creation goes on as for a snapshot. */
#ifndef FERRY_COMMITS_H
#define FERRY_COMMITS_H

#include <stdint.h>

#include "reply.h"
#include "request.h"

/* What a creation of a commit carries on to the execution. */
typedef struct ferry_commit_info {
    json_t *json;      /* {sha, ref, repository, message, author, date} */
    int64_t lfs_files; /* Git LFS pointer files in its snapshot, as they are */
} ferry_commit_info;

/* Goes on with a creation once its commit's snapshot is in the store:
 * `body` (taken) with its "snapshot" set to the commit's, the commit (the
 * callee's: json_incref what it keeps) and the answer's `reply` (taken).
 * ferry_submit and ferry_pipeline_create are such functions. */
typedef void (*ferry_commit_ready_fn)(ferryd *d, const ferry_user *user, json_t *body,
                                      const ferry_commit_info *commit, ferry_reply *reply);
/* Takes `body` and `reply`. Resolves `body`'s "commit" in the mirror of its
 * "project" and finds or builds the snapshot of its tree, then calls
 * `ready` on a later loop turn. An unknown project is a 404, one without a
 * repository a 400, an unknown ref a 404 and an ambiguous one a 400 (field
 * "commit"), a server that cannot be reached or refuses ferryd's
 * credentials a 502, a commit beyond max_snapshot_mb a 413: those are
 * answered on `reply`, and none once it is gone (ferry_reply_gone). */
void ferry_commit_resolve(ferryd *d, const ferry_user *user, json_t *body, ferry_reply *reply,
                          ferry_commit_ready_fn ready);
/* ferry_commit_resolve for the request `r`, answered on it. */
void ferry_commit_prepare(ferry_http_req *r, json_t *body, ferry_commit_ready_fn ready);
/* At shutdown, after ferry_git_close (no build is in flight then). */
void ferry_commits_close(ferryd *d);

#endif
