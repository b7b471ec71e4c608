/* ferry plugin SDK: AWS Signature Version 4 (AWS4-HMAC-SHA256).
 *
 * One signer for every AWS service (S3, EC2's Query API, STS...): it signs a
 * request with an Authorization header, or presigns it into a URL that a
 * client without credentials can use until it expires. The rules that differ
 * between services are picked from the service name (see
 * ferry_sigv4_service_rules()) and can be set explicitly.
 *
 * Nothing here touches the network, the clock or the environment: the caller
 * passes the time and the credentials, so that signing is a pure function
 * and tests can pin it to AWS's published vectors. Results never go to a log
 * from here; the secret key and the signing key never leave the call.
 */
#ifndef FERRY_SIGV4_H
#define FERRY_SIGV4_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Payload hashes with a meaning of their own (the x-amz-content-sha256
 * values S3 accepts besides a hex SHA-256). */
#define FERRY_SIGV4_UNSIGNED_PAYLOAD "UNSIGNED-PAYLOAD"
#define FERRY_SIGV4_STREAMING_PAYLOAD "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
/* SHA-256 of an empty body. */
#define FERRY_SIGV4_EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

/* Longest validity of a presigned URL AWS accepts: 7 days. */
#define FERRY_SIGV4_MAX_EXPIRES_S 604800

/* Rules that differ between services. */
enum {
    /* Use the rule bits of `rules` as given, not the service's. */
    FERRY_SIGV4_RULES_EXPLICIT = 1u << 0,
    /* Remove "." and ".." segments and empty segments ("//") from the path
     * before signing. Every service but S3, where "a//b" and "a/./b" are
     * keys of their own. */
    FERRY_SIGV4_NORMALIZE_PATH = 1u << 1,
    /* Percent-encode the path as sent once more ("%20" becomes "%2520").
     * Every service but S3. Without it the path is decoded and encoded
     * once, so "/a b" and "/a%20b" sign alike (S3's rule). */
    FERRY_SIGV4_DOUBLE_ENCODE = 1u << 2,
    /* Header signing adds and signs x-amz-content-sha256 (S3 requires
     * it); presigning then signs UNSIGNED-PAYLOAD unless told a hash. */
    FERRY_SIGV4_CONTENT_SHA256 = 1u << 3,
    /* The session token travels unsigned: it is added to the request (or
     * the URL) after the signature. A few services ask for that; most
     * sign it. */
    FERRY_SIGV4_TOKEN_UNSIGNED = 1u << 4,
};

typedef struct ferry_sigv4_request {
    size_t struct_size; /* sizeof(ferry_sigv4_request) */
    /* Credentials. The session token is NULL or "" for long-term keys. */
    const char *access_key_id;
    const char *secret_access_key;
    const char *session_token;
    const char *service; /* "s3", "ec2", "sts"... */
    const char *region;  /* "us-east-1" */
    const char *method;  /* "GET", "PUT"... */
    /* The Host header as it will be sent ("bucket.s3.amazonaws.com",
     * "127.0.0.1:4569"): signed. NULL when `headers` holds a Host line. */
    const char *host;
    /* The path as it goes into the URL, percent-encoded ("/photos/a%20b.jpg");
     * NULL or "" is "/". ferry_sigv4_uri_encode() makes one from a key. */
    const char *path;
    /* The query string as it goes into the URL, without '?'; NULL or "" for
     * none. Parameters without '=' sign as "name=". */
    const char *query;
    /* More headers to sign, "Name: value" (the form ferry_http_options
     * takes), NULL-terminated; NULL for none. Names are case-insensitive;
     * repeated names sign as one comma-joined value, in order. The signer
     * owns X-Amz-Date, X-Amz-Content-SHA256, X-Amz-Security-Token and
     * Authorization: passing one of them is FERRY_EINVAL. */
    const char *const *headers;
    /* Hex SHA-256 of the body, or FERRY_SIGV4_UNSIGNED_PAYLOAD /
     * FERRY_SIGV4_STREAMING_PAYLOAD. NULL: the hash of an empty body, except
     * presigned URLs under FERRY_SIGV4_CONTENT_SHA256, which sign
     * UNSIGNED-PAYLOAD (the body is not known when a URL is handed out). */
    const char *payload_hash;
    int64_t time; /* the signing time, seconds since the epoch (UTC) */
    /* 0: the service's rules; else FERRY_SIGV4_RULES_EXPLICIT and the rule
     * bits wanted. */
    unsigned rules;
    /* Presigning only: seconds the URL stays valid, 1..FERRY_SIGV4_MAX_EXPIRES_S. */
    int expires_s;
} ferry_sigv4_request;

/* What signing produced. Every pointer is owned by the struct; release it
 * with ferry_sigv4_signature_free(). */
