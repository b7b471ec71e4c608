#!/usr/bin/env bash
# Issue 20: pipelines of a valohai.yaml run on local-process, through the
# API (POST /v1/pipelines, GET, stop, approve, reject):
#  - edges: outputs by glob as datum:// inputs, metadata -> parameter,
#    parameter -> parameter, environment variables, dependency; pipeline
#    parameters with their default and given; edge-merge-mode append with an
#    override;
#  - on-error retry (a node that fails once), stop-next, continue, stop-all;
#  - actions: stop-pipeline on a metadata condition; require-approval,
#    approved and rejected; a user's stop;
#  - reuse: a second run of an unchanged pipeline creates no execution;
#    reuse_from; a changed parameter runs again;
#  - kill -9 of ferryd mid-pipeline: the pipeline completes after the
#    restart, each node once;
#  - bad input named: unknown pipeline, unknown parameters, a missing one.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

cat >"$WORK/ferryd.conf" <<CONF_END
environments = ( { name = "local"; compute = "local"; max_workers = 4; } );
default_environment = "local";
CONF_END
FERRYD_KEEP_WORKERS=1 # the kill -9 below keeps the work running
# One port for both ferryds: the agents find the second where the first was.
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
ferryd_start -c "$WORK/ferryd.conf" --listen "127.0.0.1:$PORT"

proj=$WORK/pl
cp -r "$FERRY_SOURCE_DIR/tests/pipelines" "$proj"
echo "base-file" >"$WORK/base.txt"
sed -i "s|file://BASE_FILE|file://$WORK/base.txt|" "$proj/valohai.yaml"

api() { # api METHOD PATH [BODY]: the body answered; the status in $WORK/status
  curl -s -o "$WORK/answer" -w '%{http_code}' -X "$1" -H 'Content-Type: application/json' \
    ${3:+--data "$3"} "$FERRY_SERVER$2" >"$WORK/status"
  cat "$WORK/answer"
}
py() { python3 -c "import json,sys; p=json.load(sys.stdin); print($1)"; }
SNAP=$(tar czf - -C "$proj" . | curl -s --data-binary @- -H 'Content-Type: application/gzip' \
  "$FERRY_SERVER/v1/snapshots" | py 'p["snapshot"]')

create() { # create NAME [EXTRA-JSON]: the new pipeline's id
  api POST /v1/pipelines "{\"project\": \"pl\", \"pipeline\": \"$1\", \"snapshot\": \"$SNAP\"${2:+, $2}}" |
    py 'p.get("id", "")'
}
wait_end() { # wait_end ID: its final status
  local st=
  for _ in $(seq 600); do
    st=$(api GET "/v1/pipelines/$1" | py 'p["status"]')
    case $st in complete | error | stopped) break ;; esac
    sleep 0.1
  done
  echo "$st"
}
node() { # node ID NODE EXPR: EXPR of node n
  api GET "/v1/pipelines/$1" |
    python3 -c "import json,sys; p=json.load(sys.stdin); n=[x for x in p['nodes'] if x['name']=='$2'][0]; print($3)"
}
node_log() { "$FERRY" logs "$(node "$1" "$2" 'n["execution"]["id"]')"; }
n_execs() { "$FERRY" list --json | py 'len(p)'; }

# --- edges ---
P=$(create edges)
expect_eq "edges: created" "$(cat "$WORK/status")" 201
expect_eq "edges: complete" "$(wait_end "$P")" complete
log=$(node_log "$P" train)
expect_contains "output glob: data.txt crosses" "$log" "input data.txt: data-3"
expect_not_contains "output glob: other.txt does not" "$log" "other.txt"
expect_not_contains "replace: the input's default is gone" "$log" "base-file"
expect_contains "metadata -> parameter, parameter -> parameter, pipeline parameter default" \
  "$log" "lr=0.25 n=3"
expect_contains "environment variable edge" "$log" "DATA_VERSION=v7"
expect_eq "dependency: report ran after train" "$(node "$P" report 'n["status"]')" complete
expect_contains "input -> input: the source's resolved input" "$(node_log "$P" again)" \
  "input data.txt: data-3"
expect_contains "the input is the producer's datum" \
  "$(node "$P" train 'n["execution"]["id"]' | xargs "$FERRY" show --json)" "datum://"
