#!/usr/bin/env bash
# Failing commands: the execution ends in error with the exit code recorded
# and explained; a failure in the middle of a command list does not stop the
# list (the status is the last command's, issue 18); a command that cannot start says why in the log; `ferry wait` and `--watch` exit 1.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

M=$WORK/markers
mkdir -p "$M"
ferryd_start

P=$(make_project failing <<EOF
- step:
    name: last-fails
    image: none
    command:
      - echo first is fine
      - sh -c 'echo going down >&2; exit 3'
- step:
    name: middle-fails
    image: none
    command:
      - echo one
      - touch $M/middle-1
      - sh -c 'exit 7'
      - touch $M/middle-3
      - echo printed after the failure
- step:
    name: bad-interpreter
    image: none
    command: |
      #!/nonexistent/interpreter-$$
      echo never printed
- step:
    name: no-binary
    image: none
    command: /nonexistent/ferry-no-such-binary-$$ --flag
- step:
    name: killed
    image: none
    command: kill -KILL \$\$
- step:
    name: fine
    image: none
    command: echo all good
EOF
)

# Run STEP with --watch; sets W_RC (exit status), W_OUT (what it printed) and
# W_ID (the execution's uuid).
watch_run() {
  W_RC=0
  W_OUT=$(cd "$P" && "$FERRY" run "$1" --watch 2>&1) || W_RC=$?
  W_ID=$(sed -n 's/^Execution #[0-9]* (\([0-9a-f-]*\)) created.*/\1/p' <<<"$W_OUT" | head -n 1)
}

wait_rc() { # wait_rc ID: ferry wait's exit status
  local rc=0
  "$FERRY" wait "$1" --timeout 20 >/dev/null 2>&1 || rc=$?
  echo "$rc"
}

# --- the last command exits 3 ---
watch_run last-fails
expect_eq "last-fails: --watch exits 1" "$W_RC" 1
expect_eq "last-fails: status" "$(json_field "$W_ID" 'e["status"]')" error
expect_eq "last-fails: exit_code" "$(json_field "$W_ID" 'e["exit_code"]')" 3
expect_contains "last-fails: status_reason names the exit code" \
  "$(json_field "$W_ID" 'e["status_reason"]')" "exit code 3"
expect_eq "last-fails: ferry wait exits 1" "$(wait_rc "$W_ID")" 1
expect_contains "last-fails: --watch shows the stderr line" "$W_OUT" "going down"
expect_contains "last-fails: --watch shows the error status" "$W_OUT" "status: error"
log=$("$FERRY" logs "$W_ID" 2>&1)
expect_contains "last-fails: the first command ran" "$log" "first is fine"
expect_contains "last-fails: the log ends with the error status" "$(tail -n 1 <<<"$log")" "status: error"

# --- a command in the middle of the list fails: the rest still run, and the
# status is the last command's (as on Valohai; issue 18 reversed "stops at
# the first failure") ---
watch_run middle-fails
expect_eq "middle-fails: --watch exits 0" "$W_RC" 0
expect_eq "middle-fails: status" "$(json_field "$W_ID" 'e["status"]')" complete
expect_eq "middle-fails: exit_code is the last command's" "$(json_field "$W_ID" 'e["exit_code"]')" 0
expect_eq "middle-fails: ferry wait exits 0" "$(wait_rc "$W_ID")" 0
expect_eq "middle-fails: the command before it ran" "$([ -e "$M/middle-1" ] && echo yes || echo no)" yes
expect_eq "middle-fails: the command after it ran" "$([ -e "$M/middle-3" ] && echo yes || echo no)" yes
expect_contains "middle-fails: the last command printed" "$W_OUT" "printed after the failure"

