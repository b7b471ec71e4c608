/* local-docker: the instance's settings and the API version, checked and
 * parsed without side effects (unit-tested on their own).
 *
 *   docker_socket  the daemon's unix socket (default /var/run/docker.sock)
 *   network        the containers' network mode ("none", "host", a network
 *                  name...); default: Docker's own
 *   cpus           CPU limit, "1.5"; per-run cpus override it
 *   memory         memory limit in bytes, or with a k/m/g/t suffix ("512m");
 *                  per-run memory_bytes override it
 */
#ifndef LD_SETTINGS_H
#define LD_SETTINGS_H

#include <stddef.h>
#include <stdint.h>

#define LD_DEFAULT_SOCKET "/var/run/docker.sock"
/* The API versions this plugin speaks: DeviceRequests came with 1.40; it was
 * written against the 1.43 reference. */
#define LD_API_MIN_MAJOR 1
#define LD_API_MIN_MINOR 40
#define LD_API_MAX_MAJOR 1
#define LD_API_MAX_MINOR 43
/* Docker refuses memory limits under 6 MiB. */
#define LD_MEMORY_MIN ((int64_t)6 << 20)

/* Each returns 0, or -1 with a message naming the setting in `why`. */
int ld_parse_socket(const char *value, char *out, size_t cap, char *why, size_t why_cap);
int ld_parse_network(const char *value, char *why, size_t why_cap);
int ld_parse_cpus(const char *value, int64_t *nano_cpus, char *why, size_t why_cap);
int ld_parse_memory(const char *value, int64_t *bytes, char *why, size_t why_cap);

/* From GET /version's body: the version to speak ("1.41"), the daemon's
 * ApiVersion capped to the newest we know; -1 with the reason (too old, not
 * a Docker daemon) in `why`. `socket` is named in the reason. */
int ld_api_version_pick(const char *version_json, const char *socket, char *out, size_t cap,
                        char *why, size_t why_cap);

#endif
