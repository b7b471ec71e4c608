/* RS256 and the service-account assertion (sdk/src/jwt.c, plugins/gcp)
 * against tests/vectors/gcp: RFC 7515 A.2's published signature, and the
 * google-auth test key's assertion and token request; base64url edges;
 * verification refuses a changed byte; the token answer's parse. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "ferry/jwt.h"
#include "gcp.h"
#include "test.h"
#include "util.h"

static const char *vectors;

static char *read_vector(const char *rel)
{
    char *path = ferry_asprintf("%s/gcp/%s", vectors, rel);
    size_t len;
    char *text = ferry_read_file(path, &len);
    if (text == NULL)
        fprintf(stderr, "cannot read %s\n", path);
    free(path);
    return text;
}

static void strip(char *s)
{
    size_t n = s ? strlen(s) : 0;
    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r'))
        s[--n] = '\0';
}

static void test_base64url(void)
{
    const char *in[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar", "\xfb\xff"};
    const char *out[] = {"", "Zg", "Zm8", "Zm9v", "Zm9vYg", "Zm9vYmE", "Zm9vYmFy", "-_8"};
    for (size_t i = 0; i < 8; i++) {
        char *e = ferry_base64url_encode(in[i], strlen(in[i]));
        CHECK_STR(e, out[i]);
        size_t n = 99;
        unsigned char *d = ferry_base64url_decode(out[i], &n);
        CHECK(d != NULL);
        CHECK_INT(n, strlen(in[i]));
        CHECK(d && memcmp(d, in[i], n) == 0);
        free(e);
        free(d);
    }
    CHECK(ferry_base64url_decode("a", NULL) == NULL);
    CHECK(ferry_base64url_decode("ab$d", NULL) == NULL);
}

/* RFC 7515 A.2: PKCS#1 v1.5 is deterministic, so the signature is exact. */
static void test_rfc7515(void)
{
    char *key = read_vector("rs256_rfc7515_A2/private_key_pkcs8.pem");
    char *pub = read_vector("rs256_rfc7515_A2/public_key.pem");
    char *input = read_vector("rs256_rfc7515_A2/signing_input.txt");
    char *jws = read_vector("rs256_rfc7515_A2/expected_compact_jws.txt");
    strip(input);
    strip(jws);
    char *sig = NULL;
    ferry_error_detail err = {0};
    CHECK_INT(ferry_rs256_sign(key, input, strlen(input), &sig, &err), 0);
    const char *want = jws ? strrchr(jws, '.') + 1 : NULL;
    CHECK_STR(sig, want);
    free(sig);
    CHECK_INT(ferry_rs256_verify(pub, input, strlen(input), want), 0);
    input[3] ^= 1;
    CHECK_INT(ferry_rs256_verify(pub, input, strlen(input), want), FERRY_EAUTH);
    CHECK_INT(ferry_rs256_verify(key, input, strlen(input), want), FERRY_EINVAL);
    CHECK_INT(ferry_rs256_sign("not a key", "x", 1, &sig, &err), FERRY_EINVAL);
    CHECK(strstr(err.message, "not a key") == NULL);
    free(key);
    free(pub);
    free(input);
    free(jws);
}

/* The google-auth test key: header and claims as the vector's bytes give
 * its assertion exactly; gcp's own claims have the same bytes. */
