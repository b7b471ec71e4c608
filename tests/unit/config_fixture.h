/* A ferryd config from text (core/config.c), for the tests of its settings
 * (test_config, test_step_keys). */
#ifndef FERRY_TEST_CONFIG_FIXTURE_H
#define FERRY_TEST_CONFIG_FIXTURE_H

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "config.h"

/* Loads `text` as a config file and finishes it: the first failing step's
 * code, err holding its message. */
static inline int config_fixture_load(const char *text, ferry_config *c, char *err, size_t cap)
{
    char path[] = "/tmp/ferry-test-config-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0)
        return -1;
    FILE *f = fdopen(fd, "w");
    fputs(text, f);
    fclose(f);
    ferry_config_init(c);
    err[0] = '\0';
    int rc = ferry_config_load(c, path, err, cap);
    if (rc == 0)
        rc = ferry_config_finish(c, err, cap);
    unlink(path);
    return rc;
}

#endif
