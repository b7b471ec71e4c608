# shellcheck shell=bash
# What the cloud compute plugins' tests share (lib_aws.sh, lib_gcp.sh);
# sourced after lib.sh and lib_sched.sh, with PFX set (names of this run's
# namespaces and interfaces). Sets up:
#   - ferryd's address on an interface of the root namespace, and room for
#     instances: the fakes (--boot, tests/fakes/netns_host.py) give
#     instance k a namespace of its own with a veth pair on
#     $NET.(4k+1)/$NET.(4k+2);
#   - a private CA and ferryd's certificate for that address (agents on
#     the "instances" verify ferryd with the CA their boot script carries);
#   - helpers over the fake's control API ($FAKE, /__state ...);
#   - the steps the tests run on instances (step_quick, step_spin,
#     step_where) and the checks they make alike: an execution on an
#     instance, the orphan sweep, a graceful stop (expect_none_running, the
#     check every part ends with, is lib_aws.sh's or lib_gcp.sh's: the fakes
#     name instances' states differently).
# cloud_cleanup (in the EXIT trap) stops the fake (which kills and deletes
# its namespaces) and removes whatever a failed run left.
# Needs root and `ip netns`: without them the test fails, it does not skip.

T_ALICE="alice-$$-$RANDOM"
DUMMY=${PFX}d
FAKE_PID=
FAKE=

cloud_cleanup() {
  if [ -n "$FAKE_PID" ]; then
    kill -TERM "$FAKE_PID" 2>/dev/null || true
    wait "$FAKE_PID" 2>/dev/null || true
    FAKE_PID=
  fi
  local ns
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep "^$PFX" || true); do
    ip netns pids "$ns" 2>/dev/null | xargs -r kill -KILL 2>/dev/null || true
    ip netns del "$ns" 2>/dev/null || true
  done
  ip link del "$DUMMY" 2>/dev/null || true
}
# shellcheck disable=SC2154 # rc_ is set inside the trap
trap 'rc_=$?; set +e; touch "$M/open-all"; cloud_cleanup; (exit $rc_); cleanup' EXIT
trap 'exit 143' TERM INT HUP

# --- the network: ferryd on $IP, instances on $NET.4 and up ---
X=$((100 + ($$ / 256) % 100))
Y=$(($$ % 256))
while ip -4 -o addr show | grep -q " 10\.$X\.$Y\."; do Y=$(((Y + 1) % 256)); done
NET=10.$X.$Y
IP=$NET.1
# A veth pair with both ends at home holds the address (no dummy module
# needed): local, so every instance's route to the root side reaches it.
ip link add "$DUMMY" type veth peer name "${PFX}e" 2>/dev/null || {
  echo "FAIL: cannot create interface $DUMMY (root and veth needed)" >&2
  exit 1
}
ip addr add "$IP/32" dev "$DUMMY"
ip link set "$DUMMY" up
ip link set "${PFX}e" up

# --- TLS for ferryd's address ---
PKI=$WORK/pki
test_pki "$PKI" "ferry cloud test CA" "$IP" "IP:$IP"

