/* lib/tarball.c: packing (order, modes, symlinks, .gitignore, determinism),
 * reading one member, and extraction of hostile archives built here with
 * libarchive's writer. */
#include "test.h"

#include "tarball.h"
#include "ferry/error.h"
#include "util.h"

#include <archive.h>
#include <archive_entry.h>

#include <dirent.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

static char tmp_root[PATH_MAX];

/* ---- small file helpers ---- */

static char *path_in(const char *dir, const char *rel)
{
    return ferry_asprintf("%s/%s", dir, rel);
}

static void put_file(const char *dir, const char *rel, const char *text, int mode)
{
    char *p = path_in(dir, rel);
    char *slash = strrchr(p, '/');
    *slash = '\0';
    CHECK_INT(ferry_file_mkdirs(p, 0755), 0);
    *slash = '/';
    FILE *f = fopen(p, "wb");
    CHECK(f != NULL);
    if (f) {
        fputs(text, f);
        fclose(f);
    }
    CHECK_INT(chmod(p, (mode_t)mode), 0);
    free(p);
}

static void put_dir(const char *dir, const char *rel)
{
    char *p = path_in(dir, rel);
    CHECK_INT(ferry_file_mkdirs(p, 0755), 0);
    free(p);
}

static void put_link(const char *dir, const char *rel, const char *target)
{
    char *p = path_in(dir, rel);
    CHECK_INT(symlink(target, p), 0);
    free(p);
}

static char *new_dir(const char *name)
{
    char *p = path_in(tmp_root, name);
    CHECK_INT(ferry_file_mkdirs(p, 0755), 0);
    return p;
}

static int exists(const char *dir, const char *rel)
{
    char *p = path_in(dir, rel);
    struct stat st;
    int ok = lstat(p, &st) == 0;
    free(p);
    return ok;
}

static char *slurp(const char *dir, const char *rel)
{
    char *p = path_in(dir, rel);
    char *data = ferry_read_file(p, NULL);
    free(p);
    return data;
}

static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return -1;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}

/* Member names of an archive, one per line, in archive order ("d:" folders,
 * "l:" links with their target). */
static char *list_members(const char *archive_path)
{
    struct archive *a = archive_read_new();
    archive_read_support_filter_gzip(a);
    archive_read_support_format_tar(a);
    CHECK_INT(archive_read_open_filename(a, archive_path, 10240), ARCHIVE_OK);
    size_t cap = 4096, len = 0;
    char *out = ferry_xcalloc(1, cap);
    struct archive_entry *e;
    while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
        const char *tag = "";
        char line[PATH_MAX * 2];
        if (archive_entry_filetype(e) == AE_IFDIR)
            tag = "d:";
        if (archive_entry_filetype(e) == AE_IFLNK)
            snprintf(line, sizeof(line), "l:%s->%s\n", archive_entry_pathname(e),
                     archive_entry_symlink(e));
        else
            snprintf(line, sizeof(line), "%s%s\n", tag, archive_entry_pathname(e));
        CHECK_INT(archive_entry_mtime(e), 0);
        CHECK_INT(archive_entry_uid(e), 0);
        size_t n = strlen(line);
        if (len + n + 1 > cap) {
            cap = (len + n + 1) * 2;
            out = ferry_xrealloc(out, cap);
        }
        memcpy(out + len, line, n + 1);
        len += n;
    }
    archive_read_free(a);
    return out;
}

/* ---- hostile archives ---- */

typedef struct test_member {
    char type; /* f file, d folder, l symlink, h hard link, c char device, p fifo */
    const char *name;
    const char *arg; /* file content or link target */
} test_member;

