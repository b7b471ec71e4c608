/* What runs, a commit or the working copy as it is, chosen once for every
 * command that creates work (ferry run, ferry pipeline run).
 *
 * A commit: --commit REF, or HEAD of a git working copy one of whose
 * remotes is a project's repository (as `vh exec run` does); ferryd builds
 * the snapshot from the commit, nothing is uploaded. A snapshot (ad hoc):
 * --adhoc, or anywhere else; DIR is packed as it is and uploaded. */
#include "source.h"

#include "tarball.h"
#include "util.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Below this an upload is over before a progress bar would be read. */
#define FERRY__PROGRESS_MIN_BYTES (1024 * 1024)

int ferry_cli_is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int ferry_cli_code_option(ferry_cli_code *code, int c, const char *arg, int argc, char **argv)
{
    if (c == FERRY_CLI_OPT_COMMIT) {
        code->commit = arg;
        return 1;
    }
    if (c != FERRY_CLI_OPT_ADHOC)
        return 0;
    code->adhoc = 1;
    if (arg != NULL)
        code->dir = arg;
    else if (optind < argc && argv[optind][0] != '-' && ferry_cli_is_dir(argv[optind]))
        code->dir = argv[optind++];
    return 1;
}

int ferry_cli_code_check(const char *cmd, const ferry_cli_code *code)
{
    if (code->commit != NULL && code->adhoc)
        return ferry_cli_usage_error(cmd, "--commit and --adhoc exclude each other: a commit "
                                          "or the working copy?");
    if (code->commit != NULL && code->commit[0] == '\0')
        return ferry_cli_usage_error(cmd, "--commit wants a sha, branch or tag");
    if (!ferry_cli_is_dir(code->dir))
        return ferry_cli_usage_error(cmd, "%s is not a folder", code->dir);
    return FERRY_EXIT_OK;
}

/* ---- which it is ---- */

/* --project, else $FERRY_PROJECT, else NULL. */
static const char *ferry__named_project(const ferry_cli_code *code)
{
    if (code->project != NULL && code->project[0] != '\0')
        return code->project;
    const char *env = getenv("FERRY_PROJECT");
    return env != NULL && env[0] != '\0' ? env : NULL;
}

/* DIR's folder name: the project of an ad-hoc run that names none. */
static char *ferry__folder_name(const char *dir)
{
    char abs[PATH_MAX];
    if (realpath(dir, abs) == NULL)
        return ferry_strdup("default");
    const char *base = strrchr(abs, '/');
    return ferry_strdup(base && base[1] ? base + 1 : "default");
}

/* The first of ferryd's projects (only `named`, when not NULL) whose
 * repository one of wt's remotes names: its name and repository, malloc'd,
 * or both left NULL. A ferryd that has no /v1/projects (404) has none.
 * Returns an exit status, the failure printed. */
static int ferry__linked_project(const ferry_cli *cli, const ferry_worktree *wt, const char *named,
                                 char **name, char **repository)
{
    *name = *repository = NULL;
    if (ferry_worktree_n_remotes(wt) == 0)
        return FERRY_EXIT_OK;
    ferry_cli_request req = {.method = "GET", .path = "/v1/projects", .timeout_s = 60};
    ferry_cli_response res;
    ferry_cli_http(cli, &req, &res);
    int rc = FERRY_EXIT_OK;
    json_t *answer = NULL;
    if (res.transport_ok && res.status == 200)
        answer = json_loadb(res.body, res.body_len, 0, NULL);
    else if (!(res.transport_ok && res.status == 404))
        rc = ferry_cli_report(cli, &res);
    ferry_cli_response_free(&res);
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(answer, "projects"), i, p)
    {
        const char *url = json_string_value(json_object_get(p, "repository"));
        if (url == NULL || (named != NULL && strcmp(named, ferry_cli_str(p, "name")) != 0))
            continue;
        for (size_t k = 0; k < ferry_worktree_n_remotes(wt) && *name == NULL; k++)
            if (ferry_url_same_repository(url, ferry_worktree_remote(wt, k))) {
                *name = ferry_strdup(ferry_cli_str(p, "name"));
                *repository = ferry_strdup(url);
            }
        if (*name != NULL)
            break;
    }
    json_decref(answer);
    return rc;
}

