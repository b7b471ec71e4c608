# shellcheck shell=bash
# Helpers of the aws compute plugin's tests (issue 7); sourced after lib.sh
# and lib_sched.sh. Sets up:
#   - ferryd's address on an interface of the root namespace, and
#     room for instances: tests/fakes/fake_ec2.py --boot gives instance k a
#     namespace of its own with a veth pair on $NET.(4k+1)/$NET.(4k+2);
#   - a private CA and ferryd's certificate for that address (agents on
#     the "instances" verify ferryd with the CA their user-data carries);
#   - the fake EC2 on loopback, which checks every request's signature with
#     $AK/$SK, and the same keys in ferryd's environment only.
# aws_cleanup (in the EXIT trap) stops the fake (which kills and deletes
# its namespaces) and removes whatever a failed run left.
# Needs root and `ip netns`: without them the test fails, it does not skip.

AK="AKIDFERRYTEST$$"
SK="ferry/test+secret/$$-$RANDOM$RANDOM"
T_ALICE="alice-$$-$RANDOM"
PFX=fa$$
DUMMY=${PFX}d
FAKE_PID=
FAKE=

aws_cleanup() {
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
trap 'rc_=$?; set +e; touch "$M/open-all"; aws_cleanup; (exit $rc_); cleanup' EXIT
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
  -subj "/CN=ferry aws test CA"
ossl req -newkey rsa:2048 -nodes -keyout "$PKI/server.key" -out "$PKI/server.csr" -subj "/CN=$IP"
printf '%s\n' "subjectAltName=IP:$IP" "basicConstraints=CA:FALSE" \
  "extendedKeyUsage=serverAuth" >"$PKI/ext.cnf"
ossl x509 -req -in "$PKI/server.csr" -CA "$PKI/ca.pem" -CAkey "$PKI/ca.key" -CAcreateserial \
  -out "$PKI/server.pem" -days 2 -extfile "$PKI/ext.cnf"

# --- the fake EC2 ---
fake_start() { # fake_start [ARGS...]
  mkdir -p "$WORK/ec2"
  python3 "${FAKE_SCRIPT:-$FERRY_SOURCE_DIR/tests/fakes/fake_ec2.py}" --access-key "$AK" --secret-key "$SK" \
    --boot --net "$NET" --prefix "$PFX" --dir "$WORK/ec2" "$@" \
    >"$WORK/fake.out" 2>"$WORK/fake.err" &
  FAKE_PID=$!
  local port=
  for _ in $(seq 100); do
    port=$(sed -n 's/^PORT=//p' "$WORK/fake.out")
    [ -n "$port" ] && break
    sleep 0.05
  done
  [ -n "$port" ] || {
    echo "the fake EC2 did not start" >&2
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
# Instances that carry ferryd's daemon tag and are not going.
running_ours() {
  fake_q "' '.join(sorted(i['id'] for i in I if i['daemon'] == '$1' and i['state'] in ('pending', 'running', 'stopping', 'stopped')))"
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

# --- ferryd with aws environments ---
# aws_env NAME [EXTRA SETTINGS]: one environment block on the fake. The
# zones and their subnets are $ZONES and $SUBNETS (two in us-east-1), the
# idle timeout $IDLE seconds (4).
aws_env() {
  local zones='[ "us-east-1a", "us-east-1b" ]' subnets='[ "subnet-aaaa", "subnet-bbbb" ]'
  [ -n "${ZONES:-}" ] && zones=$ZONES
  [ -n "${SUBNETS:-}" ] && subnets=$SUBNETS
  cat <<EOF
{ name = "$1"; compute = "aws"; region = "us-east-1";
  zones = $zones; subnet_ids = $subnets;
  security_group_ids = [ "sg-0123", "sg-4567" ]; instance_profile = "ferry-worker";
  instance_type = "g5.xlarge"; image_id = "ami-0ferry"; disk_gb = 100;
  max_workers = 2; idle_timeout = ${IDLE:-4}; endpoint = "$FAKE"; call_timeout = 2; max_attempts = 4;
  list_page_size = 5; ${2:-} }
EOF
}
aws_conf() { # aws_conf ENV-BLOCKS...: writes $WORK/ferryd.conf
  local envs
  envs=$(printf '%s,\n' "$@")
  cat >"$WORK/ferryd.conf" <<EOF
users = ( { name = "alice"; token_sha256 = "$(sha256_of "$T_ALICE")"; } );
tls = { cert = "$PKI/server.pem"; key = "$PKI/server.key"; };
environments = ( ${envs%,} );
default_environment = "aws";
worker_lost_timeout = 4;
instance_sweep_interval = 2;
EOF
}
# ferryd with the keys in its environment only (aws-cli's chain).
aws_ferryd_start() { # aws_ferryd_start [ARGS...]
  AWS_ACCESS_KEY_ID=$AK AWS_SECRET_ACCESS_KEY=$SK AWS_SHARED_CREDENTIALS_FILE=/nonexistent \
    ferryd_start -c "$WORK/ferryd.conf" --listen "$IP:${1:-0}"
  export FERRY_TOKEN=$T_ALICE FERRY_CA=$PKI/ca.pem CURL_CA_BUNDLE=$PKI/ca.pem
}
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
# The check every test ends with: no instance ferry launched still runs.
expect_none_running() { # expect_none_running DAEMON-ID WHEN
  local left
  left=$(await_fake "' '.join(sorted(i['id'] for i in I if i['daemon'] == '$1' and i['state'] not in ('shutting-down', 'terminated')))" "" 20)
  expect_eq "$2: the fake holds no running instance ferry launched" "$left" ""
}
