/* One execution on this worker, from work spec to finished report:
 *
 *   prepare   folders, snapshot (cached by sha256), inputs, config files
 *   starting  POST status started
 *   running   the runtime plugin runs the command; output -> shipper
 *   finishing all events acked, outputs walked, registered and uploaded,
 *             all events acked again, POST status finished, folder removed
 *
 * Each step starts one asynchronous operation (a call, a threadpool job or
 * the run) whose completion starts the next. A failed preparation or a stop
 * skips the run but never the reporting: outputs are uploaded and the
 * finished report is sent whatever happened.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent.h"
#include "exec_state.h"
#include "tarball.h"
#include "log.h"
#include "util.h"

#define EX_TRANSFER_ATTEMPTS 5
#define EX_STALL_TIMEOUT_MS 120000

struct execution {
    execution *next;
    agent *a;
    json_t *spec;
    char id[64];
    char *dir, *repo_dir, *inputs_dir, *outputs_dir, *config_dir;
    shipper *ship;
    exec_state state; /* exec_state.h; written only by ex_set_state() */
    agent_call *call; /* the call in flight, if any */
    uv_work_t work;
    /* preparation */
    char *snapshot_cache; /* <work>/snapshots/<sha256>.tar.gz */
    char *snapshot_part;  /* the download, before it is verified */
    char *snapshot_sha;
    int snapshot_verify;
    int64_t snapshot_max_bytes, snapshot_max_members; /* the spec's bounds; 0: the defaults */
    atomic_int extract_cancel;                        /* a stop sets it: the extraction ends */
    size_t input_i, file_i;
    json_t *inputs_doc;                        /* config/inputs.json */
    char *input_name, *input_file, *input_url; /* the download in flight */
    /* What the pool found of the file in place, for inputs.json. */
    char input_md5[33], input_sha1[41], input_sha256[65];
    int64_t input_got;
    char *input_shown;              /* its URL for people (no query string) */
    char *input_etag, *input_cache; /* with an ETag: the worker's cached copy */
    char *input_part, *input_dest;  /* where it downloads, where it goes */
    int64_t input_size;             /* -1: unknown */
    int input_cache_hit;
    /* The ETag is the file's sha256 (a datum://), not the server's: no If-Match. */
    int input_etag_is_sha;
    /* Cached inputs bound read-only, not copied (inputcache.c): the file in
     * place is input_link, inputs/ holds an empty stand-in. */
    char *input_link;         /* <dir>/input-files/<n>, offered to the pool; NULL: copy */
    int input_linked;         /* the pool made it */
    ferry_mount *input_binds; /* source: the link; destination: under inputs/ */
    size_t n_input_binds;
    int bind_budget; /* how many more the runtime binds; -1: not asked yet */
    /* the run */
    char **env;
    ferry_run *run;                       /* while the runtime runs the commands */
    uv_timer_t limit_timer;               /* time_limit */
    uv_timer_t quiet_timer;               /* no_output_timeout */
    json_int_t time_limit_s, no_output_s; /* 0: none */
    uint64_t last_output_ms;              /* loop time of the last stdout/stderr bytes */
    int open_handles;                     /* timers not closed yet, on the way out */
    char *stop_reason;                    /* the first stop's */
    int exit_code;
    char *reason;
    /* threadpool job results */
    int work_rc;
    char work_err[512];
    /* outputs */
    output_list outs;
    uploads *up;
    live *live; /* while the commands run and its last upload ends */
};

static void ex_report_started(execution *ex, int run);
static void ex_finish(execution *ex);
static void ex_next_input(execution *ex);

static void ex_set_state(execution *ex, exec_state to)
{
    exec_state_set(&ex->state, ex->id, to);
}

const char *execution_id(const execution *ex)
{
    return ex->id;
}

execution *execution_next(const execution *ex)
{
    return ex->next;
}

void execution_set_next(execution *ex, execution *next)
{
    ex->next = next;
}

int execution_holds_slot(const execution *ex)
{
    return ex->state != EXEC_CLEANING && ex->state != EXEC_DONE;
}

static const char *spec_str(json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}

/* Ids and sha256s name folders and files: only a safe alphabet. */
static int ex_valid_id(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > 63)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '_')
            return 0;
    return 1;
}

static int ex_valid_sha256(const char *s)
{
    if (s == NULL || strlen(s) != 64)
        return 0;
    for (int i = 0; i < 64; i++)
        if (!isxdigit((unsigned char)s[i]))
            return 0;
    return 1;
}

/* A single safe path component (an input name, a file name). */
static int ex_valid_component(const char *s)
{
    return s && strchr(s, '/') == NULL && ferry_safe_relpath(s) && strlen(s) < NAME_MAX;
}

/* A limit in seconds; anything but a positive integer means none. Capped so
 * that the milliseconds fit a timer. */
static json_int_t ex_spec_seconds(json_t *spec, const char *key)
{
    json_int_t v = json_integer_value(json_object_get(spec, key));
    if (v <= 0)
        return 0;
    return v > (json_int_t)100 * 365 * 86400 ? (json_int_t)100 * 365 * 86400 : v;
}

/* A bound the work spec may set (ferryd's, docs/api.md); anything but a
 * positive integer leaves the agent's default (0). */
static int64_t ex_spec_bound(json_t *obj, const char *key)
{
    json_int_t v = json_integer_value(json_object_get(obj, key));
    return v > 0 ? (int64_t)v : 0;
}

/* gpus: absent, null or "" (none), or GPU indices/UUIDs ("1", "0,2",
 * "GPU-8f3e..."). The runtime hands the text to CUDA_VISIBLE_DEVICES or a
 * container's device list, so only that alphabet passes. */
static int ex_valid_gpus(json_t *gpus)
{
    if (gpus == NULL || json_is_null(gpus))
        return 1;
    const char *s = json_string_value(gpus);
    if (s == NULL || strlen(s) > 1024)
        return 0;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != ',' && *s != '-')
            return 0;
    return 1;
}

static void ex_queue_work(execution *ex, uv_work_cb work, uv_after_work_cb after)
{
    ex->work_rc = 0;
    ex->work_err[0] = '\0';
    ex->work.data = ex;
    uv_queue_work(ex->a->loop, &ex->work, work, after);
}

/* ---- ending the preparation early ---- */

static void ex_set_result(execution *ex, int exit_code, const char *reason)
{
    if (ex->reason == NULL && reason) {
        ex->reason = ferry_strdup(reason);
        ex->exit_code = exit_code;
    }
}

