#!/usr/bin/env bash
# Worker pools, through the "test" compute plugin (real ferry-agent processes,
# local-process runtime): scale-up to max_workers and no further, scale-down
# after idle_timeout (agents gone), min_workers kept warm, launch failures
# retried with backoff without losing the execution, and a slow launch shown
# as such while the execution waits. Each behaviour has an environment of its
# own, whose agents work under $DATA/<env>/ so that they can be counted.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib_sched.sh"

cat >"$WORK/ferryd.conf" <<EOF
default_environment = "up";
environments = (
  { name = "up"; compute = "test"; max_workers = 2; idle_timeout = 1;
    work_dir = "$DATA/up"; terminate_grace_ms = 2000; },
  { name = "warm"; compute = "test"; min_workers = 1; max_workers = 2; idle_timeout = 1;
    work_dir = "$DATA/warm"; terminate_grace_ms = 2000; },
  { name = "flaky"; compute = "test"; fail_first = 2; max_workers = 1; idle_timeout = 60;
    work_dir = "$DATA/flaky"; terminate_grace_ms = 2000; },
  { name = "slow"; compute = "test"; launch_delay_ms = 3000; max_workers = 1; idle_timeout = 60;
    work_dir = "$DATA/slow"; terminate_grace_ms = 2000; }
);
EOF
ferryd_start -c "$WORK/ferryd.conf"

P=$(make_project pools <<'EOF'
- step:
    name: gate
    image: none
    command: sh gate.sh $FERRY_EXECUTION_COUNTER
- step:
    name: quick
    image: none
    command: echo quick
EOF
)
make_gate "$P" "$M"

# --- min_workers: one worker launched at start, with no execution at all ---
expect_eq "warm: min_workers 1 launches one idle worker at start" \
  "$(await_env warm 'e["workers"]["idle"], e["workers"]["total"]' "1 1" 20)" "1 1"
expect_eq "warm: its agent process runs" "$(await_agents warm 1 10)" 1
expect_eq "up: min_workers 0 launches nothing at start" "$(env_field up 'e["workers"]["total"]')" 0
expect_eq "up: no agent process" "$(agents_of up)" 0

# --- scale-up: 4 executions, max_workers 2: exactly 2 workers, 2 queued ---
ids=()
for _ in 1 2 3 4; do ids+=("$(run_id "$P" gate -e up)"); done
c1=$(json_field "${ids[0]}" 'e["counter"]')
c2=$(json_field "${ids[1]}" 'e["counter"]')
await_file "$M/started-$c1" 30 || fail "up: the first execution did not start"
await_file "$M/started-$c2" 30 || fail "up: the second execution did not start"
expect_eq "up: 2 busy workers of max 2, 2 queued" \
  "$(await_env up 'e["workers"]["busy"], e["workers"]["total"], e["queued"]' "2 2 2" 10)" "2 2 2"
expect_eq "up: exactly 2 agent processes" "$(agents_of up)" 2
for id in "${ids[2]}" "${ids[3]}"; do
  expect_eq "up: the third and fourth wait" "$(json_field "$id" 'e["status"]')" queued
  expect_contains "up: status_reason says the full pool" \
    "$(json_field "$id" 'e["status_reason"]')" "waiting for a worker: all 2 busy (pool 2 of max 2)"
done
sleep 1
expect_eq "up: still 2 workers a second later (no launch past max)" \
  "$(env_field up 'e["workers"]["total"]')" 2
expect_eq "up: still 2 agent processes" "$(agents_of up)" 2
touch "$M/open-all"
for id in "${ids[@]}"; do
  expect_eq "up: every execution completes" "$(await_status "$id" complete 30)" complete
done

# --- scale-down: idle_timeout 1 retires both workers; their agents exit ---
expect_eq "up: idle workers retired after idle_timeout" \
  "$(await_env up 'e["workers"]["total"]' 0 15)" 0
expect_eq "up: the agent processes are gone" "$(await_agents up 0 15)" 0
expect_contains "ferryd says why it retired them" "$(cat "$FERRYD_LOG")" "idle timeout"

# --- min_workers stays warm past idle_timeout, with and without work ---
expect_eq "warm: the idle worker is not retired" "$(env_field warm 'e["workers"]["total"]')" 1
w=$(run_id "$P" quick -e warm)
expect_eq "warm: an execution runs on the warm worker" "$(await_status "$w" complete 30)" complete
sleep 2.5
expect_eq "warm: after it, still one worker, idle" \
  "$(env_field warm 'e["workers"]["idle"], e["workers"]["total"]')" "1 1"
expect_eq "warm: its agent still runs" "$(agents_of warm)" 1

# --- launch failures (fail_first 2): retried with backoff, never lost ---
f=$(run_id "$P" quick -e flaky)
reason=
deadline=$(($(now_ms) + 10000))
while [ "$(now_ms)" -lt "$deadline" ]; do
  reason=$(json_field "$f" 'e["status_reason"] or ""')
  [[ "$reason" == *"launching failed"* ]] && break
  sleep 0.05
done
expect_contains "flaky: waiting, status_reason says the launch failed" "$reason" \
  "waiting for a worker: launching failed"
expect_contains "flaky: ... with the plugin's reason" "$reason" "fail_first 2"
expect_eq "flaky: still queued meanwhile" "$(json_field "$f" 'e["status"]')" queued
expect_contains "flaky: GET /v1/environments has the last launch error" \
  "$(env_field flaky 'e["last_launch_error"]')" "insufficient capacity"
expect_eq "flaky: the execution completes after two failed launches" \
  "$(await_status "$f" complete 60)" complete
expect_eq "flaky: one worker in the end" "$(env_field flaky 'e["workers"]["total"]')" 1
log=$(cat "$FERRYD_LOG")
expect_contains "flaky: ferryd logged the first failure" "$log" "launch 1 failed on purpose"
expect_contains "flaky: and the second" "$log" "launch 2 failed on purpose"

# --- launch_delay_ms: the execution waits, saying a worker is launching ---
s=$(run_id "$P" quick -e slow)
expect_eq "slow: queued while its worker launches" "$(json_field "$s" 'e["status"]')" queued
expect_contains "slow: status_reason says so" "$(json_field "$s" 'e["status_reason"]')" \
  "waiting for a worker: launching 1 (pool 1 of max 1)"
expect_eq "slow: GET /v1/environments counts it launching" \
  "$(env_field slow 'e["workers"]["launching"], e["queued"]')" "1 1"
expect_eq "slow: no agent process yet" "$(agents_of slow)" 0
expect_eq "slow: the execution completes" "$(await_status "$s" complete 30)" complete
started_ms=$(ms_between "$s" created_at started_at)
if [ "$started_ms" -ge 2900 ]; then pass; else
  fail "slow: started ${started_ms} ms after creation, before the 3000 ms launch delay"
fi

finish
