/* What a new machine needs to become a worker: the agent bundle
 * (bin/ferry-agent and the runtime plugins) and the script that fetches,
 * verifies and starts it, by hand or from a launch's user-data. The HTTP
 * side that serves them is http/bootstrap.c.
 *
 * The bundle is built on the threadpool at the first request, and again
 * when one of its files changes (checked by stat on each request). It is
 * deterministic (the files' mtimes, no owner, no gzip timestamp), so that a
 * script put into user-data before a restart of ferryd still verifies the
 * bundle after it.
 */
#include "bundle.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "util.h"

/* A file that goes into the bundle, as found by stat. */
typedef struct boot_input {
    char *path;
    char *member; /* its name in the bundle */
    int64_t size;
    int64_t mtime;
    long mtime_ns;
} boot_input;

typedef struct boot_inputs {
    boot_input *v;
    size_t n;
} boot_inputs;

/* Someone waiting for the bundle. */
typedef struct boot_waiter {
    struct boot_waiter *next;
    ferry_bundle_built_fn built;
    void *arg;
} boot_waiter;

typedef struct boot_job {
    uv_work_t work;
    ferryd *d;
    boot_inputs in;
    char *key;
    char out[PATH_MAX + 32], tmp[PATH_MAX + 32];
    char sha[65], agent_sha[65];
    int rc;
    char err[512];
} boot_job;

/* One daemon per process: its bundle on disk and who waits for it. */
static struct {
    char *key; /* the inputs the bundle on disk was built from, or NULL */
    char sha[65], agent_sha[65];
    char agent_path[PATH_MAX + 16];
    char bundle_path[PATH_MAX + 32];
    char last_error[512]; /* why the last build failed ("" after a good one) */
    boot_job *job;        /* a build in flight */
    boot_waiter *waiters;
} boot;

/* ---- what goes into the bundle ---- */

static void boot_inputs_free(boot_inputs *in)
{
    for (size_t i = 0; i < in->n; i++) {
        free(in->v[i].path);
        free(in->v[i].member);
    }
    free(in->v);
    in->v = NULL;
    in->n = 0;
}

static int boot_input_add(boot_inputs *in, const char *path, const char *member)
{
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
        return FERRY_ENOENT;
    in->v = ferry_xrealloc(in->v, (in->n + 1) * sizeof(*in->v));
    in->v[in->n++] = (boot_input){.path = ferry_strdup(path),
                                  .member = ferry_strdup(member),
                                  .size = st.st_size,
                                  .mtime = st.st_mtim.tv_sec,
                                  .mtime_ns = st.st_mtim.tv_nsec};
    return 0;
}

static int boot_member_cmp(const void *a, const void *b)
{
    return strcmp(((const boot_input *)a)->member, ((const boot_input *)b)->member);
}

/* ferry-agent next to ferryd, then the runtime plugins ferryd found (the
 * agent needs one; compute and store plugins stay home), by name. */
static int boot_inputs_collect(ferryd *d, boot_inputs *in)
{
    snprintf(boot.agent_path, sizeof(boot.agent_path), "%s/ferry-agent", d->exe_dir);
    if (boot_input_add(in, boot.agent_path, "bin/ferry-agent") != 0)
        return FERRY_ENOENT;
    for (size_t i = 0; i < d->plugins.n; i++) {
        const ferry_plugin *p = d->plugins.plugins[i];
        if (p->desc.kind != FERRY_PLUGIN_RUNTIME)
            continue;
        const char *base = strrchr(p->path, '/');
        char *member = ferry_asprintf("%s/%s", FERRY_PLUGIN_RELDIR, base ? base + 1 : p->path);
        if (boot_input_add(in, p->path, member) != 0)
            ferry_warn("agent bundle: runtime plugin %s is gone; leaving it out", p->path);
        free(member);
    }
    qsort(in->v + 1, in->n - 1, sizeof(*in->v), boot_member_cmp);
    return 0;
}

