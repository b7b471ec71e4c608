#!/usr/bin/env bash
# Priority: with one worker busy, high-priority executions (`ferry run
# --priority`, or "priority": true in POST /v1/executions) start before the
# normal ones queued earlier, each FIFO in its own order; running work is not
# pre-empted. While they wait, status_reason (and `ferry show`) says they
# wait for a worker of a full pool.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib_sched.sh"

cat >"$WORK/ferryd.conf" <<'EOF'
environments = ( { name = "local"; compute = "local"; max_workers = 1; } );
EOF
ferryd_start -c "$WORK/ferryd.conf"

P=$(make_project prio <<EOF
- step:
    name: gate
    image: none
    command: sh gate.sh g\$FERRY_EXECUTION_COUNTER
- step:
    name: mark
    image: none
    command: echo {parameter-value:tag} >> $M/order; sleep 0.2
    parameters:
      - name: tag
        type: string
EOF
)
make_gate "$P" "$M"

field() { python3 -c "import json,sys; e=json.load(sys.stdin); print($1)"; }

g=$(run_id "$P" gate)
await_file "$M/started-g1" 20 || fail "the first (long) execution did not start"
n1=$(run_id "$P" mark -p tag=n1)
n2=$(run_id "$P" mark -p tag=n2)
n3=$(run_id "$P" mark -p tag=n3)
p1=$(run_id "$P" mark -p tag=p1 --priority)
# The second priority one through the raw API, with the snapshot the CLI uploaded.
sha=$(json_field "$p1" 'e["snapshot"]')
body=$(api "" POST /v1/executions \
  '{"project": "prio", "step": "mark", "snapshot": "'"$sha"'", "parameters": {"tag": "p2"}, "priority": true}')
expect_eq "POST /v1/executions with priority: 201" "$(http_code)" 201
p2=$(field 'e["id"]' <<<"$body")
expect_eq "the API answer says priority" "$(field 'e["priority"]' <<<"$body")" True

expect_eq "ferry run --priority: priority true" "$(json_field "$p1" 'e["priority"]')" True
expect_eq "a normal execution: priority false" "$(json_field "$n1" 'e["priority"]')" False
out=$("$FERRY" show "$p1")
expect_contains "ferry show names the priority" "$out" "high"
for id in "$n1" "$n2" "$n3" "$p1" "$p2"; do
  expect_eq "queued behind the long one" "$(json_field "$id" 'e["status"]')" queued
  expect_contains "status_reason: waiting for a worker of a full pool" \
    "$(json_field "$id" 'e["status_reason"]')" "waiting for a worker: all 1 busy (pool 1 of max 1)"
done
out=$("$FERRY" show "$n1")
expect_contains "ferry show prints why it waits" "$out" "waiting for a worker: all 1 busy (pool 1 of max 1)"
envs=$(api "" GET /v1/environments)
expect_eq "GET /v1/environments: 5 queued, 2 of them high-priority" \
  "$(python3 -c 'import json,sys; e=json.load(sys.stdin)["environments"][0]; print(e["queued"], e["queued_priority"], e["workers"]["busy"])' <<<"$envs")" "5 2 1"
out=$("$FERRY" envs)
expect_contains "ferry envs shows the queue (high-priority in brackets)" "$out" "5 (2)"

# Running work is not pre-empted: the gate still runs, nothing else started.
sleep 0.5
expect_eq "the long execution still runs" "$(json_field "$g" 'e["status"]')" started
expect_eq "nothing else ran meanwhile" "$([ -e "$M/order" ] && cat "$M/order" || echo none)" none

touch "$M/open-g1"
for id in "$g" "$p1" "$p2" "$n1" "$n2" "$n3"; do
  rc=0
  "$FERRY" wait "$id" --timeout 30 >/dev/null || rc=$?
  expect_eq "execution $id completes" "$rc" 0
done
expect_eq "order they ran in" "$(tr '\n' ' ' <"$M/order")" "p1 p2 n1 n2 n3 "
prev=$(json_field "$g" 'e["ended_at"]')
names=(p1 p2 n1 n2 n3)
i=0
for id in "$p1" "$p2" "$n1" "$n2" "$n3"; do
  t=$(json_field "$id" 'e["started_at"]')
  if [[ "$prev" < "$t" ]]; then pass; else fail "${names[i]} started at $t, not after $prev"; fi
  prev=$t
  i=$((i + 1))
done

# A priority flag that is not a boolean is refused.
api "" POST /v1/executions \
  '{"project": "prio", "step": "mark", "snapshot": "'"$sha"'", "parameters": {"tag": "x"}, "priority": "yes"}' >/dev/null
expect_eq "priority: \"yes\" is refused" "$(http_code)" 400

finish
