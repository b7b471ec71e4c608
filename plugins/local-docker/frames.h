/* local-docker: Docker's multiplexed stream (attach and logs of a container
 * created without a TTY), split back into its streams.
 *
 * The stream is a series of frames, each an 8-byte header
 * {type, 0, 0, 0, size as a big-endian uint32} and `size` payload bytes.
 * Types: 0 stdin (written to stdout), 1 stdout, 2 stderr, 3 an error the
 * daemon reports in the stream itself.
 *
 * A state machine with no I/O and no allocation: feed it the bytes as they
 * come, cut anywhere (a header or a payload may span reads; a read may hold
 * many frames), and it hands each piece of payload to `emit` as soon as it
 * has it, in order, never merging two frames' bytes into one call.
 */
#ifndef LD_FRAMES_H
#define LD_FRAMES_H

#include <stddef.h>
#include <stdint.h>

#define LD_FRAME_STDIN 0
#define LD_FRAME_STDOUT 1
#define LD_FRAME_STDERR 2
#define LD_FRAME_SYSTEMERR 3

/* ld_frames_feed / ld_frames_end results. */
#define LD_FRAMES_OK 0
#define LD_FRAMES_BAD_TYPE (-1)    /* a header with an unknown type: not a stream */
#define LD_FRAMES_STOPPED (-2)     /* emit asked to stop */
#define LD_FRAMES_CUT_HEADER (-3)  /* the end came inside a header */
#define LD_FRAMES_CUT_PAYLOAD (-4) /* the end came inside a payload */

typedef struct ld_frames {
    unsigned char header[8];
    size_t header_len;  /* header bytes held so far */
    uint32_t remaining; /* payload bytes of the current frame still to come */
    int type;           /* the current frame's type, once its header is in */
    int failed;         /* a bad header was seen: everything after is refused */
    uint64_t frames;    /* complete headers seen */
} ld_frames;

/* A piece of one frame's payload, len > 0; `type` is LD_FRAME_STDOUT,
 * LD_FRAME_STDERR or LD_FRAME_SYSTEMERR (stdin frames come as stdout, as
 * Docker's own client writes them). Return 0 to go on. */
typedef int (*ld_frames_emit_fn)(void *arg, int type, const char *data, size_t len);

void ld_frames_init(ld_frames *f);
/* Consume `len` bytes; LD_FRAMES_OK, or why it stopped (after a
 * LD_FRAMES_BAD_TYPE every later call answers the same). */
int ld_frames_feed(ld_frames *f, const char *data, size_t len, ld_frames_emit_fn emit, void *arg);
/* At the end of the stream: LD_FRAMES_OK on a frame boundary, else where it
 * was cut. Payload bytes of a cut frame were already emitted: unlike
 * Docker's stdcopy, which drops a partial frame, nothing that arrived is
 * lost; the caller decides what the cut means. */
int ld_frames_end(const ld_frames *f);

#endif
