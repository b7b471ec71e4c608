/* What the step-file tests share (test_pipeline_def, test_task_def,
 * test_sweep): parsing a valohai-yaml example or a buffer that must parse,
 * and comparing JSON with what it should be. */
#ifndef FERRY_TEST_STEPFILE_FIXTURE_H
#define FERRY_TEST_STEPFILE_FIXTURE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ferry/error.h>

#include "stepfile.h"
#include "test.h"

/* A valohai-yaml example of tests/vectors, which must parse; NULL (a
 * failed check) when it does not, with the messages in `err`. */
static inline ferry_stepfile *stepfile_fixture_vector(const char *name, char *err, size_t cap)
{
    const char *dir = getenv("FERRY_VECTORS_DIR");
    if (!dir) {
        fprintf(stderr, "FERRY_VECTORS_DIR is not set (CTest sets it)\n");
        exit(2);
    }
    char path[4096];
    snprintf(path, sizeof(path), "%s/valohai-yaml/examples/%s", dir, name);
    ferry_stepfile *sf = NULL;
    int rc = ferry_stepfile_parse_file(path, &sf, err, cap);
    if (rc != 0)
        fprintf(stderr, "%s: %s\n", name, err);
    CHECK_INT(rc, 0);
    return sf;
}

/* A valohai.yaml in memory, which must parse. */
static inline ferry_stepfile *stepfile_fixture_buffer(const char *yaml, char *err, size_t cap)
{
    ferry_stepfile *sf = NULL;
    int rc = ferry_stepfile_parse_buffer("valohai.yaml", yaml, strlen(yaml), &sf, err, cap);
    if (rc != 0)
        fprintf(stderr, "%s\n", err);
    CHECK_INT(rc, 0);
    return sf;
}

/* `head` then `tail` (steps, then what uses them) parsed as a valohai.yaml:
 * the file, or NULL with the messages in `err`; *rc is the parse's code. */
static inline ferry_stepfile *stepfile_fixture_join(const char *head, const char *tail, int *rc,
                                                    char *err, size_t cap)
{
    char *yaml = malloc(strlen(head) + strlen(tail) + 1);
    strcpy(yaml, head);
    strcat(yaml, tail);
    ferry_stepfile *sf = NULL;
    err[0] = '\0';
    *rc = ferry_stepfile_parse_buffer("valohai.yaml", yaml, strlen(yaml), &sf, err, cap);
    free(yaml);
    return sf;
}

/* `head` then `tail` is refused, with `want` among the messages. */
static inline void stepfile_fixture_refused(const char *head, const char *tail, const char *want,
                                            char *err, size_t cap)
{
    int rc;
    ferry_stepfile *sf = stepfile_fixture_join(head, tail, &rc, err, cap);
    CHECK_INT(rc, FERRY_EINVAL);
    CHECK(sf == NULL);
    CHECK_CONTAINS(err, want);
    ferry_stepfile_free(sf);
}

/* The flow of `kind` ("pipeline" or "task") named `name`, with the
 * definition of its kind only; NULL (a failed check) when there is none. */
static inline const ferry_flow *stepfile_fixture_flow(const ferry_stepfile *sf, const char *kind,
                                                      const char *name)
{
    int task = !strcmp(kind, "task");
    const ferry_flow *fl =
        task ? ferry_stepfile_find_task(sf, name) : ferry_stepfile_find_pipeline(sf, name);
    CHECK(fl != NULL);
    if (!fl)
        return NULL;
    CHECK_STR(fl->kind, kind);
    CHECK(task ? fl->task != NULL && fl->pipeline == NULL
               : fl->pipeline != NULL && fl->task == NULL);
    return fl;
}

/* `got` is the JSON `want` (json_equal: 1, an integer, is not 1.0, a real);
 * `line` is the caller's, for the message. */
static inline void stepfile_fixture_json(const json_t *got, const char *want, int line)
{
    json_t *w = json_loads(want, JSON_DECODE_ANY, NULL);
    if (!w) {
        fprintf(stderr, "line %d: bad expected JSON: %s\n", line, want);
        ferry_test_failures++;
        return;
    }
    if (!got || !json_equal((json_t *)got, w)) {
        char *g = got ? json_dumps(got, JSON_ENCODE_ANY | JSON_SORT_KEYS) : NULL;
        fprintf(stderr, "line %d: JSON %s, expected %s\n", line, g ? g : "(null)", want);
        free(g);
        ferry_test_failures++;
    }
    json_decref(w);
}
#define CHECK_JSON(got, want) stepfile_fixture_json(got, want, __LINE__)

#endif
