/* Fuzz: Docker's multiplexed stdout/stderr stream (plugins/local-docker
 * frames.c) and the JSON answers the plugin reads (answers.c).
 *
 * The stream is fed whole, then again cut into pieces whose sizes come from
 * the input itself: both feeds must emit the same bytes of the same types
 * and end the same way, as a read may be cut anywhere. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "answers.h"
#include "frames.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct fuzz__sink {
    unsigned char *out; /* type byte, then the payload, per emit */
    size_t len, cap;
    size_t emits;
} fuzz__sink;

/* What came out, by type: pieces of one frame may come in several calls,
 * so the comparison is on the bytes of each type, in order. */
static int fuzz__emit(void *arg, int type, const char *p, size_t len)
{
    fuzz__sink *s = arg;
    if (len == 0 ||
        (type != LD_FRAME_STDOUT && type != LD_FRAME_STDERR && type != LD_FRAME_SYSTEMERR))
        abort();
    for (size_t i = 0; i < len; i++) {
        if (s->len + 2 > s->cap)
            abort(); /* more bytes out than went in */
        s->out[s->len++] = (unsigned char)type;
        s->out[s->len++] = (unsigned char)p[i];
    }
    s->emits++;
    return 0;
}

static int fuzz__feed(const uint8_t *data, size_t size, const uint8_t *cuts, size_t ncuts,
                      fuzz__sink *s)
{
    ld_frames f;
    ld_frames_init(&f);
    size_t at = 0, k = 0;
    int rc = LD_FRAMES_OK;
    while (at < size && rc == LD_FRAMES_OK) {
        size_t n = ncuts ? (size_t)cuts[k++ % ncuts] % 17 + 1 : size;
        if (n > size - at)
            n = size - at;
        rc = ld_frames_feed(&f, (const char *)data + at, n, fuzz__emit, s);
        at += n;
    }
    return rc == LD_FRAMES_OK ? ld_frames_end(&f) : rc;
}

static void fuzz__answers(const uint8_t *data, size_t size)
{
    char *body = malloc(size + 1);
    memcpy(body, data, size);
    body[size] = '\0';
    ferry_http_response res = {.struct_size = sizeof(res),
                               .status = 200,
                               .error = "",
                               .body = body,
                               .body_len = size,
                               .headers = ""};
    char id[LD_ID_CAP];
    if (ld_created_id(&res, id, sizeof(id)) == 0 && strlen(id) == 0)
        abort();
    (void)ld_wait_code(&res);
    (void)ld_inspect_oom_killed(&res);
    free(body);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz__sink whole = {malloc(2 * size + 2), 0, 2 * size + 2, 0};
    fuzz__sink cut = {malloc(2 * size + 2), 0, 2 * size + 2, 0};
    int a = fuzz__feed(data, size, NULL, 0, &whole);
    int b = fuzz__feed(data, size, data, size < 64 ? size : 64, &cut);
    if (a != b || whole.len != cut.len || memcmp(whole.out, cut.out, whole.len) != 0)
        abort(); /* where the reads were cut changed what came out */
    free(whole.out);
    free(cut.out);
    fuzz__answers(data, size);
    return 0;
}