# --- the fake ---
# cloud_fake_start NAME SCRIPT [ARGS...]: starts the fake with --boot on
# this run's network and sets $FAKE to its URL.
cloud_fake_start() {
  local name=$1 script=$2
  shift 2
  mkdir -p "$WORK/$name"
  python3 "$script" --boot --net "$NET" --prefix "$PFX" --dir "$WORK/$name" "$@" \
    >"$WORK/fake.out" 2>"$WORK/fake.err" &
  FAKE_PID=$!
  local port=
  for _ in $(seq 100); do
    port=$(sed -n 's/^PORT=//p' "$WORK/fake.out")
    [ -n "$port" ] && break
    sleep 0.05
  done
  [ -n "$port" ] || {
    echo "the fake $name did not start" >&2
    cat "$WORK/fake.err" >&2
    exit 1
  }
  FAKE=http://127.0.0.1:$port
}
fake() { # fake METHOD PATH [BODY]: a control call
  local args=(-sS -X "$1")
  [ $# -ge 3 ] && args+=(--data-binary "$3")
  curl "${args[@]}" "$FAKE$2"
}
# A python expression over the fake's state `s` ({"instances", "requests"}).
fake_q() { # fake_q PYTHON-EXPR
  fake GET /__state | python3 -c "import json,sys; s=json.load(sys.stdin); I=s['instances']; R=s['requests']; print($1)"
}
fake_faults() { fake PUT /__faults "$1" >/dev/null; }
# A field of the first instance `i` for which the condition holds, or "".
fake_first() { # fake_first PYTHON-CONDITION FIELD
  fake_q "next((str(i['$2']) for i in I if $1), '')" 2>/dev/null || true
}
await_fake() { # await_fake PYTHON-EXPR WANT SECONDS: prints the last value
  local deadline=$(($(now_ms) + $3 * 1000)) v=
  while :; do
    v=$(fake_q "$1" 2>/dev/null || true)
    if [ "$v" == "$2" ] || [ "$(now_ms)" -ge "$deadline" ]; then break; fi
    sleep 0.2
  done
  echo "$v"
}
# An instance nobody launched (POST /__orphan?QUERY): prints its id.
fake_orphan() { # fake_orphan QUERY
  fake POST "/__orphan?$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])'
}
# Whether CONDITION (python, on an instance `i`) holds for each instance ID
# within SECONDS: prints True, or the last answer (an ID the fake does not
# hold fails it).
await_each() { # await_each CONDITION SECONDS ID...
  local cond=$1 seconds=$2
  shift 2
  await_fake "all([$cond for i in I if i['id'] == x][0] for x in ($(printf "'%s', " "$@")))" True "$seconds"
}

# --- ferryd ---
daemon_id() {
  python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("SELECT value FROM meta WHERE key = ?", ("daemon_id",)).fetchone()[0])' "$DATA/ferry.db"
}
# Workers of an environment as "idle busy launching total".
env_workers() { # env_workers ENV
  api "$T_ALICE" GET /v1/environments | python3 -c '
import json, sys
e = [e for e in json.load(sys.stdin)["environments"] if e["name"] == sys.argv[1]][0]
w = e["workers"]
print(w["idle"], w["busy"], w["launching"], w["total"])' "$1" 2>/dev/null || echo "? ? ? ?"
}
env_text() { # env_text ENV FIELD: one text field of an environment ("" when null)
  api "$T_ALICE" GET /v1/environments | python3 -c '
import json, sys
e = [e for e in json.load(sys.stdin)["environments"] if e["name"] == sys.argv[1]][0]
print(e.get(sys.argv[2]) or "")' "$1" "$2" 2>/dev/null || true
}
await_env_workers() { # await_env_workers ENV "I B L T" SECONDS
  local deadline=$(($(now_ms) + $3 * 1000)) w=
  while :; do
    w=$(env_workers "$1")
    if [ "$w" == "$2" ] || [ "$(now_ms)" -ge "$deadline" ]; then break; fi
    sleep 0.2
  done
  echo "$w"
}

# --- the steps the tests run on instances (make_project reads them) ---
# quick: one line.
step_quick() {
  cat <<'YAML'
- step:
    name: quick
    image: none
    command: echo "quick on $(readlink /proc/self/ns/net)"
YAML
}
# spin: a minute of nothing (after "spinning"), for what ends its instance
# midway.
step_spin() {
  cat <<'YAML'
- step:
    name: spin
    image: none
    command:
      - echo spinning
      - i=0; while [ $i -lt 1200 ]; do sleep 0.05; i=$((i+1)); done
      - echo "spin ran out"
YAML
}
# where: its network namespace (in the log, "netns ...", and as the output
# netns.txt) and how many PREFIX variables its commands see ("env N"), with
# a sleep of SECONDS in between.
step_where() { # step_where PREFIX SECONDS
  cat <<YAML
- step:
    name: where
    image: none
    command:
      - echo "netns \$(readlink /proc/self/ns/net)"
      - echo "env \$(env | grep -c '^$1')"
      - sleep $2
      - readlink /proc/self/ns/net > "\$FERRY_OUTPUTS_DIR/netns.txt"
YAML
}
# A run of STEP of the test's project ($P) in environment ENV: prints its id.
run_in() { # run_in ENV STEP
  run_id "$P" "$2" --environment "$1"
}

