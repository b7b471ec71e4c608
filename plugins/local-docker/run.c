/* local-docker: one run, from its spec to `exited`.
 *
 *   version   GET /version, once per instance (docker_api.c)
 *   image     present, or pulled (pull.c)
 *   create    POST /containers/create (body.c)
 *   check     the program the container starts (the shell, a "#!" line's
 *             interpreter) exists in the image: its init would only say so
 *             on stderr with code 127, like a script's own missing command
 *   attach    POST /containers/{id}/attach, held open for the output
 *   start     once the attach is answered, so nothing written is lost
 *   running   the attach streams the output (frames.c), wait gives the code
 *   inspect   State.OOMKilled
 *   outputs   handed to the agent when the image ran as another user (outputs.c)
 *   remove    DELETE ?force=1, always, whatever happened before
 *
 * Each step is one request whose answer starts the next. A failure goes
 * straight to the removal; `exited` comes after it, exactly once. stop()
 * cancels what can be cancelled (the pull) and otherwise asks the daemon to
 * stop the container; the run then winds up like any other.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "body.h"
#include "container.h"
#include "frames.h"
#include "image_ref.h"
#include "outputs.h"
#include "progress.h"
#include "pull.h"

/* After the container ended, how long its output may still arrive. */
#define LD_DRAIN_MS 5000

typedef enum ld_phase {
    LD_VERSION,
    LD_IMAGE,
    LD_CREATE,
    LD_CHECK,
    LD_ATTACH,
    LD_START,
    LD_RUNNING,
    LD_INSPECT,
    LD_OUTPUTS,
    LD_REMOVE,
} ld_phase;

typedef enum ld_timer_use {
    LD_TIMER_NONE,
    LD_TIMER_CANCEL,
    LD_TIMER_KILL,
    LD_TIMER_DRAIN
} ld_timer_use;

struct ferry_run {
    ld_state *st;
    struct ferry_run *prev, *next; /* st->runs */
    ferry_run_callbacks cb;
    ld_phase phase;
    char *execution_id, *image, *shell, *outputs_dir;
    char *program; /* the absolute path the container execs first, or NULL */
    /* Credentials for the pull: secrets, wiped once it started. */
    char *registry_server, *registry_username, *registry_password;
    json_t *body;
    uid_t out_uid; /* owner of outputs_dir: whom the outputs must belong to */
    gid_t out_gid;
    char name[128];
    char id[LD_ID_CAP];      /* the container, once created */
    ferry_http_request *req; /* the step in flight */
    ferry_http_request *attach, *wait, *stop_req;
    ld_pull *pull;
    ld_outputs *outputs;
    ld_frames frames;
    int attach_done, wait_done;
    int have_code; /* the wait gave an exit code */
    int exit_code;
    int oom_killed;
    int stopping;
    int grace_ms;
    int failed;
    char reason[700];
    int silent; /* fini: the host is gone, no more callbacks */
    int reported;
    uv_timer_t timer;
    ld_timer_use timer_use;
};

static void ld_step_remove(ferry_run *r);
static void ld_wind_up(ferry_run *r);

/* ------------------------------------------------------------------------ */
/* Output to the host                                                       */

static void ld_emit(ferry_run *r, ferry_stream stream, const char *data, size_t len)
{
    if (!r->silent && !r->reported && len > 0)
        r->cb.output(r->cb.arg, stream, data, len);
}

static void ld_on_status(void *arg, const char *text, size_t len)
{
    ld_emit(arg, FERRY_STREAM_STATUS, text, len);
}

