/* core/git/ on real repositories made with the git CLI (file:// URLs):
 * fetch and its changes, resolve, snapshots (determinism, modes,
 * symlinks, bounds, LFS pointers, submodules), errors that name the URL
 * and never the credentials, and the projects of the config file. */
#include "test.h"
#include "git_fixture.h" /* R, sh(), sh_out() */

#include <archive.h>
#include <archive_entry.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon_fixture.h"
#include "git.h"

/* --- waiting for the callbacks --- */

typedef struct answer {
    int done, rc;
    json_t *result;
    ferry_git_commit c;
    char err[1024];
    char sha256[65];
    void *data;
    size_t len;
    int64_t lfs;
    char stepfile_name[16]; /* "" for none */
    size_t stepfile_len;
} answer;

static void on_fetched(ferryd *d, int rc, json_t *result, const char *err, void *arg)
{
    (void)d;
    answer *a = arg;
    a->done = 1;
    a->rc = rc;
    a->result = result ? json_incref(result) : NULL;
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

static void on_built(ferryd *d, int rc, const ferry_git_snapshot *snap, const char *err, void *arg)
{
    (void)d;
    answer *a = arg;
    a->done = 1;
    a->rc = rc;
    if (rc == 0) {
        a->lfs = snap->lfs_files;
        snprintf(a->sha256, sizeof(a->sha256), "%s", snap->sha256);
        /* The built file is ours: read, checked against what was said of it, removed. */
        size_t n = 0;
        a->data = ferry_read_file(snap->path, &n);
        char sha[65] = "";
        if (a->data)
            ferry_sha256_hex(a->data, n, sha);
        CHECK(a->data != NULL && n == snap->len);
        CHECK_STR(sha, snap->sha256);
        CHECK_CONTAINS(snap->path, "/tmp/git-snapshot.");
        unlink(snap->path);
        a->len = n;
        snprintf(a->stepfile_name, sizeof(a->stepfile_name), "%s",
                 snap->stepfile_name ? snap->stepfile_name : "");
        a->stepfile_len = snap->stepfile_len;
    }
    snprintf(a->err, sizeof(a->err), "%s", err ? err : "");
}

static void wait_for(ferryd *d, answer *a)
{
    while (!a->done)
        uv_run(d->loop, UV_RUN_ONCE);
}

static void answer_clear(answer *a)
{
    if (a->result)
        json_decref(a->result);
    ferry_git_commit_clear(&a->c);
    free(a->data);
    memset(a, 0, sizeof(*a));
}

static answer fetch(ferryd *d, const char *project)
{
    answer a = {0};
    CHECK_INT(ferry_git_fetch(d, ferry_git_project(d, project), on_fetched, &a), 0);
    wait_for(d, &a);
    return a;
}

static answer resolve(ferryd *d, const char *project, const char *ref)
{
    answer a = {0};
    CHECK_INT(ferry_git_resolve(d, ferry_git_project(d, project), ref, on_resolved, &a), 0);
    wait_for(d, &a);
    return a;
}

static answer build(ferryd *d, const char *project, const char *ref)
{
    answer r = resolve(d, project, ref);
    CHECK_INT(r.rc, 0);
    answer a = {0};
    if (r.rc == 0) {
        CHECK_INT(ferry_git_build_snapshot(d, ferry_git_project(d, project), &r.c, on_built, &a),
                  0);
        wait_for(d, &a);
    }
    answer_clear(&r);
    return a;
}

/* The change of `ref` in a fetch's result, or NULL. */
static json_t *change_of(json_t *result, const char *ref)
{
    json_t *changes = json_object_get(result, "changes"), *c;
    size_t i;
    json_array_foreach(changes, i, c)
    {
        if (strcmp(json_string_value(json_object_get(c, "ref")), ref) == 0)
            return c;
    }
    return NULL;
}

/* --- reading a snapshot back --- */

typedef struct member {
    char path[512];
    int type, perm;
    char link[512];
} member;

static int read_tar(const void *data, size_t len, member *out, int max)
{
    struct archive *a = archive_read_new();
    archive_read_support_filter_gzip(a);
    archive_read_support_format_tar(a);
    int n = 0;
    if (archive_read_open_memory(a, data, len) == ARCHIVE_OK) {
        struct archive_entry *e;
        while (n < max && archive_read_next_header(a, &e) == ARCHIVE_OK) {
            snprintf(out[n].path, sizeof(out[n].path), "%s", archive_entry_pathname(e));
            out[n].type = (int)archive_entry_filetype(e);
            out[n].perm = (int)archive_entry_perm(e);
            const char *l = archive_entry_symlink(e);
            snprintf(out[n].link, sizeof(out[n].link), "%s", l ? l : "");
            CHECK_INT(archive_entry_uid(e), 0);
            n++;
        }
    }
    archive_read_free(a);
    return n;
}

static const member *find_member(const member *m, int n, const char *path)
{
    for (int i = 0; i < n; i++)
        if (strcmp(m[i].path, path) == 0)
            return &m[i];
    return NULL;
}

/* --- the repositories --- */

static void make_repos(void)
{
    CHECK_INT(sh("git init -q -b main work && cd work && echo hello > a.txt && mkdir -p bin && "
                 "printf '#!/bin/sh\\n' > bin/run.sh && chmod 755 bin/run.sh && "
                 "ln -s a.txt link && ln -s ../../etc/passwd escape && "
                 "printf 'version https://git-lfs.github.com/spec/v1\\noid sha256:00\\nsize 1\\n' "
                 "> model.bin && git add -A && git commit -qm 'first commit' && "
                 "git clone -q --bare . ../origin.git && git remote add origin ../origin.git"),
              0);
    /* A submodule, and a superproject that uses it by a relative URL. */
    CHECK_INT(sh("git init -q -b main libsrc && cd libsrc && echo lib > lib.c && git add -A && "
                 "git commit -qm lib && git clone -q --bare . ../lib.git"),
              0);
    CHECK_INT(
        sh("git init -q -b main super && cd super && echo top > top.txt && git add top.txt && "
           "git -c protocol.file.allow=always submodule add -q ../lib.git vendor/lib && "
           "git commit -qm super && git clone -q --bare . ../super.git"),
        0);
}

static void write_conf(daemon_fixture *f)
{
    FILE *c = fopen(f->conf, "w");
    fprintf(c,
            "projects = (\n"
            "  { name = \"demo\"; repository = \"file://%s/origin.git\"; },\n"
            "  { name = \"super\"; repository = \"file://%s/super.git\"; submodules = true; },\n"
            "  { name = \"flat\"; repository = \"file://%s/super.git\"; },\n"
            "  { name = \"gone\"; repository = \"file://%s/nothing-here.git\"; },\n"
            "  { name = \"secret\"; repository = \"https://bob:hunter2@127.0.0.1:1/x.git\"; },\n"
            "  { name = \"adhoc\"; }\n"
            ");\n",
            R, R, R, R);
    fclose(c);
}

static void test_fetch_and_resolve(ferryd *d)
{
    answer a = fetch(d, "demo");
    CHECK_INT(a.rc, 0);
    char mirror[PATH_MAX + 32];
    snprintf(mirror, sizeof(mirror), "%s/git/demo.git/HEAD", d->data_dir);
    CHECK(access(mirror, F_OK) == 0);
    char *first = sh_out("git -C work rev-parse HEAD");
    json_t *c = change_of(a.result, "main");
    CHECK(c != NULL);
    if (c) {
        CHECK(json_is_null(json_object_get(c, "old")));
        CHECK_STR(json_string_value(json_object_get(c, "new")), first);
    }
    answer_clear(&a);

    /* A new commit and a tag: main old -> new, the tag new. */
    CHECK_INT(sh("cd work && echo more >> a.txt && git commit -qam 'second\n\nbody' && "
                 "git tag -a v1.0 -m v1 && git push -q origin main v1.0"),
              0);
    char *second = sh_out("git -C work rev-parse HEAD");
    a = fetch(d, "demo");
    CHECK_INT(a.rc, 0);
    c = change_of(a.result, "main");
    CHECK(c != NULL);
    if (c) {
        CHECK_STR(json_string_value(json_object_get(c, "old")), first);
        CHECK_STR(json_string_value(json_object_get(c, "new")), second);
    }
    c = change_of(a.result, "v1.0");
    CHECK(c != NULL);
    if (c)
        CHECK_STR(json_string_value(json_object_get(c, "new")), second); /* peeled */
    answer_clear(&a);

    /* Nothing new: no changes. */
    a = fetch(d, "demo");
    CHECK_INT(a.rc, 0);
    CHECK_INT(json_array_size(json_object_get(a.result, "changes")), 0);
    answer_clear(&a);

    /* By full sha, abbreviated, branch, tag, the default. */
    a = resolve(d, "demo", first);
    CHECK_INT(a.rc, 0);
    CHECK_STR(a.c.sha, first);
    CHECK_STR(a.c.message, "first commit");
    CHECK_STR(a.c.author, "Ada <ada@x>");
    CHECK_STR(a.c.ref, first);
    CHECK(a.c.date > 0);
    answer_clear(&a);
    char abbrev[8];
    snprintf(abbrev, sizeof(abbrev), "%.7s", second);
    a = resolve(d, "demo", abbrev);
    CHECK_INT(a.rc, 0);
    CHECK_STR(a.c.sha, second);
    CHECK_STR(a.c.message, "second");
    answer_clear(&a);
    a = resolve(d, "demo", "main");
    CHECK_STR(a.c.sha, second);
    answer_clear(&a);
    a = resolve(d, "demo", NULL);
    CHECK_STR(a.c.sha, second);
    CHECK_STR(a.c.ref, "main");
    answer_clear(&a);
    a = resolve(d, "demo", "v1.0");
    CHECK_INT(a.rc, 0);
    CHECK_STR(a.c.sha, second);
    answer_clear(&a);
    a = resolve(d, "demo", "no-such-branch");
    CHECK_INT(a.rc, FERRY_ENOENT);
    CHECK_CONTAINS(a.err, "project 'demo': no commit, branch or tag 'no-such-branch' in file://");
    answer_clear(&a);

    /* Pushed after the last fetch: resolving it fetches. */
    CHECK_INT(sh("cd work && git checkout -q -b later && echo l > later.txt && git add -A && "
                 "git commit -qm later && git push -q origin later"),
              0);
    char *later = sh_out("git -C work rev-parse HEAD");
    a = resolve(d, "demo", later);
    CHECK_INT(a.rc, 0);
    CHECK_STR(a.c.sha, later);
    answer_clear(&a);
    a = resolve(d, "demo", "later");
    CHECK_STR(a.c.sha, later);
    answer_clear(&a);

    /* The project's JSON: fetched, no error, no credentials. */
    json_t *pj = ferry_git_project_json(d, ferry_git_project(d, "demo"));
    CHECK(json_is_string(json_object_get(pj, "fetched_at")));
    CHECK(json_is_null(json_object_get(pj, "last_fetch_error")));
    CHECK_STR(json_string_value(json_object_get(pj, "default_ref")), "main");
    json_decref(pj);
    free(first);
    free(second);
    free(later);
}

static void test_ambiguous(ferryd *d)
{
    /* Commits until two share their first 4 hex digits (a few hundred at
     * most: 65536 prefixes), made with plumbing so that it stays fast. */
    CHECK_INT(sh("cd work && git checkout -q main && t=$(git write-tree) && p=$(git rev-parse "
                 "HEAD) && : > ../seen && i=0 && while :; do "
                 "c=$(echo \"amb $i\" | git commit-tree $t -p $p); "
                 "k=$(echo $c | cut -c1-4); if grep -q \"^$k\" ../seen; then "
                 "echo $k > ../prefix; git update-ref refs/heads/amb1 $c; "
                 "git update-ref refs/heads/amb2 $(grep \"^$k\" ../seen | head -n 1); break; fi; "
                 "echo $c >> ../seen; i=$((i+1)); done && git push -q origin amb1 amb2"),
              0);
    char *prefix = sh_out("cat prefix");
    answer a = fetch(d, "demo");
    answer_clear(&a);
    a = resolve(d, "demo", prefix);
    CHECK_INT(a.rc, FERRY_EEXIST);
    CHECK_CONTAINS(a.err, "is ambiguous: ");
    CHECK_CONTAINS(a.err, prefix);
    CHECK_CONTAINS(a.err, ", ");
    answer_clear(&a);
    free(prefix);
}

static void test_snapshot(ferryd *d)
{
    answer a = build(d, "demo", "main");
    CHECK_INT(a.rc, 0);
    CHECK_INT(a.lfs, 1);
    CHECK_STR(a.stepfile_name, ""); /* the demo has no step file */
    CHECK(ferry_is_sha256_hex(a.sha256));
    answer b = build(d, "demo", "main");
    CHECK_STR(b.sha256, a.sha256);
    CHECK(a.len == b.len && memcmp(a.data, b.data, a.len) == 0);
    member m[64];
    int n = read_tar(a.data, a.len, m, 64);
    const member *x = find_member(m, n, "bin/run.sh");
    CHECK(x && x->type == AE_IFREG && x->perm == 0755);
    x = find_member(m, n, "a.txt");
    CHECK(x && x->type == AE_IFREG && x->perm == 0644);
    x = find_member(m, n, "bin/");
    CHECK(x && x->type == AE_IFDIR && x->perm == 0755);
    x = find_member(m, n, "link");
    CHECK(x && x->type == AE_IFLNK);
    if (x)
        CHECK_STR(x->link, "a.txt");
    x = find_member(m, n, "escape");
    CHECK(x && x->type == AE_IFLNK);
    if (x)
        CHECK_STR(x->link, "../../etc/passwd");
    CHECK(find_member(m, n, ".git") == NULL);
    answer_clear(&a);
    answer_clear(&b);

    /* The step file comes with the snapshot: ferry.yaml before valohai.yaml,
     * none when one of them is a symlink (the archive's reader follows it). */
    static const struct {
        const char *branch, *change, *name;
        size_t len;
    } steps[] = {
        {"steps1", "printf -- '---\\n' > valohai.yaml", "valohai.yaml", 4},
        {"steps2", "printf -- '---\\n# ferry\\n' > ferry.yaml", "ferry.yaml", 12},
        {"steps3", "rm ferry.yaml && ln -s valohai.yaml ferry.yaml", "", 0},
    };
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        CHECK_INT(sh("cd work && git checkout -q -B %s && %s && git add -A && git commit -qm %s && "
                     "git push -q origin %s",
                     steps[i].branch, steps[i].change, steps[i].branch, steps[i].branch),
                  0);
        a = build(d, "demo", steps[i].branch);
        CHECK_INT(a.rc, 0);
        CHECK_STR(a.stepfile_name, steps[i].name);
        CHECK(a.stepfile_len == steps[i].len);
        answer_clear(&a);
    }
    CHECK_INT(sh("cd work && git checkout -q main"), 0);

    /* Past max_snapshot_mb: a 2 MiB file against 1 MiB. */
    CHECK_INT(sh("cd work && git checkout -q -b big main && head -c 2200000 /dev/urandom > big && "
                 "git add big && git commit -qm big && git push -q origin big"),
              0);
    int saved = d->cfg.max_snapshot_mb;
    d->cfg.max_snapshot_mb = 1;
    a = build(d, "demo", "big");
    CHECK_INT(a.rc, FERRY_ETOOBIG);
    CHECK_CONTAINS(a.err, "is larger than max_snapshot_mb = 1");
    CHECK_CONTAINS(a.err, "commit ");
    answer_clear(&a);
    d->cfg.max_snapshot_mb = saved;
}

