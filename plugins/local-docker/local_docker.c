/* local-docker: a runtime plugin that runs each execution in a container of
 * its step's image, through the Docker Engine API on the daemon's unix
 * socket (never the docker command).
 *
 * Settings (the environment's configuration block; see settings.h):
 * docker_socket, network, cpus, memory. Without docker_socket, DOCKER_HOST
 * ("unix:///path") is honoured as Docker's own client does, else
 * /var/run/docker.sock.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "local_docker.h"
#include "owner.h"
#include "settings.h"

void ld_log(ld_state *st, ferry_log_level level, const char *fmt, ...)
{
    if (st->finishing)
        return;
    char text[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    st->host->log(st->ctx, level, "%s", text);
}

static void ld_state_free(ld_state *st)
{
    free(st->network);
    free(st);
}

static void ld_http_closed(void *arg)
{
    ld_state_free(arg);
}

void ld_state_unref(ld_state *st)
{
    if (--st->refs > 0)
        return;
    /* Nothing is in flight any more: the client's handles close on the
     * next loop turns, the state goes with them. */
    if (st->http != NULL)
        ferry_http_client_close(st->http, ld_http_closed, st);
    else
        ld_state_free(st);
}

static int ld_settings(ld_state *st, ferry_error_detail *err)
{
    char why[400];
    const ferry_host_api *h = st->host;
    const char *socket = h->config_get(st->ctx, "docker_socket");
    const char *docker_host = getenv("DOCKER_HOST");
    if ((socket == NULL || socket[0] == '\0') && docker_host != NULL &&
        strncmp(docker_host, "unix://", 7) == 0)
        socket = docker_host;
    if (ld_parse_socket(socket, st->socket, sizeof(st->socket), why, sizeof(why)) < 0)
        return ferry_error_set(err, FERRY_ECONFIG, 0, NULL, LD_NAME ": %s", why);
    const char *network = h->config_get(st->ctx, "docker_network");
    if (network != NULL && network[0] != '\0') {
        if (ld_parse_network(network, why, sizeof(why)) < 0)
            return ferry_error_set(err, FERRY_ECONFIG, 0, NULL, LD_NAME ": %s", why);
        if ((st->network = strdup(network)) == NULL)
            return ferry_error_set(err, FERRY_ENOMEM, 0, NULL, LD_NAME ": out of memory");
    }
    const char *cpus = h->config_get(st->ctx, "docker_cpus");
    if (cpus != NULL && cpus[0] != '\0' &&
        ld_parse_cpus(cpus, &st->nano_cpus, why, sizeof(why)) < 0)
        return ferry_error_set(err, FERRY_ECONFIG, 0, NULL, LD_NAME ": %s", why);
    const char *memory = h->config_get(st->ctx, "docker_memory");
    if (memory != NULL && memory[0] != '\0' &&
        ld_parse_memory(memory, &st->memory, why, sizeof(why)) < 0)
        return ferry_error_set(err, FERRY_ECONFIG, 0, NULL, LD_NAME ": %s", why);
    return 0;
}

static int ld_init(ferry_plugin_ctx *ctx, const ferry_host_api *host, void **state,
                   ferry_error_detail *err)
{
    ld_state *st = calloc(1, sizeof(*st));
    if (st == NULL)
        return ferry_error_set(err, FERRY_ENOMEM, 0, NULL, LD_NAME ": out of memory");
    st->ctx = ctx;
    st->host = host;
    st->loop = host->loop(ctx);
    st->refs = 1; /* dropped by fini */
    int rc = ld_settings(st, err);
    if (rc == 0 && ld_owner_make(st->owner, sizeof(st->owner)) < 0)
        rc = ferry_error_set(err, FERRY_EIO, 0, NULL,
                             LD_NAME ": cannot read /proc to label containers with their owner");
    if (rc == 0 && ferry_http_client_new(st->loop, &st->http) < 0)
        rc = ferry_error_set(err, FERRY_ENOMEM, 0, NULL, LD_NAME ": no HTTP client");
    if (rc < 0) {
        ld_state_free(st);
        return rc;
    }
    *state = st;
    return 0;
}

/* Whatever still runs is force-removed without a word to the host; the
 * state goes once those calls answered and the client closed. */
static void ld_fini(void *state)
{
    ld_state *st = state;
    st->finishing = 1;
    ld_cleanups_abandon(st);
    ld_runs_abandon(st);
    ld_state_unref(st);
}

/* The container's mounts (body.c): /valohai/inputs for a valohai.yaml
 * project, else /ferry/inputs. */
static const char *ld_inputs_path(void *state, int valohai_aliases)
{
    (void)state;
    return valohai_aliases ? "/valohai/inputs" : "/ferry/inputs";
}

/* dockerd binds files as it binds folders; the count only keeps a create
 * request to a sane size. */
static int ld_binds_input_files(void *state)
{
    (void)state;
    return 256;
}

static const ferry_runtime_ops ld_ops = {
    .struct_size = sizeof(ferry_runtime_ops),
    .start = ld_run_start,
    .stop = ld_run_stop,
    .cleanup = ld_cleanup_start,
    .inputs_path = ld_inputs_path,
    .binds_input_files = ld_binds_input_files,
};

static const char *const ld_setting_names[] = {"docker_socket", "docker_network", "docker_cpus",
                                               "docker_memory", NULL};

static const ferry_plugin_descriptor ld_descriptor = {
    .struct_size = sizeof(ferry_plugin_descriptor),
    .abi_major = FERRY_ABI_MAJOR,
    .abi_minor = FERRY_ABI_MINOR,
    .kind = FERRY_PLUGIN_RUNTIME,
    .name = LD_NAME,
    .version = "1.0.0",
    .init = ld_init,
    .fini = ld_fini,
    .ops = &ld_ops,
    .settings = ld_setting_names,
};

FERRY_PLUGIN_DEFINE(ld_descriptor)
