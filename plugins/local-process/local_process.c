/* local-process: a runtime plugin that runs an execution's script as a plain
 * process group on the worker itself (no container).
 *
 * The script runs as `<shell> -c <script>` (the spec's shell, else /bin/bash
 * where the host has it, else /bin/sh), or, when it starts with "#!", as
 * an executable file of its own. Each run is its own session and process
 * group, so that stop() and the clean-up after the main process ends reach
 * every process the script started. Like a container whose first process
 * ended, whatever is left of the group when the main process exits is
 * killed: nothing outlives its execution.
 *
 * `exited` fires once the main process has exited AND both output pipes
 * reached end-of-file, so no output is lost to a race between the two.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* dladdr */
#endif
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <linux/close_range.h>
#include <unistd.h>

#include <uv.h>

#include "ferry/buf.h"
#include "ferry/ferry.h"

#define LP_READ_BUF (64 * 1024)
/* The commands' output goes through pipes this large, not libuv's
 * socketpairs (about 200 KB): a command that prints fast runs on while the
 * agent is busy sending what it printed before. */
#define LP_PIPE_SIZE (1024 * 1024)
/* After the run's process exited and its group was killed, how long its
 * output may still drain. A descendant that left the group (setsid) may hold
 * the pipes open forever; the run must end anyway. */
#define LP_DRAIN_MS 2000

typedef struct lp_state lp_state;

struct ferry_run {
    lp_state *st;
    struct ferry_run *prev, *next; /* live runs, for fini */
    ferry_run_callbacks cb;
    uv_process_t proc;
    uv_pipe_t pipes[2]; /* stdout, stderr */
    uv_timer_t kill_timer;
    int pid;
    int spawned;
    int proc_exited;
    int eof[2];
    int exit_code;
    int term_signal;
    int stopping; /* stop() was called before the process exited */
    int reported; /* `exited` was called, or must never be (fini) */
    int open_handles;
    char buf[2][LP_READ_BUF];
};

struct lp_state {
    ferry_plugin_ctx *ctx;
    const ferry_host_api *host;
    uv_loop_t *loop;
    struct ferry_run *runs; /* not reported yet */
    size_t n_allocated;     /* runs not freed yet, reported or not */
    int finishing;          /* fini ran: free the state with the last run */
    /* ferry-mountns beside the plugin, when it can make a run's mount
     * namespace here; else NULL and `no_namespace` says why. */
    char *mountns;
    char no_namespace[320];
};

/* ------------------------------------------------------------------------ */
/* The environment of a run                                                 */

typedef struct lp_env {
    char **v;
    size_t n, cap;
} lp_env;

static void lp_env_free(lp_env *e)
{
    for (size_t i = 0; i < e->n; i++)
        free(e->v[i]);
    free(e->v);
}

/* Sets NAME=value, replacing an earlier NAME: later sources win. */
static int lp_env_put(lp_env *e, const char *name, size_t name_len, const char *value)
{
    char *entry = NULL;
    if (asprintf(&entry, "%.*s=%s", (int)name_len, name, value) < 0)
        return FERRY_ENOMEM;
    for (size_t i = 0; i < e->n; i++) {
        if (strncmp(e->v[i], entry, name_len + 1) == 0) {
            free(e->v[i]);
            e->v[i] = entry;
            return 0;
        }
    }
    if (FERRY_GROW(e->v, e->cap, e->n + 2) != 0) {
        free(entry);
        return FERRY_ENOMEM;
    }
    e->v[e->n++] = entry;
    e->v[e->n] = NULL;
    return 0;
}

static int lp_env_set(lp_env *e, const char *name, const char *value)
{
    if (value == NULL)
        return 0;
    return lp_env_put(e, name, strlen(name), value);
}

/* A small, predictable base: the agent's own environment (its tokens
 * included) must not leak into the user's commands. */
static int lp_env_base(lp_env *e)
{
    const char *path = getenv("PATH");
    int rc = lp_env_set(e, "PATH", path ? path : "/usr/local/bin:/usr/bin:/bin");
    if (rc == 0)
        rc = lp_env_set(e, "HOME", getenv("HOME"));
    if (rc == 0)
        rc = lp_env_set(e, "LANG", getenv("LANG"));
    return rc;
}

