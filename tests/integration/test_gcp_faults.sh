#!/usr/bin/env bash
# The gcp compute plugin (issue 8) when Compute Engine and its token
# endpoint misbehave, against tests/fakes/fake_gce.py (assertions and
# bearer tokens checked, instances booted as hosts in network namespaces).
# Covered:
#   - a key Google does not know (a wrong private key: invalid_grant), a
#     project the account may not use (403) and tokens Compute Engine
#     refuses (401, after one new token): the environment is broken,
#     `ferry envs` says so, and ferryd does not spin;
#   - rateLimitExceeded, 429 and 5xx on insert, list and the operation, and
#     a 500 from the token endpoint: retried with backoff, one instance;
#   - tokens revoked: a 401, a new token, the call goes on;
#   - a slow insert past call_timeout: retried, alreadyExists, the same
#     instance and not a second one;
#   - QUOTA_EXCEEDED in one zone and ZONE_RESOURCE_POOL_EXHAUSTED in the
#     other: `ferry show` says what each zone answered, ferryd backs off and
#     launches once capacity is back;
#   - an on-demand instance stopped outside ferry mid-run: error saying so.
# Every part ends with the fake holding no running instance ferry launched.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib_sched.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib_gcp.sh"

fake_start --end-delay 2
export IDLE=2 # each part waits for its worker to be retired
openssl genrsa -out "$SA/other.pem" 2048 2>>"$WORK/openssl.log"
gcp_key_file "$SA/wrong.json" "$SA/other.pem"
gcp_conf "$(gcp_env gcp)" \
  "$(ZONES='[ "us-central1-c" ]' gcp_env bad "credentials_file = \"$SA/wrong.json\";")" \
  "$(ZONES='[ "us-central1-f" ]' gcp_env perm 'project = "not-ours";')" \
  "$(ZONES='[ "us-central1-d" ]' gcp_env unauth)"
# Compute Engine refuses every token in zone d: 401 UNAUTHENTICATED.
fake_faults '[{"kind": "list", "zone": "us-central1-d", "status": 401, "times": -1}]'
gcp_ferryd_start ""
D=$(daemon_id)
DL=$(echo "$D" | tr '[:upper:]' '[:lower:]')
P=$({
  step_quick
  step_spin
} | make_project faults)
assertions() { # assertions OK: how many the fake judged so
  fake GET /__state | python3 -c "import json,sys; print(len([a for a in json.load(sys.stdin)['assertions'] if a['ok'] == $1]))"
}

# --- a key Google does not know: broken at once (the start's sweep) ---
for _ in $(seq 50); do [ -n "$(env_text bad broken)" ] && break; sleep 0.1; done
expect_contains "a wrong key: the environment is broken" "$(env_text bad broken)" "invalid_grant"
expect_contains "a wrong key: ferry envs says so" "$("$FERRY" envs 2>&1)" \
  "bad: BROKEN, no launches until an operator fixes it: "
n1=$(assertions False)
sleep 3
n2=$(assertions False)
expect_eq "a wrong key: no token request in 3 s (no spinning; sweeps every 2 s)" "$((n2 - n1))" 0
if [ "$n2" -ge 1 ] && [ "$n2" -le 2 ]; then pass; else fail "a wrong key: $n2 assertions refused"; fi

# --- a project the account may not use: broken too ---
for _ in $(seq 50); do [ -n "$(env_text perm broken)" ] && break; sleep 0.1; done
expect_contains "403: the environment is broken" "$(env_text perm broken)" "forbidden"
expect_contains "403: the message names the service account" "$(env_text perm broken)" "$SA_EMAIL"
n1=$(fake_q "len([r for r in R if r['zone'] == 'us-central1-f'])")
sleep 2.5
expect_eq "403: no call in 2.5 s" "$(fake_q "len([r for r in R if r['zone'] == 'us-central1-f'])")" "$n1"

# --- 401 on every token: one new token, then broken ---
for _ in $(seq 50); do [ -n "$(env_text unauth broken)" ] && break; sleep 0.1; done
expect_contains "401: the environment is broken" "$(env_text unauth broken)" "authError"
expect_contains "401: the message names the service account" "$(env_text unauth broken)" \
  "$SA_EMAIL"
expect_eq "401: asked twice (a new token in between), then no more" \
  "$(fake_q "len([r for r in R if r['zone'] == 'us-central1-d'])")" 2
fake_faults '[]'
expect_not_contains "no private key in ferryd's log" "$(cat "$FERRYD_LOG")" "$KEY_LINE"

