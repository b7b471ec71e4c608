#!/usr/bin/env bash
# Environments and GPUs: the default environment, a step's `environment:` and
# `ferry run -e` choose where an execution runs, each environment with its own
# pool; `ferry envs` / GET /v1/environments count idle, busy and launching
# workers and the queue while executions run; a queued execution says it
# waits for a worker of a full pool. A `gpus = 2` environment runs two
# executions at once on its one worker, each with its own GPU
# (CUDA_VISIBLE_DEVICES 0 and 1, "gpus" in `ferry show --json`); a third
# waits and then gets the GPU that was freed.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib_sched.sh"

unset CUDA_VISIBLE_DEVICES
cat >"$WORK/ferryd.conf" <<'EOF'
default_environment = "local";
environments = ( { name = "local"; compute = "local"; max_workers = 1; },
                 { name = "second"; compute = "local"; max_workers = 1; },
                 { name = "gpu"; compute = "local"; max_workers = 1; gpus = 2; } );
EOF
ferryd_start -c "$WORK/ferryd.conf"

P=$(make_project envs <<'EOF'
- step:
    name: gate
    image: none
    command: sh gate.sh $FERRY_EXECUTION_COUNTER
- step:
    name: gate2
    image: none
    environment: second
    command: sh gate.sh $FERRY_EXECUTION_COUNTER
EOF
)
make_gate "$P" "$M"

env_of() { json_field "$1" 'e["environment"]'; }
counter_of() { json_field "$1" 'e["counter"]'; }
# One environment of GET /v1/environments: "idle busy launching total queued".
pool() { # pool NAME
  api "" GET /v1/environments | python3 -c "import json,sys
for e in json.load(sys.stdin)['environments']:
    if e['name'] == '$1':
        w = e['workers']
        print(w['idle'], w['busy'], w['launching'], w['total'], e['queued'])"
}
open_and_wait() { # open_and_wait ID...: open each gate, each completes
  local id rc
  for id in "$@"; do touch "$M/open-$(counter_of "$id")"; done
  for id in "$@"; do
    rc=0
    "$FERRY" wait "$id" --timeout 30 >/dev/null || rc=$?
    expect_eq "execution #$(counter_of "$id") completes" "$rc" 0
  done
}

# --- choosing the environment; pools count and queue per environment ---
e1=$(run_id "$P" gate)
await_file "$M/started-1" 20 || fail "e1 did not start"
e2=$(run_id "$P" gate2 -e local)
e3=$(run_id "$P" gate)
e4=$(run_id "$P" gate2)
e5=$(run_id "$P" gate -e second)
expect_eq "no step environment, no -e: the default" "$(env_of "$e1")" local
expect_eq "-e overrides the step's environment" "$(env_of "$e2")" local
expect_eq "the step's environment" "$(env_of "$e4")" second
expect_eq "-e second" "$(env_of "$e5")" second
# e4 runs although local's only worker is busy: second has its own pool.
await_file "$M/started-4" 20 || fail "e4 did not start in environment second"
w1=$(sed 's#/executions/.*##' "$M/dir-1") w4=$(sed 's#/executions/.*##' "$M/dir-4" 2>/dev/null || true)
expect_contains "e1 ran on a worker" "$w1" "/workers/"
if [ -n "$w4" ] && [ "$w4" != "$w1" ]; then pass; else fail "e4 (second) and e1 (local) share a worker: '$w4'"; fi
sleep 0.3
expect_eq "e2 waits (local's one worker is busy)" "$(json_field "$e2" 'e["status"]')" queued
expect_eq "e3 waits" "$(json_field "$e3" 'e["status"]')" queued
expect_eq "e5 waits (second's one worker is busy)" "$(json_field "$e5" 'e["status"]')" queued
expect_eq "local: idle busy launching total queued" "$(pool local)" "0 1 0 1 2"
expect_eq "second: idle busy launching total queued" "$(pool second)" "0 1 0 1 1"
expect_eq "gpu: nothing there" "$(pool gpu)" "0 0 0 0 0"
out=$("$FERRY" envs)
expect_contains "ferry envs: header" "$out" "QUEUED"
row=$(grep '^local ' <<<"$out" || true)
expect_contains "ferry envs: local's workers idle/busy/launching" "$row" " 0/1/0 "
expect_eq "ferry envs: local's queue" "$(awk '{print $6}' <<<"$row")" 2
row=$(grep '^gpu ' <<<"$out" || true)
expect_eq "ferry envs: gpu's GPUs per worker" "$(awk '{print $NF}' <<<"$row")" 2
envs_json=$("$FERRY" envs --json)
expect_eq "ferry envs --json: the three environments" \
  "$(python3 -c 'import json,sys; print(" ".join(e["name"] + ":" + str(e["gpus"]) + ":" + str(e["max_workers"]) for e in json.load(sys.stdin)["environments"]))' <<<"$envs_json")" \
  "local:0:1 second:0:1 gpu:2:1"