# --- what the tests check alike ---
# While ID waits in the queue for a launch: its last "STATUS REASON" that
# held TEXT (polled until it leaves the queue, 15 s at most), or "".
queued_reason() { # queued_reason ID TEXT
  local r why=
  for _ in $(seq 150); do
    r=$(json_field "$1" 'e["status"] + " " + str(e["status_reason"])' 2>/dev/null || true)
    case $r in queued*"$2"*) why=$r ;; started* | complete* | error*) break ;; esac
    sleep 0.1
  done
  echo "$why"
}
# ID's status_reason once it holds TEXT (10 s at most: then the last one).
await_reason() { # await_reason ID TEXT
  local why=
  for _ in $(seq 100); do
    why=$(json_field "$1" 'str(e["status_reason"])' 2>/dev/null || true)
    case $why in *"$2"*) break ;; esac
    sleep 0.1
  done
  echo "$why"
}
# Once ID (a run of step_spin) has started and says "spinning": the first
# instance for which CONDITION (python, on `i`) holds, the one it runs on.
spin_instance() { # spin_instance ID CONDITION
  await_status "$1" started 40 >/dev/null
  for _ in $(seq 100); do "$FERRY" logs "$1" 2>/dev/null | grep -q spinning && break; sleep 0.1; done
  fake_first "$2" id
}
# ID, a run of step_where, on an instance: it completes, its commands ran in
# the instance's namespace with no PREFIX variable, and its output comes
# back. Sets $inst, the instance (the first for which CONDITION holds once
# ID has started), and $ns, its namespace.
expect_ran_on_instance() { # expect_ran_on_instance ID CONDITION PREFIX
  local ns_inode logs
  await_status "$1" started 40 >/dev/null
  inst=$(fake_first "$2" id)
  ns=$(fake_first "i['id'] == '$inst'" netns)
  ns_inode=$(ip netns exec "$ns" readlink /proc/self/ns/net 2>/dev/null || echo none)
  "$FERRY" wait "$1" --timeout 60 >/dev/null || true
  expect_eq "the execution on the instance: complete" "$(json_field "$1" 'e["status"]')" complete
  logs=$("$FERRY" logs "$1" 2>/dev/null || true)
  expect_contains "its commands ran in the instance's namespace" "$logs" "netns $ns_inode"
  expect_contains "no $3 variable in the commands' environment" "$logs" "env 0"
  rm -rf "$WORK/got"
  "$FERRY" outputs "$1" --download "$WORK/got" >/dev/null 2>&1 || true
  expect_eq "its output came back" "$(cat "$WORK/got/netns.txt" 2>/dev/null)" "$ns_inode"
}
# The environment of the ferry-agent in namespace NS, a variable a line (""
# when none runs there).
agent_environ() { # agent_environ NS
  local pid environ=
  for pid in $(ip netns pids "$1" 2>/dev/null); do
    if tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "bin/ferry-agent"; then
      environ=$(tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null || true)
    fi
  done
  echo "$environ"
}
# The orphan sweep: the instances ORPHAN... (fake_orphan, with ferryd's
# daemon id and workers it has no record of) go within 15 s (GONE holds for
# each), ferryd's log says why, and OTHER (another daemon's) is left alone
# (UP holds for it). WHAT says what went.
expect_sweep() { # expect_sweep WHAT GONE UP OTHER ORPHAN...
  local what=$1 gone=$2 up=$3 other=$4
  shift 4
  expect_eq "$what" "$(await_each "$gone" 15 "$@")" True
  expect_contains "the sweep said why" "$(cat "$FERRYD_LOG")" "instance $1 has no worker record"
  expect_eq "another daemon's instance is left alone" \
    "$(fake_q "[$up for i in I if i['id'] == '$other'][0]")" True
}
# A worker idle across a restart of ferryd is retired all the same (issue
# 16): its instance, the only one of DAEMON-ID running now, is terminated
# within idle_timeout ($IDLE, 4 s by default) + 5 s of the new ferryd's
# start. STOP is ferryd_kill or ferryd_stop (with FERRYD_KEEP_WORKERS=1),
# START the lib's ferryd start, given the port again.
expect_idle_retired_across() { # expect_idle_retired_across STOP START DAEMON-ID WHAT
  local port=${FERRY_SERVER##*:} t0
  if [ -n "$(running_ours "$3")" ]; then pass; else fail "$4: no idle instance before the restart"; fi
  "$1"
  t0=$(now_ms)
  "$2" "$port"
  expect_eq "$4: its instance is terminated within idle_timeout + 5 s" \
    "$(await_fake "$(ours_up_expr "$3")" "" $((${IDLE:-4} + 5 - ($(now_ms) - t0) / 1000)))" ""
}

# A stop of ferryd that keeps the work (issue 16), on the fake of this test
# (running_ours and terminations are lib_aws.sh's or lib_gcp.sh's): an
# execution printing numbered lines goes on while ferryd is away; the stop
# takes under 5 s and asks for no termination, the instance keeps running,
# and after the restart (START [PORT], the lib's ferryd start) the execution
# completes with every line once and its output. Then, the worker idle, a
# graceful restart again: the worker is retired after its idle_timeout
# ($IDLE: long enough for the checks before). Starts ferryd itself, with
# FERRYD_KEEP_WORKERS=1; the fake must be running and $WORK/ferryd.conf
# written.
expect_graceful_restart() { # expect_graceful_restart START
  local start=$1 port d p id inst t0 ms
  export FERRYD_KEEP_WORKERS=1
  "$start"
  port=${FERRY_SERVER##*:}
  d=$(daemon_id)
  p=$(make_project cloud <<'EOF'
- step:
    name: count
    image: none
    command:
      - for i in $(seq 1 8); do echo "line-$i"; sleep 1; done
      - echo counted > "$FERRY_OUTPUTS_DIR/count.txt"
EOF
)
  id=$(run_id "$p" count)
  await_line_2 "$id" 40
  inst=$(running_ours "$d")
  if [ -n "$inst" ]; then pass; else fail "no instance runs the execution"; fi
  t0=$(date +%s%N)
  ferryd_stop
  ms=$((($(date +%s%N) - t0) / 1000000))
  if [ "$ms" -lt 5000 ]; then pass; else fail "ferryd took $ms ms to stop (over 5 s)"; fi
  expect_eq "the stop asked for no termination" "$(terminations)" 0
  expect_eq "the instance still runs" "$(running_ours "$d")" "$inst"
  sleep 1
  "$start" "$port"
  "$FERRY" wait "$id" --timeout 60 >/dev/null || true
  expect_eq "after the restart: complete" "$(json_field "$id" 'e["status"]')" complete
  expect_lines_once "$id" 8 "after the restart"
  expect_eq "its output is kept" "$(curl -sS -H "Authorization: Bearer $FERRY_TOKEN" "$FERRY_SERVER/v1/executions/$id/outputs/count.txt")" counted
  expect_eq "no termination yet (the worker idles)" "$(terminations)" 0
  expect_idle_retired_across ferryd_stop "$start" "$d" "idle across a graceful restart"
  unset FERRYD_KEEP_WORKERS
}

# A graceful stop of ferryd retires the instances it has: one more run of
# step_where in PROJECT leaves ENV's worker idle, then ferryd stops and
# expect_none_running (lib_aws.sh, lib_gcp.sh) for DAEMON-ID.
expect_graceful_stop() { # expect_graceful_stop PROJECT ENV DAEMON-ID
  local id
  id=$(run_id "$1" where)
  "$FERRY" wait "$id" --timeout 60 >/dev/null || true
  expect_eq "one more run: complete" "$(json_field "$id" 'e["status"]')" complete
  expect_eq "its worker idles" "$(env_workers "$2")" "1 0 0 1"
  ferryd_stop
  expect_none_running "$3" "after a graceful stop of ferryd"
}
