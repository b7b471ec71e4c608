/* Small helpers shared by ferryd, ferry-agent and the CLI. */
#include "util.h"

#include <errno.h>
#include <malloc.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/crypto.h>

#include "ferry/error.h"
#include "ferry/file.h"
#include "ferry/hex.h"

double ferry_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

uint64_t ferry_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* 10000-01-01T00:00:00Z: RFC 3339 writes years up to 9999. */
#define UTIL__TIME_END 253402300800.0

char *ferry_time_format(double t, char *buf, size_t cap)
{
    /* Casting a double out of time_t's range (inf, 1e300) is undefined, and
     * gmtime_r fails on years it can't hold: keep t in [1970, 9999]. NaN
     * fails the first test. */
    if (!(t >= 0))
        t = 0;
    if (t >= UTIL__TIME_END)
        t = UTIL__TIME_END - 0.0005;
    time_t secs = (time_t)t;
    int ms = (int)((t - (double)secs) * 1000.0);
    if (ms > 999)
        ms = 999;
    if (ms < 0)
        ms = 0;
    struct tm tm;
    char base[24];
    if (!gmtime_r(&secs, &tm) || strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm) == 0)
        snprintf(base, sizeof(base), "1970-01-01T00:00:00"); /* never with t in range */
    snprintf(buf, cap, "%s.%03dZ", base, ms);
    return buf;
}

int ferry_random_hex(char *buf, size_t n)
{
    unsigned char raw[256];
    if (n > sizeof(raw))
        return FERRY_EINVAL;
    if (RAND_bytes(raw, (int)n) != 1)
        return FERRY_EIO;
    ferry_hex_encode(raw, n, buf);
    return 0;
}

void ferry_uuid(char *buf)
{
    unsigned char b[16];
    if (RAND_bytes(b, sizeof(b)) != 1)
        abort();
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    snprintf(buf, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
             b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
             b[14], b[15]);
}

int ferry_is_digits(const char *s)
{
    if (s == NULL || *s == '\0')
        return 0;
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return 0;
    return 1;
}

int ferry_is_hex(const char *s, size_t n)
{
    if (s == NULL || strlen(s) != n)
        return 0;
    for (; *s; s++)
        if (ferry_hex_digit((unsigned char)*s) < 0)
            return 0;
    return 1;
}

int ferry_is_sha256_hex(const char *s)
{
    if (s == NULL || strlen(s) != 64)
        return 0;
    for (; *s; s++)
        if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
            return 0;
    return 1;
}

void ferry_sha256_hex(const void *data, size_t len, char *hex)
{
    unsigned char md[32];
    unsigned int md_len = 0;
    EVP_Digest(data, len, md, &md_len, EVP_sha256(), NULL);
    ferry_hex_encode(md, 32, hex);
}

int ferry_file_digests(const char *path, char *md5, char *sha1, char *sha256, int64_t *size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return ferry_from_errno(errno);
    /* One pass over the file for every digest asked for (NULL: not). */
    const EVP_MD *const kinds[3] = {EVP_md5(), EVP_sha1(), EVP_sha256()};
    char *const out[3] = {md5, sha1, sha256};
    EVP_MD_CTX *ctx[3] = {NULL, NULL, NULL};
    for (int k = 0; k < 3; k++)
        if (out[k]) {
            ctx[k] = EVP_MD_CTX_new();
            EVP_DigestInit_ex(ctx[k], kinds[k], NULL);
        }
    char buf[65536];
    int64_t total = 0;
    ssize_t n;
    while ((n = read(fd, buf, sizeof(buf))) > 0) {
        for (int k = 0; k < 3; k++)
            if (ctx[k])
                EVP_DigestUpdate(ctx[k], buf, (size_t)n);
        total += n;
    }
    int rc = n < 0 ? ferry_from_errno(errno) : 0;
    close(fd);
    for (int k = 0; k < 3; k++) {
        if (ctx[k] == NULL)
            continue;
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned int md_len = 0;
        EVP_DigestFinal_ex(ctx[k], md, &md_len);
        EVP_MD_CTX_free(ctx[k]);
        if (rc == 0)
            ferry_hex_encode(md, md_len, out[k]);
    }
    if (rc == 0 && size)
        *size = total;
    return rc;
}