for id in "$e2" "$e3" "$e5"; do
  expect_contains "#$(counter_of "$id") says why it waits" "$(json_field "$id" 'e["status_reason"]')" \
    "waiting for a worker: all 1 busy (pool 1 of max 1)"
done
expect_contains "ferry show prints why it waits" "$("$FERRY" show "$e3")" \
  "waiting for a worker: all 1 busy (pool 1 of max 1)"
rc=0
err=$(cd "$P" && "$FERRY" run gate -e nowhere 2>&1) || rc=$?
expect_eq "an unknown environment is refused (exit 5)" "$rc" 5
expect_contains "an unknown environment: names it" "$err" "nowhere"
expect_contains "an unknown environment: names the known ones" "$err" "second"
expect_eq "no GPUs outside a GPU environment" "$(cat "$M/started-1")" unset
expect_eq "gpus is null outside a GPU environment" "$(json_field "$e1" 'e["gpus"]')" None
open_and_wait "$e1" "$e4"
await_file "$M/started-$(counter_of "$e2")" 20 || fail "e2 did not start after e1"
expect_eq "local, e1 done, e2 running: queue" "$(pool local)" "0 1 0 1 1"
open_and_wait "$e2" "$e3" "$e5"
expect_eq "local, all done: the worker is idle" "$(pool local)" "1 0 0 1 0"

# --- two GPUs: two executions at once on the one worker, a third waits ---
g1=$(run_id "$P" gate -e gpu)
g2=$(run_id "$P" gate -e gpu)
g3=$(run_id "$P" gate -e gpu)
k1=$(counter_of "$g1") k2=$(counter_of "$g2") k3=$(counter_of "$g3")
await_file "$M/started-$k1" 20 || fail "g1 did not start"
await_file "$M/started-$k2" 20 || fail "g2 did not start alongside g1"
sleep 0.3
v1=$(cat "$M/started-$k1") v2=$(cat "$M/started-$k2")
expect_eq "the two see different GPUs" "$(printf '%s\n' "$v1" "$v2" | sort | tr '\n' ,)" "0,1,"
expect_eq "g1's gpus in ferry show --json matches what it saw" "$(json_field "$g1" 'e["gpus"]')" "$v1"
expect_eq "g2's gpus in ferry show --json matches what it saw" "$(json_field "$g2" 'e["gpus"]')" "$v2"
expect_contains "ferry show prints the gpus" "$("$FERRY" show "$g1" | grep gpus)" "$v1"
# The repository folders are <worker's folder>/executions/<uuid>/repository.
worker_dir() { sed 's#/executions/.*##' "$M/dir-$1"; }
expect_contains "g1's repository is in a worker's folder" "$(worker_dir "$k1")" "$WORK/data/workers/"
expect_eq "g1 and g2 ran on the same worker" "$(worker_dir "$k1")" "$(worker_dir "$k2")"
expect_eq "gpu pool: one worker, busy; g3 queued" "$(pool gpu)" "0 1 0 1 1"
expect_eq "g3 waits" "$(json_field "$g3" 'e["status"]')" queued
expect_eq "g3 has no GPU yet" "$(json_field "$g3" 'e["gpus"]')" None
expect_contains "g3 says why it waits" "$(json_field "$g3" 'e["status_reason"]')" \
  "waiting for a worker: all 1 busy (pool 1 of max 1)"
expect_eq "g3 did not start" "$([ -e "$M/started-$k3" ] && echo ran || echo no)" no
# g2 ends: g3 runs with the GPU g2 had.
open_and_wait "$g2"
await_file "$M/started-$k3" 20 || fail "g3 did not start when g2 ended"
expect_eq "g3 got the GPU that was freed" "$(cat "$M/started-$k3" 2>/dev/null)" "$v2"
expect_eq "g3's gpus" "$(json_field "$g3" 'e["gpus"]')" "$v2"
expect_eq "g1 still runs on its GPU" "$(json_field "$g1" 'e["status"]') $(json_field "$g1" 'e["gpus"]')" "started $v1"
open_and_wait "$g1" "$g3"
expect_eq "an ended execution keeps the gpus it was given" "$(json_field "$g1" 'e["gpus"]')" "$v1"
expect_eq "gpu pool, all done: one idle worker" "$(pool gpu)" "1 0 0 1 0"

finish
