/* ferry-conformance: checks a compute, runtime or store plugin against the
 * contract written in sdk/include/ferry/, through core's real loader and
 * host.
 *
 *   ferry-conformance PLUGIN.so [--set KEY=VALUE]... [--secret NAME=VALUE]...
 *
 * Prints one TAP-like line per check and "N passed, M failed, K skipped";
 * exits 0 only when nothing failed. The checks run in a child process, so
 * that a plugin that crashes or hangs still gets a report from the parent.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#include "conformance.h"
#include "log.h"
#include "util.h"

typedef struct ferry__options {
    const char *plugin_path;
    ferry_settings *settings;
    ferry_settings *secrets;
    int timeout_s;
    int verbose;
} ferry__options;

static void ferry__usage(FILE *f)
{
    fprintf(f, "usage: ferry-conformance PLUGIN.so [--set KEY=VALUE]... [--secret NAME=VALUE]...\n"
               "                         [--image IMAGE] [--timeout SECONDS] [--verbose]\n"
               "Checks a ferry plugin against the SDK's contract; exit 0 when every check "
               "passes.\n"
               "  --set KEY=VALUE     a setting of the plugin's configuration block\n"
               "  --secret NAME=VALUE a secret the plugin reads with secret_get\n"
               "  --image IMAGE       the image of runtime runs (default busybox)\n"
               "  --timeout SECONDS   give up on a hung plugin after this long (default 600)\n"
               "  --verbose           show the host's and the plugin's debug log on stderr\n");
}

/* "KEY=VALUE" into `s`; -1 when there is no '=' or no key. */
static int ferry__parse_pair(ferry_settings *s, const char *pair)
{
    const char *eq = strchr(pair, '=');
    if (eq == NULL || eq == pair)
        return -1;
    char *key = ferry_asprintf("%.*s", (int)(eq - pair), pair);
    ferry_settings_set(s, key, eq + 1);
    free(key);
    return 0;
}

