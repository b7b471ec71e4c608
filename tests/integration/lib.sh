# Shared helpers for integration tests: each test starts its own ferryd on a
# free loopback port with its own data dir, drives it with the real CLI, and
# cleans up after itself (ferryd and the agents it started).
set -euo pipefail

: "${FERRY_BUILD_DIR:?FERRY_BUILD_DIR must point at the build tree}"
: "${FERRY_SOURCE_DIR:?FERRY_SOURCE_DIR must point at the source tree}"
BIN=$FERRY_BUILD_DIR/bin
FERRY=$BIN/ferry
TEST_NAME=$(basename "$0" .sh)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/ferry-$TEST_NAME.XXXXXX")
DATA=$WORK/data
FERRYD_LOG=$WORK/ferryd.log
FERRYD_PID=
unset FERRY_TOKEN FERRY_PROJECT
# The services scripts/test.sh started (tests/services/all.sh), when the
# caller did not name them itself.
if [ -z "${FERRY_TEST_DOCKER_SOCKET:-}" ] &&
  [ -f "${FERRY_TEST_SERVICES:-/tmp/ferry-test-services}/env" ]; then
  set -a
  . "${FERRY_TEST_SERVICES:-/tmp/ferry-test-services}/env"
  set +a
fi
failures=0
checks=0
# Functions the EXIT trap calls before its own work (a library's servers,
# namespaces): cleanup_add FN.
CLEANUP_FNS=()
cleanup_add() { CLEANUP_FNS+=("$1"); }

cleanup() {
  local rc=$? fn
  for fn in "${CLEANUP_FNS[@]}"; do "$fn" || true; done
  if [ -n "$FERRYD_PID" ]; then
    kill -TERM "$FERRYD_PID" 2>/dev/null || true
    wait "$FERRYD_PID" 2>/dev/null || true
  fi
  # Every agent a ferryd of this test started works under $WORK (its data
  # dirs), and a stop that keeps the work leaves them running.
  pkill -KILL -f -- "--work-dir $WORK/" 2>/dev/null || true
  if [ "$rc" -ne 0 ] || [ "$failures" -ne 0 ]; then
    echo "--- ferryd log ($FERRYD_LOG) ---"
    tail -n 60 "$FERRYD_LOG" 2>/dev/null || true
  fi
  if [ "${KEEP_WORK:-0}" != 1 ]; then rm -rf "$WORK"; fi
}
trap cleanup EXIT

fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}

pass() {
  checks=$((checks + 1))
}

expect_eq() { # expect_eq WHAT ACTUAL EXPECTED
  if [ "$2" == "$3" ]; then pass; else fail "$1: got '$2', expected '$3'"; fi
}

expect_contains() { # expect_contains WHAT HAYSTACK NEEDLE
  if [[ "$2" == *"$3"* ]]; then pass; else fail "$1: '$3' not in: $2"; fi
}

expect_not_contains() {
  if [[ "$2" != *"$3"* ]]; then pass; else fail "$1: '$3' unexpectedly in: $2"; fi
}

# Start ferryd with extra arguments; sets FERRY_SERVER. A stop of ferryd
# leaves its workers running unless told otherwise; the tests were written
# for a stop that takes them along, so each ferryd they start is told so
# (--retire-workers), and its agents never outlive the test. A test of the
# stop that keeps the work sets FERRYD_KEEP_WORKERS=1 (and the cleanup below
# still ends the agents left in $DATA).
ferryd_start() {
  if [ "${FERRYD_KEEP_WORKERS:-0}" != 1 ]; then set -- --retire-workers "$@"; fi
  mkdir -p "$DATA"
  # The log must exist before the sed below: the background job's `>>` runs
  # in the child, which may open it after the first sed (pipefail, set -e).
  : >>"$FERRYD_LOG"
  "$BIN/ferryd" --data-dir "$DATA" --listen 127.0.0.1:0 "$@" >>"$FERRYD_LOG" 2>&1 &
  FERRYD_PID=$!
  local url=
  for _ in $(seq 100); do
    # This ferryd's line: after a restart the log holds the last one's too.
    url=$(sed -n "s/.*ferryd\[$FERRYD_PID\].*listening on \(https\?:[^ ]*\).*/\1/p" "$FERRYD_LOG" | tail -n 1)
    [ -n "$url" ] && break
    kill -0 "$FERRYD_PID" 2>/dev/null || break
    sleep 0.05
  done
  if [ -z "$url" ]; then
    echo "ferryd did not start:" >&2
    cat "$FERRYD_LOG" >&2
    exit 1
  fi
  export FERRY_SERVER=$url
}

ferryd_stop() { # graceful
  kill -TERM "$FERRYD_PID"
  wait "$FERRYD_PID" 2>/dev/null || true
  FERRYD_PID=
}