P=$(create edges '"parameters": {"count": 7}, "title": "seven"')
expect_eq "given pipeline parameter: complete" "$(wait_end "$P")" complete
expect_contains "given pipeline parameter reaches its target" "$(node_log "$P" train)" "n=7"
expect_contains "title" "$(node "$P" prep 'n["execution"]["id"]' | xargs "$FERRY" show --json)" \
  '"title": "seven: prep"'
P=$(create edges '"parameters": {"prep.accuracy": 0.7}')
expect_eq "NODE.PARAM: complete" "$(wait_end "$P")" complete
expect_eq "NODE.PARAM reaches the node" \
  "$(node "$P" prep 'n["execution"]["id"]' | xargs "$FERRY" show --json | py 'p["parameters"]["accuracy"]')" 0.7

# --- append and override ---
P=$(create append)
expect_eq "append: complete" "$(wait_end "$P")" complete
log=$(node_log "$P" train)
expect_contains "append keeps the default" "$log" "input base.txt: base-file"
expect_contains "append adds the edge's file" "$log" "input data.txt: data-1"
expect_contains "override of a parameter's default" "$log" "n=42"

# an output edge whose glob matches nothing fails the node, naming it
P=$(create no-match)
expect_eq "an edge that carries nothing: error" "$(wait_end "$P")" error
expect_contains "an edge that carries nothing: said" "$(api GET "/v1/pipelines/$P" | py 'p["reason"]')" \
  "of node 'prep' has no output matching 'model*' for the edge at line"

# --- on-error ---
P=$(create retry "\"parameters\": {\"marker\": \"$WORK/flaky-marker\"}")
expect_eq "retry: complete" "$(wait_end "$P")" complete
expect_eq "retry: two attempts" "$(node "$P" flaky 'n["attempts"]')" 2
expect_contains "retry: the second attempt ran" "$(node_log "$P" flaky)" second-attempt
expect_eq "retry: the node behind ran" "$(node "$P" after 'n["status"]')" complete

P=$(create stop-next)
expect_eq "stop-next: the pipeline ends error" "$(wait_end "$P")" error
expect_eq "stop-next: the node behind is skipped" "$(node "$P" behind 'n["status"]')" skipped
expect_eq "stop-next: the node beside ran" "$(node "$P" beside 'n["status"]')" complete
expect_eq "stop-next: no execution for the skipped node" "$(node "$P" behind 'n["execution"]')" None
expect_contains "stop-next: the reason names the failed node" \
  "$(api GET "/v1/pipelines/$P" | py 'p["reason"]')" "node 'bad' is error: execution #"

P=$(create continue)
expect_eq "continue: complete" "$(wait_end "$P")" complete
expect_eq "continue: the failed node" "$(node "$P" bad 'n["status"]')" error
expect_eq "continue: the node behind ran" "$(node "$P" behind 'n["status"]')" complete

P=$(create stop-all)
expect_eq "stop-all: error" "$(wait_end "$P")" error
expect_contains "stop-all: the reason names the node" "$(api GET "/v1/pipelines/$P" | py 'p["reason"]')" \
  "node 'bad' failed"
expect_eq "stop-all: the running node was stopped" "$(node "$P" slow 'n["status"]')" stopped
expect_eq "stop-all: the node behind never ran" "$(node "$P" behind 'n["status"]')" stopped

# --- actions ---
P=$(create actions)
expect_eq "stop-pipeline if metadata.accuracy < .8" "$(wait_end "$P")" stopped
expect_eq "stop-pipeline: the node behind never ran" "$(node "$P" behind 'n["execution"]')" None
P=$(create actions '"parameters": {"prep.accuracy": 0.95}')
expect_eq "the condition does not hold: complete" "$(wait_end "$P")" complete

P=$(create approval)
for _ in $(seq 100); do
  [ "$(node "$P" deploy 'n["approval"]')" = waiting ] && break
  sleep 0.1
done
expect_eq "require-approval: the node waits" "$(node "$P" deploy 'n["status"]')" approval
expect_eq "require-approval: no execution yet" "$(node "$P" deploy 'n["execution"]')" None
api POST "/v1/pipelines/$P/nodes/prep/approve" >/dev/null
expect_eq "approve a node that waits for none: 409" "$(cat "$WORK/status")" 409
api POST "/v1/pipelines/$P/nodes/deploy/approve" >/dev/null
expect_eq "approve: 200" "$(cat "$WORK/status")" 200
expect_eq "approved: complete" "$(wait_end "$P")" complete
expect_eq "approved: who" "$(node "$P" deploy 'n["approval"]')" approved
P=$(create approval)
for _ in $(seq 100); do
  [ "$(node "$P" deploy 'n["approval"]')" = waiting ] && break
  sleep 0.1
