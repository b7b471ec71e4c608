/* Pipelines and their nodes in ferryd's state (core/state/pipelinerows.c):
 * a pipeline is stored with its nodes and counted per project; its status,
 * ending and times and each node's state (execution, attempts, reuse,
 * approval, reason) are written through and read back as they were; a
 * counter is found only among the owner's pipelines and is ambiguous across
 * projects; the unfinished ones are listed for a restart, the others newest
 * first; reuse finds the newest complete execution of a key. */
#include "test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db_fixture.h"
#include "exec.h"
#include "pipelinerows.h"
#include "util.h"

#define SHA_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

static ferryd d;

static ferry_pipeline *make(const char *id, const char *project, const char *owner, double at)
{
    ferry_pipeline *p = ferry_xcalloc(1, sizeof(*p));
    snprintf(p->id, sizeof(p->id), "%s", id);
    p->project = ferry_strdup(project);
    p->name = ferry_strdup("train");
    p->owner = owner ? ferry_strdup(owner) : NULL;
    p->status = ferry_strdup("created");
    p->snapshot = ferry_strdup(SHA_A);
    p->definition = json_pack("{s:[{s:s}], s:[]}", "nodes", "name", "a", "edges");
    p->parameters = json_pack("{s:i}", "epochs", 3);
    p->tags = json_pack("[s]", "nightly");
    p->created_at = at;
    p->n_nodes = 2;
    p->nodes = ferry_xcalloc(2, sizeof(*p->nodes));
    const char *names[] = {"prep", "train"};
    for (int i = 0; i < 2; i++) {
        p->nodes[i].name = ferry_strdup(names[i]);
        p->nodes[i].status = ferry_strdup(FERRY_NODE_PENDING);
        p->nodes[i].base = json_pack("{s:s}", "step", names[i]);
    }
    return p;
}

#define P1 "11111111-1111-4111-8111-111111111111"
#define P2 "22222222-2222-4222-8222-222222222222"
#define P3 "33333333-3333-4333-8333-333333333333"
#define E1 "eeeeeeee-1111-4111-8111-111111111111"

static void test_store_and_load(void)
{
    ferry_pipeline *p = make(P1, "mnist", "alice", 100);
    CHECK_INT(ferry_pipelines_insert(&d, p), 0);
    CHECK_INT((int)p->counter, 1);
    ferry_pnode *n = ferry_pipeline_find_node(p, "train");
    CHECK(n != NULL && n == &p->nodes[1]);
    CHECK(ferry_pipeline_find_node(p, "nope") == NULL);
    snprintf(n->exec_id, sizeof(n->exec_id), "%s", E1);
    free(n->status);
    n->status = ferry_strdup(FERRY_NODE_APPROVAL);
    n->attempts = 2;
    n->reused = 1;
    n->approval = ferry_strdup("waiting");
    n->reason = ferry_strdup("why");
    CHECK_INT(ferry_pipelines_save_node(&d, p, n), 0);
    free(p->status);
    p->status = ferry_strdup("started");
    p->ending = ferry_strdup("stopped");
    p->started_at = 101;
    CHECK_INT(ferry_pipelines_save(&d, p), 0);
    ferry_pipeline_free(p);

    ferry_pipeline *back = NULL;
    CHECK_INT(ferry_pipelines_find(&d, P1, NULL, NULL, &back), 0);
    CHECK_STR(back->status, "started");
    CHECK_STR(back->ending, "stopped");
    CHECK_STR(back->owner, "alice");
    CHECK(back->started_at == 101 && back->created_at == 100 && back->ended_at == 0);
    CHECK_INT((int)json_integer_value(json_object_get(back->parameters, "epochs")), 3);
    CHECK_STR(json_string_value(json_array_get(back->tags, 0)), "nightly");
    CHECK_INT((int)back->n_nodes, 2);
    CHECK_STR(back->nodes[0].name, "prep"); /* in the order given */
    CHECK_STR(back->nodes[1].status, FERRY_NODE_APPROVAL);
    CHECK_STR(back->nodes[1].exec_id, E1);
    CHECK_INT(back->nodes[1].attempts, 2);
    CHECK_INT(back->nodes[1].reused, 1);
    CHECK_STR(back->nodes[1].approval, "waiting");
    CHECK_STR(back->nodes[1].reason, "why");
    CHECK_STR(json_string_value(json_object_get(back->nodes[1].base, "step")), "train");
    CHECK_STR(back->nodes[0].exec_id, "");
    ferry_pipeline_free(back);
}