static void test_service_account(void)
{
    char *text = read_vector("service_account_jwt/google-auth-test-service_account.json");
    char *path = ferry_asprintf("%s/gcp/service_account_jwt/sa_jwt_vector.json", vectors);
    json_t *v = json_load_file(path, 0, NULL);
    free(path);
    CHECK(v != NULL);
    gcp_key key;
    ferry_error_detail err = {0};
    CHECK_INT(gcp_key_parse(&key, text, &err), 0);
    CHECK_STR(key.client_email, "service-account@example.com");
    CHECK_STR(key.token_uri, "https://accounts.google.com/o/oauth2/token");
    const char *header = json_string_value(json_object_get(v, "header_json"));
    const char *claims = json_string_value(json_object_get(v, "claims_json"));
    const char *assertion = json_string_value(json_object_get(v, "assertion"));
    char *jwt = NULL;
    CHECK_INT(ferry_jwt_rs256(key.private_key, header, claims, &jwt, &err), 0);
    CHECK_STR(jwt, assertion);
    free(jwt);
    char *mine = gcp_claims_json("service-account@example.com",
                                 "https://www.googleapis.com/auth/compute "
                                 "https://www.googleapis.com/auth/devstorage.read_write",
                                 "https://oauth2.googleapis.com/token", 1700000000);
    CHECK_STR(mine, claims);
    free(mine);
    /* The token request's body. */
    char *body = gcp_token_body(assertion);
    CHECK_STR(body,
              json_string_value(json_object_get(json_object_get(v, "token_request"), "body")));
    free(body);
    /* gcp's assertion: aud is the key's token_uri, exp an hour on, and
     * the signature checks with the public key. */
    char *a = NULL;
    CHECK_INT(gcp_assertion(&key, GCP_SCOPE, 1700000000, &a, &err), 0);
    char *pub = read_vector("service_account_jwt/google-auth-test-publickey.pem");
    char *dot2 = a ? strrchr(a, '.') : NULL;
    CHECK(dot2 != NULL);
    if (dot2) {
        *dot2 = '\0';
        CHECK_INT(ferry_rs256_verify(pub, a, strlen(a), dot2 + 1), 0);
        char *c = strchr(a, '.');
        unsigned char *cj = ferry_base64url_decode(c + 1, NULL);
        CHECK_STR((char *)cj, "{\"iss\":\"service-account@example.com\",\"scope\":\"https://"
                              "www.googleapis.com/auth/compute\",\"aud\":\"https://"
                              "accounts.google.com/o/oauth2/token\",\"iat\":1700000000,"
                              "\"exp\":1700003600}");
        *c = '\0';
        unsigned char *hj = ferry_base64url_decode(a, NULL);
        CHECK_STR((char *)hj, "{\"alg\":\"RS256\",\"typ\":\"JWT\",\"kid\":\"1\"}");
        free(cj);
        free(hj);
    }
    free(a);
    free(pub);
    gcp_key_free(&key);
    free(text);
    json_decref(v);
}

static void test_token_answer(void)
{
    char *t = NULL;
    long exp = 0;
    ferry_error_detail err = {0};
    CHECK_INT(gcp_token_parse("{\"access_token\":\"ya29.x\",\"expires_in\":3599,\"token_type\":"
                              "\"Bearer\"}",
                              &t, &exp, &err),
              0);
    CHECK_STR(t, "ya29.x");
    CHECK_INT(exp, 3599);
    free(t);
    CHECK_INT(gcp_token_parse("{\"error\":\"invalid_grant\",\"error_description\":\"Invalid JWT\"}",
                              &t, &exp, &err),
              FERRY_EAUTH);
    CHECK_STR(err.provider_code, "invalid_grant");
    CHECK_CONTAINS(err.message, "Invalid JWT");
    CHECK_INT(gcp_token_parse("<html>", &t, &exp, &err), FERRY_EPROTO);
    CHECK(t == NULL);
    /* A key file that is not one. */
    gcp_key k;
    CHECK_INT(gcp_key_parse(&k, "{\"type\":\"service_account\",\"client_email\":\"a@b\"}", &err),
              FERRY_ECONFIG);
    CHECK_CONTAINS(err.message, "private_key");
    CHECK_INT(gcp_key_parse(&k, "-----BEGIN PRIVATE KEY-----", &err), FERRY_ECONFIG);
    CHECK(strstr(err.message, "BEGIN") == NULL);
}

int main(void)
{
    vectors = getenv("FERRY_VECTORS_DIR");
    if (vectors == NULL) {
        fprintf(stderr, "FERRY_VECTORS_DIR is not set\n");
        return 1;
    }
    test_base64url();
    test_rfc7515();
    test_service_account();
    test_token_answer();
    TEST_MAIN_END();
}
