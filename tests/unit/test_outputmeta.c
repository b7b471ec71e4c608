/* Output metadata as Valohai users write it (agent/outputmeta.c): the
 * lines of valohai.metadata.jsonl, the <file>.metadata.json sidecars over
 * them, and every line that cannot be used named in a warning. */
#include "test.h"

#include <jansson.h>

#include "outputmeta.h"
#include "util.h"

static const char *outputs[] = {"model.pkl", "data/train.csv", "notes.txt"};

static int known(void *arg, const char *name)
{
    (void)arg;
    for (size_t i = 0; i < sizeof(outputs) / sizeof(outputs[0]); i++)
        if (strcmp(outputs[i], name) == 0)
            return 1;
    return 0;
}

static char warnings[8192];
static int n_warnings;

static void warn(void *arg, const char *text)
{
    (void)arg;
    n_warnings++;
    size_t at = strlen(warnings);
    snprintf(warnings + at, sizeof(warnings) - at, "%s\n", text);
}

static const outputmeta_hooks hooks = {.known = known, .warn = warn};

static void reset(void)
{
    warnings[0] = '\0';
    n_warnings = 0;
}

static char *dump(const json_t *j)
{
    return json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(15)); /* as the API */
}

static void test_is_meta(void)
{
    CHECK(outputmeta_is_meta("valohai.metadata.jsonl"));
    CHECK(outputmeta_is_meta("model.pkl.metadata.json"));
    CHECK(outputmeta_is_meta("sub/a.csv.metadata.json"));
    CHECK(!outputmeta_is_meta(".metadata.json"));
    CHECK(!outputmeta_is_meta("sub/valohai.metadata.jsonl")); /* only outputs/ itself */
    CHECK(!outputmeta_is_meta("model.pkl"));
    CHECK(!outputmeta_is_meta("metadata.json"));
}

static void test_jsonl_and_sidecar(void)
{
    reset();
    const char *jsonl =
        "{\"file\": \"model.pkl\", \"metadata\": {\"valohai.tags\": [\"a\", \"b\"],"
        " \"valohai.alias\": \"best-model\", \"accuracy\": 0.93, \"stage\": \"dev\"}}\n"
        "\n"
        "{\"file\": \"./data/train.csv\", \"metadata\": {\"valohai.dataset-versions\":"
        " [\"dataset://mydata/v2\"], \"rows\": 2}}\r\n"
        "{\"file\": \"model.pkl\", \"metadata\": {\"epochs\": 3}}";
    json_t *by_file = json_object();
    outputmeta_jsonl(by_file, jsonl, strlen(jsonl), &hooks);
    const char *sidecar = "{\"stage\": \"prod\", \"nested\": {\"x\": [1, null, true]}}";
    outputmeta_sidecar(by_file, "model.pkl.metadata.json", sidecar, strlen(sidecar), &hooks);
    CHECK_INT(n_warnings, 0);
    char *text = dump(by_file);
    /* lines merge, the sidecar wins for "stage"; values are kept as given */
    CHECK_STR(text, "{\"data/train.csv\":{\"rows\":2,\"valohai.dataset-versions\":"
                    "[\"dataset://mydata/v2\"]},\"model.pkl\":{\"accuracy\":0.93,\"epochs\":3,"
                    "\"nested\":{\"x\":[1,null,true]},\"stage\":\"prod\",\"valohai.alias\":"
                    "\"best-model\",\"valohai.tags\":[\"a\",\"b\"]}}");
    free(text);
    json_decref(by_file);
}

static void test_bad_lines_are_named(void)
{
    reset();
    const char *jsonl = "{\"file\": \"model.pkl\", \"metadata\": {\"k\": 1}}\n"
                        "[1, 2]\n"
                        "{not json\n"
                        "{\"metadata\": {\"k\": 2}}\n"
                        "{\"file\": \"gone.bin\", \"metadata\": {\"k\": 3}}\n"
                        "{\"file\": \"notes.txt\", \"metadata\": 7}\n"
                        "{\"file\": \"notes.txt\", \"metadata\": {\"k\": 4}}\n";
    json_t *by_file = json_object();
    outputmeta_jsonl(by_file, jsonl, strlen(jsonl), &hooks);
    CHECK_INT(n_warnings, 5);
    CHECK_CONTAINS(warnings, "valohai.metadata.jsonl:2: not a JSON object");
    CHECK_CONTAINS(warnings, "valohai.metadata.jsonl:3: not JSON: ");
    CHECK_CONTAINS(warnings, "valohai.metadata.jsonl:4: no \"file\"");
    CHECK_CONTAINS(warnings, "valohai.metadata.jsonl:5: \"file\" names no output: gone.bin");
    CHECK_CONTAINS(warnings, "valohai.metadata.jsonl:6: \"metadata\" of notes.txt is something");
    char *text = dump(by_file);
    CHECK_STR(text, "{\"model.pkl\":{\"k\":1},\"notes.txt\":{\"k\":4}}");
    free(text);
    json_decref(by_file);

    reset();
    by_file = json_object();
    outputmeta_sidecar(by_file, "gone.bin.metadata.json", "{}", 2, &hooks);
    outputmeta_sidecar(by_file, "notes.txt.metadata.json", "{\"a\":", 5, &hooks);
    outputmeta_sidecar(by_file, "model.pkl.metadata.json", "[]", 2, &hooks);
    CHECK_INT(n_warnings, 3);
    CHECK_CONTAINS(warnings, "gone.bin.metadata.json: names no output: gone.bin");
    CHECK_CONTAINS(warnings, "notes.txt.metadata.json:1: not JSON: ");
    CHECK_CONTAINS(warnings, "model.pkl.metadata.json: not a JSON object");
    CHECK_INT(json_object_size(by_file), 0);
    json_decref(by_file);
}

/* Garbage of every kind: bounded warnings, no crash. */
static void test_many_bad_lines_bounded(void)
{
    reset();
    size_t len = 200 * 3;
    char *text = ferry_xmalloc(len);
    for (size_t i = 0; i < len; i += 3)
        memcpy(text + i, "{\x01\n", 3);
    json_t *by_file = json_object();
    outputmeta_jsonl(by_file, text, len, &hooks);
    CHECK_INT(n_warnings, OUTPUTMETA_MAX_WARNINGS + 1);
    CHECK_CONTAINS(warnings, "valohai.metadata.jsonl: 180 more problems not shown");
    CHECK_INT(json_object_size(by_file), 0);
    /* NUL bytes and a line without its newline */
    outputmeta_jsonl(by_file, "{\"file\"\0:1}", 11, &hooks);
    outputmeta_sidecar(by_file, "model.pkl.metadata.json", "\0", 1, &hooks);
    CHECK_INT(json_object_size(by_file), 0);
    json_decref(by_file);
    free(text);
}

int main(void)
{
    test_is_meta();
    test_jsonl_and_sidecar();
    test_bad_lines_are_named();
    test_many_bad_lines_bounded();
    TEST_MAIN_END();
}
