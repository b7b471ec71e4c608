/* The on-disk queue of one execution's log events: <dir>/events.spool.
 *
 * Why on disk: the events must outlive ferryd being away (minutes of output
 * at up to hundreds of MB/s), the agent being killed and memory pressure.
 * Memory holds the batch being sent, and the records written after it up to
 * one more batch (the "ready" run): while ferryd keeps up, the next batch is
 * that run, and the file is only written, never read back.
 *
 * The file is a sequence of records, in host byte order (it never leaves the
 * machine):
 *
 *   "FSP2"  u32 length  u64 seq  u32 crc32c(length, seq, payload)  u32 0
 *   payload: the event as ferryd is sent it (docs/api.md, "Log events"):
 *            "<seq> <stream> <time> <length>\n<text>\n"
 *
 * so that a batch is the payloads back to back, read with one pread, and
 * neither side escapes or parses JSON for the bulk of the bytes. Records go out with write(2) as
 * soon as a chunk of output is split into lines (they survive the agent dying); fdatasync runs at
 * most every SPOOL_SYNC_MS, and at once when asked (the commands ended), so that a machine crash
 * loses at most that much.
 *
 * <dir>/events.acked holds the highest seq ferryd acknowledged and where the
 * next record starts. It is rewritten on each acknowledgement, never synced:
 * when it is stale, events are sent again, and ferryd drops them by seq.
 *
 * Acknowledged records are punched out of the file (FALLOC_FL_PUNCH_HOLE),
 * keeping at least SPOOL_PUNCH_STEP of them in case ferryd asks again (it
 * lost a write when it was killed); the folder goes once the execution is
 * reported.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/falloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent.h"
#include "log.h"
#include "text.h"
#include "util.h"

#define SPOOL_HDR 24
#define SPOOL_ACK_LEN 32
#define SPOOL_SYNC_MS 100
#define SPOOL_PUNCH_STEP ((uint64_t)64 << 20)
#define SPOOL_CHUNK (1024 * 1024)

static const char spool_magic[4] = {'F', 'S', 'P', '2'};
static const char spool_ack_magic[4] = {'F', 'S', 'A', '1'};

struct spool {
    uv_loop_t *loop;
    int fd, ack_fd;
    char *path;
    uint64_t end;       /* where the next record goes: every byte before is whole records */
    uint64_t last_seq;  /* of the last record in the file */
    uint64_t acked;     /* ferryd holds every seq up to here */
    uint64_t acked_off; /* where the record after `acked` starts */
    uint64_t floor_seq; /* the oldest record a rewind may go back to ... */
    uint64_t floor_off; /* ... and where it starts */
    uint64_t mark_seq;  /* the next floor, once SPOOL_PUNCH_STEP more is acked */
    uint64_t mark_off;
    uint64_t last_rewind; /* seq + 1 of the last rewind, so that it is not repeated */
    /* the batch last handed out: where each of its records starts */
    uint64_t batch_first, batch_end;
    uint64_t *batch_offs;
    size_t batch_n, batch_cap;
    /* The records written since the last batch, their payloads back to
     * back: [ready_first, ready_first + ready_n), the first at ready_off. */
    char *ready;
    size_t ready_len, ready_cap;
    uint32_t *ready_lens;
    size_t ready_n, ready_lens_cap;
    uint64_t ready_first, ready_off;
    /* records added since the last spool_flush() */
    char *wbuf;
    size_t wlen, wcap;
    uint64_t wseq; /* seq of the last record in wbuf */
    int error;     /* FERRY_E* code of a failed write: the spool takes nothing more */
    /* fdatasync */
    uv_timer_t timer;
    uv_fs_t sync_req;
    int dirty, syncing, urgent, closing, timer_closed;
};

/* ---- CRC-32C ---- */

static uint32_t crc_table[8][256];

static void crc_init(void)
{
    static int done;
    if (done)
        return;
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        crc_table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++)
            crc_table[t][i] = (crc_table[t - 1][i] >> 8) ^ crc_table[0][crc_table[t - 1][i] & 0xFF];
    done = 1;
}

/* Slicing-by-8: the spool checksums everything the commands print, so the
 * byte-at-a-time loop (~400 MB/s) would cost a core at full speed. */