/* The commands will not run: say why (status event and finished reason). */
static void ex_prep_failed(execution *ex, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void ex_prep_failed(execution *ex, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *text = ferry_vasprintf(fmt, ap);
    va_end(ap);
    char *reason = ferry_asprintf("could not start: %s", text);
    ferry_warn("execution %s: %s", ex->id, reason);
    shipper_status(ex->ship, "%s", reason);
    ex_set_result(ex, -1, reason);
    free(reason);
    free(text);
    ex_report_started(ex, 0);
}

/* At each step of the preparation: a stop skips the rest. */
static int ex_prep_stopped(execution *ex)
{
    if (ex->state != EXEC_PREP_STOPPING)
        return 0;
    ex_report_started(ex, 0);
    return 1;
}

/* ---- config files ---- */

static int ex_write_json(execution *ex, const char *name, json_t *value)
{
    char *path = ferry_asprintf("%s/%s", ex->config_dir, name);
    char *text = json_dumps(value, JSON_INDENT(2) | JSON_REAL_PRECISION(15));
    int rc = text ? ferry_write_file(path, text, strlen(text)) : FERRY_ENOMEM;
    if (rc != 0)
        ex_prep_failed(ex, "could not write config/%s: %s", name, ferry_strerror(rc));
    free(text);
    free(path);
    return rc;
}

static void ex_write_config(execution *ex)
{
    json_t *params = json_object_get(ex->spec, "parameters");
    json_t *exec = json_object_get(ex->spec, "execution");
    json_t *empty = json_object();
    int rc = ex_write_json(ex, "parameters.json", json_is_object(params) ? params : empty);
    /* Valohai writes the values as YAML too; JSON is YAML, so the same text. */
    if (rc == 0)
        rc = ex_write_json(ex, "parameters.yaml", json_is_object(params) ? params : empty);
    if (rc == 0)
        rc = ex_write_json(ex, "inputs.json", ex->inputs_doc);
    if (rc == 0)
        rc = ex_write_json(ex, "execution.json", json_is_object(exec) ? exec : empty);
    json_decref(empty);
    if (rc == 0)
        ex_report_started(ex, 1);
}

/* ---- inputs ---- */

static void ex_input_failed(execution *ex, const char *why)
{
    ex_prep_failed(ex, "input \"%s\" file %s from %s: %s", ex->input_name, ex->input_file,
                   ex->input_shown, why);
}

static void ex_input_download(execution *ex);

/* The file the commands read: the stand-in is empty. */
static const char *ex_input_placed(const execution *ex)
{
    return ex->input_linked ? ex->input_link : ex->input_dest;
}

/* inputs.json's size and checksums of the file in place (Valohai's
 * format): one more read of it, on the pool. */
static void ex_input_digests(execution *ex)
{
    if (ex->work_rc == 0 && ferry_file_digests(ex_input_placed(ex), ex->input_md5, ex->input_sha1,
                                               ex->input_sha256, &ex->input_got) != 0)
        ex->input_got = -1;
}

/* The checksums of a copy from the cache: kept beside the cached file
 * since it was first hashed, else hashed now and kept. */
static void ex_input_cached_digests(execution *ex)
{
    struct stat st;
    if (ex->work_rc == 0 && stat(ex_input_placed(ex), &st) == 0 &&
        inputcache_load_sums(ex->input_cache, (int64_t)st.st_size, ex->input_md5, ex->input_sha1,
                             ex->input_sha256) == 0) {
        ex->input_got = (int64_t)st.st_size;
        return;
    }
    ex_input_digests(ex);
    if (ex->work_rc == 0 && ex->input_got >= 0)
        inputcache_save_sums(ex->input_cache, ex->input_got, ex->input_md5, ex->input_sha1,
                             ex->input_sha256);
}

static void ex_input_copy_work(uv_work_t *w)
{
    execution *ex = w->data;
    ex->work_rc = inputcache_place(ex->input_cache, ex->input_dest, ex->input_link,
                                   ex->a->cfg.bind_inputs_min_bytes, ex->input_size,
                                   &ex->input_linked, ex->work_err, sizeof(ex->work_err));
    ex_input_cached_digests(ex);
}

static void ex_input_take_work(uv_work_t *w)
{
    execution *ex = w->data;
    ex->work_rc = inputcache_take(ex->input_part, ex->input_cache, ex->input_dest, ex->input_link,
                                  ex->a->cfg.bind_inputs_min_bytes, ex->input_size,
                                  &ex->input_linked, ex->work_err, sizeof(ex->work_err));
    if (ex->work_rc == 0 && ex->input_cache)
        cache_prune(ex->a->cfg.work_dir, ex->a->cfg.cache_max_bytes);
    ex_input_digests(ex);
    if (ex->work_rc == 0 && ex->input_cache && ex->input_got >= 0)
        inputcache_save_sums(ex->input_cache, ex->input_got, ex->input_md5, ex->input_sha1,
                             ex->input_sha256);
}

/* The file just placed: its size and checksums in its inputs.json entry. */
static void ex_input_note_file(execution *ex)
{
    json_t *files = json_object_get(json_object_get(ex->inputs_doc, ex->input_name), "files");
    json_t *entry = json_array_get(files, json_array_size(files) - 1);
    if (entry == NULL || ex->input_got < 0)
        return;
    json_object_set_new(entry, "size", json_integer((json_int_t)ex->input_got));
    json_object_set_new(entry, "checksums",
                        json_pack("{s:s, s:s, s:s}", "md5", ex->input_md5, "sha1", ex->input_sha1,
                                  "sha256", ex->input_sha256));
}

/* The runtime binds the link onto the stand-in (ferry_run_spec.input_files). */
static void ex_input_bound(execution *ex)
{
    ex->input_binds =
        ferry_xrealloc(ex->input_binds, (ex->n_input_binds + 1) * sizeof(*ex->input_binds));
    ferry_mount *m = &ex->input_binds[ex->n_input_binds++];
    m->source = ex->input_link;
    m->destination = ferry_strdup(ex->input_dest + strlen(ex->inputs_dir) + 1);
    m->readonly = 1;
    ex->input_link = NULL; /* the bind owns it now */
    ex->bind_budget--;
    shipper_status(ex->ship, "input %s: %s is the worker's cached file, bound read-only",
                   ex->input_name, ex->input_file);
}

/* A path in the execution's folder for the pool to link the cached file
 * at, while the runtime binds more; NULL: the file is copied. */
static char *ex_input_link_path(execution *ex)
{
    if (ex->bind_budget < 0)
        ex->bind_budget =
            ex->a->rt->binds_input_files ? ex->a->rt->binds_input_files(ex->a->rt_state) : 0;
    if (ex->bind_budget <= 0 || ex->a->cfg.bind_inputs_min_bytes < 0 || ex->input_cache == NULL)
        return NULL;
    char *folder = ferry_asprintf("%s/input-files", ex->dir);
    char *path = NULL;
    if (ferry_file_mkdirs(folder, 0700) == 0)
        path = ferry_asprintf("%s/%zu", folder, ex->n_input_binds);
    free(folder);
    return path;
}

/* After a copy from the cache or a download's check. */
static void ex_input_work_done(uv_work_t *w, int status)
{
    (void)status;
    execution *ex = w->data;
    if (ex_prep_stopped(ex))
        return;
    if (ex->work_rc == FERRY_ENOENT && ex->input_cache_hit) {
        ex->input_cache_hit = 0; /* no usable copy after all */
        ex_input_download(ex);
        return;
    }
    if (ex->work_rc != 0) {
        ex_input_failed(ex, ex->work_err);
        return;
    }
    if (ex->input_linked)
        ex_input_bound(ex);
    ex_input_note_file(ex);
    ex->file_i++;
    ex_next_input(ex);
}

static void ex_on_input(void *arg, const agent_reply *r)
{
    execution *ex = arg;
    ex->call = NULL;
    if (ex_prep_stopped(ex))
        return;
    if (!r->ok) {
        char why[512];
        ex_input_failed(ex, agent_reply_text(r, why, sizeof(why)));
        return;
    }
    ex_queue_work(ex, ex_input_take_work, ex_input_work_done);
}

/* With an ETag the download must be that version of the object (If-Match):
 * a copy cached under it never holds another one. */
static void ex_input_download(execution *ex)
{
    shipper_status(ex->ship, "downloading input %s: %s", ex->input_name, ex->input_file);
    char if_match[300];
    const char *headers[2] = {NULL, NULL};
    if (ex->input_etag && !ex->input_etag_is_sha) {
        snprintf(if_match, sizeof(if_match), "If-Match: %s", ex->input_etag);
        headers[0] = if_match;
    }
    agent_call_spec s = {.url = ex->input_url,
                         .headers = headers,
                         .download_path = ex->input_part,
                         .protocols = "http,https,file",
                         .max_attempts = EX_TRANSFER_ATTEMPTS,
                         .stall_timeout_ms = EX_STALL_TIMEOUT_MS};
    ex->call = agent_call_start(ex->a, &s, ex_on_input, ex);
}

/* An ETag that can travel in a header. */
static int ex_valid_etag(const char *etag)
{
    size_t n = etag ? strlen(etag) : 0;
    if (n == 0 || n > 200)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)etag[i] < 0x20 || etag[i] == 0x7f)
            return 0;
    return 1;
}

