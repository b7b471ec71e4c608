/* local-storage: a store plugin that keeps objects as files under one
 * directory (setting `path`). Key "a/b.bin" is the file <path>/a/b.bin.
 *
 * All file I/O runs on the host's worker pool; the loop thread only hands
 * jobs out and completes ops. Puts are atomic: the object is written to a
 * temporary file in its final folder, flushed, then renamed over the key, so
 * a reader sees the old object or the whole new one, never a part.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "ferry/buf.h"
#include "ferry/ferry.h"
#include "ferry/file.h"

/* Names starting with this are half-written puts: never keys, never listed. */
#define LS_TMP_PREFIX ".ferry-tmp-"

typedef struct ls_state {
    ferry_plugin_ctx *ctx;
    const ferry_host_api *host;
    char *root; /* absolute, no trailing '/' */
} ls_state;

typedef enum { LS_PUT, LS_GET, LS_HEAD, LS_LIST, LS_REMOVE } ls_kind;

/* One operation on its way through the worker pool. */
typedef struct ls_job {
    ls_state *st;
    ferry_op *op;
    ls_kind kind;
    char *key;    /* or the list prefix */
    char *path;   /* local file (put/get) */
    char *object; /* <root>/<key> */
    /* Filled by the worker. */
    int status;
    int64_t size;
    char *text;
    ferry_error_detail err;
} ls_job;

/* ------------------------------------------------------------------------ */
/* Helpers                                                                  */

/* Keys are checked by the host already; this is defence in depth, as a bad
 * key here would read or write outside the store. */
static int ls_key_is_safe(const char *key)
{
    if (key == NULL || key[0] == '\0' || key[0] == '/' || strchr(key, '\\') != NULL)
        return 0;
    for (const char *p = key; *p;) {
        size_t n = strcspn(p, "/");
        if (n == 0 || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
            return 0;
        if (strncmp(p, LS_TMP_PREFIX, strlen(LS_TMP_PREFIX)) == 0)
            return 0;
        p += n;
        if (*p == '/')
            p++;
    }
    return 1;
}

static int ls_errno_code(int e)
{
    switch (e) {
    case ENOENT:
    case ENOTDIR:
        return FERRY_ENOENT;
    case EACCES:
    case EPERM:
    case EROFS:
        return FERRY_EPERM;
    case ENOMEM:
        return FERRY_ENOMEM;
    case ENAMETOOLONG:
    case EFBIG:
        return FERRY_ETOOBIG;
    case EEXIST:
        return FERRY_EEXIST;
    default:
        return FERRY_EIO;
    }
}

/* Fills the job's detail from errno; the provider code is the errno name so
 * that logs say "ENOSPC" rather than only the localised text. */
static int ls_fail(ls_job *job, int e, const char *what, const char *path)
{
    char name[32];
    snprintf(name, sizeof(name), "errno %d", e);
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 32))
    if (strerrorname_np(e) != NULL)
        snprintf(name, sizeof(name), "%s", strerrorname_np(e));
#endif
    job->status = ferry_error_set(&job->err, ls_errno_code(e), e == EINTR || e == EAGAIN, name,
                                  "%s %s: %s", what, path, strerror(e));
    return job->status;
}

