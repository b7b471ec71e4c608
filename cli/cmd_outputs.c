/* ferry outputs: list an execution's output files, or download them and
 * check each against the sha256 ferryd recorded. */
#include "cli.h"

#include "util.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FERRY__PROPS_WIDTH 48

/* An output's metadata on one short line, "k=v, k=v" (strings as they are,
 * other values as JSON), the user's own keys before Valohai's
 * ("valohai.tags"...), cut at a character boundary with "...". */
static void ferry__properties(const json_t *o, char *out, size_t cap)
{
    size_t len = 0;
    int cut = 0;
    const char *key;
    json_t *v;
    out[0] = '\0';
    for (int valohai = 0; valohai < 2 && !cut; valohai++) {
        json_object_foreach((json_t *)json_object_get(o, "metadata"), key, v)
        {
            if ((strncmp(key, "valohai.", 8) == 0) != valohai)
                continue;
            char *value =
                json_is_string(v)
                    ? ferry_strdup(json_string_value(v))
                    : json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(15));
            char *item = ferry_asprintf("%s%s=%s", len ? ", " : "", key, value ? value : "?");
            size_t n = strlen(item);
            cut = len + n > cap - 1;
            if (cut)
                n = cap - 1 - len;
            memcpy(out + len, item, n);
            len += n;
            out[len] = '\0';
            free(item);
            free(value);
            if (cut)
                break;
        }
    }
    for (char *p = out; *p; p++) /* one line, whatever the values hold */
        if ((unsigned char)*p < 0x20)
            *p = ' ';
    if (cut && cap > 4) {
        size_t end = cap - 4;
        while (end > 0 && ((unsigned char)out[end] & 0xC0) == 0x80)
            end--; /* not inside a UTF-8 character */
        memcpy(out + end, "...", 4);
    }
}

/* The answer's "outputs" as a table: name, size, sha256 and the datum
 * that names it (datum://<id>, for another execution's --input); a
 * PROPERTIES column when any output has metadata (--json gives it whole). */
static void ferry__print_outputs(const json_t *answer)
{
    const json_t *outputs = json_object_get(answer, "outputs");
    size_t width = strlen("NAME"), i;
    int props = 0;
    json_t *o;
    json_array_foreach(outputs, i, o)
    {
        size_t n = strlen(ferry_cli_str(o, "name"));
        width = n > width ? n : width;
        props |= json_object_size(json_object_get(o, "metadata")) > 0;
    }
    printf("%-*s  %10s  %-64s  %-44s%s\n", (int)width, "NAME", "SIZE", "SHA256", "DATUM",
           props ? "  PROPERTIES" : "");
    json_array_foreach(outputs, i, o)
    {
        char size[32], text[FERRY__PROPS_WIDTH + 1];
        ferry_cli_format_size(json_integer_value(json_object_get(o, "size")), size, sizeof(size));
        ferry__properties(o, text, sizeof(text));
        const char *datum = ferry_cli_str(o, "datum");
        printf("%-*s  %10s  %-64s  %-44s%s%s\n", (int)width, ferry_cli_str(o, "name"), size,
               ferry_cli_str(o, "sha256"), datum[0] ? datum : "-", props ? "  " : "",
               props ? text : "");
    }
}

/* "/v1/executions/<id>/outputs/<name>" with each part of name escaped. */
static char *ferry__output_path(const char *id, const char *name)
{
    char *path = ferry_cli_exec_path(id, "/outputs");
    for (const char *p = name; *p;) {
        size_t n = strcspn(p, "/");
        char *part = ferry_xmalloc(n + 1);
        memcpy(part, p, n);
        part[n] = '\0';
        char *e = ferry_cli_escape(part);
        char *next = ferry_asprintf("%s/%s", path, e);
        free(e);
        free(part);
        free(path);
        path = next;
        p += n + (p[n] == '/' ? 1 : 0);
    }
    return path;
}

