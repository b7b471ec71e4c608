/* Output metadata in ferryd's state (core/state/uploadrows.c, exec.c): the
 * metadata a worker declares goes into the output's row when the output is
 * stored, a second store after it was forgotten keeps it, an output
 * declared without any (an agent before output metadata) answers {}; and
 * GET .../outputs lifts valohai.tags and valohai.alias. */
#include "test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db_fixture.h"
#include "exec.h"
#include "uploadrows.h"
#include "util.h"

#define SHA "0000000000000000000000000000000000000000000000000000000000000000"

static ferryd d;

static char *outputs_text(const char *id)
{
    json_t *j = ferry_exec_outputs_json(&d, id);
    char *text = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(j);
    return text;
}

static void test_declared_then_stored(void)
{
    json_t *meta = json_pack("{s:[s,s], s:s, s:i}", "valohai.tags", "a", "b", "valohai.alias",
                             "best", "epochs", 3);
    ferry_uploadrows_declare_metadata(&d, "e1", "model.pkl", meta);
    ferry_uploadrows_declare_metadata(&d, "e1", "plain.txt", NULL);
    CHECK_INT(ferry_exec_add_output(&d, "e1", "model.pkl", 7, SHA), 0);
    CHECK_INT(ferry_exec_add_output(&d, "e1", "plain.txt", 1, SHA), 0);
    char *text = outputs_text("e1");
    CHECK_STR(text, "[{\"alias\":\"best\",\"metadata\":{\"epochs\":3,\"valohai.alias\":\"best\","
                    "\"valohai.tags\":[\"a\",\"b\"]},\"name\":\"model.pkl\",\"sha256\":\"" SHA
                    "\",\"size\":7,\"tags\":[\"a\",\"b\"]},"
                    "{\"metadata\":{},\"name\":\"plain.txt\",\"sha256\":\"" SHA
                    "\",\"size\":1,\"tags\":[]}]");
    free(text);
    /* The execution ended: the declarations go, the stored rows keep theirs,
     * even when an output is stored once more (a retried PUT). */
    ferry_uploadrows_forget_metadata(&d, "e1");
    CHECK_INT(ferry_exec_add_output(&d, "e1", "model.pkl", 7, SHA), 0);
    json_t *outs = ferry_exec_outputs_json(&d, "e1");
    CHECK(json_equal(json_object_get(json_array_get(outs, 0), "metadata"), meta));
    json_decref(outs);
    json_decref(meta);
}

static void test_one_tag_as_text(void)
{
    json_t *meta = json_pack("{s:s, s:i}", "valohai.tags", "solo", "valohai.alias", 5);
    ferry_uploadrows_declare_metadata(&d, "e2", "x.bin", meta);
    CHECK_INT(ferry_exec_add_output(&d, "e2", "x.bin", 1, SHA), 0);
    json_t *outs = ferry_exec_outputs_json(&d, "e2");
    json_t *o = json_array_get(outs, 0);
    char *tags = json_dumps(json_object_get(o, "tags"), JSON_COMPACT);
    CHECK_STR(tags, "[\"solo\"]");
    CHECK(json_object_get(o, "alias") == NULL); /* not a string: in metadata only */
    free(tags);
    json_decref(outs);
    json_decref(meta);
}

int main(void)
{
    char tmpl[] = "/tmp/ferry-outrows.XXXXXX";
    CHECK(mkdtemp(tmpl) != NULL);
    snprintf(d.data_dir, sizeof(d.data_dir), "%s", tmpl);
    d.loop = uv_default_loop();
    db_fixture_open(&d);
    test_declared_then_stored();
    test_one_tag_as_text();
    db_fixture_close(&d);
    ferry_rmtree(tmpl);
    TEST_MAIN_END();
}
