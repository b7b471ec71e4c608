/* local-docker: container create bodies (body.h). */
#include "body.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const ld_dir_names[4] = {"repository", "inputs", "outputs", "config"};
static const char *const ld_dir_vars[4] = {"REPOSITORY_DIR", "INPUTS_DIR", "OUTPUTS_DIR",
                                           "CONFIG_DIR"};

/* Sets NAME=value in `env`, replacing an earlier entry of NAME: Docker
 * would pass both on and leave the pick to the program. */
static void ld_env_put(json_t *env, const char *entry)
{
    size_t name_len = strcspn(entry, "=");
    for (size_t i = 0; i < json_array_size(env); i++) {
        const char *e = json_string_value(json_array_get(env, i));
        if (strncmp(e, entry, name_len) == 0 && e[name_len] == '=') {
            json_array_set_new(env, i, json_string(entry));
            return;
        }
    }
    json_array_append_new(env, json_string(entry));
}

static void ld_env_dirs(json_t *env, const char *prefix, const char *root)
{
    for (int i = 0; i < 4; i++) {
        char entry[128];
        snprintf(entry, sizeof(entry), "%s%s=%s/%s", prefix, ld_dir_vars[i], root, ld_dir_names[i]);
        ld_env_put(env, entry);
    }
}

json_t *ld_run_env(const ferry_run_spec *spec)
{
    json_t *env = json_array();
    for (const char *const *p = spec->env; p != NULL && *p != NULL; p++) {
        const char *eq = strchr(*p, '=');
        if (eq == NULL || eq == *p)
            continue; /* no name: nothing a process could read */
        ld_env_put(env, *p);
    }
    /* Ours come last so a step cannot point them elsewhere by accident. */
    ld_env_dirs(env, "FERRY_", "/ferry");
    if (spec->valohai_aliases)
        ld_env_dirs(env, "VH_", "/valohai");
    return env;
}

static json_t *ld_mount(const char *source, const char *target, int read_only)
{
    return json_pack("{s:s, s:s, s:s, s:b}", "Type", "bind", "Source", source, "Target", target,
                     "ReadOnly", read_only);
}

static json_t *ld_run_mounts(const ferry_run_spec *spec, const char *command_file)
{
    const char *dirs[4] = {spec->repository_dir, spec->inputs_dir, spec->outputs_dir,
                           spec->config_dir};
    json_t *mounts = json_array();
    for (int alias = 0; alias < (spec->valohai_aliases ? 2 : 1); alias++) {
        for (int i = 0; i < 4; i++) {
            if (dirs[i] == NULL)
                continue;
            char target[64];
            snprintf(target, sizeof(target), "/%s/%s", alias ? "valohai" : "ferry",
                     ld_dir_names[i]);
            json_array_append_new(mounts, ld_mount(dirs[i], target, 0));
        }
    }
    if (command_file != NULL)
        json_array_append_new(mounts, ld_mount(command_file, LD_COMMAND_PATH, 1));
    /* Cached input files, read-only onto their empty stand-ins in each view
     * of the inputs folder (dockerd mounts a parent before its children). */
    size_t n_files = FERRY_HAS_FIELD(spec, ferry_run_spec, n_input_files) ? spec->n_input_files : 0;
    for (size_t i = 0; i < n_files && spec->input_files; i++) {
        const ferry_mount *f = &spec->input_files[i];
        for (int alias = 0; alias < (spec->valohai_aliases ? 2 : 1) && f->source && f->destination;
             alias++) {
            char target[4096];
            snprintf(target, sizeof(target), "/%s/inputs/%s", alias ? "valohai" : "ferry",
                     f->destination);
            json_array_append_new(mounts, ld_mount(f->source, target, 1));
        }
    }
    /* The step's own: ferryd allowed them, the agent checked their sources. */
    size_t n = FERRY_HAS_FIELD(spec, ferry_run_spec, n_mounts) ? spec->n_mounts : 0;
    for (size_t i = 0; i < n && spec->mounts; i++) {
        const ferry_mount *m = &spec->mounts[i];
        if (m->source && m->destination)
            json_array_append_new(mounts, ld_mount(m->source, m->destination, m->readonly));
    }
    return mounts;
}

static int ld_gpu_id_ok(const char *s, size_t len)
{
    if (len == 0 || len > 128)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '-')
            return 0;
    return 1;
}

json_t *ld_device_requests(const char *gpus, int *bad)
{
    *bad = 0;
    if (gpus == NULL || gpus[0] == '\0')
        return NULL;
    /* As `docker run --gpus`: the driver is left to the daemon (nvidia's
     * when its runtime is installed), asked for by capability. */
    json_t *req = json_pack("{s:s, s:[[s]]}", "Driver", "", "Capabilities", "gpu");
    if (strcmp(gpus, "all") == 0) {
        json_object_set_new(req, "Count", json_integer(-1));
    } else {
        json_t *ids = json_array();
        for (const char *p = gpus; *p != '\0';) {
            size_t len = strcspn(p, ",");
            if (!ld_gpu_id_ok(p, len)) {
                *bad = 1;
                json_decref(ids);
                json_decref(req);
                return NULL;
            }
            json_array_append_new(ids, json_stringn(p, len));
            p += len;
            if (*p == ',')
                p++;
        }
        json_object_set_new(req, "Count", json_integer(0));
        json_object_set_new(req, "DeviceIDs", ids);
    }
    return json_pack("[o]", req);
}