done
api POST "/v1/pipelines/$P/nodes/deploy/reject" >/dev/null
expect_eq "rejected: stopped" "$(wait_end "$P")" stopped
expect_contains "rejected: the reason" "$(api GET "/v1/pipelines/$P" | py 'p["reason"]')" rejected

# --- a user's stop ---
P=$(create slow-chain '"parameters": {"first.seconds": 60}')
for _ in $(seq 100); do
  [ "$(node "$P" first 'n["status"]')" = started ] && break
  sleep 0.1
done
api POST "/v1/pipelines/$P/stop" >/dev/null
expect_eq "stop: 200" "$(cat "$WORK/status")" 200
expect_eq "stop: stopped" "$(wait_end "$P")" stopped
expect_eq "stop: the running node was stopped" "$(node "$P" first 'n["status"]')" stopped
expect_eq "stop: the next node never ran" "$(node "$P" second 'n["execution"]')" None
api POST "/v1/pipelines/$P/stop" >/dev/null
expect_eq "stop of an ended pipeline: 409" "$(cat "$WORK/status")" 409

# --- reuse ---
P1=$(create edges '"parameters": {"count": 11}')
expect_eq "reuse: the first run completes" "$(wait_end "$P1")" complete
before=$(n_execs)
P2=$(create edges '"parameters": {"count": 11}, "reuse": true')
expect_eq "reuse: complete at once" "$(api GET "/v1/pipelines/$P2" | py 'p["status"]')" complete
expect_eq "reuse: no execution created" "$(n_execs)" "$before"
expect_eq "reuse: every node reused" \
  "$(api GET "/v1/pipelines/$P2" | py 'all(n["reused"] for n in p["nodes"])')" True
expect_eq "reuse: the earlier execution" "$(node "$P2" train 'n["execution"]["id"]')" \
  "$(node "$P1" train 'n["execution"]["id"]')"
P3=$(create edges "\"parameters\": {\"count\": 11}, \"reuse_from\": \"$P1\"")
expect_eq "reuse_from: complete" "$(wait_end "$P3")" complete
expect_eq "reuse_from: no execution created" "$(n_execs)" "$before"
P4=$(create edges '"parameters": {"count": 12}, "reuse": true')
expect_eq "reuse, another parameter: complete" "$(wait_end "$P4")" complete
expect_eq "reuse, another parameter: the changed nodes ran" \
  "$(api GET "/v1/pipelines/$P4" | py '[n["reused"] for n in p["nodes"]]')" "[False, False, True, False]"

# --- kill -9 mid-pipeline ---
P=$(create slow-chain)
for _ in $(seq 100); do
  [ "$(node "$P" first 'n["status"]')" = started ] && break
  sleep 0.1
done
ferryd_kill
sleep 4 # the first node ends while ferryd is away
ferryd_start -c "$WORK/ferryd.conf" --listen "127.0.0.1:$PORT"
expect_eq "kill -9: the pipeline completes after the restart" "$(wait_end "$P")" complete
expect_eq "kill -9: each node once" \
  "$(api GET "/v1/pipelines/$P" | py '[n["attempts"] for n in p["nodes"]]')" "[1, 1]"
expect_lines_once "$(node "$P" first 'n["execution"]["id"]')" 3 "kill -9: the first node's log"

# --- a graceful restart mid-pipeline ---
P=$(create slow-chain)
for _ in $(seq 100); do
  [ "$(node "$P" first 'n["status"]')" = started ] && break
  sleep 0.1
done
ferryd_stop
sleep 4
ferryd_start -c "$WORK/ferryd.conf" --listen "127.0.0.1:$PORT"
expect_eq "graceful restart: the pipeline completes" "$(wait_end "$P")" complete
expect_eq "graceful restart: each node once" \
  "$(api GET "/v1/pipelines/$P" | py '[n["attempts"] for n in p["nodes"]]')" "[1, 1]"

