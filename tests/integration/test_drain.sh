#!/usr/bin/env bash
# Draining an environment (issue 16, point 2): `ferry envs drain ENV` gives
# it no new work: its idle workers retire at once (not after idle_timeout),
# a busy one when its execution ends, a new execution stays queued (nothing
# starts, nothing is launched, min_workers included); `ferry envs` shows it;
# the drain outlives a restart of ferryd (kill -9 and SIGTERM), and a worker
# taken back in a draining environment retires once idle; `ferry envs
# undrain ENV` runs what waited and warms min_workers again. Admins only
# (403), an unknown environment is a 404 naming it. Through the "test"
# compute plugin: real ferry-agent processes, counted.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib_sched.sh"

PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
T_ROOT="root-$$-$RANDOM"
T_BOB="bob-$$-$RANDOM"
# A long idle timeout: a worker gone within seconds went because of the drain.
cat >"$WORK/ferryd.conf" <<EOF
users = ( { name = "root"; token_sha256 = "$(sha256_of "$T_ROOT")"; admin = true; },
          { name = "bob"; token_sha256 = "$(sha256_of "$T_BOB")"; } );
default_environment = "pool";
environments = (
  { name = "pool"; compute = "test"; max_workers = 2; idle_timeout = 60;
    work_dir = "$DATA/pool"; terminate_grace_ms = 1000; },
  { name = "warm"; compute = "test"; min_workers = 1; max_workers = 1; idle_timeout = 60;
    work_dir = "$DATA/warm"; terminate_grace_ms = 1000; }
);
EOF
# The agents outlive each ferryd here (one port for all): what retires them
# is the drain, never a stop. lib.sh's cleanup still ends them.
export FERRYD_KEEP_WORKERS=1
start() { ferryd_start -c "$WORK/ferryd.conf" --listen "127.0.0.1:$PORT"; }
start
export FERRY_TOKEN=$T_ROOT

P=$(make_project drain <<'EOF'
- step:
    name: gate
    image: none
    command: sh gate.sh $FERRY_EXECUTION_COUNTER
EOF
)
make_gate "$P" "$M"
counter_of() { json_field "$1" 'e["counter"]'; }

expect_eq "warm: min_workers 1 is kept warm" "$(await_env warm 'e["workers"]["idle"]' 1 20)" 1

# --- two busy workers; one finishes and stays idle (idle_timeout 60) ---
a=$(run_id "$P" gate)
b=$(run_id "$P" gate)
await_file "$M/started-$(counter_of "$a")" 30 || fail "the first execution did not start"
await_file "$M/started-$(counter_of "$b")" 30 || fail "the second execution did not start"
touch "$M/open-$(counter_of "$a")"
expect_eq "one execution ends" "$(await_status "$a" complete 30)" complete
expect_eq "pool: one idle, one busy worker" \
  "$(await_env pool 'e["workers"]["idle"], e["workers"]["busy"]' "1 1" 10)" "1 1"
expect_eq "pool: two agents" "$(agents_of pool)" 2
expect_eq "pool: not draining" "$(env_field pool 'e["draining"]')" False

# --- who may drain, and what ---
api "$T_BOB" POST /v1/environments/pool/drain >/dev/null
expect_eq "a user who is no admin may not drain" "$(http_code)" 403
expect_contains "the 403 says why" "$(cat "$WORK/http.body")" "only an admin may drain"
api "$T_BOB" POST /v1/environments/pool/undrain >/dev/null
expect_eq "nor undrain" "$(http_code)" 403
api "$T_ROOT" POST /v1/environments/nowhere/drain >/dev/null
expect_eq "an unknown environment is a 404" "$(http_code)" 404
expect_contains "the 404 names it" "$(cat "$WORK/http.body")" "no environment 'nowhere'"
set +e
out=$("$FERRY" envs drain 2>&1)
rc=$?
set -e
expect_eq "ferry envs drain without ENV: a usage error" "$rc" 2
expect_contains "it says what is missing" "$out" "expected the environment"
expect_eq "pool: still not draining" "$(env_field pool 'e["draining"]')" False