static void ld_status(ferry_run *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void ld_status(ferry_run *r, const char *fmt, ...)
{
    char text[800];
    va_list ap;
    va_start(ap, fmt);
    size_t n = ld_status_line(text, sizeof(text), fmt, ap);
    va_end(ap);
    if (n > 0)
        ld_emit(r, FERRY_STREAM_STATUS, text, n);
}

/* ------------------------------------------------------------------------ */
/* The end                                                                  */

static void ld_run_unlink(ferry_run *r)
{
    ld_state *st = r->st;
    if (r->prev != NULL)
        r->prev->next = r->next;
    else if (st->runs == r)
        st->runs = r->next;
    if (r->next != NULL)
        r->next->prev = r->prev;
    r->prev = r->next = NULL;
}

static void ld_run_closed(uv_handle_t *h)
{
    ferry_run *r = h->data;
    ld_state *st = r->st;
    free(r->execution_id);
    free(r->image);
    free(r->shell);
    free(r->outputs_dir);
    free(r->program);
    ld_secret_free(r->registry_server);
    ld_secret_free(r->registry_username);
    ld_secret_free(r->registry_password);
    json_decref(r->body);
    free(r);
    ld_state_unref(st);
}

/* Why the run ended, for `exited`; NULL for a plain exit. */
static const char *ld_reason(ferry_run *r, char *buf, size_t cap)
{
    if (r->stopping)
        return "stopped";
    if (r->failed)
        return r->reason;
    if (r->oom_killed)
        return "oom-killed";
    if (r->exit_code > 128 && r->exit_code <= 128 + 64) {
        /* Docker only gives the code: 128+N is how shells and its init
         * report a death by signal N. */
        int sig = r->exit_code - 128;
        snprintf(buf, cap, "killed by signal %d (%s)", sig, strsignal(sig));
        return buf;
    }
    return NULL;
}

/* Everything is over (container removed): `exited`, then the run goes. */
static void ld_report(ferry_run *r)
{
    uv_timer_stop(&r->timer);
    ld_run_unlink(r);
    int silent = r->silent || r->reported;
    r->reported = 1;
    if (!silent) {
        char buf[128];
        r->cb.exited(r->cb.arg, r->have_code ? r->exit_code : -1, ld_reason(r, buf, sizeof(buf)));
    }
    uv_close((uv_handle_t *)&r->timer, ld_run_closed);
}

/* Notes the first failure; "could not start: ..." until the commands ran. */
static void ld_fail(ferry_run *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void ld_fail(ferry_run *r, const char *fmt, ...)
{
    if (r->failed)
        return;
    r->failed = 1;
    char what[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    snprintf(r->reason, sizeof(r->reason), "%s%s", r->phase < LD_RUNNING ? "could not start: " : "",
             what);
    if (!r->silent)
        ld_log(r->st, FERRY_LOG_WARN, "execution %s: %s", r->execution_id, r->reason);
}

/* Cancels the requests of the running phase; their answers are ignored. */
static void ld_cancel_streams(ferry_run *r)
{
    if (r->attach != NULL)
        ferry_http_request_cancel(r->attach);
    if (r->wait != NULL)
        ferry_http_request_cancel(r->wait);
    if (r->stop_req != NULL)
        ferry_http_request_cancel(r->stop_req);
}

/* After a failure or for fini: stop what runs, remove the container if
 * there is one, then report. */
static void ld_wind_up(ferry_run *r)
{
    uv_timer_stop(&r->timer);
    ld_cancel_streams(r);
    if (r->req != NULL || r->pull != NULL || r->outputs != NULL)
        return; /* its answer comes back here */
    if (r->id[0] != '\0' && r->phase != LD_REMOVE)
        ld_step_remove(r);
    else
        ld_report(r);
}

/* ------------------------------------------------------------------------ */
/* remove, outputs, inspect                                                 */

static void ld_on_removed(void *arg, const ferry_http_response *res)
{
    ferry_run *r = arg;
    r->req = NULL;
    char why[600];
    if (!ld_api_ok(res) && res->status != 404 && !r->silent)
        ld_log(r->st, FERRY_LOG_WARN, "execution %s: could not remove container %.12s: %s",
               r->execution_id, r->id, ld_api_why(r->st, res, why, sizeof(why)));
    r->id[0] = '\0';
    ld_report(r);
}

static void ld_step_remove(ferry_run *r)
{
    r->phase = LD_REMOVE;
    if (ld_container_remove(r->st, r->id, ld_on_removed, r, &r->req) < 0)
        ld_report(r); /* out of memory: cleanup will find it */
}

static void ld_on_outputs(void *arg, const char *warning)
{
    ferry_run *r = arg;
    r->outputs = NULL;
    if (warning != NULL && !r->silent) {
        ld_log(r->st, FERRY_LOG_WARN, "execution %s: %s", r->execution_id, warning);
        ld_status(r, "%s", warning);
    }
    ld_step_remove(r);
}

static void ld_step_outputs(ferry_run *r)
{
    r->phase = LD_OUTPUTS;
    if (r->silent || r->outputs_dir == NULL) {
        ld_step_remove(r);
        return;
    }
    ld_outputs_args a = {.image = r->image,
                         .shell = r->shell,
                         .outputs_dir = r->outputs_dir,
                         .execution_id = r->execution_id,
                         .uid = r->out_uid,
                         .gid = r->out_gid,
                         .done = ld_on_outputs,
                         .arg = r};
    if (ld_outputs_start(r->st, &a, &r->outputs) < 0)
        ld_step_remove(r);
}

static void ld_on_inspected(void *arg, const ferry_http_response *res)
{
    ferry_run *r = arg;
    r->req = NULL;
    if (ld_api_ok(res))
        r->oom_killed = ld_inspect_oom_killed(res);
    ld_step_outputs(r);
}

/* Both the output and the exit code are in. */
static void ld_maybe_ended(ferry_run *r)
{
    if (r->phase != LD_RUNNING || !r->attach_done || !r->wait_done)
        return;
    uv_timer_stop(&r->timer);
    if (r->stop_req != NULL)
        ferry_http_request_cancel(r->stop_req);
    if (r->silent || r->failed) {
        ld_wind_up(r);
        return;
    }
    r->phase = LD_INSPECT;
    if (ld_container_inspect(r->st, r->id, ld_on_inspected, r, &r->req) < 0)
        ld_step_outputs(r);
}

/* ------------------------------------------------------------------------ */
/* running: attach, wait, stop                                              */

static void ld_on_timer(uv_timer_t *t);

static void ld_on_wait(void *arg, const ferry_http_response *res)
{
    ferry_run *r = arg;
    r->wait = NULL;
    r->wait_done = 1;
    char why[600];
    if (res->code == FERRY_ECANCELED) {
        /* wound up elsewhere */
    } else if (!ld_api_ok(res) || ld_wait_code(res) < 0) {
        ld_fail(r, "lost the container: %s",
                ld_api_ok(res) ? "no exit code in the daemon's answer"
                               : ld_api_why(r->st, res, why, sizeof(why)));
    } else {
        r->exit_code = ld_wait_code(res);
        r->have_code = 1;
    }
    if (!r->attach_done && r->phase == LD_RUNNING) {
        /* The output ends with the container; a daemon that keeps the
         * stream open must not keep the run alive. */
        uv_timer_stop(&r->timer);
        r->timer_use = LD_TIMER_DRAIN;
        uv_timer_start(&r->timer, ld_on_timer, LD_DRAIN_MS, 0);
    }
    ld_maybe_ended(r);
}

static void ld_on_stopped(void *arg, const ferry_http_response *res)
{
    ferry_run *r = arg;
    r->stop_req = NULL;
    char why[600];
    /* 304: it had ended already; 404: gone. The wait tells the rest. */
    if (res->code != FERRY_ECANCELED && !ld_api_ok(res) && res->status != 304 &&
        res->status != 404 && !r->silent)
        ld_log(r->st, FERRY_LOG_WARN, "execution %s: stopping container %.12s: %s", r->execution_id,
               r->id, ld_api_why(r->st, res, why, sizeof(why)));
}

static void ld_on_killed(void *arg, const ferry_http_response *res)
{
    (void)res; /* a container that ended meanwhile answers 409: fine */
    ferry_run *r = arg;
    r->stop_req = NULL;
}

/* POST /stop with the grace in whole seconds (the image's stop signal, then
 * SIGKILL), and our own timer for a grace that is not whole seconds. */
static void ld_stop_container(ferry_run *r)
{
    if (r->stop_req != NULL)
        ferry_http_request_cancel(r->stop_req);
    if (r->grace_ms <= 0) {
        ld_container_kill(r->st, r->id, "KILL", ld_on_killed, r, &r->stop_req);
        return;
    }
    ld_container_stop(r->st, r->id, (r->grace_ms + 999) / 1000, ld_on_stopped, r, &r->stop_req);
    uv_timer_stop(&r->timer);
    r->timer_use = LD_TIMER_KILL;
    uv_timer_start(&r->timer, ld_on_timer, (uint64_t)r->grace_ms, 0);
}

static void ld_on_timer(uv_timer_t *t)
{
    ferry_run *r = t->data;
    ld_timer_use use = r->timer_use;
    r->timer_use = LD_TIMER_NONE;
    switch (use) {
    case LD_TIMER_CANCEL: /* a stop before the container exists */
        if (r->pull != NULL)
            ld_pull_cancel(r->pull);
        else if (r->req != NULL && r->phase == LD_VERSION)
            ferry_http_request_cancel(r->req);
        break;
    case LD_TIMER_KILL:
        if (r->phase == LD_RUNNING && !r->wait_done) {
            if (r->stop_req != NULL)
                ferry_http_request_cancel(r->stop_req);
            ld_container_kill(r->st, r->id, "KILL", ld_on_killed, r, &r->stop_req);
        }
        break;
    case LD_TIMER_DRAIN:
        if (r->attach != NULL)
            ferry_http_request_cancel(r->attach);
        break;
    case LD_TIMER_NONE:
        break;
    }
}

static int ld_on_frame(void *arg, int type, const char *data, size_t len)
{
    ferry_run *r = arg;
    if (type == LD_FRAME_SYSTEMERR) {
        /* The daemon's own complaint, inside the stream. */
        ld_emit(r, FERRY_STREAM_STATUS, "docker: ", 8);
        ld_emit(r, FERRY_STREAM_STATUS, data, len);
        ld_emit(r, FERRY_STREAM_STATUS, "\n", 1);
        return 0;
    }
    ld_emit(r, type == LD_FRAME_STDERR ? FERRY_STREAM_STDERR : FERRY_STREAM_STDOUT, data, len);
    return 0;
}

static int ld_on_attach_data(void *arg, const char *data, size_t len)
{
    ferry_run *r = arg;
    int rc = ld_frames_feed(&r->frames, data, len, ld_on_frame, r);
    if (rc != LD_FRAMES_OK && !r->silent)
        ld_log(r->st, FERRY_LOG_WARN,
               "execution %s: the output stream is not Docker's "
               "multiplexed format; the rest of the output is dropped",
               r->execution_id);
    return rc == LD_FRAMES_OK ? 0 : 1;
}

static void ld_on_attach_done(void *arg, const ferry_http_response *res)
{
    ferry_run *r = arg;
    r->attach = NULL;
    r->attach_done = 1;
    char why[600];
    if (r->phase == LD_ATTACH) { /* no start went out: the attach failed */
        if (!r->silent && !r->stopping)
            ld_fail(r, "attaching to the container: %s", ld_api_why(r->st, res, why, sizeof(why)));
        ld_wind_up(r);
        return;
    }
    int cut = ld_frames_end(&r->frames);
    if (res->code != FERRY_ECANCELED && !r->silent) {
        if (res->code != 0 || !ld_api_ok(res))
            ld_log(r->st, FERRY_LOG_WARN, "execution %s: the output stream broke: %s",
                   r->execution_id, ld_api_why(r->st, res, why, sizeof(why)));
        else if (cut != LD_FRAMES_OK)
            ld_log(r->st, FERRY_LOG_WARN, "execution %s: the output stream %s", r->execution_id,
                   cut == LD_FRAMES_BAD_TYPE ? "was not Docker's multiplexed format"
                                             : "ended inside a frame");
    }
    ld_maybe_ended(r);
}

static void ld_on_started(void *arg, const ferry_http_response *res)
{
    ferry_run *r = arg;
    r->req = NULL;
    char why[600];
    if (!ld_api_ok(res)) {
        if (!r->silent && !r->stopping)
            ld_fail(r, "%s", ld_api_why(r->st, res, why, sizeof(why)));
        ld_wind_up(r);
        return;
    }
    r->phase = LD_RUNNING;
    if (r->silent) {
        ld_wind_up(r);
        return;
    }
    if (ld_container_wait(r->st, r->id, ld_on_wait, r, &r->wait) < 0) {
        ld_fail(r, "waiting for the container: out of memory");
        ld_wind_up(r);
        return;
    }
    if (r->stopping)
        ld_stop_container(r);
}

/* The daemon answered the attach: it listens, the start may go. */
static int ld_on_attach_headers(void *arg, long status, const char *headers)
{
    (void)headers;
    ferry_run *r = arg;
    if (status < 200 || status >= 300 || r->phase != LD_ATTACH)
        return 0; /* an error: its body reaches ld_on_attach_done */
    if (r->stopping || r->silent)
        return 1; /* never started: abort the attach, then remove */
    r->phase = LD_START;
    if (ld_container_start(r->st, r->id, ld_on_started, r, &r->req) < 0) {
        r->phase = LD_ATTACH; /* the aborted attach winds it up */
        ld_fail(r, "starting the container: out of memory");
        return 1;
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* create, image, version                                                   */

static void ld_step_attach(ferry_run *r)
{
    r->phase = LD_ATTACH;
    if (ld_container_attach(r->st, r->id, ld_on_attach_headers, ld_on_attach_data,
                            ld_on_attach_done, r, &r->attach) < 0) {
        ld_fail(r, "attaching to the container: out of memory");
        ld_wind_up(r);
    }
}

static void ld_on_checked(void *arg, const ferry_http_response *res)
{
    ferry_run *r = arg;
    r->req = NULL;
    if (res->code == 0 && res->status == 404 && !r->silent && !r->stopping)
        ld_fail(r, "%s: no such file in image %s", r->program, r->image);
    if (r->failed || r->stopping || r->silent) {
        ld_wind_up(r);
        return;
    }
    ld_step_attach(r); /* any other answer: let the start speak */
}

static void ld_on_created(void *arg, const ferry_http_response *res)
{
    ferry_run *r = arg;
    r->req = NULL;
    char why[600];
    if (!ld_api_ok(res) || ld_created_id(res, r->id, sizeof(r->id)) < 0) {
        if (!r->silent && !r->stopping)
            ld_fail(r, "creating the container: %s",
                    ld_api_ok(res) ? "no container id in the daemon's answer"
                                   : ld_api_why(r->st, res, why, sizeof(why)));
        ld_wind_up(r);
        return;
    }
    if (r->stopping || r->silent) {
        ld_wind_up(r);
        return;
    }
    if (r->program == NULL) {
        ld_step_attach(r);
        return;
    }
    r->phase = LD_CHECK;
    if (ld_container_stat(r->st, r->id, r->program, ld_on_checked, r, &r->req) < 0)
        ld_step_attach(r);
}

static void ld_step_create(ferry_run *r)
{
    r->phase = LD_CREATE;
    if (ld_container_create(r->st, r->body, r->name, ld_on_created, r, &r->req) < 0) {
        ld_fail(r, "creating the container: out of memory");
        ld_wind_up(r);
    }
}

static void ld_on_image(void *arg, int rc, const char *why)
{
    ferry_run *r = arg;
    r->pull = NULL;
    if (rc < 0 && !r->silent && !r->stopping)
        ld_fail(r, "%s", why);
    if (rc < 0 || r->stopping || r->silent) {
        ld_wind_up(r);
        return;
    }
    ld_step_create(r);
}

/* The credentials go to the pull, and nowhere else, then are wiped. */
static void ld_forget_credentials(ferry_run *r)
{
    ld_secret_free(r->registry_server);
    ld_secret_free(r->registry_username);
    ld_secret_free(r->registry_password);
    r->registry_server = r->registry_username = r->registry_password = NULL;
}

static void ld_step_image(ferry_run *r)
{
    r->phase = LD_IMAGE;
    ld_pull_args a = {.image = r->image,
                      .registry_server = r->registry_server,
                      .username = r->registry_username,
                      .password = r->registry_password,
                      .status = ld_on_status,
                      .done = ld_on_image,
                      .arg = r};
    char why[600];
    int rc = ld_pull_start(r->st, &a, &r->pull, why, sizeof(why));
    ld_forget_credentials(r);
    if (rc < 0) {
        ld_fail(r, "%s", why);
        ld_wind_up(r);
    }
}

static void ld_on_version(void *arg, int rc, const char *why)
{
    ferry_run *r = arg;
    r->req = NULL;
    if (rc < 0 && !r->silent && !r->stopping)
        ld_fail(r, "%s", why);
    if (rc < 0 || r->stopping || r->silent) {
        ld_wind_up(r);
        return;
    }
    ld_step_image(r);
}

/* ------------------------------------------------------------------------ */
/* start                                                                    */

/* "ferry-<execution id>-<random>": readable in `docker ps`, unique even
 * when an execution runs again. */
static void ld_container_name(ferry_run *r)
{
    unsigned char rnd[4] = {0};
    if (getrandom(rnd, sizeof(rnd), GRND_NONBLOCK) != (ssize_t)sizeof(rnd)) {
        unsigned v = (unsigned)getpid() ^ (unsigned)uv_hrtime();
        memcpy(rnd, &v, sizeof(rnd));
    }
    char id[65];
    size_t n = 0;
    for (const char *p = r->execution_id; *p && n < sizeof(id) - 1; p++)
        id[n++] = isalnum((unsigned char)*p) || *p == '-' || *p == '_' || *p == '.' ? *p : '-';
    id[n] = '\0';
    snprintf(r->name, sizeof(r->name), "ferry-%s%s%02x%02x%02x%02x", id, n ? "-" : "", rnd[0],
             rnd[1], rnd[2], rnd[3]);
}

/* A "#!" script runs as a file of its own: written next to config_dir (as
 * local-process does) and mounted read-only at /ferry/command. Readable and
 * executable by all: the image may run as anyone. */
static int ld_write_command(const ferry_run_spec *spec, char *path, size_t cap,
                            ferry_error_detail *err)
{
    char dir[PATH_MAX];
    if (spec->config_dir == NULL || realpath(spec->config_dir, dir) == NULL)
        return ferry_error_set(err, FERRY_ESPAWN, 0, NULL,
                               "could not start: no usable config_dir for a \"#!\" script");
    char *slash = strrchr(dir, '/');
    if (slash != NULL && slash != dir)
        *slash = '\0';
    snprintf(path, cap, "%s/command", strcmp(dir, "/") == 0 ? "" : dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);
    size_t len = strlen(spec->script);
    int ok = fd >= 0 && write(fd, spec->script, len) == (ssize_t)len && fchmod(fd, 0755) == 0;
    int e = errno;
    if (fd >= 0 && close(fd) != 0 && ok) {
        ok = 0;
        e = errno;
    }
    if (!ok)
        return ferry_error_set(err, FERRY_ESPAWN, 0, NULL, "could not start: write %s: %s", path,
                               strerror(e));
    return 0;
}

/* The program the container execs first, when it is an absolute path:
 * the shell, or the interpreter on a "#!" line. */
static char *ld_program(const ferry_run_spec *spec, int shebang)
{
    const char *p = spec->shell && spec->shell[0] ? spec->shell : "/bin/sh";
    size_t n = strlen(p);
    if (shebang) {
        p = spec->script + 2;
        p += strspn(p, " \t");
        n = strcspn(p, " \t\r\n");
    }
    if (n == 0 || p[0] != '/' || n >= PATH_MAX)
        return NULL;
    return strndup(p, n);
}

/* The outputs folder: whose it is (the outputs go back to them), and
 * writable by the image's user, whoever that is. */
static void ld_prepare_outputs(ld_state *st, ferry_run *r, const char *dir)
{
    struct stat sb;
    if (dir == NULL || stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return; /* the create fails on the mount, with the daemon's words */
    r->out_uid = sb.st_uid;
    r->out_gid = sb.st_gid;
    r->outputs_dir = strdup(dir);
    if ((sb.st_mode & 0777) != 0777 && chmod(dir, 0777) != 0)
        ld_log(st, FERRY_LOG_WARN, "chmod %s: %s: a non-root image may not write its outputs", dir,
               strerror(errno));
}

static int ld_check(const ferry_run_spec *spec, const ferry_run_callbacks *cb,
                    ferry_error_detail *err)
{
    if (spec == NULL || spec->script == NULL || spec->repository_dir == NULL)
        return ferry_error_set(err, FERRY_EINVAL, 0, NULL,
                               LD_NAME ": the spec needs a script and a repository_dir");
    if (cb == NULL || cb->output == NULL || cb->exited == NULL)
        return ferry_error_set(err, FERRY_EINVAL, 0, NULL,
                               LD_NAME ": output and exited callbacks are required");
    return 0;
}

static char *ld_dup_opt(const char *v)
{
    return v != NULL && v[0] != '\0' ? strdup(v) : NULL;
}

#define LD_DUP_OPT(spec, field)                                                                    \
    ld_dup_opt(FERRY_HAS_FIELD(spec, ferry_run_spec, field) ? (spec)->field : NULL)

/* Everything that can be checked before the first request. */
static int ld_run_new(ld_state *st, const ferry_run_spec *spec, const ferry_run_callbacks *cb,
                      ferry_run **out, ferry_error_detail *err)
{
    char command[PATH_MAX];
    int shebang = strncmp(spec->script, "#!", 2) == 0;
    if (shebang) {
        int rc = ld_write_command(spec, command, sizeof(command), err);
        if (rc < 0)
            return rc;
    }
    ld_run_opts o = {.owner = st->owner,
                     .network = st->network,
                     .nano_cpus = st->nano_cpus,
                     .memory = st->memory,
                     .command_file = shebang ? command : NULL};
    char why[300];
    json_t *body = ld_run_body(spec, &o, why, sizeof(why));
    if (body == NULL)
        return ferry_error_set(err, FERRY_EINVAL, 0, NULL, "could not start: %s", why);
    ld_image_ref ref;
    if (ld_image_ref_parse(spec->image, &ref) < 0) {
        json_decref(body);
        return ferry_error_set(err, FERRY_EINVAL, 0, NULL,
                               "could not start: '%.200s' is not an image reference", spec->image);
    }
    ferry_run *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        json_decref(body);
        return ferry_error_set(err, FERRY_ENOMEM, 0, NULL, LD_NAME ": out of memory");
    }
    r->st = st;
    r->body = body;
    size_t n = cb->struct_size < sizeof(r->cb) ? cb->struct_size : sizeof(r->cb);
    memcpy(&r->cb, cb, n ? n : sizeof(r->cb));
    r->execution_id = strdup(spec->execution_id ? spec->execution_id : "");
    r->image = strdup(spec->image);
    r->shell = strdup(spec->shell && spec->shell[0] ? spec->shell : "/bin/sh");
    r->program = ld_program(spec, shebang);
    r->registry_server = LD_DUP_OPT(spec, registry_server);
    r->registry_username = LD_DUP_OPT(spec, registry_username);
    r->registry_password = LD_DUP_OPT(spec, registry_password);
    ld_prepare_outputs(st, r, spec->outputs_dir);
    ld_container_name(r);
    ld_frames_init(&r->frames);
    uv_timer_init(st->loop, &r->timer);
    r->timer.data = r;
    st->refs++;
    *out = r;
    if (r->execution_id == NULL || r->image == NULL || r->shell == NULL) {
        r->silent = 1;
        ld_report(r);
        return ferry_error_set(err, FERRY_ENOMEM, 0, NULL, LD_NAME ": out of memory");
    }
    return 0;
}

int ld_run_start(void *state, const ferry_run_spec *spec, const ferry_run_callbacks *cb,
                 ferry_run **out, ferry_error_detail *err)
{
    ld_state *st = state;
    int rc = ld_check(spec, cb, err);
    ferry_run *r = NULL;
    if (rc == 0)
        rc = ld_run_new(st, spec, cb, &r, err);
    if (rc < 0)
        return rc;
    r->next = st->runs;
    if (st->runs != NULL)
        st->runs->prev = r;
    st->runs = r;
    if (st->api[0] == '\0') {
        r->phase = LD_VERSION;
        rc = ld_api_negotiate(st, ld_on_version, r, &r->req);
    } else {
        r->phase = LD_IMAGE;
        ld_pull_args a = {.image = r->image,
                          .registry_server = r->registry_server,
                          .username = r->registry_username,
                          .password = r->registry_password,
                          .status = ld_on_status,
                          .done = ld_on_image,
                          .arg = r};
        char why[600];
        rc = ld_pull_start(st, &a, &r->pull, why, sizeof(why));
        ld_forget_credentials(r);
        if (rc < 0)
            ferry_error_set(err, rc, 0, NULL, "could not start: %s", why);
    }
    if (rc < 0) {
        if (err->message[0] == '\0')
            ferry_error_set(err, rc, 0, NULL, "could not start: %s", ferry_strerror(rc));
        r->silent = 1;
        ld_report(r);
        return rc;
    }
    *out = r;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* stop, fini, cleanup's question                                           */

int ld_run_stop(void *state, ferry_run *r, int grace_ms)
{
    (void)state;
    if (r == NULL || r->reported)
        return FERRY_ESTATE;
    if (r->phase > LD_RUNNING || (r->phase == LD_RUNNING && r->wait_done))
        return 0; /* it ended; the rest is cleaning up */
    int again = r->stopping;
    r->stopping = 1;
    r->grace_ms = grace_ms < 0 ? 0 : grace_ms;
    switch (r->phase) {
    case LD_VERSION:
    case LD_IMAGE:
        /* Cancelled from the loop, not from inside stop(): `exited` must
         * not come from inside the caller's call. */
        if (!again) {
            r->timer_use = LD_TIMER_CANCEL;
            uv_timer_start(&r->timer, ld_on_timer, 0, 0);
        }
        break;
    case LD_RUNNING:
        ld_stop_container(r);
        break;
    default:
        break; /* create, attach, start: the answer sees `stopping` */
    }
    return 0;
}

int ld_run_owns(ld_state *st, const char *container_id, const char *execution_id)
{
    for (ferry_run *r = st->runs; r != NULL; r = r->next) {
        if (r->id[0] != '\0' && container_id != NULL && strcmp(r->id, container_id) == 0)
            return 1;
        /* A container being created has no id yet: its execution tells. */
        if (execution_id != NULL && strcmp(r->execution_id, execution_id) == 0)
            return 1;
    }
    return 0;
}

void ld_runs_abandon(ld_state *st)
{
    for (ferry_run *r = st->runs, *next; r != NULL; r = next) {
        next = r->next;
        r->silent = 1;
        r->stopping = 1;
        if (r->outputs != NULL)
            ld_outputs_abandon(r->outputs);
        if (r->pull != NULL)
            ld_pull_cancel(r->pull); /* winds up from its callback */
        else if (r->phase == LD_VERSION && r->req != NULL)
            ferry_http_request_cancel(r->req);
        else
            ld_wind_up(r);
    }
}
