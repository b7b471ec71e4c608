/* local-docker's demuxer of Docker's multiplexed stream (plugins/local-docker/
 * frames.c) against every framing case of vectors/docker/samples, each fed
 * whole, one byte at a time and in chunks of many sizes, and against random
 * streams cut at random places. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "frames.h"
#include "test.h"
#include "util.h"

static const char *vectors;

static char *vector(const char *name, size_t *len)
{
    char *path = ferry_asprintf("%s/docker/samples/%s", vectors, name);
    char *data = ferry_read_file(path, len);
    if (data == NULL)
        fprintf(stderr, "cannot read %s\n", path);
    CHECK(data != NULL);
    free(path);
    return data;
}

/* What the demuxer handed out. */
typedef struct piece {
    uint64_t frame; /* which frame it came from (the header count then) */
    int type;
    size_t len;
} piece;

typedef struct sink {
    const ld_frames *f;
    char *out[4];
    size_t len[4], cap[4];
    piece *pieces;
    size_t n_pieces, cap_pieces;
    int stop_after; /* stop once this many pieces came (0: never) */
} sink;

static int on_emit(void *arg, int type, const char *data, size_t len)
{
    sink *s = arg;
    CHECK(len > 0);
    CHECK(type == LD_FRAME_STDOUT || type == LD_FRAME_STDERR || type == LD_FRAME_SYSTEMERR);
    /* Grown by doubling: fed a byte at a time, there are many pieces. */
    if (s->len[type] + len + 1 > s->cap[type]) {
        s->cap[type] = 2 * (s->len[type] + len + 1);
        s->out[type] = ferry_xrealloc(s->out[type], s->cap[type]);
    }
    memcpy(s->out[type] + s->len[type], data, len);
    s->len[type] += len;
    s->out[type][s->len[type]] = '\0';
    if (s->n_pieces == s->cap_pieces) {
        s->cap_pieces = s->cap_pieces ? 2 * s->cap_pieces : 64;
        s->pieces = ferry_xrealloc(s->pieces, s->cap_pieces * sizeof(piece));
    }
    s->pieces[s->n_pieces++] = (piece){s->f->frames, type, len};
    return s->stop_after && s->n_pieces >= (size_t)s->stop_after;
}

static void sink_free(sink *s)
{
    for (int i = 0; i < 4; i++)
        free(s->out[i]);
    free(s->pieces);
    memset(s, 0, sizeof(*s));
}

/* Feeds `data` in chunks of `chunk` bytes (0: whole); the result of the
 * last feed, and of ld_frames_end in *end. */
static int feed(ld_frames *f, sink *s, const char *data, size_t len, size_t chunk, int *end)
{
    ld_frames_init(f);
    s->f = f;
    int rc = LD_FRAMES_OK;
    if (chunk == 0)
        chunk = len ? len : 1;
    for (size_t off = 0; off < len && rc == LD_FRAMES_OK; off += chunk) {
        size_t n = len - off < chunk ? len - off : chunk;
        rc = ld_frames_feed(f, data + off, n, on_emit, s);
    }
    *end = ld_frames_end(f);
    return rc;
}

/* Per frame of the vector: the bytes it carried, in one or more pieces,
 * never mixed with another frame's. */
static void check_pieces(const sink *s, json_t *frames)
{
    size_t n = json_array_size(frames);
    size_t *got = ferry_xcalloc(n + 1, sizeof(size_t));
    for (size_t i = 0; i < s->n_pieces; i++) {
        uint64_t k = s->pieces[i].frame; /* 1-based */
        CHECK(k >= 1 && k <= n);
        if (k < 1 || k > n)
            continue;
        json_t *fr = json_array_get(frames, k - 1);
        int type = (int)json_integer_value(json_object_get(fr, "type"));
        CHECK_INT(s->pieces[i].type, type == 0 ? 1 : type);
        got[k] += s->pieces[i].len;
    }
    for (size_t k = 1; k <= n; k++)
        CHECK_INT(got[k],
                  json_integer_value(json_object_get(json_array_get(frames, k - 1), "len")));
    free(got);
}

