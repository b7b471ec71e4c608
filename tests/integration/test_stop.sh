#!/usr/bin/env bash
# ferry stop: a running execution goes stopping -> stopped quickly, also when
# its command ignores SIGTERM; nothing it started outlives it; a queued one is
# stopped at once and never runs; an ended one cannot be stopped.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib_sched.sh" # now_ms, await_status, await_file, $M

# The status-stream texts of an execution's log, one a line.
status_lines() {
  curl -sS "$FERRY_SERVER/v1/executions/$1/logs" |
    python3 -c 'import json,sys
for l in sys.stdin:
    e = json.loads(l)
    if e["stream"] == "status": print(e["text"])'
}

# A marker unique to this run, so pgrep sees only our processes.
MARK="30$((RANDOM % 9)).$$$RANDOM"
# The escapee steps start a process outside ferry's reach (setsid): end it
# here, by the pid it wrote, also when the test stops half-way.
kill_escapees() {
  local f
  for f in "$M"/escapee-pid-*; do
    [ -s "$f" ] && kill "$(cat "$f")" 2>/dev/null
  done
  return 0
}
trap 'rc_=$?; set +e; kill_escapees; (exit $rc_); cleanup' EXIT

cat >"$WORK/ferryd.conf" <<'EOF'
environments = ( { name = "local"; compute = "local"; max_workers = 1; } );
EOF
ferryd_start -c "$WORK/ferryd.conf"

P=$(make_project stopper <<EOF
- step:
    name: sleep
    image: none
    command: touch $M/sleep-\$FERRY_EXECUTION_COUNTER; sleep 300
- step:
    name: stubborn
    image: none
    command: trap '' TERM; touch $M/stubborn; sleep 300
- step:
    name: family
    image: none
    command: sleep $MARK & touch $M/family; sleep 300
- step:
    name: escapee
    image: none
    command: setsid sh -c 'echo \$\$ > $M/escapee-pid-\$FERRY_EXECUTION_COUNTER; exec sleep $MARK' & sleep 300
- step:
    name: escapee-ends
    image: none
    command: >-
      setsid sh -c 'echo \$\$ > $M/escapee-pid-\$FERRY_EXECUTION_COUNTER; exec sleep $MARK' &
      while [ ! -s $M/escapee-pid-\$FERRY_EXECUTION_COUNTER ]; do sleep 0.05; done; echo done
- step:
    name: gate
    image: none
    command: touch $M/gate-started; while [ ! -e $M/open ]; do sleep 0.05; done; echo gate passed
- step:
    name: marker
    image: none
    command: touch $M/marker-\$FERRY_EXECUTION_COUNTER; echo marker ran
EOF
)

# --- a running execution: stopping, then stopped, within 10 s ---
id=$(run_id "$P" sleep)
expect_eq "sleep started" "$(await_status "$id" started 15)" started
await_file "$M/sleep-1" 10 || fail "the sleep command did not run"
t0=$(now_ms)
out=$("$FERRY" stop "$id" --json)
status_after_stop=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["status"])' <<<"$out")
# The answer is stopping (the worker has not ended it yet) or, if the worker
# was very quick, already stopped; never still started.
if [ "$status_after_stop" == stopping ] || [ "$status_after_stop" == stopped ]; then pass; else
  fail "ferry stop answered status '$status_after_stop'"
