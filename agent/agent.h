/* ferry-agent internals: one worker's side of the agent protocol
 * (docs/api.md). Everything runs on one libuv loop thread; blocking file work
 * goes to uv_queue_work.
 *
 *   main.c       command line, plugin loading, signals
 *   agent.c      registration, the long poll (heartbeat), shutdown
 *   call.c       calls to ferryd and file transfers, with retries and backoff
 *   execution.c  one execution: prepare, run, report, clean up
 *   shipper.c    log lines -> numbered events, batched, resent until acked
 *   spool.c      the events on disk until ferryd has them
 *   outputs.c    the walk of outputs/ (size and sha256 of each file)
 *   outputmeta.c the outputs' metadata files (valohai.metadata.jsonl...)
 *   uploads.c    outputs to presigned URLs: whole files, or parts in parallel
 *   live.c       live outputs: read-only files uploaded while the commands run
 *   inputcache.c downloaded inputs kept by ETag, shared by executions
 */
#ifndef FERRY_AGENT_H
#define FERRY_AGENT_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <uv.h>

#include "ferry/ferry.h"
#include "ferry/http.h"
#include "plugin.h"

typedef struct agent agent;
typedef struct agent_call agent_call;
typedef struct execution execution;
typedef struct shipper shipper;
typedef struct spool spool;

typedef struct agent_config {
    char *server_url; /* without a trailing '/' */
    char *worker_id;  /* may be NULL (a worker joined by hand) */
    char *work_dir;   /* absolute */
    char *runtime;
    ferry_settings *runtime_settings; /* --runtime-setting KEY=VALUE */
    char *environment;                /* may be NULL */
    char *plugin_dir;
    char *ca_file; /* may be NULL */
    int slots;
    int stop_grace_ms;
    int give_up_s;
    int64_t cache_max_bytes; /* --cache-max-mb: snapshots and inputs kept */
    /* --bind-inputs-mb: a cached input this large is bound read-only where
     * the runtime can, not copied; -1: never. */
    int64_t bind_inputs_min_bytes;
} agent_config;

struct agent {
    uv_loop_t *loop;
    agent_config cfg;
    ferry_http_client *http;
    ferry_plugin_instance *runtime;
    const ferry_runtime_ops *rt; /* the host copy of the plugin's ops */
    void *rt_state;
    char hostname[256];
    char *bootstrap_token; /* spent (freed) once registered */
    char *join_token;      /* a static environment's; reusable, kept */
    int saved_creds;       /* token and agent_id came from <work-dir>/agent.json */
    char *token;           /* bearer token for every later call */
    char *agent_id;
    int poll_timeout_s;
    agent_call *register_call;
    agent_call *poll_call;
    agent_call *calls; /* every live call, for abandoning them */
    execution *executions;
    int n_executions;
    uint64_t last_contact; /* monotonic ms of ferryd's last answer (or of the start) */
    int unreachable;       /* the last call to ferryd got no answer */
    int shutting_down;     /* no new work; stop runs; exit once they are reported */
    int abandoning;        /* give up on reporting: every call fails at once */
    int exit_code;
    int closed;
    uv_signal_t sigterm, sigint;
    uv_timer_t deadline; /* bounds how long a shutdown waits for reports */
};

/* ---- agent.c ---- */
/* Takes the tokens (may be NULL). */
int agent_init(agent *a, uv_loop_t *loop, agent_config *cfg, ferry_plugin_instance *runtime,
               char *bootstrap_token, char *join_token);
void agent_start(agent *a);
/* Stop taking work, stop the runs, report what can be reported, then exit
 * with `exit_code` (the first non-zero code asked for wins). */
void agent_shutdown(agent *a, int exit_code, const char *why);
/* Report nothing more: calls fail at once, runs are stopped, then exit. */
void agent_abandon(agent *a, int exit_code, const char *why);
/* A call to ferryd got an answer (reachable) or did not. */
void agent_note_server(agent *a, int reachable);
void agent_execution_done(agent *a, execution *ex);

/* ---- call.c ---- */
typedef struct agent_reply {
    int ok;            /* the transfer worked and the status is 2xx */
    int code;          /* 0, or the ferry code of a failed transfer */
    long status;       /* HTTP status, 0 when none */
    const char *error; /* why not ok: transport error or ferryd's {"error"} */
    json_t *json;      /* a 2xx JSON answer of ferryd (borrowed), or NULL */
    /* The answer's raw header block (a part's ETag), or NULL. */
    const char *headers;
} agent_reply;

