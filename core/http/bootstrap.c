/* Bootstrap of remote workers over HTTP: ferryd serves its agent and a
 * script that a new machine runs (by hand, or from cloud user-data) to
 * fetch, verify and start it (what they are: sched/bundle.c).
 *
 *   GET /v1/agent/binary                 the ferry-agent next to ferryd
 *   GET /v1/agent/bundle.tar.gz          bin/ferry-agent and the runtime plugins
 *   GET /v1/agent/bundle.sha256          "<hex>  bundle.tar.gz"
 *   GET /v1/agent/bootstrap.sh?environment=NAME
 *
 * None needs a token: they hold no secret (the machine brings its own
 * bootstrap or join token), and a machine that has no token for ferryd yet
 * must be able to fetch them. A request that comes while the bundle is
 * (re)built waits for it.
 */
#include "bootstrap.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bundle.h"
#include "config.h"
#include "log.h"
#include "util.h"

typedef enum boot_what { BOOT_BINARY, BOOT_BUNDLE, BOOT_SHA, BOOT_SCRIPT } boot_what;

/* A request waiting for the bundle. */
typedef struct boot_waiter {
    ferry_held *held;
    boot_what what;
    char *env;
    char *url;
} boot_waiter;

/* ---- answers ---- */

static void boot_send_text(h2o_req_t *req, const char *content_type, const char *text)
{
    req->res.status = 200;
    req->res.reason = "OK";
    req->res.content_length = strlen(text); /* the connection stays usable */
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, content_type,
                   strlen(content_type));
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL,
                   H2O_STRLIT("no-cache"));
    h2o_send_inline(req, text, strlen(text));
}

static void boot_send_file(h2o_req_t *req, const char *path, const char *sha,
                           const char *content_type)
{
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("x-ferry-sha256"), 0, NULL, sha,
                          strlen(sha));
    if (h2o_file_send(req, 200, "OK", path, h2o_iovec_init(content_type, strlen(content_type)),
                      H2O_FILE_FLAG_NO_ETAG) != 0)
        ferry_http_error(req, 404, NULL, "%s is gone", path);
}

static void boot_answer(ferryd *d, h2o_req_t *req, const ferry_bundle_info *b, boot_what what,
                        const char *env, const char *url)
{
    char text[128];
    switch (what) {
    case BOOT_BINARY:
        boot_send_file(req, b->agent_path, b->agent_sha256, "application/octet-stream");
        break;
    case BOOT_BUNDLE:
        boot_send_file(req, b->bundle_path, b->sha256, "application/gzip");
        break;
    case BOOT_SHA:
        snprintf(text, sizeof(text), "%s  bundle.tar.gz\n", b->sha256);
        boot_send_text(req, "text/plain; charset=utf-8", text);
        break;
    case BOOT_SCRIPT: {
        const ferry_env_config *e = ferry_config_env(&d->cfg, env);
        if (e == NULL) { /* configured at the request; a reload could drop it */
            ferry_http_error(req, 404, "environment", "no environment named '%s'", env);
            break;
        }
        /* The CA is public; handing it over lets user-data carry the trust
         * anchor to a new machine. */
        char *ca = d->cfg.tls_ca ? ferry_read_file(d->cfg.tls_ca, NULL) : NULL;
        if (d->cfg.tls_ca && ca == NULL)
            ferry_warn("bootstrap script: cannot read %s: %s", d->cfg.tls_ca, strerror(errno));
        char *script = ferry_bootstrap_script(e, url, b->sha256, ca);
        free(ca);
        boot_send_text(req, "text/x-shellscript; charset=utf-8", script);
        free(script);
        break;
    }
    }
}

static void boot_waiter_free(boot_waiter *w)
{
    free(w->env);
    free(w->url);
    free(w);
}

/* The bundle a request waited for is built, or could not be: it gets the
 * bundle last built (after a failed rebuild, the one before), if any. */