static void test_submodules(ferryd *d)
{
    answer a = build(d, "super", "main");
    CHECK_INT(a.rc, 0);
    member m[64];
    int n = read_tar(a.data, a.len, m, 64);
    CHECK(find_member(m, n, "top.txt") != NULL);
    CHECK(find_member(m, n, "vendor/lib/lib.c") != NULL);
    answer_clear(&a);
    char mirror[PATH_MAX + 64];
    snprintf(mirror, sizeof(mirror), "%s/git/super.modules/vendor_lib.git/HEAD", d->data_dir);
    CHECK(access(mirror, F_OK) == 0);
    a = build(d, "flat", "main");
    CHECK_INT(a.rc, 0);
    n = read_tar(a.data, a.len, m, 64);
    CHECK(find_member(m, n, "top.txt") != NULL);
    CHECK(find_member(m, n, "vendor/lib/lib.c") == NULL);
    CHECK(find_member(m, n, "vendor/lib") == NULL);
    answer_clear(&a);
}

static void test_errors(ferryd *d)
{
    answer a = fetch(d, "gone");
    CHECK_INT(a.rc, FERRY_ECONN);
    CHECK_CONTAINS(a.err, "project 'gone': cannot fetch file://");
    CHECK_CONTAINS(a.err, "nothing-here.git");
    answer_clear(&a);
    json_t *pj = ferry_git_project_json(d, ferry_git_project(d, "gone"));
    CHECK(json_is_string(json_object_get(pj, "last_fetch_error")));
    json_decref(pj);

    a = fetch(d, "secret");
    CHECK(a.rc == FERRY_ECONN || a.rc == FERRY_EAUTH);
    CHECK_CONTAINS(a.err, "https://127.0.0.1:1/x.git");
    CHECK(strstr(a.err, "hunter2") == NULL);
    CHECK(strstr(a.err, "bob") == NULL);
    answer_clear(&a);
    pj = ferry_git_project_json(d, ferry_git_project(d, "secret"));
    char *text = json_dumps(pj, 0);
    CHECK(strstr(text, "hunter2") == NULL);
    CHECK_CONTAINS(text, "\"repository\": \"https://127.0.0.1:1/x.git\"");
    free(text);
    json_decref(pj);

    CHECK_INT(ferry_git_fetch(d, ferry_git_project(d, "adhoc"), on_fetched, NULL), FERRY_ENOTSUP);
    char out[256];
    CHECK_STR(ferry_git_public_url("https://u:p@h/x.git", out, sizeof(out)), "https://h/x.git");
    CHECK_STR(ferry_git_public_url("https://tok@h/x.git", out, sizeof(out)), "https://h/x.git");
    CHECK_STR(ferry_git_public_url("ssh://git@h/x.git", out, sizeof(out)), "ssh://git@h/x.git");
    CHECK_STR(ferry_git_public_url("git@h:x.git", out, sizeof(out)), "git@h:x.git");
}

