/* What the files of the snapshot archive module share (lib/tarball*.c):
 *   tarball.c          helpers, symlink targets, member names, one member
 *   tarball_ignore.c   the .gitignore rules packing honours
 *   tarball_pack.c     packing a directory
 *   tarball_extract.c  extracting a hostile archive */
#ifndef FERRY_TARBALL_INT_H
#define FERRY_TARBALL_INT_H

#include <stddef.h>

#include <archive.h>

#include "tarball.h"

/* Symlink hops followed when resolving a link target (as Linux's MAXSYMLINKS). */
#define FERRY__MAX_HOPS 40
/* read_member serves step files to ferryd from untrusted snapshots: a cap
 * keeps a hostile archive from making it allocate without bound. */
#define FERRY__MAX_MEMBER (64 * 1024 * 1024)
#define FERRY__BLOCK 65536

/* Write the message into err (may be NULL) and return `code`. */
int tarball__fail(char *err, size_t cap, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* dir/name, or name when dir is empty. Malloc'd. */
char *tarball__join(const char *dir, const char *name);
char *tarball__strndup(const char *s, size_t n);
/* The folder part of a relative path ("" at the top). Malloc'd. */
char *tarball__dirname(const char *rel);
/* Whether the symlink at `link_rel` (relative to `root`) with `target` ends
 * up inside `root`, following the links met on the way. */
int tarball__link_stays_inside(const char *root, const char *link_rel, const char *target);
/* A reader of gzip'd tar. */
struct archive *tarball__new_reader(void);
/* A member's name without "./", doubled or trailing "/"; NULL and a reason
 * for an absolute name or one with a ".." component. */
char *tarball__normalize_member(const char *name, const char **why);
/* `target` taken lexically from folder `dir`; NULL when it climbs out. */
char *tarball__lexical_join(const char *dir, const char *target);

typedef struct tarball__ignore_rule {
    char *pattern; /* without "!", the anchoring "/" and the trailing "/" */
    int negate;
    int dir_only;
    int anchored; /* has a "/": matched against the path below the file's folder */
} tarball__ignore_rule;

typedef struct tarball__ignore_file {
    char *base; /* folder of the .gitignore, relative to the packed root */
    tarball__ignore_rule *rules;
    size_t n_rules;
} tarball__ignore_file;

/* Parse `text` (a .gitignore in folder `base`) into `f`. */
void tarball__load_ignore_file(tarball__ignore_file *f, const char *base, char *text);
void tarball__free_ignore_file(tarball__ignore_file *f);
/* Whether `rel` (its last component `name`) is ignored by the files in
 * scope, the last match winning as in git. */
int tarball__is_ignored(const tarball__ignore_file *files, size_t n, const char *rel,
                        const char *name, int is_dir);

#endif
