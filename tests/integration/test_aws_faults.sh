#!/usr/bin/env bash
# The aws compute plugin (issue 7) when EC2 misbehaves, against
# tests/fakes/fake_ec2.py (signatures checked, instances booted as hosts in
# network namespaces). Covered:
#   - throttling (RequestLimitExceeded) and 5xx: retried with backoff, one
#     ClientToken per zone, one instance;
#   - a slow answer past call_timeout: retried with the same ClientToken,
#     and EC2's idempotency gives back the same instance, not a second one;
#   - no capacity in any zone: `ferry show` says what each zone answered,
#     ferryd backs off and launches once capacity is back;
#   - refused credentials (AuthFailure, a wrong secret) and a missing
#     permission (UnauthorizedOperation): the environment is broken, `ferry
#     envs` and `ferry show` say so, and ferryd does not spin;
#   - TerminateInstances failing for longer than one call's retries: the
#     record stays and the terminate is tried again until it takes;
#   - an instance terminated or stopped outside ferry mid-run, and an agent
#     that dies on a live instance: the execution ends in error saying which.
# Every part ends with the fake holding no running instance ferry launched.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib_sched.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib_aws.sh"

fake_start
export IDLE=2 # each part waits for its worker to be retired
aws_conf "$(aws_env aws)" \
  "$(aws_env bad 'access_key_id = "AKIDWRONG"; secret_access_key = "not-the-secret";')" \
  "$(ZONES='[ "us-east-1c" ]' SUBNETS='[ "subnet-cccc" ]' aws_env perm)"
aws_ferryd_start
D=$(daemon_id)
P=$({
  step_quick
  step_spin
} | make_project faults)
# RunInstances requests of the default environment's zones so far.
runs() { fake_q "[(r['zone'], r['code'] or r['status']) for r in R if r['action'] == 'RunInstances' and r['key_id'] == '$AK' and r['zone'] != 'us-east-1c']"; }

# --- refused credentials: broken at once (the start's sweep), no spinning ---
expect_contains "a wrong secret: the environment is broken" "$(env_text bad broken)" \
  "AuthFailure"
id_bad=$(run_in bad quick)
sleep 1
expect_contains "a wrong secret: ferry show says why it waits" \
  "$(json_field "$id_bad" 'e["status_reason"]')" "environment 'bad' is broken: "
expect_contains "a wrong secret: ferry envs says so" "$("$FERRY" envs 2>&1)" \
  "bad: BROKEN, no launches until an operator fixes it: "
n1=$(fake_q "len([r for r in R if r['key_id'] == 'AKIDWRONG'])")
sleep 3
n2=$(fake_q "len([r for r in R if r['key_id'] == 'AKIDWRONG'])")
expect_eq "a wrong secret: no call in 3 s (no spinning; sweeps every 2 s)" "$((n2 - n1))" 0
if [ "$n2" -le 2 ]; then pass; else fail "a wrong secret: $n2 calls were made"; fi
"$FERRY" stop "$id_bad" >/dev/null

# --- a missing permission: broken too, with EC2's code ---
fake_faults '[{"action": "RunInstances", "zone": "us-east-1c", "status": 403,
  "code": "UnauthorizedOperation", "message": "You are not authorized to perform this operation.",
  "times": -1}]'
id=$(run_in perm quick)
for _ in $(seq 50); do [ -n "$(env_text perm broken)" ] && break; sleep 0.1; done
expect_contains "UnauthorizedOperation: the environment is broken" "$(env_text perm broken)" \
  "UnauthorizedOperation"
expect_contains "UnauthorizedOperation: ferry show says why it waits" \
  "$(json_field "$id" 'e["status_reason"]')" "environment 'perm' is broken"
sleep 2.5
expect_eq "UnauthorizedOperation: one RunInstances, not one per backoff step" \
  "$(fake_q "len([r for r in R if r['zone'] == 'us-east-1c'])")" 1
"$FERRY" stop "$id" >/dev/null