# --- drain: the idle worker retires now, the busy one keeps its work ---
out=$("$FERRY" envs drain pool)
expect_contains "ferry envs drain says what happens" "$out" "environment 'pool' is draining"
expect_eq "the idle worker retires at once, not after idle_timeout" \
  "$(await_env pool 'e["workers"]["total"]' 1 10)" 1
expect_eq "its agent is gone" "$(await_agents pool 1 10)" 1
expect_eq "the busy one still runs its execution" "$(json_field "$b" 'e["status"]')" started
expect_contains "ferryd says why it retired the idle one" "$(cat "$FERRYD_LOG")" \
  "retiring: its environment is draining"
expect_eq "GET /v1/environments: draining" "$(env_field pool 'e["draining"]')" True
expect_contains "ferry envs marks it" "$("$FERRY" envs)" "pool (draining)"
expect_contains "ferry envs says what it means" "$("$FERRY" envs)" "ferry envs undrain pool"
expect_contains "ferry envs --json: draining" "$("$FERRY" envs --json)" '"draining": true'
out=$("$FERRY" envs drain pool --json)
expect_contains "draining again is no error; --json answers the environment" "$out" '"draining": true'

# --- nothing new starts, nothing is launched ---
c=$(run_id "$P" gate)
sleep 2
expect_eq "a new execution stays queued" "$(json_field "$c" 'e["status"]')" queued
expect_contains "its status_reason says why" "$(json_field "$c" 'e["status_reason"]')" \
  "environment 'pool' is draining"
expect_eq "no worker was launched for it" "$(env_field pool 'e["workers"]["total"]')" 1
expect_eq "no agent either" "$(agents_of pool)" 1

# --- min_workers is not enforced while draining ---
"$FERRY" envs drain warm >/dev/null
expect_eq "warm: its idle worker retires" "$(await_env warm 'e["workers"]["total"]' 0 10)" 0
expect_eq "warm: its agent is gone" "$(await_agents warm 0 10)" 0
sleep 2
expect_eq "warm: none is launched for min_workers" "$(env_field warm 'e["workers"]["total"]')" 0

# --- kill -9 while draining, the busy worker's work ends while ferryd is down ---
cb=$(counter_of "$b") # asked while ferryd answers
ferryd_kill
touch "$M/open-$cb"
sleep 1
start
expect_eq "after kill -9: still draining" "$(env_field pool 'e["draining"]')" True
expect_contains "ferryd says so at start" "$(cat "$FERRYD_LOG")" "environment 'pool' is draining"
expect_eq "the execution of the worker taken back ends complete" \
  "$(await_status "$b" complete 30)" complete
expect_eq "that worker, idle now, retires" "$(await_env pool 'e["workers"]["total"]' 0 15)" 0
expect_eq "its agent is gone" "$(await_agents pool 0 10)" 0
expect_eq "the queued execution still waits" "$(json_field "$c" 'e["status"]')" queued

# --- and across a graceful restart ---
ferryd_stop
start
expect_eq "after SIGTERM: still draining" \
  "$(env_field pool 'e["draining"]'), $(env_field warm 'e["draining"]')" "True, True"
sleep 2
expect_eq "still nothing launched" \
  "$(env_field pool 'e["workers"]["total"]') $(env_field warm 'e["workers"]["total"]')" "0 0"
expect_eq "the queued execution still waits" "$(json_field "$c" 'e["status"]')" queued

# --- undrain: what waited runs; min_workers is warm again ---
out=$("$FERRY" envs undrain pool)
expect_contains "ferry envs undrain says so" "$out" "environment 'pool' takes work again"
await_file "$M/started-$(counter_of "$c")" 30 || fail "the queued execution did not start after undrain"
touch "$M/open-$(counter_of "$c")"
expect_eq "it ends complete" "$(await_status "$c" complete 30)" complete
expect_eq "pool: not draining" "$(env_field pool 'e["draining"]')" False
expect_not_contains "ferry envs: no mark" "$("$FERRY" envs)" "pool (draining)"
"$FERRY" envs undrain warm >/dev/null
expect_eq "warm: min_workers launches again" "$(await_env warm 'e["workers"]["idle"]' 1 20)" 1
expect_contains "ferryd logs each change" "$(cat "$FERRYD_LOG")" "environment 'warm': undrained"

finish
