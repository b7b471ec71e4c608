/* AWS Signature Version 4, written from AWS's public description of it and
 * pinned by the vectors in tests/vectors/sigv4/.
 *
 *   canonical request = method \n canonical path \n canonical query \n
 *                       canonical headers \n signed header names \n payload hash
 *   string to sign    = "AWS4-HMAC-SHA256" \n amz date \n scope \n hex(sha256(creq))
 *   signature         = hex(hmac(signing key, string to sign))
 *
 * Every string is built in a growing buffer that ends up owned by the
 * result; a failed allocation anywhere turns into FERRY_ENOMEM.
 */
#include "ferry/sigv4.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include "ferry/buf.h"
#include "ferry/error.h"
#include "ferry/hex.h"

#define FERRY__SIGV4_ALGORITHM "AWS4-HMAC-SHA256"

/* ------------------------------------------------------------------------ */
/* A growing string                                                         */

/* A ferry_buf that remembers a failed allocation, so that a string is
 * built with no check after each piece and judged once, at the end. */
typedef struct ferry__sb {
    ferry_buf buf;
    int failed; /* an allocation failed: the content is not to be trusted */
} ferry__sb;

static void ferry__sb_addn(ferry__sb *b, const char *s, size_t n)
{
    if (!b->failed && ferry_buf_append(&b->buf, s, n) != 0)
        b->failed = 1;
}

static void ferry__sb_add(ferry__sb *b, const char *s)
{
    ferry__sb_addn(b, s, strlen(s));
}

static void ferry__sb_addc(ferry__sb *b, char c)
{
    ferry__sb_addn(b, &c, 1);
}

/* The string, handed over to the caller; NULL when anything failed. An
 * empty buffer gives "". */
static char *ferry__sb_take(ferry__sb *b)
{
    char *s = b->failed ? NULL : ferry_buf_take(&b->buf, NULL);
    ferry_buf_free(&b->buf);
    b->failed = 0;
    return s;
}

/* ------------------------------------------------------------------------ */
/* Encoding                                                                 */

static int ferry__unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.' || c == '~';
}

static void ferry__sb_encode(ferry__sb *b, const char *s, size_t len, int keep_slash)
{
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (ferry__unreserved(c) || (keep_slash && c == '/')) {
            ferry__sb_addc(b, (char)c);
        } else {
            char esc[3] = {'%', hex[c >> 4], hex[c & 15]};
            ferry__sb_addn(b, esc, 3);
        }
    }
}

char *ferry_sigv4_uri_encode(const char *s, size_t len, int keep_slash)
{
    ferry__sb b = {0};
    ferry__sb_encode(&b, s, len, keep_slash);
    return ferry__sb_take(&b);
}

/* %XX escapes decoded; a '%' not followed by two hex digits stays as it is,
 * and '+' stays '+' (it is not form encoding). */
static void ferry__sb_decode(ferry__sb *b, const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        int hi, lo;
        if (s[i] == '%' && i + 2 < len && (hi = ferry_hex_digit(s[i + 1])) >= 0 &&
            (lo = ferry_hex_digit(s[i + 2])) >= 0) {
            ferry__sb_addc(b, (char)(hi << 4 | lo));
            i += 2;
        } else {
            ferry__sb_addc(b, s[i]);
        }
    }
}

/* Decode, then encode: one spelling for "a b", "a%20b" and "a%20b" alike. */
static void ferry__sb_reencode(ferry__sb *b, const char *s, size_t len, int keep_slash)
{
    ferry__sb tmp = {0};
    ferry__sb_decode(&tmp, s, len);
    if (tmp.failed)
        b->failed = 1;
    else
        ferry__sb_encode(b, tmp.buf.data ? tmp.buf.data : "", tmp.buf.len, keep_slash);
    ferry_buf_free(&tmp.buf);
}

/* ------------------------------------------------------------------------ */
/* Hashes                                                                   */

void ferry_sigv4_sha256_hex(const void *data, size_t len, char out[65])
{
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256(data, len, md);
    ferry_hex_encode(md, sizeof(md), out);
}