# --- throttling and 5xx: retried in place, same token, one instance ---
fake_faults '[{"action": "RunInstances", "status": 503, "code": "RequestLimitExceeded", "message": "Request limit exceeded.", "times": 2},
  {"action": "RunInstances", "status": 500, "code": "InternalError", "message": "An internal error has occurred", "times": 1}]'
id=$(run_in aws quick)
"$FERRY" wait "$id" --timeout 60 >/dev/null || true
expect_eq "throttled and 5xx: complete" "$(json_field "$id" 'e["status"]')" complete
expect_eq "throttled and 5xx: retried in zone a" "$(runs)" \
  "[('us-east-1a', 'RequestLimitExceeded'), ('us-east-1a', 'RequestLimitExceeded'), ('us-east-1a', 'InternalError'), ('us-east-1a', 200)]"
expect_eq "throttled and 5xx: one ClientToken for all four" \
  "$(fake_q "len(set(r['client_token'] for r in R if r['action'] == 'RunInstances' and r['zone'] == 'us-east-1a'))")" 1
expect_eq "throttled and 5xx: one instance" "$(fake_q "len([i for i in I if i['daemon'] == '$D'])")" 1
expect_eq "back to an empty pool" "$(await_env_workers aws "0 0 0 0" 20)" "0 0 0 0"
expect_none_running "$D" "after throttling"

# --- a slow answer: the retry finds the same instance (ClientToken) ---
fake POST /__reset >/dev/null
fake_faults '[{"action": "RunInstances", "delay": 3, "after": "answer", "times": 1}]'
id=$(run_in aws quick)
"$FERRY" wait "$id" --timeout 60 >/dev/null || true
expect_eq "slow answer: complete" "$(json_field "$id" 'e["status"]')" complete
# The instance may boot and run the execution before the retry's answer.
expect_eq "back to an empty pool" "$(await_env_workers aws "0 0 0 0" 20)" "0 0 0 0"
expect_eq "slow answer: asked twice with one token" \
  "$(fake_q "(lambda t: (len(t), len(set(t))))([r['client_token'] for r in R if r['action'] == 'RunInstances'])")" \
  "(2, 1)"
expect_eq "slow answer: one instance, not two" "$(fake_q "len([i for i in I if i['daemon'] == '$D'])")" 1
expect_contains "slow answer: the timeout was logged" "$(cat "$FERRYD_LOG")" \
  "EC2 RunInstances: attempt 1 failed (EC2 RunInstances: timed out"
expect_none_running "$D" "after a slow answer"

# --- no capacity anywhere: the reasons per zone, backoff, then a launch ---
fake POST /__reset >/dev/null
fake_faults '[{"action": "RunInstances", "zone": "us-east-1a", "status": 500, "code": "InsufficientInstanceCapacity", "message": "We currently do not have sufficient g5.xlarge capacity in the Availability Zone you requested (us-east-1a).", "times": -1},
  {"action": "RunInstances", "zone": "us-east-1b", "status": 400, "code": "Unsupported", "message": "Your requested instance type (g5.xlarge) is not supported in your requested Availability Zone (us-east-1b).", "times": -1}]'
id=$(run_in aws quick)
why=$(await_reason "$id" "launching failed")
expect_contains "no capacity: ferry show names zone a's answer" "$why" \
  "us-east-1a: InsufficientInstanceCapacity (We currently do not have sufficient g5.xlarge capacity"
expect_contains "no capacity: and zone b's" "$why" "us-east-1b: Unsupported (Your requested instance type"
expect_contains "no capacity: and that it tries again" "$why" "retrying in"
expect_contains "no capacity: ferry envs shows the last failure" "$("$FERRY" envs 2>&1)" \
  "aws: the last launch failed: no zone could launch a g5.xlarge"
sleep 2
fake_faults '[]'
"$FERRY" wait "$id" --timeout 60 >/dev/null || true
expect_eq "capacity back: complete" "$(json_field "$id" 'e["status"]')" complete
tries=$(fake_q "len([r for r in R if r['action'] == 'RunInstances' and r['code'] == 'InsufficientInstanceCapacity'])")
if [ "$tries" -ge 2 ] && [ "$tries" -le 5 ]; then pass; else
  fail "no capacity: $tries tries of zone a in about 3 s (backoff 1 s, 2 s, 4 s...)"
