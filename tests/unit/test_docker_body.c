/* local-docker's pure parts (plugins/local-docker): the create bodies, image
 * references and registry credentials, settings, the API version pick, pull
 * progress lines, the daemon's answers and container owners; with the
 * samples of vectors/docker where they apply. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "answers.h"
#include "body.h"
#include "image_ref.h"
#include "owner.h"
#include "progress.h"
#include "settings.h"
#include "test.h"
#include "util.h"

static const char *vectors;

static char *vector(const char *name, size_t *len)
{
    char *path = ferry_asprintf("%s/docker/samples/%s", vectors, name);
    char *data = ferry_read_file(path, len);
    CHECK(data != NULL);
    free(path);
    return data;
}

static const char *jstr(json_t *o, const char *path)
{
    /* "a.b.c" */
    char *copy = ferry_strdup(path), *save = NULL;
    for (char *k = strtok_r(copy, ".", &save); k && o; k = strtok_r(NULL, ".", &save))
        o = json_object_get(o, k);
    free(copy);
    return json_string_value(o);
}

static json_t *jget(json_t *o, const char *path)
{
    char *copy = ferry_strdup(path), *save = NULL;
    for (char *k = strtok_r(copy, ".", &save); k && o; k = strtok_r(NULL, ".", &save))
        o = json_object_get(o, k);
    free(copy);
    return o;
}

/* JSON text of `j` (compact, keys sorted) for whole-value comparisons. */
static char *dump(json_t *j)
{
    return j ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY) : ferry_strdup("");
}

#define CHECK_JSON(j, text)                                                                        \
    do {                                                                                           \
        char *d_ = dump(j);                                                                        \
        CHECK_STR(d_, text);                                                                       \
        free(d_);                                                                                  \
    } while (0)

static ferry_run_spec a_spec(void)
{
    static const char *env[] = {
        "MY_VAR=1", "FERRY_OUTPUTS_DIR=/elsewhere", "MY_VAR=2", "NONAME", "=empty", NULL};
    ferry_run_spec spec = {
        .struct_size = sizeof(spec),
        .execution_id = "exec-1",
        .image = "registry.example:5000/team/img:tag",
        .script = "echo hi",
        .env = env,
        .repository_dir = "/w/repository",
        .inputs_dir = "/w/inputs",
        .outputs_dir = "/w/outputs",
        .config_dir = "/w/config",
    };
    return spec;
}