static uint32_t crc_soft(uint32_t crc, const unsigned char *p, size_t n)
{
    while (n >= 8) {
        uint32_t lo, hi;
        memcpy(&lo, p, 4);
        memcpy(&hi, p + 4, 4);
        lo ^= crc;
        crc = crc_table[7][lo & 0xFF] ^ crc_table[6][(lo >> 8) & 0xFF] ^
              crc_table[5][(lo >> 16) & 0xFF] ^ crc_table[4][lo >> 24] ^ crc_table[3][hi & 0xFF] ^
              crc_table[2][(hi >> 8) & 0xFF] ^ crc_table[1][(hi >> 16) & 0xFF] ^
              crc_table[0][hi >> 24];
        p += 8;
        n -= 8;
    }
    while (n--)
        crc = (crc >> 8) ^ crc_table[0][(crc ^ *p++) & 0xFF];
    return crc;
}

#if defined(__x86_64__) && defined(__GNUC__)
/* The SSE4.2 instruction computes the same CRC-32C an order of magnitude
 * faster; it is picked at run time so the binary runs on any x86-64. */
__attribute__((target("sse4.2"))) static uint32_t crc_hw(uint32_t crc, const unsigned char *p,
                                                         size_t n)
{
    uint64_t c = crc;
    while (n >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        c = __builtin_ia32_crc32di(c, v);
        p += 8;
        n -= 8;
    }
    uint32_t c32 = (uint32_t)c;
    while (n--)
        c32 = __builtin_ia32_crc32qi(c32, *p++);
    return c32;
}
#endif

static uint32_t crc32c(uint32_t crc, const void *data, size_t n)
{
    crc = ~crc;
#if defined(__x86_64__) && defined(__GNUC__)
    static int hw = -1;
    if (hw < 0) {
        __builtin_cpu_init();
        hw = __builtin_cpu_supports("sse4.2") ? 1 : 0;
    }
    if (hw)
        return ~crc_hw(crc, data, n);
#endif
    crc_init();
    return ~crc_soft(crc, data, n);
}

/* ---- records ---- */

typedef struct spool_hdr {
    uint32_t len;
    uint64_t seq;
    uint32_t crc;
} spool_hdr;

static void hdr_put(char *p, uint32_t len, uint64_t seq, const char *payload)
{
    memcpy(p, spool_magic, 4);
    memcpy(p + 4, &len, 4);
    memcpy(p + 8, &seq, 8);
    uint32_t crc = crc32c(crc32c(0, p + 4, 12), payload, len);
    memcpy(p + 16, &crc, 4);
    memset(p + 20, 0, 4);
}

/* Whether p holds a plausible header (the payload is not checked). */
static int hdr_get(const char *p, spool_hdr *h)
{
    if (memcmp(p, spool_magic, 4) != 0)
        return 0;
    memcpy(&h->len, p + 4, 4);
    memcpy(&h->seq, p + 8, 8);
    memcpy(&h->crc, p + 16, 4);
    return h->len >= 2 && h->len <= SPOOL_MAX_PAYLOAD && h->seq > 0;
}

static int hdr_crc_ok(const char *p, const spool_hdr *h, const char *payload)
{
    return crc32c(crc32c(0, p + 4, 12), payload, h->len) == h->crc;
}

static int pread_full(int fd, void *buf, size_t len, uint64_t off)
{
    char *p = buf;
    while (len > 0) {
        ssize_t n = pread(fd, p, len, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return ferry_from_errno(errno);
        if (n == 0)
            return FERRY_EIO; /* shorter than our bookkeeping says */
        p += n;
        len -= (size_t)n;
        off += (uint64_t)n;
    }
    return 0;
}

static int pwrite_full(int fd, const void *buf, size_t len, uint64_t off)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t n = pwrite(fd, p, len, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return ferry_from_errno(errno);
        p += n;
        len -= (size_t)n;
        off += (uint64_t)n;
    }
    return 0;
}

/* Reads whole records in SPOOL_CHUNK pieces, for the scans at open and the
 * rare seeks; sending reads its batch directly. */
typedef struct spool_reader {
    int fd;
    uint64_t size;
    char *buf;
    uint64_t boff; /* file offset of buf[0] */
    size_t blen;
} spool_reader;