static int lp_env_dirs(lp_env *e, const ferry_run_spec *spec, const char *prefix)
{
    static const char *names[] = {"REPOSITORY_DIR", "INPUTS_DIR", "OUTPUTS_DIR", "CONFIG_DIR"};
    const char *dirs[] = {spec->repository_dir, spec->inputs_dir, spec->outputs_dir,
                          spec->config_dir};
    for (size_t i = 0; i < 4; i++) {
        char name[64];
        snprintf(name, sizeof(name), "%s%s", prefix, names[i]);
        int rc = lp_env_set(e, name, dirs[i]);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int lp_env_build(lp_state *st, lp_env *e, const ferry_run_spec *spec)
{
    int rc = lp_env_base(e);
    for (const char *const *p = spec->env; rc == 0 && p != NULL && *p != NULL; p++) {
        const char *eq = strchr(*p, '=');
        if (eq == NULL || eq == *p) {
            st->host->log(st->ctx, FERRY_LOG_WARN, "ignoring environment entry without a name");
            continue;
        }
        rc = lp_env_put(e, *p, (size_t)(eq - *p), eq + 1);
    }
    /* Ours come last so a step cannot point them elsewhere by accident. */
    if (rc == 0)
        rc = lp_env_dirs(e, spec, "FERRY_");
    if (rc == 0 && spec->valohai_aliases)
        rc = lp_env_dirs(e, spec, "VH_");
    if (rc == 0 && spec->gpus != NULL && spec->gpus[0] != '\0')
        rc = lp_env_set(e, "CUDA_VISIBLE_DEVICES", spec->gpus);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* The /valohai and /ferry folders (mountns.c)                              */

static const char *const lp_dir_names[] = {"repository", "inputs", "outputs", "config"};
static const char lp_anchor; /* an address inside this plugin, for dladdr */

/* ferry-mountns, beside this plugin's file; NULL when it is not there. */
static char *lp_mountns_path(char *why, size_t why_cap)
{
    Dl_info info;
    if (dladdr(&lp_anchor, &info) == 0 || info.dli_fname == NULL) {
        snprintf(why, why_cap, "the plugin's own folder is unknown");
        return NULL;
    }
    const char *slash = strrchr(info.dli_fname, '/');
    int dir_len = slash ? (int)(slash - info.dli_fname) : 1;
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%.*s/ferry-mountns", dir_len, slash ? info.dli_fname : ".");
    if (access(path, X_OK) != 0) {
        snprintf(why, why_cap, "%.250s: %s", path, strerror(errno));
        return NULL;
    }
    return strdup(path);
}

/* Reads what `fd` gives into why (at most why_cap - 1 bytes), trailing
 * newline dropped. */
static void lp_read_why(int fd, char *why, size_t why_cap)
{
    size_t n = 0;
    ssize_t r;
    while (n + 1 < why_cap && (r = read(fd, why + n, why_cap - 1 - n)) != 0) {
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            break;
        n += (size_t)r;
    }
    while (n > 0 && why[n - 1] == '\n')
        n--;
    why[n] = '\0';
}

/* Whether `mountns --check` says it can make a namespace here; why not in
 * `why`. Once, at init: a run then needs no second process to find out. */
static int lp_mountns_works(const char *mountns, char *why, size_t why_cap)
{
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) {
        snprintf(why, why_cap, "pipe: %s", strerror(errno));
        return 0;
    }
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fds[1], 2);
        execl(mountns, mountns, "--check", (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    why[0] = '\0';
    if (pid > 0)
        lp_read_why(fds[0], why, why_cap);
    close(fds[0]);
    int status = 0;
    while (pid > 0 && waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (pid > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return 1;
    if (why[0] == '\0')
        snprintf(why, why_cap, "%s --check failed", mountns);
    return 0;
}

static void lp_find_mountns(lp_state *st)
{
    char why[256];
    char *path = lp_mountns_path(why, sizeof(why));
    if (path != NULL && !lp_mountns_works(path, why, sizeof(why))) {
        free(path);
        path = NULL;
    }
    st->mountns = path;
    if (path == NULL) {
        snprintf(st->no_namespace, sizeof(st->no_namespace),
                 "the /valohai and /ferry folders are missing (the commands see the "
                 "execution's folders only where $FERRY_*_DIR / $VH_*_DIR say): %s\n",
                 why);
        st->host->log(st->ctx, FERRY_LOG_WARN, "%s", st->no_namespace);
    }
}

/* argv for ferry-mountns around `inner` (NULL-ended): the execution's
 * folders at /ferry/..., and at /valohai/... for a valohai.yaml project.
 * The variables, the working folder and inputs.json keep the host's paths,
 * which the namespace shows too: code reads the same values whether or not
 * the namespace could be made. Its root is made in the execution's folder. */
#define LP_MAX_STEP_MOUNTS 24 /* a step's `mounts`; ferry-mountns takes 40 binds */
#define LP_MAX_INPUT_FILES 32 /* cached inputs bound (-F); ferry-mountns takes 40 */

typedef struct lp_ns_argv {
    char *v[16 + 3 * (8 + LP_MAX_STEP_MOUNTS + LP_MAX_INPUT_FILES)];
    char root[PATH_MAX];
    char cwd[PATH_MAX];
    char targets[8][32];
    char *files[LP_MAX_INPUT_FILES]; /* the input files' places, owned */
    size_t n_files;
} lp_ns_argv;

static void lp_ns_argv_free(lp_ns_argv *a)
{
    for (size_t i = 0; a != NULL && i < a->n_files; i++)
        free(a->files[i]);
    free(a);
}

static size_t lp_step_mounts(const ferry_run_spec *spec)
{
    return FERRY_HAS_FIELD(spec, ferry_run_spec, n_mounts) && spec->mounts ? spec->n_mounts : 0;
}

static size_t lp_input_files(const ferry_run_spec *spec)
{
    return FERRY_HAS_FIELD(spec, ferry_run_spec, n_input_files) && spec->input_files
               ? spec->n_input_files
               : 0;
}

/* -F for each cached input file, onto its stand-in in the host's inputs
 * folder: the folder binds that follow carry it to /ferry and /valohai. */
static int lp_ns_input_files(const ferry_run_spec *spec, lp_ns_argv *a, size_t *n)
{
    size_t count = lp_input_files(spec);
    if (count > LP_MAX_INPUT_FILES || (count > 0 && spec->inputs_dir == NULL))
        return -1;
    for (size_t i = 0; i < count; i++) {
        const ferry_mount *f = &spec->input_files[i];
        if (f->source == NULL || f->source[0] != '/' || f->destination == NULL ||
            f->destination[0] == '/' || strstr(f->destination, "..") != NULL)
            return -1;
        if (asprintf(&a->files[a->n_files], "%s/%s", spec->inputs_dir, f->destination) < 0)
            return -1;
        a->v[(*n)++] = "-F";
        a->v[(*n)++] = (char *)f->source;
        a->v[(*n)++] = a->files[a->n_files++];
    }
    return 0;
}

static int lp_ns_wrap(const lp_state *st, const ferry_run_spec *spec, char *const *inner,
                      lp_ns_argv *a)
{
    char config[PATH_MAX];
    if (spec->config_dir == NULL || realpath(spec->config_dir, config) == NULL ||
        realpath(spec->repository_dir, a->cwd) == NULL)
        return -1;
    char *slash = strrchr(config, '/');
    if (slash == NULL || slash == config)
        return -1;
    *slash = '\0';
    snprintf(a->root, sizeof(a->root), "%.4000s/namespace-root", config);
    const char *dirs[4] = {spec->repository_dir, spec->inputs_dir, spec->outputs_dir,
                           spec->config_dir};
    size_t n = 0, t = 0;
    a->v[n++] = st->mountns;
    a->v[n++] = "-r";
    a->v[n++] = a->root;
    a->v[n++] = "-C";
    a->v[n++] = a->cwd;
    if (lp_ns_input_files(spec, a, &n) != 0)
        return -1;
    for (int alias = 0; alias < (spec->valohai_aliases ? 2 : 1); alias++) {
        for (int i = 0; i < 4; i++) {
            if (dirs[i] == NULL)
                continue;
            snprintf(a->targets[t], sizeof(a->targets[t]), "/%s/%s", alias ? "valohai" : "ferry",
                     lp_dir_names[i]);
            a->v[n++] = "-b";
            a->v[n++] = (char *)dirs[i];
            a->v[n++] = a->targets[t++];
        }
    }
    /* The step's own mounts (checked against allowed_mounts by ferryd and
     * the agent), as a container would have them. */
    size_t n_mounts = lp_step_mounts(spec);
    if (n_mounts > LP_MAX_STEP_MOUNTS)
        return -1;
    for (size_t i = 0; i < n_mounts; i++) {
        const ferry_mount *m = &spec->mounts[i];
        if (m->source == NULL || m->destination == NULL || m->destination[0] != '/')
            return -1;
        a->v[n++] = m->readonly ? "-B" : "-b";
        a->v[n++] = (char *)m->source;
        a->v[n++] = (char *)m->destination;
    }
    a->v[n++] = "--";
    for (size_t i = 0; inner[i] != NULL; i++)
        a->v[n++] = inner[i];
    a->v[n] = NULL;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Running                                                                  */

static void lp_run_unlink(struct ferry_run *r)
{
    lp_state *st = r->st;
    if (r->prev != NULL)
        r->prev->next = r->next;
    else if (st->runs == r)
        st->runs = r->next;
    if (r->next != NULL)
        r->next->prev = r->prev;
    r->prev = r->next = NULL;
}

static void lp_state_free(lp_state *st)
{
    free(st->mountns);
    free(st);
}

static void lp_on_close(uv_handle_t *h)
{
    struct ferry_run *r = h->data;
    if (--r->open_handles > 0)
        return;
    lp_state *st = r->st;
    free(r);
    if (--st->n_allocated == 0 && st->finishing)
        lp_state_free(st);
}

static void lp_close_handle(struct ferry_run *r, uv_handle_t *h)
{
    if (!uv_is_closing(h)) {
        r->open_handles++;
        uv_close(h, lp_on_close);
    }
}

static void lp_run_close(struct ferry_run *r)
{
    lp_run_unlink(r);
    lp_close_handle(r, (uv_handle_t *)&r->proc);
    lp_close_handle(r, (uv_handle_t *)&r->pipes[0]);
    lp_close_handle(r, (uv_handle_t *)&r->pipes[1]);
    lp_close_handle(r, (uv_handle_t *)&r->kill_timer);
}

static void lp_kill_group(struct ferry_run *r, int sig)
{
    /* The run is a session leader, so its pid is also its group id. */
    if (r->pid > 0)
        kill(-r->pid, sig);
}

/* Calls `exited` when the process is gone and both pipes are drained. */
static void lp_maybe_report(struct ferry_run *r)
{
    if (!r->proc_exited || !r->eof[0] || !r->eof[1])
        return;
    int silent = r->reported;
    r->reported = 1;
    lp_run_close(r);
    if (silent)
        return;
    char why[64];
    const char *reason = NULL;
    if (r->stopping) {
        reason = "stopped";
    } else if (r->term_signal != 0) {
        snprintf(why, sizeof(why), "killed by signal %d (%s)", r->term_signal,
                 strsignal(r->term_signal));
        reason = why;
    }
    r->cb.exited(r->cb.arg, r->exit_code, reason);
}

static void lp_on_drain_timeout(uv_timer_t *t)
{
    struct ferry_run *r = t->data;
    for (int i = 0; i < 2; i++) {
        uv_read_stop((uv_stream_t *)&r->pipes[i]);
        r->eof[i] = 1;
    }
    lp_maybe_report(r);
}

static void lp_on_exit(uv_process_t *proc, int64_t exit_status, int term_signal)
{
    struct ferry_run *r = proc->data;
    r->proc_exited = 1;
    r->term_signal = term_signal;
    r->exit_code = term_signal != 0 ? 128 + term_signal : (int)exit_status;
    /* Background processes the script left behind would hold the pipes
     * open (and run on unaccounted): end them with their parent. */
    lp_kill_group(r, SIGKILL);
    uv_timer_stop(&r->kill_timer);
    if (!r->eof[0] || !r->eof[1])
        uv_timer_start(&r->kill_timer, lp_on_drain_timeout, LP_DRAIN_MS, 0);
    lp_maybe_report(r);
}

static void lp_on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    struct ferry_run *r = h->data;
    int i = h == (uv_handle_t *)&r->pipes[0] ? 0 : 1;
    *buf = uv_buf_init(r->buf[i], LP_READ_BUF);
}

static void lp_on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct ferry_run *r = s->data;
    int i = s == (uv_stream_t *)&r->pipes[0] ? 0 : 1;
    if (nread > 0) {
        if (!r->reported)
            r->cb.output(r->cb.arg, i == 0 ? FERRY_STREAM_STDOUT : FERRY_STREAM_STDERR, buf->base,
                         (size_t)nread);
        return;
    }
    if (nread == 0) /* EAGAIN: nothing this time */
        return;
    /* UV_EOF, or a read error: either way this stream is over. */
    uv_read_stop(s);
    r->eof[i] = 1;
    lp_maybe_report(r);
}

static void lp_on_kill_timer(uv_timer_t *t)
{
    lp_kill_group(t->data, SIGKILL);
}

/* "<parent of config_dir>/command", absolute: the child resolves relative
 * paths only after it changed into the repository. */
static int lp_script_path(const char *config_dir, char *out, size_t cap)
{
    char abs[PATH_MAX];
    if (config_dir == NULL || realpath(config_dir, abs) == NULL)
        return -1;
    char *slash = strrchr(abs, '/');
    if (slash != NULL && slash != abs)
        *slash = '\0';
    else
        snprintf(abs, sizeof(abs), "/");
    int n = snprintf(out, cap, "%s%scommand", abs, strcmp(abs, "/") == 0 ? "" : "/");
    return n < 0 || (size_t)n >= cap ? -1 : 0;
}

static int lp_write_script(const char *path, const char *script, ferry_error_detail *err)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0700);
    if (fd < 0)
        return ferry_error_set(err, FERRY_ESPAWN, 0, NULL, "could not start: write %s: %s", path,
                               strerror(errno));
    size_t len = strlen(script);
    const char *p = script;
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            break;
        p += w;
        len -= (size_t)w;
    }
    /* O_CREAT keeps the mode of an existing file: make it executable anyway. */
    int failed = len > 0 || fchmod(fd, 0700) != 0;
    int e = errno;
    if (close(fd) != 0 && !failed) {
        failed = 1;
        e = errno;
    }
    if (failed)
        return ferry_error_set(err, FERRY_ESPAWN, 0, NULL, "could not start: write %s: %s", path,
                               strerror(e));
    return 0;
}

static void lp_init_handles(lp_state *st, struct ferry_run *r)
{
    uv_pipe_init(st->loop, &r->pipes[0], 0);
    uv_pipe_init(st->loop, &r->pipes[1], 0);
    uv_timer_init(st->loop, &r->kill_timer);
    r->proc.data = r->pipes[0].data = r->pipes[1].data = r->kill_timer.data = r;
}

/* A pipe whose read end `h` takes; *child gets the write end. 0 or -errno. */
static int lp_output_pipe(uv_pipe_t *h, int *child)
{
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0)
        return -errno;
    (void)fcntl(fds[1], F_SETPIPE_SZ, LP_PIPE_SIZE); /* the system may allow less: fine */
    int rc = uv_pipe_open(h, fds[0]);
    if (rc != 0) {
        close(fds[0]);
        close(fds[1]);
        return rc;
    }
    *child = fds[1];
    return 0;
}

