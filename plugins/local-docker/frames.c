/* local-docker: the multiplexed stream demuxer (see frames.h). */
#include "frames.h"

#include <string.h>

void ld_frames_init(ld_frames *f)
{
    memset(f, 0, sizeof(*f));
}

/* The header is complete: check it and start its payload. */
static int ld_frames_header(ld_frames *f)
{
    const unsigned char *h = f->header;
    if (h[0] > LD_FRAME_SYSTEMERR) {
        f->failed = 1;
        return LD_FRAMES_BAD_TYPE;
    }
    f->type = h[0];
    f->remaining = (uint32_t)h[4] << 24 | (uint32_t)h[5] << 16 | (uint32_t)h[6] << 8 | h[7];
    f->header_len = 0;
    f->frames++;
    return LD_FRAMES_OK;
}

int ld_frames_feed(ld_frames *f, const char *data, size_t len, ld_frames_emit_fn emit, void *arg)
{
    if (f->failed)
        return LD_FRAMES_BAD_TYPE;
    while (len > 0) {
        if (f->remaining == 0) {
            size_t take = sizeof(f->header) - f->header_len;
            if (take > len)
                take = len;
            memcpy(f->header + f->header_len, data, take);
            f->header_len += take;
            data += take;
            len -= take;
            if (f->header_len < sizeof(f->header))
                break;
            int rc = ld_frames_header(f);
            if (rc != LD_FRAMES_OK)
                return rc;
            continue; /* an empty frame goes straight on to the next header */
        }
        size_t take = len < f->remaining ? len : f->remaining;
        f->remaining -= (uint32_t)take;
        int type = f->type == LD_FRAME_STDIN ? LD_FRAME_STDOUT : f->type;
        if (emit(arg, type, data, take) != 0)
            return LD_FRAMES_STOPPED;
        data += take;
        len -= take;
    }
    return LD_FRAMES_OK;
}

int ld_frames_end(const ld_frames *f)
{
    if (f->failed)
        return LD_FRAMES_BAD_TYPE;
    if (f->remaining > 0)
        return LD_FRAMES_CUT_PAYLOAD;
    if (f->header_len > 0)
        return LD_FRAMES_CUT_HEADER;
    return LD_FRAMES_OK;
}