/* The whole, checksummed record at `off`, or 0. `*rec` points into the
 * reader's buffer until the next call. */
static int reader_record(spool_reader *r, uint64_t off, spool_hdr *h, const char **rec)
{
    if (off + SPOOL_HDR > r->size)
        return 0;
    if (off < r->boff || off + SPOOL_HDR > r->boff + r->blen) {
        size_t want = r->size - off < SPOOL_CHUNK ? (size_t)(r->size - off) : SPOOL_CHUNK;
        if (pread_full(r->fd, r->buf, want, off) != 0)
            return 0;
        r->boff = off;
        r->blen = want;
    }
    const char *p = r->buf + (off - r->boff);
    if (!hdr_get(p, h) || off + SPOOL_HDR + h->len > r->size)
        return 0;
    if (off + SPOOL_HDR + h->len > r->boff + r->blen) {
        size_t want = r->size - off < SPOOL_CHUNK ? (size_t)(r->size - off) : SPOOL_CHUNK;
        if (pread_full(r->fd, r->buf, want, off) != 0)
            return 0;
        r->boff = off;
        r->blen = want;
        p = r->buf;
    }
    if (!hdr_crc_ok(p, h, p + SPOOL_HDR))
        return 0;
    *rec = p;
    return 1;
}

/* Whether a whole, checksummed record starts at `at`; reads on its own so
 * that the caller's window stays put. */
static int record_valid(int fd, uint64_t size, uint64_t at)
{
    char hb[SPOOL_HDR];
    spool_hdr h;
    if (at + SPOOL_HDR > size || pread_full(fd, hb, SPOOL_HDR, at) != 0 || !hdr_get(hb, &h) ||
        at + SPOOL_HDR + h.len > size)
        return 0;
    char *payload = ferry_xmalloc(h.len);
    int ok = pread_full(fd, payload, h.len, at + SPOOL_HDR) == 0 && hdr_crc_ok(hb, &h, payload);
    free(payload);
    return ok;
}

/* The first whole record at or after `off`, past holes (punched or never
 * written) and torn bytes. */
static int reader_resync(spool_reader *r, uint64_t off, uint64_t *found)
{
    int ok = 0;
    while (!ok && off + SPOOL_HDR <= r->size) {
        off_t data = lseek(r->fd, (off_t)off, SEEK_DATA);
        if (data < 0)
            break;
        off = (uint64_t)data;
        size_t want = r->size - off < SPOOL_CHUNK ? (size_t)(r->size - off) : SPOOL_CHUNK;
        if (want < SPOOL_HDR || pread_full(r->fd, r->buf, want, off) != 0)
            break;
        const char *p = r->buf, *stop = r->buf + want;
        while (!ok && (p = memmem(p, (size_t)(stop - p), spool_magic, 4)) != NULL) {
            uint64_t at = off + (uint64_t)(p - r->buf);
            ok = record_valid(r->fd, r->size, at);
            if (ok)
                *found = at;
            p++;
        }
        if (want < SPOOL_CHUNK)
            break;
        off += want - 3; /* a magic may straddle two chunks */
    }
    r->blen = 0; /* the window no longer matches boff */
    return ok;
}

/* ---- the acknowledgement file ---- */

static void ack_write(spool *s)
{
    char b[SPOOL_ACK_LEN] = {0};
    memcpy(b, spool_ack_magic, 4);
    memcpy(b + 8, &s->acked, 8);
    memcpy(b + 16, &s->acked_off, 8);
    uint32_t crc = crc32c(0, b, 24);
    memcpy(b + 24, &crc, 4);
    /* A failure only means events are sent again after a restart. */
    if (s->ack_fd >= 0 && pwrite_full(s->ack_fd, b, sizeof(b), 0) != 0)
        ferry_debug("%s: could not record the acknowledgement", s->path);
}

static int ack_read(int fd, uint64_t *acked, uint64_t *off)
{
    char b[SPOOL_ACK_LEN];
    uint32_t crc;
    if (fd < 0 || pread_full(fd, b, sizeof(b), 0) != 0 || memcmp(b, spool_ack_magic, 4) != 0)
        return 0;
    memcpy(&crc, b + 24, 4);
    if (crc32c(0, b, 24) != crc)
        return 0;
    memcpy(acked, b + 8, 8);
    memcpy(off, b + 16, 8);
    return 1;
}