static void ferry__hmac(const unsigned char *key, size_t key_len, const char *msg, size_t msg_len,
                        unsigned char out[32])
{
    unsigned int n = 32;
    HMAC(EVP_sha256(), key, (int)key_len, (const unsigned char *)msg, msg_len, out, &n);
}

int ferry_sigv4_sha256_file(const char *path, int64_t offset, int64_t length, char out[65])
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? FERRY_ENOENT : FERRY_EIO;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    const size_t buf_size = 1 << 16;
    unsigned char *buf = malloc(buf_size);
    int rc = ctx && buf && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1 ? 0 : FERRY_ENOMEM;
    int64_t left = length, pos = offset;
    while (rc == 0 && (length < 0 || left > 0)) {
        size_t want = length < 0 || left > (int64_t)buf_size ? buf_size : (size_t)left;
        ssize_t n = pread(fd, buf, want, (off_t)pos);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 || (n == 0 && length >= 0))
            rc = FERRY_EIO; /* a read error, or the file ends before the range does */
        else if (n == 0)
            break;
        else if (EVP_DigestUpdate(ctx, buf, (size_t)n) != 1)
            rc = FERRY_EIO;
        pos += n;
        left -= n;
    }
    unsigned char md[SHA256_DIGEST_LENGTH];
    unsigned int md_len = 0;
    if (rc == 0 && EVP_DigestFinal_ex(ctx, md, &md_len) != 1)
        rc = FERRY_EIO;
    if (rc == 0)
        ferry_hex_encode(md, SHA256_DIGEST_LENGTH, out);
    EVP_MD_CTX_free(ctx);
    free(buf);
    close(fd);
    return rc;
}

int ferry_sigv4_signing_key(const char *secret, const char *date8, const char *region,
                            const char *service, unsigned char key[32])
{
    if (secret == NULL || date8 == NULL || region == NULL || service == NULL)
        return FERRY_EINVAL;
    size_t n = strlen(secret);
    char *k0 = malloc(n + 5);
    if (k0 == NULL)
        return FERRY_ENOMEM;
    memcpy(k0, "AWS4", 4);
    memcpy(k0 + 4, secret, n + 1);
    unsigned char k[32];
    ferry__hmac((unsigned char *)k0, n + 4, date8, strlen(date8), k);
    ferry__hmac(k, 32, region, strlen(region), k);
    ferry__hmac(k, 32, service, strlen(service), k);
    ferry__hmac(k, 32, "aws4_request", 12, key);
    /* The secret must not linger in freed memory. */
    OPENSSL_cleanse(k0, n + 4);
    OPENSSL_cleanse(k, sizeof(k));
    free(k0);
    return 0;
}

static void ferry__sign_hex(const unsigned char key[32], const char *sts, char out[65])
{
    unsigned char md[32];
    ferry__hmac(key, 32, sts, strlen(sts), md);
    ferry_hex_encode(md, 32, out);
}

/* ------------------------------------------------------------------------ */
/* Time                                                                     */

