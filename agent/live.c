/* Live outputs: a file of outputs/ made read-only (chmod 0444, as Valohai
 * users do) while the commands run is uploaded at once, and ferryd keeps
 * it whatever happens to the execution after.
 *
 * inotify watches outputs/ and every folder under it (libuv's uv_fs_event
 * is not recursive on Linux): IN_ATTRIB (a chmod), IN_CLOSE_WRITE,
 * IN_MOVED_TO (a file written elsewhere and renamed in) and IN_CREATE (a
 * new folder, watched and read at once). Its descriptor is polled by the
 * loop; nothing is polled on a timer.
 *
 * One file at a time: it is read on the threadpool (size, mtime, sha256,
 * and size and mtime again), declared to ferryd, uploaded as the final
 * outputs are, and checked once more before the upload is reported: a file
 * that changed on the way (a writer that kept its descriptor after the
 * chmod) is not recorded, and is read again a little later. What was
 * stored is remembered, so that the final upload skips it when it is still
 * the same file.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent.h"
#include "log.h"
#include "outputmeta.h"
#include "util.h"

#define LIVE_MASK (IN_ATTRIB | IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_DONT_FOLLOW)
#define LIVE_MAX_DEPTH 64
/* A read-only file written less than this ago may still have a writer
 * (one that kept its descriptor after the chmod): it waits. A file that
 * changed while it was read or sent is tried again after as long, unless
 * an event for it comes first. */
#define LIVE_QUIET_MS 100
#define LIVE_RETRY_MS LIVE_QUIET_MS
/* Failed reads and uploads of one file before it is left to the end. */
#define LIVE_TRIES 50

typedef struct live_dir {
    int wd;
    char *rel; /* "" for outputs/ itself */
} live_dir;

/* A file seen read-only: queued, in flight, or stored. */
typedef struct live_file {
    char *rel;
    int queued, busy, again, retry, tries;
    uint64_t queued_ms; /* when the event that queued it came */
    int stored;         /* `done` is what ferryd holds */
    output_file done;
} live_file;

struct live {
    agent *a;
    char *exec_id, *dir;
    shipper *ship;
    int fd;
    uv_poll_t poll;
    uv_timer_t retry;
    int open_handles;
    live_dir *dirs;
    size_t n_dirs, cap_dirs;
    live_file **files; /* each its own allocation: `cur` stays put */
    size_t n_files, cap_files;
    /* the file in flight: read, declared, uploaded */
    live_file *cur;
    uv_work_t work;
    int working;
    int work_rc;
    output_file got;
    output_list one; /* `got`, as uploads.c takes it */
    agent_call *call;
    uploads *up;
    int closing, freed;
    void (*closed_cb)(void *arg);
    void *closed_arg;
};

static void live_next(live *l);

static live_file *live_find(live *l, const char *rel)
{
    for (size_t i = 0; i < l->n_files; i++)
        if (strcmp(l->files[i]->rel, rel) == 0)
            return l->files[i];
    return NULL;
}

static const char *live_dir_rel(live *l, int wd)
{
    for (size_t i = 0; i < l->n_dirs; i++)
        if (l->dirs[i].wd == wd)
            return l->dirs[i].rel;
    return NULL;
}

static void live_forget_dir(live *l, int wd)
{
    for (size_t i = 0; i < l->n_dirs; i++) {
        if (l->dirs[i].wd != wd)
            continue;
        free(l->dirs[i].rel);
        l->dirs[i] = l->dirs[--l->n_dirs];
        return;
    }
}

static char *live_join(const char *dir, const char *name)
{
    return dir[0] ? ferry_asprintf("%s/%s", dir, name) : ferry_strdup(name);
}

/* A read-only regular file not known as stored as it is: queued. `event`:
 * for an event of inotify (its tries start again), not a retry. */
