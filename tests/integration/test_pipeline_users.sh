#!/usr/bin/env bash
# Issue 20 with users: a pipeline is its creator's. Another user neither
# sees it (show, list), nor stops it, nor approves its nodes, nor sees its
# executions; an admin does all; its nodes' executions are the creator's;
# without a token every pipelines call is a 401.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

sha256_of() { printf %s "$1" | sha256sum | cut -d' ' -f1; }
T_ALICE="alice-$$-$RANDOM"
T_BOB="bob-$$-$RANDOM"
T_ROOT="root-$$-$RANDOM"
cat >"$WORK/ferryd.conf" <<CONF_END
users = ( { name = "alice"; token_sha256 = "$(sha256_of "$T_ALICE")"; },
          { name = "bob"; token_sha256 = "$(sha256_of "$T_BOB")"; },
          { name = "root"; token_sha256 = "$(sha256_of "$T_ROOT")"; admin = true; } );
environments = ( { name = "local"; compute = "local"; max_workers = 2; } );
default_environment = "local";
CONF_END
ferryd_start -c "$WORK/ferryd.conf"

proj=$WORK/pu
mkdir -p "$proj"
cat >"$proj/valohai.yaml" <<'YAML_END'
- step:
    name: hello
    image: none
    command: echo hello
- pipeline:
    name: gated
    nodes:
      - name: first
        type: execution
        step: hello
      - name: gate
        type: execution
        step: hello
        actions:
          - when: node-starting
            then: require-approval
    edges:
      - [first.dependency.*, gate.dependency.*]
YAML_END

api() { # api TOKEN METHOD PATH: the body; the status in $WORK/status
  curl -s -o "$WORK/answer" -w '%{http_code}' -X "$2" ${1:+-H "Authorization: Bearer $1"} \
    -H 'Content-Type: application/json' "$FERRY_SERVER$3" >"$WORK/status"
  cat "$WORK/answer"
}
py() { python3 -c "import json,sys; p=json.load(sys.stdin); print($1)"; }

out=$(cd "$proj" && FERRY_TOKEN=$T_ALICE "$FERRY" pipeline run gated --adhoc)
ID=$(sed -n 's/^pipeline #[0-9]* (\([0-9a-f-]*\)).*/\1/p' <<<"$out" | head -n 1)
expect_contains "alice creates a pipeline" "$out" "created: gated"
for _ in $(seq 100); do
  [ "$(api "$T_ALICE" GET "/v1/pipelines/$ID" | py '[n["approval"] for n in p["nodes"]][1]')" = waiting ] && break
  sleep 0.1
done
EXEC=$(api "$T_ALICE" GET "/v1/pipelines/$ID" | py 'p["nodes"][0]["execution"]["id"]')
expect_eq "its node's execution is alice's" "$(api "$T_ALICE" GET "/v1/executions/$EXEC" | py 'p["owner"]')" alice
expect_eq "the pipeline is alice's" "$(api "$T_ALICE" GET "/v1/pipelines/$ID" | py 'p["owner"]')" alice

api "$T_BOB" GET "/v1/pipelines/$ID" >/dev/null
expect_eq "bob: show is a 404" "$(cat "$WORK/status")" 404
api "$T_BOB" GET "/v1/pipelines/1" >/dev/null
expect_eq "bob: alice's #1 is a 404" "$(cat "$WORK/status")" 404
expect_eq "bob: lists none" "$(api "$T_BOB" GET /v1/pipelines | py 'len(p["pipelines"])')" 0
api "$T_BOB" POST "/v1/pipelines/$ID/nodes/gate/approve" >/dev/null
expect_eq "bob: approve is a 404" "$(cat "$WORK/status")" 404
api "$T_BOB" POST "/v1/pipelines/$ID/stop" >/dev/null
expect_eq "bob: stop is a 404" "$(cat "$WORK/status")" 404
api "$T_BOB" GET "/v1/executions/$EXEC" >/dev/null
expect_eq "bob: its execution is a 404" "$(cat "$WORK/status")" 404
api "" GET /v1/pipelines >/dev/null
expect_eq "no token: 401" "$(cat "$WORK/status")" 401
api "$T_ALICE" GET "/v1/pipelines/$ID" >/dev/null
expect_eq "alice: still waiting after bob's tries" \
  "$(api "$T_ALICE" GET "/v1/pipelines/$ID" | py 'p["status"]')" started

expect_eq "root lists it" "$(api "$T_ROOT" GET /v1/pipelines | py 'len(p["pipelines"])')" 1
api "$T_ROOT" POST "/v1/pipelines/$ID/nodes/gate/approve" >/dev/null
expect_eq "root approves" "$(cat "$WORK/status")" 200
for _ in $(seq 100); do
  [ "$(api "$T_ALICE" GET "/v1/pipelines/$ID" | py 'p["status"]')" = complete ] && break
  sleep 0.1
done
expect_eq "approved by root: complete" "$(api "$T_ALICE" GET "/v1/pipelines/$ID" | py 'p["status"]')" complete
expect_eq "the approval names root" \
  "$(api "$T_ALICE" GET "/v1/pipelines/$ID" | py 'p["nodes"][1]["approval_by"]')" root

finish