# --- the command line, as a user runs it ---
out=$(cd "$proj" && "$FERRY" pipeline run edges --adhoc -p count=5 --tag cli --title by-cli --watch 2>&1)
expect_eq "ferry pipeline run --watch: exit 0 for complete" "$?" 0
expect_contains "ferry pipeline run: the created line" "$out" "created: edges"
expect_contains "ferry pipeline run --watch: the node lines" "$out" "train: complete (execution #"
N=$(sed -n 's/^pipeline #\([0-9]*\) .*/\1/p' <<<"$out" | head -n 1)
expect_contains "ferry pipeline show" "$("$FERRY" pipeline show "$N" --project pl)" "complete"
expect_contains "ferry pipeline logs NODE" "$("$FERRY" pipeline logs "$N" train --project pl)" "n=5"
expect_contains "ferry pipeline list" "$("$FERRY" pipeline list --project pl | grep "^$N ")" "complete  4/4"
set +e
(cd "$proj" && "$FERRY" pipeline run stop-all --adhoc --watch >/dev/null 2>&1)
expect_eq "ferry pipeline run --watch: exit 1 for error" "$?" 1
(cd "$proj" && "$FERRY" pipeline run actions --adhoc --watch >/dev/null 2>&1)
expect_eq "ferry pipeline run --watch: exit 2 for stopped" "$?" 2
(cd "$proj" && "$FERRY" pipeline run nope --adhoc >"$WORK/out" 2>&1)
expect_eq "ferry pipeline run of an unknown pipeline: exit 2" "$?" 2
set -e
expect_contains "ferry pipeline run of an unknown pipeline: said" "$(cat "$WORK/out")" \
  "no pipeline 'nope' in valohai.yaml; known pipelines: edges, append"
out=$(cd "$proj" && "$FERRY" pipeline run approval --adhoc)
N=$(sed -n 's/^pipeline #\([0-9]*\) .*/\1/p' <<<"$out" | head -n 1)
ID=$(sed -n 's/^pipeline #[0-9]* (\([0-9a-f-]*\)).*/\1/p' <<<"$out" | head -n 1)
for _ in $(seq 100); do
  [ "$(node "$ID" deploy 'n["approval"]')" = waiting ] && break
  sleep 0.1
done
"$FERRY" pipeline approve "$N" deploy --project pl >/dev/null
expect_eq "ferry pipeline approve: complete" "$(wait_end "$ID")" complete
out=$(cd "$proj" && "$FERRY" pipeline run slow-chain --adhoc -p first.seconds=60)
ID=$(sed -n 's/^pipeline #[0-9]* (\([0-9a-f-]*\)).*/\1/p' <<<"$out" | head -n 1)
"$FERRY" pipeline stop "$ID" >/dev/null
expect_eq "ferry pipeline stop: stopped" "$(wait_end "$ID")" stopped

# --- bad input ---
api POST /v1/pipelines "{\"project\": \"pl\", \"pipeline\": \"nope\", \"snapshot\": \"$SNAP\"}" >/dev/null
expect_eq "unknown pipeline: 400" "$(cat "$WORK/status")" 400
expect_contains "unknown pipeline: named, the known listed" "$(cat "$WORK/answer")" \
  "no pipeline 'nope' in valohai.yaml; known pipelines: edges"
create edges '"parameters": {"nope": 1}' >/dev/null
expect_contains "unknown pipeline parameter" "$(cat "$WORK/answer")" "parameter 'nope'"
create edges '"parameters": {"train.nope": 1}' >/dev/null
expect_contains "unknown node parameter" "$(cat "$WORK/answer")" "parameter 'train.nope'"
create edges '"parameters": {"train.lr": 1}' >/dev/null
expect_contains "a parameter an edge feeds" "$(cat "$WORK/answer")" "an edge feeds train.parameter.lr"
create retry >/dev/null
expect_contains "a parameter without default, not given" "$(cat "$WORK/answer")" \
  "parameter 'marker' has no default"
create edges "\"title\": \"$(printf 'x%.0s' $(seq 401))\"" >/dev/null
expect_contains "a title too long for its nodes" "$(cat "$WORK/answer")" "1 to 400 characters"
create edges '"parameters": "x"' >/dev/null
expect_eq "parameters not an object: 400" "$(cat "$WORK/status")" 400
api GET /v1/pipelines/999 >/dev/null
expect_eq "unknown pipeline id: 404" "$(cat "$WORK/status")" 404
expect_eq "every pipeline is listed" "$(api GET /v1/pipelines | py 'len(p["pipelines"])')" 25

finish
