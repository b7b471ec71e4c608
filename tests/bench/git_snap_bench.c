/* The snapshot build of a commit alone (core/git/gitsnap.c), for
 * tests/bench/git.py while ferryd's API does not take "commit" yet: a
 * ferryd state of just the config and the loop, one fetch of PROJECT into
 * DATA_DIR/git/, REF resolved, then the snapshot of that commit built RUNS
 * times through ferry_git_build_snapshot (the thread pool hop included; no
 * HTTP, no store write). Not a test.
 *
 *   git_snap_bench CONFIG DATA_DIR PROJECT REF RUNS OUT.tar.gz
 *
 * Prints {"build_ms": [...], "bytes": N, "sha256": "..."} on stdout; the
 * last build's .tar.gz is written to OUT.tar.gz. */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "config.h"
#include "daemon.h"
#include "git.h"

typedef struct answer {
    int done, rc;
    uint64_t at; /* uv_hrtime() when the build's answer came */
    ferry_git_commit c;
    char err[1024];
    char sha256[65];
    size_t len;
    const char *out;
} answer;

static void on_fetched(ferryd *d, int rc, json_t *result, const char *err, void *arg)
{
    (void)d;
    (void)result;
    answer *a = arg;
    a->done = 1;
    a->rc = rc;
    snprintf(a->err, sizeof(a->err), "%s", err ? err : "");
}

static void on_resolved(ferryd *d, int rc, const ferry_git_commit *c, const char *err, void *arg)
{
    (void)d;
    answer *a = arg;
    a->done = 1;
    a->rc = rc;
    if (c)
        ferry_git_commit_copy(&a->c, c);
    snprintf(a->err, sizeof(a->err), "%s", err ? err : "");
}

/* The build's time ends here, when the loop has its answer; writing the
 * file afterwards is not timed (ferryd's store write is not either). */
static void on_built(ferryd *d, int rc, const ferry_git_snapshot *snap, const char *err, void *arg)
{
    (void)d;
    answer *a = arg;
    a->at = uv_hrtime();
    a->done = 1;
    a->rc = rc;
    snprintf(a->err, sizeof(a->err), "%s", err ? err : "");
    if (rc != 0)
        return;
    snprintf(a->sha256, sizeof(a->sha256), "%s", snap->sha256);
    a->len = snap->len;
    if (rename(snap->path, a->out) != 0) { /* the built file is ours */
        a->rc = -1;
        snprintf(a->err, sizeof(a->err), "cannot move %s to %s", snap->path, a->out);
        unlink(snap->path);
    }
}

static int wait_ok(ferryd *d, answer *a, const char *what)
{
    while (!a->done)
        uv_run(d->loop, UV_RUN_ONCE);
    if (a->rc != 0)
        fprintf(stderr, "git_snap_bench: %s: %d %s\n", what, a->rc, a->err);
    return a->rc;
}

int main(int argc, char **argv)
{
    if (argc != 7) {
        fprintf(stderr, "usage: git_snap_bench CONFIG DATA_DIR PROJECT REF RUNS OUT.tar.gz\n");
        return 2;
    }
    static ferryd d; /* zeroed: no database, no plugins, no scheduler */
    char err[1024] = "";
    d.loop = uv_default_loop();
    snprintf(d.data_dir, sizeof(d.data_dir), "%s", argv[2]);
    ferry_config_init(&d.cfg);
    if (ferry_config_load(&d.cfg, argv[1], err, sizeof(err)) != 0 ||
        ferry_config_finish(&d.cfg, err, sizeof(err)) != 0 ||
        ferry_git_init(&d, err, sizeof(err)) != 0) {
        fprintf(stderr, "git_snap_bench: %s\n", err);
        return 1;
    }
    const ferry_project *p = ferry_git_project(&d, argv[3]);
    answer f = {0}, r = {0};
    int rc = p ? 0 : -1;
    if (p == NULL)
        fprintf(stderr, "git_snap_bench: no project %s\n", argv[3]);
    if (rc == 0 && (rc = ferry_git_fetch(&d, p, on_fetched, &f)) == 0)
        rc = wait_ok(&d, &f, "fetch");
    if (rc == 0 && (rc = ferry_git_resolve(&d, p, argv[4], on_resolved, &r)) == 0)
        rc = wait_ok(&d, &r, "resolve");
    int runs = atoi(argv[5]);
    json_t *times = json_array();
    answer b = {0};
    for (int i = 0; rc == 0 && i < runs; i++) {
        memset(&b, 0, sizeof(b));
        b.out = argv[6];
        uint64_t t0 = uv_hrtime();
        rc = ferry_git_build_snapshot(&d, p, &r.c, on_built, &b);
        if (rc == 0)
            rc = wait_ok(&d, &b, "build");
        if (rc == 0)
            json_array_append_new(times, json_real((double)(b.at - t0) / 1e6));
    }
    if (rc == 0) {
        json_t *o = json_pack("{s:o, s:I, s:s, s:s}", "build_ms", times, "bytes", (json_int_t)b.len,
                              "sha256", b.sha256, "commit", r.c.sha);
        char *s = json_dumps(o, JSON_INDENT(2));
        printf("%s\n", s);
        free(s);
        json_decref(o);
    } else {
        json_decref(times);
    }
    ferry_git_commit_clear(&r.c);
    ferry_git_close(&d);
    ferry_config_free(&d.cfg);
    return rc == 0 ? 0 : 1;
}