static void test_broken_mirror(ferryd *d)
{
    /* A mirror left half-made (kill -9): no HEAD, a stale lock. */
    char path[PATH_MAX + 64];
    snprintf(path, sizeof(path), "%s/git/demo.git/HEAD", d->data_dir);
    unlink(path);
    answer a = fetch(d, "demo");
    CHECK_INT(a.rc, 0);
    answer_clear(&a);
    a = resolve(d, "demo", "main");
    CHECK_INT(a.rc, 0);
    answer_clear(&a);
}

/* --- the config file --- */

static int config_err(const char *text, char *err, size_t cap)
{
    char path[PATH_MAX + 16];
    snprintf(path, sizeof(path), "%s/t.conf", R);
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
    ferry_config c;
    ferry_config_init(&c);
    err[0] = '\0';
    int rc = ferry_config_load(&c, path, err, cap);
    if (rc == 0)
        rc = ferry_config_finish(&c, err, cap);
    ferry_config_free(&c);
    return rc;
}

static void test_config(void)
{
    char err[1024];
    CHECK_INT(
        config_err("projects = ( { name = \"m\"; repositry = \"x\"; } );\n", err, sizeof(err)),
        FERRY_ECONFIG);
    CHECK_CONTAINS(err, "t.conf:1: setting 'repositry': unknown setting of a project");
    CHECK_INT(
        config_err("projects = ( { name = \"m\"; },\n { name = \"m\"; } );\n", err, sizeof(err)),
        FERRY_ECONFIG);
    CHECK_CONTAINS(err, ":2: setting 'name': project named twice");
    CHECK_INT(config_err("projects = ( { name = \"a/b\"; } );\n", err, sizeof(err)), FERRY_ECONFIG);
    CHECK_CONTAINS(err, "setting 'name': a project's name is 1 to 100 of");
    CHECK_INT(config_err("projects = ( { name = \"m\";\n ssh_key = \"/no/such/key\"; } );\n", err,
                         sizeof(err)),
              FERRY_ECONFIG);
    CHECK_CONTAINS(err,
                   "t.conf: project 'm' (line 1): setting 'ssh_key': cannot read /no/such/key");
    CHECK_INT(config_err("projects = ( { repository = \"x\"; } );\n", err, sizeof(err)),
              FERRY_ECONFIG);
    CHECK_CONTAINS(err, "setting 'name': is missing");
    /* A relative key file is made absolute; default_ref defaults to main. */
    char key[PATH_MAX + 8], text[PATH_MAX * 2];
    snprintf(key, sizeof(key), "%s/key", R);
    CHECK_INT(sh("echo k > key"), 0);
    char cwd[PATH_MAX];
    CHECK(getcwd(cwd, sizeof(cwd)) != NULL);
    CHECK_INT(chdir(R), 0);
    snprintf(text, sizeof(text),
             "projects = ( { name = \"m\"; repository = \"git@h:x.git\"; ssh_key = \"key\"; "
             "submodules = true; } );\n");
    char path[PATH_MAX + 16];
    snprintf(path, sizeof(path), "%s/ok.conf", R);
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
    ferry_config c;
    ferry_config_init(&c);
    CHECK_INT(ferry_config_load(&c, path, err, sizeof(err)), 0);
    CHECK_INT(ferry_config_finish(&c, err, sizeof(err)), 0);
    CHECK_INT(c.n_projects, 1);
    if (c.n_projects == 1) {
        CHECK_STR(c.projects[0].ssh_key, key);
        CHECK_STR(c.projects[0].default_ref, "main");
        CHECK_INT(c.projects[0].submodules, 1);
    }
    ferry_config_free(&c);
    CHECK_INT(chdir(cwd), 0);
}

