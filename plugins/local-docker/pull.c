/* local-docker: the image of a run, present or pulled (pull.h). */
#include "pull.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "docker_api.h"
#include "ferry/buf.h"
#include "image_ref.h"
#include "progress.h"

/* At most one "Downloading 3MB/10MB" line per this long. */
#define LD_TICK_MS 1000
/* A pull that moves nothing at all for this long has hung. */
#define LD_PULL_STALL_MS (10 * 60 * 1000)

struct ld_pull {
    ld_state *st;
    char *image;
    ld_image_ref ref;
    char *auth; /* X-Registry-Auth value: a secret, wiped once sent */
    ferry_http_request *req;
    int pulling;             /* past the inspect */
    const char *skipped_for; /* credentials for another registry (not a secret) */
    char skipped_server[256];
    char *line; /* a progress line not complete yet */
    size_t line_len, line_cap;
    char error[512]; /* a failure the stream reported */
    uint64_t last_tick;
    ld_status_fn status;
    ld_pull_done_fn done;
    void *arg;
};

static void ld_pull_free(ld_pull *p)
{
    ld_secret_free(p->auth);
    free(p->image);
    free(p->line);
    free(p);
}

static void ld_pull_finish(ld_pull *p, int rc, const char *why)
{
    p->req = NULL;
    p->done(p->arg, rc, why);
    ld_pull_free(p);
}