/* ---- opening: a new spool, or what an earlier agent left ---- */

/* Where to start reading: after what the ack file says ferryd holds, when
 * that record is there; else the first whole record of the file. */
static int recover_start(spool *s, spool_reader *r, uint64_t *off, uint64_t *seq)
{
    uint64_t acked = 0, acked_off = 0;
    spool_hdr h;
    const char *rec;
    int have_ack = ack_read(s->ack_fd, &acked, &acked_off);
    if (have_ack && acked_off == r->size) {
        s->acked = acked;
        *off = acked_off;
        *seq = acked + 1;
        return 1;
    }
    if (have_ack && reader_record(r, acked_off, &h, &rec) && h.seq == acked + 1) {
        s->acked = acked;
        *off = acked_off;
        *seq = h.seq;
        return 1;
    }
    uint64_t at;
    if (!reader_resync(r, 0, &at) || !reader_record(r, at, &h, &rec))
        return 0;
    /* Without a usable ack file, everything left is sent: ferryd drops what
     * it already holds. */
    for (;;) {
        if (!have_ack || h.seq > acked) {
            s->acked = h.seq - 1;
            *off = at;
            *seq = h.seq;
            return 1;
        }
        at += SPOOL_HDR + h.len;
        if (!reader_record(r, at, &h, &rec))
            break;
    }
    s->acked = acked;
    *off = at;
    *seq = acked + 1;
    return 1;
}

/* Check every record from the start point; cut a torn tail (the agent or
 * the machine died mid-write). */
static int spool_recover(spool *s, uint64_t size)
{
    spool_reader r = {.fd = s->fd, .size = size, .buf = ferry_xmalloc(SPOOL_CHUNK)};
    uint64_t off = 0, seq = 1;
    spool_hdr h;
    const char *rec;
    if (!recover_start(s, &r, &off, &seq)) {
        off = 0; /* nothing usable at all */
        s->acked = 0;
    }
    s->acked_off = off;
    s->last_seq = s->acked;
    while (reader_record(&r, off, &h, &rec) && h.seq == s->last_seq + 1) {
        off += SPOOL_HDR + h.len;
        s->last_seq = h.seq;
    }
    free(r.buf);
    s->end = off;
    if (off < size) {
        ferry_warn("%s: dropping %" PRIu64 " bytes that are not whole events (torn at a crash)",
                   s->path, size - off);
        if (ftruncate(s->fd, (off_t)off) != 0)
            return ferry_from_errno(errno);
    }
    return 0;
}

static void spool_free(spool *s)
{
    if (s->fd >= 0)
        close(s->fd);
    if (s->ack_fd >= 0)
        close(s->ack_fd);
    free(s->path);
    free(s->batch_offs);
    free(s->wbuf);
    free(s->ready);
    free(s->ready_lens);
    free(s);
}

