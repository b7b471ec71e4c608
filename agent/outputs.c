/* The walk of an execution's outputs/ folder, on the threadpool.
 *
 * Everything is opened relative to its parent folder's descriptor with
 * O_NOFOLLOW, so a symlink (placed by the user's code, possibly pointing at
 * the worker's own files) is never followed: it is reported, not uploaded.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "agent.h"
#include "outputmeta.h"

#include "ferry/hex.h"
#include "text.h"
#include "util.h"

#define OUTPUTS_MAX_DEPTH 64
/* The metadata of all outputs together, as sent: it travels in the one
 * call that declares them, whose body ferryd takes up to 8 MiB. */
#define OUTPUTS_META_BUDGET ((size_t)4 << 20)
/* The metadata files read, all together (each is at most
 * OUTPUTMETA_FILE_MAX), and the log lines their problems may take. */
#define OUTPUTS_META_READ ((size_t)32 << 20)
#define OUTPUTS_META_NOTES 200

static void outputs_skip(output_list *out, const char *name, const char *why)
{
    FERRY_XGROW(out->skipped, out->cap_skipped, out->n_skipped + 1);
    size_t len = 0;
    char *clean = ferry_utf8_clean(name, strlen(name), &len);
    out->skipped[out->n_skipped++] = ferry_asprintf("output %s not uploaded: %s", clean, why);
    free(clean);
}

/* A log line of its own (a metadata problem); a few hundred at most, so
 * that thousands of bad sidecars do not flood the log. */
static void outputs_note(void *arg, const char *text)
{
    output_list *out = arg;
    if (++out->meta_notes > OUTPUTS_META_NOTES)
        return;
    FERRY_XGROW(out->skipped, out->cap_skipped, out->n_skipped + 1);
    out->skipped[out->n_skipped++] =
        out->meta_notes == OUTPUTS_META_NOTES
            ? ferry_strdup("more problems with the outputs' metadata files are not shown")
            : ferry_strdup(text);
}

static void outputs_note_file(output_list *out, const char *rel, const char *why)
{
    char *line = ferry_asprintf("%s: %s", rel, why);
    outputs_note(out, line);
    free(line);
}

/* A metadata file, read whole from the descriptor the walk opened, for
 * outputs_meta_apply once every output is known. Bounded: each file, and
 * all of them together, since all of it is held at once. */
