/* The agent protocol: register, poll, events, status, outputs (docs/api.md,
 * "Agent protocol"). routes.c maps each endpoint to a handler here. */
#ifndef FERRY_AGENTAPI_H
#define FERRY_AGENTAPI_H

#include "request.h"

/* Guards (0 to go on, or a reply was sent): the agent's token (r->worker),
 * and with it the execution <uuid> of the path running on that worker
 * (r->exec; 410 when it is not). */
int ferry_agentapi_guard_worker(ferry_http_req *r);
int ferry_agentapi_guard_exec(ferry_http_req *r);

void ferry_agentapi_register(ferry_http_req *r);
void ferry_agentapi_poll(ferry_http_req *r);
void ferry_agentapi_events(ferry_http_req *r);
void ferry_agentapi_status(ferry_http_req *r);
void ferry_agentapi_outputs(ferry_http_req *r);
void ferry_agentapi_uploaded(ferry_http_req *r);
void ferry_agentapi_not_post(ferry_http_req *r);    /* 405 */
void ferry_agentapi_no_endpoint(ferry_http_req *r); /* 404, once the agent is known */

/* The time ferryd stores for an agent's event stamped `t`: t, or ferryd's
 * clock when t is not a time of [1970, 9999] (none, inf, 1e300: an agent's
 * clock or a hostile agent must not store garbage timestamps). */
double ferry_agentapi_event_time(double t);
/* The head line of an application/x-ferry-events event at p (before end),
 * "<seq> <stream> <time> <length>\n"; the text follows, then "\n". 1 with
 * the fields (stream: 16 bytes) and the text's start, 0 when malformed or
 * cut short. Pure: the fuzz harness calls it. */
int ferry_agentapi_event_head(const char *p, const char *end, int64_t *seq, char *stream,
                              double *time, size_t *len, const char **text);

/* Answer the worker's held poll if it has news; d->wake_worker. */
void ferry_agentapi_wake(ferryd *d, ferry_worker *w);

#endif
