/* ferry plugin SDK: compact JSON Web Signatures with RS256 (RFC 7515/7519).
 *
 * What an OAuth2 JWT bearer flow (RFC 7523) needs: base64url without
 * padding, an RSASSA-PKCS1-v1_5 SHA-256 signature with a PEM private key
 * (PKCS#1 or PKCS#8), and header.claims.signature. The key is a secret:
 * nothing here logs it, and error texts never quote it.
 */
#ifndef FERRY_JWT_H
#define FERRY_JWT_H

#include <stddef.h>

#include "ferry/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* base64url of `len` bytes without '=' padding: malloc'd, NULL when out of
 * memory. */
char *ferry_base64url_encode(const void *data, size_t len);
/* Decodes base64url (padding optional) into a malloc'd buffer (NUL added,
 * not counted in *out_len). NULL on bad input or out of memory. */
unsigned char *ferry_base64url_decode(const char *text, size_t *out_len);

/* The RS256 signature of `data` with the PEM private key `pem_key`, as
 * base64url: 0, FERRY_EINVAL (not an RSA private key) or FERRY_ENOMEM. */
int ferry_rs256_sign(const char *pem_key, const void *data, size_t len, char **sig_b64url,
                     ferry_error_detail *err);
/* 0 when `sig_b64url` is the RS256 signature of `data` by the PEM public
 * key (or certificate-less SubjectPublicKeyInfo) `pem_pub`, else
 * FERRY_EAUTH (FERRY_EINVAL for a bad key). For tests and verifiers. */
int ferry_rs256_verify(const char *pem_pub, const void *data, size_t len, const char *sig_b64url);

/* b64url(header_json) "." b64url(claims_json) "." b64url(RS256 signature),
 * the bytes of both JSON texts signed as given: malloc'd in *out. */
int ferry_jwt_rs256(const char *pem_key, const char *header_json, const char *claims_json,
                    char **out, ferry_error_detail *err);

#ifdef __cplusplus
}
#endif
#endif