static void outputs_read_meta(output_list *out, int fd, const char *rel)
{
    struct stat st;
    if (fstat(fd, &st) != 0) {
        outputs_note_file(out, rel, strerror(errno));
        return;
    }
    if (st.st_size > (off_t)OUTPUTMETA_FILE_MAX) {
        char why[128];
        snprintf(why, sizeof(why), "larger than %zu MiB; not read (nor an output)",
                 OUTPUTMETA_FILE_MAX >> 20);
        outputs_note_file(out, rel, why);
        return;
    }
    if (out->meta_bytes + (size_t)st.st_size > OUTPUTS_META_READ) {
        char why[128];
        snprintf(why, sizeof(why),
                 "not read (nor an output): the metadata files together are over %zu MiB",
                 OUTPUTS_META_READ >> 20);
        outputs_note_file(out, rel, why);
        return;
    }
    /* The size it had; one that grew since is cut there, and said so. */
    size_t cap = (size_t)st.st_size, len = 0;
    char *buf = ferry_xmalloc(cap + 1);
    int rc = 0;
    while (len <= cap) {
        ssize_t n = read(fd, buf + len, cap + 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            rc = ferry_from_errno(errno);
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    if (rc < 0 || len > cap) {
        outputs_note_file(out, rel, rc < 0 ? ferry_strerror(rc) : "still being written; not read");
        free(buf);
        return;
    }
    out->meta_bytes += len;
    FERRY_XGROW(out->metas, out->cap_metas, out->n_metas + 1);
    out->metas[out->n_metas++] =
        (output_metafile){.name = ferry_strdup(rel), .text = buf, .len = len};
}

static int outputs_sha256_fd(int fd, char *hex, int64_t *size)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (ctx == NULL)
        return FERRY_ENOMEM;
    EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
    char buf[65536];
    int64_t total = 0;
    ssize_t n;
    while ((n = read(fd, buf, sizeof(buf))) != 0) {
        if (n < 0) {
            if (errno == EINTR)
                continue;
            int e = ferry_from_errno(errno);
            EVP_MD_CTX_free(ctx);
            return e;
        }
        EVP_DigestUpdate(ctx, buf, (size_t)n);
        total += n;
    }
    unsigned char md[32];
    unsigned int md_len = 0;
    EVP_DigestFinal_ex(ctx, md, &md_len);
    EVP_MD_CTX_free(ctx);
    ferry_hex_encode(md, sizeof(md), hex);
    *size = total;
    return 0;
}

static int64_t outputs_mtime_ns(const struct stat *st)
{
    return (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
}

static void outputs_add_file(output_list *out, int dirfd, const char *entry, const char *rel)
{
    size_t clean_len = 0;
    char *clean = ferry_utf8_clean(rel, strlen(rel), &clean_len);
    int name_ok = clean_len == strlen(rel) && ferry_safe_relpath(rel);
    free(clean);
    if (!name_ok) {
        outputs_skip(out, rel, "the name is not valid UTF-8 or not a safe relative path");
        return;
    }
    int fd = openat(dirfd, entry, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        outputs_skip(out, rel, strerror(errno));
        return;
    }
    if (outputmeta_is_meta(rel)) {
        outputs_read_meta(out, fd, rel);
        close(fd);
        return;
    }
    output_file f = {0};
    struct stat st;
    int rc = fstat(fd, &st) == 0 ? 0 : ferry_from_errno(errno);
    if (rc == 0) {
        f.dev = (uint64_t)st.st_dev;
        f.ino = (uint64_t)st.st_ino;
        f.mtime_ns = outputs_mtime_ns(&st);
        rc = outputs_sha256_fd(fd, f.sha256, &f.size);
    }
    close(fd);
    if (rc != 0) {
        outputs_skip(out, rel, ferry_strerror(rc));
        return;
    }
    FERRY_XGROW(out->files, out->cap, out->n + 1);
    f.name = ferry_strdup(rel);
    out->files[out->n++] = f;
}

/* Walks the folder open at `fd` (takes it); `rel` is its name under outputs/
 * ("" for outputs/ itself). */
static void outputs_walk_fd(int fd, const char *rel, output_list *out, int depth)
{
    DIR *d = fdopendir(fd);
    if (d == NULL) {
        outputs_skip(out, rel, strerror(errno));
        close(fd);
        return;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char *child = rel[0] ? ferry_asprintf("%s/%s", rel, e->d_name) : ferry_strdup(e->d_name);
        struct stat st;
        if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
            outputs_skip(out, child, strerror(errno));
        } else if (S_ISDIR(st.st_mode)) {
            int sub = -1;
            if (depth >= OUTPUTS_MAX_DEPTH)
                outputs_skip(out, child, "folders nested too deeply");
            else if ((sub = openat(dirfd(d), e->d_name,
                                   O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0)
                outputs_skip(out, child, strerror(errno));
            else
                outputs_walk_fd(sub, child, out, depth + 1);
        } else if (S_ISREG(st.st_mode)) {
            outputs_add_file(out, dirfd(d), e->d_name, child);
        } else if (S_ISLNK(st.st_mode)) {
            outputs_skip(out, child, "symbolic links are not followed");
        } else {
            outputs_skip(out, child, "not a regular file");
        }
        free(child);
    }
    closedir(d);
}

static int outputs_by_name(const void *x, const void *y)
{
    return strcmp(((const output_file *)x)->name, ((const output_file *)y)->name);
}

static output_file *outputs_find(const output_list *out, const char *name)
{
    output_file key = {.name = (char *)name};
    return bsearch(&key, out->files, out->n, sizeof(output_file), outputs_by_name);
}

static int outputs_known(void *arg, const char *name)
{
    return outputs_find(arg, name) != NULL;
}

/* The metadata files read during the walk, onto the outputs they name
 * (the files are sorted by then): the jsonl first, the sidecars over it. */
static void outputs_meta_apply(output_list *out)
{
    if (out->n_metas == 0)
        return;
    outputmeta_hooks h = {.known = outputs_known, .warn = outputs_note, .arg = out};
    json_t *by_file = json_object();
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < out->n_metas; i++) {
            const output_metafile *m = &out->metas[i];
            int jsonl = strcmp(m->name, OUTPUTMETA_JSONL) == 0;
            if (jsonl != (pass == 0))
                continue;
            if (jsonl)
                outputmeta_jsonl(by_file, m->text, m->len, &h);
            else
                outputmeta_sidecar(by_file, m->name, m->text, m->len, &h);
        }
    }
    size_t spent = 0;
    const char *name;
    json_t *meta;
    json_object_foreach(by_file, name, meta)
    {
        output_file *f = outputs_find(out, name);
        char *text = json_dumps(meta, JSON_COMPACT);
        size_t len = text ? strlen(text) : 0;
        free(text);
        if (f == NULL)
            continue;
        if (spent + len > OUTPUTS_META_BUDGET) {
            char *line = ferry_asprintf("output %s: its metadata is not kept: the metadata of "
                                        "all outputs is over %zu MiB",
                                        name, OUTPUTS_META_BUDGET >> 20);
            outputs_note(out, line);
            free(line);
            continue;
        }
        spent += len;
        f->metadata = json_incref(meta);
    }
    json_decref(by_file);
}

void outputs_walk(const char *dir, output_list *out)
{
    memset(out, 0, sizeof(*out));
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        out->error = ferry_asprintf("could not read outputs/: %s", strerror(errno));
        return;
    }
    outputs_walk_fd(fd, "", out, 0);
    if (out->n > 1)
        qsort(out->files, out->n, sizeof(output_file), outputs_by_name);
    outputs_meta_apply(out);
}

