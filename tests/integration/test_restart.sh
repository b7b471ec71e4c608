#!/usr/bin/env bash
# Executions survive a restart of ferryd, graceful (TERM) or a crash while
# idle (kill -9): the same uuid, status and exit code, logs and outputs still
# readable, and each project's counter goes on where it was. The database is
# in WAL mode.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# One port for all three ferryds, so that a worker left from before a crash
# meets the new ferryd (and is turned away) instead of a dead port.
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
ferryd_start --listen "127.0.0.1:$PORT"
expect_eq "ferryd listens on the chosen port" "$FERRY_SERVER" "http://127.0.0.1:$PORT"

TOKEN="restart-token-$$-$RANDOM"
P=$(make_project keep <<EOF
- step:
    name: produce
    image: none
    command:
      - echo "log line $TOKEN counter \$FERRY_EXECUTION_COUNTER"
      - mkdir -p \$FERRY_OUTPUTS_DIR/sub
      - echo "model of \$FERRY_EXECUTION_COUNTER $TOKEN" > \$FERRY_OUTPUTS_DIR/sub/model.txt
- step:
    name: fail
    image: none
    command: sh -c 'echo failing; exit 3'
EOF
)
Q=$(make_project other <<'EOF'
- step:
    name: hello
    image: none
    command: echo hello from other
EOF
)

run_wait() { # run_wait DIR STEP: run, wait; print the uuid
  local id
  id=$(run_id "$1" "$2")
  "$FERRY" wait "$id" --timeout 20 >/dev/null 2>&1 || true
  echo "$id"
}