/* Changes whenever a file of the bundle does. */
static char *boot_inputs_key(const boot_inputs *in)
{
    char *key = ferry_strdup("");
    for (size_t i = 0; i < in->n; i++) {
        const boot_input *f = &in->v[i];
        char *next = ferry_asprintf("%s%s\t%lld\t%lld.%09ld\n", key, f->path, (long long)f->size,
                                    (long long)f->mtime, f->mtime_ns);
        free(key);
        key = next;
    }
    return key;
}

/* ---- building it (threadpool) ---- */

static int boot_add_file(struct archive *ar, const boot_input *f, char *err, size_t cap)
{
    int fd = open(f->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, cap, "%s: %s", f->path, strerror(errno));
        return ferry_from_errno(errno);
    }
    struct archive_entry *e = archive_entry_new();
    archive_entry_set_pathname(e, f->member);
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0755);
    archive_entry_set_size(e, f->size);
    archive_entry_set_mtime(e, (time_t)f->mtime, 0);
    int rc = archive_write_header(ar, e) == ARCHIVE_OK ? 0 : FERRY_EIO;
    char buf[65536];
    int64_t left = f->size;
    while (rc == 0 && left > 0) {
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n <= 0 || archive_write_data(ar, buf, (size_t)n) != n)
            rc = FERRY_EIO;
        else
            left -= n;
    }
    if (rc != 0)
        snprintf(err, cap, "%s: %s", f->path,
                 archive_errno(ar) ? archive_error_string(ar) : "changed while being packed");
    archive_entry_free(e);
    close(fd);
    return rc;
}

static int boot_pack(boot_job *j)
{
    struct archive *ar = archive_write_new();
    int rc = archive_write_set_format_ustar(ar) == ARCHIVE_OK &&
                     archive_write_add_filter_gzip(ar) == ARCHIVE_OK
                 ? 0
                 : FERRY_EIO;
    /* No time in the gzip header: the same files give the same bytes. */
    archive_write_set_filter_option(ar, "gzip", "timestamp", NULL);
    if (rc == 0 && archive_write_open_filename(ar, j->tmp) != ARCHIVE_OK)
        rc = FERRY_EIO;
    if (rc != 0)
        snprintf(j->err, sizeof(j->err), "%s: %s", j->tmp, archive_error_string(ar));
    for (size_t i = 0; rc == 0 && i < j->in.n; i++)
        rc = boot_add_file(ar, &j->in.v[i], j->err, sizeof(j->err));
    if (archive_write_close(ar) != ARCHIVE_OK && rc == 0) {
        snprintf(j->err, sizeof(j->err), "%s: %s", j->tmp, archive_error_string(ar));
        rc = FERRY_EIO;
    }
    archive_write_free(ar);
    return rc;
}

static void boot_build_work(uv_work_t *w)
{
    boot_job *j = w->data;
    int64_t size;
    j->rc = boot_pack(j);
    if (j->rc == 0 && (ferry_sha256_file(j->tmp, j->sha, &size) != 0 ||
                       ferry_sha256_file(j->in.v[0].path, j->agent_sha, &size) != 0)) {
        snprintf(j->err, sizeof(j->err), "could not read back %s", j->tmp);
        j->rc = FERRY_EIO;
    }
    /* Atomically: a download in progress keeps the file it opened. */
    if (j->rc == 0 && rename(j->tmp, j->out) != 0) {
        snprintf(j->err, sizeof(j->err), "%s: %s", j->out, strerror(errno));
        j->rc = FERRY_EIO;
    }
    if (j->rc != 0)
        unlink(j->tmp);
}

