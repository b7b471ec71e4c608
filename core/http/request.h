/* One HTTP request to ferryd (h2o): its decoded path and query, body and
 * token; JSON replies; and requests held open for long polls. */
#ifndef FERRY_REQUEST_H
#define FERRY_REQUEST_H

#include <h2o.h>
#include <jansson.h>

#include "daemon.h"
#include "reply.h"

#define FERRY_HTTP_MAX_SEGS 16

typedef struct ferry_http_req {
    ferryd *d;
    h2o_req_t *req;
    char *segs[FERRY_HTTP_MAX_SEGS]; /* percent-decoded path segments */
    size_t nsegs;
    const char *query; /* raw query string (after '?'), not NUL-terminated */
    size_t query_len;
    const ferry_user *user;  /* api.c: the authenticated user; NULL without users */
    ferry_worker *worker;    /* agentapi.c: the agent's worker, once its token is checked */
    struct ferry_exec *exec; /* the execution the path names, once a guard found it */
    int exec_owned;          /* exec was loaded for this request (ferry_exec_release) */
} ferry_http_req;

/* Split and percent-decode the path into r->segs, find the query: 0, or
 * FERRY_ETOOBIG (too many segments) or FERRY_EINVAL (a bad escape). */
int ferry_http_req_parse(ferry_http_req *r);

int ferry_http_method_is(const ferry_http_req *r, const char *method);
/* Segments from `first` on joined with '/', or NULL when there are none. */
char *ferry_http_join_segs(const ferry_http_req *r, size_t first);
/* A query parameter, percent-decoded into out: 1 when present, 0 when
 * absent, FERRY_EINVAL when present but undecodable (a malformed %-escape
 * or %00) and FERRY_ETOOBIG when its value does not fit in cap; out is ""
 * unless 1. A caller must tell the last two from "absent": a filter that
 * can't be read is an error, never no filter. */
int ferry_http_query(const ferry_http_req *r, const char *name, char *out, size_t cap);
/* ferry_http_query for a handler: 1 or 0 as it, or FERRY_REPLIED with a 400
 * that names the parameter already sent. */
int ferry_http_query_arg(ferry_http_req *r, const char *name, char *out, size_t cap);
/* The request body as JSON (an object); NULL with a reply already sent. */
json_t *ferry_http_body_object(ferry_http_req *r);
/* "Bearer <token>" from Authorization, or NULL. */
const char *ferry_http_bearer(const ferry_http_req *r, char *buf, size_t cap);

/* What a request helper returns when it has sent the reply itself (an
 * error answer): its caller sends nothing more. Below every FERRY_E* code,
 * so `rc < 0` still means "stop", and never mistaken for one of them. */
#define FERRY_REPLIED (-1000)

/* Replies. ferry_http_json steals `body`. */
void ferry_http_json(h2o_req_t *req, int status, json_t *body);
void ferry_http_error(h2o_req_t *req, int status, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void ferry_http_code_error(h2o_req_t *req, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A request answered later (long poll, wait, async store call). The client
 * may go away first: then `on_gone` runs and the held request is dead, but
 * the ferry_held stays valid until ferry_held_release(). `timeout_ms` 0:
 * no timeout. */
typedef struct ferry_held ferry_held;
typedef void (*ferry_held_cb)(ferry_held *h, void *arg);
ferry_held *ferry_http_hold(ferryd *d, h2o_req_t *req, uint64_t timeout_ms,
                            ferry_held_cb on_timeout, ferry_held_cb on_gone, void *arg);
/* The request, or NULL when the client went away. */
h2o_req_t *ferry_held_req(ferry_held *h);
void ferry_held_release(ferry_held *h);
/* `req` held, as a reply for a module below HTTP to send (reply.h). */
ferry_reply *ferry_http_reply(ferryd *d, h2o_req_t *req);

#endif
