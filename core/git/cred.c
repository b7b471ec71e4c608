/* The remote callbacks of a fetch (pool thread): credentials from the
 * project's files, tried once; the SSH host key against ssh_known_hosts;
 * an HTTPS server against ca_file; and giving up when ferryd stops. */
#include <ctype.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "git_int.h"
#include "util.h"

/* The first line of a secret file, without its newline. */
static char *cred__read_secret(const char *path)
{
    size_t len = 0;
    char *s = ferry_read_file(path, &len);
    if (s == NULL)
        return NULL;
    while (len > 0 && (s[len - 1] == '\n' || s[len - 1] == '\r'))
        s[--len] = '\0';
    return s;
}

static void cred__wipe(char *s)
{
    if (s) {
        memset(s, 0, strlen(s));
        free(s);
    }
}

static int cred__acquire(git_credential **out, const char *url, const char *user_from_url,
                         unsigned int allowed, void *payload)
{
    (void)url;
    git__remote_ctx *x = payload;
    const ferry_project *p = x->p;
    if ((allowed & GIT_CREDENTIAL_USERNAME) && !(allowed & GIT_CREDENTIAL_SSH_KEY))
        return git_credential_username_new(out, user_from_url ? user_from_url : "git");
    /* libgit2 asks again, forever, when the server says no: a second ask
     * is the answer. */
    if (++x->attempts > 1) {
        x->auth_failed = 1;
        git_error_set_str(GIT_ERROR_NET, "the server refused the credentials");
        return GIT_EAUTH;
    }
    if ((allowed & GIT_CREDENTIAL_SSH_KEY) && p->ssh_key)
        return git_credential_ssh_key_new(out, user_from_url ? user_from_url : "git", NULL,
                                          p->ssh_key, NULL);
    if ((allowed & GIT_CREDENTIAL_USERPASS_PLAINTEXT) && (p->password_file || p->token_file)) {
        char *pw = cred__read_secret(p->password_file ? p->password_file : p->token_file);
        if (pw == NULL) {
            x->auth_failed = 1;
            git_error_set_str(GIT_ERROR_NET, "the password file cannot be read");
            return GIT_EAUTH;
        }
        const char *user = p->username     ? p->username
                           : user_from_url ? user_from_url
                                           : "x-access-token";
        int rc = git_credential_userpass_plaintext_new(out, user, pw);
        cred__wipe(pw);
        return rc;
    }
    x->auth_failed = 1;
    git_error_set_str(GIT_ERROR_NET, "the server asks for credentials and the project has none");
    return GIT_EAUTH;
}

/* --- SSH host keys --- */

/* The host (and port) `url` connects to, for known_hosts: "host" on port
 * 22, "[host]:port" otherwise. */
static void cred__known_host_name(const char *url, char *out, size_t cap)
{
    const char *h = strstr(url, "://");
    int scp = h == NULL;
    h = h ? h + 3 : url;
    const char *at = strchr(h, '@');
    const char *end = h + strcspn(h, scp ? ":" : "/");
    if (at && at < end)
        h = at + 1;
    char host[256];
    int port = 22;
    const char *colon = scp ? NULL : memchr(h, ':', (size_t)(end - h));
    size_t hl = (size_t)((colon ? colon : end) - h);
    if (hl >= sizeof(host))
        hl = sizeof(host) - 1;
    memcpy(host, h, hl);
    host[hl] = '\0';
    if (colon)
        port = atoi(colon + 1);
    if (port == 22 || port <= 0)
        snprintf(out, cap, "%s", host);
    else
        snprintf(out, cap, "[%s]:%d", host, port);
}

/* Whether the hashed known_hosts name "|1|salt|hash" is `host`. */
static int cred__hashed_match(const char *pat, const char *host)
{
    char salt64[128], hash64[128];
    if (sscanf(pat, "|1|%127[^|]|%127s", salt64, hash64) != 2)
        return 0;
    unsigned char salt[96], hash[96], mac[EVP_MAX_MD_SIZE];
    int sl = EVP_DecodeBlock(salt, (const unsigned char *)salt64, (int)strlen(salt64));
    int hl = EVP_DecodeBlock(hash, (const unsigned char *)hash64, (int)strlen(hash64));
    if (sl < 20 || hl < 20)
        return 0;
    unsigned int ml = 0;
    HMAC(EVP_sha1(), salt, 20, (const unsigned char *)host, strlen(host), mac, &ml);
    return ml == 20 && memcmp(mac, hash, 20) == 0;
}

static int cred__host_listed(const char *names, const char *host)
{
    char buf[1024];
    snprintf(buf, sizeof(buf), "%s", names);
    for (char *save = NULL, *n = strtok_r(buf, ",", &save); n; n = strtok_r(NULL, ",", &save)) {
        if (n[0] == '|' ? cred__hashed_match(n, host) : strcmp(n, host) == 0)
            return 1;
    }
    return 0;
}

/* Whether a key of `host` in the known_hosts file matches the server's:
 * 1 yes, 0 no (or none listed). */