/* --commit REF: its project is the one named, else the one the working
 * copy is linked to, else the folder's name. */
static int ferry__choose_commit(const ferry_cli *cli, const ferry_cli_code *code,
                                ferry_cli_source *src)
{
    src->ref = code->commit;
    if (src->wt != NULL && ferry_worktree_find_commit(src->wt, code->commit, src->local) != 0)
        src->local[0] = '\0';
    const char *named = ferry__named_project(code);
    if (named != NULL) {
        src->project = ferry_strdup(named);
        return FERRY_EXIT_OK;
    }
    int rc = FERRY_EXIT_OK;
    if (src->wt != NULL)
        rc = ferry__linked_project(cli, src->wt, NULL, &src->project, &src->repository);
    if (rc == FERRY_EXIT_OK && src->project == NULL)
        src->project = ferry__folder_name(code->dir);
    return rc;
}

int ferry_cli_source_choose(const ferry_cli *cli, const ferry_cli_code *code, ferry_cli_source *src)
{
    if (ferry_worktree_open(code->dir, &src->wt) != 0)
        src->wt = NULL;
    if (code->commit != NULL)
        return ferry__choose_commit(cli, code, src);
    const char *named = ferry__named_project(code);
    const char *head = src->wt != NULL ? ferry_worktree_head(src->wt) : NULL;
    if (!code->adhoc && head != NULL) {
        int rc = ferry__linked_project(cli, src->wt, named, &src->project, &src->repository);
        if (rc != FERRY_EXIT_OK)
            return rc;
        if (src->project != NULL) {
            src->ref = head;
            snprintf(src->local, sizeof(src->local), "%s", head);
            src->head = 1;
            return FERRY_EXIT_OK;
        }
    }
    src->project = named != NULL ? ferry_strdup(named) : ferry__folder_name(code->dir);
    return FERRY_EXIT_OK;
}

void ferry_cli_source_free(ferry_cli_source *src)
{
    ferry_worktree_free(src->wt);
    free(src->project);
    free(src->repository);
    memset(src, 0, sizeof(*src));
}

/* ---- its step file ---- */

int ferry_cli_load_stepfile(const char *dir, ferry_stepfile **sf)
{
    static const char *const names[] = {"ferry.yaml", "valohai.yaml"};
    for (size_t i = 0; i < 2; i++) {
        char *path = ferry_asprintf("%s/%s", dir, names[i]);
        if (access(path, F_OK) != 0) {
            free(path);
            continue;
        }
        char err[1024] = "";
        int rc = ferry_stepfile_parse_file(path, sf, err, sizeof(err));
        free(path);
        if (rc == 0)
            return FERRY_EXIT_OK;
        fprintf(stderr, "ferry: %s\n", err);
        return FERRY_EXIT_USAGE;
    }
    fprintf(stderr, "ferry: no ferry.yaml or valohai.yaml in %s\n", dir);
    return FERRY_EXIT_USAGE;
}

/* A step file's errors, each "NAME:LINE: ..." as "5d6e7f8:NAME:LINE: ...":
 * the file of that commit, not the one in the folder. */
static void ferry__print_commit_errors(const char *sha, const char *name, const char *err)
{
    size_t name_n = strlen(name);
    for (const char *line = err; *line != '\0';) {
        size_t n = strcspn(line, "\n");
        if (strncmp(line, name, name_n) == 0 && line[name_n] == ':')
            fprintf(stderr, "ferry: %.7s:%.*s\n", sha, (int)n, line);
        else
            fprintf(stderr, "ferry: %.*s\n", (int)n, line);
        line += n;
        if (*line == '\n')
            line++;
    }
}

/* The step file of commit SHA of the working copy, as ferryd will read it. */
static int ferry__load_commit_stepfile(ferry_worktree *wt, const char *sha, ferry_stepfile **sf)
{
    static const char *const names[] = {"ferry.yaml", "valohai.yaml"};
    for (size_t i = 0; i < 2; i++) {
        char *buf = NULL;
        size_t len = 0;
        int got = ferry_worktree_read_file(wt, sha, names[i], &buf, &len);
        if (got == FERRY_ENOENT)
            continue;
        if (got != 0) {
            fprintf(stderr, "ferry: cannot read %s of commit %.7s: %s\n", names[i], sha,
                    ferry_strerror(got));
            return FERRY_EXIT_FAILED;
        }
        char err[1024] = "";
        int rc = ferry_stepfile_parse_buffer(names[i], buf, len, sf, err, sizeof(err));
        free(buf);
        if (rc == 0)
            return FERRY_EXIT_OK;
        ferry__print_commit_errors(sha, names[i], err);
        return FERRY_EXIT_USAGE;
    }
    fprintf(stderr, "ferry: no ferry.yaml or valohai.yaml in commit %.7s\n", sha);
    return FERRY_EXIT_USAGE;
}