static void test_run_body(void)
{
    ferry_run_spec spec = a_spec();
    ld_run_opts o = {.owner = "host/boot/1/2/3"};
    char why[200] = "";
    json_t *b = ld_run_body(&spec, &o, why, sizeof(why));
    CHECK(b != NULL);
    CHECK_STR(jstr(b, "Image"), "registry.example:5000/team/img:tag");
    /* no shell named: the image's sh picks bash when it has one (issue 18) */
    CHECK_INT(json_array_size(jget(b, "Entrypoint")), 4);
    CHECK_STR(json_string_value(json_array_get(jget(b, "Entrypoint"), 0)), "/bin/sh");
    CHECK_STR(json_string_value(json_array_get(jget(b, "Entrypoint"), 2)), LD_SHELL_CHOOSER);
    CHECK_STR(json_string_value(json_array_get(jget(b, "Entrypoint"), 3)), "echo hi");
    CHECK(jget(b, "Cmd") == NULL); /* the image's CMD must not be appended */
    CHECK_JSON(jget(b, "Env"),
               "[\"MY_VAR=2\",\"FERRY_OUTPUTS_DIR=/ferry/outputs\","
               "\"FERRY_REPOSITORY_DIR=/ferry/repository\","
               "\"FERRY_INPUTS_DIR=/ferry/inputs\",\"FERRY_CONFIG_DIR=/ferry/config\"]");
    CHECK_STR(jstr(b, "WorkingDir"), "/ferry/repository");
    CHECK_JSON(jget(b, "Labels"),
               "{\"ferry.execution\":\"exec-1\",\"ferry.owner\":\"host/boot/1/2/3\","
               "\"ferry.role\":\"run\"}");
    CHECK(json_is_false(jget(b, "Tty")) && json_is_false(jget(b, "OpenStdin")));
    CHECK_JSON(jget(b, "HostConfig.Mounts"),
               "[{\"ReadOnly\":false,\"Source\":\"/w/repository\",\"Target\":\"/ferry/repository\","
               "\"Type\":\"bind\"},{\"ReadOnly\":false,\"Source\":\"/w/inputs\",\"Target\":"
               "\"/ferry/inputs\",\"Type\":\"bind\"},{\"ReadOnly\":false,\"Source\":\"/w/outputs\","
               "\"Target\":\"/ferry/outputs\",\"Type\":\"bind\"},{\"ReadOnly\":false,\"Source\":"
               "\"/w/config\",\"Target\":\"/ferry/config\",\"Type\":\"bind\"}]");
    CHECK(json_is_true(jget(b, "HostConfig.Init")));
    CHECK(json_is_false(jget(b, "HostConfig.AutoRemove")));
    CHECK_STR(jstr(b, "HostConfig.LogConfig.Type"), "none");
    /* No limits, no GPUs, Docker's network: none of the keys. */
    const char *absent[] = {"NanoCpus", "Memory", "MemorySwap", "DeviceRequests", "NetworkMode"};
    for (size_t i = 0; i < sizeof(absent) / sizeof(absent[0]); i++)
        CHECK(json_object_get(jget(b, "HostConfig"), absent[i]) == NULL);
    json_decref(b);

    /* Aliases, limits from the settings, a network, GPUs, another shell. */
    spec.valohai_aliases = 1;
    spec.gpus = "0,GPU-8f3e-aa";
    spec.shell = "/bin/bash";
    o.nano_cpus = 1500000000;
    o.memory = 512 << 20;
    o.network = "none";
    b = ld_run_body(&spec, &o, why, sizeof(why));
    CHECK_STR(jstr(b, "WorkingDir"), "/valohai/repository");
    CHECK_JSON(jget(b, "Entrypoint"), "[\"/bin/bash\",\"-c\",\"echo hi\"]");
    CHECK_INT(json_array_size(jget(b, "HostConfig.Mounts")), 8);
    CHECK_STR(jstr(json_array_get(jget(b, "HostConfig.Mounts"), 6), "Target"), "/valohai/outputs");
    CHECK_STR(jstr(json_array_get(jget(b, "HostConfig.Mounts"), 6), "Source"), "/w/outputs");
    char *env = dump(jget(b, "Env"));
    CHECK_CONTAINS(env, "\"VH_OUTPUTS_DIR=/valohai/outputs\"");
    CHECK_CONTAINS(env, "\"VH_REPOSITORY_DIR=/valohai/repository\"");
    CHECK(strstr(env, "CUDA_VISIBLE_DEVICES") == NULL); /* the GPU runtime renumbers them */
    free(env);
    CHECK_INT(json_integer_value(jget(b, "HostConfig.NanoCpus")), 1500000000);
    CHECK_INT(json_integer_value(jget(b, "HostConfig.Memory")), 512 << 20);
    CHECK_INT(json_integer_value(jget(b, "HostConfig.MemorySwap")), 512 << 20);
    CHECK_STR(jstr(b, "HostConfig.NetworkMode"), "none");
    CHECK_JSON(jget(b, "HostConfig.DeviceRequests"),
               "[{\"Capabilities\":[[\"gpu\"]],\"Count\":0,\"DeviceIDs\":[\"0\",\"GPU-8f3e-aa\"],"
               "\"Driver\":\"\"}]");
    json_decref(b);

    /* The run's own limits win. */
    spec.cpus = 0.25;
    spec.memory_bytes = 64 << 20;
    b = ld_run_body(&spec, &o, why, sizeof(why));
    CHECK_INT(json_integer_value(jget(b, "HostConfig.NanoCpus")), 250000000);
    CHECK_INT(json_integer_value(jget(b, "HostConfig.Memory")), 64 << 20);
    json_decref(b);

    /* A "#!" script: its file, read-only, is what runs. */
    spec = a_spec();
    o = (ld_run_opts){.owner = "x", .command_file = "/w/command"};
    b = ld_run_body(&spec, &o, why, sizeof(why));
    CHECK_JSON(jget(b, "Entrypoint"), "[\"/ferry/command\"]");
    CHECK_JSON(json_array_get(jget(b, "HostConfig.Mounts"), 4),
               "{\"ReadOnly\":true,\"Source\":\"/w/command\",\"Target\":\"/ferry/command\","
               "\"Type\":\"bind\"}");
    json_decref(b);

    /* Refused: no image, a GPU list that is not one. */
    spec.image = NULL;
    CHECK(ld_run_body(&spec, &o, why, sizeof(why)) == NULL);
    CHECK_CONTAINS(why, "no image");
    spec = a_spec();
    spec.gpus = "0,$(reboot)";
    CHECK(ld_run_body(&spec, &o, why, sizeof(why)) == NULL);
    CHECK_CONTAINS(why, "GPU");

    /* A host built before gpus/limits were in the spec: not read. */
    spec = a_spec();
    spec.gpus = "0";
    spec.struct_size = offsetof(ferry_run_spec, gpus);
    b = ld_run_body(&spec, &o, why, sizeof(why));
    CHECK(b != NULL && jget(b, "HostConfig.DeviceRequests") == NULL);
    json_decref(b);
}

