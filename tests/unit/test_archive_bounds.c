/* lib/tarball.c: the bounds on reading an untrusted archive
 * (ferry_archive_read_member_limited, ferry_archive_check): bytes expanded,
 * members and compression ratio, measured as the archive is read. The
 * archives are written here, gzip'd bombs of a few tens of MiB. */
#include "test.h"

#include "ferry/error.h"
#include "tarball.h"
#include "util.h"

#include <archive.h>
#include <archive_entry.h>

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char tmp_root[PATH_MAX];

static void add_member(struct archive *a, const char *name, const char *data, int64_t size)
{
    struct archive_entry *e = archive_entry_new();
    archive_entry_set_pathname(e, name);
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0644);
    archive_entry_set_size(e, size);
    CHECK_INT(archive_write_header(a, e), ARCHIVE_OK);
    static char zeros[65536];
    for (int64_t off = 0; off < size;) {
        size_t n = size - off < (int64_t)sizeof(zeros) ? (size_t)(size - off) : sizeof(zeros);
        CHECK(archive_write_data(a, data ? data + off : zeros, n) == (la_ssize_t)n);
        off += (int64_t)n;
    }
    archive_entry_free(e);
}

static struct archive *open_tgz(const char *path)
{
    struct archive *a = archive_write_new();
    archive_write_add_filter_gzip(a);
    archive_write_set_format_pax_restricted(a);
    CHECK_INT(archive_write_open_filename(a, path), ARCHIVE_OK);
    return a;
}

/* ferry.yaml, `zeros_mb` MiB of zeros, then ferry.yaml again (the one that wins). */
static char *write_bomb(const char *name, int zeros_mb)
{
    char *path = ferry_asprintf("%s/%s", tmp_root, name);
    struct archive *a = open_tgz(path);
    add_member(a, "ferry.yaml", "first", 5);
    add_member(a, "zeros.bin", NULL, (int64_t)zeros_mb << 20);
    add_member(a, "ferry.yaml", "second", 6);
    archive_write_close(a);
    archive_write_free(a);
    return path;
}

static void test_bytes_bound(void)
{
    char *bomb = write_bomb("bytes.tgz", 40);
    char *data = NULL, err[512];
    size_t len = 0;
    /* Without a ratio bound, a big enough byte bound reads the later member. */
    ferry_archive_limits lim = {.max_bytes = (int64_t)64 << 20, .max_members = 10};
    CHECK_INT(
        ferry_archive_read_member_limited(bomb, "ferry.yaml", &lim, &data, &len, err, sizeof(err)),
        0);
    CHECK_STR(data, "second");
    CHECK_INT(lim.broken, FERRY_ARCHIVE_BROKE_NONE);
    free(data);
    data = NULL;
    /* 8 MiB: stopped in the middle of the zeros, the member never returned. */
    lim.max_bytes = (int64_t)8 << 20;
    CHECK_INT(
        ferry_archive_read_member_limited(bomb, "ferry.yaml", &lim, &data, &len, err, sizeof(err)),
        FERRY_ETOOBIG);
    CHECK(data == NULL);
    CHECK_INT(lim.broken, FERRY_ARCHIVE_BROKE_BYTES);
    CHECK_CONTAINS(err, "more than 8 MiB");
    /* A member that is not there is no way around the bound either. */
    CHECK_INT(
        ferry_archive_read_member_limited(bomb, "absent", &lim, &data, &len, err, sizeof(err)),
        FERRY_ETOOBIG);
    free(bomb);
}