static int cred__known_host_ok(const char *file, const char *host, const git_cert_hostkey *k)
{
    FILE *f = fopen(file, "r");
    if (f == NULL)
        return 0;
    char line[16384];
    int ok = 0;
    while (!ok && fgets(line, sizeof(line), f)) {
        char names[1024], type[64], b64[8192];
        char *l = line;
        while (isspace((unsigned char)*l))
            l++;
        if (*l == '#' || *l == '\0' || *l == '@') /* markers (@revoked...) not supported */
            continue;
        if (sscanf(l, "%1023s %63s %8191s", names, type, b64) != 3)
            continue;
        if (!cred__host_listed(names, host))
            continue;
        unsigned char *raw = ferry_xmalloc(strlen(b64));
        int n = EVP_DecodeBlock(raw, (unsigned char *)b64, (int)strlen(b64));
        size_t pad = 0;
        for (size_t i = strlen(b64); i > 0 && b64[i - 1] == '='; i--)
            pad++;
        if (n > 0) {
            size_t len = (size_t)n - pad;
            if ((k->type & GIT_CERT_SSH_RAW) && k->hostkey_len == len &&
                memcmp(k->hostkey, raw, len) == 0)
                ok = 1;
            if (!ok && (k->type & GIT_CERT_SSH_SHA256)) {
                unsigned char md[32];
                unsigned int ml = 0;
                EVP_Digest(raw, len, md, &ml, EVP_sha256(), NULL);
                ok = ml == 32 && memcmp(md, k->hash_sha256, 32) == 0;
            }
        }
        free(raw);
    }
    fclose(f);
    return ok;
}

/* --- HTTPS with the project's CA --- */

static int cred__x509_ok(const char *ca_file, const char *host, const git_cert_x509 *c, char *why,
                         size_t cap)
{
    const unsigned char *der = c->data;
    X509 *cert = d2i_X509(NULL, &der, (long)c->len);
    if (cert == NULL) {
        snprintf(why, cap, "the server's certificate cannot be read");
        return 0;
    }
    X509_STORE *store = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    int ok = 0;
    if (store && ctx && X509_STORE_load_locations(store, ca_file, NULL) == 1 &&
        X509_STORE_CTX_init(ctx, store, cert, NULL) == 1) {
        if (X509_verify_cert(ctx) == 1) {
            ok = X509_check_host(cert, host, 0, 0, NULL) == 1 ||
                 X509_check_ip_asc(cert, host, 0) == 1;
            if (!ok)
                snprintf(why, cap, "the server's certificate is not for %s", host);
        } else {
            snprintf(why, cap, "the server's certificate is not signed by ca_file: %s",
                     X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
        }
    } else {
        snprintf(why, cap, "ca_file cannot be read");
    }
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    X509_free(cert);
    return ok;
}

static int cred__certificate(git_cert *cert, int valid, const char *host, void *payload)
{
    git__remote_ctx *x = payload;
    if (cert->cert_type == GIT_CERT_HOSTKEY_LIBSSH2) {
        /* No ssh_known_hosts: the server is not checked (as documented). */
        if (x->p->ssh_known_hosts == NULL)
            return 0;
        char name[300];
        cred__known_host_name(x->url, name, sizeof(name));
        if (cred__known_host_ok(x->p->ssh_known_hosts, name, (const git_cert_hostkey *)cert))
            return 0;
        snprintf(x->cert_err, sizeof(x->cert_err), "the host key of %s is not in ssh_known_hosts",
                 name);
        git_error_set_str(GIT_ERROR_SSH, x->cert_err);
        return GIT_ECERTIFICATE;
    }
    if (valid)
        return 0;
    if (cert->cert_type == GIT_CERT_X509 && x->p->ca_file) {
        char why[200] = "";
        if (cred__x509_ok(x->p->ca_file, host, (const git_cert_x509 *)cert, why, sizeof(why)))
            return 0;
        snprintf(x->cert_err, sizeof(x->cert_err), "%s", why);
        git_error_set_str(GIT_ERROR_SSL, x->cert_err);
        return GIT_ECERTIFICATE;
    }
    return GIT_PASSTHROUGH; /* libgit2's own verdict: invalid */
}

static int cred__progress(const git_indexer_progress *stats, void *payload)
{
    (void)stats;
    git__remote_ctx *x = payload;
    return atomic_load(x->cancel) ? GIT_EUSER : 0;
}

static int cred__sideband(const char *str, int len, void *payload)
{
    (void)str;
    (void)len;
    git__remote_ctx *x = payload;
    return atomic_load(x->cancel) ? GIT_EUSER : 0;
}

void git__remote_callbacks(git_remote_callbacks *cb, git__remote_ctx *ctx)
{
    git_remote_init_callbacks(cb, GIT_REMOTE_CALLBACKS_VERSION);
    cb->credentials = cred__acquire;
    cb->certificate_check = cred__certificate;
    cb->transfer_progress = cred__progress;
    cb->sideband_progress = cred__sideband;
    cb->payload = ctx;
}