int main(void)
{
    snprintf(R, sizeof(R), "/tmp/ferry-gitrepos.XXXXXX");
    if (mkdtemp(R) == NULL)
        return 1;
    test_config();
    make_repos();
    ferryd d;
    memset(&d, 0, sizeof(d));
    daemon_fixture f;
    if (daemon_fixture_dir(&f, &d, "git") == 0) {
        write_conf(&f);
        if (daemon_fixture_open(&f, &d, 1, NULL) == 0) {
            char err[512];
            CHECK_INT(ferry_git_init(&d, err, sizeof(err)), 0);
            test_fetch_and_resolve(&d);
            test_ambiguous(&d);
            test_snapshot(&d);
            test_submodules(&d);
            test_errors(&d);
            test_broken_mirror(&d);
            ferry_git_close(&d);
            CHECK(d.git == NULL);
        }
        /* The fixture's close without the scheduler, which this test never starts. */
        ferry_lifecycle_close(&d);
        ferry_db_close(&d);
        uv_run(d.loop, UV_RUN_NOWAIT);
        ferry_map_free(&d.active);
        ferry_plugin_registry_free(&d.plugins);
        ferry_config_free(&d.cfg);
        ferry_rmtree(f.dir);
    }
    ferry_rmtree(R);
    if (ferry_test_failures)
        fprintf(stderr, "%d check(s) failed\n", ferry_test_failures);
    return ferry_test_failures ? 1 : 0;
}