static void boot_build_done(uv_work_t *w, int status)
{
    boot_job *j = w->data;
    boot.job = NULL;
    if (status == 0 && j->rc == 0) {
        free(boot.key);
        boot.key = j->key;
        j->key = NULL;
        memcpy(boot.sha, j->sha, sizeof(boot.sha));
        memcpy(boot.agent_sha, j->agent_sha, sizeof(boot.agent_sha));
        snprintf(boot.bundle_path, sizeof(boot.bundle_path), "%s", j->out);
        boot.last_error[0] = '\0';
        ferry_info("agent bundle built: %zu file%s, sha256 %s", j->in.n, j->in.n == 1 ? "" : "s",
                   boot.sha);
    } else {
        snprintf(boot.last_error, sizeof(boot.last_error), "%s", j->err[0] ? j->err : "cancelled");
        ferry_error("could not build the agent bundle: %s", boot.last_error);
    }
    int result = status == 0 && j->rc == 0 ? 0 : FERRY_EIO;
    boot_waiter *list = boot.waiters;
    boot.waiters = NULL;
    while (list) {
        boot_waiter *wt = list;
        list = wt->next;
        wt->built(j->d, result, wt->arg);
        free(wt);
    }
    boot_inputs_free(&j->in);
    free(j->key);
    free(j);
}

static void boot_build_start(ferryd *d, boot_inputs *in, char *key)
{
    boot_job *j = ferry_xcalloc(1, sizeof(*j));
    j->d = d;
    j->in = *in;
    j->key = key;
    snprintf(j->out, sizeof(j->out), "%s/agent-bundle.tar.gz", d->data_dir);
    snprintf(j->tmp, sizeof(j->tmp), "%s/agent-bundle.tar.gz.tmp", d->data_dir);
    j->work.data = j;
    boot.job = j;
    uv_queue_work(d->loop, &j->work, boot_build_work, boot_build_done);
}

/* ---- the script ---- */

/* 'text' for sh, with each ' written as '\'' . */
static char *boot_sh_quote(const char *s)
{
    size_t n = 2;
    for (const char *p = s; *p; p++)
        n += *p == '\'' ? 4 : 1;
    char *out = ferry_xmalloc(n + 1), *o = out;
    *o++ = '\'';
    for (const char *p = s; *p; p++) {
        if (*p == '\'') {
            memcpy(o, "'\\''", 4);
            o += 4;
        } else {
            *o++ = *p;
        }
    }
    *o++ = '\'';
    *o = '\0';
    return out;
}