static void test_ratio_bound(void)
{
    char *bomb = write_bomb("ratio.tgz", 40);
    char *data = NULL, err[512];
    size_t len = 0;
    /* The defaults: 40 MiB of zeros compress about 1000 times. */
    CHECK_INT(
        ferry_archive_read_member_limited(bomb, "ferry.yaml", NULL, &data, &len, err, sizeof(err)),
        FERRY_ETOOBIG);
    CHECK_CONTAINS(err, "times its compressed size");
    ferry_archive_limits lim = ferry_archive_default_limits;
    CHECK_INT(
        ferry_archive_read_member_limited(bomb, "ferry.yaml", &lim, &data, &len, err, sizeof(err)),
        FERRY_ETOOBIG);
    CHECK_INT(lim.broken, FERRY_ARCHIVE_BROKE_RATIO);
    /* The old entry point keeps the default bounds. */
    CHECK_INT(ferry_archive_read_member(bomb, "ferry.yaml", &data, &len, err, sizeof(err)),
              FERRY_ETOOBIG);
    /* Below the floor an archive compresses as well as it likes. */
    char *small = write_bomb("small.tgz", 8);
    CHECK_INT(ferry_archive_read_member(small, "ferry.yaml", &data, &len, err, sizeof(err)), 0);
    CHECK_STR(data, "second");
    free(data);
    free(small);
    free(bomb);
}

static void test_members_bound(void)
{
    char *path = ferry_asprintf("%s/many.tgz", tmp_root);
    struct archive *a = open_tgz(path);
    for (int i = 0; i < 50; i++) {
        char name[32];
        snprintf(name, sizeof(name), "f%02d", i);
        add_member(a, name, "x", 1);
    }
    add_member(a, "ferry.yaml", "last", 4);
    archive_write_close(a);
    archive_write_free(a);
    char *data = NULL, err[512];
    size_t len = 0;
    ferry_archive_limits lim = ferry_archive_default_limits;
    lim.max_members = 20;
    CHECK_INT(
        ferry_archive_read_member_limited(path, "ferry.yaml", &lim, &data, &len, err, sizeof(err)),
        FERRY_ETOOBIG);
    CHECK_INT(lim.broken, FERRY_ARCHIVE_BROKE_MEMBERS);
    CHECK_CONTAINS(err, "more than 20 members");
    lim.max_members = 51;
    CHECK_INT(
        ferry_archive_read_member_limited(path, "ferry.yaml", &lim, &data, &len, err, sizeof(err)),
        0);
    CHECK_STR(data, "last");
    free(data);
    free(path);
}

/* The upload's check: the same bounds on an archive in memory. */
static void test_check_in_memory(void)
{
    char *bomb = write_bomb("mem.tgz", 40);
    size_t len = 0;
    char *buf = ferry_read_file(bomb, &len);
    CHECK(buf != NULL);
    char err[512];
    ferry_archive_limits lim = ferry_archive_default_limits;
    CHECK_INT(ferry_archive_check(buf, len, &lim, err, sizeof(err)), FERRY_ETOOBIG);
    CHECK_INT(lim.broken, FERRY_ARCHIVE_BROKE_RATIO);
    lim = (ferry_archive_limits){.max_bytes = (int64_t)20 << 20};
    CHECK_INT(ferry_archive_check(buf, len, &lim, err, sizeof(err)), FERRY_ETOOBIG);
    CHECK_INT(lim.broken, FERRY_ARCHIVE_BROKE_BYTES);
    lim = (ferry_archive_limits){.max_bytes = (int64_t)64 << 20};
    CHECK_INT(ferry_archive_check(buf, len, &lim, err, sizeof(err)), 0);
    free(buf);
    CHECK(ferry_archive_check("not a tarball", 13, NULL, err, sizeof(err)) < 0);
    CHECK(ferry_archive_check("not a tarball", 13, NULL, err, sizeof(err)) != FERRY_ETOOBIG);
    free(bomb);
}

int main(void)
{
    snprintf(tmp_root, sizeof(tmp_root), "/tmp/ferry-test-bounds.XXXXXX");
    if (mkdtemp(tmp_root) == NULL)
        return 1;
    test_bytes_bound();
    test_ratio_bound();
    test_members_bound();
    test_check_in_memory();
    char *rm = ferry_asprintf("rm -rf '%s'", tmp_root);
    if (system(rm) != 0)
        fprintf(stderr, "could not remove %s\n", tmp_root);
    free(rm);
    TEST_MAIN_END();
}