/* 0, or 2 (the exit code of a usage error) after a message. */
static int ferry__parse_args(int argc, char **argv, ferry__options *o)
{
    o->timeout_s = 600;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has_value = i + 1 < argc;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            ferry__usage(stdout);
            exit(0);
        } else if (strcmp(a, "--verbose") == 0) {
            o->verbose = 1;
        } else if (strcmp(a, "--set") == 0 && has_value) {
            if (ferry__parse_pair(o->settings, argv[++i]) < 0)
                return fprintf(stderr, "--set takes KEY=VALUE, not '%s'\n", argv[i]), 2;
        } else if (strcmp(a, "--secret") == 0 && has_value) {
            if (ferry__parse_pair(o->secrets, argv[++i]) < 0)
                return fprintf(stderr, "--secret takes NAME=VALUE, not '%s'\n", argv[i]), 2;
        } else if (strcmp(a, "--image") == 0 && has_value) {
            ferry_conf_run_image = argv[++i];
        } else if (strcmp(a, "--timeout") == 0 && has_value) {
            o->timeout_s = atoi(argv[++i]);
            if (o->timeout_s <= 0)
                return fprintf(stderr, "--timeout takes a number of seconds\n"), 2;
        } else if (a[0] == '-' || o->plugin_path != NULL) {
            ferry__usage(stderr);
            return 2;
        } else {
            o->plugin_path = a;
        }
    }
    if (o->plugin_path == NULL) {
        ferry__usage(stderr);
        return 2;
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Descriptor                                                               */

static size_t ferry__ops_size(ferry_plugin_kind kind)
{
    switch (kind) {
    case FERRY_PLUGIN_COMPUTE:
        return sizeof(ferry_compute_ops);
    case FERRY_PLUGIN_RUNTIME:
        return sizeof(ferry_runtime_ops);
    case FERRY_PLUGIN_STORE:
        return sizeof(ferry_store_ops);
    }
    return 0;
}

/* Built against these headers, a struct is exactly their sizeof; built
 * against a later minor it can only be larger, an earlier one smaller. */
static int ferry__size_fits_minor(size_t theirs, size_t ours, unsigned minor)
{
    if (minor == FERRY_ABI_MINOR)
        return theirs == ours;
    return minor > FERRY_ABI_MINOR ? theirs >= ours : theirs <= ours;
}

static void ferry__check_sizes(const ferry_plugin *p)
{
    const char *kind = ferry_plugin_kind_name(p->desc.kind);
    size_t ops_size = *(const size_t *)&p->ops; /* every ops table starts with it */
    if (!ferry_conf_check(ferry__size_fits_minor(p->desc.struct_size,
                                                 sizeof(ferry_plugin_descriptor),
                                                 p->desc.abi_minor),
                          "descriptor: struct_size matches abi_minor %u", p->desc.abi_minor))
        ferry_conf_diag("struct_size %zu, sizeof(ferry_plugin_descriptor) of ABI 1.%d is %zu",
                        p->desc.struct_size, FERRY_ABI_MINOR, sizeof(ferry_plugin_descriptor));
    if (!ferry_conf_check(
            ferry__size_fits_minor(ops_size, ferry__ops_size(p->desc.kind), p->desc.abi_minor),
            "descriptor: the %s ops table's struct_size matches abi_minor %u", kind,
            p->desc.abi_minor))
        ferry_conf_diag("struct_size %zu, sizeof(ferry_%s_ops) of ABI 1.%d is %zu", ops_size, kind,
                        FERRY_ABI_MINOR, ferry__ops_size(p->desc.kind));
}

static int ferry__settings_names_ok(const char *const *names)
{
    for (size_t i = 0; names[i] != NULL; i++) {
        if (names[i][0] == '\0')
            return 0;
        for (size_t j = 0; j < i; j++)
            if (strcmp(names[i], names[j]) == 0)
                return 0;
    }
    return 1;
}

static void ferry__check_descriptor(const ferry_plugin *p, const ferry_settings *settings)
{
    ferry_conf_check(p->desc.version != NULL && p->desc.version[0] != '\0',
                     "descriptor: version is set");
    ferry__check_sizes(p);
    if (p->desc.settings == NULL) {
        ferry_conf_skip("settings is NULL: the host checks no setting names",
                        "descriptor: settings lists each name once");
        return;
    }
    ferry_conf_check(ferry__settings_names_ok(p->desc.settings),
                     "descriptor: settings lists each name once, none empty");
    const char *unknown = NULL;
    if (!ferry_conf_check(ferry_plugin_check_settings(p, settings, NULL, &unknown) == 0,
                          "descriptor: settings declares every --set setting")) {
        char *declared = ferry_plugin_settings_list(p);
        ferry_conf_diag("\"%s\" is not declared (declared: %s); the host would refuse it", unknown,
                        declared[0] ? declared : "none");
        free(declared);
    }
}

/* ------------------------------------------------------------------------ */
/* Init                                                                     */

static ferry_settings *ferry__settings_without(const ferry_settings *s, const char *drop)
{
    ferry_settings *out = ferry_settings_new();
    size_t it = 0;
    const char *k, *v;
    while (ferry_settings_next(s, &it, &k, &v))
        if (strcmp(k, drop) != 0)
            ferry_settings_set(out, k, v);
    return out;
}

/* The checks cannot know which settings are required; any --set one may
 * be. Without it, init either starts anyway or fails with a detail. */
static void ferry__check_init_without(const ferry_settings *settings)
{
    size_t it = 0;
    const char *key, *value;
    int any = 0;
    while (ferry_settings_next(settings, &it, &key, &value)) {
        any = 1;
        ferry_settings *less = ferry__settings_without(settings, key);
        ferry_conf_inst *ci = ferry_conf_instance_new(less);
        ferry_settings_free(less);
        if (ci->inst != NULL) {
            ferry_conf_skip("init succeeds without it",
                            "init: without setting \"%s\", fails with an error detail", key);
            ferry_conf_instance_free(ci);
            continue;
        }
        const ferry_error_detail *e = &ci->init_err;
        if (!ferry_conf_check(e->code < 0 && e->message[0] != '\0',
                              "init: without setting \"%s\", fails with an error detail", key))
            ferry_conf_diag("init returned %s; err->code %d, err->message \"%s\"",
                            ferry_err_name(ci->init_rc), e->code, e->message);
    }
    if (!any)
        ferry_conf_skip("no --set setting given, so none is known to be required",
                        "init: without a required setting, fails with an error detail");
}

static void ferry__run_kind(const ferry_plugin *p, ferry_conf_inst *ci,
                            const ferry_settings *settings, const char *dir)
{
    switch (p->desc.kind) {
    case FERRY_PLUGIN_STORE:
        ferry_conf_store(ci, settings, dir);
        break;
    case FERRY_PLUGIN_RUNTIME:
        ferry_conf_runtime(ci, settings, dir);
        break;
    case FERRY_PLUGIN_COMPUTE:
        ferry_conf_compute(ci, settings, dir);
        break;
    }
}

static char *ferry__scratch_dir(void)
{
    const char *tmp = getenv("TMPDIR");
    char *dir = ferry_asprintf("%s/ferry-conformance-XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
    if (mkdtemp(dir) == NULL) {
        fprintf(stderr, "ferry-conformance: mkdtemp %s: %s\n", dir, strerror(errno));
        exit(2);
    }
    return dir;
}

/* Everything the child runs, in the scratch folder `dir`; the tally is
 * what counts. */
static void ferry__run_checks(const ferry__options *o, const char *dir)
{
    char err[1024];
    ferry_plugin *p = NULL;
    int rc = ferry_plugin_load(o->plugin_path, &p, err, sizeof(err));
    if (!ferry_conf_check(rc == 0, "load: the host loads %s (ABI %d, descriptor and ops complete)",
                          o->plugin_path, FERRY_ABI_MAJOR)) {
        ferry_conf_diag("%s", err);
        return;
    }
    const char *kind = ferry_plugin_kind_name(p->desc.kind);
    printf("# %s plugin \"%s\" %s, ABI %u.%u\n", kind, p->desc.name,
           p->desc.version ? p->desc.version : "(no version)", p->desc.abi_major,
           p->desc.abi_minor);
    ferry__check_descriptor(p, o->settings);

    ferry_conf_harness_init(p, o->secrets);
    ferry__check_init_without(o->settings);
    ferry_conf_inst *ci = ferry_conf_instance_new(o->settings);
    int started = ferry_conf_check(ci->inst != NULL, "init: succeeds with the given settings");
    if (started) {
        ferry__run_kind(p, ci, o->settings, dir);
        ferry_conf_instance_free(ci);
    } else {
        ferry_conf_diag("init returned %s: %s", ferry_err_name(ci->init_rc), ci->init_err.message);
    }
    ferry_conf_harness_close(started ? kind : NULL);
    fflush(stdout);
    ferry_plugin_unload(p);
}

/* ------------------------------------------------------------------------ */
/* Parent: runs the checks in a child and reports whatever happens to it    */

static int ferry__wait_child(pid_t child, int timeout_s, int *status)
{
    struct timespec nap = {0, 50 * 1000 * 1000};
    for (long waited_ms = 0; waited_ms < (long)timeout_s * 1000; waited_ms += 50) {
        pid_t r = waitpid(child, status, WNOHANG);
        if (r == child)
            return 0;
        if (r < 0 && errno != EINTR)
            return -1;
        nanosleep(&nap, NULL);
    }
    kill(child, SIGKILL);
    waitpid(child, status, 0);
    return 1;
}

static void ferry__report_child(ferry_conf_tally *t, int waited, int status, int timeout_s)
{
    if (waited > 0) {
        ferry_conf_check(0, "the checks finish within %d s", timeout_s);
        ferry_conf_diag("a plugin call or callback hung; killed after check %d", t->n - 1);
    } else if (waited < 0 || WIFSIGNALED(status)) {
        int sig = waited < 0 ? 0 : WTERMSIG(status);
        ferry_conf_check(0, "the plugin does not crash its host");
        ferry_conf_diag("the process died of signal %d (%s) after check %d", sig, strsignal(sig),
                        t->n - 1);
    } else if (WEXITSTATUS(status) != 0) {
        /* The checks exit 0 when they end; an early exit is a crash that a
         * sanitizer (or the plugin itself) turned into an exit status. */
        ferry_conf_check(0, "the plugin does not crash its host");
        ferry_conf_diag("the process exited with status %d after check %d, before the checks "
                        "ended",
                        WEXITSTATUS(status), t->n - 1);
    }
}

int main(int argc, char **argv)
{
    ferry__options o = {.settings = ferry_settings_new(), .secrets = ferry_settings_new()};
    int rc = ferry__parse_args(argc, argv, &o);
    if (rc != 0)
        return rc;
    ferry_log_set_name("ferry-conformance");
    ferry_log_set_level(o.verbose ? FERRY_LOG_DEBUG : FERRY_LOG_WARN);
    setvbuf(stdout, NULL, _IOLBF, 0);
    ferry_conf_tally *t =
        mmap(NULL, sizeof(*t), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (t == MAP_FAILED) {
        perror("ferry-conformance: mmap");
        return 2;
    }
    memset(t, 0, sizeof(*t));
    ferry_conf_report_init(t);
    /* Made and removed here, so that a crashed child leaves nothing. */
    char *dir = ferry__scratch_dir();
    fflush(NULL);
    pid_t child = fork();
    if (child < 0) {
        perror("ferry-conformance: fork");
        return 2;
    }
    if (child == 0) {
#ifdef __linux__
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive a killed parent */
#endif
        ferry__run_checks(&o, dir);
        fflush(NULL);
        exit(0); /* not _exit: leak checkers run at exit */
    }
    int status = 0;
    int waited = ferry__wait_child(child, o.timeout_s, &status);
    ferry__report_child(t, waited, status, o.timeout_s);
    ferry_rmtree(dir);
    free(dir);
    printf("1..%d\n%d passed, %d failed, %d skipped\n", t->n, t->passed, t->failed, t->skipped);
    ferry_settings_free(o.settings);
    ferry_settings_free(o.secrets);
    return t->failed == 0 ? 0 : 1;
}