/* Why the commands could not start, as the execution's reason: uv_spawn's
 * error `rc` for `program`, or the "#!" line's interpreter when that is what
 * is missing (the script file itself was just written). */
/* The interpreter a "#!" script names (its *len bytes), or NULL. */
static const char *lp_interpreter(const ferry_run_spec *spec, int *len)
{
    if (strncmp(spec->script, "#!", 2) != 0)
        return NULL;
    const char *p = spec->script + 2;
    p += strspn(p, " \t");
    *len = (int)strcspn(p, " \t\r\n");
    return p;
}

static int lp_spawn_error(const ferry_run_spec *spec, const char *program, int rc,
                          ferry_error_detail *err)
{
    int n;
    const char *p = lp_interpreter(spec, &n);
    if (p != NULL && (rc == UV_ENOENT || rc == UV_EACCES)) {
        return ferry_error_set(err, FERRY_ESPAWN, 0, uv_err_name(rc),
                               "could not start: the interpreter on the script's \"#!\" line, "
                               "%.*s: %s",
                               n > 200 ? 200 : n, p, uv_strerror(rc));
    }
    return ferry_error_set(err, FERRY_ESPAWN, 0, uv_err_name(rc), "could not start: %s: %s",
                           program, uv_strerror(rc));
}

/* Inside ferry-mountns an exec failure is only an exit code: what uv_spawn
 * would have said is found out here first, when the program is a path. */