static void write_archive(const char *path, const test_member *m, size_t n)
{
    struct archive *a = archive_write_new();
    archive_write_set_format_pax_restricted(a);
    archive_write_add_filter_gzip(a);
    CHECK_INT(archive_write_open_filename(a, path), ARCHIVE_OK);
    for (size_t i = 0; i < n; i++) {
        struct archive_entry *e = archive_entry_new();
        archive_entry_set_pathname(e, m[i].name);
        archive_entry_set_perm(e, 0644);
        switch (m[i].type) {
        case 'f':
            archive_entry_set_filetype(e, AE_IFREG);
            archive_entry_set_size(e, (la_int64_t)strlen(m[i].arg));
            break;
        case 'd':
            archive_entry_set_filetype(e, AE_IFDIR);
            archive_entry_set_perm(e, 0755);
            break;
        case 'l':
            archive_entry_set_filetype(e, AE_IFLNK);
            archive_entry_set_symlink(e, m[i].arg);
            break;
        case 'h':
            archive_entry_set_filetype(e, AE_IFREG);
            archive_entry_set_hardlink(e, m[i].arg);
            break;
        case 'c':
            archive_entry_set_filetype(e, AE_IFCHR);
            archive_entry_set_rdevmajor(e, 1);
            archive_entry_set_rdevminor(e, 3);
            break;
        case 'p':
            archive_entry_set_filetype(e, AE_IFIFO);
            break;
        }
        CHECK(archive_write_header(a, e) >= ARCHIVE_WARN);
        if (m[i].type == 'f')
            archive_write_data(a, m[i].arg, strlen(m[i].arg));
        archive_entry_free(e);
    }
    CHECK_INT(archive_write_close(a), ARCHIVE_OK);
    archive_write_free(a);
}

/* Extract a hostile archive into a fresh folder next to an "outside" folder;
 * it must be refused with a message naming `member`, and nothing may appear
 * outside. Returns the destination (caller frees) for further checks. */
static char *expect_refused(const char *label, const test_member *m, size_t n, const char *member)
{
    char *base = new_dir(label);
    char *dest = path_in(base, "dest");
    CHECK_INT(ferry_file_mkdirs(dest, 0755), 0);
    char *outside = path_in(base, "outside");
    CHECK_INT(ferry_file_mkdirs(outside, 0755), 0);
    char *tgz = path_in(base, "evil.tar.gz");
    write_archive(tgz, m, n);
    char err[1024] = "";
    int rc = ferry_archive_extract(tgz, dest, err, sizeof(err));
    if (rc != FERRY_EUNSAFE)
        fprintf(stderr, "%s: rc %d (%s)\n", label, rc, err);
    CHECK_INT(rc, FERRY_EUNSAFE);
    CHECK_CONTAINS(err, member);
    CHECK_INT(count_entries(outside), 0);
    free(outside);
    free(tgz);
    free(base);
    return dest;
}

static void test_refuses_dotdot(void)
{
    const test_member m[] = {{'f', "ok.txt", "fine"}, {'f', "../outside/escape", "pwned"}};
    char *dest = expect_refused("dotdot", m, 2, "'../outside/escape'");
    free(dest);
    const test_member m2[] = {{'f', "a/../../outside/escape", "pwned"}};
    dest = expect_refused("dotdot-mid", m2, 1, "a/../../outside/escape");
    CHECK_INT(count_entries(dest), 0);
    free(dest);
}

static void test_refuses_absolute(void)
{
    char *target = ferry_asprintf("%s/absolute/outside/abs.txt", tmp_root);
    const test_member m[] = {{'f', target, "pwned"}};
    char *dest = expect_refused("absolute", m, 1, target);
    CHECK_INT(count_entries(dest), 0);
    free(dest);
    free(target);
}

static void test_refuses_symlink_out(void)
{
    /* A link to /etc, then a file through it. */
    const test_member m[] = {{'l', "etc", "/etc"}, {'f', "etc/ferry-test-pwned", "x"}};
    char *dest = expect_refused("symlink-etc", m, 2, "'etc'");
    CHECK(!exists(dest, "etc"));
    CHECK(access("/etc/ferry-test-pwned", F_OK) != 0);
    free(dest);

    /* The same to a folder we can watch, absolute and relative. */
    char *outside = ferry_asprintf("%s/symlink-abs/outside", tmp_root);
    const test_member m2[] = {{'l', "out", outside}, {'f', "out/pwned", "x"}};
    dest = expect_refused("symlink-abs", m2, 2, "'out'");
    free(dest);
    free(outside);
    const test_member m3[] = {
        {'d', "sub", NULL}, {'l', "sub/up", "../../outside"}, {'f', "sub/up/pwned", "x"}};
    dest = expect_refused("symlink-rel", m3, 3, "'sub/up'");
    CHECK(!exists(dest, "sub/up"));
    free(dest);

    /* Lexically "b/c/../.." is the top, but b -> . makes it the parent. */
    const test_member m4[] = {{'l', "b", "."}, {'l', "a", "b/c/../../outside"}};
    dest = expect_refused("symlink-chain", m4, 2, "'a'");
    free(dest);
    /* The link comes first, the link it passes through later: caught when
     * every member is there, and the bad link is removed. */
    const test_member m5[] = {{'l', "a", "b/c/../../outside"}, {'l', "b", "."}};
    dest = expect_refused("symlink-chain-late", m5, 2, "'a'");
    CHECK(!exists(dest, "a"));
    free(dest);

    /* A link that stays inside, then a member written through it. */
    const test_member m6[] = {{'d', "real", NULL}, {'l', "l", "real"}, {'f', "l/f", "x"}};
    dest = expect_refused("through-link", m6, 3, "'l/f'");
    CHECK(!exists(dest, "real/f"));
    free(dest);
}

