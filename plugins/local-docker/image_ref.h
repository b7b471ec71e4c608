/* local-docker: image references and registry credentials.
 *
 * "registry.example:5000/team/img:tag", "busybox", "img@sha256:..." are split
 * the way Docker's own client splits them for POST /images/create, and the
 * registry they come from is named, so that credentials only ever go to the
 * registry they were given for.
 */
#ifndef LD_IMAGE_REF_H
#define LD_IMAGE_REF_H

#include <stddef.h>

typedef struct ld_image_ref {
    char repository[512]; /* the name without tag or digest: fromImage */
    char tag[160];        /* the tag, or the digest ("sha256:..."); "latest" when none */
    char registry[256];   /* "docker.io" for Docker Hub, else "host[:port]" */
} ld_image_ref;

/* 0, or -1 when `image` is empty, too long or holds characters no
 * reference has (the name goes into URL paths unescaped). */
int ld_image_ref_parse(const char *image, ld_image_ref *out);

/* Whether credentials given for `server` ("host:port", "https://host/v1/",
 * Docker Hub's aliases...) belong to `registry` (ld_image_ref.registry). */
int ld_registry_matches(const char *server, const char *registry);

/* The X-Registry-Auth value for these credentials: base64url of their JSON.
 * malloc'd, NULL when out of memory. A secret: wipe it (ld_secret_free). */
char *ld_registry_auth(const char *username, const char *password, const char *server);

/* Zero a secret string, then free it. */
void ld_secret_free(char *secret);

#endif