/* Runs argv (an Entrypoint) on this host; its stdout in `out`, its exit status returned. */
static int run_argv(json_t *argv, char *out, size_t cap)
{
    int fds[2];
    CHECK(pipe(fds) == 0);
    pid_t pid = fork();
    if (pid == 0) {
        char *v[8] = {0};
        for (size_t i = 0; i < json_array_size(argv) && i < 7; i++)
            v[i] = (char *)json_string_value(json_array_get(argv, i));
        dup2(fds[1], 1);
        close(fds[0]);
        execv(v[0], v);
        _exit(127);
    }
    close(fds[1]);
    size_t n = 0;
    ssize_t r;
    while (n + 1 < cap && (r = read(fds[0], out + n, cap - 1 - n)) > 0)
        n += (size_t)r;
    out[n] = '\0';
    close(fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* The entrypoint's shell (issue 18): bash where the image has /bin/bash
 * (this host stands in for such an image), sh where it has none (the
 * chooser with a bash path that does not exist stands in for a busybox
 * image: test_docker.sh runs one), and a shell the spec names wins. */
static void test_entrypoint_shell(void)
{
    ferry_run_spec spec = a_spec();
    spec.script = "cd /tmp\nexport X=42\nfalse\n"
                  "[[ 1 == 1 ]] && echo \"bash-ok x=$X pwd=$(pwd)\"\nexit 4";
    ld_run_opts o = {.owner = "o"};
    char why[200] = "", out[512];
    json_t *b = ld_run_body(&spec, &o, why, sizeof(why));
    json_t *ep = jget(b, "Entrypoint");
    if (access("/bin/bash", X_OK) == 0) {
        CHECK_INT(run_argv(ep, out, sizeof(out)), 4); /* the last command's code */
        CHECK_STR(out, "bash-ok x=42 pwd=/tmp\n");
    }
    char *chooser = ferry_strdup(LD_SHELL_CHOOSER);
    for (char *p = strstr(chooser, "/bin/bash"); p; p = strstr(p, "/bin/bash"))
        memcpy(p, "/no/bash", 8), memmove(p + 8, p + 9, strlen(p + 9) + 1);
    json_array_set_new(ep, 2, json_string(chooser));
    json_array_set_new(ep, 3, json_string("echo \"sh ${BASH_VERSION:-none}\"; exit 3"));
    CHECK_INT(run_argv(ep, out, sizeof(out)), 3);
    CHECK_STR(out, "sh none\n");
    free(chooser);
    json_decref(b);

    spec.shell = "/bin/dash";
    b = ld_run_body(&spec, &o, why, sizeof(why));
    CHECK_INT(json_array_size(jget(b, "Entrypoint")), 3);
    CHECK_STR(json_string_value(json_array_get(jget(b, "Entrypoint"), 0)), "/bin/dash");
    CHECK_STR(json_string_value(json_array_get(jget(b, "Entrypoint"), 2)), spec.script);
    json_decref(b);
}

static void test_device_requests(void)
{
    int bad = 0;
    CHECK(ld_device_requests(NULL, &bad) == NULL && !bad);
    CHECK(ld_device_requests("", &bad) == NULL && !bad);
    json_t *d = ld_device_requests("all", &bad);
    CHECK_JSON(d, "[{\"Capabilities\":[[\"gpu\"]],\"Count\":-1,\"Driver\":\"\"}]");
    json_decref(d);
    d = ld_device_requests("3", &bad);
    CHECK_JSON(d, "[{\"Capabilities\":[[\"gpu\"]],\"Count\":0,\"DeviceIDs\":[\"3\"],"
                  "\"Driver\":\"\"}]");
    json_decref(d);
    const char *bad_lists[] = {",", "0,,1", "0 1", "a\"b", "0;1"};
    for (size_t i = 0; i < sizeof(bad_lists) / sizeof(bad_lists[0]); i++) {
        CHECK(ld_device_requests(bad_lists[i], &bad) == NULL);
        CHECK_INT(bad, 1);
    }
}

/* Our body has the shape of the API's own example (vectors/docker). */
static void test_body_shape(void)
{
    size_t len = 0;
    char *text = vector("create_request.json", &len);
    json_t *sample = json_loadb(text ? text : "", len, 0, NULL);
    ferry_run_spec spec = a_spec();
    ld_run_opts o = {.owner = "x", .memory = 268435456, .nano_cpus = 500000000};
    char why[100];
    json_t *b = ld_run_body(&spec, &o, why, sizeof(why));
    const char *key;
    json_t *v;
    json_object_foreach(sample, key, v)
    {
        if (strcmp(key, "Cmd") == 0)
            continue; /* ours is the Entrypoint: the image's CMD must not follow */
        json_t *ours = json_object_get(b, key);
        CHECK(ours != NULL && json_typeof(ours) == json_typeof(v));
        if (ours == NULL)
            fprintf(stderr, "missing %s\n", key);
    }
    json_object_foreach(json_object_get(sample, "HostConfig"), key, v)
    {
        json_t *ours = json_object_get(json_object_get(b, "HostConfig"), key);
        CHECK(ours != NULL && json_equal(ours, v));
    }
    json_decref(b);
    json_decref(sample);
    free(text);
}

static void test_outputs_body(void)
{
    json_t *b = ld_outputs_body("img:1", NULL, "/w/outputs", 4242, 4243, "exec-1", "own");
    CHECK_STR(jstr(b, "Image"), "img:1");
    CHECK_STR(jstr(b, "User"), "0:0");
    CHECK_JSON(jget(b, "Entrypoint"), "[\"/bin/sh\",\"-c\",\"chown -R 4242:4243 /ferry/outputs "
                                      "&& chmod -R u+rwX /ferry/outputs\"]");
    CHECK_JSON(jget(b, "HostConfig.Mounts"), "[{\"ReadOnly\":false,\"Source\":\"/w/outputs\","
                                             "\"Target\":\"/ferry/outputs\",\"Type\":\"bind\"}]");
    CHECK_STR(jstr(b, "HostConfig.NetworkMode"), "none");
    CHECK_STR(json_string_value(json_object_get(jget(b, "Labels"), "ferry.role")), "outputs");
    CHECK_STR(json_string_value(json_object_get(jget(b, "Labels"), "ferry.execution")), "exec-1");
    json_decref(b);
}

static void test_image_refs(void)
{
    static const struct {
        const char *in, *registry, *repository, *tag;
    } ok[] = {
        {"busybox", "docker.io", "busybox", "latest"},
        {"ferry-test/busybox:1", "docker.io", "ferry-test/busybox", "1"},
        {"127.0.0.1:5000/team/img:tag", "127.0.0.1:5000", "127.0.0.1:5000/team/img", "tag"},
        {"registry.example:5000/img", "registry.example:5000", "registry.example:5000/img",
         "latest"},
        {"localhost/img:2", "localhost", "localhost/img", "2"},
        {"img@sha256:abcd", "docker.io", "img", "sha256:abcd"},
        {"reg.io/a/b:1@sha256:ef01", "reg.io", "reg.io/a/b", "sha256:ef01"},
        {"library/python:3.12-slim", "docker.io", "library/python", "3.12-slim"},
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        ld_image_ref r;
        CHECK_INT(ld_image_ref_parse(ok[i].in, &r), 0);
        CHECK_STR(r.registry, ok[i].registry);
        CHECK_STR(r.repository, ok[i].repository);
        CHECK_STR(r.tag, ok[i].tag);
    }
    const char *bad[] = {"",     "bad image!", "img:", "/img", "a/",   ":tag",
                         "img@", "x?y",        "a#b",  "a%2e", "img\n"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ld_image_ref r;
        CHECK_INT(ld_image_ref_parse(bad[i], &r), -1);
    }
    ld_image_ref r;
    CHECK_INT(ld_image_ref_parse(NULL, &r), -1);
}

static void test_registry_matches(void)
{
    CHECK(ld_registry_matches("127.0.0.1:5000", "127.0.0.1:5000"));
    CHECK(ld_registry_matches("http://Registry.Example:5000/", "registry.example:5000"));
    CHECK(ld_registry_matches("https://index.docker.io/v1/", "docker.io"));
    CHECK(ld_registry_matches("registry-1.docker.io", "docker.io"));
    CHECK(ld_registry_matches("docker.io", "docker.io"));
    CHECK(!ld_registry_matches("registry.example:5000", "127.0.0.1:5000"));
    CHECK(!ld_registry_matches("127.0.0.1:5001", "127.0.0.1:5000"));
    CHECK(!ld_registry_matches("127.0.0.1", "127.0.0.1:5000"));
    CHECK(!ld_registry_matches(NULL, "docker.io"));
    CHECK(!ld_registry_matches("", "docker.io"));
}

static int b64url_value(char c)
{
    const char *tab = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const char *p = strchr(tab, c);
    return c && p ? (int)(p - tab) : -1;
}

static char *b64url_decode(const char *in)
{
    size_t len = strlen(in);
    char *out = ferry_xcalloc(1, len + 1);
    size_t o = 0;
    for (size_t i = 0; i + 3 < len + 0 && i < len; i += 4) {
        int v[4];
        for (int k = 0; k < 4; k++)
            v[k] = in[i + k] == '=' ? 0 : b64url_value(in[i + k]);
        CHECK(v[0] >= 0 && v[1] >= 0 && v[2] >= 0 && v[3] >= 0);
        unsigned n =
            (unsigned)v[0] << 18 | (unsigned)v[1] << 12 | (unsigned)v[2] << 6 | (unsigned)v[3];
        out[o++] = (char)(n >> 16);
        if (in[i + 2] != '=')
            out[o++] = (char)(n >> 8);
        if (in[i + 3] != '=')
            out[o++] = (char)n;
    }
    return out;
}

static void test_registry_auth(void)
{
    const char *password = "p\"a\\ss\n:w@rd+/=\x01\xc3\xa9";
    char *auth = ld_registry_auth("user-1", password, "127.0.0.1:5000");
    CHECK(auth != NULL);
    if (auth == NULL)
        return;
    CHECK_INT(strspn(auth, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_="),
              strlen(auth));
    CHECK_INT(strlen(auth) % 4, 0);
    char *text = b64url_decode(auth);
    json_t *j = json_loads(text, 0, NULL);
    CHECK_STR(jstr(j, "username"), "user-1");
    CHECK_STR(jstr(j, "password"), password);
    CHECK_STR(jstr(j, "serveraddress"), "127.0.0.1:5000");
    json_decref(j);
    free(text);
    ld_secret_free(auth);
    /* Lengths that pad with one, two and no '='. */
    for (int n = 0; n < 6; n++) {
        char user[8] = "uuuuuu";
        user[n] = '\0';
        auth = ld_registry_auth(user, "", "");
        text = b64url_decode(auth);
        j = json_loads(text, 0, NULL);
        CHECK_STR(jstr(j, "username"), user);
        json_decref(j);
        free(text);
        ld_secret_free(auth);
    }
}

static void test_settings(void)
{
    char why[400], sock[108];
    int64_t v = 0;
    CHECK_INT(ld_parse_cpus("1.5", &v, why, sizeof(why)), 0);
    CHECK_INT(v, 1500000000);
    CHECK_INT(ld_parse_cpus("0.001", &v, why, sizeof(why)), 0);
    CHECK_INT(v, 1000000);
    CHECK_INT(ld_parse_cpus("8", &v, why, sizeof(why)), 0);
    CHECK_INT(v, 8000000000LL);
    const char *bad_cpus[] = {"0", "-1", "abc", "1.5x", "", "nan", "inf", "1e9"};
    for (size_t i = 0; i < sizeof(bad_cpus) / sizeof(bad_cpus[0]); i++) {
        CHECK_INT(ld_parse_cpus(bad_cpus[i], &v, why, sizeof(why)), -1);
        CHECK_CONTAINS(why, "setting \"docker_cpus\"");
    }
    static const struct {
        const char *in;
        int64_t bytes;
    } mem[] = {{"512m", 536870912},        {"1g", 1073741824},     {"1.5g", 1610612736},
               {"512MB", 536870912},       {"512mib", 536870912},  {"6m", 6291456},
               {"1048576000", 1048576000}, {"100000k", 102400000}, {"1t", 1099511627776LL}};
    for (size_t i = 0; i < sizeof(mem) / sizeof(mem[0]); i++) {
        CHECK_INT(ld_parse_memory(mem[i].in, &v, why, sizeof(why)), 0);
        CHECK_INT(v, mem[i].bytes);
    }
    const char *bad_mem[] = {"5m", "12q", "", "m", "-1g", "1gg", "1 g", "0"};
    for (size_t i = 0; i < sizeof(bad_mem) / sizeof(bad_mem[0]); i++) {
        CHECK_INT(ld_parse_memory(bad_mem[i], &v, why, sizeof(why)), -1);
        CHECK_CONTAINS(why, "setting \"docker_memory\"");
    }
    const char *nets[] = {"none", "host", "bridge", "container:abc123", "my-net_1.x"};
    for (size_t i = 0; i < sizeof(nets) / sizeof(nets[0]); i++)
        CHECK_INT(ld_parse_network(nets[i], why, sizeof(why)), 0);
    const char *bad_nets[] = {"", "no spaces", "a/b", "-x", "a;b"};
    for (size_t i = 0; i < sizeof(bad_nets) / sizeof(bad_nets[0]); i++) {
        CHECK_INT(ld_parse_network(bad_nets[i], why, sizeof(why)), -1);
        CHECK_CONTAINS(why, "setting \"docker_network\"");
    }
    CHECK_INT(ld_parse_socket(NULL, sock, sizeof(sock), why, sizeof(why)), 0);
    CHECK_STR(sock, "/var/run/docker.sock");
    CHECK_INT(ld_parse_socket("unix:///x/y.sock", sock, sizeof(sock), why, sizeof(why)), 0);
    CHECK_STR(sock, "/x/y.sock");
    CHECK_INT(ld_parse_socket("rel.sock", sock, sizeof(sock), why, sizeof(why)), -1);
    CHECK_CONTAINS(why, "setting \"docker_socket\"");
    char long_path[200];
    memset(long_path, 'a', sizeof(long_path) - 1);
    long_path[0] = '/';
    long_path[sizeof(long_path) - 1] = '\0';
    CHECK_INT(ld_parse_socket(long_path, sock, sizeof(sock), why, sizeof(why)), -1);
}

static void test_version_pick(void)
{
    static const struct {
        const char *json, *want;
    } ok[] = {
        {"{\"ApiVersion\":\"1.41\",\"MinAPIVersion\":\"1.12\"}", "1.41"},
        {"{\"ApiVersion\":\"1.40\"}", "1.40"},
        {"{\"ApiVersion\":\"1.47\",\"MinAPIVersion\":\"1.24\"}", "1.43"},
        {"{\"ApiVersion\":\"2.3\",\"MinAPIVersion\":\"1.40\"}", "1.43"},
    };
    char out[16], why[400];
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        CHECK_INT(ld_api_version_pick(ok[i].json, "/s.sock", out, sizeof(out), why, sizeof(why)),
                  0);
        CHECK_STR(out, ok[i].want);
    }
    static const struct {
        const char *json, *why;
    } bad[] = {
        {"{\"ApiVersion\":\"1.39\",\"MinAPIVersion\":\"1.12\"}", "1.39, too old"},
        {"{\"ApiVersion\":\"1.50\",\"MinAPIVersion\":\"1.44\"}", "minimum is 1.44"},
        {"{\"Version\":\"20.10\"}", "does not answer like a Docker daemon"},
        {"{\"ApiVersion\":\"one\"}", "does not answer like a Docker daemon"},
        {"not json", "does not answer like a Docker daemon"},
        {NULL, "does not answer like a Docker daemon"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        CHECK_INT(ld_api_version_pick(bad[i].json, "/s.sock", out, sizeof(out), why, sizeof(why)),
                  -1);
        CHECK_CONTAINS(why, bad[i].why);
        CHECK_CONTAINS(why, "/s.sock");
    }
}

static void test_progress(void)
{
    size_t len = 0;
    char *text = vector("images_create_pull_progress.jsonl", &len);
    static const struct {
        ld_progress_kind kind;
        const char *text;
    } want[] = {
        {LD_PROGRESS_STATUS, "3.1: Pulling from library/alpine"},
        {LD_PROGRESS_STATUS, "8f13703509f7: Pulling fs layer"},
        {LD_PROGRESS_TICK, "8f13703509f7: Downloading 32.77 kB/2.244 MB"},
        {LD_PROGRESS_STATUS, "38c3018eb09a: Waiting"},
        {LD_PROGRESS_STATUS, "97ef66a8492a: Verifying Checksum"},
        {LD_PROGRESS_STATUS, "97ef66a8492a: Download complete"},
        {LD_PROGRESS_TICK, "d7bfe07ed847: Extracting 11.5MB/28.57MB"},
        {LD_PROGRESS_STATUS, "d7bfe07ed847: Pull complete"},
        {LD_PROGRESS_STATUS, "ccc333: Already exists"},
        {LD_PROGRESS_STATUS,
         "Digest: sha256:82302b06360729842acd27ab8a91c90e244f17e464fcfd366b7427af652c5559"},
        {LD_PROGRESS_STATUS, "Status: Downloaded newer image for mongo:latest"},
    };
    size_t n = 0;
    for (char *line = text, *next; line && *line; line = next, n++) {
        next = strchr(line, '\n');
        size_t l = next ? (size_t)(next - line) : strlen(line);
        if (next)
            next++;
        char out[512];
        ld_progress_kind k = ld_progress_line(line, l, out, sizeof(out));
        if (n < sizeof(want) / sizeof(want[0])) {
            CHECK_INT(k, want[n].kind);
            CHECK_STR(out, want[n].text);
        }
    }
    CHECK_INT(n, sizeof(want) / sizeof(want[0]));
    free(text);
    text = vector("images_create_pull_errors.jsonl", &len);
    const char *errors[] = {"unauthorized: HTTP Basic: Access denied", "manifest unknown"};
    n = 0;
    for (char *line = text, *next; line && *line; line = next, n++) {
        next = strchr(line, '\n');
        size_t l = next ? (size_t)(next - line) : strlen(line);
        if (next)
            next++;
        char out[512];
        CHECK_INT(ld_progress_line(line, l, out, sizeof(out)), LD_PROGRESS_ERROR);
        if (n < 2)
            CHECK_STR(out, errors[n]);
    }
    CHECK_INT(n, 2);
    free(text);
    char out[64];
    CHECK_INT(ld_progress_line("", 0, out, sizeof(out)), LD_PROGRESS_NONE);
    CHECK_INT(ld_progress_line("garbage", 7, out, sizeof(out)), LD_PROGRESS_NONE);
    CHECK_INT(ld_progress_line("[1]", 3, out, sizeof(out)), LD_PROGRESS_NONE);
    /* Go's \u003c escapes come out as the characters. */
    const char *go = "{\"status\":\"a\\u003cb\\u0026c\"}";
    CHECK_INT(ld_progress_line(go, strlen(go), out, sizeof(out)), LD_PROGRESS_STATUS);
    CHECK_STR(out, "a<b&c");
}

static ferry_http_response answer(const char *body)
{
    ferry_http_response r = {.struct_size = sizeof(r),
                             .status = 200,
                             .body = body,
                             .body_len = strlen(body),
                             .headers = ""};
    return r;
}

static size_t status_line(char *text, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static size_t status_line(char *text, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    size_t n = ld_status_line(text, cap, fmt, ap);
    va_end(ap);
    return n;
}

/* Status lines end in exactly one newline and are cut to fit. */
static void test_status_line(void)
{
    char text[16];
    CHECK_INT((long long)status_line(text, sizeof(text), "pulled %s", "a"), 9);
    CHECK_STR(text, "pulled a\n");
    CHECK_INT((long long)status_line(text, sizeof(text), "%s", "0123456789abcdefghij"), 15);
    CHECK_STR(text, "0123456789abcd\n");
    CHECK_INT((long long)status_line(text, sizeof(text), "%s", ""), 1);
    CHECK_STR(text, "\n");
}

static void test_answers(void)
{
    size_t len = 0;
    char *text = vector("responses.json", &len);
    json_t *j = json_loadb(text ? text : "", len, 0, NULL);
    const char *key;
    json_t *v;
    int created = 0, waited = 0;
    json_object_foreach(j, key, v)
    {
        char *body = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        ferry_http_response r = answer(body);
        char id[LD_ID_CAP];
        if (strstr(key, "containers/create -> 201")) {
            CHECK_INT(ld_created_id(&r, id, sizeof(id)), 0);
            CHECK_STR(id, json_string_value(json_object_get(v, "Id")));
            created++;
        } else if (strstr(key, "wait -> 200")) {
            CHECK_INT(ld_wait_code(&r), json_integer_value(json_object_get(v, "StatusCode")));
            waited++;
        } else if (json_is_object(v) && json_object_get(v, "message")) {
            CHECK_INT(ld_created_id(&r, id, sizeof(id)), -1);
            CHECK_INT(ld_wait_code(&r), -1);
        }
        free(body);
    }
    CHECK_INT(created, 2);
    CHECK_INT(waited, 2);
    json_decref(j);
    free(text);
    char id[LD_ID_CAP];
    ferry_http_response r = answer("{\"Id\":\"../../etc\"}");
    CHECK_INT(ld_created_id(&r, id, sizeof(id)), -1); /* it goes into URL paths */
    r = answer("{\"State\":{\"OOMKilled\":true,\"ExitCode\":137}}");
    CHECK(ld_inspect_oom_killed(&r));
    r = answer("{\"State\":{\"OOMKilled\":false}}");
    CHECK(!ld_inspect_oom_killed(&r));
    r = answer("nonsense");
    CHECK(!ld_inspect_oom_killed(&r));
}

static void test_owner(void)
{
    char mine[192], second[192];
    CHECK_INT(ld_owner_make(mine, sizeof(mine)), 0);
    CHECK_INT(ld_owner_make(second, sizeof(second)), 0);
    CHECK(strcmp(mine, second) != 0); /* each instance its own */
    char host[128], boot[16];
    long pid;
    unsigned long long start;
    unsigned n;
    CHECK_INT(sscanf(mine, "%127[^/]/%15[^/]/%ld/%llu/%u", host, boot, &pid, &start, &n), 5);
    CHECK_INT(pid, getpid());
    CHECK_INT(ld_owner_judge(mine, mine), LD_OWNER_MINE);
    CHECK_INT(ld_owner_judge(second, mine), LD_OWNER_LIVE); /* same process, another instance */
    CHECK_INT(ld_owner_judge(NULL, mine), LD_OWNER_ORPHANED);
    CHECK_INT(ld_owner_judge("garbage", mine), LD_OWNER_ORPHANED);
    char *other = ferry_asprintf("elsewhere/%s/%ld/%llu/1", boot, pid, start);
    CHECK_INT(ld_owner_judge(other, mine), LD_OWNER_LIVE);
    free(other);
    other = ferry_asprintf("%s/00000000/%ld/%llu/1", host, pid, start);
    CHECK_INT(ld_owner_judge(other, mine), LD_OWNER_ORPHANED);
    free(other);
    /* A process that is gone: a child, reaped. */
    pid_t child = fork();
    if (child == 0)
        _exit(0);
    waitpid(child, NULL, 0);
    other = ferry_asprintf("%s/%s/%ld/1/1", host, boot, (long)child);
    CHECK_INT(ld_owner_judge(other, mine), LD_OWNER_ORPHANED);
    free(other);
    /* The same pid, started at another time: pid reuse is not life. */
    other = ferry_asprintf("%s/%s/%ld/%llu/1", host, boot, (long)getppid(), 1ULL);
    CHECK_INT(ld_owner_judge(other, mine), LD_OWNER_ORPHANED);
    free(other);
}

int main(void)
{
    vectors = getenv("FERRY_VECTORS_DIR");
    if (vectors == NULL) {
        fprintf(stderr, "FERRY_VECTORS_DIR is not set\n");
        return 2;
    }
    test_run_body();
    test_entrypoint_shell();
    test_device_requests();
    test_body_shape();
    test_outputs_body();
    test_image_refs();
    test_registry_matches();
    test_registry_auth();
    test_settings();
    test_version_pick();
    test_progress();
    test_status_line();
    test_answers();
    test_owner();
    TEST_MAIN_END();
}