fi
rc=0
"$FERRY" wait "$id" --timeout 10 >/dev/null || rc=$?
elapsed=$(($(now_ms) - t0))
expect_eq "ferry wait on a stopped execution exits 2" "$rc" 2
expect_eq "status after stop" "$(json_field "$id" 'e["status"]')" stopped
[ "$elapsed" -lt 10000 ] && pass || fail "stop took ${elapsed} ms (limit 10 s)"
echo "stop of a running execution took ${elapsed} ms"
expect_contains "status_reason of a stopped execution" "$(json_field "$id" 'e["status_reason"]')" "stop"
expect_eq "ended_at is set" "$(json_field "$id" 'e["ended_at"] is not None')" True
log=$(status_lines "$id")
expect_contains "log has status: stopping" "$log" "status: stopping"
expect_contains "log has status: stopped" "$log" "status: stopped"
# stopping comes before stopped, and stopped is the last status line.
order=$(grep -o -e '^status: stopping' -e '^status: stopped' <<<"$log" | tr '\n' ,)
expect_eq "stopping, then stopped" "$order" "status: stopping,status: stopped,"
expect_contains "the last status line is stopped" "$(tail -n 1 <<<"$log")" "status: stopped"
# `ferry wait` again, now on an ended execution: still 2.
rc=0
"$FERRY" wait "$id" >/dev/null || rc=$?
expect_eq "ferry wait on an already stopped execution exits 2" "$rc" 2

# --- stopping an execution that has already ended: a clear error ---
rc=0
err=$("$FERRY" stop "$id" 2>&1) || rc=$?
expect_eq "ferry stop on an ended execution exits 5" "$rc" 5
expect_contains "ferry stop on an ended execution says so" "$err" "already ended"
code=$(curl -sS -o "$WORK/stop.json" -w '%{http_code}' -X POST "$FERRY_SERVER/v1/executions/$id/stop")
expect_eq "POST stop on an ended execution: HTTP 409" "$code" 409
expect_contains "its body is a JSON error" "$(cat "$WORK/stop.json")" '"error"'
expect_eq "still stopped after a second stop" "$(json_field "$id" 'e["status"]')" stopped
rc=0
err=$("$FERRY" stop 424242 2>&1) || rc=$?
expect_eq "ferry stop of an unknown execution exits 5" "$rc" 5
expect_contains "ferry stop of an unknown execution names it" "$err" "424242"

# --- `ferry run --watch` exits 2 when the execution is stopped ---
rc_file=$WORK/watch.rc
(
  cd "$P"
  rc=0
  "$FERRY" run sleep --watch >"$WORK/watch.out" 2>&1 || rc=$?
  echo "$rc" >"$rc_file"
) &
watcher=$!
await_file "$M/sleep-2" 15 || fail "the watched execution did not run"
wid=$(sed -n 's/^Execution #[0-9]* (\([0-9a-f-]*\)) created.*/\1/p' "$WORK/watch.out" | head -n 1)
expect_eq "the watched execution is #2" "$(json_field "$wid" 'e["counter"]')" 2
"$FERRY" stop "$wid" >/dev/null
for _ in $(seq 200); do [ -e "$rc_file" ] && break; sleep 0.05; done
wait "$watcher" 2>/dev/null || true
expect_eq "ferry run --watch exits 2 on stop" "$(cat "$rc_file" 2>/dev/null)" 2
expect_contains "the watch shows the stopped status" "$(cat "$WORK/watch.out")" "status: stopped"

# --- a command that ignores SIGTERM is killed after the grace period ---
sid=$(run_id "$P" stubborn)
await_file "$M/stubborn" 15 || fail "the stubborn command did not run"
t0=$(now_ms)
"$FERRY" stop "$sid" >/dev/null
rc=0
"$FERRY" wait "$sid" --timeout 10 >/dev/null || rc=$?
elapsed=$(($(now_ms) - t0))
echo "stop of a command that ignores SIGTERM took ${elapsed} ms"
expect_eq "stubborn: ferry wait exits 2" "$rc" 2
expect_eq "stubborn: status" "$(json_field "$sid" 'e["status"]')" stopped
[ "$elapsed" -lt 10000 ] && pass || fail "stubborn stop took ${elapsed} ms (limit 10 s)"
# 137 = 128 + SIGKILL: SIGTERM was ignored, so SIGKILL ended it.
expect_eq "stubborn: killed by SIGKILL" "$(json_field "$sid" 'e["exit_code"]')" 137