int spool_open(uv_loop_t *loop, const char *dir, spool **out)
{
    spool *s = ferry_xcalloc(1, sizeof(*s));
    s->loop = loop;
    s->path = ferry_asprintf("%s/events.spool", dir);
    char *ack_path = ferry_asprintf("%s/events.acked", dir);
    s->fd = open(s->path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    s->ack_fd = open(ack_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    free(ack_path);
    int rc = s->fd < 0 || s->ack_fd < 0 ? ferry_from_errno(errno) : 0;
    struct stat st;
    if (rc == 0 && fstat(s->fd, &st) != 0)
        rc = ferry_from_errno(errno);
    if (rc == 0 && st.st_size > 0)
        rc = spool_recover(s, (uint64_t)st.st_size);
    if (rc != 0) {
        spool_free(s);
        return rc;
    }
    s->floor_seq = s->mark_seq = s->acked + 1;
    s->floor_off = s->mark_off = s->acked_off;
    uv_timer_init(loop, &s->timer);
    s->timer.data = s;
    *out = s;
    return 0;
}

/* ---- appending ---- */

/* Decimal digits of v; printf costs more than the rest of an event. */
static char *put_u64(char *p, uint64_t v)
{
    char tmp[20];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v > 0);
    while (n > 0)
        *p++ = tmp[--n];
    return p;
}

static char *put_str(char *p, const char *s)
{
    size_t n = strlen(s);
    memcpy(p, s, n);
    return p + n;
}

/* Seconds since the epoch with microseconds: "1764136918.123456". */
static char *put_time(char *p, double time)
{
    uint64_t us = time > 0 ? (uint64_t)(time * 1e6 + 0.5) : 0;
    p = put_u64(p, us / 1000000);
    *p++ = '.';
    uint64_t frac = us % 1000000;
    for (uint64_t d = 100000; d > 0; d /= 10)
        *p++ = (char)('0' + (frac / d) % 10);
    return p;
}

uint64_t spool_add(spool *s, const char *stream, double time, const char *text, size_t len)
{
    size_t need = s->wlen + SPOOL_HDR + SPOOL_EVENT_HEAD + len + 1;
    FERRY_XGROW(s->wbuf, s->wcap, need);
    uint64_t seq = (s->wlen ? s->wseq : s->last_seq) + 1;
    char *rec = s->wbuf + s->wlen, *p = rec + SPOOL_HDR;
    p = put_u64(p, seq);
    *p++ = ' ';
    p = put_str(p, stream);
    *p++ = ' ';
    p = put_time(p, time);
    *p++ = ' ';
    p = put_u64(p, len);
    *p++ = '\n';
    memcpy(p, text, len);
    p += len;
    *p++ = '\n';
    size_t plen = (size_t)(p - rec - SPOOL_HDR);
    hdr_put(rec, (uint32_t)plen, seq, rec + SPOOL_HDR);
    s->wlen += SPOOL_HDR + plen;
    s->wseq = seq;
    return seq;
}

static void spool_sync_start(spool *s);

static void spool_on_timer(uv_timer_t *t)
{
    spool_sync_start(t->data);
}

static void spool_on_synced(uv_fs_t *req)
{
    spool *s = req->data;
    if (req->result < 0)
        ferry_warn("%s: fdatasync: %s", s->path, uv_strerror((int)req->result));
    uv_fs_req_cleanup(req);
    s->syncing = 0;
    if (s->closing) {
        if (s->timer_closed)
            spool_free(s);
        return;
    }
    if (s->dirty && s->urgent)
        spool_sync_start(s);
    else if (s->dirty)
        uv_timer_start(&s->timer, spool_on_timer, SPOOL_SYNC_MS, 0);
}

static void spool_sync_start(spool *s)
{
    if (s->syncing)
        return;
    uv_timer_stop(&s->timer);
    s->dirty = s->urgent = 0;
    s->syncing = 1;
    s->sync_req.data = s;
    /* On the threadpool: a slow disk must not stall the loop. */
    int rc = uv_fs_fdatasync(s->loop, &s->sync_req, s->fd, spool_on_synced);
    if (rc != 0) {
        s->syncing = 0;
        ferry_warn("%s: fdatasync: %s", s->path, uv_strerror(rc));
    }
}

static void ready_drop(spool *s)
{
    s->ready_n = 0;
    s->ready_len = 0;
}

/* One record just written at `off` joins the ready run when it follows the
 * run's last record and the run has room; once one is left out, so are the
 * rest until the run is handed out (they are read from the file then). */
static void ready_add(spool *s, const spool_hdr *h, const char *payload, uint64_t off)
{
    if (s->ready_n == 0) {
        s->ready_first = h->seq;
        s->ready_off = off;
    }
    if (s->ready_first + s->ready_n != h->seq || s->ready_n >= SPOOL_BATCH_EVENTS ||
        s->ready_len + h->len > SPOOL_BATCH_BYTES)
        return;
    FERRY_XGROW(s->ready, s->ready_cap, s->ready_len + h->len + 1); /* + 1: a batch ends in a NUL */
    FERRY_XGROW(s->ready_lens, s->ready_lens_cap, s->ready_n + 1);
    memcpy(s->ready + s->ready_len, payload, h->len);
    s->ready_len += h->len;
    s->ready_lens[s->ready_n++] = h->len;
}

static void ready_add_written(spool *s, uint64_t off)
{
    spool_hdr h;
    for (size_t at = 0; at + SPOOL_HDR <= s->wlen && hdr_get(s->wbuf + at, &h);
         at += SPOOL_HDR + h.len)
        ready_add(s, &h, s->wbuf + at + SPOOL_HDR, off + at);
}

int spool_flush(spool *s)
{
    if (s->wlen == 0)
        return s->error;
    if (s->error == 0) {
        int rc = pwrite_full(s->fd, s->wbuf, s->wlen, s->end);
        if (rc == 0) {
            ready_add_written(s, s->end);
            s->end += s->wlen;
            s->last_seq = s->wseq;
        } else {
            s->error = rc;
            if (ftruncate(s->fd, (off_t)s->end) != 0) /* a partial record */
                ferry_debug("%s: ftruncate: %s", s->path, strerror(errno));
        }
    }
    s->wlen = 0;
    if (s->wcap > 4 * SPOOL_CHUNK) { /* one burst must not keep its buffer */
        free(s->wbuf);
        s->wbuf = NULL;
        s->wcap = 0;
    }
    if (s->error == 0) {
        s->dirty = 1;
        if (!s->syncing && !uv_is_active((uv_handle_t *)&s->timer))
            uv_timer_start(&s->timer, spool_on_timer, SPOOL_SYNC_MS, 0);
    }
    return s->error;
}

void spool_sync_now(spool *s)
{
    s->urgent = 1;
    s->dirty = 1;
    spool_sync_start(s); /* or right after the one in flight */
}

/* ---- sending ---- */

uint64_t spool_last_seq(const spool *s)
{
    return s->last_seq;
}

uint64_t spool_acked(const spool *s)
{
    return s->acked;
}

int spool_pending(const spool *s)
{
    return s->acked < s->last_seq;
}

static void batch_note(spool *s, size_t i, uint64_t off)
{
    FERRY_XGROW(s->batch_offs, s->batch_cap, i + 1);
    s->batch_offs[i] = off;
}

/* The ready run as the batch, when it is exactly the records that come next
 * and it fits: no read, no copy. */
static int batch_from_ready(spool *s, size_t max_events, size_t max_bytes, char **body, size_t *len,
                            uint64_t *last)
{
    if (s->ready_n > 0 && s->ready_first <= s->acked)
        ready_drop(s); /* stale: ferryd has (some of) it */
    if (s->ready_n == 0 || s->ready_first != s->acked + 1 || s->ready_off != s->acked_off ||
        s->ready_n > max_events || s->ready_len > max_bytes)
        return 0;
    uint64_t off = s->ready_off;
    for (size_t i = 0; i < s->ready_n; i++) {
        batch_note(s, i, off);
        off += SPOOL_HDR + s->ready_lens[i];
    }
    s->batch_first = s->acked + 1;
    s->batch_n = s->ready_n;
    s->batch_end = off;
    s->ready[s->ready_len] = '\0';
    *body = s->ready;
    *len = s->ready_len;
    *last = s->acked + s->ready_n;
    s->ready = NULL;
    s->ready_cap = 0;
    ready_drop(s);
    return 1;
}

int spool_batch(spool *s, size_t max_events, size_t max_bytes, char **body, size_t *len,
                uint64_t *last)
{
    *body = NULL;
    *len = 0;
    if (s->acked_off >= s->end)
        return 0;
    if (batch_from_ready(s, max_events, max_bytes, body, len, last))
        return 1;
    /* Whole records only; one always fits (SPOOL_MAX_PAYLOAD). */
    size_t want =
        max_bytes < SPOOL_HDR + SPOOL_MAX_PAYLOAD ? SPOOL_HDR + SPOOL_MAX_PAYLOAD : max_bytes;
    if (s->end - s->acked_off < want)
        want = (size_t)(s->end - s->acked_off);
    char *buf = ferry_xmalloc(want + 1);
    int rc = pread_full(s->fd, buf, want, s->acked_off);
    if (rc != 0) {
        free(buf);
        return rc;
    }
    /* Compact in place: the headers go, the events stay back to back. */
    size_t in = 0, o = 0, n = 0;
    spool_hdr h;
    while (n < max_events && in + SPOOL_HDR <= want) {
        if (!hdr_get(buf + in, &h) || h.seq != s->acked + 1 + n) {
            if (n > 0)
                break;
            free(buf);
            return FERRY_EIO; /* the file is not what we wrote */
        }
        if (in + SPOOL_HDR + h.len > want)
            break;
        if (n > 0 && o + h.len > max_bytes)
            break;
        batch_note(s, n, s->acked_off + in);
        memmove(buf + o, buf + in + SPOOL_HDR, h.len);
        o += h.len;
        in += SPOOL_HDR + h.len;
        n++;
    }
    if (n == 0) {
        free(buf);
        return 0;
    }
    s->batch_first = s->acked + 1;
    s->batch_n = n;
    s->batch_end = s->acked_off + in;
    buf[o] = '\0';
    *body = buf;
    *len = o;
    *last = s->acked + n;
    return 1;
}

/* Where the record with `seq` starts, walking from a known record. */
static int spool_seek(spool *s, uint64_t from_off, uint64_t from_seq, uint64_t seq, uint64_t *off)
{
    if (seq == s->last_seq + 1) {
        *off = s->end;
        return 1;
    }
    if (seq < from_seq || seq > s->last_seq)
        return 0;
    spool_reader r = {.fd = s->fd, .size = s->end, .buf = ferry_xmalloc(SPOOL_CHUNK)};
    spool_hdr h;
    const char *rec;
    int found = 0;
    while (reader_record(&r, from_off, &h, &rec) && h.seq <= seq) {
        if (h.seq == seq) {
            *off = from_off;
            found = 1;
            break;
        }
        from_off += SPOOL_HDR + h.len;
    }
    free(r.buf);
    return found;
}

/* Acknowledged records older than the last step go; a rewind may still go
 * back to the previous mark. */
static void spool_punch(spool *s)
{
    if (s->acked_off < s->mark_off + SPOOL_PUNCH_STEP)
        return;
    uint64_t upto = s->mark_off & ~(uint64_t)4095;
    s->floor_seq = s->mark_seq;
    s->floor_off = s->mark_off;
    s->mark_seq = s->acked + 1;
    s->mark_off = s->acked_off;
    if (upto > 0 &&
        fallocate(s->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, (off_t)upto) != 0)
        ferry_debug("%s: punching acknowledged events: %s", s->path, strerror(errno));
}

int spool_ack(spool *s, uint64_t seq)
{
    if (seq > s->last_seq)
        seq = s->last_seq;
    if (seq == s->acked)
        return 0;
    uint64_t off;
    int found;
    if (seq > s->acked && seq >= s->batch_first && seq < s->batch_first + s->batch_n) {
        size_t i = (size_t)(seq + 1 - s->batch_first);
        off = i < s->batch_n ? s->batch_offs[i] : s->batch_end;
        found = 1;
    } else if (seq > s->acked) {
        found = spool_seek(s, s->acked_off, s->acked + 1, seq + 1, &off);
    } else {
        /* ferryd holds less than it said before: it lost writes when it
         * died. Send those again, once, if they are still here. */
        if (seq + 1 == s->last_rewind)
            return 0;
        found = spool_seek(s, s->floor_off, s->floor_seq, seq + 1, &off);
        if (found) {
            ferry_warn("%s: ferryd now holds events up to %" PRIu64 " (it acknowledged %" PRIu64
                       "); sending the rest again",
                       s->path, seq, s->acked);
            s->last_rewind = seq + 1;
        }
    }
    if (!found)
        return 0;
    s->batch_n = 0;
    s->acked = seq;
    s->acked_off = off;
    ack_write(s);
    spool_punch(s);
    return 1;
}

void spool_drop_all(spool *s)
{
    ready_drop(s);
    s->acked = s->last_seq;
    s->acked_off = s->end;
    s->batch_n = 0;
    ack_write(s);
}

static void spool_on_timer_closed(uv_handle_t *h)
{
    spool *s = h->data;
    s->timer_closed = 1;
    if (!s->syncing)
        spool_free(s);
}

void spool_close(spool *s)
{
    if (s == NULL)
        return;
    s->closing = 1;
    uv_close((uv_handle_t *)&s->timer, spool_on_timer_closed);
}