static int ferry__to_file(void *arg, const char *data, size_t len)
{
    return fwrite(data, 1, len, (FILE *)arg) == len ? 0 : FERRY_EIO;
}

static int ferry__mkdirs_for(const char *file)
{
    char *dir = ferry_strdup(file);
    char *slash = strrchr(dir, '/');
    int rc = 0;
    if (slash != NULL && slash != dir) {
        *slash = '\0';
        rc = ferry_file_mkdirs(dir, 0755);
    }
    free(dir);
    return rc;
}

/* GET the output into `f`. With a store that is not a local directory
 * ferryd redirects to a short-lived presigned URL; that is followed here,
 * without the token (it is for ferryd alone). 1 when it was followed. */
static int ferry__fetch(const ferry_cli *cli, const char *path, FILE *f, ferry_cli_response *res)
{
    ferry_cli_request req = {.method = "GET", .path = path, .sink = ferry__to_file, .sink_arg = f};
    ferry_cli_http(cli, &req, res);
    if (!res->transport_ok || res->status < 300 || res->status >= 400 || res->location == NULL)
        return 0;
    char *where = ferry_strdup(res->location);
    ferry_cli_response_free(res);
    ferry_cli_request away = {.method = "GET", .url = where, .sink = ferry__to_file, .sink_arg = f};
    ferry_cli_http(cli, &away, res);
    free(where);
    return 1;
}

/* The store's answer to a presigned GET that failed: no secret in it. */
static int ferry__store_failed(const char *name, const ferry_cli_response *res)
{
    int n = (int)strcspn(res->body, "\r\n");
    if (!res->connected)
        fprintf(stderr, "ferry: output '%s': cannot reach the store: %s\n", name, res->reason);
    else
        fprintf(stderr, "ferry: output '%s': the store answered HTTP %ld: %.*s\n", name,
                res->status, n > 300 ? 300 : n, res->body);
    return FERRY_EXIT_FAILED;
}

/* Fetch into a side file and move it into place only once its size and
 * sha256 match, so a bad or partial download never sits under the name. */
static int ferry__check_download(const char *name, const char *part, const json_t *o)
{
    char sha[65];
    int64_t size = 0;
    if (ferry_sha256_file(part, sha, &size) != 0) {
        fprintf(stderr, "ferry: output '%s': cannot read back %s\n", name, part);
        return FERRY_EXIT_FAILED;
    }
    const char *want = ferry_cli_str(o, "sha256");
    if (strcmp(sha, want) != 0) {
        fprintf(stderr,
                "ferry: output '%s': sha256 mismatch: ferryd recorded %s, the download is %s "
                "(%lld bytes); not kept\n",
                name, want, sha, (long long)size);
        return FERRY_EXIT_FAILED;
    }
    return FERRY_EXIT_OK;
}

static int ferry__download_one(const ferry_cli *cli, const char *id, const json_t *o,
                               const char *dir)
{
    const char *name = ferry_cli_str(o, "name");
    if (!ferry_safe_relpath(name)) {
        fprintf(stderr, "ferry: refusing output name '%s': it would leave %s\n", name, dir);
        return FERRY_EXIT_FAILED;
    }
    char *dest = ferry_asprintf("%s/%s", dir, name);
    char *part = ferry_asprintf("%s.ferry-part", dest);
    int rc = FERRY_EXIT_OK, e = ferry__mkdirs_for(dest);
    FILE *f = e == 0 ? fopen(part, "wb") : NULL;
    if (f == NULL) {
        fprintf(stderr, "ferry: cannot write %s: %s\n", part,
                e != 0 ? ferry_strerror(e) : strerror(errno));
        rc = FERRY_EXIT_FAILED;
    } else {
        char *path = ferry__output_path(id, name);
        ferry_cli_response res;
        int from_store = ferry__fetch(cli, path, f, &res);
        int write_failed = fclose(f) != 0 || res.sink_failed;
        if (write_failed) {
            fprintf(stderr, "ferry: cannot write %s: %s\n", part, strerror(errno));
            rc = FERRY_EXIT_FAILED;
        } else if (!res.transport_ok || res.status < 200 || res.status >= 300) {
            rc = from_store ? ferry__store_failed(name, &res) : ferry_cli_report(cli, &res);
        } else {
            rc = ferry__check_download(name, part, o);
        }
        ferry_cli_response_free(&res);
        free(path);
        if (rc == FERRY_EXIT_OK && rename(part, dest) != 0) {
            fprintf(stderr, "ferry: cannot move %s into place: %s\n", part, strerror(errno));
            rc = FERRY_EXIT_FAILED;
        }
        if (rc != FERRY_EXIT_OK)
            unlink(part);
    }
    if (rc == FERRY_EXIT_OK) {
        char size[32];
        ferry_cli_format_size(json_integer_value(json_object_get(o, "size")), size, sizeof(size));
        printf("%s  %s\n", dest, size);
    }
    free(part);
    free(dest);
    return rc;
}

