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
 */
#ifndef FERRY_CLOUD_H
#define FERRY_CLOUD_H

#include <stddef.h>

#include <jansson.h>

#include "ferry/error.h"
#include "ferry/plugin.h"

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

/* One operation's arguments while its calls are in flight. */
typedef struct ferry_cloud_task {
    void *state; /* the plugin's */
    ferry_op *op;
    char *instance_id; /* terminate, describe */
    char *daemon_id;   /* list */
    size_t place;      /* list: the zone being listed */
    json_t *list;      /* list: what the pages said so far */
} ferry_cloud_task;

/* Copies of the ids (either may be NULL); NULL when out of memory. */
ferry_cloud_task *ferry_cloud_task_new(void *state, ferry_op *op, const char *instance_id,
                                       const char *daemon_id);
void ferry_cloud_task_free(ferry_cloud_task *t);

#ifdef __cplusplus
}
#endif

#endif
