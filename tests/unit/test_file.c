/* The SDK's whole-file read (sdk/src/file.c), which the gcp plugin reads
 * its service-account key with: the text, a file that is too large, one
 * that is not there. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test.h"

#include "ferry/error.h"
#include "ferry/file.h"

static char *make_file(size_t n)
{
    static char path[64];
    snprintf(path, sizeof(path), "/tmp/ferry-test-file-XXXXXX");
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    char block[1000];
    for (size_t i = 0; i < sizeof(block); i++)
        block[i] = (char)('a' + i % 26);
    for (size_t done = 0; done < n;) {
        size_t k = n - done < sizeof(block) ? n - done : sizeof(block);
        CHECK(write(fd, block, k) == (ssize_t)k);
        done += k;
    }
    close(fd);
    return path;
}

int main(void)
{
    char *text;
    size_t len = 1;
    char *path = make_file(0);
    CHECK_INT(ferry_file_read(path, 100, &text, &len), 0);
    CHECK_STR(text, "");
    CHECK_INT(len, 0);
    free(text);
    unlink(path);

    /* Past the first buffers, up to the limit exactly. */
    path = make_file(100000);
    CHECK_INT(ferry_file_read(path, 100000, &text, &len), 0);
    CHECK_INT(len, 100000);
    CHECK_INT(strlen(text), 100000);
    CHECK(strncmp(text, "abcdefghijklmnopqrstuvwxyzabcd", 30) == 0);
    CHECK(text[99999] == (char)('a' + 99999 % 1000 % 26));
    free(text);
    CHECK_INT(ferry_file_read(path, 99999, &text, NULL), FERRY_ETOOBIG);
    CHECK(text == NULL);
    CHECK_INT(ferry_file_read(path, 10, &text, NULL), FERRY_ETOOBIG);
    unlink(path);

    CHECK_INT(ferry_file_read("/nonexistent/key.json", 100, &text, &len), FERRY_EIO);
    CHECK_INT(errno, ENOENT);
    CHECK(text == NULL);
    CHECK_INT(ferry_file_read("/", 100, &text, &len), FERRY_EIO); /* a directory */
    CHECK(text == NULL);
    TEST_MAIN_END();
}
