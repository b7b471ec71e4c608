/* local-docker: making the outputs the agent's (outputs.h). */
#include "outputs.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "body.h"
#include "container.h"

/* Deeper than this is not walked (nor trusted): the helper runs. */
#define LD_WALK_DEPTH 64

typedef enum { LD_OUT_WALK, LD_OUT_CREATE, LD_OUT_START, LD_OUT_WAIT, LD_OUT_REMOVE } ld_out_step;

struct ld_outputs {
    ld_state *st;
    char *image, *shell, *outputs_dir, *execution_id;
    uid_t uid;
    gid_t gid;
    int need_fix; /* the walk's answer */
    ld_out_step step;
    char id[LD_ID_CAP]; /* the helper container, once created */
    ferry_http_request *req;
    char warning[700];
    int abandoned;
    ld_outputs_done_fn done;
    void *arg;
};

static int ld_walk(int dirfd, uid_t uid, int depth)
{
    DIR *d = fdopendir(dirfd);
    if (d == NULL) {
        close(dirfd);
        return 1;
    }
    int need = 0;
    struct dirent *e;
    while (!need && (e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        struct stat sb;
        if (fstatat(dirfd, e->d_name, &sb, AT_SYMLINK_NOFOLLOW) != 0) {
            need = 1;
        } else if (S_ISLNK(sb.st_mode)) {
            continue; /* a link's own owner and mode do not matter to a reader */
        } else if (sb.st_uid != uid || !(sb.st_mode & S_IRUSR)) {
            need = 1;
        } else if (S_ISDIR(sb.st_mode)) {
            int fd = -1;
            if (depth < LD_WALK_DEPTH && (sb.st_mode & S_IXUSR))
                fd = openat(dirfd, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            need = fd < 0 ? 1 : ld_walk(fd, uid, depth + 1);
        }
    }
    closedir(d);
    return need;
}

int ld_outputs_need_fix(const char *dir, uid_t uid)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    return fd < 0 ? 1 : ld_walk(fd, uid, 0);
}

static void ld_outputs_free(ld_outputs *o)
{
    free(o->image);
    free(o->shell);
    free(o->outputs_dir);
    free(o->execution_id);
    free(o);
}

/* `done` runs even when abandoned: it is the run's, not the host's, and the
 * run goes on to remove its container. */
static void ld_outputs_finish(ld_outputs *o)
{
    o->req = NULL;
    o->done(o->arg, o->warning[0] && !o->abandoned ? o->warning : NULL);
    ld_outputs_free(o);
}

static void ld_outputs_step(void *arg, const ferry_http_response *res);

/* The next call of the helper's life; its answer comes to ld_outputs_step. */
static int ld_outputs_call(ld_outputs *o, ld_out_step step)
{
    ld_state *st = o->st;
    o->step = step;
    switch (step) {
    case LD_OUT_CREATE: {
        json_t *body = ld_outputs_body(o->image, o->shell, o->outputs_dir, (unsigned)o->uid,
                                       (unsigned)o->gid, o->execution_id, st->owner);
        /* No name: Docker's own is unique; the labels say what it is. */
        int rc =
            body ? ld_container_create(st, body, NULL, ld_outputs_step, o, &o->req) : FERRY_ENOMEM;
        json_decref(body);
        return rc;
    }
    case LD_OUT_START:
        return ld_container_start(st, o->id, ld_outputs_step, o, &o->req);
    case LD_OUT_WAIT:
        return ld_container_wait(st, o->id, ld_outputs_step, o, &o->req);
    case LD_OUT_REMOVE:
        return ld_container_remove(st, o->id, ld_outputs_step, o, &o->req);
    case LD_OUT_WALK:
        break;
    }
    return FERRY_EINVAL;
}

static void ld_outputs_warn(ld_outputs *o, const char *what, const char *why)
{
    if (o->warning[0] == '\0')
        snprintf(o->warning, sizeof(o->warning),
                 "could not hand the outputs to uid %u (%s): %s; some may not be uploaded",
                 (unsigned)o->uid, what, why);
}

/* After a failure: remove the helper if it exists, else finish. */
static void ld_outputs_wind_up(ld_outputs *o)
{
    if (o->id[0] != '\0' && o->step != LD_OUT_REMOVE && ld_outputs_call(o, LD_OUT_REMOVE) == 0)
        return;
    ld_outputs_finish(o);
}

static void ld_outputs_step(void *arg, const ferry_http_response *res)
{
    ld_outputs *o = arg;
    o->req = NULL;
    char why[600];
    if (o->abandoned) { /* fini: only the removal goes on */
        if (o->step == LD_OUT_CREATE && ld_api_ok(res))
            ld_created_id(res, o->id, sizeof(o->id));
        ld_outputs_wind_up(o);
        return;
    }
    if (!ld_api_ok(res)) {
        if (o->step != LD_OUT_REMOVE)
            ld_outputs_warn(o, "helper container", ld_api_why(o->st, res, why, sizeof(why)));
        ld_outputs_wind_up(o);
        return;
    }
    ld_out_step next = LD_OUT_REMOVE;
    switch (o->step) {
    case LD_OUT_CREATE:
        if (ld_created_id(res, o->id, sizeof(o->id)) < 0) {
            ld_outputs_warn(o, "helper container", "no container id in the daemon's answer");
            ld_outputs_finish(o);
            return;
        }
        next = LD_OUT_START;
        break;
    case LD_OUT_START:
        next = LD_OUT_WAIT;
        break;
    case LD_OUT_WAIT:
        if (ld_wait_code(res) != 0) {
            snprintf(why, sizeof(why), "chown in the image exited with %d", ld_wait_code(res));
            ld_outputs_warn(o, "helper container", why);
        }
        break;
    case LD_OUT_REMOVE:
        ld_outputs_finish(o);
        return;
    case LD_OUT_WALK:
        break;
    }
    int rc = ld_outputs_call(o, next);
    if (rc < 0) {
        ld_outputs_warn(o, "helper container", ferry_strerror(rc));
        ld_outputs_wind_up(o);
    }
}

static void ld_outputs_walk(void *arg)
{
    ld_outputs *o = arg;
    o->need_fix = ld_outputs_need_fix(o->outputs_dir, o->uid);
}

static void ld_outputs_walked(void *arg, int status)
{
    ld_outputs *o = arg;
    if (o->abandoned || status < 0 || !o->need_fix) {
        ld_outputs_finish(o);
        return;
    }
    int rc = ld_outputs_call(o, LD_OUT_CREATE);
    if (rc < 0) {
        ld_outputs_warn(o, "helper container", ferry_strerror(rc));
        ld_outputs_finish(o);
    }
}

int ld_outputs_start(ld_state *st, const ld_outputs_args *a, ld_outputs **out)
{
    ld_outputs *o = calloc(1, sizeof(*o));
    if (o == NULL)
        return FERRY_ENOMEM;
    o->st = st;
    o->image = strdup(a->image);
    o->shell = strdup(a->shell && a->shell[0] ? a->shell : "/bin/sh");
    o->outputs_dir = strdup(a->outputs_dir);
    o->execution_id = strdup(a->execution_id ? a->execution_id : "");
    o->uid = a->uid;
    o->gid = a->gid;
    o->done = a->done;
    o->arg = a->arg;
    o->step = LD_OUT_WALK;
    int rc = o->image && o->shell && o->outputs_dir && o->execution_id ? 0 : FERRY_ENOMEM;
    if (rc == 0)
        rc = st->host->queue_work(st->ctx, ld_outputs_walk, ld_outputs_walked, o);
    if (rc < 0) {
        ld_outputs_free(o);
        return rc;
    }
    *out = o;
    return 0;
}

void ld_outputs_abandon(ld_outputs *o)
{
    o->abandoned = 1;
    /* A call in flight ends in ld_outputs_step, which removes the helper;
     * the walk cannot be in flight (fini comes after the host's work). */
}
