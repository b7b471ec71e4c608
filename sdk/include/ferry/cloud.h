/* ferry plugin SDK: what compute plugins for clouds share.
 *
 * A launch goes place by place (zones, or subnets), and what each place said
 * is kept in a note that people read in `ferry show`:
 *
 *   "us-east-1a: InsufficientInstanceCapacity (no capacity); us-east-1b: launched i-0abc"
 *
 * When every place said no, the launch ends with one error built the same
 * way by every plugin, so that ferryd's backoff treats them alike. The
 * operations on one instance, and listings, keep their arguments in a task
 * while their calls are in flight.
 *
 * list, describe and terminate are the same in every cloud but for the
 * request and the parse: the plugin supplies those (ferry_cloud_provider)
 * and the kit does the rest, alike for every plugin: paging, place after
 * place, the JSON the host reads, the instances to retire at fini, and
 * completing each op exactly once (none after fini began).
 */
#ifndef FERRY_CLOUD_H
#define FERRY_CLOUD_H

#include <stddef.h>

#include <jansson.h>

#include "ferry/error.h"
#include "ferry/compute.h"
#include "ferry/plugin.h"
#include "ferry/settings.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Room for what every zone of a launch said. */
#define FERRY_CLOUD_NOTE_CAP 1500

/* Appends "[; ]place: <fmt...>" to a note of `cap` bytes; what does not fit
 * is left out. */
