/* RS256 JSON Web Signatures with OpenSSL (see ferry/jwt.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "ferry/jwt.h"

static const char ferry_b64url_chars[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

char *ferry_base64url_encode(const void *data, size_t len)
{
    const unsigned char *p = data;
    char *out = malloc(len / 3 * 4 + 5);
    if (out == NULL)
        return NULL;
    size_t o = 0, i = 0;
    for (; i + 2 < len; i += 3) {
        unsigned v = (unsigned)p[i] << 16 | (unsigned)p[i + 1] << 8 | p[i + 2];
        out[o++] = ferry_b64url_chars[v >> 18 & 63];
        out[o++] = ferry_b64url_chars[v >> 12 & 63];
        out[o++] = ferry_b64url_chars[v >> 6 & 63];
        out[o++] = ferry_b64url_chars[v & 63];
    }
    if (len - i == 1) {
        unsigned v = (unsigned)p[i] << 16;
        out[o++] = ferry_b64url_chars[v >> 18 & 63];
        out[o++] = ferry_b64url_chars[v >> 12 & 63];
    } else if (len - i == 2) {
        unsigned v = (unsigned)p[i] << 16 | (unsigned)p[i + 1] << 8;
        out[o++] = ferry_b64url_chars[v >> 18 & 63];
        out[o++] = ferry_b64url_chars[v >> 12 & 63];
        out[o++] = ferry_b64url_chars[v >> 6 & 63];
    }
    out[o] = '\0';
    return out;
}

static int ferry_b64url_value(char c)
{
    const char *at = c ? strchr(ferry_b64url_chars, c) : NULL;
    if (at)
        return (int)(at - ferry_b64url_chars);
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

unsigned char *ferry_base64url_decode(const char *text, size_t *out_len)
{
    size_t n = strlen(text);
    while (n > 0 && text[n - 1] == '=')
        n--;
    if (n % 4 == 1)
        return NULL;
    unsigned char *out = malloc(n / 4 * 3 + 4);
    if (out == NULL)
        return NULL;
    size_t o = 0;
    unsigned acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        int v = ferry_b64url_value(text[i]);
        if (v < 0) {
            free(out);
            return NULL;
        }
        acc = (acc << 6 | (unsigned)v) & 0xffffff;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits & 0xff);
        }
    }
    out[o] = '\0';
    if (out_len)
        *out_len = o;
    return out;
}

int ferry_rs256_sign(const char *pem_key, const void *data, size_t len, char **sig_b64url,
                     ferry_error_detail *err)
{
    *sig_b64url = NULL;
    BIO *bio = BIO_new_mem_buf(pem_key, -1);
    EVP_PKEY *key = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    if (key == NULL || EVP_PKEY_base_id(key) != EVP_PKEY_RSA) {
        ERR_clear_error();
        EVP_PKEY_free(key);
        return ferry_error_set(err, FERRY_EINVAL, 0, NULL,
                               "the private key is not a PEM RSA private key");
    }
    int rc = FERRY_ENOMEM;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned char *sig = NULL;
    size_t sig_len = 0;
    if (md && EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) == 1 &&
        EVP_DigestSignUpdate(md, data, len) == 1 && EVP_DigestSignFinal(md, NULL, &sig_len) == 1 &&
        (sig = malloc(sig_len)) != NULL && EVP_DigestSignFinal(md, sig, &sig_len) == 1 &&
        (*sig_b64url = ferry_base64url_encode(sig, sig_len)) != NULL)
        rc = 0;
    ERR_clear_error();
    free(sig);
    EVP_MD_CTX_free(md);
    EVP_PKEY_free(key);
    if (rc != 0)
        ferry_error_set(err, rc, 0, NULL, "RS256: cannot sign");
    return rc;
}

int ferry_rs256_verify(const char *pem_pub, const void *data, size_t len, const char *sig_b64url)
{
    BIO *bio = BIO_new_mem_buf(pem_pub, -1);
    EVP_PKEY *key = bio ? PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    if (key == NULL) {
        ERR_clear_error();
        return FERRY_EINVAL;
    }
    size_t sig_len = 0;
    unsigned char *sig = ferry_base64url_decode(sig_b64url, &sig_len);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int ok = sig && md && EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, key) == 1 &&
             EVP_DigestVerifyUpdate(md, data, len) == 1 &&
             EVP_DigestVerifyFinal(md, sig, sig_len) == 1;
    ERR_clear_error();
    free(sig);
    EVP_MD_CTX_free(md);
    EVP_PKEY_free(key);
    return ok ? 0 : FERRY_EAUTH;
}

int ferry_jwt_rs256(const char *pem_key, const char *header_json, const char *claims_json,
                    char **out, ferry_error_detail *err)
{
    *out = NULL;
    char *h = ferry_base64url_encode(header_json, strlen(header_json));
    char *c = ferry_base64url_encode(claims_json, strlen(claims_json));
    char *input = NULL, *sig = NULL;
    int rc = FERRY_ENOMEM;
    if (h && c && (input = malloc(strlen(h) + strlen(c) + 2)) != NULL) {
        strcpy(input, h);
        strcat(input, ".");
        strcat(input, c);
        rc = ferry_rs256_sign(pem_key, input, strlen(input), &sig, err);
    } else
        ferry_error_set(err, rc, 0, NULL, "JWT: out of memory");
    if (rc == 0) {
        size_t n = strlen(input) + strlen(sig) + 2;
        if ((*out = malloc(n)) == NULL)
            rc = ferry_error_set(err, FERRY_ENOMEM, 0, NULL, "JWT: out of memory");
        else
            snprintf(*out, n, "%s.%s", input, sig);
    }
    free(h);
    free(c);
    free(input);
    free(sig);
    return rc;
}
