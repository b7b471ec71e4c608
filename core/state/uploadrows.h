/* Open multipart uploads of outputs, kept in SQLite (table output_uploads)
 * from their begin until they are completed or aborted, so that none
 * outlives a restart unnoticed (store/uploads.c decides; this stores). */
#ifndef FERRY_UPLOADROWS_H
#define FERRY_UPLOADROWS_H

#include <jansson.h>
#include <stdint.h>

#include "daemon.h"

/* Record an open upload (in the loop turn's transaction): 0 or FERRY_EIO. */
int ferry_uploadrows_add(ferryd *d, const char *exec_id, const char *name, const char *upload_id,
                         int64_t size, const char *sha256);
void ferry_uploadrows_del(ferryd *d, const char *exec_id, const char *upload_id);
/* The declared size and sha256 (65 bytes) of the open upload `upload_id`
 * of output `name`: 1, or 0 when there is none. */
int ferry_uploadrows_find(ferryd *d, const char *exec_id, const char *upload_id, const char *name,
                          int64_t *size, char *sha256);
/* The open uploads of `exec_id` (NULL: of every execution), as a JSON
 * array of [execution_id, name, upload_id]. */
json_t *ferry_uploadrows_list(ferryd *d, const char *exec_id);

/* The metadata object the worker declared for output `name` (NULL: none),
 * for ferry_exec_add_output to record with the output once it is stored. */
void ferry_uploadrows_declare_metadata(ferryd *d, const char *exec_id, const char *name,
                                       const json_t *metadata);
/* Forget the declared metadata of `exec_id` (NULL: of every execution that
 * ended): what was stored is in the outputs' rows by then. */
void ferry_uploadrows_forget_metadata(ferryd *d, const char *exec_id);
/* Output `name`, stored already (a live output), takes the metadata the
 * worker declared since, when it declared some. */
void ferry_uploadrows_apply_metadata(ferryd *d, const char *exec_id, const char *name);

/* Whether output `name` of the execution is recorded (with this sha256,
 * when it is not NULL). */
int ferry_exec_has_output(ferryd *d, const char *exec_id, const char *name, const char *sha256);

#endif
