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
#   - helpers over the fake's control API ($FAKE, /__state ...).
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
mkdir -p "$PKI"
ossl() { openssl "$@" 2>>"$WORK/openssl.log"; }
ossl req -x509 -newkey rsa:2048 -nodes -keyout "$PKI/ca.key" -out "$PKI/ca.pem" -days 2 \
  -subj "/CN=ferry cloud test CA"
ossl req -newkey rsa:2048 -nodes -keyout "$PKI/server.key" -out "$PKI/server.csr" -subj "/CN=$IP"
printf '%s\n' "subjectAltName=IP:$IP" "basicConstraints=CA:FALSE" \
  "extendedKeyUsage=serverAuth" >"$PKI/ext.cnf"
ossl x509 -req -in "$PKI/server.csr" -CA "$PKI/ca.pem" -CAkey "$PKI/ca.key" -CAcreateserial \
  -out "$PKI/server.pem" -days 2 -extfile "$PKI/ext.cnf"

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
env_field() { # env_field ENV FIELD
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
