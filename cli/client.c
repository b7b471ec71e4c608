/* Blocking HTTP to ferryd with libcurl's easy interface: one request at a
 * time is all a command line needs. */
#include "cli.h"

#include "util.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Error answers are short; a body beyond this is not ferryd talking. */
#define FERRY__MAX_BODY (256 * 1024 * 1024)

typedef struct ferry__xfer {
    CURL *curl;
    const ferry_cli_request *req;
    ferry_cli_response *res;
    size_t cap;
    int too_big;
} ferry__xfer;

static int ferry__is_2xx(long status)
{
    return status >= 200 && status < 300;
}

static int ferry__keep(ferry__xfer *x, const char *data, size_t n)
{
    ferry_cli_response *res = x->res;
    if (res->body_len + n + 1 > FERRY__MAX_BODY) {
        x->too_big = 1;
        return FERRY_ETOOBIG;
    }
    FERRY_XGROW(res->body, x->cap, res->body_len + n + 1);
    memcpy(res->body + res->body_len, data, n);
    res->body_len += n;
    res->body[res->body_len] = '\0';
    return 0;
}

/* A 2xx body goes to the sink as it arrives; anything else (an error text)
 * is kept, so a stream's error answer can still be shown. */
static size_t ferry__on_body(char *data, size_t size, size_t nmemb, void *arg)
{
    ferry__xfer *x = arg;
    size_t n = size * nmemb;
    long status = 0;
    curl_easy_getinfo(x->curl, CURLINFO_RESPONSE_CODE, &status);
    if (x->req->sink != NULL && ferry__is_2xx(status)) {
        if (x->req->sink(x->req->sink_arg, data, n) != 0) {
            x->res->sink_failed = 1;
            return 0;
        }
        return n;
    }
    return ferry__keep(x, data, n) == 0 ? n : 0;
}

static int ferry__on_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                              curl_off_t ulnow)
{
    (void)dltotal;
    (void)dlnow;
    ferry__xfer *x = arg;
    if (ultotal > 0)
        x->req->progress(x->req->progress_arg, (int64_t)ulnow, (int64_t)ultotal);
    return 0;
}

static struct curl_slist *ferry__headers(const ferry_cli *cli, const ferry_cli_request *req)
{
    struct curl_slist *h = NULL;
    h = curl_slist_append(h, "Accept: application/json");
    /* curl would wait for "100 Continue" before big bodies; ferryd need not send it. */
    h = curl_slist_append(h, "Expect:");
    if (req->json != NULL)
        h = curl_slist_append(h, "Content-Type: application/json");
    if (req->upload_path != NULL) {
        char *ct = ferry_asprintf("Content-Type: %s",
                                  req->upload_type ? req->upload_type : "application/octet-stream");
        h = curl_slist_append(h, ct);
        free(ct);
    }
    /* The token is for ferryd only: never sent where it redirects to. */
    if (req->url == NULL && cli->token != NULL && cli->token[0] != '\0') {
        char *auth = ferry_asprintf("Authorization: Bearer %s", cli->token);
        h = curl_slist_append(h, auth);
        free(auth);
    }
    return h;
}

/* The words curl's own message would bury: "Connection refused". */
static void ferry__reason(CURL *curl, CURLcode rc, const char *errbuf, ferry_cli_response *res)
{
    long os_errno = 0;
    curl_easy_getinfo(curl, CURLINFO_OS_ERRNO, &os_errno);
    if ((rc == CURLE_COULDNT_CONNECT || rc == CURLE_RECV_ERROR || rc == CURLE_SEND_ERROR) &&
        os_errno != 0)
        snprintf(res->reason, sizeof(res->reason), "%s", strerror((int)os_errno));
    else if (errbuf[0] != '\0')
        snprintf(res->reason, sizeof(res->reason), "%s", errbuf);
    else
        snprintf(res->reason, sizeof(res->reason), "%s", curl_easy_strerror(rc));
}

static void ferry__set_body(CURL *curl, const ferry_cli_request *req, char **json_text,
                            FILE **upload)
{
    if (strcmp(req->method, "HEAD") == 0) {
        curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
    } else if (req->json != NULL) {
        *json_text = json_dumps(req->json, JSON_COMPACT);
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, *json_text);
    } else if (req->upload_path != NULL && *upload != NULL) {
        fseek(*upload, 0, SEEK_END);
        curl_off_t size = (curl_off_t)ftell(*upload);
        rewind(*upload);
        curl_easy_setopt(curl, CURLOPT_POST, 1L);
        curl_easy_setopt(curl, CURLOPT_READDATA, *upload);
        curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, size);
        /* ferryd takes a large body over HTTP/1.1 only (core/http/server.c). */
        curl_easy_setopt(curl, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    } else if (strcmp(req->method, "POST") == 0) {
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, "");
    }
    if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0)
        curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, req->method);
}