/* links_may_leave (the agent's: a commit's `data -> /mnt/datasets`): links
 * out of the destination are kept as links, never followed; a member
 * written through one, or through any link, is still refused. */
static void test_links_may_leave(void)
{
    char *base = new_dir("links-leave");
    char *dest = path_in(base, "dest");
    CHECK_INT(ferry_file_mkdirs(dest, 0755), 0);
    char *outside = path_in(base, "outside");
    CHECK_INT(ferry_file_mkdirs(outside, 0755), 0);
    const test_member m[] = {{'l', "data", outside},
                             {'l', "b", "."},
                             {'l', "a", "b/c/../../outside"},
                             {'f', "train.py", "print(1)"}};
    char *tgz = path_in(base, "links.tar.gz");
    write_archive(tgz, m, 4);
    ferry_extract_opts o = {.links_may_leave = 1};
    char err[1024] = "";
    CHECK_INT(ferry_archive_extract_opts(tgz, dest, &o, err, sizeof(err)), 0);
    char target[PATH_MAX], *link = path_in(dest, "data");
    ssize_t len = readlink(link, target, sizeof(target) - 1);
    CHECK(len > 0);
    target[len > 0 ? len : 0] = '\0';
    CHECK_STR(target, outside);
    free(link);
    CHECK(exists(dest, "a") && exists(dest, "train.py"));
    CHECK_INT(count_entries(outside), 0);
    /* The default still refuses the same archive. */
    char *dest2 = path_in(base, "dest2");
    CHECK_INT(ferry_file_mkdirs(dest2, 0755), 0);
    CHECK_INT(ferry_archive_extract(tgz, dest2, err, sizeof(err)), FERRY_EUNSAFE);
    CHECK_CONTAINS(err, "'data'");
    /* Through a link that leaves: refused, nothing written outside. */
    const test_member m2[] = {{'l', "out", outside}, {'f', "out/pwned", "x"}};
    write_archive(tgz, m2, 2);
    char *dest3 = path_in(base, "dest3");
    CHECK_INT(ferry_file_mkdirs(dest3, 0755), 0);
    CHECK_INT(ferry_archive_extract_opts(tgz, dest3, &o, err, sizeof(err)), FERRY_EUNSAFE);
    CHECK_CONTAINS(err, "goes through the symlink 'out'");
    CHECK_INT(count_entries(outside), 0);
    free(dest3);
    free(dest2);
    free(tgz);
    free(outside);
    free(dest);
    free(base);
}

static void test_refuses_hardlink_and_devices(void)
{
    const test_member m[] = {{'f', "a.txt", "x"}, {'h', "h", "a.txt"}};
    char *dest = expect_refused("hardlink", m, 2, "'h'");
    CHECK(!exists(dest, "h"));
    free(dest);
    const test_member m2[] = {{'h', "passwd", "/etc/passwd"}};
    dest = expect_refused("hardlink-abs", m2, 1, "'passwd'");
    free(dest);
    const test_member m3[] = {{'c', "null2", NULL}};
    dest = expect_refused("chardev", m3, 1, "'null2'");
    CHECK(!exists(dest, "null2"));
    free(dest);
    const test_member m4[] = {{'p', "fifo", NULL}};
    dest = expect_refused("fifo", m4, 1, "'fifo'");
    CHECK(!exists(dest, "fifo"));
    free(dest);
}

