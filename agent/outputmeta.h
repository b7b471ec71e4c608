/* Output properties as Valohai users write them (docs.valohai.com, "Add
 * context to your data with metadata"):
 *
 *   outputs/valohai.metadata.jsonl   one {"file": NAME, "metadata": {...}}
 *                                    per line, NAME relative to outputs/
 *   outputs/<NAME>.metadata.json     one {...}: the metadata of NAME
 *
 * Neither kind is an output itself. The metadata is kept as given
 * (arbitrary JSON values; "valohai.tags", "valohai.alias",
 * "valohai.dataset-versions" among them). A line or file that cannot be
 * used is named in a warning, never dropped silently; the rest is used.
 * No I/O here: the walk (outputs.c) reads the files.
 */
#ifndef FERRY_AGENT_OUTPUTMETA_H
#define FERRY_AGENT_OUTPUTMETA_H

#include <stddef.h>

#include <jansson.h>

#define OUTPUTMETA_JSONL "valohai.metadata.jsonl"
#define OUTPUTMETA_SIDECAR ".metadata.json"
/* A metadata file larger than this is not read (with a warning): all of
 * it travels in one call to ferryd, whose bodies are at most 8 MiB. */
#define OUTPUTMETA_FILE_MAX ((size_t)4 << 20)
/* The warnings one metadata file may give; the rest are counted. */
#define OUTPUTMETA_MAX_WARNINGS 20

/* `text`: one whole line for the log ("valohai.metadata.jsonl:3: ..."). */
typedef void (*outputmeta_warn_cb)(void *arg, const char *text);
/* Whether `name` (relative to outputs/) is an output of the walk. */
typedef int (*outputmeta_known_cb)(void *arg, const char *name);

typedef struct outputmeta_hooks {
    outputmeta_known_cb known;
    outputmeta_warn_cb warn;
    void *arg;
} outputmeta_hooks;

/* 1 when `name` (relative to outputs/) is a metadata file, not an output:
 * outputs/valohai.metadata.jsonl, or any *.metadata.json. */
int outputmeta_is_meta(const char *name);

/* Merges the lines of a valohai.metadata.jsonl into `by_file` (an object:
 * output name -> its metadata object). Several lines for one file merge,
 * the later line winning for a key given twice. */
void outputmeta_jsonl(json_t *by_file, const char *text, size_t len, const outputmeta_hooks *h);

/* Merges the sidecar `name` ("<file>.metadata.json") into `by_file`. Call
 * after outputmeta_jsonl: the sidecar is about one file alone, the more
 * specific of the two, so its keys win over the jsonl's. */
void outputmeta_sidecar(json_t *by_file, const char *name, const char *text, size_t len,
                        const outputmeta_hooks *h);

#endif
