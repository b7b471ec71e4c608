/* ferry, the command line: the git working copy `ferry run` starts from
 * (libgit2), and whether one of its remotes is a project's repository. */
#ifndef FERRY_CLI_WORKTREE_H
#define FERRY_CLI_WORKTREE_H

#include <stddef.h>

#include "ferry/error.h"

typedef struct ferry_worktree ferry_worktree;

/* Open the working copy DIR is in (DIR itself or a folder above it).
 * FERRY_ENOENT when there is none (or only a bare repository), FERRY_EIO
 * when one is there but cannot be read. Free with ferry_worktree_free(). */
int ferry_worktree_open(const char *dir, ferry_worktree **out);
void ferry_worktree_free(ferry_worktree *wt);

/* HEAD's full sha (40 hex), or NULL while HEAD has no commit yet. */
const char *ferry_worktree_head(const ferry_worktree *wt);
/* The URLs of all remotes, in libgit2's order (by name). */
size_t ferry_worktree_n_remotes(const ferry_worktree *wt);
const char *ferry_worktree_remote(const ferry_worktree *wt, size_t i);

/* How many files differ from HEAD: modified, staged, deleted, renamed, and
 * untracked ones that .gitignore does not ignore (each path once). A
 * negative error code when the status cannot be read. */
int ferry_worktree_changed(ferry_worktree *wt);

/* REF as a commit this working copy knows for sure is the one ferryd will
 * resolve: a full or abbreviated sha (unambiguous here), or a tag. Branch
 * names are not looked up: a local branch may be ahead of or behind the
 * server's. sha receives 40 hex; FERRY_ENOENT when REF is none of these. */
int ferry_worktree_find_commit(ferry_worktree *wt, const char *ref, char sha[41]);

/* The bytes of the file NAME at the top level of commit SHA's tree, *buf
 * malloc'd and NUL-terminated. FERRY_ENOENT when the commit has no such
 * file (or it is not a file), FERRY_EINVAL when SHA is not a commit here. */
int ferry_worktree_read_file(ferry_worktree *wt, const char *sha, const char *name, char **buf,
                             size_t *len);

/* A repository URL in one form, for comparing: "scheme://host[:port]/path",
 * without credentials or the user of ssh, the host lowercased, the default
 * port, a trailing "/" and ".git" dropped; scp-like "user@host:path" is
 * ssh. Caller frees. */
char *ferry_url_normalise(const char *url);
/* 1 when URLs a and b name the same repository on the same server (so
 * git:// and https:// of one path do not), else 0. */
int ferry_url_same_repository(const char *a, const char *b);

#endif