static void test_extract_benign_dot_prefix(void)
{
    char *base = new_dir("dotprefix");
    char *dest = new_dir("dotprefix/dest");
    char *tgz = path_in(base, "ok.tar.gz");
    const test_member m[] = {{'d', "./", NULL},
                             {'f', "./a.txt", "alpha"},
                             {'d', "./sub/", NULL},
                             {'f', "./sub//b.txt", "beta"},
                             {'l', "./sub/up", "../a.txt"}};
    write_archive(tgz, m, 5);
    char err[1024] = "";
    CHECK_INT(ferry_archive_extract(tgz, dest, err, sizeof(err)), 0);
    char *a = slurp(dest, "a.txt"), *b = slurp(dest, "sub/b.txt"), *up = slurp(dest, "sub/up");
    CHECK_STR(a, "alpha");
    CHECK_STR(b, "beta");
    CHECK_STR(up, "alpha");
    free(a);
    free(b);
    free(up);

    char *data = NULL;
    size_t len = 0;
    CHECK_INT(ferry_archive_read_member(tgz, "sub/b.txt", &data, &len, err, sizeof(err)), 0);
    CHECK_STR(data, "beta");
    CHECK_INT(len, 4);
    free(data);
    data = NULL;
    /* A member that is a symlink is followed inside the archive. */
    CHECK_INT(ferry_archive_read_member(tgz, "./sub/up", &data, &len, err, sizeof(err)), 0);
    CHECK_STR(data, "alpha");
    free(data);
    free(tgz);
    free(dest);
    free(base);
}

static void test_extract_errors(void)
{
    char *base = new_dir("errors");
    char *dest = new_dir("errors/dest");
    char err[1024] = "";
    char *missing = path_in(base, "missing.tar.gz");
    CHECK_INT(ferry_archive_extract(missing, dest, err, sizeof(err)), FERRY_ENOENT);
    CHECK_CONTAINS(err, "missing.tar.gz");
    put_file(base, "garbage.tar.gz", "this is not an archive at all, not even close\n", 0644);
    char *garbage = path_in(base, "garbage.tar.gz");
    err[0] = '\0';
    CHECK_INT(ferry_archive_extract(garbage, dest, err, sizeof(err)), FERRY_EIO);
    CHECK(err[0] != '\0');
    char *nodest = path_in(base, "nodest");
    CHECK_INT(ferry_archive_extract(garbage, nodest, err, sizeof(err)), FERRY_ENOENT);
    char *data = NULL;
    size_t len = 0;
    CHECK(ferry_archive_read_member(garbage, "x", &data, &len, err, sizeof(err)) < 0);
    CHECK(data == NULL);
    CHECK_INT(ferry_archive_pack_dir(nodest, missing, NULL, NULL, err, sizeof(err)), FERRY_ENOENT);
    CHECK_CONTAINS(err, "nodest");
    free(missing);
    free(garbage);
    free(nodest);
    free(dest);
    free(base);
}

/* ---- packing ---- */

static void count_progress(void *arg, int64_t bytes)
{
    *(int64_t *)arg = bytes;
}