fi
expect_eq "back to an empty pool" "$(await_env_workers aws "0 0 0 0" 20)" "0 0 0 0"
expect_none_running "$D" "after no capacity"

# --- terminated outside ferry mid-run ---
die_mid_run() { # die_mid_run HOW: prints the execution's id
  local id inst
  id=$(run_in aws spin)
  inst=$(spin_instance "$id" "i['daemon'] == '$D' and i['state'] == 'running'")
  fake POST "/__kill?id=$inst&how=$1" >/dev/null
  "$FERRY" wait "$id" --timeout 40 >/dev/null || true
  echo "$id $inst"
}
read -r id inst < <(die_mid_run user)
expect_eq "terminated outside ferry: error" "$(json_field "$id" 'e["status"]')" error
expect_contains "terminated outside ferry: the reason" "$(json_field "$id" 'e["status_reason"]')" \
  "instance $inst terminated (terminated by a user or the API, outside ferry)"
expect_none_running "$D" "after a termination outside ferry"

# --- stopped outside ferry mid-run: lost, and terminated (a stopped
# instance still costs its volume) ---
read -r id inst < <(die_mid_run stop)
expect_eq "stopped outside ferry: error" "$(json_field "$id" 'e["status"]')" error
expect_contains "stopped outside ferry: the reason" "$(json_field "$id" 'e["status_reason"]')" \
  "instance $inst stopped"
expect_eq "stopped outside ferry: ferry terminated it" \
  "$(await_fake "[i['state'] for i in I if i['id'] == '$inst'][0]" terminated 15)" terminated
expect_none_running "$D" "after a stop outside ferry"

# --- an agent that dies on a live instance: lost heartbeat ---
id=$(run_in aws spin)
await_status "$id" started 40 >/dev/null
inst=$(fake_first "i['daemon'] == '$D' and i['state'] == 'running'" id)
ns=$(fake_first "i['id'] == '$inst'" netns)
# (a command of the spin loop may be gone by the time its turn comes)
ip netns pids "$ns" | xargs -r kill -KILL 2>/dev/null || true
"$FERRY" wait "$id" --timeout 40 >/dev/null || true
expect_eq "agent killed: error" "$(json_field "$id" 'e["status"]')" error
expect_contains "agent killed: no heartbeat (its instance runs)" \
  "$(json_field "$id" 'e["status_reason"]')" "worker lost: no heartbeat for 4 s"
expect_none_running "$D" "after a lost heartbeat"

# --- TerminateInstances failing past one call's retries: tried again ---
fake_faults '[{"action": "TerminateInstances", "status": 503, "times": 6}]'
id=$(run_in aws quick)
"$FERRY" wait "$id" --timeout 60 >/dev/null || true
for _ in $(seq 100); do grep -q "not retired yet" "$FERRYD_LOG" && break; sleep 0.1; done
expect_contains "terminate failing: ferryd keeps the record and says so" "$(cat "$FERRYD_LOG")" \
  "not retired yet"
expect_eq "terminate failing: the worker is still counted meanwhile" "$(env_workers aws | cut -d' ' -f4)" 1
expect_eq "terminate failing: done in the end" "$(await_env_workers aws "0 0 0 0" 30)" "0 0 0 0"
expect_eq "terminate failing: 7 TerminateInstances, 6 refused" \
  "$(fake_q "[r['status'] for r in R if r['action'] == 'TerminateInstances'][-7:]")" \
  "[503, 503, 503, 503, 503, 503, 200]"
expect_none_running "$D" "after failed terminates"

expect_eq "every request with the right key was signed right" \
  "$(fake_q "all(r['signed'] for r in R if r['key_id'] == '$AK')")" True
for secret in "$SK" "not-the-secret"; do
  expect_not_contains "no AWS secret in ferryd's log" "$(cat "$FERRYD_LOG")" "$secret"
done
ferryd_stop
expect_none_running "$D" "at the end"
finish
