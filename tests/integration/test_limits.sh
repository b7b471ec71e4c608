#!/usr/bin/env bash
# Limits: a step's time-limit ends a longer execution as an error ("time
# limit") within a few seconds of the limit, never before it; `ferry run
# --time-limit` and the API's "time_limit" override the step's (0: none).
# no-output-timeout ends a silent execution ("no output"), but not one that
# keeps printing (stdout or stderr); --no-output-timeout overrides it.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib_sched.sh"

cat >"$WORK/ferryd.conf" <<'EOF'
environments = ( { name = "local"; compute = "local"; max_workers = 9; } );
EOF
ferryd_start -c "$WORK/ferryd.conf"

P=$(make_project limits <<'EOF'
- step:
    name: limited
    image: none
    time-limit: 2
    command: sleep 60
- step:
    name: plain
    image: none
    command: sleep 60
- step:
    name: limited-short
    image: none
    time-limit: 1
    command: sleep 2.5; echo slept
- step:
    name: quiet
    image: none
    no-output-timeout: 2
    command: echo one line first; sleep 60
- step:
    name: chatty
    image: none
    no-output-timeout: 2
    command: for i in 1 2 3 4 5 6 7 8; do echo tick $i; sleep 0.5; done
- step:
    name: chatty-stderr
    image: none
    no-output-timeout: 2
    command: for i in 1 2 3 4 5 6 7 8; do echo tock $i >&2; sleep 0.5; done
EOF
)

# Everything at once (one worker each), then the checks.
t_limited=$(run_id "$P" limited)
t_cli=$(run_id "$P" plain --time-limit 2s)
t_off=$(run_id "$P" limited-short --time-limit 0)
sha=$(json_field "$t_limited" 'e["snapshot"]')
body=$(api "" POST /v1/executions \
  '{"project": "limits", "step": "plain", "snapshot": "'"$sha"'", "time_limit": 2}')
expect_eq "POST /v1/executions with time_limit: 201" "$(http_code)" 201
t_api=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])' <<<"$body")
q_step=$(run_id "$P" quiet)
q_cli=$(run_id "$P" plain --no-output-timeout 2s)
q_chatty=$(run_id "$P" chatty)
q_stderr=$(run_id "$P" chatty-stderr)

expect_eq "time_limit from the step" "$(json_field "$t_limited" 'e["time_limit"]')" 2
expect_eq "time_limit from --time-limit 2s" "$(json_field "$t_cli" 'e["time_limit"]')" 2
expect_eq "time_limit from the API" "$(json_field "$t_api" 'e["time_limit"]')" 2
expect_eq "--time-limit 0 overrides the step's" "$(json_field "$t_off" 'e["time_limit"]')" 0
expect_eq "no_output_timeout from the step" "$(json_field "$q_step" 'e["no_output_timeout"]')" 2
expect_eq "no_output_timeout from --no-output-timeout 2s" "$(json_field "$q_cli" 'e["no_output_timeout"]')" 2
expect_eq "a step without limits: none" "$(json_field "$q_cli" 'e["time_limit"]')" 0

# Ended by a limit: an error, with the reason, between the limit and ~5 s.
limit_ended() { # limit_ended WHAT ID REASON
  local rc=0
  "$FERRY" wait "$2" --timeout 30 >/dev/null || rc=$?
  expect_eq "$1: ferry wait exits 1 (error)" "$rc" 1
  expect_eq "$1: status" "$(json_field "$2" 'e["status"]')" error
  expect_contains "$1: status_reason" "$(json_field "$2" 'e["status_reason"]')" "$3"
  local ms
  ms=$(ms_between "$2" started_at ended_at)
  echo "$1: ended ${ms} ms after it started"
  if [ "$ms" -ge 1900 ] && [ "$ms" -le 5000 ]; then pass; else
    fail "$1: ended ${ms} ms after it started (limit 2 s; expected 2 to 5 s)"
  fi
}
limit_ended "step time-limit 2" "$t_limited" "time limit"
limit_ended "--time-limit 2s" "$t_cli" "time limit"
limit_ended "API time_limit 2" "$t_api" "time limit"
limit_ended "step no-output-timeout 2" "$q_step" "no output"
limit_ended "--no-output-timeout 2s" "$q_cli" "no output"
out=$("$FERRY" show "$t_limited")
expect_contains "ferry show prints the time-limit reason" "$out" "time limit"
log=$("$FERRY" logs "$q_step")
expect_contains "the quiet one did run (its first line is logged)" "$log" "one line first"

for pair in "--time-limit 0 on a 1 s step that takes 2.5 s:$t_off:slept" \
  "printing every 0.5 s for 4 s with no-output-timeout 2:$q_chatty:tick 8" \
  "printing to stderr every 0.5 s for 4 s with no-output-timeout 2:$q_stderr:tock 8"; do
  what=${pair%%:*} rest=${pair#*:}
  id=${rest%%:*} last=${rest#*:}
  rc=0
  "$FERRY" wait "$id" --timeout 30 >/dev/null || rc=$?
  expect_eq "$what: completes" "$rc" 0
  expect_eq "$what: status" "$(json_field "$id" 'e["status"]')" complete
  expect_contains "$what: ran to the end" "$("$FERRY" logs "$id" 2>&1)" "$last"
done
ms=$(ms_between "$q_chatty" started_at ended_at)
if [ "$ms" -ge 3500 ]; then pass; else fail "the chatty execution ended after only ${ms} ms"; fi

# Bad limits are refused.
for bad in '"time_limit": -1' '"time_limit": "2s"' '"no_output_timeout": 1.5'; do
  api "" POST /v1/executions \
    '{"project": "limits", "step": "plain", "snapshot": "'"$sha"'", '"$bad"'}' >/dev/null
  expect_eq "$bad is refused" "$(http_code)" 400
done
rc=0
(cd "$P" && "$FERRY" run plain --time-limit soon >/dev/null 2>&1) || rc=$?
expect_eq "ferry run --time-limit soon: a usage error" "$rc" 2

finish