int outputs_read_still(const char *dir, const char *rel, int64_t quiet_ms, output_file *f)
{
    memset(f, 0, sizeof(*f));
    if (!ferry_safe_relpath(rel) || outputmeta_is_meta(rel))
        return FERRY_EINVAL;
    char *path = ferry_asprintf("%s/%s", dir, rel);
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    free(path);
    if (fd < 0)
        return ferry_from_errno(errno);
    struct stat before, after;
    int rc = fstat(fd, &before) == 0 ? 0 : ferry_from_errno(errno);
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    int64_t age_ms =
        ((int64_t)now.tv_sec * 1000000000 + now.tv_nsec - outputs_mtime_ns(&before)) / 1000000;
    if (rc == 0 && !S_ISREG(before.st_mode))
        rc = FERRY_EINVAL;
    else if (rc == 0 && (before.st_mode & 0222) != 0)
        rc = FERRY_EPERM; /* not made read-only (yet) */
    else if (rc == 0 && age_ms >= 0 && age_ms < quiet_ms)
        rc = FERRY_EAGAIN; /* written a moment ago: perhaps still being written */
    if (rc == 0)
        rc = outputs_sha256_fd(fd, f->sha256, &f->size);
    if (rc == 0)
        rc = fstat(fd, &after) == 0 ? 0 : ferry_from_errno(errno);
    close(fd);
    if (rc != 0)
        return rc;
    /* A writer that kept its descriptor after the chmod: what was read may
     * be no state the file was ever meant to be in. */
    if (after.st_size != before.st_size || f->size != (int64_t)after.st_size ||
        outputs_mtime_ns(&after) != outputs_mtime_ns(&before) || (after.st_mode & 0222) != 0)
        return FERRY_EAGAIN;
    f->dev = (uint64_t)after.st_dev;
    f->ino = (uint64_t)after.st_ino;
    f->mtime_ns = outputs_mtime_ns(&after);
    f->name = ferry_strdup(rel);
    return 0;
}

int outputs_unchanged(const char *dir, const output_file *f)
{
    char *path = ferry_asprintf("%s/%s", dir, f->name);
    struct stat st;
    int rc = lstat(path, &st);
    free(path);
    return rc == 0 && S_ISREG(st.st_mode) && (st.st_mode & 0222) == 0 &&
           (uint64_t)st.st_dev == f->dev && (uint64_t)st.st_ino == f->ino &&
           (int64_t)st.st_size == f->size && outputs_mtime_ns(&st) == f->mtime_ns;
}

void outputs_free(output_list *out)
{
    for (size_t i = 0; i < out->n; i++) {
        free(out->files[i].name);
        json_decref(out->files[i].metadata);
    }
    free(out->files);
    for (size_t i = 0; i < out->n_metas; i++) {
        free(out->metas[i].name);
        free(out->metas[i].text);
    }
    free(out->metas);
    for (size_t i = 0; i < out->n_skipped; i++)
        free(out->skipped[i]);
    free(out->skipped);
    free(out->error);
    memset(out, 0, sizeof(*out));
}
