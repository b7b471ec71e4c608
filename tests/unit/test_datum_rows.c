/* Datums, aliases and lineage in ferryd's state (core/state/datumrows.c):
 * each stored output gets a datum id, kept when the same bytes are stored
 * again and new for new bytes; alias names follow the rule; an alias moves
 * with its history; only the producer's owner (or an admin) resolves a
 * datum or an alias; an output's "ferry.alias" / "valohai.alias" sets the
 * alias when it is stored; inputs and consumers link both ways; a
 * database of the previous schema gives its outputs datum ids. */
#include "test.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "datumrows.h"
#include "db_fixture.h"
#include "exec.h"
#include "uploadrows.h"
#include "util.h"

#define SHA_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define SHA_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

static ferryd d;

static void add_exec(const char *id, long long counter, const char *owner)
{
    ferry_exec *e = ferry_exec_new();
    snprintf(e->id, sizeof(e->id), "%s", id);
    e->counter = counter;
    e->project = ferry_strdup("p");
    e->step = ferry_strdup("train");
    e->environment = ferry_strdup("local");
    e->snapshot = ferry_strdup(SHA_A);
    e->command = ferry_strdup("true");
    e->owner = owner ? ferry_strdup(owner) : NULL;
    e->created_at = (double)counter;
    CHECK_INT(ferry_exec_insert(&d, e), 0);
    ferry_exec_free(e);
}

/* The datum id of output `name` of `exec_id` (from GET .../outputs). */
static void datum_of(const char *exec_id, const char *name, char *id)
{
    json_t *outs = ferry_exec_outputs_json(&d, exec_id);
    ferry_datums_annotate_outputs(&d, exec_id, outs);
    id[0] = '\0';
    size_t i;
    json_t *o;
    json_array_foreach(outs, i, o)
    {
        const char *uri = json_string_value(json_object_get(o, "datum"));
        if (strcmp(json_string_value(json_object_get(o, "name")), name) == 0 && uri)
            snprintf(id, 37, "%s", ferry_datum_ref(uri));
    }
    json_decref(outs);
}

#define E1 "11111111-1111-4111-8111-111111111111"
#define E2 "22222222-2222-4222-8222-222222222222"
#define E3 "33333333-3333-4333-8333-333333333333"

static void test_names(void)
{
    CHECK(ferry_alias_name_ok("model-prod"));
    CHECK(ferry_alias_name_ok("a"));
    CHECK(ferry_alias_name_ok("v1.2_x-y"));
    CHECK(!ferry_alias_name_ok(""));
    CHECK(!ferry_alias_name_ok("Model"));
    CHECK(!ferry_alias_name_ok("-model"));
    CHECK(!ferry_alias_name_ok(".model"));
    CHECK(!ferry_alias_name_ok("a/b"));
    CHECK(!ferry_alias_name_ok("a b"));
    char long_name[66];
    memset(long_name, 'a', 65);
    long_name[65] = '\0';
    CHECK(!ferry_alias_name_ok(long_name));
    long_name[64] = '\0';
    CHECK(ferry_alias_name_ok(long_name));
    CHECK(!ferry_alias_name_ok(E1)); /* a datum id wins: never an alias */
    CHECK(ferry_datum_id_shaped(E1));
    CHECK(!ferry_datum_id_shaped("model-prod"));
    CHECK_STR(ferry_datum_ref("datum://x"), "x");
    CHECK(ferry_datum_ref("s3://b/k") == NULL);
}

static void test_ids(void)
{
    add_exec(E1, 1, "alice");
    CHECK_INT(ferry_exec_add_output(&d, E1, "model.bin", 7, SHA_A), 0);
    char first[37], again[37], changed[37];
    datum_of(E1, "model.bin", first);
    CHECK(ferry_datum_id_shaped(first));
    /* A retried store of the same bytes keeps the datum... */
    CHECK_INT(ferry_exec_add_output(&d, E1, "model.bin", 7, SHA_A), 0);
    datum_of(E1, "model.bin", again);
    CHECK_STR(again, first);
    /* ...other bytes under the name are another datum. */
    CHECK_INT(ferry_exec_add_output(&d, E1, "model.bin", 8, SHA_B), 0);
    datum_of(E1, "model.bin", changed);
    CHECK(strcmp(changed, first) != 0);
    ferry_datum dt;
    CHECK(ferry_datums_find(&d, changed, &dt));
    CHECK_STR(dt.exec_id, E1);
    CHECK_STR(dt.name, "model.bin");
    CHECK_STR(dt.sha256, SHA_B);
    CHECK_STR(dt.owner, "alice");
    CHECK(dt.size == 8);
    CHECK(!ferry_datums_find(&d, first, &dt));
}