# --- a background grandchild does not outlive the stop ---
fid=$(run_id "$P" family)
await_file "$M/family" 15 || fail "the family command did not run"
if pgrep -f -- "sleep $MARK" >/dev/null; then pass; else fail "the background sleep $MARK is not running before the stop"; fi
"$FERRY" stop "$fid" >/dev/null
rc=0
"$FERRY" wait "$fid" --timeout 10 >/dev/null || rc=$?
expect_eq "family: ferry wait exits 2" "$rc" 2
left=
for _ in $(seq 40); do
  left=$(pgrep -f -- "sleep $MARK" || true)
  [ -z "$left" ] && break
  sleep 0.05
done
expect_eq "no background process left after the stop" "$left" ""

# --- a descendant that left the process group (setsid) keeps the pipes
# open; it must not keep the execution from ending, stopped or not ---
for step in escapee escapee-ends; do
  eid=$(run_id "$P" "$step")
  en=$(json_field "$eid" 'e["counter"]')
  await_file "$M/escapee-pid-$en" 15 || fail "$step: the command did not run"
  t0=$(now_ms)
  expected=0
  if [ "$step" == escapee ]; then
    "$FERRY" stop "$eid" >/dev/null
    expected=2
  fi
  rc=0
  "$FERRY" wait "$eid" --timeout 10 >/dev/null || rc=$?
  elapsed=$(($(now_ms) - t0))
  expect_eq "$step: ended (ferry wait's exit status)" "$rc" "$expected"
  [ "$elapsed" -lt 10000 ] && pass || fail "$step: took ${elapsed} ms to end (limit 10 s)"
done

# --- a queued execution is stopped at once and never runs ---
# One worker: `gate` holds it until $M/open exists; q1 and q2 wait queued.
gid=$(run_id "$P" gate)
await_file "$M/gate-started" 15 || fail "the gate command did not run"
q1=$(run_id "$P" marker)
q2=$(run_id "$P" marker)
q1n=$(json_field "$q1" 'e["counter"]')
q2n=$(json_field "$q2" 'e["counter"]')
expect_eq "the first waiting execution is queued" "$(json_field "$q1" 'e["status"]')" queued
expect_eq "the second waiting execution is queued" "$(json_field "$q2" 'e["status"]')" queued
t0=$(now_ms)
out=$("$FERRY" stop "$q1" --json)
elapsed=$(($(now_ms) - t0))
[ "$elapsed" -lt 2000 ] && pass || fail "stop of a queued execution took ${elapsed} ms"
expect_eq "stop of a queued execution answers stopped" \
  "$(python3 -c 'import json,sys; print(json.load(sys.stdin)["status"])' <<<"$out")" stopped
expect_eq "a stopped queued execution has no exit code" "$(json_field "$q1" 'e["exit_code"]')" None
expect_eq "a stopped queued execution never started" "$(json_field "$q1" 'e["started_at"]')" None
rc=0
"$FERRY" wait "$q1" --timeout 2 >/dev/null || rc=$?
expect_eq "ferry wait on a stopped queued execution exits 2" "$rc" 2
log=$(status_lines "$q1")
expect_contains "queued stop: log has status: queued" "$log" "status: queued"
expect_contains "queued stop: log has status: stopped" "$log" "status: stopped"
expect_not_contains "queued stop: never started" "$log" "status: started"
# Let the gate through: it completes, and the worker then takes q2.
touch "$M/open"
rc=0
"$FERRY" wait "$gid" --timeout 15 >/dev/null || rc=$?
expect_eq "the gate execution completes normally" "$rc" 0
rc=0
"$FERRY" wait "$q2" --timeout 15 >/dev/null || rc=$?
expect_eq "the next queued execution runs to completion" "$rc" 0
expect_eq "q2 ran" "$([ -e "$M/marker-$q2n" ] && echo yes || echo no)" yes
expect_eq "the stopped queued execution never ran" "$([ -e "$M/marker-$q1n" ] && echo yes || echo no)" no
expect_eq "q1 is still stopped" "$(json_field "$q1" 'e["status"]')" stopped

finish
