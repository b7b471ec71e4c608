/* local-docker: settings and API version (settings.h). */
#include "settings.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/un.h>

#include <jansson.h>

int ld_parse_socket(const char *value, char *out, size_t cap, char *why, size_t why_cap)
{
    const char *path = value && value[0] ? value : LD_DEFAULT_SOCKET;
    if (strncmp(path, "unix://", 7) == 0) /* DOCKER_HOST's spelling */
        path += 7;
    struct sockaddr_un sun;
    if (path[0] != '/' || strlen(path) >= sizeof(sun.sun_path) || strlen(path) >= cap) {
        snprintf(why, why_cap,
                 "setting \"docker_socket\": '%.200s' is not an absolute unix socket path of at "
                 "most %zu bytes",
                 path, sizeof(sun.sun_path) - 1);
        return -1;
    }
    snprintf(out, cap, "%s", path);
    return 0;
}

int ld_parse_network(const char *value, char *why, size_t why_cap)
{
    /* Modes and names: "none", "host", "bridge", "container:<id>", a
     * user-defined network. */
    int ok = value != NULL && isalnum((unsigned char)value[0]) && strlen(value) < 256;
    for (const char *p = value; ok && *p; p++)
        ok = isalnum((unsigned char)*p) || strchr("_.-:", *p) != NULL;
    if (!ok)
        snprintf(why, why_cap,
                 "setting \"docker_network\": '%.200s' is not a network mode or network name",
                 value);
    return ok ? 0 : -1;
}

int ld_parse_cpus(const char *value, int64_t *nano_cpus, char *why, size_t why_cap)
{
    char *end = NULL;
    errno = 0;
    double v = value ? strtod(value, &end) : 0;
    while (end && isspace((unsigned char)*end))
        end++;
    if (value == NULL || end == value || *end != '\0' || errno != 0 || !isfinite(v) || v <= 0 ||
        v > 1e6) {
        snprintf(
            why, why_cap,
            "setting \"docker_cpus\": '%.200s' is not a positive number of CPUs (e.g. \"1.5\")",
            value ? value : "");
        return -1;
    }
    *nano_cpus = (int64_t)llround(v * 1e9);
    return 0;
}

/* "k", "kb", "kib" (any case): the power of 1024, or -1. */
static int ld_memory_suffix(const char *s)
{
    static const char units[] = "bkmgt";
    if (*s == '\0')
        return 0;
    const char *u = strchr(units, tolower((unsigned char)*s));
    if (u == NULL)
        return -1;
    int power = (int)(u - units);
    s++;
    if (power > 0 && (strcasecmp(s, "b") == 0 || strcasecmp(s, "ib") == 0))
        s += strlen(s);
    return *s == '\0' ? power : -1;
}

int ld_parse_memory(const char *value, int64_t *bytes, char *why, size_t why_cap)
{
    char *end = NULL;
    errno = 0;
    long double v = value && isdigit((unsigned char)value[0]) ? strtold(value, &end) : 0;
    int power = end ? ld_memory_suffix(end) : -1;
    int ok = end != NULL && errno == 0 && power >= 0 && isfinite(v);
    for (int i = 0; ok && i < power; i++)
        v *= 1024;
    if (!ok || v > (long double)INT64_MAX || v < (long double)LD_MEMORY_MIN) {
        snprintf(
            why, why_cap,
            "setting \"docker_memory\": '%.200s' is not a memory size of at least 6m (bytes, or "
            "with a k/m/g/t suffix, e.g. \"512m\" or \"1.5g\")",
            value ? value : "");
        return -1;
    }
    *bytes = (int64_t)llroundl(v);
    return 0;
}

/* "1.41" -> 1, 41; -1 when it is not that shape. */
static int ld_version_parse(const char *s, int *major, int *minor)
{
    char tail;
    if (s == NULL || sscanf(s, "%d.%d%c", major, minor, &tail) != 2 || *major < 0 || *minor < 0)
        return -1;
    return 0;
}

static int ld_version_cmp(int a_major, int a_minor, int b_major, int b_minor)
{
    if (a_major != b_major)
        return a_major < b_major ? -1 : 1;
    return a_minor < b_minor ? -1 : a_minor > b_minor;
}

int ld_api_version_pick(const char *version_json, const char *socket, char *out, size_t cap,
                        char *why, size_t why_cap)
{
    json_t *v = json_loads(version_json ? version_json : "", 0, NULL);
    const char *api = json_string_value(json_object_get(v, "ApiVersion"));
    const char *min = json_string_value(json_object_get(v, "MinAPIVersion"));
    int major, minor, min_major = 0, min_minor = 0, rc = -1;
    if (ld_version_parse(api, &major, &minor) < 0) {
        snprintf(why, why_cap,
                 "%s does not answer like a Docker daemon (no ApiVersion in /version)", socket);
    } else if (ld_version_cmp(major, minor, LD_API_MIN_MAJOR, LD_API_MIN_MINOR) < 0) {
        snprintf(why, why_cap,
                 "the Docker daemon at %s speaks API %d.%d, too old: local-docker needs %d.%d or "
                 "newer (Docker 19.03+)",
                 socket, major, minor, LD_API_MIN_MAJOR, LD_API_MIN_MINOR);
    } else {
        if (ld_version_cmp(major, minor, LD_API_MAX_MAJOR, LD_API_MAX_MINOR) > 0) {
            major = LD_API_MAX_MAJOR;
            minor = LD_API_MAX_MINOR;
        }
        if (min != NULL && ld_version_parse(min, &min_major, &min_minor) == 0 &&
            ld_version_cmp(major, minor, min_major, min_minor) < 0) {
            snprintf(why, why_cap,
                     "the Docker daemon at %s no longer speaks API %d.%d (its minimum is %s), "
                     "the newest local-docker knows",
                     socket, major, minor, min);
        } else {
            snprintf(out, cap, "%d.%d", major, minor);
            rc = 0;
        }
    }
    json_decref(v);
    return rc;
}