# --- a "#!" script whose interpreter does not exist ---
watch_run bad-interpreter
expect_eq "bad-interpreter: --watch exits 1" "$W_RC" 1
expect_eq "bad-interpreter: status" "$(json_field "$W_ID" 'e["status"]')" error
expect_eq "bad-interpreter: exit_code -1 (nothing ran)" "$(json_field "$W_ID" 'e["exit_code"]')" -1
reason=$(json_field "$W_ID" 'e["status_reason"]')
expect_contains "bad-interpreter: status_reason says it could not start" "$reason" "could not start"
expect_contains "bad-interpreter: status_reason names the interpreter" "$reason" "/nonexistent/interpreter-$$"
expect_not_contains "bad-interpreter: 'could not start' said once" "$reason" "could not start: could not start"
log=$("$FERRY" logs "$W_ID" 2>&1)
expect_contains "bad-interpreter: the log names the interpreter" "$log" "/nonexistent/interpreter-$$"
expect_contains "bad-interpreter: the log says it could not start" "$log" "could not start"
expect_not_contains "bad-interpreter: the script did not run" "$log" "never printed"
expect_eq "bad-interpreter: ferry wait exits 1" "$(wait_rc "$W_ID")" 1

# --- a binary that does not exist: the shell's 127 and its message ---
watch_run no-binary
expect_eq "no-binary: --watch exits 1" "$W_RC" 1
expect_eq "no-binary: status" "$(json_field "$W_ID" 'e["status"]')" error
expect_eq "no-binary: exit_code 127" "$(json_field "$W_ID" 'e["exit_code"]')" 127
log=$("$FERRY" logs "$W_ID" 2>&1)
expect_contains "no-binary: the shell's message is in the log" "$log" "/nonexistent/ferry-no-such-binary-$$"
# dash says "not found", bash (the shell where the host has it, issue 18)
# "No such file or directory"
expect_eq "no-binary: ... and says it is not there" \
  "$(grep -qE 'not found|No such file or directory' <<<"$log" && echo yes || echo "no: $log")" yes
expect_contains "no-binary: status_reason" "$(json_field "$W_ID" 'e["status_reason"]')" "127"

# --- a command killed by a signal ---
watch_run killed
expect_eq "killed: --watch exits 1" "$W_RC" 1
expect_eq "killed: status" "$(json_field "$W_ID" 'e["status"]')" error
expect_eq "killed: exit_code 128+9" "$(json_field "$W_ID" 'e["exit_code"]')" 137
expect_contains "killed: status_reason names the signal" \
  "$(json_field "$W_ID" 'e["status_reason"]')" "signal 9"

# --- examples/hello's `fail` step: exits 1 with exit_code 3 ---
hello=$WORK/hello
cp -r "$FERRY_SOURCE_DIR/examples/hello" "$hello"
rc=0
out=$(cd "$hello" && "$FERRY" run fail --watch 2>&1) || rc=$?
hid=$(sed -n 's/^Execution #[0-9]* (\([0-9a-f-]*\)) created.*/\1/p' <<<"$out" | head -n 1)
expect_eq "hello fail: --watch exits 1" "$rc" 1
expect_contains "hello fail: its output" "$out" "about to fail"
expect_eq "hello fail: status" "$(json_field "$hid" 'e["status"]')" error
expect_eq "hello fail: exit_code" "$(json_field "$hid" 'e["exit_code"]')" 3
expect_eq "hello fail: ferry wait exits 1" "$(wait_rc "$hid")" 1

# --- the failures harmed nothing: a good run still completes ---
watch_run fine
expect_eq "fine: --watch exits 0" "$W_RC" 0
expect_eq "fine: status" "$(json_field "$W_ID" 'e["status"]')" complete
expect_eq "fine: exit_code" "$(json_field "$W_ID" 'e["exit_code"]')" 0
expect_eq "fine: ferry wait exits 0" "$(wait_rc "$W_ID")" 0
# 5: middle-fails completes now (its last command succeeds, issue 18)
expect_eq "ferry list --status error lists the 5 failures" \
  "$("$FERRY" list --status error | tail -n +2 | wc -l | tr -d ' ')" 5

finish