static const char boot_script_body[] =
    "die() { echo \"ferry bootstrap: $*\" >&2; exit 1; }\n"
    "\n"
    "token=${FERRY_BOOTSTRAP_TOKEN:-}\n"
    "if [ -z \"$token\" ] && [ $# -gt 0 ]; then token=$1; shift; fi\n"
    "if [ -z \"$token\" ]; then\n"
    "    echo \"ferry bootstrap: no token: set FERRY_BOOTSTRAP_TOKEN or pass it as the first "
    "argument\" >&2\n"
    "    exit 2\n"
    "fi\n"
    "command -v curl >/dev/null 2>&1 || die \"curl is needed to download the agent\"\n"
    "\n"
    "sha256_of() {\n"
    "    if command -v sha256sum >/dev/null 2>&1; then sha256sum \"$1\"\n"
    "    elif command -v shasum >/dev/null 2>&1; then shasum -a 256 \"$1\"\n"
    "    elif command -v openssl >/dev/null 2>&1; then openssl dgst -sha256 -r \"$1\"\n"
    "    fi | cut -d ' ' -f 1\n"
    "}\n"
    "\n"
    "fetch() { # fetch URL FILE: https is verified (FERRY_CA_FILE: the CAs to trust)\n"
    "    if [ -n \"${FERRY_CA_FILE:-}\" ]; then\n"
    "        curl -fsS --retry 5 --retry-delay 2 --retry-connrefused --cacert \"$FERRY_CA_FILE\" "
    "-o \"$2\" \"$1\"\n"
    "    else\n"
    "        curl -fsS --retry 5 --retry-delay 2 --retry-connrefused -o \"$2\" \"$1\"\n"
    "    fi\n"
    "}\n"
    "\n"
    "dir=${FERRY_AGENT_DIR:-/opt/ferry-agent}\n"
    "umask 022\n"
    "mkdir -p \"$dir\" || die \"cannot create $dir (set FERRY_AGENT_DIR)\"\n"
    "dir=$(cd \"$dir\" && pwd)\n"
    "if [ -z \"${FERRY_CA_FILE:-}\" ] && [ -n \"$FERRY_CA_PEM\" ]; then\n"
    "    FERRY_CA_FILE=$dir/ca.pem\n"
    "    printf '%s\\n' \"$FERRY_CA_PEM\" >\"$FERRY_CA_FILE\" || die \"cannot write "
    "$FERRY_CA_FILE\"\n"
    "fi\n"
    "target=$dir/$BUNDLE_SHA256\n"
    "if [ ! -x \"$target/bin/ferry-agent\" ]; then\n"
    "    tmp=$(mktemp \"$dir/.bundle.XXXXXX\") || die \"cannot write in $dir\"\n"
    "    trap 'rm -rf \"$tmp\" \"$tmp.d\"' EXIT\n"
    "    fetch \"$FERRY_SERVER/v1/agent/bundle.tar.gz\" \"$tmp\" ||\n"
    "        die \"could not download the agent from $FERRY_SERVER\"\n"
    "    got=$(sha256_of \"$tmp\")\n"
    "    [ -n \"$got\" ] || die \"no sha256sum, shasum or openssl to verify the agent with\"\n"
    "    if [ \"$got\" != \"$BUNDLE_SHA256\" ]; then\n"
    "        die \"the downloaded agent bundle has SHA-256 $got, expected $BUNDLE_SHA256: "
    "refusing to run it\"\n"
    "    fi\n"
    "    mkdir \"$tmp.d\" && tar -xzf \"$tmp\" -C \"$tmp.d\" || die \"could not unpack the agent "
    "into $dir\"\n"
    "    rm -rf \"$target\"\n"
    "    mv \"$tmp.d\" \"$target\" || die \"could not move the agent into $target\"\n"
    "    rm -f \"$tmp\"\n"
    "    trap - EXIT\n"
    "fi\n"
    "\n"
    "if command -v ldd >/dev/null 2>&1; then\n"
    "    missing=$(ldd \"$target/bin/ferry-agent\" \"$target/$PLUGIN_RELDIR\"/*.so 2>/dev/null |\n"
    "        awk '/not found/ { print $1 }' | sort -u | tr '\\n' ' ')\n"
    "    [ -z \"$missing\" ] || die \"this machine lacks libraries ferry-agent needs: "
    "$missing(install them and run this again)\"\n"
    "fi\n"
    "\n"
    "set -- --server \"$FERRY_SERVER\" --environment \"$FERRY_ENVIRONMENT\" \\\n"
    "    --runtime \"$FERRY_RUNTIME\" --slots \"${FERRY_SLOTS:-$DEFAULT_SLOTS}\" \\\n"
    "    --work-dir \"${FERRY_WORK_DIR:-$dir/work}\" --plugin-dir \"$target/$PLUGIN_RELDIR\" "
    "$RUNTIME_SETTINGS_ARGS\"$@\"\n"
    "if [ -n \"${FERRY_CA_FILE:-}\" ]; then set -- \"$@\" --ca-file \"$FERRY_CA_FILE\"; fi\n"
    "# The token goes through the environment, never the command line (ps).\n"
    "if [ -n \"${FERRY_WORKER_ID:-}\" ]; then\n"
    "    set -- \"$@\" --worker-id \"$FERRY_WORKER_ID\"\n"
    "    FERRY_BOOTSTRAP_TOKEN=$token\n"
    "    export FERRY_BOOTSTRAP_TOKEN\n"
    "    unset FERRY_JOIN_TOKEN\n"
    "else\n"
    "    FERRY_JOIN_TOKEN=$token\n"
    "    export FERRY_JOIN_TOKEN\n"
    "    unset FERRY_BOOTSTRAP_TOKEN\n"
    "fi\n"
    "unset token\n"
    "exec \"$target/bin/ferry-agent\" \"$@\"\n";

/* The CA text goes into a quoted here-document: safe when it is printable
 * and has no line that ends the document. */
