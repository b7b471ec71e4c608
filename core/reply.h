/* An answer to a request, produced by a module below the HTTP layer (the
 * store's uploads, blob uploads) and sent by the HTTP layer, so that store/
 * and sched/ answer agents without knowing h2o. The HTTP layer makes one
 * (ferry_http_reply in http/server.h) for a request it holds open; the
 * module that takes it answers once and releases it. */
#ifndef FERRY_REPLY_H
#define FERRY_REPLY_H

#include <jansson.h>

typedef struct ferry_reply ferry_reply;

typedef struct ferry_reply_ops {
    /* Send `body` (stolen) with HTTP `status`: 0, or FERRY_ECANCELED when
     * the client went away and nobody will read it. */
    int (*send_json)(ferry_reply *r, int status, json_t *body);
    /* {"error": message, "field": field} with `status` (field may be NULL). */
    int (*send_error)(ferry_reply *r, int status, const char *field, const char *message);
    void (*release)(ferry_reply *r);
    /* Whether nobody will read an answer any more (the client went away);
     * NULL: never. */
    int (*gone)(ferry_reply *r);
} ferry_reply_ops;

struct ferry_reply {
    const ferry_reply_ops *ops;
};

int ferry_reply_json(ferry_reply *r, int status, json_t *body);
int ferry_reply_error(ferry_reply *r, int status, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void ferry_reply_release(ferry_reply *r);
int ferry_reply_gone(ferry_reply *r);

#endif