static int lp_check_program(const ferry_run_spec *spec, const char *program,
                            ferry_error_detail *err)
{
    char interp[PATH_MAX];
    int n;
    const char *p = lp_interpreter(spec, &n);
    if (p != NULL) {
        snprintf(interp, sizeof(interp), "%.*s", n, p);
        program = interp;
    }
    if (strchr(program, '/') == NULL || access(program, X_OK) == 0)
        return 0;
    return lp_spawn_error(spec, program, uv_translate_sys_error(errno), err);
}

static int lp_spawn(lp_state *st, struct ferry_run *r, const ferry_run_spec *spec, char **argv,
                    char **env, ferry_error_detail *err)
{
    int out = -1, errfd = -1;
    int prc = lp_output_pipe(&r->pipes[0], &out);
    if (prc == 0)
        prc = lp_output_pipe(&r->pipes[1], &errfd);
    if (prc != 0) {
        if (out >= 0)
            close(out);
        return ferry_error_set(err, FERRY_ESPAWN, 0, uv_err_name(prc),
                               "could not start: a pipe for the output: %s", uv_strerror(prc));
    }
    uv_stdio_container_t stdio[3];
    stdio[0].flags = UV_IGNORE; /* libuv connects an ignored 0-2 to /dev/null */
    stdio[1].flags = UV_INHERIT_FD;
    stdio[1].data.fd = out;
    stdio[2].flags = UV_INHERIT_FD;
    stdio[2].data.fd = errfd;
    uv_process_options_t opt;
    memset(&opt, 0, sizeof(opt));
    opt.exit_cb = lp_on_exit;
    opt.file = argv[0];
    opt.args = argv;
    opt.env = env;
    opt.cwd = spec->repository_dir;
    opt.flags = UV_PROCESS_DETACHED; /* setsid(): a group of its own */
    opt.stdio_count = 3;
    opt.stdio = stdio;
    /* Whatever the host opened without O_CLOEXEC (a library's socket, say)
     * stays out of the commands. */
    close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);
    int rc = uv_spawn(st->loop, &r->proc, &opt);
    close(out); /* the commands hold the write ends now: EOF comes when they exit */
    close(errfd);
    r->proc.data = r;
    if (rc < 0)
        return lp_spawn_error(spec, argv[0], rc, err);
    r->spawned = 1;
    r->pid = r->proc.pid;
    uv_read_start((uv_stream_t *)&r->pipes[0], lp_on_alloc, lp_on_read);
    uv_read_start((uv_stream_t *)&r->pipes[1], lp_on_alloc, lp_on_read);
    return 0;
}