ferryd_kill() { # crash
  kill -KILL "$FERRYD_PID"
  wait "$FERRYD_PID" 2>/dev/null || true
  FERRYD_PID=
}

# A JSON field of `ferry show ID --json`: json_field ID PYTHON-EXPR (on `e`).
json_field() {
  "$FERRY" show "$1" --json | python3 -c "import json,sys; e=json.load(sys.stdin); print($2)"
}

# Until ID's log has the line line-2: a run printing numbered lines is under
# way (SECONDS, 30 by default); fails the test otherwise.
await_line_2() { # await_line_2 ID [SECONDS]
  local deadline=$(($(date +%s) + ${2:-30}))
  while [ "$(date +%s)" -lt "$deadline" ]; do
    "$FERRY" logs "$1" 2>/dev/null | grep -qx "line-2" && return 0
    sleep 0.1
  done
  fail "$1 did not start printing its numbered lines"
}

# The lines line-1 .. line-N of ID's log, each there exactly once: what a
# run printing numbered lines leaves after a restart that lost nothing.
expect_lines_once() { # expect_lines_once ID N WHAT
  local log missing= twice= i c
  log=$("$FERRY" logs "$1" 2>/dev/null)
  for i in $(seq 1 "$2"); do
    c=$(grep -cx "line-$i" <<<"$log" || true)
    [ "$c" -eq 0 ] && missing="$missing $i"
    [ "$c" -gt 1 ] && twice="$twice $i"
  done
  expect_eq "$3: every numbered line is in the log" "$missing" ""
  expect_eq "$3: no line is in the log twice" "$twice" ""
}

# A project folder under $WORK with a ferry.yaml given on stdin.
make_project() { # make_project NAME  < ferry.yaml
  local dir=$WORK/$1
  mkdir -p "$dir"
  cat >"$dir/ferry.yaml"
  echo "$dir"
}

# Run `ferry run` in DIR and print the created execution's id.
run_id() { # run_id DIR ARGS...
  local dir=$1
  shift
  (cd "$dir" && "$FERRY" run "$@" --json) | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])'
}

# A private CA and a server certificate it signs, under DIR: ca.pem
# (ca.key), server.pem and server.key for CN with the subjectAltName SAN
# ("IP:10.1.2.3", "DNS:localhost,IP:127.0.0.1"). openssl's chatter goes to
# $WORK/openssl.log.
test_pki() { # test_pki DIR CA-NAME CN SAN
  local p=$1
  mkdir -p "$p"
  openssl req -x509 -newkey rsa:2048 -nodes -keyout "$p/ca.key" -out "$p/ca.pem" -days 2 \
    -subj "/CN=$2" 2>>"$WORK/openssl.log"
  openssl req -newkey rsa:2048 -nodes -keyout "$p/server.key" -out "$p/server.csr" \
    -subj "/CN=$3" 2>>"$WORK/openssl.log"
  printf '%s\n' "subjectAltName=$4" "basicConstraints=CA:FALSE" \
    "extendedKeyUsage=serverAuth" >"$p/ext.cnf"
  openssl x509 -req -in "$p/server.csr" -CA "$p/ca.pem" -CAkey "$p/ca.key" -CAcreateserial \
    -out "$p/server.pem" -days 2 -extfile "$p/ext.cnf" 2>>"$WORK/openssl.log"
}

# A /29 of 10.0.0.0/8 this host does not use yet, from our pid: prints
# its first three octets (NET; NET.1 .. NET.6 are free).
netns_pick_net() {
  local x=$((100 + ($$ / 256) % 100)) y=$(($$ % 256))
  while ip -4 -o addr show | grep -q " 10\.$x\.$y\."; do y=$(((y + 1) % 256)); done
  echo "10.$x.$y"
}

# A "host": network namespace NS joined to the root namespace by the veth
# pair VETH (root side, a name ending in 0) / VETH-with-1 (in NS), ROOT-IP
# and NS-IP on a /30, NS routed through ROOT-IP. Returns 1, saying why,
# when it cannot (not root, no ip netns); the caller removes NS (and so the
# pair) at its cleanup.
netns_add_host() { # netns_add_host NS VETH ROOT-IP NS-IP
  ip netns add "$1" 2>>"$WORK/netns.log" || {
    echo "cannot create network namespace $1 (root and ip netns needed)" >&2
    return 1
  }
  ip link add "$2" type veth peer name "${2%0}1" &&
    ip link set "${2%0}1" netns "$1" &&
    ip addr add "$3/30" dev "$2" &&
    ip link set "$2" up &&
    ip -n "$1" link set lo up &&
    ip -n "$1" addr add "$4/30" dev "${2%0}1" &&
    ip -n "$1" link set "${2%0}1" up &&
    ip -n "$1" route add default via "$3"
}

finish() {
  echo "$TEST_NAME: $checks checks passed, $failures failed"
  [ "$failures" -eq 0 ]
}
