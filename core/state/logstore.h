/* Execution logs: one append-only file of records per execution
 * (<data>/logs/<uuid>.log; the format is in logstore.c), served as NDJSON
 * lines {"i","stream","time","text"}. Appends are written with write(2) at
 * once (no user-space buffering), so a line that was acknowledged survives
 * a crash of ferryd. */
#ifndef FERRY_LOGSTORE_H
#define FERRY_LOGSTORE_H

#include "exec.h"

/* Creates the logs folder, converting the NDJSON logs of earlier versions
 * once. */
int ferry_logstore_init(ferryd *d, char *err, size_t err_cap);
/* Append one event and push it to the execution's watchers: `text` is one
 * or more lines joined by "\n" (each stored as an event line of its own;
 * invalid UTF-8 becomes U+FFFD); `agent_seq` is the agent's seq of the
 * event (0 for ferryd's own). A stdout line that is a JSON object also
 * updates the execution's metadata. 0; FERRY_ENOSPC when the disk is full
 * (nothing of the event is stored: the sender may send it again); another
 * code. */
int ferry_logstore_append(ferryd *d, ferry_exec *e, const char *stream, double time,
                          const char *text, size_t len, int64_t agent_seq);
/* Events of a stored log with i > after (and only the last `tail` when
 * tail >= 0; -1 for all), as NDJSON text; *last is the highest i returned (or `after`). */
int ferry_logstore_read(ferryd *d, const char *id, int64_t after, int64_t tail, char **out,
                        size_t *out_len, int64_t *last);
/* Which events of a stored log a reader wants (GET .../logs). */
typedef struct ferry_log_query {
    int64_t after;  /* only i > after */
    int64_t before; /* only i < before; 0: no bound */
    int64_t tail;   /* only the last `tail` of those; -1: all */
    int metadata;   /* only metadata points: stdout lines that are JSON objects */
} ferry_log_query;
int ferry_logstore_query(ferryd *d, const char *id, const ferry_log_query *q, char **out,
                         size_t *out_len, int64_t *last);
/* The same answer piece by piece, so that a large log is never whole in
 * memory: what the file holds when the cursor opens (later appends go to
 * watchers). A log never written reads as empty. 0 or FERRY_EIO. */
typedef struct ferry_log_cursor ferry_log_cursor;
int ferry_logstore_cursor_open(ferryd *d, const char *id, const ferry_log_query *q,
                               ferry_log_cursor **out);
/* The next lines, about `max` bytes of NDJSON (whole records: a piece may
 * be larger or empty), malloc'd and NUL-terminated. 1 when more may follow,
 * 0 at the end, FERRY_EIO. */
int ferry_logstore_cursor_next(ferry_log_cursor *c, size_t max, char **out, size_t *out_len);
/* The highest i handed out so far (or the query's `after`). */
int64_t ferry_logstore_cursor_last(const ferry_log_cursor *c);
void ferry_logstore_cursor_close(ferry_log_cursor *c);
/* Whether one stored NDJSON event line (no newline) is a metadata point. */
int ferry_logstore_line_is_metadata(const char *line, size_t len);
/* After a restart: count the stored events (log_count), cut a record a
 * crash left half-written, and raise agent_seq to the highest agent seq stored
 * (the file can be ahead of the database). */
int ferry_logstore_recover(ferryd *d, ferry_exec *e);
void ferry_logstore_close(ferry_exec *e);
/* At shutdown, after the last append. */
void ferry_logstore_close_all(ferryd *d);

#endif