/* Where this file goes (takes `dest`), and whether the worker's cache has
 * it already. */
static void ex_input_fetch(execution *ex, json_t *file, char *dest)
{
    json_t *size = json_object_get(file, "size");
    const char *etag = spec_str(file, "etag");
    free(ex->input_dest);
    free(ex->input_part);
    free(ex->input_cache);
    free(ex->input_etag);
    ex->input_size = json_is_integer(size) ? json_integer_value(size) : -1;
    ex->input_etag_is_sha =
        etag && spec_str(file, "sha256") && strcmp(etag, spec_str(file, "sha256")) == 0;
    ex->input_dest = dest;
    ex->input_cache = ex->input_etag = NULL;
    char *cache_dir = ferry_asprintf("%s/inputs-cache", ex->a->cfg.work_dir);
    if (ex_valid_etag(etag) && ferry_file_mkdirs(cache_dir, 0755) == 0) {
        ex->input_etag = ferry_strdup(etag);
        ex->input_cache = inputcache_path(ex->a->cfg.work_dir, ex->input_shown, etag);
        ex->input_part = ferry_asprintf("%s.%s.part", ex->input_cache, ex->id);
    } else {
        ex->input_part = ferry_strdup(dest);
    }
    free(cache_dir);
    free(ex->input_link);
    ex->input_link = ex_input_link_path(ex);
    ex->input_linked = 0;
    ex->input_cache_hit = ex->input_cache && access(ex->input_cache, R_OK) == 0;
    if (ex->input_cache_hit) {
        cache_touch(ex->input_cache);
        shipper_status(ex->ship, "input %s: %s from the worker's cache (ETag %s)", ex->input_name,
                       ex->input_file, ex->input_etag);
        ex_queue_work(ex, ex_input_copy_work, ex_input_work_done);
    } else {
        ex_input_download(ex);
    }
}

/* The file name of an input file: given, or the last part of its URL. */
static char *ex_input_filename(json_t *file, const char *url)
{
    const char *given = spec_str(file, "filename");
    if (given)
        return ferry_strdup(given);
    char path[2048];
    ferry_http_redact_url(url, path, sizeof(path));
    const char *slash = strrchr(path, '/');
    return ferry_strdup(slash ? slash + 1 : path);
}

/* download: on-demand: not fetched. Its inputs.json entry gets the URL the
 * code fetches it from (for a store object, the presigned one, valid for
 * ferryd's presigned_url_ttl; inputs.json is the commands' own, like the
 * credentials Valohai gives them) and "download": "on-demand". */
static int ex_input_on_demand(execution *ex, json_t *file, char *dest)
{
    json_t *input = json_array_get(json_object_get(ex->spec, "inputs"), ex->input_i);
    if (!json_is_true(json_object_get(input, "on_demand")))
        return 0;
    free(dest);
    json_t *files = json_object_get(json_object_get(ex->inputs_doc, ex->input_name), "files");
    json_t *entry = json_array_get(files, json_array_size(files) - 1);
    json_object_set_new(entry, "url", json_string(spec_str(file, "url")));
    json_object_set_new(entry, "download", json_string("on-demand"));
    json_t *size = json_object_get(file, "size");
    if (json_is_integer(size)) /* known for a store object */
        json_object_set(entry, "size", size);
    shipper_status(ex->ship, "input %s: %s is downloaded on demand (its URL is in inputs.json)",
                   ex->input_name, ex->input_file);
    ex->file_i++;
    ex_next_input(ex);
    return 1;
}

static void ex_start_input(execution *ex, const char *name, json_t *file)
{
    const char *url = spec_str(file, "url");
    /* An s3:// input travels as a presigned URL; people see its own URL. */
    const char *source = spec_str(file, "source");
    char shown[2048];
    if (source)
        snprintf(shown, sizeof(shown), "%s", source);
    else
        ferry_http_redact_url(url ? url : "", shown, sizeof(shown));
    free(ex->input_name);
    free(ex->input_file);
    free(ex->input_url);
    free(ex->input_shown);
    ex->input_name = ferry_strdup(name);
    ex->input_file = url || source ? ex_input_filename(file, url ? url : source) : NULL;
    ex->input_url = ferry_strdup(url);
    ex->input_shown = ferry_strdup(shown);
    if (url == NULL && spec_str(file, "error")) { /* ferryd could not presign it */
        ex_input_failed(ex, spec_str(file, "error"));
        return;
    }
    if (url == NULL || !ex_valid_component(ex->input_file)) {
        ex_prep_failed(ex, "input \"%s\" has a file without a url or a usable file name", name);
        return;
    }
    char *folder = ferry_asprintf("%s/%s", ex->inputs_dir, name);
    char *dest = ferry_asprintf("%s/%s", folder, ex->input_file);
    int rc = ferry_file_mkdirs(folder, 0755);
    free(folder);
    if (rc != 0) {
        ex_prep_failed(ex, "could not create inputs/%s: %s", name, ferry_strerror(rc));
        free(dest);
        return;
    }
    /* inputs.json in Valohai's format: the path where the commands see the
     * file (in a container, not the worker's), its URI (the query string of
     * a presigned URL is a secret: never), size and checksums once it is
     * in place; "url" as ferry wrote it before. */
    const char *seen =
        ex->a->rt->inputs_path
            ? ex->a->rt->inputs_path(ex->a->rt_state,
                                     json_is_true(json_object_get(ex->spec, "valohai")))
            : NULL;
    char *path = ferry_asprintf("%s/%s/%s", seen ? seen : ex->inputs_dir, name, ex->input_file);
    json_t *entry = json_object_get(ex->inputs_doc, name); /* ex_next_input made it */
    json_array_append_new(json_object_get(entry, "files"),
                          json_pack("{s:s, s:s, s:s, s:s, s:n, s:{}, s:[]}", "name", ex->input_file,
                                    "path", path, "uri", shown, "url", shown, "size", "checksums",
                                    "metadata"));
    free(path);
    if (ex_input_on_demand(ex, file, dest))
        return;
    ex_input_fetch(ex, file, dest);
}