static void test_round_trip(void)
{
    char *src = new_dir("rt/src");
    put_file(src, "train.py", "print('hi')\n", 0644);
    put_file(src, "run.sh", "#!/bin/sh\necho run\n", 0755);
    put_file(src, "src/x.py", "x = 1\n", 0600);
    put_file(src, "src/deep/y.txt", "why\n", 0644);
    put_dir(src, "emptydir");
    put_link(src, "link_to_x", "src/x.py");
    put_link(src, "src/up", "../train.py");
    put_link(src, "src/here", ".");
    put_link(src, "abs_link", "/etc/passwd");     /* leaves: left out */
    put_link(src, "rel_out", "../../elsewhere");  /* leaves: left out */
    put_link(src, "src/sneaky", "here/../../.."); /* leaves through src/here */
    char *fifo = path_in(src, "fifo");
    CHECK_INT(mkfifo(fifo, 0644), 0);
    free(fifo);

    char *tgz = ferry_asprintf("%s/rt/snap.tar.gz", tmp_root);
    char err[1024] = "";
    int64_t progress = -1;
    CHECK_INT(ferry_archive_pack_dir(src, tgz, count_progress, &progress, err, sizeof(err)), 0);
    int64_t file_bytes = 12 + 19 + 6 + 4;
    CHECK_INT(progress, file_bytes);

    char *names = list_members(tgz);
    CHECK_STR(names, "d:emptydir/\n"
                     "l:link_to_x->src/x.py\n"
                     "run.sh\n"
                     "d:src/\n"
                     "d:src/deep/\n"
                     "src/deep/y.txt\n"
                     "l:src/here->.\n"
                     "l:src/up->../train.py\n"
                     "src/x.py\n"
                     "train.py\n");
    free(names);

    char *dest = new_dir("rt/dest");
    CHECK_INT(ferry_archive_extract(tgz, dest, err, sizeof(err)), 0);
    char *t = slurp(dest, "train.py"), *y = slurp(dest, "src/deep/y.txt");
    char *up = slurp(dest, "src/up"), *lx = slurp(dest, "link_to_x");
    CHECK_STR(t, "print('hi')\n");
    CHECK_STR(y, "why\n");
    CHECK_STR(up, "print('hi')\n");
    CHECK_STR(lx, "x = 1\n");
    free(t);
    free(y);
    free(up);
    free(lx);
    struct stat st;
    char *p = path_in(dest, "run.sh");
    CHECK_INT(stat(p, &st), 0);
    CHECK_INT(st.st_mode & 0777, 0755);
    free(p);
    p = path_in(dest, "src/x.py");
    CHECK_INT(stat(p, &st), 0);
    CHECK_INT(st.st_mode & 0777, 0600);
    free(p);
    p = path_in(dest, "emptydir");
    CHECK_INT(lstat(p, &st), 0);
    CHECK(S_ISDIR(st.st_mode));
    free(p);
    p = path_in(dest, "link_to_x");
    char target[PATH_MAX];
    ssize_t n = readlink(p, target, sizeof(target) - 1);
    CHECK(n > 0);
    if (n > 0) {
        target[n] = '\0';
        CHECK_STR(target, "src/x.py");
    }
    free(p);
    CHECK(!exists(dest, "abs_link"));
    CHECK(!exists(dest, "rel_out"));
    CHECK(!exists(dest, "src/sneaky"));
    CHECK(!exists(dest, "fifo"));

    /* read_member */
    char *data = NULL;
    size_t len = 0;
    CHECK_INT(ferry_archive_read_member(tgz, "train.py", &data, &len, err, sizeof(err)), 0);
    CHECK_STR(data, "print('hi')\n");
    CHECK_INT(len, 12);
    free(data);
    CHECK_INT(ferry_archive_read_member(tgz, "./src/x.py", &data, &len, err, sizeof(err)), 0);
    CHECK_STR(data, "x = 1\n");
    free(data);
    CHECK_INT(ferry_archive_read_member(tgz, "link_to_x", &data, &len, err, sizeof(err)), 0);
    CHECK_STR(data, "x = 1\n");
    free(data);
    data = NULL;
    CHECK_INT(ferry_archive_read_member(tgz, "ferry.yaml", &data, &len, err, sizeof(err)),
              FERRY_ENOENT);
    CHECK_CONTAINS(err, "ferry.yaml");
    CHECK(data == NULL);
    CHECK_INT(ferry_archive_read_member(tgz, "src", &data, &len, err, sizeof(err)), FERRY_ENOENT);

    /* Determinism: new mtimes, same bytes. */
    char sha1[65], sha2[65];
    CHECK_INT(ferry_sha256_file(tgz, sha1, NULL), 0);
    char *tp = path_in(src, "train.py");
    struct timeval tv[2] = {{1000000, 0}, {1000000, 0}};
    CHECK_INT(utimes(tp, tv), 0);
    free(tp);
    sleep(1); /* a gzip timestamp, were one written, would now differ */
    CHECK_INT(ferry_archive_pack_dir(src, tgz, NULL, NULL, err, sizeof(err)), 0);
    CHECK_INT(ferry_sha256_file(tgz, sha2, NULL), 0);
    CHECK_STR(sha1, sha2);

    /* An archive written inside the folder it packs leaves itself out. */
    char *inner = path_in(src, "inner.tar.gz");
    CHECK_INT(ferry_archive_pack_dir(src, inner, NULL, NULL, err, sizeof(err)), 0);
    CHECK_INT(ferry_archive_read_member(inner, "inner.tar.gz", &data, &len, err, sizeof(err)),
              FERRY_ENOENT);
    unlink(inner);
    free(inner);

    free(dest);
    free(tgz);
    free(src);
}

