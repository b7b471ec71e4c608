/* The reads behind live outputs (agent/outputs.c): a file is taken only
 * when it is read-only and was not written a moment ago, and a file read
 * is known to be the same one afterwards only while its size, mtime and
 * mode are unchanged. */
#include "test.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent.h"
#include "util.h"

static char dir[] = "/tmp/ferry-test-live-read.XXXXXX";

static char *path_of(const char *rel)
{
    return ferry_asprintf("%s/%s", dir, rel);
}

static void write_file(const char *rel, const char *text, mode_t mode, int age_s)
{
    char *p = path_of(rel);
    unlink(p);
    CHECK_INT(ferry_write_file(p, text, strlen(text)), 0);
    chmod(p, mode);
    if (age_s > 0) { /* as if written `age_s` ago */
        struct timespec t[2];
        clock_gettime(CLOCK_REALTIME, &t[0]);
        t[0].tv_sec -= age_s;
        t[1] = t[0];
        CHECK_INT(utimensat(AT_FDCWD, p, t, 0), 0);
    }
    free(p);
}

static void test_read_still(void)
{
    output_file f;
    write_file("w.bin", "abc", 0644, 5);
    CHECK_INT(outputs_read_still(dir, "w.bin", 100, &f), FERRY_EPERM); /* writable */
    write_file("fresh.bin", "abc", 0444, 0);
    CHECK_INT(outputs_read_still(dir, "fresh.bin", 100000, &f), FERRY_EAGAIN); /* just written */
    write_file("ckpt.bin", "abc", 0444, 5);
    CHECK_INT(outputs_read_still(dir, "ckpt.bin", 100, &f), 0);
    CHECK_STR(f.name, "ckpt.bin");
    CHECK_INT(f.size, 3);
    CHECK_STR(f.sha256, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    CHECK(outputs_unchanged(dir, &f));
    /* Made writable again, or replaced: no longer the file that was read. */
    char *p = path_of("ckpt.bin");
    chmod(p, 0644);
    CHECK(!outputs_unchanged(dir, &f));
    chmod(p, 0444);
    CHECK(outputs_unchanged(dir, &f));
    write_file("ckpt.bin", "abd", 0444, 5);
    CHECK(!outputs_unchanged(dir, &f));
    free(p);
    free(f.name);
    /* Never a metadata file, a symlink or an unsafe name. */
    write_file("ckpt.bin.metadata.json", "{}", 0444, 5);
    CHECK_INT(outputs_read_still(dir, "ckpt.bin.metadata.json", 100, &f), FERRY_EINVAL);
    p = path_of("link.bin");
    CHECK_INT(symlink("ckpt.bin", p), 0);
    CHECK(outputs_read_still(dir, "link.bin", 100, &f) < 0);
    free(p);
    CHECK_INT(outputs_read_still(dir, "../x", 100, &f), FERRY_EINVAL);
}

int main(void)
{
    if (mkdtemp(dir) == NULL)
        return 1;
    test_read_still();
    ferry_rmtree(dir);
    TEST_MAIN_END();
}