static void test_aliases_and_visibility(void)
{
    add_exec(E2, 2, "alice");
    CHECK_INT(ferry_exec_add_output(&d, E2, "model.bin", 9, SHA_A), 0);
    char d1[37], d2[37];
    datum_of(E1, "model.bin", d1);
    datum_of(E2, "model.bin", d2);
    CHECK_INT(ferry_alias_set(&d, "model-prod", d1, "alice", "ferry alias set"), 0);
    ferry_datum dt;
    int via = 0;
    CHECK(ferry_datums_resolve(&d, "model-prod", "alice", &dt, &via));
    CHECK_STR(dt.id, d1);
    CHECK_INT(via, 1);
    CHECK(ferry_datums_resolve(&d, d1, "alice", &dt, &via));
    CHECK_INT(via, 0);
    CHECK(ferry_datums_resolve(&d, d1, NULL, &dt, &via)); /* an admin */
    /* bob sees neither alice's datum nor the alias that points at it. */
    CHECK(!ferry_datums_resolve(&d, d1, "bob", &dt, &via));
    CHECK(!ferry_datums_resolve(&d, "model-prod", "bob", &dt, &via));
    CHECK(!ferry_datums_resolve(&d, "nothing", "alice", &dt, &via));
    json_t *bobs = ferry_alias_list(&d, "bob");
    CHECK_INT((int)json_array_size(bobs), 0);
    json_decref(bobs);
    /* The alias moves; its history keeps both. */
    CHECK_INT(ferry_alias_set(&d, "model-prod", d2, "alice", "ferry alias set"), 0);
    CHECK(ferry_datums_resolve(&d, "model-prod", "alice", &dt, &via));
    CHECK_STR(dt.id, d2);
    json_t *h = ferry_alias_history(&d, "model-prod", "alice");
    CHECK_INT((int)json_array_size(h), 2);
    char want1[64], want2[64];
    snprintf(want1, sizeof(want1), "datum://%s", d1);
    snprintf(want2, sizeof(want2), "datum://%s", d2);
    CHECK_STR(json_string_value(json_object_get(json_array_get(h, 0), "datum")), want1);
    CHECK_STR(json_string_value(json_object_get(json_array_get(h, 1), "datum")), want2);
    CHECK_STR(json_string_value(json_object_get(json_array_get(h, 1), "set_by")), "alice");
    json_decref(h);
    json_t *hb = ferry_alias_history(&d, "model-prod", "bob"); /* the moves, not the datums */
    CHECK(json_is_null(json_object_get(json_array_get(hb, 0), "datum")));
    json_decref(hb);
    CHECK(ferry_alias_history(&d, "never-set", NULL) == NULL);
    json_t *list = ferry_alias_list(&d, NULL);
    CHECK_INT((int)json_array_size(list), 1);
    CHECK_STR(json_string_value(json_object_get(json_array_get(list, 0), "execution")), E2);
    json_decref(list);
}

static void test_alias_from_metadata(void)
{
    add_exec(E3, 3, "alice");
    json_t *meta = json_pack("{s:s}", "ferry.alias", "best");
    ferry_uploadrows_declare_metadata(&d, E3, "a.bin", meta);
    json_decref(meta);
    meta = json_pack("{s:s}", "valohai.alias", "vh-best");
    ferry_uploadrows_declare_metadata(&d, E3, "b.bin", meta);
    json_decref(meta);
    meta = json_pack("{s:s}", "valohai.alias", "Not Valid");
    ferry_uploadrows_declare_metadata(&d, E3, "c.bin", meta);
    json_decref(meta);
    CHECK_INT(ferry_exec_add_output(&d, E3, "a.bin", 1, SHA_A), 0);
    CHECK_INT(ferry_exec_add_output(&d, E3, "a.bin", 1, SHA_A), 0); /* a retry: no new move */
    CHECK_INT(ferry_exec_add_output(&d, E3, "b.bin", 1, SHA_A), 0);
    CHECK_INT(ferry_exec_add_output(&d, E3, "c.bin", 1, SHA_A), 0);
    char a[37], b[37];
    datum_of(E3, "a.bin", a);
    datum_of(E3, "b.bin", b);
    ferry_datum dt;
    int via;
    CHECK(ferry_datums_resolve(&d, "best", "alice", &dt, &via));
    CHECK_STR(dt.id, a);
    CHECK(ferry_datums_resolve(&d, "vh-best", "alice", &dt, &via));
    CHECK_STR(dt.id, b);
    CHECK(ferry_alias_history(&d, "Not Valid", NULL) == NULL);
    char c[37];
    datum_of(E3, "c.bin", c);
    CHECK(ferry_datum_id_shaped(c)); /* the output is kept all the same */
    json_t *h = ferry_alias_history(&d, "best", NULL);
    CHECK_INT((int)json_array_size(h), 1);
    CHECK_STR(json_string_value(json_object_get(json_array_get(h, 0), "source")),
              "output a.bin of execution " E3);
    json_decref(h);
}