static void ld_pull_status(ld_pull *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void ld_pull_status(ld_pull *p, const char *fmt, ...)
{
    char text[600];
    va_list ap;
    va_start(ap, fmt);
    size_t n = ld_status_line(text, sizeof(text), fmt, ap);
    va_end(ap);
    if (n > 0)
        p->status(p->arg, text, n);
}

static void ld_pull_on_line(ld_pull *p, const char *line, size_t len)
{
    char text[512];
    switch (ld_progress_line(line, len, text, sizeof(text))) {
    case LD_PROGRESS_ERROR:
        if (p->error[0] == '\0')
            snprintf(p->error, sizeof(p->error), "%s", text);
        break;
    case LD_PROGRESS_TICK: {
        uint64_t now = uv_now(p->st->loop);
        if (p->last_tick != 0 && now - p->last_tick < LD_TICK_MS)
            break;
        p->last_tick = now;
        ld_pull_status(p, "%s", text);
        break;
    }
    case LD_PROGRESS_STATUS:
        ld_pull_status(p, "%s", text);
        break;
    case LD_PROGRESS_NONE:
        break;
    }
}

/* The answer's lines as they come; a line may span reads. */
static int ld_pull_on_data(void *arg, const char *data, size_t len)
{
    ld_pull *p = arg;
    while (len > 0) {
        const char *nl = memchr(data, '\n', len);
        size_t take = nl ? (size_t)(nl - data) : len;
        size_t need = p->line_len + take + 1;
        if (need > (1 << 20) || FERRY_GROW(p->line, p->line_cap, need) != 0)
            return 1; /* no progress line is a megabyte long */
        memcpy(p->line + p->line_len, data, take);
        p->line_len += take;
        if (nl == NULL)
            break;
        ld_pull_on_line(p, p->line, p->line_len);
        p->line_len = 0;
        data += take + 1;
        len -= take + 1;
    }
    return 0;
}

static void ld_pull_on_created(void *arg, const ferry_http_response *res)
{
    ld_pull *p = arg;
    char why[700], msg[600];
    if (res->code == FERRY_ECANCELED) {
        ld_pull_finish(p, FERRY_ECANCELED, "canceled");
        return;
    }
    if (p->line_len > 0) /* a last line without its newline */
        ld_pull_on_line(p, p->line, p->line_len);
    if (!ld_api_ok(res) || p->error[0] != '\0') {
        const char *m = ld_api_ok(res) ? p->error : ld_api_why(p->st, res, msg, sizeof(msg));
        snprintf(why, sizeof(why), "pulling %s: %s", p->image, m);
        ld_pull_finish(p, res->status == 404 ? FERRY_ENOENT : FERRY_EPROVIDER, why);
        return;
    }
    ld_pull_status(p, "Pulled %s", p->image);
    ld_pull_finish(p, 0, NULL);
}

static int ld_pull_create(ld_pull *p)
{
    char *repo = ld_api_escape(p->ref.repository), *tag = ld_api_escape(p->ref.tag);
    char *path = NULL;
    int rc = FERRY_ENOMEM;
    if (repo && tag && asprintf(&path, "/images/create?fromImage=%s&tag=%s", repo, tag) >= 0) {
        ld_call c = {.method = "POST",
                     .path = path,
                     .auth = p->auth,
                     .on_data = ld_pull_on_data,
                     .stall_ms = LD_PULL_STALL_MS};
        rc = ld_api_start(p->st, &c, ld_pull_on_created, p, &p->req);
    }
    free(repo);
    free(tag);
    free(path);
    /* Sent (or never to be): the only copy left is curl's, in the request. */
    ld_secret_free(p->auth);
    p->auth = NULL;
    return rc;
}

static void ld_pull_on_inspect(void *arg, const ferry_http_response *res)
{
    ld_pull *p = arg;
    char why[700], msg[600];
    if (res->code == FERRY_ECANCELED) {
        ld_pull_finish(p, FERRY_ECANCELED, "canceled");
        return;
    }
    if (ld_api_ok(res)) {
        ld_pull_finish(p, 0, NULL);
        return;
    }
    if (res->code != 0 || res->status != 404) {
        snprintf(why, sizeof(why), "looking for image %s: %s", p->image,
                 ld_api_why(p->st, res, msg, sizeof(msg)));
        ld_pull_finish(p, res->code ? res->code : FERRY_EPROVIDER, why);
        return;
    }
    p->pulling = 1;
    ld_pull_status(p, "Pulling %s", p->image);
    if (p->skipped_for != NULL)
        ld_pull_status(p, "The registry credentials are for %s, not %s: pulling without them",
                       p->skipped_for, p->ref.registry);
    int rc = ld_pull_create(p);
    if (rc < 0) {
        snprintf(why, sizeof(why), "pulling %s: %s", p->image, ferry_strerror(rc));
        ld_pull_finish(p, rc, why);
    }
}

/* The credentials' header value, when they are for this image's registry. */
static int ld_pull_auth(ld_pull *p, const ld_pull_args *a)
{
    if (a->username == NULL || a->username[0] == '\0')
        return 0;
    if (!ld_registry_matches(a->registry_server, p->ref.registry)) {
        /* Credentials go only where they were meant to: a pull from
         * another registry goes without. */
        snprintf(p->skipped_server, sizeof(p->skipped_server), "%s",
                 a->registry_server ? a->registry_server : "(no registry)");
        p->skipped_for = p->skipped_server;
        return 0;
    }
    p->auth = ld_registry_auth(a->username, a->password, a->registry_server);
    return p->auth ? 0 : FERRY_ENOMEM;
}

int ld_pull_start(ld_state *st, const ld_pull_args *a, ld_pull **out, char *why, size_t why_cap)
{
    ld_pull *p = calloc(1, sizeof(*p));
    if (p == NULL || (p->image = strdup(a->image)) == NULL) {
        free(p);
        snprintf(why, why_cap, "out of memory");
        return FERRY_ENOMEM;
    }
    p->st = st;
    p->status = a->status;
    p->done = a->done;
    p->arg = a->arg;
    if (ld_image_ref_parse(a->image, &p->ref) < 0) {
        snprintf(why, why_cap, "'%.200s' is not an image reference", a->image);
        ld_pull_free(p);
        return FERRY_EINVAL;
    }
    int rc = ld_pull_auth(p, a);
    char *path = NULL;
    if (rc == 0 && asprintf(&path, "/images/%s/json", p->image) < 0)
        rc = FERRY_ENOMEM;
    if (rc == 0) {
        ld_call c = {.path = path, .timeout_ms = 60000};
        rc = ld_api_start(st, &c, ld_pull_on_inspect, p, &p->req);
    }
    free(path);
    if (rc < 0) {
        snprintf(why, why_cap, "looking for image %s: %s", a->image, ferry_strerror(rc));
        ld_pull_free(p);
        return rc;
    }
    *out = p;
    return 0;
}

void ld_pull_cancel(ld_pull *p)
{
    if (p != NULL && p->req != NULL)
        ferry_http_request_cancel(p->req);
}