static json_t *ld_labels(const char *execution_id, const char *owner, const char *role)
{
    return json_pack("{s:s, s:s, s:s}", LD_LABEL_EXECUTION, execution_id ? execution_id : "",
                     LD_LABEL_OWNER, owner ? owner : "", LD_LABEL_ROLE, role);
}

static json_t *ld_entrypoint(const ferry_run_spec *spec, const char *command_file)
{
    if (command_file != NULL)
        return json_pack("[s]", LD_COMMAND_PATH);
    if (spec->shell && spec->shell[0])
        return json_pack("[s, s, s]", spec->shell, "-c", spec->script);
    /* bash when the image has it (`source .venv/bin/activate`, [[ ]]), as
     * on Valohai, else sh: only the image knows, so its sh decides when
     * the container starts. The script is the chooser's $0, as it would
     * be the shell's -c argument: no file, no quoting. */
    return json_pack("[s, s, s, s]", "/bin/sh", "-c", LD_SHELL_CHOOSER, spec->script);
}

/* What every container of ours gets: an init as PID 1 (signals reach the
 * script as they would a plain process, zombies are reaped), and no log
 * driver: the output comes through attach, and a log file would only cost
 * the daemon time and disk. */
static json_t *ld_host_config_base(json_t *mounts, const char *network)
{
    json_t *hc = json_pack("{s:o, s:b, s:b, s:{s:s, s:{}}}", "Mounts", mounts, "Init", 1,
                           "AutoRemove", 0, "LogConfig", "Type", "none", "Config");
    if (network != NULL && network[0] != '\0')
        json_object_set_new(hc, "NetworkMode", json_string(network));
    return hc;
}

static void ld_limits(json_t *hc, const ferry_run_spec *spec, const ld_run_opts *o)
{
    int64_t nano = o->nano_cpus, memory = o->memory;
    if (FERRY_HAS_FIELD(spec, ferry_run_spec, cpus) && spec->cpus > 0)
        nano = (int64_t)(spec->cpus * 1e9 + 0.5);
    if (FERRY_HAS_FIELD(spec, ferry_run_spec, memory_bytes) && spec->memory_bytes > 0)
        memory = spec->memory_bytes;
    if (nano > 0)
        json_object_set_new(hc, "NanoCpus", json_integer(nano));
    if (memory > 0) {
        /* Swap equal to the limit: no swap on top, so the limit is the
         * limit and a hog meets the OOM killer instead of the disk. */
        json_object_set_new(hc, "Memory", json_integer(memory));
        json_object_set_new(hc, "MemorySwap", json_integer(memory));
    }
}

json_t *ld_run_body(const ferry_run_spec *spec, const ld_run_opts *o, char *why, size_t why_cap)
{
    if (spec->image == NULL || spec->image[0] == '\0') {
        snprintf(why, why_cap, "the execution names no image");
        return NULL;
    }
    int bad = 0;
    json_t *devices =
        ld_device_requests(FERRY_HAS_FIELD(spec, ferry_run_spec, gpus) ? spec->gpus : NULL, &bad);
    if (bad) {
        snprintf(why, why_cap, "'%.100s' is not a list of GPU indices or UUIDs", spec->gpus);
        return NULL;
    }
    json_t *hc = ld_host_config_base(ld_run_mounts(spec, o->command_file), o->network);
    ld_limits(hc, spec, o);
    if (devices != NULL)
        json_object_set_new(hc, "DeviceRequests", devices);
    return json_pack("{s:s, s:o, s:o, s:s, s:o, s:b, s:b, s:b, s:b, s:o}", "Image", spec->image,
                     "Entrypoint", ld_entrypoint(spec, o->command_file), "Env", ld_run_env(spec),
                     "WorkingDir",
                     spec->valohai_aliases ? "/valohai/repository" : "/ferry/repository", "Labels",
                     ld_labels(spec->execution_id, o->owner, "run"), "Tty", 0, "OpenStdin", 0,
                     "AttachStdout", 1, "AttachStderr", 1, "HostConfig", hc);
}

json_t *ld_outputs_body(const char *image, const char *shell, const char *outputs_dir, unsigned uid,
                        unsigned gid, const char *execution_id, const char *owner)
{
    char script[160];
    snprintf(script, sizeof(script), "chown -R %u:%u %s && chmod -R u+rwX %s", uid, gid,
             LD_OUTPUTS_PATH, LD_OUTPUTS_PATH);
    json_t *mounts = json_pack("[o]", ld_mount(outputs_dir, LD_OUTPUTS_PATH, 0));
    return json_pack("{s:s, s:s, s:[s, s, s], s:s, s:o, s:b, s:o}", "Image", image, "User", "0:0",
                     "Entrypoint", shell && shell[0] ? shell : "/bin/sh", "-c", script,
                     "WorkingDir", "/", "Labels", ld_labels(execution_id, owner, "outputs"), "Tty",
                     0, "HostConfig", ld_host_config_base(mounts, "none"));
}