static void test_multiplexed(void)
{
    size_t len = 0, out_len = 0, err_len = 0, meta_len = 0;
    char *data = vector("logs_multiplexed.bin", &len);
    char *out = vector("logs_expected_stdout.bin", &out_len);
    char *err = vector("logs_expected_stderr.bin", &err_len);
    char *meta = vector("logs_multiplexed.json", &meta_len);
    json_t *j = json_loadb(meta ? meta : "", meta_len, 0, NULL);
    json_t *info = json_object_get(j, "logs_multiplexed.bin");
    json_t *frames = json_object_get(info, "frames");
    CHECK_INT(json_array_size(frames), 6);
    CHECK_INT(len, json_integer_value(json_object_get(info, "size")));
    CHECK_INT(out_len, json_integer_value(json_object_get(j, "expected_stdout_len")));
    CHECK_INT(err_len, json_integer_value(json_object_get(j, "expected_stderr_len")));
    if (data == NULL || out == NULL || err == NULL || frames == NULL)
        return;
    /* Whole, byte by byte, and chunk sizes around the header's 8 bytes and
     * around the frames' lengths. */
    size_t chunks[] = {0,  1,  2,  3,  5,   7,    8,     9,     11,    12,    13,    16,
                       20, 41, 49, 64, 100, 4096, 65536, 69999, 70000, 70001, 70122, 70123};
    for (size_t c = 0; c < sizeof(chunks) / sizeof(chunks[0]); c++) {
        ld_frames f;
        sink s = {0};
        int end = -99;
        CHECK_INT(feed(&f, &s, data, len, chunks[c], &end), LD_FRAMES_OK);
        CHECK_INT(end, LD_FRAMES_OK);
        CHECK_INT(f.frames, 6);
        CHECK_INT(s.len[1], out_len);
        CHECK_INT(s.len[2], err_len);
        CHECK(s.out[1] != NULL && memcmp(s.out[1], out, out_len) == 0);
        CHECK(s.out[2] != NULL && memcmp(s.out[2], err, err_len) == 0);
        CHECK_INT(s.len[3], 0);
        check_pieces(&s, frames);
        if (chunks[c] == 0)
            CHECK_INT(s.n_pieces, 5); /* the empty frame hands out nothing */
        sink_free(&s);
    }
    /* Every split into two reads. */
    for (size_t cut = 0; cut <= len; cut += cut < 200 ? 1 : 997) {
        ld_frames f;
        sink s = {0};
        ld_frames_init(&f);
        s.f = &f;
        CHECK_INT(ld_frames_feed(&f, data, cut, on_emit, &s), LD_FRAMES_OK);
        CHECK_INT(ld_frames_feed(&f, data + cut, len - cut, on_emit, &s), LD_FRAMES_OK);
        CHECK_INT(ld_frames_end(&f), LD_FRAMES_OK);
        CHECK(s.len[1] == out_len && memcmp(s.out[1], out, out_len) == 0);
        CHECK(s.len[2] == err_len && memcmp(s.out[2], err, err_len) == 0);
        sink_free(&s);
    }
    json_decref(j);
    free(meta);
    free(data);
    free(out);
    free(err);
}

/* A type-3 frame: the daemon's own error text, handed out as such. */
static void test_systemerr(void)
{
    size_t len = 0;
    char *data = vector("logs_with_systemerr.bin", &len);
    if (data == NULL)
        return;
    for (size_t chunk = 0; chunk <= len; chunk++) {
        ld_frames f;
        sink s = {0};
        int end;
        CHECK_INT(feed(&f, &s, data, len, chunk, &end), LD_FRAMES_OK);
        CHECK_INT(end, LD_FRAMES_OK);
        CHECK_STR(s.out[1], "hello\n");
        CHECK_STR(s.out[3], "error from daemon: boom");
        CHECK(s.out[2] == NULL);
        sink_free(&s);
    }
    free(data);
}

/* Cut streams: what arrived is handed out, and the end says where it was
 * cut. Docker's stdcopy would drop a partial payload and call the end
 * clean; the bytes of complete frames are the same either way. */
static void test_truncated(void)
{
    size_t len = 0;
    char *data = vector("logs_truncated_header.bin", &len);
    for (size_t chunk = 0; data && chunk <= len; chunk++) {
        ld_frames f;
        sink s = {0};
        int end;
        CHECK_INT(feed(&f, &s, data, len, chunk, &end), LD_FRAMES_OK);
        CHECK_INT(end, LD_FRAMES_CUT_HEADER);
        CHECK_STR(s.out[1], "abc");
        CHECK_INT(f.frames, 1);
        sink_free(&s);
    }
    free(data);
    data = vector("logs_truncated_payload.bin", &len);
    for (size_t chunk = 0; data && chunk <= len; chunk++) {
        ld_frames f;
        sink s = {0};
        int end;
        CHECK_INT(feed(&f, &s, data, len, chunk, &end), LD_FRAMES_OK);
        CHECK_INT(end, LD_FRAMES_CUT_PAYLOAD);
        CHECK_STR(s.out[1], "abc");
        CHECK_STR(s.out[2], "12345"); /* 5 of the 10 bytes its header announced */
        CHECK_INT(f.remaining, 5);
        /* stdcopy's output: the complete frames only. */
        size_t complete = 0;
        for (size_t i = 0; i < s.n_pieces; i++)
            if (s.pieces[i].frame == 1)
                complete += s.pieces[i].len;
        CHECK_INT(complete, 3);
        sink_free(&s);
    }
    free(data);
    /* Nothing at all is a clean end. */
    ld_frames f;
    ld_frames_init(&f);
    CHECK_INT(ld_frames_end(&f), LD_FRAMES_OK);
}