int ferry_sigv4_amz_date(int64_t t, char out[17])
{
    time_t tt = (time_t)t;
    struct tm tm;
    if ((int64_t)tt != t || gmtime_r(&tt, &tm) == NULL || tm.tm_year + 1900 < 0 ||
        tm.tm_year + 1900 > 9999)
        return -1;
    snprintf(out, 17, "%04d%02d%02dT%02d%02d%02dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
             tm.tm_hour, tm.tm_min, tm.tm_sec);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Canonical path                                                           */

/* RFC 3986 dot-segment removal plus "//" collapsing, as AWS does for every
 * service but S3. A trailing '/' survives (and "/a/." names the folder). */
static void ferry__sb_normalized_path(ferry__sb *b, const char *path)
{
    size_t n = strlen(path);
    const char **seg = malloc((n / 2 + 2) * sizeof(*seg));
    size_t *seg_len = malloc((n / 2 + 2) * sizeof(*seg_len));
    if (seg == NULL || seg_len == NULL) {
        free(seg);
        free(seg_len);
        b->failed = 1;
        return;
    }
    size_t count = 0;
    for (const char *p = path; *p;) {
        size_t len = strcspn(p, "/");
        if (len == 2 && p[0] == '.' && p[1] == '.') {
            if (count > 0)
                count--;
        } else if (len > 0 && !(len == 1 && p[0] == '.')) {
            seg[count] = p;
            seg_len[count++] = len;
        }
        p += len;
        if (*p == '/')
            p++;
    }
    ferry__sb_addc(b, '/');
    for (size_t i = 0; i < count; i++) {
        if (i > 0)
            ferry__sb_addc(b, '/');
        ferry__sb_addn(b, seg[i], seg_len[i]);
    }
    int dir = (n > 0 && path[n - 1] == '/') || (n >= 2 && strcmp(path + n - 2, "/.") == 0) ||
              (n >= 3 && strcmp(path + n - 3, "/..") == 0);
    if (dir && count > 0)
        ferry__sb_addc(b, '/');
    free(seg);
    free(seg_len);
}

static void ferry__sb_canonical_path(ferry__sb *b, const char *path, unsigned rules)
{
    if (path == NULL || path[0] == '\0')
        path = "/";
    ferry__sb norm = {0};
    if (rules & FERRY_SIGV4_NORMALIZE_PATH)
        ferry__sb_normalized_path(&norm, path);
    else
        ferry__sb_add(&norm, path);
    if (norm.failed) {
        b->failed = 1;
    } else if (rules & FERRY_SIGV4_DOUBLE_ENCODE) {
        ferry__sb_encode(b, norm.buf.data, norm.buf.len, 1);
    } else {
        ferry__sb_reencode(b, norm.buf.data, norm.buf.len, 1);
    }
    ferry_buf_free(&norm.buf);
}

/* ------------------------------------------------------------------------ */
/* Canonical query                                                          */

typedef struct ferry__param {
    char *key; /* encoded */
    char *value;
} ferry__param;

typedef struct ferry__params {
    ferry__param *v;
    size_t n, cap;
    int failed;
} ferry__params;

static void ferry__params_push(ferry__params *ps, char *key, char *value)
{
    if (!ps->failed && FERRY_GROW(ps->v, ps->cap, ps->n + 1) != 0)
        ps->failed = 1;
    if (ps->failed || key == NULL || value == NULL) {
        ps->failed = 1;
        free(key);
        free(value);
        return;
    }
    ps->v[ps->n].key = key;
    ps->v[ps->n++].value = value;
}

/* A parameter given decoded (the X-Amz-* ones). */
static void ferry__params_add(ferry__params *ps, const char *key, const char *value)
{
    ferry__params_push(ps, ferry_sigv4_uri_encode(key, strlen(key), 0),
                       ferry_sigv4_uri_encode(value, strlen(value), 0));
}

/* Parameters of a query string as sent: each name and value decoded, then
 * encoded the one canonical way. */
static void ferry__params_parse(ferry__params *ps, const char *query)
{
    for (const char *p = query ? query : ""; *p;) {
        size_t len = strcspn(p, "&");
        if (len > 0) {
            const char *eq = memchr(p, '=', len);
            size_t klen = eq ? (size_t)(eq - p) : len;
            ferry__sb k = {0}, v = {0};
            ferry__sb_reencode(&k, p, klen, 0);
            if (eq)
                ferry__sb_reencode(&v, eq + 1, len - klen - 1, 0);
            ferry__params_push(ps, ferry__sb_take(&k), ferry__sb_take(&v));
        }
        p += len;
        if (*p == '&')
            p++;
    }
}

static int ferry__param_cmp(const void *a, const void *b)
{
    const ferry__param *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    return c != 0 ? c : strcmp(x->value, y->value);
}

static void ferry__params_free(ferry__params *ps)
{
    for (size_t i = 0; i < ps->n; i++) {
        free(ps->v[i].key);
        free(ps->v[i].value);
    }
    free(ps->v);
    memset(ps, 0, sizeof(*ps));
}

/* Sorted by encoded name, then value (byte order), "k=v" joined by '&'. */
static void ferry__sb_params(ferry__sb *b, ferry__params *ps)
{
    if (ps->failed) {
        b->failed = 1;
        return;
    }
    if (ps->n > 1)
        qsort(ps->v, ps->n, sizeof(*ps->v), ferry__param_cmp);
    for (size_t i = 0; i < ps->n; i++) {
        if (i > 0)
            ferry__sb_addc(b, '&');
        ferry__sb_add(b, ps->v[i].key);
        ferry__sb_addc(b, '=');
        ferry__sb_add(b, ps->v[i].value);
    }
}

/* ------------------------------------------------------------------------ */
/* Canonical headers                                                        */

typedef struct ferry__header {
    char *name;  /* lower case, trimmed */
    char *value; /* trimmed, whitespace runs as one space */
    size_t order;
} ferry__header;

typedef struct ferry__headers {
    ferry__header *v;
    size_t n, cap;
    int failed;
} ferry__headers;

static int ferry__is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

static void ferry__headers_add(ferry__headers *hs, const char *name, size_t name_len,
                               const char *value)
{
    if (hs->failed)
        return;
    if (FERRY_GROW(hs->v, hs->cap, hs->n + 1) != 0) {
        hs->failed = 1;
        return;
    }
    while (name_len > 0 && ferry__is_space(*name))
        name++, name_len--;
    while (name_len > 0 && ferry__is_space(name[name_len - 1]))
        name_len--;
    ferry__sb n = {0}, v = {0};
    for (size_t i = 0; i < name_len; i++) {
        char c = name[i];
        ferry__sb_addc(&n, c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c);
    }
    const char *p = value;
    while (ferry__is_space(*p))
        p++;
    while (*p) {
        if (ferry__is_space(*p)) {
            while (ferry__is_space(*p))
                p++;
            if (*p)
                ferry__sb_addc(&v, ' ');
        } else {
            ferry__sb_addc(&v, *p++);
        }
    }
    char *ns = ferry__sb_take(&n), *vs = ferry__sb_take(&v);
    if (ns == NULL || vs == NULL) {
        free(ns);
        free(vs);
        hs->failed = 1;
        return;
    }
    hs->v[hs->n] = (ferry__header){ns, vs, hs->n};
    hs->n++;
}

static int ferry__header_cmp(const void *a, const void *b)
{
    const ferry__header *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    if (c != 0)
        return c;
    return x->order < y->order ? -1 : x->order > y->order;
}

static void ferry__headers_free(ferry__headers *hs)
{
    for (size_t i = 0; i < hs->n; i++) {
        free(hs->v[i].name);
        free(hs->v[i].value);
    }
    free(hs->v);
    memset(hs, 0, sizeof(*hs));
}

static int ferry__header_is(const ferry__header *h, const char *name)
{
    return strcmp(h->name, name) == 0;
}

/* Sorted, repeated names joined with ',': the canonical header block into
 * `b` and the signed names into `names`. */
static void ferry__sb_headers(ferry__sb *b, ferry__sb *names, ferry__headers *hs)
{
    if (hs->failed) {
        b->failed = 1;
        return;
    }
    if (hs->n > 1)
        qsort(hs->v, hs->n, sizeof(*hs->v), ferry__header_cmp);
    for (size_t i = 0; i < hs->n; i++) {
        const ferry__header *h = &hs->v[i];
        if (i > 0 && strcmp(h->name, hs->v[i - 1].name) == 0) {
            ferry__sb_addc(b, ',');
            ferry__sb_add(b, h->value);
            continue;
        }
        if (i > 0) {
            ferry__sb_addc(b, '\n');
            ferry__sb_addc(names, ';');
        }
        ferry__sb_add(b, h->name);
        ferry__sb_addc(b, ':');
        ferry__sb_add(b, h->value);
        ferry__sb_add(names, h->name);
    }
    ferry__sb_addc(b, '\n');
}

/* ------------------------------------------------------------------------ */
/* Signing                                                                  */

unsigned ferry_sigv4_service_rules(const char *service)
{
    if (service != NULL &&
        (strcmp(service, "s3") == 0 || strcmp(service, "s3-outposts") == 0 ||
         strcmp(service, "s3-object-lambda") == 0 || strcmp(service, "s3express") == 0))
        return FERRY_SIGV4_CONTENT_SHA256;
    return FERRY_SIGV4_NORMALIZE_PATH | FERRY_SIGV4_DOUBLE_ENCODE;
}

static unsigned ferry__rules(const ferry_sigv4_request *r)
{
    if (r->rules & FERRY_SIGV4_RULES_EXPLICIT)
        return r->rules;
    return ferry_sigv4_service_rules(r->service);
}

static int ferry__has_token(const ferry_sigv4_request *r)
{
    return r->session_token != NULL && r->session_token[0] != '\0';
}

/* The caller's headers, checked: the signer's own names are refused, since
 * a second X-Amz-Date would be signed and sent twice. */
static int ferry__headers_from_request(ferry__headers *hs, const ferry_sigv4_request *r,
                                       int *has_host)
{
    static const char *const owned[] = {"x-amz-date", "x-amz-content-sha256",
                                        "x-amz-security-token", "authorization"};
    *has_host = 0;
    for (const char *const *h = r->headers; h && *h; h++) {
        const char *colon = strchr(*h, ':');
        if (colon == NULL)
            return FERRY_EINVAL;
        ferry__headers_add(hs, *h, (size_t)(colon - *h), colon + 1);
        if (hs->failed)
            return FERRY_ENOMEM;
        const ferry__header *last = &hs->v[hs->n - 1];
        for (size_t i = 0; i < sizeof(owned) / sizeof(owned[0]); i++)
            if (ferry__header_is(last, owned[i]))
                return FERRY_EINVAL;
        if (last->name[0] == '\0')
            return FERRY_EINVAL;
        if (ferry__header_is(last, "host"))
            *has_host = 1;
    }
    if (!*has_host && (r->host == NULL || r->host[0] == '\0'))
        return FERRY_EINVAL;
    if (!*has_host)
        ferry__headers_add(hs, "host", 4, r->host);
    return hs->failed ? FERRY_ENOMEM : 0;
}

static int ferry__request_ok(const ferry_sigv4_request *r)
{
    return r != NULL && r->struct_size >= sizeof(ferry_sigv4_request) && r->access_key_id != NULL &&
           r->access_key_id[0] != '\0' && r->secret_access_key != NULL && r->service != NULL &&
           r->service[0] != '\0' && r->region != NULL && r->region[0] != '\0' &&
           r->method != NULL && r->method[0] != '\0';
}

/* What header signing and presigning share once each has collected its
 * headers and parameters. */
typedef struct ferry__signing {
    const ferry_sigv4_request *req;
    unsigned rules;
    const char *payload_hash;
    ferry__headers headers;
    ferry__params params;
} ferry__signing;

static int ferry__start(ferry__signing *s, const ferry_sigv4_request *req,
                        ferry_sigv4_signature *out)
{
    memset(s, 0, sizeof(*s));
    memset(out, 0, sizeof(*out));
    out->struct_size = sizeof(*out);
    if (!ferry__request_ok(req))
        return FERRY_EINVAL;
    s->req = req;
    s->rules = ferry__rules(req);
    if (ferry_sigv4_amz_date(req->time, out->amz_date) < 0)
        return FERRY_EINVAL;
    ferry__sb scope = {0};
    ferry__sb_addn(&scope, out->amz_date, 8);
    ferry__sb_addc(&scope, '/');
    ferry__sb_add(&scope, req->region);
    ferry__sb_addc(&scope, '/');
    ferry__sb_add(&scope, req->service);
    ferry__sb_add(&scope, "/aws4_request");
    if ((out->scope = ferry__sb_take(&scope)) == NULL)
        return FERRY_ENOMEM;
    int has_host;
    return ferry__headers_from_request(&s->headers, req, &has_host);
}

/* Canonical request, string to sign and signature into `out`. */
static int ferry__finish(ferry__signing *s, ferry_sigv4_signature *out)
{
    const ferry_sigv4_request *r = s->req;
    ferry__sb creq = {0}, names = {0}, sts = {0};
    ferry__sb_add(&creq, r->method);
    ferry__sb_addc(&creq, '\n');
    ferry__sb_canonical_path(&creq, r->path, s->rules);
    ferry__sb_addc(&creq, '\n');
    ferry__sb_params(&creq, &s->params);
    ferry__sb_addc(&creq, '\n');
    ferry__sb_headers(&creq, &names, &s->headers);
    ferry__sb_addc(&creq, '\n');
    ferry__sb_addn(&creq, names.buf.data ? names.buf.data : "", names.buf.len);
    ferry__sb_addc(&creq, '\n');
    ferry__sb_add(&creq, s->payload_hash);
    out->signed_headers = ferry__sb_take(&names);
    out->canonical_request = ferry__sb_take(&creq);
    if (out->signed_headers == NULL || out->canonical_request == NULL)
        return FERRY_ENOMEM;

    char creq_hash[65];
    ferry_sigv4_sha256_hex(out->canonical_request, strlen(out->canonical_request), creq_hash);
    ferry__sb_add(&sts, FERRY__SIGV4_ALGORITHM "\n");
    ferry__sb_add(&sts, out->amz_date);
    ferry__sb_addc(&sts, '\n');
    ferry__sb_add(&sts, out->scope);
    ferry__sb_addc(&sts, '\n');
    ferry__sb_add(&sts, creq_hash);
    if ((out->string_to_sign = ferry__sb_take(&sts)) == NULL)
        return FERRY_ENOMEM;

    char date8[9];
    memcpy(date8, out->amz_date, 8);
    date8[8] = '\0';
    unsigned char key[32];
    int rc = ferry_sigv4_signing_key(r->secret_access_key, date8, r->region, r->service, key);
    if (rc == 0)
        ferry__sign_hex(key, out->string_to_sign, out->signature);
    OPENSSL_cleanse(key, sizeof(key));
    return rc;
}

static char *ferry__strcat3(const char *a, const char *b, const char *c)
{
    ferry__sb s = {0};
    ferry__sb_add(&s, a);
    ferry__sb_add(&s, b);
    ferry__sb_add(&s, c);
    return ferry__sb_take(&s);
}

/* The header lines to send: X-Amz-Date, X-Amz-Content-SHA256, the token,
 * Authorization. */
static int ferry__output_headers(const ferry__signing *s, ferry_sigv4_signature *out)
{
    const ferry_sigv4_request *r = s->req;
    ferry__sb a = {0};
    ferry__sb_add(&a, FERRY__SIGV4_ALGORITHM " Credential=");
    ferry__sb_add(&a, r->access_key_id);
    ferry__sb_addc(&a, '/');
    ferry__sb_add(&a, out->scope);
    ferry__sb_add(&a, ", SignedHeaders=");
    ferry__sb_add(&a, out->signed_headers);
    ferry__sb_add(&a, ", Signature=");
    ferry__sb_add(&a, out->signature);
    if ((out->authorization = ferry__sb_take(&a)) == NULL)
        return FERRY_ENOMEM;
    if ((out->headers = calloc(5, sizeof(char *))) == NULL)
        return FERRY_ENOMEM;
    size_t n = 0;
    out->headers[n++] = ferry__strcat3("X-Amz-Date: ", out->amz_date, "");
    if (s->rules & FERRY_SIGV4_CONTENT_SHA256)
        out->headers[n++] = ferry__strcat3("X-Amz-Content-SHA256: ", s->payload_hash, "");
    if (ferry__has_token(r))
        out->headers[n++] = ferry__strcat3("X-Amz-Security-Token: ", r->session_token, "");
    out->headers[n++] = ferry__strcat3("Authorization: ", out->authorization, "");
    for (size_t i = 0; i < n; i++)
        if (out->headers[i] == NULL)
            return FERRY_ENOMEM;
    return 0;
}

static void ferry__signing_free(ferry__signing *s)
{
    ferry__headers_free(&s->headers);
    ferry__params_free(&s->params);
}

int ferry_sigv4_sign(const ferry_sigv4_request *req, ferry_sigv4_signature *out)
{
    ferry__signing s;
    int rc = ferry__start(&s, req, out);
    if (rc == 0) {
        s.payload_hash = req->payload_hash ? req->payload_hash : FERRY_SIGV4_EMPTY_SHA256;
        ferry__params_parse(&s.params, req->query);
        ferry__headers_add(&s.headers, "x-amz-date", 10, out->amz_date);
        if (s.rules & FERRY_SIGV4_CONTENT_SHA256)
            ferry__headers_add(&s.headers, "x-amz-content-sha256", 20, s.payload_hash);
        if (ferry__has_token(req) && !(s.rules & FERRY_SIGV4_TOKEN_UNSIGNED))
            ferry__headers_add(&s.headers, "x-amz-security-token", 20, req->session_token);
        rc = s.headers.failed || s.params.failed ? FERRY_ENOMEM : 0;
    }
    if (rc == 0)
        rc = ferry__finish(&s, out);
    if (rc == 0)
        rc = ferry__output_headers(&s, out);
    ferry__signing_free(&s);
    if (rc != 0)
        ferry_sigv4_signature_free(out);
    return rc;
}

/* The X-Amz-* parameters of a presigned URL, before the signature. */
static void ferry__presign_params(ferry__signing *s, const ferry_sigv4_signature *out,
                                  const char *signed_names)
{
    const ferry_sigv4_request *r = s->req;
    char expires[16];
    snprintf(expires, sizeof(expires), "%d", r->expires_s);
    char *credential = ferry__strcat3(r->access_key_id, "/", out->scope);
    ferry__params_add(&s->params, "X-Amz-Algorithm", FERRY__SIGV4_ALGORITHM);
    if (credential == NULL)
        s->params.failed = 1;
    else
        ferry__params_add(&s->params, "X-Amz-Credential", credential);
    ferry__params_add(&s->params, "X-Amz-Date", out->amz_date);
    ferry__params_add(&s->params, "X-Amz-Expires", expires);
    ferry__params_add(&s->params, "X-Amz-SignedHeaders", signed_names);
    if (ferry__has_token(r) && !(s->rules & FERRY_SIGV4_TOKEN_UNSIGNED))
        ferry__params_add(&s->params, "X-Amz-Security-Token", r->session_token);
    free(credential);
}

/* The signed header names, known before the canonical request is built
 * (they are one of its query parameters). */
static char *ferry__names_of(ferry__headers *hs)
{
    if (hs->n > 1)
        qsort(hs->v, hs->n, sizeof(*hs->v), ferry__header_cmp);
    ferry__sb b = {0};
    for (size_t i = 0; i < hs->n; i++) {
        if (i > 0 && strcmp(hs->v[i].name, hs->v[i - 1].name) == 0)
            continue;
        if (b.buf.len > 0)
            ferry__sb_addc(&b, ';');
        ferry__sb_add(&b, hs->v[i].name);
    }
    return ferry__sb_take(&b);
}

/* The query to send: the canonical one (sorted, encoded), the signature
 * last, then the token when it travels unsigned. */
static int ferry__output_query(const ferry__signing *s, ferry_sigv4_signature *out)
{
    const ferry_sigv4_request *r = s->req;
    ferry__sb q = {0};
    const char *creq_query = strchr(strchr(out->canonical_request, '\n') + 1, '\n') + 1;
    ferry__sb_addn(&q, creq_query, strcspn(creq_query, "\n"));
    if (q.buf.len > 0)
        ferry__sb_addc(&q, '&');
    ferry__sb_add(&q, "X-Amz-Signature=");
    ferry__sb_add(&q, out->signature);
    if (ferry__has_token(r) && (s->rules & FERRY_SIGV4_TOKEN_UNSIGNED)) {
        ferry__sb_add(&q, "&X-Amz-Security-Token=");
        ferry__sb_encode(&q, r->session_token, strlen(r->session_token), 0);
    }
    out->query = ferry__sb_take(&q);
    return out->query ? 0 : FERRY_ENOMEM;
}

int ferry_sigv4_presign(const ferry_sigv4_request *req, ferry_sigv4_signature *out)
{
    ferry__signing s;
    int rc = ferry__start(&s, req, out);
    if (rc == 0 && (req->expires_s < 1 || req->expires_s > FERRY_SIGV4_MAX_EXPIRES_S))
        rc = FERRY_EINVAL;
    if (rc == 0) {
        s.payload_hash = req->payload_hash                      ? req->payload_hash
                         : s.rules & FERRY_SIGV4_CONTENT_SHA256 ? FERRY_SIGV4_UNSIGNED_PAYLOAD
                                                                : FERRY_SIGV4_EMPTY_SHA256;
        char *names = ferry__names_of(&s.headers);
        if (names == NULL)
            rc = FERRY_ENOMEM;
        else {
            ferry__params_parse(&s.params, req->query);
            ferry__presign_params(&s, out, names);
            rc = s.params.failed ? FERRY_ENOMEM : 0;
        }
        free(names);
    }
    if (rc == 0)
        rc = ferry__finish(&s, out);
    if (rc == 0)
        rc = ferry__output_query(&s, out);
    ferry__signing_free(&s);
    if (rc != 0)
        ferry_sigv4_signature_free(out);
    return rc;
}

void ferry_sigv4_signature_free(ferry_sigv4_signature *sig)
{
    if (sig == NULL)
        return;
    free(sig->scope);
    free(sig->signed_headers);
    free(sig->canonical_request);
    free(sig->string_to_sign);
    free(sig->authorization);
    for (char **h = sig->headers; h && *h; h++)
        free(*h);
    free(sig->headers);
    free(sig->query);
    memset(sig, 0, sizeof(*sig));
    sig->struct_size = sizeof(*sig);
}

/* ------------------------------------------------------------------------ */
/* aws-chunked                                                              */

static int ferry__chain_signature(const unsigned char key[32], const char *kind,
                                  const char *amz_date, const char *scope, const char *previous,
                                  const char *extra, const char *hash, char out[65])
{
    if (key == NULL || amz_date == NULL || scope == NULL || previous == NULL || hash == NULL)
        return FERRY_EINVAL;
    ferry__sb sts = {0};
    ferry__sb_add(&sts, kind);
    ferry__sb_addc(&sts, '\n');
    ferry__sb_add(&sts, amz_date);
    ferry__sb_addc(&sts, '\n');
    ferry__sb_add(&sts, scope);
    ferry__sb_addc(&sts, '\n');
    ferry__sb_add(&sts, previous);
    ferry__sb_addc(&sts, '\n');
    if (extra) {
        ferry__sb_add(&sts, extra);
        ferry__sb_addc(&sts, '\n');
    }
    ferry__sb_add(&sts, hash);
    char *s = ferry__sb_take(&sts);
    if (s == NULL)
        return FERRY_ENOMEM;
    ferry__sign_hex(key, s, out);
    free(s);
    return 0;
}

int ferry_sigv4_chunk_signature(const unsigned char key[32], const char *amz_date,
                                const char *scope, const char *previous_signature,
                                const char *chunk_sha256, char out[65])
{
    /* The empty line between the previous signature and the chunk's hash is
     * the hash of the (empty) chunk headers. */
    return ferry__chain_signature(key, FERRY__SIGV4_ALGORITHM "-PAYLOAD", amz_date, scope,
                                  previous_signature, FERRY_SIGV4_EMPTY_SHA256, chunk_sha256, out);
}

int ferry_sigv4_trailer_signature(const unsigned char key[32], const char *amz_date,
                                  const char *scope, const char *previous_signature,
                                  const char *trailer_sha256, char out[65])
{
    return ferry__chain_signature(key, FERRY__SIGV4_ALGORITHM "-TRAILER", amz_date, scope,
                                  previous_signature, NULL, trailer_sha256, out);
}

/* Each chunk is "<hex size>;chunk-signature=<64 hex>\r\n<data>\r\n"; the
 * final one carries no data. */
int64_t ferry_sigv4_chunked_length(int64_t data_len, int64_t chunk_size)
{
    if (data_len < 0 || chunk_size <= 0)
        return -1;
    const int64_t overhead = (int64_t)strlen(";chunk-signature=") + 64 + 2 + 2;
    int64_t total = 0;
    int64_t full = data_len / chunk_size, rest = data_len % chunk_size;
    char hex[32];
    int hex_len = snprintf(hex, sizeof(hex), "%llx", (unsigned long long)chunk_size);
    total += full * (hex_len + overhead + chunk_size);
    if (rest > 0) {
        hex_len = snprintf(hex, sizeof(hex), "%llx", (unsigned long long)rest);
        total += hex_len + overhead + rest;
    }
    return total + 1 + overhead;
}
