/* s3-storage: get_file.
 *
 * A HEAD tells the object's size and ETag; the object then comes in ranges
 * of part_size, parallel_parts at once, each with If-Match on that ETag so
 * that an object replaced meanwhile fails the get instead of mixing two
 * versions. A range cut off by a dropped connection or a stall resumes from
 * its last byte when the call is retried. Bytes go into a temporary file
 * next to the destination, renamed over it only once all are in: a failed
 * get leaves no file behind, and never a partial one.
 *
 * When the HEAD is refused (404, 403) a plain GET follows, so that the op
 * reports S3's own error code (NoSuchKey, AccessDenied...) from its body;
 * HEAD answers carry none.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "s3.h"

typedef struct s3_range {
    struct s3_fetch *f;
    int64_t start, end; /* inclusive; end < 0: to the end of the object */
    int64_t got;
    s3_call *call;
} s3_range;

typedef struct s3_fetch {
    s3_state *st;
    ferry_op *op;
    char *key;
    char *path;
    char *tmp;
    int fd;
    int64_t total; /* -1 until the first answer */
    char etag[256];
    s3_range *ranges;
    int n_ranges;
    int next_range;
    int in_flight;
    int finishing;
    int busy;
    int status;
    ferry_error_detail err;
    int work_rc;
} s3_fetch;

static void s3_fetch_pump(s3_fetch *f);

/* ------------------------------------------------------------------------ */
/* The end                                                                  */

static void s3_fetch_free(s3_fetch *f)
{
    if (f->fd >= 0)
        close(f->fd);
    if (f->tmp)
        unlink(f->tmp);
    free(f->ranges);
    free(f->key);
    free(f->path);
    free(f->tmp);
    free(f);
}

static void s3_fetch_fail(s3_fetch *f, int status, const ferry_error_detail *err)
{
    if (f->status == 0) {
        f->status = status;
        f->err = *err;
    }
    f->busy++;
    for (int i = 0; i < f->n_ranges; i++)
        if (f->ranges[i].call)
            s3_call_cancel(f->ranges[i].call);
    f->busy--;
}

static void s3_fetch_end(s3_fetch *f)
{
    if (!f->st->closing)
        s3_op_finish(f->st, f->op, f->status, f->total, NULL, &f->err);
    s3_fetch_free(f);
}

/* On the worker pool: the file is complete; put it in place. */
static void s3_rename_work(void *arg)
{
    s3_fetch *f = arg;
    f->work_rc = 0;
    if (close(f->fd) != 0)
        f->work_rc = -errno;
    f->fd = -1;
    if (f->work_rc == 0 && rename(f->tmp, f->path) != 0)
        f->work_rc = -errno;
}

static void s3_rename_after(void *arg, int status)
{
    s3_fetch *f = arg;
    if (status < 0 || f->work_rc != 0) {
        int e = f->work_rc ? -f->work_rc : ECANCELED;
        ferry_error_set(&f->err, FERRY_EIO, 0, NULL, "S3 GET %s: cannot write %s: %s", f->key,
                        f->path, strerror(e));
        f->status = FERRY_EIO;
    } else {
        free(f->tmp); /* renamed: nothing to remove */
        f->tmp = NULL;
    }
    s3_fetch_end(f);
}

static void s3_fetch_finish(s3_fetch *f)
{
    f->finishing = 1;
    if (f->status == 0) {
        int64_t got = 0;
        for (int i = 0; i < f->n_ranges; i++)
            got += f->ranges[i].got;
        if (got != f->total) {
            ferry_error_detail e;
            ferry_error_set(&e, FERRY_EPROTO, 1, NULL,
                            "S3 GET %s: %" PRId64 " bytes received of %" PRId64, f->key, got,
                            f->total);
            s3_fetch_fail(f, FERRY_EPROTO, &e);
        }
    }
    if (f->status == 0 &&
        f->st->host->queue_work(f->st->ctx, s3_rename_work, s3_rename_after, f) == 0)
        return;
    if (f->status == 0)
        ferry_error_set(&f->err, f->status = FERRY_EIO, 1, NULL, "S3 GET %s: no worker", f->key);
    s3_fetch_end(f);
}