static void test_bad_and_stop(void)
{
    /* stdin frames are stdout, as Docker's client writes them. */
    const char in[] = "\0\0\0\0\0\0\0\3abc";
    ld_frames f;
    sink s = {0};
    int end;
    CHECK_INT(feed(&f, &s, in, sizeof(in) - 1, 0, &end), LD_FRAMES_OK);
    CHECK_STR(s.out[1], "abc");
    sink_free(&s);
    /* An unknown type: not a multiplexed stream (a TTY's raw bytes, say). */
    const char bad[] = "\1\0\0\0\0\0\0\2ok\7\0\0\0\0\0\0\1x";
    CHECK_INT(feed(&f, &s, bad, sizeof(bad) - 1, 0, &end), LD_FRAMES_BAD_TYPE);
    CHECK_INT(end, LD_FRAMES_BAD_TYPE);
    CHECK_STR(s.out[1], "ok");
    CHECK_INT(ld_frames_feed(&f, "\1\0\0\0\0\0\0\1y", 9, on_emit, &s), LD_FRAMES_BAD_TYPE);
    CHECK_STR(s.out[1], "ok");
    sink_free(&s);
    const char text[] = "plain text, no frames\n";
    CHECK_INT(feed(&f, &s, text, sizeof(text) - 1, 0, &end), LD_FRAMES_BAD_TYPE);
    sink_free(&s);
    /* emit asks to stop. */
    const char two[] = "\1\0\0\0\0\0\0\1a\2\0\0\0\0\0\0\1b";
    s.stop_after = 1;
    CHECK_INT(feed(&f, &s, two, sizeof(two) - 1, 0, &end), LD_FRAMES_STOPPED);
    CHECK_STR(s.out[1], "a");
    CHECK(s.out[2] == NULL);
    sink_free(&s);
    /* A frame of 4 GiB - 1: the length is read as unsigned. */
    const char huge[] = "\2\0\0\0\xff\xff\xff\xffzz";
    CHECK_INT(feed(&f, &s, huge, sizeof(huge) - 1, 0, &end), LD_FRAMES_OK);
    CHECK_INT(f.remaining, 0xffffffffu - 2);
    CHECK_INT(end, LD_FRAMES_CUT_PAYLOAD);
    sink_free(&s);
}

/* Random frames cut at random places: the streams come out as they went
 * in. */
static void test_random(void)
{
    srand(5);
    for (int round = 0; round < 300; round++) {
        size_t cap = 1 << 16, len = 0, want_len[3] = {0};
        char *data = ferry_xmalloc(cap), *want[3];
        for (int i = 0; i < 3; i++)
            want[i] = ferry_xmalloc(cap);
        int n_frames = rand() % 40;
        for (int k = 0; k < n_frames; k++) {
            int type = rand() % 3;
            size_t n = (size_t)(rand() % 3 == 0 ? 0 : rand() % 700);
            unsigned char h[8] = {(unsigned char)type, 0, 0, 0, 0, 0, (unsigned char)(n >> 8),
                                  (unsigned char)n};
            memcpy(data + len, h, 8);
            len += 8;
            int to = type == 0 ? 1 : type;
            for (size_t i = 0; i < n; i++) {
                char c = (char)(rand() & 0xff);
                data[len++] = c;
                want[to][want_len[to]++] = c;
            }
        }
        ld_frames f;
        sink s = {0};
        ld_frames_init(&f);
        s.f = &f;
        for (size_t off = 0; off < len;) {
            size_t n = (size_t)(rand() % 50) + 1;
            if (n > len - off)
                n = len - off;
            CHECK_INT(ld_frames_feed(&f, data + off, n, on_emit, &s), LD_FRAMES_OK);
            off += n;
        }
        CHECK_INT(ld_frames_end(&f), LD_FRAMES_OK);
        CHECK_INT(f.frames, n_frames);
        for (int t = 1; t <= 2; t++) {
            CHECK_INT(s.len[t], want_len[t]);
            CHECK(want_len[t] == 0 || memcmp(s.out[t], want[t], want_len[t]) == 0);
        }
        sink_free(&s);
        free(data);
        for (int i = 0; i < 3; i++)
            free(want[i]);
    }
}

int main(void)
{
    vectors = getenv("FERRY_VECTORS_DIR");
    if (vectors == NULL) {
        fprintf(stderr, "FERRY_VECTORS_DIR is not set\n");
        return 2;
    }
    test_multiplexed();
    test_systemerr();
    test_truncated();
    test_bad_and_stop();
    test_random();
    TEST_MAIN_END();
}