#define BOOT_CA_END "FERRY_CA_PEM_END"

static int boot_ca_ok(const char *pem)
{
    for (const char *p = pem; *p; p++)
        if ((*p < 0x20 || *p > 0x7E) && *p != '\n' && *p != '\r')
            return 0;
    for (const char *line = pem; line; line = strchr(line, '\n'), line = line ? line + 1 : NULL)
        if (strncmp(line, BOOT_CA_END, strlen(BOOT_CA_END)) == 0)
            return 0;
    return 1;
}

static char *boot_ca_section(const char *ca_pem)
{
    if (ca_pem == NULL || ca_pem[0] == '\0' || !boot_ca_ok(ca_pem))
        return ferry_strdup("FERRY_CA_PEM=''\n");
    size_t n = strlen(ca_pem);
    return ferry_asprintf("# What ferryd's certificate is verified with (its tls.ca); "
                          "FERRY_CA_FILE overrides it.\n"
                          "FERRY_CA_PEM=$(cat <<'" BOOT_CA_END "'\n%s%s" BOOT_CA_END "\n)\n",
                          ca_pem, ca_pem[n - 1] == '\n' ? "" : "\n");
}

/* The environment's runtime settings ("KEY=VALUE" lines) as quoted
 * --runtime-setting words for the agent's command line, each followed by a
 * space; "" when there are none. */
