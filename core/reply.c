/* Answers sent on behalf of the modules below the HTTP layer (reply.h). */
#include "reply.h"

#include <stdarg.h>
#include <stdio.h>

#include "ferry/error.h"

int ferry_reply_json(ferry_reply *r, int status, json_t *body)
{
    return r->ops->send_json(r, status, body);
}

int ferry_reply_error(ferry_reply *r, int status, const char *field, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return r->ops->send_error(r, status, field, msg);
}

void ferry_reply_release(ferry_reply *r)
{
    if (r)
        r->ops->release(r);
}

int ferry_reply_gone(ferry_reply *r)
{
    return r == NULL || (r->ops->gone && r->ops->gone(r));
}