void ferry_cli_http(const ferry_cli *cli, const ferry_cli_request *req, ferry_cli_response *res)
{
    memset(res, 0, sizeof(*res));
    res->body = ferry_xcalloc(1, 1);
    CURL *curl = curl_easy_init();
    if (curl == NULL) {
        snprintf(res->reason, sizeof(res->reason), "cannot start libcurl");
        return;
    }
    ferry__xfer x = {.curl = curl, .req = req, .res = res, .cap = 1};
    char errbuf[CURL_ERROR_SIZE] = "";
    char *url = req->url ? ferry_strdup(req->url) : ferry_asprintf("%s%s", cli->server, req->path);
    char *json_text = NULL;
    FILE *upload = NULL;
    if (req->upload_path != NULL && (upload = fopen(req->upload_path, "rb")) == NULL) {
        snprintf(res->reason, sizeof(res->reason), "cannot read %s: %s", req->upload_path,
                 strerror(errno));
        goto out;
    }
    struct curl_slist *headers = ferry__headers(cli, req);
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_USERAGENT, "ferry/" FERRY_VERSION);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, req->timeout_s);
    /* Long log streams may be quiet for hours; keepalive notices a dead peer. */
    curl_easy_setopt(curl, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(curl, CURLOPT_TCP_KEEPIDLE, 30L);
    curl_easy_setopt(curl, CURLOPT_TCP_KEEPINTVL, 10L);
    /* https:// is verified (peer and host name) by libcurl's default; --ca
     * only says which CAs to trust. */
    if (cli->ca != NULL && req->url == NULL)
        curl_easy_setopt(curl, CURLOPT_CAINFO, cli->ca);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, ferry__on_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &x);
    if (req->progress != NULL) {
        curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
        curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, ferry__on_progress);
        curl_easy_setopt(curl, CURLOPT_XFERINFODATA, &x);
    }
    ferry__set_body(curl, req, &json_text, &upload);
    CURLcode rc = curl_easy_perform(curl);
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &res->status);
    char *location = NULL;
    if (res->status >= 300 && res->status < 400 &&
        curl_easy_getinfo(curl, CURLINFO_REDIRECT_URL, &location) == CURLE_OK && location)
        res->location = ferry_strdup(location);
    res->connected = res->status != 0;
    res->transport_ok = rc == CURLE_OK;
    res->cert_failed = rc == CURLE_PEER_FAILED_VERIFICATION || rc == CURLE_SSL_CACERT_BADFILE;
    if (x.too_big)
        snprintf(res->reason, sizeof(res->reason), "the answer is larger than %d MiB",
                 FERRY__MAX_BODY >> 20);
    else if (rc != CURLE_OK)
        ferry__reason(curl, rc, errbuf, res);
    curl_slist_free_all(headers);
out:
    if (upload != NULL)
        fclose(upload);
    free(json_text);
    free(url);
    curl_easy_cleanup(curl);
}

void ferry_cli_response_free(ferry_cli_response *res)
{
    free(res->body);
    res->body = NULL;
    free(res->location);
    res->location = NULL;
}

/* ferryd's {"error": "..."} when the body is one, else its first line. */
static char *ferry__error_text(const ferry_cli_response *res)
{
    json_t *root = json_loadb(res->body, res->body_len, 0, NULL);
    const char *msg = root ? ferry_cli_str(root, "error") : "";
    char *out = NULL;
    if (msg[0] != '\0') {
        out = ferry_strdup(msg);
    } else if (res->body_len > 0 && root == NULL) {
        size_t n = strcspn(res->body, "\r\n");
        out = ferry_asprintf("HTTP %ld: %.*s", res->status, (int)(n > 200 ? 200 : n), res->body);
    } else {
        out = ferry_asprintf("HTTP %ld", res->status);
    }
    json_decref(root);
    return out;
}