static void test_gitignore(void)
{
    char *src = new_dir("gi/src");
    put_file(src, ".gitignore",
             "# a comment\n"
             "\n"
             "*.log\n"
             "!keep.log\n"
             "build/\n"
             "dist/\n"
             "/top.txt\n"
             "docs/*.md\n"
             "**/cache\n"
             "a/**/z.bin\n"
             "logs/**\n"
             "secret?.txt\n"
             "[abc].dat\n"
             "trailing.txt   \n"
             "\\#hash.txt\n",
             0644);
    put_file(src, "sub/.gitignore", "!debug.log\r\nlocal.txt\r\n", 0644);
    const char *kept[] = {"keep.log",   "sub/debug.log", "build.txt", "dist",         "sub/top.txt",
                          "docs/a.txt", "docs/sub/b.md", "a/z.txt",   "secret10.txt", "d.dat",
                          "local.txt",  "top.txt.bak",   "logs.txt",  "#other.txt"};
    const char *dropped[] = {"x.log",           "sub/other.log", "build/out.o", "sub/build/o",
                             "sub/dist/d",      "top.txt",       "docs/a.md",   "cache/x",
                             "deep/er/cache/y", "a/z.bin",       "a/b/c/z.bin", "logs/a",
                             "logs/deeper/b",   "secret1.txt",   "a.dat",       "sub/local.txt",
                             "trailing.txt",    "#hash.txt",     ".git/config", "sub/.git"};
    for (size_t i = 0; i < sizeof(kept) / sizeof(kept[0]); i++)
        put_file(src, kept[i], "k", 0644);
    for (size_t i = 0; i < sizeof(dropped) / sizeof(dropped[0]); i++)
        put_file(src, dropped[i], "d", 0644);

    char *tgz = ferry_asprintf("%s/gi/snap.tar.gz", tmp_root);
    char err[1024] = "";
    CHECK_INT(ferry_archive_pack_dir(src, tgz, NULL, NULL, err, sizeof(err)), 0);
    char *names = list_members(tgz);
    CHECK_STR(names, "#other.txt\n"
                     ".gitignore\n"
                     "d:a/\n"
                     "d:a/b/\n"
                     "d:a/b/c/\n"
                     "a/z.txt\n"
                     "build.txt\n"
                     "d.dat\n"
                     "d:deep/\n"
                     "d:deep/er/\n"
                     "dist\n"
                     "d:docs/\n"
                     "docs/a.txt\n"
                     "d:docs/sub/\n"
                     "docs/sub/b.md\n"
                     "keep.log\n"
                     "local.txt\n"
                     "d:logs/\n"
                     "logs.txt\n"
                     "secret10.txt\n"
                     "d:sub/\n"
                     "sub/.gitignore\n"
                     "sub/debug.log\n"
                     "sub/top.txt\n"
                     "top.txt.bak\n");
    free(names);
    free(tgz);
    free(src);
}

/* .vhignore (Valohai's) and .ferryignore read like .gitignore, each in its
 * folder, together with it. */
static void test_vhignore(void)
{
    char *src = new_dir("vhi/src");
    put_file(src, ".gitignore", "*.log\n", 0644);
    put_file(src, ".vhignore", "data/\n*.ckpt\n", 0644);
    put_file(src, "sub/.ferryignore", "scratch.txt\n", 0644);
    const char *files[] = {"train.py",        "x.log",        "data/big.bin", "m.ckpt",
                           "sub/scratch.txt", "sub/keep.txt", "scratch.txt"};
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
        put_file(src, files[i], "x", 0644);
    char *tgz = ferry_asprintf("%s/vhi/snap.tar.gz", tmp_root);
    char err[1024] = "";
    CHECK_INT(ferry_archive_pack_dir(src, tgz, NULL, NULL, err, sizeof(err)), 0);
    char *names = list_members(tgz);
    CHECK_STR(names, ".gitignore\n"
                     ".vhignore\n"
                     "scratch.txt\n"
                     "d:sub/\n"
                     "sub/.ferryignore\n"
                     "sub/keep.txt\n"
                     "train.py\n");
    free(names);
    free(tgz);
    free(src);
}

/* ---- bombs: bounds and cancel ---- */

/* A gzip bomb made here: `zero_bytes` of zeros in "zeros.bin" (gzip makes
 * about a thousandth of that), then `n_small` one-byte files. */
