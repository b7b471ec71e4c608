/* local-docker: image references and registry credentials (image_ref.h). */
#include "image_ref.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Every character a reference may hold (name, tag, digest); nothing that
 * would change the meaning of a URL path or query. */
static int ld_ref_char_ok(char c)
{
    return isalnum((unsigned char)c) || strchr("._-/:@+=", c) != NULL;
}

/* The first path component names a registry when it looks like a host
 * ("a.b", "host:5000", "localhost"), as Docker decides. */
static int ld_is_domain(const char *s, size_t len)
{
    if (len == 9 && strncmp(s, "localhost", 9) == 0)
        return 1;
    return memchr(s, '.', len) != NULL || memchr(s, ':', len) != NULL;
}

int ld_image_ref_parse(const char *image, ld_image_ref *out)
{
    memset(out, 0, sizeof(*out));
    size_t len = image ? strlen(image) : 0;
    if (len == 0 || len >= sizeof(out->repository))
        return -1;
    for (size_t i = 0; i < len; i++)
        if (!ld_ref_char_ok(image[i]))
            return -1;
    if (image[0] == '/' || strstr(image, "//") != NULL)
        return -1; /* empty path components */
    const char *slash = strchr(image, '/');
    if (slash && ld_is_domain(image, (size_t)(slash - image)))
        snprintf(out->registry, sizeof(out->registry), "%.*s", (int)(slash - image), image);
    else
        snprintf(out->registry, sizeof(out->registry), "docker.io");
    /* The tag and the digest are in the last path component (a registry's
     * port is not a tag); with both, the digest is what is pulled. */
    const char *last = strrchr(image, '/');
    last = last ? last + 1 : image;
    const char *at = strchr(last, '@');
    const char *colon = memchr(last, ':', (size_t)((at ? at : image + len) - last));
    size_t name_len = (size_t)((colon ? colon : at ? at : image + len) - image);
    const char *tag = at ? at + 1 : colon ? colon + 1 : "latest";
    size_t tag_len = strlen(tag);
    if (name_len == 0 || tag_len == 0 || tag_len >= sizeof(out->tag) ||
        image[name_len - 1] == '/' || strchr(tag, '@') != NULL)
        return -1;
    snprintf(out->repository, sizeof(out->repository), "%.*s", (int)name_len, image);
    snprintf(out->tag, sizeof(out->tag), "%.*s", (int)tag_len, tag);
    return 0;
}

/* "https://Index.Docker.io/v1/" -> "index.docker.io"; Docker Hub's names
 * all become "docker.io". */
static void ld_registry_norm(const char *server, char *out, size_t cap)
{
    const char *p = strstr(server, "://");
    p = p ? p + 3 : server;
    size_t n = strcspn(p, "/");
    if (n >= cap)
        n = cap - 1;
    for (size_t i = 0; i < n; i++)
        out[i] = (char)tolower((unsigned char)p[i]);
    out[n] = '\0';
    if (strcmp(out, "index.docker.io") == 0 || strcmp(out, "registry-1.docker.io") == 0 ||
        strcmp(out, "registry.hub.docker.com") == 0)
        snprintf(out, cap, "docker.io");
}

int ld_registry_matches(const char *server, const char *registry)
{
    if (server == NULL || registry == NULL || server[0] == '\0')
        return 0;
    char a[256], b[256];
    ld_registry_norm(server, a, sizeof(a));
    ld_registry_norm(registry, b, sizeof(b));
    return strcmp(a, b) == 0;
}

static char *ld_base64url(const unsigned char *in, size_t len)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    char *out = malloc((len + 2) / 3 * 4 + 1);
    if (out == NULL)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < len; i += 3) {
        unsigned v = (unsigned)in[i] << 16;
        if (i + 1 < len)
            v |= (unsigned)in[i + 1] << 8;
        if (i + 2 < len)
            v |= in[i + 2];
        out[o++] = tab[(v >> 18) & 63];
        out[o++] = tab[(v >> 12) & 63];
        out[o++] = i + 1 < len ? tab[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < len ? tab[v & 63] : '=';
    }
    out[o] = '\0';
    return out;
}

/* Appends `s` as a JSON string to buf (which has room: 6 bytes per input
 * byte plus the quotes). Done by hand rather than with jansson so that every
 * copy of the password is ours to wipe. */
static size_t ld_json_string(char *buf, size_t o, const char *s)
{
    buf[o++] = '"';
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') {
            buf[o++] = '\\';
            buf[o++] = (char)*p;
        } else if (*p < 0x20) {
            o += (size_t)sprintf(buf + o, "\\u%04x", *p);
        } else {
            buf[o++] = (char)*p;
        }
    }
    buf[o++] = '"';
    return o;
}

char *ld_registry_auth(const char *username, const char *password, const char *server)
{
    const char *user = username ? username : "", *pass = password ? password : "";
    const char *addr = server ? server : "";
    size_t cap = 64 + 6 * (strlen(user) + strlen(pass) + strlen(addr));
    char *text = malloc(cap);
    if (text == NULL)
        return NULL;
    size_t o = (size_t)sprintf(text, "{\"username\":");
    o = ld_json_string(text, o, user);
    o += (size_t)sprintf(text + o, ",\"password\":");
    o = ld_json_string(text, o, pass);
    o += (size_t)sprintf(text + o, ",\"serveraddress\":");
    o = ld_json_string(text, o, addr);
    text[o++] = '}';
    text[o] = '\0';
    char *b64 = ld_base64url((const unsigned char *)text, o);
    ld_secret_free(text);
    return b64;
}

void ld_secret_free(char *secret)
{
    if (secret == NULL)
        return;
    explicit_bzero(secret, strlen(secret));
    free(secret);
}