static void ex_next_input(execution *ex)
{
    if (ex_prep_stopped(ex))
        return;
    json_t *inputs = json_object_get(ex->spec, "inputs");
    while (ex->input_i < json_array_size(inputs)) {
        json_t *input = json_array_get(inputs, ex->input_i);
        const char *name = spec_str(input, "name");
        json_t *files = json_object_get(input, "files");
        if (!ex_valid_component(name)) {
            ex_prep_failed(ex, "an input has no usable name");
            return;
        }
        if (json_object_get(ex->inputs_doc, name) == NULL)
            json_object_set_new(ex->inputs_doc, name, json_pack("{s:[]}", "files"));
        if (ex->file_i < json_array_size(files)) {
            ex_start_input(ex, name, json_array_get(files, ex->file_i));
            return;
        }
        ex->input_i++;
        ex->file_i = 0;
    }
    ex_write_config(ex);
}

/* ---- snapshot ---- */

static void ex_extract_work(uv_work_t *w)
{
    execution *ex = w->data;
    if (ex->snapshot_verify) {
        char hex[65];
        int64_t size = 0;
        int rc = ferry_sha256_file(ex->snapshot_part, hex, &size);
        if (rc != 0 || strcasecmp(hex, ex->snapshot_sha) != 0) {
            ex->work_rc = FERRY_EPROTO;
            if (rc != 0)
                snprintf(ex->work_err, sizeof(ex->work_err), "could not read the download: %s",
                         ferry_strerror(rc));
            else
                snprintf(ex->work_err, sizeof(ex->work_err), "sha256 mismatch: expected %s, got %s",
                         ex->snapshot_sha, hex);
            unlink(ex->snapshot_part);
            return;
        }
        /* Verified: it becomes the cached copy (atomically, so another
         * execution never sees half of it). */
        if (rename(ex->snapshot_part, ex->snapshot_cache) != 0) {
            ex->work_rc = FERRY_EIO;
            snprintf(ex->work_err, sizeof(ex->work_err), "could not cache the snapshot: %s",
                     strerror(errno));
            unlink(ex->snapshot_part);
            return;
        }
    }
    /* Bounded, and cancelled by a stop: a snapshot that expands without end
     * (a gzip bomb) neither fills the worker's disk nor outlives its stop.
     * A committed symlink out of the tree (`data -> /mnt/datasets`) is kept
     * as the commit has it, and never followed (issue 17). */
    ferry_extract_opts o = {.max_bytes = ex->snapshot_max_bytes,
                            .max_members = ex->snapshot_max_members,
                            .cancel = &ex->extract_cancel,
                            .links_may_leave = 1};
    ex->work_rc = ferry_archive_extract_opts(ex->snapshot_cache, ex->repo_dir, &o, ex->work_err,
                                             sizeof(ex->work_err));
    /* A cached copy that does not extract is useless to the next execution
     * too: the next one downloads and verifies it afresh. One refused for
     * what it holds (unsafe, over a bound) or cut short by a stop is intact. */
    if (ex->work_rc != 0 && ex->work_rc != FERRY_EUNSAFE && ex->work_rc != FERRY_ETOOBIG &&
        ex->work_rc != FERRY_ECANCELED)
        unlink(ex->snapshot_cache);
    else if (ex->snapshot_verify) /* a new entry: room for it */
        cache_prune(ex->a->cfg.work_dir, ex->a->cfg.cache_max_bytes);
}

static void ex_extract_done(uv_work_t *w, int status)
{
    (void)status;
    execution *ex = w->data;
    if (ex_prep_stopped(ex))
        return;
    if (ex->work_rc != 0) {
        ex_prep_failed(ex, "snapshot %.12s: %s", ex->snapshot_sha, ex->work_err);
        return;
    }
    ex->inputs_doc = json_object();
    ex_next_input(ex);
}

static void ex_on_snapshot(void *arg, const agent_reply *r)
{
    execution *ex = arg;
    ex->call = NULL;
    if (ex_prep_stopped(ex))
        return;
    if (!r->ok) {
        char why[512];
        ex_prep_failed(ex, "snapshot %.12s could not be downloaded: %s", ex->snapshot_sha,
                       agent_reply_text(r, why, sizeof(why)));
        return;
    }
    ex->snapshot_verify = 1;
    ex_queue_work(ex, ex_extract_work, ex_extract_done);
}