static void test_lineage(void)
{
    char d2[37];
    datum_of(E2, "model.bin", d2);
    ferry_datum dt;
    CHECK(ferry_datums_find(&d, d2, &dt));
    CHECK_INT(ferry_datums_record_input(&d, E3, "model", &dt, "model-prod"), 0);
    json_t *ins = ferry_datums_exec_inputs(&d, E3);
    CHECK_INT((int)json_array_size(ins), 1);
    json_t *in = json_array_get(ins, 0);
    CHECK_STR(json_string_value(json_object_get(in, "alias")), "model-prod");
    CHECK_STR(json_string_value(json_object_get(in, "sha256")), SHA_A);
    CHECK_STR(json_string_value(json_object_get(in, "output")), "model.bin");
    CHECK_STR(json_string_value(json_object_get(json_object_get(in, "producer"), "id")), E2);
    CHECK(json_integer_value(json_object_get(json_object_get(in, "producer"), "counter")) == 2);
    json_decref(ins);
    json_t *cons = ferry_datums_consumers(&d, d2, NULL);
    CHECK_INT((int)json_array_size(cons), 1);
    CHECK_STR(json_string_value(json_object_get(json_array_get(cons, 0), "id")), E3);
    CHECK_STR(json_string_value(json_object_get(json_array_get(cons, 0), "input")), "model");
    json_decref(cons);
    cons = ferry_datums_consumers(&d, d2, "bob");
    CHECK_INT((int)json_array_size(cons), 0);
    json_decref(cons);
}

/* A data folder of the schema before datums: its outputs get ids. */
static void test_migration(const char *dir)
{
    db_fixture_close(&d);
    char path[PATH_MAX + 16];
    snprintf(path, sizeof(path), "%s/ferry.db", dir);
    sqlite3 *db;
    CHECK_INT(sqlite3_open(path, &db), SQLITE_OK);
    /* The datum migration is the 9th: back to 8, undoing it and the ones
     * after it (10: pipelines). */
    char *sql = sqlite3_mprintf("UPDATE outputs SET datum_id = NULL; PRAGMA user_version = %d;", 8);
    CHECK_INT(sqlite3_exec(db,
                           "DROP INDEX outputs_datum; DROP TABLE aliases;"
                           " DROP TABLE alias_history; DROP TABLE execution_inputs;"
                           " DROP TABLE pipelines; DROP TABLE pipeline_nodes;"
                           " DROP INDEX executions_reuse;"
                           " ALTER TABLE executions DROP COLUMN reuse_key;",
                           NULL, NULL, NULL),
              SQLITE_OK);
    CHECK_INT(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_free(sql);
    /* ALTER TABLE ... DROP COLUMN needs SQLite 3.35: rebuild the table instead. */
    CHECK_INT(
        sqlite3_exec(db,
                     "CREATE TABLE o2 AS SELECT execution_id, name, size, sha256, metadata"
                     " FROM outputs; DROP TABLE outputs; CREATE TABLE outputs ("
                     " execution_id TEXT NOT NULL, name TEXT NOT NULL, size INTEGER NOT NULL,"
                     " sha256 TEXT NOT NULL, metadata TEXT, PRIMARY KEY (execution_id, name));"
                     " INSERT INTO outputs SELECT * FROM o2; DROP TABLE o2;",
                     NULL, NULL, NULL),
        SQLITE_OK);
    sqlite3_close(db);
    memset(&d, 0, sizeof(d));
    snprintf(d.data_dir, sizeof(d.data_dir), "%s", dir);
    d.loop = uv_default_loop();
    db_fixture_open(&d);
    char a[37], b[37];
    datum_of(E3, "a.bin", a);
    datum_of(E3, "b.bin", b);
    CHECK(ferry_datum_id_shaped(a));
    CHECK(ferry_datum_id_shaped(b));
    CHECK(strcmp(a, b) != 0);
}

int main(void)
{
    char tmpl[] = "/tmp/ferry-datums.XXXXXX";
    CHECK(mkdtemp(tmpl) != NULL);
    snprintf(d.data_dir, sizeof(d.data_dir), "%s", tmpl);
    d.loop = uv_default_loop();
    db_fixture_open(&d);
    test_names();
    test_ids();
    test_aliases_and_visibility();
    test_alias_from_metadata();
    test_lineage();
    test_migration(tmpl);
    db_fixture_close(&d);
    ferry_rmtree(tmpl);
    TEST_MAIN_END();
}