static int lp_check_spec(const ferry_run_spec *spec, const ferry_run_callbacks *cb,
                         ferry_error_detail *err)
{
    if (spec == NULL || spec->script == NULL || spec->repository_dir == NULL)
        return ferry_error_set(err, FERRY_EINVAL, 0, NULL,
                               "local-process: the spec needs a script and a repository_dir");
    if (cb == NULL || cb->output == NULL || cb->exited == NULL)
        return ferry_error_set(err, FERRY_EINVAL, 0, NULL,
                               "local-process: output and exited callbacks are required");
    /* uv_spawn would blame the shell for a missing working directory. */
    struct stat sb;
    int rc = stat(spec->repository_dir, &sb);
    if (rc != 0 || !S_ISDIR(sb.st_mode))
        return ferry_error_set(err, FERRY_ESPAWN, 0, NULL,
                               "could not start: repository folder %s: %s", spec->repository_dir,
                               rc != 0 ? strerror(errno) : "not a folder");
    return 0;
}

/* The spec's shell; else bash where the host has it (`source`, [[ ]], as on
 * Valohai), else sh. */
static const char *lp_shell(const ferry_run_spec *spec)
{
    if (spec->shell && spec->shell[0])
        return spec->shell;
    return access("/bin/bash", X_OK) == 0 ? "/bin/bash" : "/bin/sh";
}