static char *boot_runtime_args(const ferry_env_config *env)
{
    const char *lines = ferry_settings_get(env->settings, "runtime_settings");
    char *out = ferry_strdup("");
    char *copy = ferry_strdup(lines ? lines : ""), *save = NULL;
    for (char *l = strtok_r(copy, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        char *q = boot_sh_quote(l);
        char *next = ferry_asprintf("%s--runtime-setting %s ", out, q);
        free(q);
        free(out);
        out = next;
    }
    free(copy);
    return out;
}

/* The script body with the runtime settings in place of their marker. */
static char *boot_body(const ferry_env_config *env)
{
    static const char marker[] = "$RUNTIME_SETTINGS_ARGS";
    const char *at = strstr(boot_script_body, marker);
    char *args = boot_runtime_args(env);
    char *body = ferry_asprintf("%.*s%s%s", (int)(at - boot_script_body), boot_script_body, args,
                                at + strlen(marker));
    free(args);
    return body;
}

char *ferry_bootstrap_script(const ferry_env_config *env, const char *server_url,
                             const char *bundle_sha256, const char *ca_pem)
{
    char *q_url = boot_sh_quote(server_url), *q_env = boot_sh_quote(env->name);
    char *q_rt = boot_sh_quote(env->runtime ? env->runtime : "local-process");
    char *ca = boot_ca_section(ca_pem), *body = boot_body(env);
    char *script = ferry_asprintf(
        "#!/bin/sh\n"
        "# ferry-agent bootstrap for the environment %s, from ferryd %s.\n"
        "#\n"
        "#   FERRY_BOOTSTRAP_TOKEN=TOKEN sh bootstrap.sh [ferry-agent options]\n"
        "#   sh bootstrap.sh TOKEN [ferry-agent options]\n"
        "#\n"
        "# TOKEN is the environment's join token (a machine joined by hand), or the\n"
        "# one-time bootstrap token of a launched worker (then FERRY_WORKER_ID is set).\n"
        "# The script downloads the agent bundle from ferryd, checks its SHA-256\n"
        "# against the one below, unpacks it into $FERRY_AGENT_DIR/<sha256> (default\n"
        "# /opt/ferry-agent) and becomes ferry-agent (exec). Settings:\n"
        "#   FERRY_CA_FILE    CA certificates that verify ferryd's TLS certificate\n"
        "#                    (default: the ones below, else the system's)\n"
        "#   FERRY_WORK_DIR   the agent's work folder (default $FERRY_AGENT_DIR/work)\n"
        "#   FERRY_SLOTS      executions at once (default %d)\n"
        "set -eu\n"
        "\n"
        "FERRY_SERVER=%s\n"
        "FERRY_ENVIRONMENT=%s\n"
        "FERRY_RUNTIME=%s\n"
        "BUNDLE_SHA256=%s\n"
        "PLUGIN_RELDIR=%s\n"
        "DEFAULT_SLOTS=%d\n"
        "%s"
        "\n"
        "%s",
        q_env, FERRY_VERSION, env->gpus > 0 ? env->gpus : 1, q_url, q_env, q_rt, bundle_sha256,
        FERRY_PLUGIN_RELDIR, env->gpus > 0 ? env->gpus : 1, ca, body);
    free(ca);
    free(body);
    free(q_url);
    free(q_env);
    free(q_rt);
    return script;
}

/* Each waiter once, however often it asks while the build runs. */
static void boot_wait(ferry_bundle_built_fn built, void *arg)
{
    for (boot_waiter *w = boot.waiters; w; w = w->next)
        if (w->built == built && w->arg == arg)
            return;
    boot_waiter *w = ferry_xcalloc(1, sizeof(*w));
    w->built = built;
    w->arg = arg;
    w->next = boot.waiters;
    boot.waiters = w;
}

int ferry_bundle_last(ferry_bundle_info *info)
{
    memset(info, 0, sizeof(*info));
    info->agent_path = boot.agent_path;
    info->error = boot.last_error[0] ? boot.last_error : NULL;
    if (boot.key == NULL)
        return FERRY_ENOENT;
    info->sha256 = boot.sha;
    info->agent_sha256 = boot.agent_sha;
    info->bundle_path = boot.bundle_path;
    return 0;
}

int ferry_bundle_get(ferryd *d, ferry_bundle_info *info, ferry_bundle_built_fn built, void *arg)
{
    boot_inputs in = {0};
    memset(info, 0, sizeof(*info));
    int rc = boot_inputs_collect(d, &in);
    info->agent_path = boot.agent_path;
    if (rc != 0) {
        boot_inputs_free(&in);
        return FERRY_ENOENT;
    }
    char *key = boot_inputs_key(&in);
    if (boot.job == NULL && boot.key && strcmp(boot.key, key) == 0) {
        boot_inputs_free(&in);
        free(key);
        info->sha256 = boot.sha;
        info->agent_sha256 = boot.agent_sha;
        info->bundle_path = boot.bundle_path;
        return 0;
    }
    boot_wait(built, arg);
    if (boot.job == NULL) {
        boot_build_start(d, &in, key); /* takes them */
    } else {
        boot_inputs_free(&in);
        free(key);
    }
    return FERRY_EAGAIN;
}

char *ferry_bootstrap_user_data(ferryd *d, const ferry_env_config *env, const char *worker_id,
                                const char *token, const char *bundle_sha256)
{
    char *ca = d->cfg.tls_ca ? ferry_read_file(d->cfg.tls_ca, NULL) : NULL;
    if (d->cfg.tls_ca && ca == NULL)
        ferry_warn("user-data: cannot read %s: %s", d->cfg.tls_ca, strerror(errno));
    char *script = ferry_bootstrap_script(env, d->server_url, bundle_sha256, ca);
    free(ca);
    char *q_id = boot_sh_quote(worker_id), *q_token = boot_sh_quote(token);
    const char *body = strncmp(script, "#!", 2) == 0 ? strchr(script, '\n') + 1 : script;
    /* The worker's id and one-time token first, then the script as served. */
    char *out = ferry_asprintf("#!/bin/sh\n"
                               "# ferry worker %s: user-data written by ferryd.\n"
                               "FERRY_WORKER_ID=%s\n"
                               "FERRY_BOOTSTRAP_TOKEN=%s\n"
                               "export FERRY_WORKER_ID FERRY_BOOTSTRAP_TOKEN\n"
                               "%s",
                               worker_id, q_id, q_token, body);
    memset(q_token, 0, strlen(q_token));
    free(q_id);
    free(q_token);
    free(script);
    return out;
}
