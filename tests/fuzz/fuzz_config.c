/* Fuzz: ferryd's configuration file (core/config.c, config_include.c,
 * config_check.c: libconfig, then ferry's own checks).
 *
 * ferry_config_load reads a path, so each input is written to one file of
 * a folder of this process's own, then loaded over the defaults, finished,
 * and each environment and the store checked against plugins that declare
 * a few settings (as ferryd checks them against the plugins it loaded). */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "plugin.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char fuzz__dir[4096], fuzz__path[4096];

static void fuzz__cleanup(void)
{
    unlink(fuzz__path);
    rmdir(fuzz__dir);
}

static void fuzz__setup(void)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(fuzz__dir, sizeof(fuzz__dir), "%s/ferry-fuzz-config.XXXXXX", tmp ? tmp : "/tmp");
    if (mkdtemp(fuzz__dir) == NULL)
        abort();
    snprintf(fuzz__path, sizeof(fuzz__path), "%s/ferryd.conf", fuzz__dir);
    atexit(fuzz__cleanup);
}

static void fuzz__write(const uint8_t *data, size_t size)
{
    FILE *f = fopen(fuzz__path, "wb");
    if (f == NULL || fwrite(data, 1, size, f) != size || fclose(f) != 0)
        abort();
}

static ferry_plugin fuzz__plugin(ferry_plugin_kind kind, const char *name,
                                 const char *const *settings)
{
    ferry_plugin p;
    memset(&p, 0, sizeof(p));
    p.desc.struct_size = sizeof(p.desc);
    p.desc.kind = kind;
    p.desc.name = name;
    p.desc.settings = settings;
    return p;
}

static void fuzz__check(ferry_config *c)
{
    static const char *const compute_keys[] = {"region", "instance_type", "ami",
                                               "zones",  "idle_timeout",  NULL};
    static const char *const runtime_keys[] = {"network", "memory", "gpus", NULL};
    static const char *const store_keys[] = {"path", "bucket", "endpoint", NULL};
    ferry_plugin compute = fuzz__plugin(FERRY_PLUGIN_COMPUTE, "aws", compute_keys);
    ferry_plugin runtime = fuzz__plugin(FERRY_PLUGIN_RUNTIME, "local-docker", runtime_keys);
    ferry_plugin store = fuzz__plugin(FERRY_PLUGIN_STORE, "s3-storage", store_keys);
    char err[1024];
    for (size_t i = 0; i < c->n_envs; i++) {
        ferry_env_config *e = &c->envs[i];
        (void)ferry_config_check_env(c, e, ferry_env_is_static(e) ? NULL : &compute, &runtime, err,
                                     sizeof(err));
    }
    (void)ferry_config_check_store(c, &store, err, sizeof(err));
    static const char *const images[] = {"busybox", "registry.example:5000/team/img:tag",
                                         "ghcr.io/x/y@sha256:00", ""};
    for (size_t i = 0; i < sizeof(images) / sizeof(images[0]); i++)
        (void)ferry_config_registry_for(c, images[i]);
    for (size_t i = 0; i < c->n_users; i++)
        if (ferry_config_user(c, c->users[i].name) == NULL)
            abort(); /* every user read is found by name */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (fuzz__path[0] == '\0')
        fuzz__setup();
    fuzz__write(data, size);
    ferry_config c;
    ferry_config_init(&c);
    char err[1024];
    if (ferry_config_load(&c, fuzz__path, err, sizeof(err)) == 0 &&
        ferry_config_finish(&c, err, sizeof(err)) == 0)
        fuzz__check(&c);
    ferry_config_free(&c);
    return 0;
}