int ferry_cli_source_stepfile(const ferry_cli_source *src, const char *dir, ferry_stepfile **sf)
{
    *sf = NULL;
    if (src->ref == NULL)
        return ferry_cli_load_stepfile(dir, sf);
    if (src->local[0] == '\0')
        return FERRY_EXIT_OK; /* a commit this working copy does not have: ferryd reads it */
    return ferry__load_commit_stepfile(src->wt, src->local, sf);
}

void ferry_cli_source_file_name(const ferry_cli_source *src, const ferry_stepfile *sf, char *buf,
                                size_t cap)
{
    const char *base = strrchr(sf->path, '/');
    base = base ? base + 1 : sf->path;
    if (src->ref != NULL)
        snprintf(buf, cap, "%.7s:%s", src->local, base);
    else
        snprintf(buf, cap, "%s", base);
}

/* ---- snapshot ---- */

static int ferry__pack(const char *dir, char **tmp_path)
{
    const char *tmp = getenv("TMPDIR");
    char *path = ferry_asprintf("%s/ferry-snapshot-XXXXXX.tar.gz", tmp && tmp[0] ? tmp : "/tmp");
    int fd = mkstemps(path, 7);
    if (fd < 0) {
        fprintf(stderr, "ferry: cannot create a temporary file %s: %s\n", path, strerror(errno));
        free(path);
        return FERRY_EXIT_FAILED;
    }
    close(fd);
    *tmp_path = path;
    char err[1024] = "";
    if (ferry_archive_pack_dir(dir, path, NULL, NULL, err, sizeof(err)) != 0) {
        fprintf(stderr, "ferry: cannot pack %s: %s\n", dir, err);
        return FERRY_EXIT_FAILED;
    }
    return FERRY_EXIT_OK;
}

typedef struct ferry__bar {
    uint64_t last_ms;
    int drawn;
} ferry__bar;

static void ferry__draw_bar(void *arg, int64_t sent, int64_t total)
{
    ferry__bar *bar = arg;
    uint64_t now = ferry_mono_ms();
    if (sent < total && now - bar->last_ms < 100)
        return;
    bar->last_ms = now;
    enum { WIDTH = 30 };
    int filled = total > 0 ? (int)(sent * WIDTH / total) : 0;
    char hashes[WIDTH + 1];
    for (int i = 0; i < WIDTH; i++)
        hashes[i] = i < filled ? '#' : ' ';
    hashes[WIDTH] = '\0';
    char a[32], b[32];
    ferry_cli_format_size(sent, a, sizeof(a));
    ferry_cli_format_size(total, b, sizeof(b));
    fprintf(stderr, "\rUploading snapshot [%s] %3d%%  %s / %s ", hashes,
            total > 0 ? (int)(sent * 100 / total) : 0, a, b);
    bar->drawn = 1;
}

/* HEAD first: an unchanged directory packs to the same bytes, so a rerun
 * usually uploads nothing. */