typedef struct ferry_sigv4_signature {
    size_t struct_size;
    char amz_date[17];       /* "20150830T123600Z" */
    char signature[65];      /* hex HMAC-SHA256 */
    char *scope;             /* "20150830/us-east-1/s3/aws4_request" */
    char *signed_headers;    /* "host;x-amz-date" */
    char *canonical_request; /* what was signed, for tests and debugging */
    char *string_to_sign;
    /* ferry_sigv4_sign(): "AWS4-HMAC-SHA256 Credential=..., SignedHeaders=...,
     * Signature=..." and the headers to add to the request, "Name: value",
     * NULL-terminated: X-Amz-Date, X-Amz-Content-SHA256 (S3),
     * X-Amz-Security-Token (with a session token), Authorization. */
    char *authorization;
    char **headers;
    /* ferry_sigv4_presign(): the whole query string to send, without '?':
     * the request's own parameters and the X-Amz-* ones, X-Amz-Signature
     * last. The URL is scheme://host + path + "?" + query. It is a
     * credential: never log it (ferry_http_redact_url()). */
    char *query;
} ferry_sigv4_signature;

/* The rule bits AWS applies to `service`: S3 (and its variants "s3-outposts",
 * "s3-object-lambda", "s3express") gets FERRY_SIGV4_CONTENT_SHA256, every
 * other service FERRY_SIGV4_NORMALIZE_PATH | FERRY_SIGV4_DOUBLE_ENCODE. */
unsigned ferry_sigv4_service_rules(const char *service);

/* Sign `req` for an Authorization header. 0, or FERRY_EINVAL (a required
 * field missing, a header the signer owns), FERRY_ENOMEM. On failure `out`
 * holds nothing to free, but freeing it is harmless. */
int ferry_sigv4_sign(const ferry_sigv4_request *req, ferry_sigv4_signature *out);
/* Presign `req` into a query string (see `query` above). Only Host and the
 * given headers are signed, so a client must send exactly those. */
int ferry_sigv4_presign(const ferry_sigv4_request *req, ferry_sigv4_signature *out);
void ferry_sigv4_signature_free(ferry_sigv4_signature *sig);

/* ---- building blocks, shared by callers that sign more than requests ---- */

/* Percent-encode `len` bytes of `s` as SigV4 wants: everything but
 * A-Z a-z 0-9 - _ . ~ (and '/' when keep_slash) as %XX in upper case.
 * A key "dir/a b+c" becomes "dir/a%20b%2Bc" with keep_slash. Returns a
 * malloc'd string, NULL when out of memory. */
char *ferry_sigv4_uri_encode(const char *s, size_t len, int keep_slash);

/* "20150830T123600Z" for a time in seconds since the epoch; -1 when the
 * time cannot be written in four digits of year. */
int ferry_sigv4_amz_date(int64_t time, char out[17]);

/* Hex SHA-256 of a buffer. */
void ferry_sigv4_sha256_hex(const void *data, size_t len, char out[65]);
/* Hex SHA-256 of `length` bytes of a file from `offset` (length < 0: to the
 * end). Blocking: call it from a worker thread. 0, FERRY_ENOENT, FERRY_EIO
 * (the file is shorter than asked, or a read failed). */
int ferry_sigv4_sha256_file(const char *path, int64_t offset, int64_t length, char out[65]);

/* The signing key: HMAC chain over "AWS4" + secret, the date (YYYYMMDD),
 * region, service and "aws4_request". Treat it as a secret. */
int ferry_sigv4_signing_key(const char *secret_access_key, const char *date8, const char *region,
                            const char *service, unsigned char key[32]);

/* ---- aws-chunked uploads (Content-Encoding: aws-chunked, S3) ----
 * The request is signed with payload_hash FERRY_SIGV4_STREAMING_PAYLOAD;
 * its signature seeds the chain, and each chunk (the last one empty) is
 * signed with the signature before it. */

/* Signature of one chunk whose data hashes to `chunk_sha256`. */
int ferry_sigv4_chunk_signature(const unsigned char key[32], const char *amz_date,
                                const char *scope, const char *previous_signature,
                                const char *chunk_sha256, char out[65]);
/* Signature of the trailing headers, whose "name:value\n" lines hash to
 * `trailer_sha256`, after the last chunk. */
int ferry_sigv4_trailer_signature(const unsigned char key[32], const char *amz_date,
                                  const char *scope, const char *previous_signature,
                                  const char *trailer_sha256, char out[65]);
/* Content-Length of an aws-chunked body carrying `data_len` bytes in chunks
 * of `chunk_size` (the last one shorter, then the empty final chunk). */
int64_t ferry_sigv4_chunked_length(int64_t data_len, int64_t chunk_size);

#ifdef __cplusplus
}
#endif
#endif