static void write_bomb(const char *path, int64_t zero_bytes, int n_small)
{
    struct archive *a = archive_write_new();
    archive_write_set_format_pax_restricted(a);
    archive_write_add_filter_gzip(a);
    archive_write_set_filter_option(a, "gzip", "compression-level", "1");
    CHECK_INT(archive_write_open_filename(a, path), ARCHIVE_OK);
    struct archive_entry *e = archive_entry_new();
    if (zero_bytes > 0) {
        archive_entry_set_pathname(e, "zeros.bin");
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_perm(e, 0644);
        archive_entry_set_size(e, (la_int64_t)zero_bytes);
        CHECK(archive_write_header(a, e) >= ARCHIVE_WARN);
        static const char zeros[1 << 16];
        for (int64_t left = zero_bytes; left > 0;) {
            size_t n = left < (int64_t)sizeof(zeros) ? (size_t)left : sizeof(zeros);
            CHECK_INT(archive_write_data(a, zeros, n), (long long)n);
            left -= (int64_t)n;
        }
    }
    for (int i = 0; i < n_small; i++) {
        char name[32];
        snprintf(name, sizeof(name), "small%04d.txt", i);
        archive_entry_clear(e);
        archive_entry_set_pathname(e, name);
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_perm(e, 0644);
        archive_entry_set_size(e, 1);
        CHECK(archive_write_header(a, e) >= ARCHIVE_WARN);
        archive_write_data(a, "x", 1);
    }
    archive_entry_free(e);
    CHECK_INT(archive_write_close(a), ARCHIVE_OK);
    archive_write_free(a);
}

static int64_t file_size_of(const char *dir, const char *rel)
{
    char *p = path_in(dir, rel);
    struct stat st;
    int64_t size = stat(p, &st) == 0 ? (int64_t)st.st_size : -1;
    free(p);
    return size;
}

/* What a file takes on disk: a member cut short keeps its header's size as
 * a hole (libarchive truncates it up to that when the entry is closed). */
static int64_t disk_use_of(const char *dir, const char *rel)
{
    char *p = path_in(dir, rel);
    struct stat st;
    int64_t used = stat(p, &st) == 0 ? (int64_t)st.st_blocks * 512 : -1;
    free(p);
    return used;
}

/* The bytes are counted as they are written, not taken from the header:
 * extraction stops at the bound, and no more than that reaches the disk. */
static void test_bomb_size_bound(const char *label)
{
    char *base = new_dir(label);
    char *tgz = path_in(base, "bomb.tar.gz");
    char *dest = path_in(base, "dest");
    CHECK_INT(ferry_file_mkdirs(dest, 0755), 0);
    write_bomb(tgz, (int64_t)48 << 20, 0);
    CHECK(file_size_of(base, "bomb.tar.gz") < (1 << 20)); /* a bomb: tiny packed */
    ferry_extract_opts o = {.max_bytes = (int64_t)4 << 20};
    char err[1024] = "";
    CHECK_INT(ferry_archive_extract_opts(tgz, dest, &o, err, sizeof(err)), FERRY_ETOOBIG);
    CHECK_CONTAINS(err, "zeros.bin");
    CHECK_CONTAINS(err, "more than 4194304 bytes");
    CHECK(disk_use_of(dest, "zeros.bin") <= ((int64_t)4 << 20) + 65536);
    /* Within a bound that fits, the same archive extracts. */
    CHECK_INT(ferry_rmtree(dest), 0);
    CHECK_INT(ferry_file_mkdirs(dest, 0755), 0);
    o.max_bytes = (int64_t)48 << 20;
    CHECK_INT(ferry_archive_extract_opts(tgz, dest, &o, err, sizeof(err)), 0);
    CHECK_INT(file_size_of(dest, "zeros.bin"), (int64_t)48 << 20);
    free(dest);
    free(tgz);
    free(base);
}

static void test_bomb_member_bound(const char *label)
{
    char *base = new_dir(label);
    char *tgz = path_in(base, "many.tar.gz");
    char *dest = path_in(base, "dest");
    CHECK_INT(ferry_file_mkdirs(dest, 0755), 0);
    write_bomb(tgz, 0, 50);
    ferry_extract_opts o = {.max_members = 10};
    char err[1024] = "";
    CHECK_INT(ferry_archive_extract_opts(tgz, dest, &o, err, sizeof(err)), FERRY_ETOOBIG);
    CHECK_CONTAINS(err, "more than 10 members");
    CHECK_CONTAINS(err, "small0010.txt");
    CHECK_INT(count_entries(dest), 10);
    o.max_members = 50; /* exactly as many: fine */
    CHECK_INT(ferry_rmtree(dest), 0);
    CHECK_INT(ferry_file_mkdirs(dest, 0755), 0);
    CHECK_INT(ferry_archive_extract_opts(tgz, dest, &o, err, sizeof(err)), 0);
    CHECK_INT(count_entries(dest), 50);
    free(dest);
    free(tgz);
    free(base);
}