/* ------------------------------------------------------------------------ */
/* Ranges                                                                   */

static int s3_range_on_data(void *arg, const char *data, size_t len)
{
    s3_call *c = arg;
    s3_range *r = c->arg;
    s3_fetch *f = r->f;
    for (size_t off = 0; off < len;) {
        ssize_t n = pwrite(f->fd, data + off, len - off, (off_t)(r->start + r->got));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            ferry_error_detail e;
            ferry_error_set(&e, FERRY_EIO, 0, NULL, "S3 GET %s: cannot write %s: %s", f->key,
                            f->tmp, strerror(errno));
            if (f->status == 0) {
                f->status = FERRY_EIO;
                f->err = e;
            }
            return 1;
        }
        off += (size_t)n;
        r->got += n;
    }
    return 0;
}

/* Before each attempt: ask for what is still missing. A retry starts the
 * range over when what came may not fit with what comes next: a server
 * that ignored Range (the whole object again), a first answer whose ETag
 * we never saw (the object may have been replaced), or an attempt that got
 * every byte and failed anyway. */
static int s3_range_prepare(s3_call *c)
{
    s3_range *r = c->arg;
    s3_fetch *f = r->f;
    if (c->attempt > 1 && r->got > 0 &&
        (c->http_status == 200 || f->etag[0] == '\0' ||
         (r->end >= 0 && r->start + r->got > r->end)))
        r->got = 0;
    char value[80];
    if (r->end >= 0)
        snprintf(value, sizeof(value), "bytes=%" PRId64 "-%" PRId64, r->start + r->got, r->end);
    else if (r->got > 0)
        snprintf(value, sizeof(value), "bytes=%" PRId64 "-", r->start + r->got);
    else
        value[0] = '\0';
    int rc = s3_call_set_header(c, "Range", value[0] ? value : NULL);
    if (rc == 0 && f->etag[0])
        rc = s3_call_set_header(c, "If-Match", f->etag);
    return rc;
}

static int s3_range_start(s3_fetch *f, s3_range *r, s3_call_done_fn done)
{
    s3_call *c = s3_call_new(&f->st->eng, "GET", f->key, done, r);
    if (c == NULL)
        return FERRY_ENOMEM;
    c->on_data = s3_range_on_data;
    c->prepare = s3_range_prepare;
    r->call = c;
    f->in_flight++;
    int rc = s3_call_start(c);
    if (rc != 0) {
        r->call = NULL;
        f->in_flight--;
    }
    return rc;
}

static void s3_range_done(s3_call *c)
{
    s3_range *r = c->arg;
    s3_fetch *f = r->f;
    r->call = NULL;
    f->in_flight--;
    if (c->status != 0 && !f->st->closing)
        s3_fetch_fail(f, c->status, &c->err);
    else if (c->status == 0 && r->end < 0)
        f->total = r->got; /* the one range of an object of unknown size */
    else if (c->status == 0 && r->got != r->end - r->start + 1) {
        ferry_error_detail e;
        ferry_error_set(&e, FERRY_EPROTO, 1, NULL,
                        "S3 GET %s: bytes %" PRId64 "-%" PRId64 ": %" PRId64 " received", f->key,
                        r->start, r->end, r->got);
        s3_fetch_fail(f, FERRY_EPROTO, &e);
    }
    s3_fetch_pump(f);
}