typedef void (*agent_call_cb)(void *arg, const agent_reply *reply);

typedef struct agent_call_spec {
    const char *method; /* default: POST with a body, else GET */
    /* A ferryd path ("/v1/agent/poll"): authorized JSON call, retried until
     * it succeeds, ferryd refuses it, or the agent abandons. */
    const char *path;
    json_t *body; /* borrowed; serialized at start */
    /* Or a body that is already text (copied at start), JSON unless
     * content_type says otherwise. */
    const char *raw_body;
    size_t raw_body_len;
    /* Or such a body handed over (malloc'd, raw_body_len bytes): no copy of
     * a log batch of several MB. */
    char *take_body;
    const char *content_type;
    /* Or a foreign URL (presigned, inputs): no token is sent; retried up to
     * max_attempts times. */
    const char *url;
    const char *const *headers; /* extra "Name: value" lines for a url (If-Match), or NULL */
    const char *upload_path;
    int64_t upload_offset, upload_length; /* one part of upload_path; both 0: all of it */
    /* upload_path must still be this file (ferry_http_options' upload_same_file) */
    int upload_same_file;
    uint64_t upload_dev, upload_ino;
    const char *download_path;
    const char *protocols; /* default "http,https" */
    int max_attempts;      /* 0: unlimited (ferryd calls); for urls default 3 */
    long timeout_ms;
    long stall_timeout_ms;
} agent_call_spec;

/* `cb` runs exactly once, never from inside agent_call_start(), unless the
 * call is cancelled first. */
agent_call *agent_call_start(agent *a, const agent_call_spec *spec, agent_call_cb cb, void *arg);
/* Drop a call; its `cb` never runs. */
void agent_call_cancel(agent_call *c);
/* Make every live call fail now (agent->abandoning is set). */
void agent_calls_abandon(agent *a);
/* A safe text for an error message: "HTTP 404: <ferryd's error>" or the
 * transport error. */
const char *agent_reply_text(const agent_reply *r, char *buf, size_t cap);

/* ---- execution.c ---- */
/* Takes a reference to `spec`. NULL (logged) when the spec has no usable id. */
execution *execution_new(agent *a, json_t *spec);
void execution_start(execution *ex);
const char *execution_id(const execution *ex);
/* The agent's list of the executions it holds. */
execution *execution_next(const execution *ex);
void execution_set_next(execution *ex, execution *next);
/* Until its finished report went out; ferryd counts the slot free from then
 * on, while the folder is still being removed. */
int execution_holds_slot(const execution *ex);
/* A stop order, a time limit, no output for too long or the agent shutting
 * down; reason goes into the finished report. `grace_ms` < 0: the configured
 * grace. */
void execution_stop(execution *ex, const char *reason, int grace_ms);
void execution_free(execution *ex);
/* An execution folder an earlier run of the agent left behind (it died, or
 * gave up on ferryd): only its unsent events, outputs and finished report
 * are left to do, once execution_resume() is called (the agent holds a
 * token). The result is the one it saved, or exit code -1. NULL when `id`
 * is not an execution id. */
execution *execution_recover(agent *a, const char *id);
int execution_is_waiting_recovery(const execution *ex);
void execution_resume(execution *ex);
/* Preparing or running its commands: they go on while ferryd is away. */
int execution_commands_busy(const execution *ex);

/* ---- shipper.c ---- */
/* Events go to <dir>/events.spool (created, or taken over from an agent that
 * ran before). `broken_cb` runs once if the spool cannot be written. */
shipper *shipper_new(agent *a, const char *execution_id, const char *dir,
                     void (*broken_cb)(void *arg, const char *why), void *arg);