static void boot_built(ferryd *d, int status, void *arg)
{
    (void)status;
    boot_waiter *w = arg;
    h2o_req_t *req = ferry_held_req(w->held);
    ferry_bundle_info b;
    if (req && ferry_bundle_last(&b) == 0)
        boot_answer(d, req, &b, w->what, w->env, w->url);
    else if (req)
        ferry_http_error(req, 500, NULL, "could not build the agent bundle: %s",
                         b.error ? b.error : "cancelled");
    ferry_held_release(w->held);
    boot_waiter_free(w);
}

/* ---- routing ---- */

/* A Host header a machine could reach us by: host or [v6] with a port. */
static int boot_host_ok(h2o_iovec_t host)
{
    if (host.len == 0 || host.len > 255)
        return 0;
    for (size_t i = 0; i < host.len; i++) {
        char c = host.base[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '-' || c == ':' || c == '[' || c == ']'))
            return 0;
    }
    return 1;
}

/* public_url when it is set. Else the URL the machine reached us by: the
 * address ferryd listens on (0.0.0.0, a private name) may mean nothing to
 * it. Without a Host header, ferryd's own. */
static char *boot_server_url(ferry_http_req *r)
{
    h2o_req_t *req = r->req;
    if (r->d->cfg.public_url)
        return ferry_strdup(r->d->cfg.public_url);
    /* Without a Host header h2o supplies the host entry's name, which is
     * "default" (server.c). */
    if (req->input.authority.base == NULL || !boot_host_ok(req->input.authority) ||
        h2o_memis(req->input.authority.base, req->input.authority.len, H2O_STRLIT("default")))
        return ferry_strdup(r->d->server_url);
    const char *scheme = req->input.scheme == &H2O_URL_SCHEME_HTTPS ? "https" : "http";
    return ferry_asprintf("%s://%.*s", scheme, (int)req->input.authority.len,
                          req->input.authority.base);
}

static int boot_what_of(const char *seg, boot_what *what)
{
    static const struct {
        const char *name;
        boot_what what;
    } names[] = {{"binary", BOOT_BINARY},
                 {"bundle.tar.gz", BOOT_BUNDLE},
                 {"bundle.sha256", BOOT_SHA},
                 {"bootstrap.sh", BOOT_SCRIPT}};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcmp(seg, names[i].name) == 0) {
            *what = names[i].what;
            return 1;
        }
    }
    return 0;
}

void ferry_bootstrap_serve(ferry_http_req *r)
{
    boot_what what;
    if (!boot_what_of(r->segs[2], &what)) {
        ferry_http_error(r->req, 404, NULL, "no such endpoint");
        return;
    }
    if (!ferry_http_method_is(r, "GET") && !ferry_http_method_is(r, "HEAD")) {
        ferry_http_error(r->req, 405, NULL, "use GET");
        return;
    }
    char env[256] = "";
    if (what == BOOT_SCRIPT) {
        int has_env = ferry_http_query_arg(r, "environment", env, sizeof(env));
        if (has_env == FERRY_REPLIED)
            return;
        if (has_env == 0 || env[0] == '\0')
            snprintf(env, sizeof(env), "%s", r->d->cfg.default_environment);
        if (ferry_config_env(&r->d->cfg, env) == NULL) {
            ferry_http_error(r->req, 404, "environment", "no environment named '%s'", env);
            return;
        }
    }
    char *url = what == BOOT_SCRIPT ? boot_server_url(r) : NULL;
    boot_waiter *w = ferry_xcalloc(1, sizeof(*w));
    w->what = what;
    w->env = ferry_strdup(env);
    w->url = url;
    ferry_bundle_info b;
    int rc = ferry_bundle_get(r->d, &b, boot_built, w);
    if (rc == FERRY_EAGAIN) {
        w->held = ferry_http_hold(r->d, r->req, 0, NULL, NULL, NULL);
        return;
    }
    if (rc < 0)
        ferry_http_error(r->req, 404, NULL, "this ferryd has no ferry-agent next to it (%s)",
                         b.agent_path);
    else
        boot_answer(r->d, r->req, &b, what, env, url);
    boot_waiter_free(w);
}