/* Builds argv: the script file for "#!" scripts, else `<shell> -c <script>`. */
static int lp_argv(const ferry_run_spec *spec, char *file, size_t file_cap, char *argv[4],
                   ferry_error_detail *err)
{
    if (strncmp(spec->script, "#!", 2) == 0) {
        if (lp_script_path(spec->config_dir, file, file_cap) < 0)
            return ferry_error_set(err, FERRY_ESPAWN, 0, NULL,
                                   "could not start: no usable config_dir for a \"#!\" script");
        int rc = lp_write_script(file, spec->script, err);
        if (rc < 0)
            return rc;
        argv[0] = file;
        argv[1] = NULL;
        return 0;
    }
    argv[0] = (char *)lp_shell(spec);
    argv[1] = "-c";
    argv[2] = (char *)spec->script;
    argv[3] = NULL;
    return 0;
}

/* On a negative return nothing was started, no callback will fire, and
 * err->message reads "could not start: ..." where the process could not be
 * started. */
static int lp_start(void *state, const ferry_run_spec *spec, const ferry_run_callbacks *cb,
                    ferry_run **out, ferry_error_detail *err)
{
    lp_state *st = state;
    int rc = lp_check_spec(spec, cb, err);
    if (rc < 0)
        return rc;
    char file[PATH_MAX];
    char *argv[4];
    rc = lp_argv(spec, file, sizeof(file), argv, err);
    if (rc == 0 && st->mountns != NULL)
        rc = lp_check_program(spec, argv[0], err);
    if (rc < 0)
        return rc;
    lp_env env = {0};
    if (lp_env_build(st, &env, spec) < 0) {
        lp_env_free(&env);
        return ferry_error_set(err, FERRY_ENOMEM, 0, NULL, "local-process: out of memory");
    }
    lp_ns_argv *ns = st->mountns ? calloc(1, sizeof(*ns)) : NULL;
    int wrapped = ns != NULL && lp_ns_wrap(st, spec, argv, ns) == 0;
    struct ferry_run *r = NULL;
    if (!wrapped && lp_input_files(spec) > 0) /* an empty stand-in must never be read */
        rc = ferry_error_set(err, FERRY_ESPAWN, 0, NULL,
                             "could not start: the inputs bound from the worker's cache need "
                             "the execution's mount namespace");
    else if ((r = calloc(1, sizeof(*r))) == NULL)
        rc = ferry_error_set(err, FERRY_ENOMEM, 0, NULL, "local-process: out of memory");
    if (r == NULL) {
        lp_ns_argv_free(ns);
        lp_env_free(&env);
        return rc;
    }
    r->st = st;
    st->n_allocated++;
    size_t n = cb->struct_size < sizeof(r->cb) ? cb->struct_size : sizeof(r->cb);
    memcpy(&r->cb, cb, n ? n : sizeof(r->cb));
    lp_init_handles(st, r);
    rc = lp_spawn(st, r, spec, wrapped ? ns->v : argv, env.v, err);
    lp_ns_argv_free(ns);
    lp_env_free(&env);
    if (rc < 0) {
        r->reported = 1;
        lp_run_close(r); /* uv_spawn initialised the process handle even so */
        return rc;
    }
    r->next = st->runs;
    if (st->runs != NULL)
        st->runs->prev = r;
    st->runs = r;
    *out = r;
    if (!wrapped) { /* once per execution, in its log */
        const char *why = st->mountns ? "the /valohai and /ferry folders are missing: the "
                                        "execution has no config folder to make them in\n"
                                      : st->no_namespace;
        r->cb.output(r->cb.arg, FERRY_STREAM_STATUS, why, strlen(why));
        if (lp_step_mounts(spec) > 0) {
            const char *also = "the step's mounts are not mounted either (they need the "
                               "namespace, or a container runtime such as local-docker)\n";
            r->cb.output(r->cb.arg, FERRY_STREAM_STATUS, also, strlen(also));
        }
    }
    return 0;
}

