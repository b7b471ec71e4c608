#!/usr/bin/env bash
# A worker lost while an execution was handed to it but not started (issue
# 25, defect 4). One environment of min_workers = max_workers = 1 through the
# "test" compute plugin and ferry-fake-agent; its agent takes the execution
# and freezes (SIGSTOP, the fake agent's hold_file) before starting it. After
# worker_lost_timeout the worker is lost, the execution goes back to the
# queue and the frozen agent is killed; once that worker's record is gone a
# new worker must be launched (the pool is free again, and min_workers asks
# for one anyway) and the execution must complete on it, not wait for
# another submission.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib_sched.sh"

HOLD=$WORK/hold
cat >"$WORK/ferryd.conf" <<EOF
default_environment = "held";
worker_lost_timeout = 3;
environments = (
  { name = "held"; compute = "test"; agent = "fake"; fake_hold_file = "$HOLD";
    min_workers = 1; max_workers = 1; idle_timeout = 60; terminate_grace_ms = 300; }
);
EOF
ferryd_start -c "$WORK/ferryd.conf"

# A field of the environment in GET /v1/environments (on `e`).
env_field() {
  api "" GET /v1/environments |
    python3 -c "import json,sys; e=json.load(sys.stdin)['environments'][0]; print($1)"
}

await_env() { # await_env EXPR WANT SECONDS
  local deadline=$(($(now_ms) + $3 * 1000)) v=
  while :; do
    v=$(env_field "$1" 2>/dev/null || true)
    if [ "$v" == "$2" ] || [ "$(now_ms)" -ge "$deadline" ]; then break; fi
    sleep 0.1
  done
  echo "$v"
}

P=$(make_project lost <<'EOF'
- step:
    name: quick
    image: none
    command: echo quick
EOF
)

expect_eq "min_workers: one idle worker before any execution" \
  "$(await_env 'e["workers"]["idle"], e["workers"]["total"]' "1 1" 20)" "1 1"

touch "$HOLD"
t0=$(now_ms)
id=$(run_id "$P" quick)
deadline=$(($(now_ms) + 10000))
while [ -e "$HOLD" ] && [ "$(now_ms)" -lt "$deadline" ]; do sleep 0.05; done
expect_eq "the first agent took the execution and froze" "$([ -e "$HOLD" ] && echo no || echo yes)" yes
expect_eq "... which stays queued, handed out, not started" "$(json_field "$id" 'e["status"]')" queued

expect_eq "the execution completes on a new worker" "$(await_status "$id" complete 25)" complete
elapsed=$(($(now_ms) - t0))
if [ "$elapsed" -lt 25000 ]; then pass; else fail "it took ${elapsed} ms"; fi
log=$(cat "$FERRYD_LOG")
expect_contains "ferryd declared the frozen worker lost" "$log" "is lost: no heartbeat for 3 s"
expect_eq "min_workers kept: one worker in the pool after the loss" \
  "$(await_env 'e["workers"]["total"]' 1 10)" 1
expect_eq "two launches in all (the lost worker's replacement)" \
  "$(grep -c "launched fake agent" "$FERRYD_LOG")" 2

finish