/* Download every output; one failure does not stop the others, but losing
 * ferryd does. */
static int ferry__download_all(const ferry_cli *cli, const char *id, const json_t *outputs,
                               const char *dir)
{
    int e = ferry_file_mkdirs(dir, 0755);
    if (e != 0) {
        fprintf(stderr, "ferry: cannot create %s: %s\n", dir, ferry_strerror(e));
        return FERRY_EXIT_FAILED;
    }
    int rc = FERRY_EXIT_OK;
    size_t i;
    json_t *o;
    json_array_foreach(outputs, i, o)
    {
        int one = ferry__download_one(cli, id, o, dir);
        if (one == FERRY_EXIT_UNREACHABLE || one == FERRY_EXIT_AUTH)
            return one; /* the rest would fail the same way */
        if (one != FERRY_EXIT_OK)
            rc = one;
    }
    return rc;
}

static const char ferry__outputs_usage[] =
    "usage: ferry outputs ID [--download DIR] [--project NAME] [--json]\n"
    "\n"
    "List an execution's output files (name, size, sha256, the datum:// URI that\n"
    "names each for another execution's --input, properties), or download them.\n"
    "The properties are what the execution wrote in valohai.metadata.jsonl and\n"
    "<file>.metadata.json; --json gives them whole.\n"
    "\n"
    "  --download DIR  save each output as DIR/<name>, creating folders, and check\n"
    "                  its sha256; a mismatch is an error and the file is not kept\n"
    "  --project NAME  look a counter ID up in this project\n"
    "  --json          print ferryd's answer as JSON\n";

static const struct option ferry__outputs_options[] = {
    {"download", required_argument, NULL, 'd'},
    {NULL, 0, NULL, 0},
};

static const ferry_cli_syntax ferry__outputs_syntax = {
    .name = "outputs",
    .usage = ferry__outputs_usage,
    .operands = FERRY_CLI_ONE_ID,
    .project = 1,
    .json = 1,
    .options = ferry__outputs_options,
    .on_option = ferry_cli_store_arg, /* --download */
};

int ferry_cmd_outputs(const ferry_cli *cli, int argc, char **argv)
{
    const char *dir = NULL;
    ferry_cli_args a;
    int rc = ferry_cli_parse_args(&ferry__outputs_syntax, &dir, argc, argv, &a);
    if (rc != FERRY_CLI_GO_ON)
        return rc;
    char *uuid = NULL;
    json_t *answer = NULL;
    rc = ferry_cli_fetch_exec(cli, &a, "GET", "/outputs", &uuid, &answer);
    if (rc == FERRY_EXIT_OK && dir != NULL)
        rc = ferry__download_all(cli, uuid, json_object_get(answer, "outputs"), dir);
    else if (rc == FERRY_EXIT_OK)
        ferry_cli_print_answer(a.json, answer, ferry__print_outputs);
    json_decref(answer);
    free(uuid);
    return rc;
}