int ferry_sha256_file(const char *path, char *hex, int64_t *size)
{
    return ferry_file_digests(path, NULL, NULL, hex, size);
}

void ferry_hmac_sha256_hex(const void *key, size_t key_len, const void *msg, size_t msg_len,
                           char *hex)
{
    unsigned char md[32];
    unsigned int md_len = 0;
    HMAC(EVP_sha256(), key, (int)key_len, msg, msg_len, md, &md_len);
    ferry_hex_encode(md, 32, hex);
}

int ferry_secure_streq(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la != lb)
        return 0;
    return CRYPTO_memcmp(a, b, la) == 0;
}

static int rmtree_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path) != 0 && errno != ENOENT ? -1 : 0;
}

int ferry_rmtree(const char *path)
{
    if (nftw(path, rmtree_entry, 32, FTW_DEPTH | FTW_PHYS) != 0)
        return errno == ENOENT ? 0 : ferry_from_errno(errno);
    return 0;
}

char *ferry_read_file(const char *path, size_t *len)
{
    char *text = NULL;
    int rc = ferry_file_read(path, SIZE_MAX - 1, &text, len);
    if (rc == FERRY_ENOMEM)
        ferry_xcheck(rc);
    return rc == 0 ? text : NULL; /* errno says why */
}

int ferry_write_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return ferry_from_errno(errno);
        }
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

/* Write `data` into the new file `fd` (at `path`) and close it: 0, or a
 * code with the file removed. */
static int util__fill(int fd, const char *path, const void *data, size_t len)
{
    int rc = ferry_write_all(fd, data, len);
    if (close(fd) != 0 && rc == 0)
        rc = ferry_from_errno(errno);
    if (rc < 0)
        unlink(path);
    return rc;
}

int ferry_write_file(const char *path, const void *data, size_t len)
{
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid()) >= (int)sizeof(tmp))
        return FERRY_ENAMETOOLONG;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return ferry_from_errno(errno);
    int rc = util__fill(fd, tmp, data, len);
    if (rc == 0 && rename(tmp, path) != 0) {
        rc = ferry_from_errno(errno);
        unlink(tmp);
    }
    return rc;
}

int ferry_write_temp(char *tmpl, const void *data, size_t len)
{
    int fd = mkstemp(tmpl);
    if (fd < 0)
        return ferry_from_errno(errno);
    return util__fill(fd, tmpl, data, len);
}

int ferry_exe_dir(char *buf, size_t cap)
{
    ssize_t n = readlink("/proc/self/exe", buf, cap - 1);
    if (n < 0)
        return ferry_from_errno(errno);
    buf[n] = '\0';
    char *slash = strrchr(buf, '/');
    if (slash == NULL)
        return FERRY_EINVAL;
    *slash = '\0';
    return 0;
}

void *ferry_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (p == NULL)
        abort();
    return p;
}

void *ferry_xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (p == NULL)
        abort();
    return p;
}

void *ferry_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (q == NULL)
        abort();
    return q;
}

void ferry_xcheck(int rc)
{
    if (rc != 0)
        abort();
}

char *ferry_strdup(const char *s)
{
    if (s == NULL)
        return NULL;
    char *d = strdup(s);
    if (d == NULL)
        abort();
    return d;
}

char *ferry_vasprintf(const char *fmt, va_list ap)
{
    char *out = NULL;
    if (vasprintf(&out, fmt, ap) < 0)
        abort();
    return out;
}

char *ferry_asprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *out = ferry_vasprintf(fmt, ap);
    va_end(ap);
    return out;
}

int ferry_safe_relpath(const char *name)
{
    if (name == NULL || name[0] == '\0' || name[0] == '/')
        return 0;
    if (strchr(name, '\\') != NULL)
        return 0;
    const char *p = name;
    while (*p) {
        const char *end = strchr(p, '/');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (n == 0 || (n == 2 && p[0] == '.' && p[1] == '.') || (n == 1 && p[0] == '.'))
            return 0;
        p += n;
        if (*p == '/')
            p++;
    }
    return 1;
}

void ferry_keep_large_blocks(void)
{
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 64 << 20);
}