void ferry_cloud_note(char *note, size_t cap, const char *place, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Appends what a place's error said: the provider's code, and the start of
 * its message in brackets ("InsufficientInstanceCapacity (We currently
 * do not have ...)"). */
void ferry_cloud_note_error(char *note, size_t cap, const char *place,
                            const ferry_error_detail *err);
/* The error a launch ends with when every place said no; `last` is what the
 * last one said, `what` the machine asked for ("g5.xlarge"). No capacity
 * anywhere reads "no zone could launch a <what>: <note>"; the note is the
 * message otherwise. Capacity, throttling, quotas, the provider's own
 * failures, connections, timeouts and garbled answers are retryable (they
 * pass); credentials and settings are not. */
void ferry_cloud_launch_error(ferry_error_detail *out, const ferry_error_detail *last,
                              const char *what, const char *note);

typedef struct ferry_cloud ferry_cloud;

/* ------------------------------------------------------------------------ */
/* launch                                                                   */

/* A launch's copy of its request, while it goes place by place. */
typedef struct ferry_cloud_launch {
    ferry_op *op;
    char *daemon_id, *environment, *worker_id;
    char *user_data;  /* holds a one-time token: wiped when cleared */
    const char *what; /* the machine asked for ("g5.xlarge"), in messages */
    char note[FERRY_CLOUD_NOTE_CAP];
} ferry_cloud_launch;

/* Checks and copies `req`: a worker id, a daemon id, and user-data (ABI
 * 1.2; an instance without it would never join) of at most
 * `user_data_max` bytes. 0, FERRY_EINVAL, FERRY_ETOOBIG or FERRY_ENOMEM;
 * on failure nothing is held. */
int ferry_cloud_launch_init(ferry_cloud_launch *l, const ferry_launch_request *req,
                            size_t user_data_max, const char *what, ferry_op *op);
void ferry_cloud_launch_clear(ferry_cloud_launch *l);
/* The launch made `instance_id` in `place` (the note says "launched
 * <shown>"): known at once (else only ferryd's orphan sweep would find it),
 * logged, and the op completed with the id and the note. */
void ferry_cloud_launched(ferry_cloud *c, ferry_cloud_launch *l, const char *place,
                          const char *instance_id, const char *shown);
/* Every place said no (or one said what no other place changes): the op
 * ends with ferry_cloud_launch_error() of `last`, logged. */
void ferry_cloud_launch_failed(ferry_cloud *c, ferry_cloud_launch *l,
                               const ferry_error_detail *last);

/* ------------------------------------------------------------------------ */
/* Tasks                                                                    */

/* One operation's arguments while its calls are in flight. */
typedef struct ferry_cloud_task {
    void *state; /* the plugin's */
    ferry_op *op;
    char *instance_id;  /* terminate, describe */
    char *daemon_id;    /* list */
    size_t place;       /* list: the zone being listed */
    json_t *list;       /* list: what the pages said so far; describe: what it found */
    ferry_cloud *cloud; /* the kit's ops: the plugin instance it runs for */
    size_t places;      /* list: how many places it goes through */
} ferry_cloud_task;

/* Copies of the ids (either may be NULL); NULL when out of memory. */
ferry_cloud_task *ferry_cloud_task_new(void *state, ferry_op *op, const char *instance_id,
                                       const char *daemon_id);
void ferry_cloud_task_free(ferry_cloud_task *t);

/* ------------------------------------------------------------------------ */
/* list, describe, terminate                                                */

/* What the plugin's calls answer: status 0 with the body, or the final
 * error (`err`). `task` is the ferry_cloud_task the call was started for. */
typedef void (*ferry_cloud_answer_fn)(void *task, int status, const char *body, size_t len,
                                      const ferry_error_detail *err);

/* One instance as a listing or a describe found it (the plugin's own
 * strings, read before ferry_cloud_found returns). */
typedef struct ferry_cloud_instance {
    const char *id, *state, *worker_id, *environment, *zone;
    const char *reason; /* for people, shown when it is ending; may be NULL */
    int ending;         /* the state means the instance is going or gone */
} ferry_cloud_instance;

/* What a cloud plugin supplies. Each call starter sends its request for the
 * task and has `done` answer it (with the task as its argument); 0, or a
 * code when nothing was sent. */
typedef struct ferry_cloud_provider {
    const char *name;          /* "aws": in messages */
    const char *list_what;     /* "EC2 DescribeInstances": the listing call, in errors */
    const char *describe_what; /* "Compute instances.get" */
    /* The provider's code when a describe's answer holds no instance. */
    const char *not_found_code;
    /* One page of t->daemon_id's instances in place t->place, after `token`
     * (NULL: the first page). */
    int (*list_page)(ferry_cloud_task *t, const char *token, ferry_cloud_answer_fn done);
    /* A page's body: each instance to ferry_cloud_found(), and the next
     * page's token (malloc'd) or NULL. 0, FERRY_EPROTO or FERRY_ENOMEM. */
    int (*list_parse)(ferry_cloud_task *t, const char *body, size_t len, char **next_token);
    int (*describe)(ferry_cloud_task *t, ferry_cloud_answer_fn done);
    /* A describe's body: the instance to ferry_cloud_found(). */
    int (*describe_parse)(ferry_cloud_task *t, const char *body, size_t len);
    int (*terminate)(ferry_cloud_task *t, ferry_cloud_answer_fn done);
} ferry_cloud_provider;

/* What the kit keeps of a plugin instance; in the plugin's state. */
struct ferry_cloud {
    const ferry_cloud_provider *provider;
    void *state; /* the plugin's: tasks carry it */
    ferry_plugin_ctx *ctx;
    const ferry_host_api *host;
    ferry_strlist known; /* instances to retire at fini: launched, or listed alive */
    int closing;         /* fini began: answers complete no op (the host cancels them) */
};

/* The ops: 0 when started (the op completes later, exactly once), or
 * FERRY_EINVAL (no id: never every instance of the account), FERRY_ENOMEM,
 * or what the provider's call starter said. A listing goes through `places`
 * places (at least 1), page by page; instances not ending are known. */
int ferry_cloud_list(ferry_cloud *c, const char *daemon_id, size_t places, ferry_op *op);
/* A describe that finds nothing is FERRY_ENOENT with not_found_code; an
 * instance not found is no longer known. */
int ferry_cloud_describe(ferry_cloud *c, const char *instance_id, ferry_op *op);
/* A terminated instance (or one not found) is no longer known. */
int ferry_cloud_terminate(ferry_cloud *c, const char *instance_id, ferry_op *op);

/* From a provider's parse: one instance the answer holds. 0 or FERRY_ENOMEM. */
int ferry_cloud_found(ferry_cloud_task *t, const ferry_cloud_instance *in);
/* The JSON list and describe answer with, per instance: instance_id, state,
 * worker_id, environment, zone, and reason when it is ending. */
json_t *ferry_cloud_instance_json(const ferry_cloud_instance *in);
/* Completes `op` through the host: `instance_id` and `text` (launch), or
 * `err` when status < 0. */
void ferry_cloud_complete(const ferry_cloud *c, ferry_op *op, int status, const char *instance_id,
                          const char *text, const ferry_error_detail *err);

#ifdef __cplusplus
}
#endif

#endif