static void ex_snapshot(execution *ex)
{
    json_t *snap = json_object_get(ex->spec, "snapshot");
    if (snap == NULL || json_is_null(snap)) {
        /* Nothing to extract: the commands run in an empty repository/. */
        ex->inputs_doc = json_object();
        ex_next_input(ex);
        return;
    }
    const char *url = spec_str(snap, "url");
    const char *sha = spec_str(snap, "sha256");
    if (url == NULL || !ex_valid_sha256(sha)) {
        ex_prep_failed(ex, "the work spec's snapshot has no url or no valid sha256");
        return;
    }
    ex->snapshot_sha = ferry_strdup(sha);
    ex->snapshot_max_bytes = ex_spec_bound(snap, "max_bytes");
    ex->snapshot_max_members = ex_spec_bound(snap, "max_members");
    for (char *p = ex->snapshot_sha; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    ex->snapshot_cache =
        ferry_asprintf("%s/snapshots/%s.tar.gz", ex->a->cfg.work_dir, ex->snapshot_sha);
    if (access(ex->snapshot_cache, R_OK) == 0) {
        cache_touch(ex->snapshot_cache);
        shipper_status(ex->ship, "using the cached snapshot %.12s", ex->snapshot_sha);
        ex_queue_work(ex, ex_extract_work, ex_extract_done);
        return;
    }
    ex->snapshot_part =
        ferry_asprintf("%s/snapshots/%s.%s.part", ex->a->cfg.work_dir, ex->snapshot_sha, ex->id);
    shipper_status(ex->ship, "downloading the snapshot %.12s", ex->snapshot_sha);
    agent_call_spec s = {.url = url,
                         .download_path = ex->snapshot_part,
                         .max_attempts = EX_TRANSFER_ATTEMPTS,
                         .stall_timeout_ms = EX_STALL_TIMEOUT_MS};
    ex->call = agent_call_start(ex->a, &s, ex_on_snapshot, ex);
}

/* ---- the run ---- */

static void ex_on_output(void *arg, ferry_stream stream, const char *data, size_t len)
{
    execution *ex = arg;
    /* Only what the commands print counts as output; the runtime's own
     * progress (FERRY_STREAM_STATUS) says nothing about them. */
    if (stream == FERRY_STREAM_STDOUT || stream == FERRY_STREAM_STDERR)
        ex->last_output_ms = uv_now(ex->a->loop);
    shipper_output(ex->ship, stream, data, len);
}

static void ex_on_exited(void *arg, int exit_code, const char *reason)
{
    execution *ex = arg;
    ex->run = NULL;
    uv_timer_stop(&ex->limit_timer);
    uv_timer_stop(&ex->quiet_timer);
    shipper_flush_partial(ex->ship);
    /* When we asked for the end, our reason is the one that counts. */
    ex_set_result(ex, exit_code, ex->state == EXEC_STOPPING ? ex->stop_reason : reason);
    ex->exit_code = exit_code;
    if (exit_code >= 0)
        shipper_status(ex->ship, "the commands exited with code %d%s%s%s", exit_code,
                       ex->reason ? " (" : "", ex->reason ? ex->reason : "", ex->reason ? ")" : "");
    else
        shipper_status(ex->ship, "%s", ex->reason ? ex->reason : "the commands did not run");
    ferry_info("execution %s: exited with code %d%s%s", ex->id, exit_code, ex->reason ? ", " : "",
               ex->reason ? ex->reason : "");
    ex_finish(ex);
}

static void ex_on_time_limit(uv_timer_t *t)
{
    execution *ex = t->data;
    char reason[64];
    snprintf(reason, sizeof(reason), "time limit exceeded (%lld s)", (long long)ex->time_limit_s);
    execution_stop(ex, reason, -1);
}

/* Output only notes the time; this timer re-arms itself for the rest of
 * the quiet period, so a chatty run costs no timer work per line. */
static void ex_on_quiet_check(uv_timer_t *t)
{
    execution *ex = t->data;
    uint64_t limit_ms = (uint64_t)ex->no_output_s * 1000;
    uint64_t quiet_ms = uv_now(ex->a->loop) - ex->last_output_ms;
    if (quiet_ms < limit_ms) {
        uv_timer_start(t, ex_on_quiet_check, limit_ms - quiet_ms, 0);
        return;
    }
    char reason[64];
    snprintf(reason, sizeof(reason), "no output for %lld s", (long long)ex->no_output_s);
    execution_stop(ex, reason, -1);
}

/* The spec's limits, armed once the commands run. */
static void ex_start_limits(execution *ex)
{
    if (ex->time_limit_s > 0)
        uv_timer_start(&ex->limit_timer, ex_on_time_limit, (uint64_t)ex->time_limit_s * 1000, 0);
    if (ex->no_output_s > 0) {
        ex->last_output_ms = uv_now(ex->a->loop);
        uv_timer_start(&ex->quiet_timer, ex_on_quiet_check, (uint64_t)ex->no_output_s * 1000, 0);
    }
}

/* ---- the step's mounts and limits ---- */

/* Whether real path `real` is an allowed prefix's own real path or under it. */
static int ex_mount_under(const char *real, json_t *allowed)
{
    size_t i;
    json_t *a;
    json_array_foreach(allowed, i, a)
    {
        char prefix[PATH_MAX];
        const char *p = json_string_value(a);
        if (p == NULL || realpath(p, prefix) == NULL)
            continue;
        size_t n = strlen(prefix);
        if (strcmp(prefix, "/") == 0 ||
            (strncmp(real, prefix, n) == 0 && (real[n] == '\0' || real[n] == '/')))
            return 1;
    }
    return 0;
}

/* ferryd allowed the mounts by their paths; on this worker a symbolic link
 * under an allowed folder could lead anywhere, so each source's real path
 * must be under an allowed one's too. The spec's source becomes the real
 * path (what the runtime binds). 0, or -1 with the reason in `why`. */
static int ex_check_mounts(execution *ex, char *why, size_t why_cap)
{
    json_t *mounts = json_object_get(ex->spec, "mounts");
    json_t *allowed = json_object_get(ex->spec, "allowed_mounts");
    size_t i;
    json_t *m;
    json_array_foreach(mounts, i, m)
    {
        const char *source = spec_str(m, "source"), *dest = spec_str(m, "destination");
        char real[PATH_MAX];
        if (source == NULL || dest == NULL || dest[0] != '/') {
            snprintf(why, why_cap, "mount #%zu of the work spec is not a source and destination",
                     i + 1);
            return -1;
        }
        if (realpath(source, real) == NULL) {
            snprintf(why, why_cap, "mount %.300s: %s on this worker", source, strerror(errno));
            return -1;
        }
        if (!ex_mount_under(real, allowed)) {
            snprintf(why, why_cap,
                     "mount %.300s: it is %.300s on this worker, which allowed_mounts does "
                     "not allow",
                     source, real);
            return -1;
        }
        json_object_set_new(m, "source", json_string(real));
    }
    return 0;
}

/* The spec's mounts as the runtime takes them (strings of the spec), or
 * NULL. local-docker binds them in the container, local-process in the
 * execution's mount namespace (it says so when it has none). */
static ferry_mount *ex_run_mounts(execution *ex, size_t *n)
{
    json_t *mounts = json_object_get(ex->spec, "mounts");
    *n = 0;
    if (json_array_size(mounts) == 0)
        return NULL;
    ferry_mount *out = ferry_xcalloc(json_array_size(mounts), sizeof(*out));
    size_t i;
    json_t *m;
    json_array_foreach(mounts, i, m)
    {
        out[*n].source = spec_str(m, "source");
        out[*n].destination = spec_str(m, "destination");
        out[(*n)++].readonly = json_is_true(json_object_get(m, "readonly"));
    }
    return out;
}

/* cpus and memory_bytes: the step's resources, 0 (the worker's settings) else. */
static double ex_spec_cpus(json_t *spec)
{
    double v = json_number_value(json_object_get(spec, "cpus"));
    return v > 0 && v < 1e6 ? v : 0;
}

static void ex_env_add(char ***env, size_t *n, char *entry)
{
    *env = ferry_xrealloc(*env, (*n + 2) * sizeof(char *));
    (*env)[(*n)++] = entry;
    (*env)[*n] = NULL;
}

/* The step's env, then ours (which win: they must tell the truth). */
static char **ex_build_env(execution *ex)
{
    char **env = ferry_xcalloc(1, sizeof(char *));
    size_t n = 0;
    const char *key;
    json_t *value;
    json_object_foreach(json_object_get(ex->spec, "env"), key, value)
    {
        if (key[0] == '\0' || strchr(key, '=') != NULL) {
            shipper_status(ex->ship, "environment variable \"%s\" ignored: not a valid name", key);
            continue;
        }
        if (json_is_string(value)) {
            ex_env_add(&env, &n, ferry_asprintf("%s=%s", key, json_string_value(value)));
        } else if (!json_is_null(value)) {
            char *text =
                json_dumps(value, JSON_ENCODE_ANY | JSON_COMPACT | JSON_REAL_PRECISION(15));
            ex_env_add(&env, &n, ferry_asprintf("%s=%s", key, text ? text : ""));
            free(text);
        }
    }
    const char *step = spec_str(ex->spec, "step"), *project = spec_str(ex->spec, "project");
    ex_env_add(&env, &n, ferry_asprintf("FERRY_EXECUTION_ID=%s", ex->id));
    ex_env_add(&env, &n, ferry_asprintf("FERRY_STEP=%s", step ? step : ""));
    ex_env_add(&env, &n, ferry_asprintf("FERRY_PROJECT=%s", project ? project : ""));
    ex_env_add(&env, &n,
               ferry_asprintf("FERRY_EXECUTION_COUNTER=%lld",
                              (long long)json_integer_value(json_object_get(ex->spec, "counter"))));
    return env;
}

static void ex_run(execution *ex)
{
    if (ex->state != EXEC_STARTING) { /* stopped or failed meanwhile */
        ex_set_result(ex, -1, ex->stop_reason);
        ex_finish(ex);
        return;
    }
    agent *a = ex->a;
    ex->env = ex_build_env(ex);
    ferry_run_spec spec = {
        .struct_size = sizeof(spec),
        .execution_id = ex->id,
        .image = spec_str(ex->spec, "image"),
        .script = spec_str(ex->spec, "command"),
        .env = (const char *const *)ex->env,
        .repository_dir = ex->repo_dir,
        .inputs_dir = ex->inputs_dir,
        .outputs_dir = ex->outputs_dir,
        .config_dir = ex->config_dir,
        .valohai_aliases = json_is_true(json_object_get(ex->spec, "valohai")),
        .gpus = spec_str(ex->spec, "gpus"), /* checked by execution_start() */
        .cpus = ex_spec_cpus(ex->spec),
        .memory_bytes = ex_spec_bound(ex->spec, "memory_bytes"),
    };
    ferry_mount *mounts = ex_run_mounts(ex, &spec.n_mounts);
    spec.mounts = mounts;
    spec.input_files = ex->input_binds;
    spec.n_input_files = ex->n_input_binds;
    json_t *auth = json_object_get(ex->spec, "registry_auth");
    if (json_is_object(auth)) {
        spec.registry_server = json_string_value(json_object_get(auth, "server"));
        spec.registry_username = json_string_value(json_object_get(auth, "username"));
        spec.registry_password = json_string_value(json_object_get(auth, "password"));
    }
    ferry_run_callbacks cb = {
        .struct_size = sizeof(cb),
        .arg = ex,
        .output = ex_on_output,
        .exited = ex_on_exited,
    };
    ferry_error_detail err = {.struct_size = sizeof(err)};
    ex_set_state(ex, EXEC_RUNNING);
    ferry_run *run = NULL;
    int rc = a->rt->start(a->rt_state, &spec, &cb, &run, &err);
    free(mounts);
    /* The runtime copied what it needs: the registry password goes now. */
    json_object_del(ex->spec, "registry_auth");
    if (rc != 0) {
        /* The runtime's message may already say "could not start: ...". */
        const char *msg = err.message[0] ? err.message : ferry_strerror(rc);
        char *reason = strncmp(msg, "could not start: ", 17) == 0
                           ? ferry_strdup(msg)
                           : ferry_asprintf("could not start: %s", msg);
        ferry_warn("execution %s: %s", ex->id, reason);
        shipper_status(ex->ship, "%s", reason);
        ex_set_result(ex, -1, reason);
        free(reason);
        ex_finish(ex);
        return;
    }
    ex->run = run;
    ex->live = live_start(a, ex->id, ex->outputs_dir, ex->ship);
    ferry_info("execution %s: running", ex->id);
    ex_start_limits(ex);
}

static void ex_on_started(void *arg, const agent_reply *r)
{
    execution *ex = arg;
    ex->call = NULL;
    if (!r->ok && r->code != FERRY_ECANCELED && ex->state != EXEC_STARTING_FAILED) {
        /* ferryd does not want it run (stopped meanwhile, unknown): do not. */
        char why[512];
        agent_reply_text(r, why, sizeof(why));
        ferry_warn("execution %s: ferryd refused the start: %s", ex->id, why);
        char *reason = ferry_asprintf("could not start: ferryd refused the start: %s", why);
        ex_set_result(ex, -1, reason);
        free(reason);
        ex_set_state(ex, EXEC_STARTING_FAILED);
    }
    if (!r->ok && r->code == FERRY_ECANCELED)
        ex_set_state(ex, EXEC_STARTING_FAILED);
    ex_run(ex);
}

/* After the preparation (done, failed: `run` 0, or stopped). A stop before
 * the run reports no start: the execution goes from queued straight to
 * stopped. */
static void ex_report_started(execution *ex, int run)
{
    if (ex->state == EXEC_PREP_STOPPING) {
        ex_set_result(ex, -1, ex->stop_reason);
        ex_finish(ex);
        return;
    }
    ex_set_state(ex, run ? EXEC_STARTING : EXEC_STARTING_FAILED);
    json_t *body = json_pack("{s:s}", "status", "started");
    agent_call_spec s = {.path = NULL, .body = body};
    char *path = ferry_asprintf("/v1/agent/executions/%s/status", ex->id);
    s.path = path;
    ex->call = agent_call_start(ex->a, &s, ex_on_started, ex);
    free(path);
    json_decref(body);
}

/* ---- finishing ---- */

static void ex_remove_work(uv_work_t *w)
{
    execution *ex = w->data;
    ex->work_rc = ferry_rmtree(ex->dir);
}

static void ex_remove_done(uv_work_t *w, int status)
{
    (void)status;
    execution *ex = w->data;
    if (ex->work_rc != 0)
        ferry_warn("execution %s: could not remove %s: %s", ex->id, ex->dir,
                   ferry_strerror(ex->work_rc));
    ex_set_state(ex, EXEC_DONE);
    agent_execution_done(ex->a, ex);
}

static void ex_on_finished(void *arg, const agent_reply *r)
{
    execution *ex = arg;
    ex->call = NULL;
    if (r->code == FERRY_ECANCELED) {
        /* The agent gave up on ferryd: the folder keeps the spool and the
         * result, and the agent's next start reports them. */
        ferry_warn("execution %s: not reported; %s keeps its log and result for the next start "
                   "of ferry-agent",
                   ex->id, ex->dir);
        ex_set_state(ex, EXEC_DONE);
        agent_execution_done(ex->a, ex);
        return;
    }
    ex_set_state(ex, EXEC_CLEANING);
    if (!r->ok) {
        char why[512];
        ferry_warn("execution %s: ferryd refused the finished report: %s", ex->id,
                   agent_reply_text(r, why, sizeof(why)));
    } else if (r->ok) {
        ferry_info("execution %s: reported finished (exit code %d%s%s)", ex->id, ex->exit_code,
                   ex->reason ? ", " : "", ex->reason ? ex->reason : "");
    }
    ex_queue_work(ex, ex_remove_work, ex_remove_done);
}

static void ex_report_finished(void *arg)
{
    execution *ex = arg;
    json_t *body = json_pack("{s:s, s:i, s:o}", "status", "finished", "exit_code", ex->exit_code,
                             "reason", ex->reason ? json_string(ex->reason) : json_null());
    char *path = ferry_asprintf("/v1/agent/executions/%s/status", ex->id);
    agent_call_spec s = {.path = path, .body = body};
    ex->call = agent_call_start(ex->a, &s, ex_on_finished, ex);
    free(path);
    json_decref(body);
}

static void ex_uploads_done(execution *ex)
{
    /* Status events written while uploading are part of the log too. */
    shipper_when_drained(ex->ship, ex_report_finished, ex);
}

/* An output that is not stored fails the execution, with the store's word
 * for why in its status_reason, whatever the commands did; a reason already
 * there (a stop, a limit, the runtime's) stays. */
static void ex_note_store_failure(execution *ex, const char *failure)
{
    if (ex->reason != NULL)
        return;
    ex->reason = ex->exit_code > 0 ? ferry_asprintf("exit code %d; %s", ex->exit_code, failure)
                                   : ferry_strdup(failure);
}

static void ex_on_uploaded(void *arg, const char *failure)
{
    execution *ex = arg;
    if (failure)
        ex_note_store_failure(ex, failure);
    ex_uploads_done(ex);
}

static void ex_on_outputs(void *arg, const agent_reply *r)
{
    execution *ex = arg;
    ex->call = NULL;
    if (!r->ok) {
        char why[512], *failure;
        agent_reply_text(r, why, sizeof(why));
        if (r->code != FERRY_ECANCELED) {
            shipper_status(ex->ship, "outputs could not be registered: %s", why);
            failure = ferry_asprintf("outputs could not be registered: %s", why);
            if (ex->outs.n > 0)
                ex_note_store_failure(ex, failure);
            free(failure);
        }
        ex_uploads_done(ex);
        return;
    }
    json_t *list = json_object_get(r->json, "uploads");
    json_t *answer = json_is_array(list) ? json_incref(list) : json_array();
    ex->up = uploads_start(ex->a, ex->id, ex->outputs_dir, &ex->outs, answer, ex->ship,
                           ex_on_uploaded, ex);
    json_decref(answer);
}

static void ex_walk_work(uv_work_t *w)
{
    execution *ex = w->data;
    outputs_walk(ex->outputs_dir, &ex->outs);
}

static void ex_walk_done(uv_work_t *w, int status)
{
    (void)status;
    execution *ex = w->data;
    if (ex->outs.error)
        shipper_status(ex->ship, "%s", ex->outs.error);
    for (size_t i = 0; i < ex->outs.n_skipped; i++)
        shipper_status(ex->ship, "%s", ex->outs.skipped[i]);
    json_t *list = json_array();
    for (size_t i = 0; i < ex->outs.n; i++) {
        const output_file *f = &ex->outs.files[i];
        json_t *o = json_pack("{s:s, s:I, s:s}", "name", f->name, "size", (json_int_t)f->size,
                              "sha256", f->sha256);
        /* Only when there is some: a ferryd before output metadata takes the rest. */
        if (f->metadata)
            json_object_set(o, "metadata", f->metadata);
        /* Sent live as it is now: ferryd keeps it (with this metadata). */
        if (live_stored(ex->live, f))
            json_object_set_new(o, "stored", json_true());
        json_array_append_new(list, o);
    }
    json_t *body = json_pack("{s:o}", "outputs", list);
    char *path = ferry_asprintf("/v1/agent/executions/%s/outputs", ex->id);
    agent_call_spec s = {.path = path, .body = body};
    ex->call = agent_call_start(ex->a, &s, ex_on_outputs, ex);
    free(path);
    json_decref(body);
}

static void ex_on_drained(void *arg)
{
    execution *ex = arg;
    ex_queue_work(ex, ex_walk_work, ex_walk_done);
}

/* The result, for an agent that starts after this one died: it reports
 * what happened instead of "lost". */
static void ex_save_result(execution *ex)
{
    json_t *doc = json_pack("{s:i, s:o}", "exit_code", ex->exit_code, "reason",
                            ex->reason ? json_string(ex->reason) : json_null());
    char *text = json_dumps(doc, JSON_COMPACT);
    char *path = ferry_asprintf("%s/finished.json", ex->dir);
    int rc = text ? ferry_write_file(path, text, strlen(text)) : FERRY_ENOMEM;
    if (rc != 0)
        ferry_warn("execution %s: could not write %s: %s", ex->id, path, ferry_strerror(rc));
    free(path);
    free(text);
    json_decref(doc);
}

/* No live upload is in flight any more. */
static void ex_on_live_closed(void *arg)
{
    execution *ex = arg;
    shipper_when_drained(ex->ship, ex_on_drained, ex);
}

/* The commands ended (or never ran): outputs and reports, in order. */
static void ex_finish(execution *ex)
{
    int resumed = ex->state == EXEC_RECOVERED; /* its result is the one saved */
    ex_set_state(ex, EXEC_FINISHING);
    if (!resumed)
        ex_save_result(ex);
    live_close(ex->live, ex_on_live_closed, ex);
}

/* ---- public ---- */

void execution_stop(execution *ex, const char *reason, int grace_ms)
{
    agent *a = ex->a;
    if (grace_ms < 0)
        grace_ms = a->cfg.stop_grace_ms;
    if (ex->state == EXEC_RECOVERED) { /* the agent never got going: keep it for the next */
        ex_set_state(ex, EXEC_DONE);
        agent_execution_done(a, ex);
        return;
    }
    if (ex->state == EXEC_FINISHING || ex->state == EXEC_CLEANING || ex->state == EXEC_DONE)
        return;
    if (ex->stop_reason == NULL) { /* the first stop */
        ex->stop_reason = ferry_strdup(reason);
        /* One stop is enough: a limit must not fire into it later. */
        uv_timer_stop(&ex->limit_timer);
        uv_timer_stop(&ex->quiet_timer);
        if (ex->state == EXEC_RUNNING)
            shipper_status(ex->ship, "stopping (%s)", reason);
    }
    switch (ex->state) {
    case EXEC_NEW:
    case EXEC_PREPARING:
        ex_set_state(ex, EXEC_PREP_STOPPING);
        /* fall through */
    case EXEC_PREP_STOPPING:
        /* A download in flight ends now; an extraction at its next block.
         * A threadpool job sees the state when it completes, and only then
         * is the execution reported (and its folder removed after). */
        atomic_store(&ex->extract_cancel, 1);
        if (ex->call) {
            agent_call_cancel(ex->call);
            ex->call = NULL;
            if (ex->snapshot_part)
                unlink(ex->snapshot_part);
            if (ex->input_cache && ex->input_part) /* a download the cache never took */
                unlink(ex->input_part);
            ex_prep_stopped(ex);
        }
        break;
    case EXEC_STARTING:
        ex_set_state(ex, EXEC_STARTING_STOPPED); /* ex_run() sees it */
        break;
    case EXEC_RUNNING:
        ex_set_state(ex, EXEC_STOPPING);
        /* fall through */
    case EXEC_STOPPING: /* again: with this stop's grace */
        if (ex->run) {
            int rc = a->rt->stop(a->rt_state, ex->run, grace_ms);
            if (rc != 0)
                ferry_warn("execution %s: the runtime could not stop it: %s", ex->id,
                           ferry_strerror(rc));
        }
        break;
    default:
        break;
    }
}

/* Output that cannot be recorded must not be produced for nothing. */
static void ex_on_spool_broken(void *arg, const char *why)
{
    execution_stop(arg, why, -1);
}

execution *execution_new(agent *a, json_t *spec)
{
    const char *id = spec_str(spec, "id");
    if (!ex_valid_id(id)) {
        ferry_error("ignoring a work spec without a usable id");
        return NULL;
    }
    execution *ex = ferry_xcalloc(1, sizeof(*ex));
    ex->bind_budget = -1;
    ex->a = a;
    ex->spec = json_incref(spec);
    snprintf(ex->id, sizeof(ex->id), "%s", id);
    ex->dir = ferry_asprintf("%s/executions/%s", a->cfg.work_dir, id);
    ex->repo_dir = ferry_asprintf("%s/repository", ex->dir);
    ex->inputs_dir = ferry_asprintf("%s/inputs", ex->dir);
    ex->outputs_dir = ferry_asprintf("%s/outputs", ex->dir);
    ex->config_dir = ferry_asprintf("%s/config", ex->dir);
    ex->ship = shipper_new(a, id, ex->dir, ex_on_spool_broken, ex);
    /* The values of the step's secret variables never reach the log. */
    shipper_mask(ex->ship, json_object_get(spec, "secrets"));
    ex->exit_code = -1;
    atomic_init(&ex->extract_cancel, 0);
    uv_timer_init(a->loop, &ex->limit_timer);
    uv_timer_init(a->loop, &ex->quiet_timer);
    ex->limit_timer.data = ex->quiet_timer.data = ex;
    ex->time_limit_s = ex_spec_seconds(spec, "time_limit");
    ex->no_output_s = ex_spec_seconds(spec, "no_output_timeout");
    return ex;
}

void execution_start(execution *ex)
{
    if (ex->state == EXEC_NEW) /* a stop may have come first */
        ex_set_state(ex, EXEC_PREPARING);
    if (shipper_error(ex->ship)) {
        ex_prep_failed(ex, "%s", shipper_error(ex->ship));
        return;
    }
    const char *dirs[] = {ex->repo_dir, ex->inputs_dir, ex->outputs_dir, ex->config_dir};
    for (size_t i = 0; i < 4; i++) {
        int rc = ferry_file_mkdirs(dirs[i], 0755);
        if (rc != 0) {
            ex_prep_failed(ex, "could not create %s: %s", dirs[i], ferry_strerror(rc));
            return;
        }
    }
    if (spec_str(ex->spec, "command") == NULL) {
        ex_prep_failed(ex, "the work spec has no command");
        return;
    }
    /* Running on every GPU of the worker is worse than not running. */
    if (!ex_valid_gpus(json_object_get(ex->spec, "gpus"))) {
        ex_prep_failed(ex, "the work spec's gpus is not a list of GPU indices");
        return;
    }
    /* What ferryd could no longer honour (its config changed since the
     * submission) is said before anything runs. */
    size_t i;
    json_t *notice;
    json_array_foreach(json_object_get(ex->spec, "notices"), i, notice)
    {
        if (json_is_string(notice))
            shipper_status(ex->ship, "%s", json_string_value(notice));
    }
    char why[768];
    if (ex_check_mounts(ex, why, sizeof(why)) < 0) {
        ex_prep_failed(ex, "%s", why);
        return;
    }
    ex_snapshot(ex);
}

execution *execution_recover(agent *a, const char *id)
{
    if (!ex_valid_id(id))
        return NULL;
    json_t *spec = json_pack("{s:s}", "id", id);
    execution *ex = execution_new(a, spec);
    json_decref(spec);
    ex_set_state(ex, EXEC_RECOVERED);
    char *path = ferry_asprintf("%s/finished.json", ex->dir);
    json_t *doc = json_load_file(path, 0, NULL);
    free(path);
    json_t *code = json_object_get(doc, "exit_code");
    const char *reason = json_string_value(json_object_get(doc, "reason"));
    if (json_is_integer(code)) {
        ex->exit_code = (int)json_integer_value(code);
        ex->reason = reason ? ferry_strdup(reason) : NULL;
    } else {
        ex->exit_code = -1;
        ex->reason = ferry_strdup("ferry-agent restarted before the execution ended");
    }
    json_decref(doc);
    return ex;
}

int execution_is_waiting_recovery(const execution *ex)
{
    return ex->state == EXEC_RECOVERED;
}

void execution_resume(execution *ex)
{
    ferry_info("execution %s: left by an earlier run of ferry-agent; reporting it (%s)", ex->id,
               ex->reason ? ex->reason : "ended");
    if (shipper_error(ex->ship) == NULL)
        shipper_status(ex->ship,
                       "ferry-agent restarted; reporting the execution as it was left%s%s",
                       ex->reason ? ": " : "", ex->reason ? ex->reason : "");
    ex_finish(ex);
}

int execution_commands_busy(const execution *ex)
{
    switch (ex->state) {
    case EXEC_NEW:
    case EXEC_PREPARING:
    case EXEC_PREP_STOPPING:
    case EXEC_RUNNING:
    case EXEC_STOPPING:
        return 1;
    default:
        return 0;
    }
}

static void ex_closed(uv_handle_t *h)
{
    execution *ex = h->data;
    if (--ex->open_handles > 0)
        return;
    json_decref(ex->spec);
    json_decref(ex->inputs_doc);
    outputs_free(&ex->outs);
    for (char **e = ex->env; e && *e; e++)
        free(*e);
    free(ex->env);
    free(ex->dir);
    free(ex->repo_dir);
    free(ex->inputs_dir);
    free(ex->outputs_dir);
    free(ex->config_dir);
    free(ex->snapshot_cache);
    free(ex->snapshot_part);
    free(ex->snapshot_sha);
    free(ex->input_name);
    free(ex->input_file);
    free(ex->input_url);
    free(ex->input_shown);
    free(ex->input_etag);
    free(ex->input_cache);
    free(ex->input_part);
    free(ex->input_dest);
    free(ex->input_link);
    for (size_t i = 0; i < ex->n_input_binds; i++) {
        free((char *)ex->input_binds[i].source);
        free((char *)ex->input_binds[i].destination);
    }
    free(ex->input_binds);
    free(ex->stop_reason);
    free(ex->reason);
    free(ex);
}

void execution_free(execution *ex)
{
    agent_call_cancel(ex->call);
    ex->call = NULL;
    uploads_free(ex->up);
    ex->up = NULL;
    live_free(ex->live);
    ex->live = NULL;
    shipper_free(ex->ship);
    ex->ship = NULL;
    ex->open_handles = 2;
    uv_close((uv_handle_t *)&ex->limit_timer, ex_closed);
    uv_close((uv_handle_t *)&ex->quiet_timer, ex_closed);
}
