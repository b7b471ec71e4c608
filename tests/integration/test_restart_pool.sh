#!/usr/bin/env bash
# Restored workers follow the pool rules (issue 16, point 3). After a kill -9
# (and, last, a graceful SIGTERM) and restart of ferryd, the workers it takes back that are idle are retired
# after idle_timeout (counting from the restart), while min_workers are kept;
# a worker busy at the crash is retired once its execution ends. Two
# environments through the "test" compute plugin (real ferry-agent
# processes, local-process runtime), one port for every ferryd so that the
# agents reconnect to the new one.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib_sched.sh"

PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
IDLE=3
cat >"$WORK/ferryd.conf" <<EOF
default_environment = "pool";
environments = (
  { name = "pool"; compute = "test"; max_workers = 1; idle_timeout = $IDLE;
    work_dir = "$DATA/pool"; terminate_grace_ms = 1000; },
  { name = "warm"; compute = "test"; min_workers = 1; max_workers = 2; idle_timeout = $IDLE;
    work_dir = "$DATA/warm"; terminate_grace_ms = 1000; }
);
EOF
ferryd_start -c "$WORK/ferryd.conf" --listen "127.0.0.1:$PORT"

restart_with() { # restart_with STOP: ferryd_kill or ferryd_stop, start again on the same port
  "$1"
  ferryd_start -c "$WORK/ferryd.conf" --listen "127.0.0.1:$PORT"
}
restart() { restart_with ferryd_kill; }
# Retired within idle_timeout + 5 s of T0 (ms): the record and its agent.
expect_retired() { # expect_retired WHAT T0
  local left=$(($2 + (IDLE + 5) * 1000 - $(now_ms)))
  [ "$left" -gt 0 ] || left=0
  expect_eq "$1: its worker is retired within idle_timeout + 5 s" \
    "$(await_env pool 'e["workers"]["total"]' 0 $(((left + 999) / 1000)))" 0
  expect_eq "$1: its agent process is gone" "$(await_agents pool 0 5)" 0
}

P=$(make_project pool <<'EOF'
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

expect_eq "warm: min_workers 1 launches one idle worker" \
  "$(await_env warm 'e["workers"]["idle"], e["workers"]["total"]' "1 1" 20)" "1 1"
expect_eq "warm: its agent process runs" "$(await_agents warm 1 10)" 1

# --- a crash while the workers are idle: their idle timers start again ---
# Two warm workers (two executions at once) and one on pool, all three ended
# together just before the crash (well within idle_timeout).
ids=("$(run_id "$P" gate)" "$(run_id "$P" gate -e warm)" "$(run_id "$P" gate -e warm)")
for id in "${ids[@]}"; do
  c=$(json_field "$id" 'e["counter"]')
  await_file "$M/started-$c" 30 || fail "execution $c did not start"
done
for id in "${ids[@]}"; do touch "$M/open-$(json_field "$id" 'e["counter"]')"; done
for id in "${ids[@]}"; do
  expect_eq "before the crash: the execution completes" "$(await_status "$id" complete 30)" complete
done
warm_pids=$(pgrep -f -- "--work-dir $DATA/warm/" | sort | tr '\n' ' ')
expect_eq "idle: one idle worker before the crash" \
  "$(env_field pool 'e["workers"]["idle"], e["workers"]["total"]')" "1 1"
expect_eq "warm: two idle workers before the crash" \
  "$(env_field warm 'e["workers"]["idle"], e["workers"]["total"]')" "2 2"
restart
t0=$(now_ms)
expect_eq "idle: the worker is taken back after the restart" \
  "$(env_field pool 'e["workers"]["total"]')" 1
expect_retired idle "$t0"
expect_contains "idle: ferryd says why" "$(grep "ferryd\[$FERRYD_PID\]" "$FERRYD_LOG")" "idle timeout"

# --- min_workers: one warm worker is kept past idle_timeout, not replaced ---
expect_eq "warm: the worker past min_workers is retired" \
  "$(await_env warm 'e["workers"]["idle"], e["workers"]["total"]' "1 1" 5)" "1 1"
expect_eq "warm: the other agent process is gone" "$(await_agents warm 1 5)" 1
sleep 1
expect_eq "warm: one idle worker stays" \
  "$(env_field warm 'e["workers"]["idle"], e["workers"]["total"]')" "1 1"
warm_pid=$(pgrep -f -- "--work-dir $DATA/warm/")
expect_contains "warm: the one kept is one of the two from before the crash" "$warm_pids" "$warm_pid "
expect_eq "warm: no worker launched after the restart" \
  "$(grep -c "ferryd\[$FERRYD_PID\].*launched" "$FERRYD_LOG" || true)" 0

# --- a crash while the worker is busy: retired once its execution ends ---
g=$(run_id "$P" gate)
c=$(json_field "$g" 'e["counter"]')
await_file "$M/started-$c" 30 || fail "busy: the execution did not start"
restart
sleep $((IDLE + 1))
expect_eq "busy: the worker is kept while its execution runs" \
  "$(env_field pool 'e["workers"]["busy"], e["workers"]["total"]')" "1 1"
touch "$M/open-$c"
expect_eq "busy: the execution completes after the restart" "$(await_status "$g" complete 30)" complete
expect_retired busy "$(now_ms)"
expect_eq "warm: still its one worker in the end" "$(env_field warm 'e["workers"]["total"]')" 1
expect_eq "warm: the same agent process in the end" "$(pgrep -f -- "--work-dir $DATA/warm/")" "$warm_pid"

# --- a graceful restart (SIGTERM) while the worker is idle: the same rules ---
# The stop keeps the agents (FERRYD_KEEP_WORKERS); the worker taken back idle
# is retired after idle_timeout from the new start, min_workers kept.
export FERRYD_KEEP_WORKERS=1
restart_with ferryd_kill # this ferryd was started to retire its workers on a stop
id=$(run_id "$P" quick)
expect_eq "graceful: the execution completes" "$(await_status "$id" complete 30)" complete
expect_eq "graceful: one idle worker before the stop" \
  "$(env_field pool 'e["workers"]["idle"], e["workers"]["total"]')" "1 1"
restart_with ferryd_stop
t0=$(now_ms)
expect_eq "graceful: the worker is taken back after the restart" \
  "$(env_field pool 'e["workers"]["total"]')" 1
expect_retired graceful "$t0"
sleep 1
expect_eq "graceful: warm keeps its one worker, the same agent" \
  "$(env_field warm 'e["workers"]["total"]') $(pgrep -f -- "--work-dir $DATA/warm/")" "1 $warm_pid"

finish