/* Runtime output: split into lines per stream, numbered, shipped. */
void shipper_output(shipper *s, ferry_stream stream, const char *data, size_t len);
/* Ship the partial last line of every stream (the commands exited). */
void shipper_flush_partial(shipper *s);
void shipper_status(shipper *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Every later line has each of `secrets` (an array of texts; those of 4 or
 * more characters) replaced by "***" before it is spooled or shipped. */
void shipper_mask(shipper *s, const json_t *secrets);
/* `cb` runs once every event so far was acknowledged (or dropped because
 * ferryd refused them or the agent abandons); at once when that is already
 * so. One waiter at a time. */
void shipper_when_drained(shipper *s, void (*cb)(void *arg), void *arg);
uint64_t shipper_last_seq(const shipper *s);
/* Why the spool is unusable, or NULL. */
const char *shipper_error(const shipper *s);
void shipper_free(shipper *s);

/* ---- spool.c ---- */
#define SPOOL_MAX_PAYLOAD (512 * 1024) /* one event, its head line included */
#define SPOOL_EVENT_HEAD 80            /* the most the head line of an event takes */
/* A batch: ferryd stores one in one turn of its loop, and 4 MB of short
 * lines keep that turn in the tens of ms. */
#define SPOOL_BATCH_EVENTS 5000
#define SPOOL_BATCH_BYTES (4 * 1024 * 1024)
/* <dir>/events.spool and events.acked, new or left by an earlier agent (then
 * the unacknowledged events are sent again). 0 or a FERRY_E* code. */
int spool_open(uv_loop_t *loop, const char *dir, spool **out);
/* Append one event: `text` is one or more lines joined by "\n", raw bytes
 * (ferryd makes them valid UTF-8); written by spool_flush(). Returns its seq. */
uint64_t spool_add(spool *s, const char *stream, double time, const char *text, size_t len);
/* write(2) what was added; fdatasync follows within ~100 ms. 0, or the
 * FERRY_E* code of a failed write (the spool then takes nothing more). */
int spool_flush(spool *s);
/* fdatasync now (the commands ended). */
void spool_sync_now(spool *s);
uint64_t spool_last_seq(const spool *s);
uint64_t spool_acked(const spool *s);
int spool_pending(const spool *s);
/* The next batch from the first unacknowledged event: a malloc'd
 * application/x-ferry-events body. 1 with a batch, 0 when none is pending, a FERRY_E* code. */
int spool_batch(spool *s, size_t max_events, size_t max_bytes, char **body, size_t *len,
                uint64_t *last);
/* ferryd holds every event up to `seq`. 1 when that moved the first
 * unacknowledged event (forward, or back once when ferryd lost some). */
int spool_ack(spool *s, uint64_t seq);
/* Consider everything acknowledged (ferryd refused the events). */
void spool_drop_all(spool *s);
/* Closes the files (they stay) and frees, once a sync in flight ends. */
void spool_close(spool *s);

/* ---- outputs.c ---- */
typedef struct output_file {
    char *name; /* relative to outputs/ */
    int64_t size;
    char sha256[65];
    uint64_t dev, ino; /* the file the walk read: the upload sends no other */
    int64_t mtime_ns;  /* its modification time when it was read */
    json_t *metadata;  /* its properties (outputmeta.h), or NULL */
} output_file;

/* A metadata file the walk read (outputmeta.h): not an output. */
typedef struct output_metafile {
    char *name; /* relative to outputs/ */
    char *text;
    size_t len;
} output_metafile;

typedef struct output_list {
    output_file *files;
    size_t n, cap;
    char **skipped; /* log lines: each entry not uploaded, each metadata problem */
    size_t n_skipped, cap_skipped;
    output_metafile *metas; /* read during the walk, parsed after it */
    size_t n_metas, cap_metas;
    size_t meta_bytes; /* of the metas' texts */
    int meta_notes;    /* log lines given about them */
    char *error;       /* the walk itself failed (outputs/ unreadable) */
} output_list;

/* Blocking: run on the threadpool. Regular files only; symlinks and special
 * files are skipped (noted in `skipped`), never followed. Sorted by name.
 * Metadata files (valohai.metadata.jsonl, *.metadata.json) are not outputs:
 * what they say is in each output's `metadata`. */
void outputs_walk(const char *dir, output_list *out);
void outputs_free(output_list *out);
/* Blocking. One file under `dir` (a live output, live.c), read as the walk
 * reads it, when it is read-only, was last written at least `quiet_ms` ago
 * and did not change while it was read: 0 with `f` filled (f->name
 * malloc'd); FERRY_EPERM when it is writable, FERRY_EAGAIN when it was
 * written too recently or changed meanwhile, or another code. */
int outputs_read_still(const char *dir, const char *rel, int64_t quiet_ms, output_file *f);
/* Whether f->name under `dir` is still the read-only file that was read
 * (same file, size and mtime). Cheap: one lstat. */
int outputs_unchanged(const char *dir, const output_file *f);

/* ---- uploads.c ---- */
typedef struct uploads uploads;
/* `failure`: NULL when every output was stored, else why the first one was
 * not ("output x could not be stored: ..."). */
typedef void (*uploads_done_cb)(void *arg, const char *failure);
/* Send the files of `outs` (kept until uploads_free) that ferryd's answer
 * `uploads` lists, several at once, reporting them as it asks; status
 * lines go to `ship`. `done` runs once, possibly before this returns. */
uploads *uploads_start(agent *a, const char *exec_id, const char *outputs_dir,
                       const output_list *outs, json_t *uploads, shipper *ship,
                       uploads_done_cb done, void *arg);
/* The same, with `check` asked before an upload is reported to ferryd
 * (the last moment it can still be left unrecorded): a file it answers 0
 * for fails with `why` (a live output that changed while it was sent). An
 * entry {"name", "stored": true} is an output ferryd already holds. */
typedef int (*uploads_check_cb)(void *arg, const output_file *f);
uploads *uploads_start_checked(agent *a, const char *exec_id, const char *outputs_dir,
                               const output_list *outs, json_t *uploads, shipper *ship,
                               uploads_check_cb check, const char *why, uploads_done_cb done,
                               void *arg);
/* Cancels what is in flight; `done` does not run after this. */
void uploads_free(uploads *u);

/* ---- live.c: live outputs ---- */
typedef struct live live;
/* Watch outputs/ (inotify, every folder under it) while the commands run:
 * a file made read-only there is uploaded at once. NULL (logged) when
 * inotify is unavailable: the outputs then go at the end only. */
live *live_start(agent *a, const char *exec_id, const char *outputs_dir, shipper *ship);
/* Stop watching; `cb` runs once no live upload is in flight (possibly
 * before this returns). */
void live_close(live *l, void (*cb)(void *arg), void *arg);
/* `f` (of the final walk) was stored live, as it is now: same size, mtime
 * and sha256. */
int live_stored(const live *l, const output_file *f);
/* Cancels what is in flight; frees once the handles are closed. */
void live_free(live *l);

/* ---- inputcache.c ---- */
/* <work-dir>/inputs-cache/<sha256 of the source URL and the ETag>. */
char *inputcache_path(const char *work_dir, const char *source, const char *etag);
/* ---- cache.c: the snapshot and input caches, within a size ---- */
/* Marks a cache entry as used now (it goes last). */
void cache_touch(const char *path);
/* Removes the entries used least recently until both caches hold at most
 * max_bytes (entries used in the last minute stay); returns the bytes
 * removed. Safe on the threadpool. */
int64_t cache_prune(const char *work_dir, int64_t max_bytes);
/* Blocking (threadpool). Put the cached file in place when it holds
 * `size` bytes (-1: any): with `link_path` (in the execution's folder) and
 * at least `link_min_size` bytes (-1: never), a hard link there and an
 * empty stand-in at `dest` for the runtime to bind the link onto (*linked
 * set); else, or where no link can be made, a copy at `dest`. 0,
 * FERRY_ENOENT when there is no usable cached file (a wrong one is
 * removed), or another code with `err` filled. */
int inputcache_place(const char *cache, const char *dest, const char *link_path,
                     int64_t link_min_size, int64_t size, int *linked, char *err, size_t cap);
/* Blocking. A finished download at `part`: check its size (-1: any), then
 * with `cache` keep it there and place it as inputcache_place() does, else
 * move it to `dest`. */
int inputcache_take(const char *part, const char *cache, const char *dest, const char *link_path,
                    int64_t link_min_size, int64_t size, int *linked, char *err, size_t cap);
/* The checksums of a cached file of `size` bytes, kept beside it once its
 * copy was hashed (<cache>.sums): load gives 0, or FERRY_ENOENT when there
 * are none for that size. Blocking. */
void inputcache_save_sums(const char *cache, int64_t size, const char *md5, const char *sha1,
                          const char *sha256);
int inputcache_load_sums(const char *cache, int64_t size, char *md5, char *sha1, char *sha256);

#endif