static void test_counters_and_owners(void)
{
    ferry_pipeline *p2 = make(P2, "mnist", "bob", 200), *p3 = make(P3, "other", "alice", 300);
    CHECK_INT(ferry_pipelines_insert(&d, p2), 0);
    CHECK_INT(ferry_pipelines_insert(&d, p3), 0);
    CHECK_INT((int)p2->counter, 2); /* per project */
    CHECK_INT((int)p3->counter, 1);
    ferry_pipeline_free(p2);
    ferry_pipeline_free(p3);
    ferry_pipeline *found = NULL;
    CHECK_INT(ferry_pipelines_find(&d, "1", NULL, NULL, &found), FERRY_EEXIST);
    CHECK_INT(ferry_pipelines_find(&d, "1", "other", NULL, &found), 0);
    CHECK_STR(found->id, P3);
    ferry_pipeline_free(found);
    /* bob's #1 of mnist does not exist; his #2 does */
    CHECK_INT(ferry_pipelines_find(&d, "1", "mnist", "bob", &found), FERRY_ENOENT);
    CHECK_INT(ferry_pipelines_find(&d, P1, NULL, "bob", &found), FERRY_ENOENT);
    CHECK_INT(ferry_pipelines_find(&d, "2", NULL, "bob", &found), 0);
    CHECK_STR(found->id, P2);
    ferry_pipeline_free(found);

    json_t *ids = ferry_pipelines_ids(&d, NULL, NULL, 0, 0);
    CHECK_INT((int)json_array_size(ids), 3);
    CHECK_STR(json_string_value(json_array_get(ids, 0)), P3); /* newest first */
    json_decref(ids);
    ids = ferry_pipelines_ids(&d, "mnist", "alice", 0, 10);
    CHECK_INT((int)json_array_size(ids), 1);
    json_decref(ids);

    /* P2 ends: the unfinished are P1 (started) and P3 (created), oldest first */
    CHECK_INT(ferry_pipelines_find(&d, P2, NULL, NULL, &found), 0);
    free(found->status);
    found->status = ferry_strdup("complete");
    found->ended_at = 250;
    CHECK_INT(ferry_pipelines_save(&d, found), 0);
    CHECK(ferry_pipeline_status_final(found->status));
    ferry_pipeline_free(found);
    ids = ferry_pipelines_ids(&d, NULL, NULL, 1, 0);
    CHECK_INT((int)json_array_size(ids), 2);
    CHECK_STR(json_string_value(json_array_get(ids, 0)), P1);
    CHECK_STR(json_string_value(json_array_get(ids, 1)), P3);
    json_decref(ids);
}

static void add_exec(const char *id, const char *key, ferry_status status, double at)
{
    ferry_exec *e = ferry_exec_new();
    snprintf(e->id, sizeof(e->id), "%s", id);
    e->counter = (int64_t)at;
    e->project = ferry_strdup("mnist");
    e->step = ferry_strdup("train");
    e->environment = ferry_strdup("local");
    e->snapshot = ferry_strdup(SHA_A);
    e->command = ferry_strdup("true");
    e->reuse_key = ferry_strdup(key);
    e->status = status;
    e->created_at = at;
    CHECK_INT(ferry_exec_insert(&d, e), 0);
    ferry_exec_free(e);
}

static void test_reusable(void)
{
    add_exec("a0000000-0000-4000-8000-000000000001", "k1", FERRY_STATUS_COMPLETE, 1);
    add_exec("a0000000-0000-4000-8000-000000000002", "k1", FERRY_STATUS_COMPLETE, 2);
    add_exec("a0000000-0000-4000-8000-000000000003", "k1", FERRY_STATUS_ERROR, 3);
    add_exec("a0000000-0000-4000-8000-000000000004", "k2", FERRY_STATUS_COMPLETE, 4);
    char id[37];
    CHECK_INT(ferry_exec_find_reusable(&d, "mnist", "k1", NULL, id), 0);
    CHECK_STR(id, "a0000000-0000-4000-8000-000000000002"); /* the newest complete one */
    json_t *only = json_pack("[s]", "a0000000-0000-4000-8000-000000000001");
    CHECK_INT(ferry_exec_find_reusable(&d, "mnist", "k1", only, id), 0);
    CHECK_STR(id, "a0000000-0000-4000-8000-000000000001");
    json_decref(only);
    only = json_pack("[s]", "a0000000-0000-4000-8000-000000000003");
    CHECK_INT(ferry_exec_find_reusable(&d, "mnist", "k1", only, id), FERRY_ENOENT);
    json_decref(only);
    CHECK_INT(ferry_exec_find_reusable(&d, "other", "k1", NULL, id), FERRY_ENOENT);
    CHECK_INT(ferry_exec_find_reusable(&d, "mnist", "k3", NULL, id), FERRY_ENOENT);
}

int main(void)
{
    char tmpl[] = "/tmp/ferry-pipeline-rows.XXXXXX";
    CHECK(mkdtemp(tmpl) != NULL);
    snprintf(d.data_dir, sizeof(d.data_dir), "%s", tmpl);
    d.loop = uv_default_loop();
    db_fixture_open(&d);
    test_store_and_load();
    test_counters_and_owners();
    test_reusable();
    db_fixture_close(&d);
    ferry_rmtree(tmpl);
    TEST_MAIN_END();
}