int ferry_cli_report(const ferry_cli *cli, const ferry_cli_response *res)
{
    if (res->cert_failed) {
        fprintf(stderr,
                "ferry: cannot verify ferryd's certificate at %s: %s (pass --ca FILE or set "
                "FERRY_CA)\n",
                cli->server, res->reason);
        return FERRY_EXIT_UNREACHABLE;
    }
    if (!res->connected && strncmp(cli->server, "http://", 7) == 0 &&
        strstr(res->reason, "Empty reply") != NULL) {
        /* What a TLS port does with plain HTTP: it hangs up. */
        fprintf(stderr,
                "ferry: ferryd at %s closed the connection without an answer: %s (does it "
                "serve https://? then use --server https://...)\n",
                cli->server, res->reason);
        return FERRY_EXIT_UNREACHABLE;
    }
    if (!res->connected) {
        fprintf(stderr,
                "ferry: cannot reach ferryd at %s: %s (is ferryd running? set --server or "
                "FERRY_SERVER)\n",
                cli->server, res->reason);
        return FERRY_EXIT_UNREACHABLE;
    }
    if (!res->transport_ok && !res->sink_failed && ferry__is_2xx(res->status)) {
        fprintf(stderr, "ferry: lost the connection to ferryd at %s: %s\n", cli->server,
                res->reason);
        return FERRY_EXIT_UNREACHABLE;
    }
    char *msg = ferry__error_text(res);
    int rc = FERRY_EXIT_REFUSED;
    if (res->status == 401) {
        /* Its own exit status: a script can tell "log in" from "bad request". */
        int have = cli->token != NULL && cli->token[0] != '\0';
        fprintf(stderr, "ferry: ferryd at %s refused the request: %s (%s)\n", cli->server, msg,
                have ? "check FERRY_TOKEN: ferryd does not accept that token"
                     : "set FERRY_TOKEN to your token");
        rc = FERRY_EXIT_AUTH;
    } else {
        fprintf(stderr, "ferry: %s\n", msg);
    }
    free(msg);
    return rc;
}

int ferry_cli_call(const ferry_cli *cli, const char *method, const char *path, json_t *body,
                   long timeout_s, json_t **out)
{
    ferry_cli_request req = {.method = method, .path = path, .json = body, .timeout_s = timeout_s};
    ferry_cli_response res;
    ferry_cli_http(cli, &req, &res);
    int rc = FERRY_EXIT_OK;
    if (!res.transport_ok || !ferry__is_2xx(res.status)) {
        rc = ferry_cli_report(cli, &res);
    } else if (out != NULL) {
        json_error_t jerr;
        *out = json_loadb(res.body, res.body_len, 0, &jerr);
        if (*out == NULL) {
            fprintf(stderr, "ferry: ferryd's answer to %s %s is not JSON: %s\n", method, path,
                    jerr.text);
            rc = FERRY_EXIT_FAILED;
        }
    }
    ferry_cli_response_free(&res);
    return rc;
}

char *ferry_cli_escape(const char *s)
{
    char *e = curl_easy_escape(NULL, s, 0);
    if (e == NULL)
        abort();
    char *out = ferry_strdup(e);
    curl_free(e);
    return out;
}

char *ferry_cli_id_path(const char *collection, const char *id, const char *suffix)
{
    /* "#7" is how executions and pipelines are shown; accept it back as the counter. */
    if (id[0] == '#' && id[1] != '\0')
        id++;
    char *e = ferry_cli_escape(id);
    char *path = ferry_asprintf("/v1/%s/%s%s", collection, e, suffix ? suffix : "");
    free(e);
    return path;
}

char *ferry_cli_exec_path(const char *id, const char *suffix)
{
    return ferry_cli_id_path("executions", id, suffix);
}

char *ferry_cli_add_query(char *path, const char *key, const char *value)
{
    if (value == NULL)
        return path;
    char *e = ferry_cli_escape(value);
    char *out = ferry_asprintf("%s%c%s=%s", path, strchr(path, '?') ? '&' : '?', key, e);
    free(e);
    free(path);
    return out;
}

int ferry_cli_exec_call(const ferry_cli *cli, const char *method, const char *id,
                        const char *suffix, long timeout_s, json_t **out)
{
    char *path = ferry_cli_exec_path(id, suffix);
    int rc = ferry_cli_call(cli, method, path, NULL, timeout_s, out);
    free(path);
    return rc;
}

int ferry_cli_resolve_id(const ferry_cli *cli, const char *id, const char *project, char **uuid)
{
    if (project == NULL || project[0] == '\0') {
        *uuid = ferry_strdup(id);
        return FERRY_EXIT_OK;
    }
    char *query = ferry_cli_add_query(ferry_strdup(""), "project", project);
    json_t *exec = NULL;
    int rc = ferry_cli_exec_call(cli, "GET", id, query, 60, &exec);
    if (rc == FERRY_EXIT_OK) {
        const char *got = ferry_cli_str(exec, "id");
        *uuid = ferry_strdup(got[0] ? got : id);
    }
    json_decref(exec);
    free(query);
    return rc;
}

int ferry_cli_fetch_exec(const ferry_cli *cli, const ferry_cli_args *args, const char *method,
                         const char *suffix, char **uuid, json_t **out)
{
    char *resolved = NULL;
    int rc = ferry_cli_resolve_id(cli, args->id, args->project, &resolved);
    if (rc == FERRY_EXIT_OK)
        rc = ferry_cli_exec_call(cli, method, resolved, suffix, 60, out);
    if (uuid != NULL)
        *uuid = resolved;
    else
        free(resolved);
    return rc;
}