static int ferry__upload(const ferry_cli *cli, const char *path, const char *sha, int64_t size)
{
    char *head_path = ferry_asprintf("/v1/snapshots/%s", sha);
    ferry_cli_request head = {.method = "HEAD", .path = head_path, .timeout_s = 60};
    ferry_cli_response res;
    ferry_cli_http(cli, &head, &res);
    free(head_path);
    int rc = FERRY_EXIT_OK, have = res.transport_ok && res.status == 200;
    if (!have && !(res.transport_ok && res.status == 404))
        rc = ferry_cli_report(cli, &res);
    ferry_cli_response_free(&res);
    if (have || rc != FERRY_EXIT_OK)
        return rc;

    ferry__bar bar = {0, 0};
    int show = size > FERRY__PROGRESS_MIN_BYTES && isatty(STDERR_FILENO);
    ferry_cli_request post = {.method = "POST",
                              .path = "/v1/snapshots",
                              .upload_path = path,
                              .upload_type = "application/gzip",
                              .progress = show ? ferry__draw_bar : NULL,
                              .progress_arg = &bar};
    ferry_cli_http(cli, &post, &res);
    if (bar.drawn)
        fputc('\n', stderr);
    if (!res.transport_ok || res.status < 200 || res.status >= 300) {
        rc = ferry_cli_report(cli, &res);
    } else {
        json_t *answer = json_loadb(res.body, res.body_len, 0, NULL);
        const char *got = ferry_cli_str(answer, "snapshot");
        if (strcmp(got, sha) != 0) {
            fprintf(stderr, "ferry: ferryd stored the snapshot as '%s', but it is %s\n", got, sha);
            rc = FERRY_EXIT_FAILED;
        }
        json_decref(answer);
    }
    ferry_cli_response_free(&res);
    return rc;
}

static int ferry__send_snapshot(const ferry_cli *cli, const char *dir, char *sha)
{
    char *path = NULL;
    int rc = ferry__pack(dir, &path);
    int64_t size = 0;
    if (rc == FERRY_EXIT_OK && ferry_sha256_file(path, sha, &size) != 0) {
        fprintf(stderr, "ferry: cannot read back %s\n", path);
        rc = FERRY_EXIT_FAILED;
    }
    if (rc == FERRY_EXIT_OK)
        rc = ferry__upload(cli, path, sha, size);
    if (path != NULL)
        unlink(path);
    free(path);
    return rc;
}

/* What the working copy holds that HEAD does not, said once: it does not
 * run. */
static void ferry__note_changes(const ferry_cli_source *src)
{
    if (!src->head)
        return;
    int n = ferry_worktree_changed(src->wt);
    if (n > 0)
        fprintf(stderr,
                "%d file%s changed since %.7s %s not included; --adhoc runs the working "
                "copy\n",
                n, n == 1 ? "" : "s", src->ref, n == 1 ? "is" : "are");
}

int ferry_cli_source_send(const ferry_cli *cli, const ferry_cli_code *code,
                          const ferry_cli_source *src, char *sha)
{
    sha[0] = '\0';
    ferry__note_changes(src);
    return src->ref == NULL ? ferry__send_snapshot(cli, code->dir, sha) : FERRY_EXIT_OK;
}

/* ---- the creation ---- */

void ferry_cli_source_set_code(const ferry_cli_source *src, const char *sha, json_t *body)
{
    if (src->ref != NULL)
        json_object_set_new(body, "commit", json_string(src->ref));
    else
        json_object_set_new(body, "snapshot", json_string(sha));
}

/* The answer that means "ferryd has no such commit, even after a fetch". */
static int ferry__no_such_commit(const ferry_cli_response *res)
{
    if (!res->transport_ok || res->status != 404)
        return 0;
    json_t *answer = json_loadb(res->body, res->body_len, 0, NULL);
    int is = strcmp(ferry_cli_str(answer, "field"), "commit") == 0;
    json_decref(answer);
    return is;
}

int ferry_cli_source_create(const ferry_cli *cli, const ferry_cli_source *src, const char *path,
                            json_t *body, json_t **out)
{
    ferry_cli_request req = {.method = "POST", .path = path, .json = body, .timeout_s = 60};
    ferry_cli_response res;
    ferry_cli_http(cli, &req, &res);
    int rc = FERRY_EXIT_OK;
    if (src->head && ferry__no_such_commit(&res)) {
        /* The user did not name the commit: say what to do about it. */
        fprintf(stderr, "ferry: commit %.7s is not in %s: push it, or run with --adhoc\n", src->ref,
                src->repository);
        rc = FERRY_EXIT_NOT_PUSHED;
    } else if (!res.transport_ok || res.status < 200 || res.status >= 300) {
        rc = ferry_cli_report(cli, &res);
    } else if ((*out = json_loadb(res.body, res.body_len, 0, NULL)) == NULL) {
        fprintf(stderr, "ferry: ferryd's answer to POST %s is not JSON\n", path);
        rc = FERRY_EXIT_FAILED;
    }
    ferry_cli_response_free(&res);
    return rc;
}