static void live_consider(live *l, const char *rel, int event)
{
    if (l->closing || outputmeta_is_meta(rel) || !ferry_safe_relpath(rel))
        return;
    char *path = ferry_asprintf("%s/%s", l->dir, rel);
    struct stat st;
    int ok = lstat(path, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 0222) == 0;
    free(path);
    if (!ok)
        return;
    live_file *f = live_find(l, rel);
    if (f == NULL) {
        FERRY_XGROW(l->files, l->cap_files, l->n_files + 1);
        f = ferry_xcalloc(1, sizeof(*f));
        f->rel = ferry_strdup(rel);
        l->files[l->n_files++] = f;
    }
    if (event)
        f->tries = 0;
    if (f->busy) {
        f->again = 1; /* read once more after this round */
        return;
    }
    if (f->stored && outputs_unchanged(l->dir, &f->done))
        return;
    if (!f->queued)
        f->queued_ms = ferry_mono_ms();
    f->queued = 1;
    f->retry = 0;
}

/* Watch a folder and read it: what it holds may predate its watch. */
static void live_watch(live *l, const char *rel, int depth)
{
    if (depth > LIVE_MAX_DEPTH)
        return;
    char *path = rel[0] ? ferry_asprintf("%s/%s", l->dir, rel) : ferry_strdup(l->dir);
    int wd = inotify_add_watch(l->fd, path, LIVE_MASK | IN_ONLYDIR);
    if (wd < 0) {
        ferry_warn("execution %s: outputs/%s is not watched for live outputs: %s", l->exec_id, rel,
                   strerror(errno));
        free(path);
        return;
    }
    if (live_dir_rel(l, wd) == NULL) {
        FERRY_XGROW(l->dirs, l->cap_dirs, l->n_dirs + 1);
        l->dirs[l->n_dirs++] = (live_dir){.wd = wd, .rel = ferry_strdup(rel)};
    }
    int dfd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    free(path);
    DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
    if (d == NULL) {
        if (dfd >= 0)
            close(dfd);
        return;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        struct stat st;
        if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
            continue;
        char *child = live_join(rel, e->d_name);
        if (S_ISDIR(st.st_mode))
            live_watch(l, child, depth + 1);
        else if (S_ISREG(st.st_mode))
            live_consider(l, child, 1);
        free(child);
    }
    closedir(d);
}

static int live_depth(const char *rel)
{
    int n = rel[0] ? 1 : 0;
    for (const char *p = rel; *p; p++)
        n += *p == '/';
    return n;
}

static void live_on_event(live *l, const struct inotify_event *ev)
{
    if (ev->mask & IN_Q_OVERFLOW) { /* events were lost: read everything again */
        live_watch(l, "", 0);
        return;
    }
    if (ev->mask & IN_IGNORED) {
        live_forget_dir(l, ev->wd);
        return;
    }
    const char *dir = live_dir_rel(l, ev->wd);
    if (dir == NULL || ev->len == 0)
        return;
    char *rel = live_join(dir, ev->name);
    if (ev->mask & IN_ISDIR) {
        if (ev->mask & (IN_CREATE | IN_MOVED_TO))
            live_watch(l, rel, live_depth(rel));
    } else if (ev->mask & (IN_ATTRIB | IN_CLOSE_WRITE | IN_MOVED_TO)) {
        live_consider(l, rel, 1);
    }
    free(rel);
}