/* mkdir -p of the folder that holds `file`. */
static int ls_mkdirs_parent(const char *file)
{
    char dir[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s", file);
    char *slash = strrchr(dir, '/');
    if (slash == NULL || slash == dir)
        return 0;
    *slash = '\0';
    return ferry_file_mkdirs(dir, 0755);
}

/* Copies all of `in` to `out`; returns the byte count or -1 with errno. */
static int64_t ls_copy_fd(int in, int out)
{
    char buf[1 << 16];
    int64_t total = 0;
    for (;;) {
        ssize_t n = read(in, buf, sizeof(buf));
        if (n == 0)
            return total;
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        for (ssize_t off = 0; off < n;) {
            ssize_t w = write(out, buf + off, (size_t)(n - off));
            if (w < 0) {
                if (errno == EINTR)
                    continue;
                return -1;
            }
            off += w;
        }
        total += n;
    }
}

/* Makes a rename durable: the folder entry itself must reach the disk. */
static void ls_fsync_dir_of(const char *file)
{
    char dir[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s", file);
    char *slash = strrchr(dir, '/');
    if (slash == NULL)
        return;
    *slash = '\0';
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

/* ------------------------------------------------------------------------ */
/* Work, on the worker pool                                                 */

static int ls_write_temp(ls_job *job, int in, char *tmp, size_t tmp_cap)
{
    const char *slash = strrchr(job->object, '/');
    snprintf(tmp, tmp_cap, "%.*s/" LS_TMP_PREFIX "XXXXXX", (int)(slash - job->object), job->object);
    int out = mkostemp(tmp, O_CLOEXEC);
    if (out < 0)
        return ls_fail(job, errno, "create temporary file for", job->object);
    int64_t n = ls_copy_fd(in, out);
    if (n < 0 || fsync(out) != 0 || fchmod(out, 0644) != 0) {
        ls_fail(job, errno, "write", tmp);
        close(out);
        unlink(tmp);
        return job->status;
    }
    if (close(out) != 0) {
        ls_fail(job, errno, "write", tmp);
        unlink(tmp);
        return job->status;
    }
    job->size = n;
    return 0;
}

static void ls_do_put(ls_job *job)
{
    int in = open(job->path, O_RDONLY | O_CLOEXEC);
    if (in < 0) {
        ls_fail(job, errno, "open", job->path);
        return;
    }
    char tmp[PATH_MAX];
    if (ls_mkdirs_parent(job->object) != 0)
        ls_fail(job, errno, "create folder for", job->object);
    else if (ls_write_temp(job, in, tmp, sizeof(tmp)) == 0) {
        if (rename(tmp, job->object) != 0) {
            ls_fail(job, errno, "rename into", job->object);
            unlink(tmp);
        } else {
            ls_fsync_dir_of(job->object);
        }
    }
    close(in);
}

static void ls_do_get(ls_job *job)
{
    int in = open(job->object, O_RDONLY | O_CLOEXEC);
    if (in < 0) {
        ls_fail(job, errno, "open", job->key);
        return;
    }
    struct stat st;
    if (fstat(in, &st) == 0 && !S_ISREG(st.st_mode)) {
        ls_fail(job, ENOENT, "open", job->key);
        close(in);
        return;
    }
    int out = open(job->path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (out < 0) {
        ls_fail(job, errno, "create", job->path);
        close(in);
        return;
    }
    int64_t n = ls_copy_fd(in, out);
    if (n < 0)
        ls_fail(job, errno, "copy to", job->path);
    else
        job->size = n;
    if (close(out) != 0 && n >= 0)
        ls_fail(job, errno, "write", job->path);
    close(in);
}

static void ls_do_head(ls_job *job)
{
    struct stat st;
    if (stat(job->object, &st) != 0)
        ls_fail(job, errno, "stat", job->key);
    else if (!S_ISREG(st.st_mode))
        ls_fail(job, ENOENT, "stat", job->key);
    else
        job->size = (int64_t)st.st_size;
}

/* Removing a key that is not there succeeds, as S3 does: callers retry. */
static void ls_do_remove(ls_job *job)
{
    if (unlink(job->object) != 0 && errno != ENOENT) {
        ls_fail(job, errno, "remove", job->key);
        return;
    }
    /* Drop folders the object leaves empty, up to (not including) the root. */
    char dir[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s", job->object);
    size_t root_len = strlen(job->st->root);
    for (char *slash = strrchr(dir, '/'); slash && (size_t)(slash - dir) > root_len;
         slash = strrchr(dir, '/')) {
        *slash = '\0';
        if (rmdir(dir) != 0)
            break;
    }
}

typedef struct ls_entry {
    char *key;
    int64_t size;
} ls_entry;

typedef struct ls_listing {
    ls_entry *v;
    size_t n, cap;
    const char *prefix;
} ls_listing;

static void ls_listing_add(ls_listing *l, const char *key, int64_t size)
{
    if (FERRY_GROW(l->v, l->cap, l->n + 1) != 0)
        abort();
    l->v[l->n].key = strdup(key);
    if (l->v[l->n].key == NULL)
        abort();
    l->v[l->n++].size = size;
}

/* "a/b" from "a" and "b" ("b" when a is ""); -1 with ENAMETOOLONG. */
static int ls_join(char *out, size_t cap, const char *a, const char *b)
{
    int n = snprintf(out, cap, "%s%s%s", a, a[0] && b[0] ? "/" : "", b);
    if (n < 0 || (size_t)n >= cap) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return 0;
}

/* Walks <root>/<rel>; `rel` is "" at the top. Symlinks are not followed, so
 * a link can never make the listing leave the store. */
static int ls_walk(const char *root, const char *rel, ls_listing *l)
{
    char dir[PATH_MAX];
    if (ls_join(dir, sizeof(dir), root, rel) < 0)
        return -1;
    DIR *d = opendir(dir);
    if (d == NULL)
        return errno == ENOENT ? 0 : -1;
    struct dirent *e;
    int rc = 0;
    while (rc == 0 && (e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0 ||
            strncmp(e->d_name, LS_TMP_PREFIX, strlen(LS_TMP_PREFIX)) == 0)
            continue;
        char key[PATH_MAX];
        struct stat st;
        if ((rc = ls_join(key, sizeof(key), rel, e->d_name)) < 0)
            break;
        if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
            continue; /* removed while we walked */
        if (S_ISDIR(st.st_mode))
            rc = ls_walk(root, key, l);
        else if (S_ISREG(st.st_mode) && strncmp(key, l->prefix, strlen(l->prefix)) == 0)
            ls_listing_add(l, key, (int64_t)st.st_size);
    }
    int saved = errno;
    closedir(d);
    errno = saved;
    return rc;
}

static int ls_entry_cmp(const void *a, const void *b)
{
    return strcmp(((const ls_entry *)a)->key, ((const ls_entry *)b)->key);
}

static char *ls_listing_json(ls_listing *l)
{
    if (l->n > 1) /* qsort(NULL, 0) is undefined */
        qsort(l->v, l->n, sizeof(*l->v), ls_entry_cmp);
    json_t *arr = json_array();
    for (size_t i = 0; i < l->n; i++)
        json_array_append_new(
            arr, json_pack("{s:s, s:I}", "key", l->v[i].key, "size", (json_int_t)l->v[i].size));
    char *text = json_dumps(arr, JSON_COMPACT);
    json_decref(arr);
    return text;
}

static void ls_do_list(ls_job *job)
{
    ls_listing l = {.prefix = job->key ? job->key : ""};
    if (ls_walk(job->st->root, "", &l) != 0)
        ls_fail(job, errno, "list", job->st->root);
    else if ((job->text = ls_listing_json(&l)) == NULL)
        job->status = ferry_error_set(&job->err, FERRY_ENOMEM, 0, NULL, "list: out of memory");
    for (size_t i = 0; i < l.n; i++)
        free(l.v[i].key);
    free(l.v);
}

static void ls_work(void *arg)
{
    ls_job *job = arg;
    switch (job->kind) {
    case LS_PUT:
        ls_do_put(job);
        break;
    case LS_GET:
        ls_do_get(job);
        break;
    case LS_HEAD:
        ls_do_head(job);
        break;
    case LS_LIST:
        ls_do_list(job);
        break;
    case LS_REMOVE:
        ls_do_remove(job);
        break;
    }
}

/* ------------------------------------------------------------------------ */
/* Ops, on the loop thread                                                  */

static void ls_job_free(ls_job *job)
{
    free(job->key);
    free(job->path);
    free(job->object);
    free(job->text);
    free(job);
}

static void ls_after(void *arg, int status)
{
    ls_job *job = arg;
    if (status < 0 && job->status == 0)
        job->status = ferry_error_set(&job->err, status, 1, NULL, "store operation canceled");
    ferry_op_result r = {.struct_size = sizeof(r), .size = job->size, .text = job->text};
    if (job->status < 0)
        r.error = &job->err;
    job->st->host->op_complete(job->op, job->status, &r);
    ls_job_free(job);
}

static char *ls_object_path(ls_state *st, const char *key)
{
    char *p = NULL;
    if (asprintf(&p, "%s/%s", st->root, key) < 0)
        return NULL;
    return p;
}

/* Validates, then hands the job to the worker pool. A negative return means
 * the op was not started (the host abandons it). */
static int ls_submit(ls_state *st, ls_kind kind, const char *key, const char *path, ferry_op *op)
{
    if (kind != LS_LIST && !ls_key_is_safe(key))
        return FERRY_EUNSAFE;
    if ((kind == LS_PUT || kind == LS_GET) && (path == NULL || path[0] == '\0'))
        return FERRY_EINVAL;
    ls_job *job = calloc(1, sizeof(*job));
    if (job == NULL)
        return FERRY_ENOMEM;
    job->st = st;
    job->op = op;
    job->kind = kind;
    job->key = key ? strdup(key) : NULL;
    job->path = path ? strdup(path) : NULL;
    job->object = kind != LS_LIST ? ls_object_path(st, key) : NULL;
    if ((key && !job->key) || (path && !job->path) || (kind != LS_LIST && !job->object)) {
        ls_job_free(job);
        return FERRY_ENOMEM;
    }
    int rc = st->host->queue_work(st->ctx, ls_work, ls_after, job);
    if (rc < 0)
        ls_job_free(job);
    return rc;
}

static int ls_put_file(void *state, const char *key, const char *path, ferry_op *op)
{
    return ls_submit(state, LS_PUT, key, path, op);
}

static int ls_get_file(void *state, const char *key, const char *path, ferry_op *op)
{
    return ls_submit(state, LS_GET, key, path, op);
}

static int ls_head(void *state, const char *key, ferry_op *op)
{
    return ls_submit(state, LS_HEAD, key, NULL, op);
}

/* The prefix only filters key strings; it never becomes a path. */
static int ls_list(void *state, const char *prefix, ferry_op *op)
{
    return ls_submit(state, LS_LIST, prefix ? prefix : "", NULL, op);
}

static int ls_remove(void *state, const char *key, ferry_op *op)
{
    return ls_submit(state, LS_REMOVE, key, NULL, op);
}

/* Synchronous, so only a stat: tells ferryd the file to stream. */
static int ls_local_path(void *state, const char *key, char *path, size_t path_cap)
{
    ls_state *st = state;
    if (!ls_key_is_safe(key))
        return FERRY_EUNSAFE;
    int n = snprintf(path, path_cap, "%s/%s", st->root, key);
    if (n < 0 || (size_t)n >= path_cap)
        return FERRY_ETOOBIG;
    struct stat sb;
    if (stat(path, &sb) != 0)
        return ls_errno_code(errno);
    return S_ISREG(sb.st_mode) ? 0 : FERRY_ENOENT;
}

static const ferry_store_ops ls_ops = {
    .struct_size = sizeof(ferry_store_ops),
    .put_file = ls_put_file,
    .get_file = ls_get_file,
    .head = ls_head,
    .list = ls_list,
    .remove = ls_remove,
    .presign = NULL, /* ferryd signs URLs and serves the objects itself */
    .local_path = ls_local_path,
};

/* ------------------------------------------------------------------------ */
/* Lifecycle                                                                */

static int ls_init(ferry_plugin_ctx *ctx, const ferry_host_api *host, void **state,
                   ferry_error_detail *err)
{
    const char *path = host->config_get(ctx, "path");
    if (path == NULL || path[0] == '\0')
        return ferry_error_set(err, FERRY_ECONFIG, 0, NULL,
                               "local-storage: setting \"path\" (the store's folder) is required");
    char dir[PATH_MAX];
    if (snprintf(dir, sizeof(dir), "%s", path) >= (int)sizeof(dir))
        return ferry_error_set(err, FERRY_ECONFIG, 0, NULL, "local-storage: path too long");
    /* Blocking, but once at start-up and before any op can be in flight. */
    if (ferry_file_mkdirs(dir, 0755) != 0)
        return ferry_error_set(err, FERRY_ECONFIG, 0, NULL, "local-storage: create %s: %s", path,
                               strerror(errno));
    char abs[PATH_MAX];
    if (realpath(dir, abs) == NULL)
        return ferry_error_set(err, FERRY_ECONFIG, 0, NULL, "local-storage: %s: %s", path,
                               strerror(errno));
    ls_state *st = calloc(1, sizeof(*st));
    if (st == NULL || (st->root = strdup(abs)) == NULL) {
        free(st);
        return ferry_error_set(err, FERRY_ENOMEM, 0, NULL, "local-storage: out of memory");
    }
    st->ctx = ctx;
    st->host = host;
    host->log(ctx, FERRY_LOG_DEBUG, "objects live under %s", st->root);
    *state = st;
    return 0;
}

/* The host runs fini only once no job is in the worker pool, so nothing
 * refers to the state any more. */
static void ls_fini(void *state)
{
    ls_state *st = state;
    free(st->root);
    free(st);
}

static const char *const ls_settings[] = {"path", NULL};

static const ferry_plugin_descriptor ls_descriptor = {
    .struct_size = sizeof(ferry_plugin_descriptor),
    .abi_major = FERRY_ABI_MAJOR,
    .abi_minor = FERRY_ABI_MINOR,
    .kind = FERRY_PLUGIN_STORE,
    .name = "local-storage",
    .version = "1.0.0",
    .init = ls_init,
    .fini = ls_fini,
    .ops = &ls_ops,
    .settings = ls_settings,
};

FERRY_PLUGIN_DEFINE(ls_descriptor)
