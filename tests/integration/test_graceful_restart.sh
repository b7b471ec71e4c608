#!/usr/bin/env bash
# A stop of ferryd (SIGTERM) keeps the work: on `local`, an execution
# printing numbered lines goes on while ferryd is away, its agent alive, and
# completes after ferryd restarts on the same data dir, with every line in
# its log exactly once and its output kept. With --retire-workers the stop
# ends the work, as it did before (issue 16).
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# One port for both ferryds: the agents call the same URL again.
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
N=8
P=$(make_project count <<EOF
- step:
    name: count
    image: none
    command:
      - for i in \$(seq 1 $N); do echo "line-\$i"; sleep 1; done
      - echo "counted $N" > \$FERRY_OUTPUTS_DIR/counted.txt
EOF
)
agents() { pgrep -f -- "--work-dir $DATA" || true; }


# SIGTERM; sets ms (how long ferryd took to exit) and rc (its status).
stop_timed() {
  local t0
  t0=$(date +%s%N)
  kill -TERM "$FERRYD_PID"
  rc=0
  wait "$FERRYD_PID" || rc=$?
  FERRYD_PID=
  ms=$((($(date +%s%N) - t0) / 1000000))
}

# --- a graceful stop keeps the work ---
export FERRYD_KEEP_WORKERS=1
ferryd_start --listen "127.0.0.1:$PORT"
id=$(run_id "$P" count)
await_line_2 "$id" 10
before=$(agents)
if [ -n "$before" ]; then pass; else fail "no agent runs the execution"; fi
stop_timed
expect_eq "ferryd exits 0 on SIGTERM" "$rc" 0
if [ "$ms" -lt 5000 ]; then pass; else fail "ferryd took $ms ms to stop (over 5 s)"; fi
expect_not_contains "the stop ended no execution" "$(cat "$FERRYD_LOG")" "ferryd is shutting down"
alive=
for pid in $before; do kill -0 "$pid" 2>/dev/null && alive="$alive $pid"; done
expect_eq "the agent outlives ferryd's stop" "$alive" "$(printf ' %s' $before)"
sleep 2 # the execution goes on printing while ferryd is away
# The agent is held still (its commands go on) so that the new ferryd is
# seen waiting for it: `awaiting` counts the workers taken back that have
# not called since the start, until the fleet is whole again.
awaiting() { curl -sS "$FERRY_SERVER/v1/environments" |
  python3 -c 'import json, sys; print(sum(e["workers"]["awaiting"] for e in json.load(sys.stdin)["environments"]))'; }
kill -STOP $before
ferryd_start --listen "127.0.0.1:$PORT"
expect_contains "the restart takes the execution back" \
  "$(grep "ferryd\[$FERRYD_PID\].*listening on" "$FERRYD_LOG")" "1 unfinished execution restored"
expect_eq "the worker taken back is awaited until its agent calls" "$(awaiting)" 1
kill -CONT $before
for _ in $(seq 100); do [ "$(awaiting)" = 0 ] && break; sleep 0.1; done
expect_eq "its agent calls again: none awaited" "$(awaiting)" 0
expect_contains "ferryd says when every worker is back" \
  "$(grep "ferryd\[$FERRYD_PID\]" "$FERRYD_LOG")" "every worker taken back has called again"
"$FERRY" wait "$id" --timeout 30 >/dev/null 2>&1 || true
expect_eq "the execution completes after the restart" "$(json_field "$id" 'e["status"]')" complete
expect_eq "it kept its exit code" "$(json_field "$id" 'e["exit_code"]')" 0
expect_lines_once "$id" $N "after the restart"
expect_eq "its output is kept" \
  "$(curl -sS "$FERRY_SERVER/v1/executions/$id/outputs/counted.txt")" "counted $N"
launched=$(grep -c "ferryd\[$FERRYD_PID\].*launched agent" "$FERRYD_LOG" || true)
expect_eq "the old agent was taken back (none launched)" "$launched" 0

# --- --retire-workers: the stop ends the work, as before ---
# On a fresh data dir, with an agent this ferryd launched itself.
ferryd_stop
old=$(agents)
[ -n "$old" ] && kill -TERM $old 2>/dev/null
for _ in $(seq 100); do
  [ -z "$(agents)" ] && break
  sleep 0.05
done
DATA=$WORK/data2 # the cleanup still ends the agents of both
ferryd_start --listen "127.0.0.1:$PORT" --retire-workers
id2=$(run_id "$P" count)
await_line_2 "$id2" 10
stop_timed
expect_eq "--retire-workers: ferryd exits 0" "$rc" 0
left=
for _ in $(seq 100); do
  left=$(agents)
  [ -z "$left" ] && break
  sleep 0.05
done
expect_eq "--retire-workers: no agent left running" "$left" ""
ferryd_start --listen "127.0.0.1:$PORT"
expect_eq "--retire-workers: the execution ended in error" "$(json_field "$id2" 'e["status"]')" error
expect_contains "--retire-workers: and says why" \
  "$("$FERRY" show "$id2" --json)" "ferryd is shutting down"
ferryd_stop
finish