# A one-line summary of an execution, from `ferry show --json`.
summary() { # summary ID [PROJECT]
  local args=("$1" --json)
  [ $# -ge 2 ] && args+=(--project "$2")
  "$FERRY" show "${args[@]}" | python3 -c 'import json,sys
e = json.load(sys.stdin)
print(e["id"], e["project"], e["counter"], e["status"], e["exit_code"], e["created_at"], e["ended_at"])'
}

k1=$(run_wait "$P" produce)
k2=$(run_wait "$P" fail)
o1=$(run_wait "$Q" hello)
expect_eq "keep #1 complete" "$(json_field "$k1" 'e["status"]')" complete
expect_eq "keep #2 error" "$(json_field "$k2" 'e["status"]')" error
expect_eq "other #1 is #1 of its project" "$(json_field "$o1" 'e["counter"]')" 1
before_k1=$(summary 1 keep)
before_k2=$(summary 2 keep)
before_o1=$(summary 1 other)
before_log=$("$FERRY" logs "$k1" 2>&1)

# The state is SQLite in WAL mode.
if command -v sqlite3 >/dev/null; then
  mode=$(sqlite3 "$DATA/ferry.db" 'PRAGMA journal_mode')
else
  mode=$(python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("PRAGMA journal_mode").fetchone()[0])' "$DATA/ferry.db")
fi
expect_eq "ferry.db is in WAL mode" "$mode" wal

# Everything that must hold after each restart. N: the next counter of keep.
check_survived() { # check_survived WHEN
  local when=$1
  expect_eq "$when: keep #1 unchanged" "$(summary 1 keep)" "$before_k1"
  expect_eq "$when: keep #2 unchanged" "$(summary 2 keep)" "$before_k2"
  expect_eq "$when: other #1 unchanged" "$(summary 1 other)" "$before_o1"
  expect_eq "$when: keep #1 by uuid" "$(summary "$k1")" "$before_k1"
  expect_eq "$when: keep #2's exit code" "$(json_field "$k2" 'e["exit_code"]')" 3
  expect_eq "$when: keep #1's log" "$("$FERRY" logs "$k1" 2>&1)" "$before_log"
  expect_contains "$when: keep #1's log has its line" "$("$FERRY" logs "$k1" 2>/dev/null)" "log line $TOKEN counter 1"
  expect_contains "$when: keep #2's log has its line" "$("$FERRY" logs "$k2" 2>/dev/null)" "failing"
  expect_contains "$when: keep #1 lists its output" "$("$FERRY" outputs "$k1")" "sub/model.txt"
  local out=$WORK/download-$when
  rm -rf "$out"
  "$FERRY" outputs "$k1" --download "$out" >/dev/null || fail "$when: download of keep #1's outputs failed"
  expect_eq "$when: keep #1's output downloads" "$(cat "$out/sub/model.txt" 2>/dev/null)" "model of 1 $TOKEN"
  expect_eq "$when: keep #1's output over the API" \
    "$(curl -sS "$FERRY_SERVER/v1/executions/$k1/outputs/sub/model.txt")" "model of 1 $TOKEN"
}

agents_of_data_dir() { pgrep -f -- "--work-dir $DATA" || true; }

# --- a graceful restart ---
kill -TERM "$FERRYD_PID"
rc=0
wait "$FERRYD_PID" || rc=$?
FERRYD_PID=
expect_eq "ferryd exits 0 on SIGTERM" "$rc" 0
left=
for _ in $(seq 100); do
  left=$(agents_of_data_dir)
  [ -z "$left" ] && break
  sleep 0.05
done
expect_eq "a graceful stop leaves no agent running" "$left" ""

ferryd_start --listen "127.0.0.1:$PORT"
expect_contains "after a graceful restart: nothing unfinished" \
  "$(grep "ferryd\[$FERRYD_PID\].*listening on" "$FERRYD_LOG")" "0 unfinished executions restored"
check_survived graceful
k3=$(run_wait "$P" produce)
expect_eq "graceful: keep's counter goes on (#3)" "$(json_field "$k3" 'e["counter"]')" 3
expect_eq "graceful: keep #3 completes" "$(json_field "$k3" 'e["status"]')" complete
o2=$(run_wait "$Q" hello)
expect_eq "graceful: other's counter goes on (#2)" "$(json_field "$o2" 'e["counter"]')" 2
expect_contains "graceful: keep #3 has its own output" "$(curl -sS "$FERRY_SERVER/v1/executions/$k3/outputs/sub/model.txt")" "model of 3"
expect_contains "keep #3 is listed" "$("$FERRY" list)" "${k3:0:8}"

# --- a crash while idle: kill -9 right after an execution ended ---
k4=$(run_wait "$P" produce)
expect_eq "keep #4 completes" "$(json_field "$k4" 'e["status"]')" complete
after_k4=$(summary "$k4")
old_agents=$(agents_of_data_dir)
if [ -n "$old_agents" ]; then pass; else fail "no idle agent before the crash"; fi
ferryd_kill
ferryd_start --listen "127.0.0.1:$PORT"
check_survived crash
expect_eq "crash: keep #4, stored just before the crash, unchanged" "$(summary "$k4")" "$after_k4"
expect_contains "crash: keep #4's log" "$("$FERRY" logs "$k4" 2>/dev/null)" "log line $TOKEN counter 4"
k5=$(run_wait "$P" produce)
expect_eq "crash: keep's counter goes on (#5)" "$(json_field "$k5" 'e["counter"]')" 5
expect_eq "crash: keep #5 completes" "$(json_field "$k5" 'e["status"]')" complete
expect_contains "crash: keep #5's output" "$(curl -sS "$FERRY_SERVER/v1/executions/$k5/outputs/sub/model.txt")" "model of 5"
o3=$(run_wait "$Q" hello)
expect_eq "crash: other's counter goes on (#3)" "$(json_field "$o3" 'e["counter"]')" 3
expect_eq "crash: still 8 executions" "$(curl -sS "$FERRY_SERVER/v1/executions" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["executions"]))')" 8
# The agents the crashed ferryd had started are its workers still: the new
# ferryd takes them back (their records and tokens survived), so the runs
# after the crash needed no new agent, and they are still alive.
launched=$(grep -c "ferryd\[$FERRYD_PID\].*launched agent" "$FERRYD_LOG" || true)
expect_eq "crash: the old agents were taken back (no new agent launched)" "$launched" 0
alive=
for pid in $old_agents; do
  kill -0 "$pid" 2>/dev/null && alive="$alive $pid"
done
expect_eq "crash: the old agents still serve" "$alive" "$(printf ' %s' $old_agents)"

# --- executions across a crash: they go on, and log numbering goes on ---
# A gate keeps the only worker busy, so the next one waits queued; ferryd dies
# and comes back: the gate's run goes on and completes, the queued one runs
# after it, and both logs number their events 1..N once each.
ferryd_kill
cat >"$WORK/one-worker.conf" <<'EOF'
environments = ( { name = "local"; compute = "local"; max_workers = 1; } );
EOF
ferryd_start -c "$WORK/one-worker.conf" --listen "127.0.0.1:$PORT"
G=$(make_project gate <<'EOF'
- step:
    name: gate
    image: none
    command: sleep 3; echo gate done
- step:
    name: after
    image: none
    command: echo ran after the restart
EOF
)
gate=$(run_id "$G" gate)
for _ in $(seq 100); do
  [ "$(json_field "$gate" 'e["status"]')" = started ] && break
  sleep 0.05
done
queued=$(run_id "$G" after)
expect_eq "queued across the crash: waits before it" "$(json_field "$queued" 'e["status"]')" queued
ferryd_kill
ferryd_start -c "$WORK/one-worker.conf" --listen "127.0.0.1:$PORT"
"$FERRY" wait "$queued" --timeout 30 >/dev/null || true
expect_eq "queued across the crash: runs after it" "$(json_field "$queued" 'e["status"]')" complete
expect_eq "the gate's run went on through the crash" "$(json_field "$gate" 'e["status"]')" complete
expect_contains "the gate's output line after the crash is kept" "$("$FERRY" logs "$gate" 2>/dev/null)" "gate done"
for id in "$gate" "$queued"; do
  nums=$(curl -sS "$FERRY_SERVER/v1/executions/$id/logs" | python3 -c 'import json,sys; print(" ".join(str(json.loads(l)["i"]) for l in sys.stdin))')
  want=$(seq -s " " 1 "$(echo "$nums" | wc -w)")
  expect_eq "log events of $id are numbered 1..N once each after a restart" "$nums" "$want"
done

finish