typedef struct canceler {
    atomic_int flag;
    char *watch; /* sets the flag once this file has grown past 1 MiB */
} canceler;

static void *cancel_when_growing(void *arg)
{
    canceler *c = arg;
    for (int i = 0; i < 20000; i++) { /* 20 s at most */
        struct stat st;
        if (stat(c->watch, &st) == 0 && st.st_size > (1 << 20))
            break;
        usleep(1000);
    }
    atomic_store(&c->flag, 1);
    return NULL;
}

/* A cancel set from another thread ends the extraction mid-member. */
static void test_bomb_cancel(const char *label)
{
    char *base = new_dir(label);
    char *tgz = path_in(base, "bomb.tar.gz");
    char *dest = path_in(base, "dest");
    CHECK_INT(ferry_file_mkdirs(dest, 0755), 0);
    const int64_t total = (int64_t)256 << 20;
    write_bomb(tgz, total, 5);
    canceler c = {.watch = path_in(dest, "zeros.bin")};
    atomic_init(&c.flag, 0);
    ferry_extract_opts o = {.cancel = &c.flag};
    pthread_t t;
    CHECK_INT(pthread_create(&t, NULL, cancel_when_growing, &c), 0);
    char err[1024] = "";
    CHECK_INT(ferry_archive_extract_opts(tgz, dest, &o, err, sizeof(err)), FERRY_ECANCELED);
    pthread_join(t, NULL);
    CHECK_CONTAINS(err, "canceled");
    CHECK(disk_use_of(dest, "zeros.bin") < total / 2);
    CHECK(!exists(dest, "small0000.txt"));
    /* Set before the start: nothing is written. */
    CHECK_INT(ferry_rmtree(dest), 0);
    CHECK_INT(ferry_file_mkdirs(dest, 0755), 0);
    CHECK_INT(ferry_archive_extract_opts(tgz, dest, &o, err, sizeof(err)), FERRY_ECANCELED);
    CHECK_INT(count_entries(dest), 0);
    free(c.watch);
    free(dest);
    free(tgz);
    free(base);
}

/* Where unshare() is denied (seccomp profiles of container runtimes), the
 * extraction runs in a child process: the same bounds hold there, and a
 * cancel kills it. Run in a child of the test with unshare() denied. */
static void test_bomb_forked(void)
{
    pid_t pid = fork();
    if (pid == 0) {
        struct sock_filter filter[] = {
            BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
            BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_unshare, 0, 1),
            BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
            BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        };
        struct sock_fprog prog = {.len = sizeof(filter) / sizeof(filter[0]), .filter = filter};
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
            prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0) {
            perror("seccomp");
            _exit(2);
        }
        CHECK(unshare(CLONE_FS) != 0); /* the fallback is what runs */
        test_bomb_size_bound("forked-bomb-size");
        test_bomb_member_bound("forked-bomb-members");
        test_bomb_cancel("forked-bomb-cancel");
        _exit(ferry_test_failures ? 1 : 0);
    }
    CHECK(pid > 0);
    int status = 0;
    CHECK_INT(waitpid(pid, &status, 0), pid);
    CHECK(WIFEXITED(status));
    CHECK_INT(WEXITSTATUS(status), 0);
}

int main(void)
{
    umask(022); /* extraction applies the umask to the archived modes */
    const char *tmp = getenv("TMPDIR");
    snprintf(tmp_root, sizeof(tmp_root), "%s/ferry-test-archive-XXXXXX",
             tmp && tmp[0] ? tmp : "/tmp");
    if (mkdtemp(tmp_root) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    test_round_trip();
    test_gitignore();
    test_vhignore();
    test_extract_benign_dot_prefix();
    test_extract_errors();
    test_refuses_dotdot();
    test_refuses_absolute();
    test_refuses_symlink_out();
    test_links_may_leave();
    test_refuses_hardlink_and_devices();
    test_bomb_size_bound("bomb-size");
    test_bomb_member_bound("bomb-members");
    test_bomb_cancel("bomb-cancel");
    test_bomb_forked();
    if (ferry_test_failures == 0)
        ferry_rmtree(tmp_root);
    else
        fprintf(stderr, "left %s for inspection\n", tmp_root);
    TEST_MAIN_END();
}