static int lp_stop(void *state, ferry_run *r, int grace_ms)
{
    (void)state;
    if (r == NULL || r->reported)
        return FERRY_ESTATE;
    if (r->proc_exited) /* its group is already killed; output is draining */
        return 0;
    r->stopping = 1;
    lp_kill_group(r, SIGTERM);
    if (grace_ms <= 0)
        lp_kill_group(r, SIGKILL);
    else if (!uv_is_active((uv_handle_t *)&r->kill_timer))
        uv_timer_start(&r->kill_timer, lp_on_kill_timer, (uint64_t)grace_ms, 0);
    return 0;
}

/* Inputs are bound by ferry-mountns -F, where it can make a namespace. */
static int lp_binds_input_files(void *state)
{
    const lp_state *st = state;
    return st->mountns != NULL ? LP_MAX_INPUT_FILES : 0;
}

static const ferry_runtime_ops lp_ops = {
    .struct_size = sizeof(ferry_runtime_ops),
    .start = lp_start,
    .stop = lp_stop,
    .cleanup = NULL, /* nothing outlives a run: its group dies with it */
    .binds_input_files = lp_binds_input_files,
};

/* ------------------------------------------------------------------------ */
/* Lifecycle                                                                */

static int lp_init(ferry_plugin_ctx *ctx, const ferry_host_api *host, void **state,
                   ferry_error_detail *err)
{
    lp_state *st = calloc(1, sizeof(*st));
    if (st == NULL)
        return ferry_error_set(err, FERRY_ENOMEM, 0, NULL, "local-process: out of memory");
    st->ctx = ctx;
    st->host = host;
    st->loop = host->loop(ctx);
    lp_find_mountns(st);
    *state = st;
    return 0;
}

/* Kills what still runs, silently: after fini the host is gone. The runs
 * are reaped and freed on later loop turns; the state goes with the last. */
static void lp_fini(void *state)
{
    lp_state *st = state;
    st->finishing = 1;
    if (st->n_allocated == 0) {
        lp_state_free(st);
        return;
    }
    for (struct ferry_run *r = st->runs; r != NULL; r = r->next) {
        r->reported = 1;
        lp_kill_group(r, SIGKILL);
    }
}

static const char *const lp_settings[] = {NULL};

static const ferry_plugin_descriptor lp_descriptor = {
    .struct_size = sizeof(ferry_plugin_descriptor),
    .abi_major = FERRY_ABI_MAJOR,
    .abi_minor = FERRY_ABI_MINOR,
    .kind = FERRY_PLUGIN_RUNTIME,
    .name = "local-process",
    .version = "1.0.0",
    .init = lp_init,
    .fini = lp_fini,
    .ops = &lp_ops,
    .settings = lp_settings,
};

FERRY_PLUGIN_DEFINE(lp_descriptor)