/* Starts ranges up to parallel_parts; finishes once none is left. */
static void s3_fetch_pump(s3_fetch *f)
{
    if (f->busy > 0 || f->finishing)
        return;
    if (f->st->closing) {
        if (f->in_flight == 0)
            s3_fetch_free(f);
        return;
    }
    while (f->status == 0 && f->in_flight < f->st->cfg.parallel_parts &&
           f->next_range < f->n_ranges) {
        int rc = s3_range_start(f, &f->ranges[f->next_range++], s3_range_done);
        if (rc != 0) {
            ferry_error_detail e;
            ferry_error_set(&e, rc, 0, NULL, "S3 GET %s: %s", f->key, ferry_strerror(rc));
            s3_fetch_fail(f, rc, &e);
        }
    }
    if (f->in_flight == 0)
        s3_fetch_finish(f);
}

/* ------------------------------------------------------------------------ */
/* The HEAD first                                                           */

/* Ranges of part_size over `total` bytes; one open range (no Range header)
 * for an empty object or one of unknown size (total < 0). */
static int s3_plan_ranges(s3_fetch *f, int64_t total)
{
    int64_t part = f->st->cfg.part_size;
    int64_t n = total > 0 ? (total + part - 1) / part : 1;
    f->ranges = calloc((size_t)n, sizeof(*f->ranges));
    if (f->ranges == NULL)
        return FERRY_ENOMEM;
    f->n_ranges = (int)n;
    for (int64_t i = 0; i < n; i++) {
        s3_range *r = &f->ranges[i];
        r->f = f;
        r->start = i * part;
        r->end = total <= 0 ? -1 : r->start + part < total ? r->start + part - 1 : total - 1;
    }
    return 0;
}

static void s3_head_done(s3_call *c)
{
    s3_fetch *f = c->arg;
    f->in_flight--;
    if (f->st->closing) {
        s3_fetch_pump(f);
        return;
    }
    const ferry_http_response res = {.struct_size = sizeof(res), .headers = c->resp_headers};
    char len[32];
    int64_t total = -1;
    if (c->status == 0) {
        if (ferry_http_header(&res, "ETag", f->etag, sizeof(f->etag)) == NULL)
            f->etag[0] = '\0';
        if (ferry_http_header(&res, "Content-Length", len, sizeof(len)))
            total = strtoll(len, NULL, 10);
    } else if (c->http_status < 400 || c->http_status >= 500) {
        s3_fetch_fail(f, c->status, &c->err); /* no answer, or S3 failing: a GET would too */
        s3_fetch_pump(f);
        return;
    }
    f->total = total;
    int rc = s3_plan_ranges(f, total);
    if (rc != 0) {
        ferry_error_detail e;
        ferry_error_set(&e, rc, 0, NULL, "S3 GET %s: %s", f->key, ferry_strerror(rc));
        s3_fetch_fail(f, rc, &e);
    }
    s3_fetch_pump(f);
}

int s3_get_file(s3_state *st, const char *full_key, const char *path, ferry_op *op)
{
    s3_fetch *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return FERRY_ENOMEM;
    f->st = st;
    f->op = op;
    f->fd = -1;
    f->total = -1;
    f->key = strdup(full_key);
    f->path = strdup(path);
    if (f->key == NULL || f->path == NULL || asprintf(&f->tmp, "%s.ferry-get-XXXXXX", path) < 0) {
        f->tmp = NULL;
        s3_fetch_free(f);
        return FERRY_ENOMEM;
    }
    /* Next to the destination, so that the rename is atomic. */
    f->fd = mkostemp(f->tmp, O_CLOEXEC);
    if (f->fd < 0) {
        int e = errno;
        free(f->tmp);
        f->tmp = NULL;
        s3_fetch_free(f);
        return e == ENOENT || e == ENOTDIR ? FERRY_ENOENT : FERRY_EIO;
    }
    fchmod(f->fd, 0644);
    s3_call *c = s3_call_new(&st->eng, "HEAD", f->key, s3_head_done, f);
    if (c == NULL) {
        s3_fetch_free(f);
        return FERRY_ENOMEM;
    }
    f->in_flight = 1;
    int rc = s3_call_start(c);
    if (rc != 0)
        s3_fetch_free(f);
    return rc;
}