static void live_on_readable(uv_poll_t *h, int status, int events)
{
    (void)events;
    live *l = h->data;
    if (status < 0)
        return;
    char buf[16384] __attribute__((aligned(__alignof__(struct inotify_event))));
    for (;;) {
        ssize_t n = read(l->fd, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        for (char *p = buf; p < buf + n;) {
            const struct inotify_event *ev = (const struct inotify_event *)p;
            live_on_event(l, ev);
            p += sizeof(*ev) + ev->len;
        }
    }
    live_next(l);
}

/* ---- one file: read, declare, upload ---- */

static void live_settle(live *l);

static void live_file_done(live *l, int changed)
{
    live_file *f = l->cur;
    l->cur = NULL;
    f->busy = 0;
    output_file *got = &l->got;
    free(got->name);
    memset(got, 0, sizeof(*got));
    memset(&l->one, 0, sizeof(l->one));
    if (f->again) { /* an event came meanwhile: at once */
        f->again = 0;
        live_consider(l, f->rel, 0);
    } else if (changed && ++f->tries < LIVE_TRIES) {
        f->retry = 1;
    }
    live_settle(l);
}

static int live_check(void *arg, const output_file *f)
{
    live *l = arg;
    return outputs_unchanged(l->dir, f);
}

static void live_on_uploaded(void *arg, const char *failure)
{
    live *l = arg;
    live_file *f = l->cur;
    /* Only a file that changed on the way goes again soon; one the store or
     * ferryd refused is left to the final upload (or its next event). */
    int changed = !outputs_unchanged(l->dir, &l->got);
    if (failure == NULL && !changed) {
        f->stored = 1;
        free(f->done.name);
        f->done = l->got;
        f->done.name = ferry_strdup(l->got.name);
        double s = (double)(ferry_mono_ms() - f->queued_ms) / 1000.0;
        ferry_info("execution %s: live output %s stored (%lld bytes, %.3f s after its event)",
                   l->exec_id, f->rel, (long long)l->got.size, s);
        shipper_status(l->ship, "output %s stored live", f->rel);
    }
    uploads_free(l->up);
    l->up = NULL;
    live_file_done(l, changed);
}

static void live_on_declared(void *arg, const agent_reply *r)
{
    live *l = arg;
    l->call = NULL;
    if (!r->ok) {
        char why[512];
        if (r->code != FERRY_ECANCELED)
            ferry_warn("execution %s: live output %s could not be declared: %s", l->exec_id,
                       l->cur->rel, agent_reply_text(r, why, sizeof(why)));
        live_file_done(l, 0); /* the final upload takes it */
        return;
    }
    json_t *list = json_object_get(r->json, "uploads");
    json_t *answer = json_is_array(list) ? json_incref(list) : json_array();
    l->one.files = &l->got;
    l->one.n = l->one.cap = 1;
    l->up = uploads_start_checked(l->a, l->exec_id, l->dir, &l->one, answer, l->ship, live_check,
                                  "changed while it was being uploaded; it is sent again once "
                                  "it is still",
                                  live_on_uploaded, l);
    json_decref(answer);
}

static void live_read_work(uv_work_t *w)
{
    live *l = w->data;
    l->work_rc = outputs_read_still(l->dir, l->cur->rel, LIVE_QUIET_MS, &l->got);
}

static void live_read_done(uv_work_t *w, int status)
{
    (void)status;
    live *l = w->data;
    l->working = 0;
    if (l->freed || l->closing || l->work_rc != 0) {
        /* Writable again, gone, or changed while read (FERRY_EAGAIN). */
        live_file_done(l, l->work_rc == FERRY_EAGAIN);
        return;
    }
    /* "live": ferryd records it only on the report, after the last check. */
    json_t *o = json_pack("{s:s, s:I, s:s, s:b}", "name", l->got.name, "size",
                          (json_int_t)l->got.size, "sha256", l->got.sha256, "live", 1);
    json_t *body = json_pack("{s:[o]}", "outputs", o);
    char *path = ferry_asprintf("/v1/agent/executions/%s/outputs", l->exec_id);
    agent_call_spec s = {.path = path, .body = body};
    l->call = agent_call_start(l->a, &s, live_on_declared, l);
    free(path);
    json_decref(body);
}

static void live_next(live *l)
{
    if (l->cur != NULL || l->closing)
        return;
    for (size_t i = 0; i < l->n_files; i++) {
        live_file *f = l->files[i];
        if (!f->queued)
            continue;
        f->queued = 0;
        f->busy = 1;
        l->cur = f;
        l->work.data = l;
        l->working = 1;
        int rc = uv_queue_work(l->a->loop, &l->work, live_read_work, live_read_done);
        if (rc != 0) {
            l->working = 0;
            live_file_done(l, 0);
        }
        return;
    }
}

static void live_on_retry(uv_timer_t *t)
{
    live *l = t->data;
    for (size_t i = 0; i < l->n_files; i++) {
        if (!l->files[i]->retry)
            continue;
        l->files[i]->retry = 0;
        live_consider(l, l->files[i]->rel, 0);
    }
    live_next(l);
}

/* ---- life ---- */

static void live_release(live *l)
{
    for (size_t i = 0; i < l->n_dirs; i++)
        free(l->dirs[i].rel);
    free(l->dirs);
    for (size_t i = 0; i < l->n_files; i++) {
        free(l->files[i]->rel);
        free(l->files[i]->done.name);
        free(l->files[i]);
    }
    free(l->files);
    free(l->got.name);
    free(l->exec_id);
    free(l->dir);
    free(l);
}

static void live_handle_closed(uv_handle_t *h)
{
    live *l = h->data;
    if (--l->open_handles == 0)
        live_settle(l);
}

/* After each file, and as handles close: a close or a free completes once
 * nothing is in flight. */
static void live_settle(live *l)
{
    if (!l->closing) {
        if (l->cur == NULL) {
            int retry = 0;
            for (size_t i = 0; i < l->n_files; i++)
                retry |= l->files[i]->retry;
            if (retry)
                uv_timer_start(&l->retry, live_on_retry, LIVE_RETRY_MS, 0);
        }
        live_next(l);
        return;
    }
    if (l->cur != NULL || l->open_handles > 0)
        return;
    if (l->closed_cb) {
        void (*cb)(void *) = l->closed_cb;
        l->closed_cb = NULL;
        cb(l->closed_arg);
    }
    if (l->freed)
        live_release(l);
}

live *live_start(agent *a, const char *exec_id, const char *outputs_dir, shipper *ship)
{
    int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (fd < 0) {
        ferry_warn("execution %s: no live outputs (inotify: %s); outputs go at the end", exec_id,
                   strerror(errno));
        return NULL;
    }
    live *l = ferry_xcalloc(1, sizeof(*l));
    l->a = a;
    l->exec_id = ferry_strdup(exec_id);
    l->dir = ferry_strdup(outputs_dir);
    l->ship = ship;
    l->fd = fd;
    uv_timer_init(a->loop, &l->retry);
    l->retry.data = l;
    l->open_handles = 1;
    if (uv_poll_init(a->loop, &l->poll, fd) == 0) {
        l->poll.data = l;
        l->open_handles++;
        uv_poll_start(&l->poll, UV_READABLE, live_on_readable);
    }
    live_watch(l, "", 0);
    ferry_info("execution %s: watching outputs/ for live outputs with inotify (%zu folders)",
               exec_id, l->n_dirs);
    live_next(l);
    return l;
}

static void live_stop_watching(live *l)
{
    if (l->closing)
        return;
    l->closing = 1;
    uv_timer_stop(&l->retry);
    uv_close((uv_handle_t *)&l->retry, live_handle_closed);
    if (l->open_handles > 1)
        uv_close((uv_handle_t *)&l->poll, live_handle_closed);
    close(l->fd); /* after the poll handle stopped using it: uv_close stops it at once */
    l->fd = -1;
}

void live_close(live *l, void (*cb)(void *arg), void *arg)
{
    if (l == NULL) {
        cb(arg);
        return;
    }
    l->closed_cb = cb;
    l->closed_arg = arg;
    live_stop_watching(l);
    /* An upload in flight goes on to its end: it may be nearly done. */
    live_settle(l);
}

int live_stored(const live *l, const output_file *f)
{
    if (l == NULL)
        return 0;
    for (size_t i = 0; i < l->n_files; i++) {
        const live_file *lf = l->files[i];
        if (lf->stored && strcmp(lf->rel, f->name) == 0)
            return lf->done.size == f->size && lf->done.mtime_ns == f->mtime_ns &&
                   lf->done.dev == f->dev && lf->done.ino == f->ino &&
                   strcmp(lf->done.sha256, f->sha256) == 0;
    }
    return 0;
}

void live_free(live *l)
{
    if (l == NULL)
        return;
    l->closed_cb = NULL;
    l->freed = 1;
    live_stop_watching(l);
    if (l->call || l->up) {
        agent_call_cancel(l->call);
        l->call = NULL;
        uploads_free(l->up);
        l->up = NULL;
        if (!l->working) { /* nothing else will end this file */
            l->cur->busy = 0;
            l->cur = NULL;
        }
    }
    live_settle(l); /* a read on the threadpool ends it later */
}