# --- throttling and 5xx: retried with backoff, one instance ---
fake POST /__revoke >/dev/null # and every token so far is void: 401, a new one
fake_faults '[{"kind": "token", "status": 500, "times": 1},
  {"kind": "insert", "zone": "us-central1-a", "status": 403, "reason": "rateLimitExceeded", "times": 1},
  {"kind": "insert", "zone": "us-central1-a", "status": 429, "times": 1},
  {"kind": "operation", "status": 503, "times": 1},
  {"kind": "list", "status": 500, "times": 1}]'
t0=$(now_ms)
id=$(run_in gcp quick)
"$FERRY" wait "$id" --timeout 40 >/dev/null || true
expect_eq "throttled and 5xx: complete" "$(json_field "$id" 'e["status"]')" complete
inserts=$(fake_q "[(r['zone'], r['status']) for r in R if r['kind'] == 'insert' and r['status'] != 401 and r['time'] * 1000 >= $t0]")
expect_eq "insert: rateLimitExceeded, 429, then done, in zone a" "$inserts" \
  "[('us-central1-a', 403), ('us-central1-a', 429), ('us-central1-a', 200)]"
expect_eq "one instance" "$(fake_q "len([i for i in I if i['daemon'] == '$DL'])")" 1
expect_eq "the revoked token: a 401, then a new token" \
  "$(fake_q "any(r['status'] == 401 for r in R if r['time'] * 1000 >= $t0) and any(r['kind'] == 'token' and r['status'] == 200 for r in R if r['time'] * 1000 >= $t0)")" True
expect_eq "the token endpoint's 500 was retried" \
  "$(fake_q "[r['status'] for r in R if r['kind'] == 'token' and r['time'] * 1000 >= $t0][:2]")" "[500, 200]"
expect_eq "a 503 on the operation and a 500 on list were retried" \
  "$(fake_q "all(any(r['kind'] == k and r['status'] == 200 for r in R) for k in ('operation', 'list'))")" True
expect_contains "the retries were logged" "$(cat "$FERRYD_LOG")" "again in"
fake_faults '[]'
expect_none_running "$DL" "after throttling"

# --- a slow insert: retried, alreadyExists, the same instance ---
fake_faults '[{"kind": "insert", "zone": "us-central1-a", "delay": 3, "times": 1}]'
t0=$(now_ms)
id=$(run_in gcp quick)
"$FERRY" wait "$id" --timeout 40 >/dev/null || true
expect_eq "a slow insert: complete" "$(json_field "$id" 'e["status"]')" complete
expect_eq "a slow insert: made, then alreadyExists on the retry" \
  "$(fake_q "[r['status'] for r in R if r['kind'] == 'insert' and r['time'] * 1000 >= $t0]")" "[200, 409]"
expect_eq "a slow insert: one instance" \
  "$(fake_q "len([i for i in I if i['daemon'] == '$DL' and i['status'] != 'DELETED'])")" 1
fake_faults '[]'
expect_none_running "$DL" "after a slow insert"

# --- no zone can: ferry show says why, ferryd launches once one can ---
fake_faults '[{"kind": "insert", "zone": "us-central1-a", "op_error": "QUOTA_EXCEEDED", "times": -1},
  {"kind": "insert", "zone": "us-central1-b", "op_error": "ZONE_RESOURCE_POOL_EXHAUSTED", "times": -1}]'
id=$(run_in gcp quick)
why=$(await_reason "$id" "us-central1-b: ZONE_RESOURCE_POOL_EXHAUSTED")
expect_contains "no zone: zone a's quota" "$why" "us-central1-a: QUOTA_EXCEEDED"
expect_contains "no zone: zone b exhausted" "$why" "us-central1-b: ZONE_RESOURCE_POOL_EXHAUSTED"
expect_eq "no zone: still queued" "$(json_field "$id" 'e["status"]')" queued
fake_faults '[]'
"$FERRY" wait "$id" --timeout 40 >/dev/null || true
expect_eq "capacity is back: complete" "$(json_field "$id" 'e["status"]')" complete
expect_none_running "$DL" "after no zone could"

# --- an on-demand instance stopped outside ferry mid-run ---
id=$(run_in gcp spin)
inst=$(spin_instance "$id" "i['daemon'] == '$DL' and i['status'] == 'RUNNING'")
fake POST "/__kill?id=$inst&how=stop" >/dev/null
"$FERRY" wait "$id" --timeout 30 >/dev/null || true
expect_eq "stopped outside ferry: error" "$(json_field "$id" 'e["status"]')" error
expect_contains "stopped outside ferry: the reason says so" \
  "$(json_field "$id" 'e["status_reason"]')" "stopped outside ferry"
expect_eq "the stopped instance is deleted (its disk costs)" \
  "$(await_fake "[i['status'] for i in I if i['id'] == '$inst'][0]" DELETED 20)" DELETED
expect_none_running "$DL" "after a stop outside ferry"

ferryd_stop
expect_none_running "$DL" "after a graceful stop of ferryd"
finish
