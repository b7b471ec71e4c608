/* Fuzz: output properties as an execution writes them (agent/outputmeta.c):
 * valohai.metadata.jsonl and <file>.metadata.json, the commands' own files.
 * Each input is read as both; warnings are bounded, and what they yield is
 * an object of objects. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "outputmeta.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int fuzz__known(void *arg, const char *name)
{
    (void)arg;
    return strcmp(name, "model.pkl") == 0 || strcmp(name, "sub/a.txt") == 0;
}

static void fuzz__warn(void *arg, const char *text)
{
    int *n = arg;
    if (text == NULL || ++*n > OUTPUTMETA_MAX_WARNINGS + 1)
        abort(); /* at most the bound, then one line counting the rest */
}

static void fuzz__check(const json_t *by_file)
{
    const char *name;
    json_t *meta;
    if (!json_is_object(by_file))
        abort();
    json_object_foreach((json_t *)by_file, name, meta)
    {
        if (!json_is_object(meta))
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int warnings = 0;
    outputmeta_hooks h = {.known = fuzz__known, .warn = fuzz__warn, .arg = &warnings};
    json_t *by_file = json_object();
    outputmeta_jsonl(by_file, (const char *)data, size, &h);
    fuzz__check(by_file);
    warnings = 0;
    outputmeta_sidecar(by_file, "model.pkl.metadata.json", (const char *)data, size, &h);
    fuzz__check(by_file);
    json_decref(by_file);
    return 0;
}
