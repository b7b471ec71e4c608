#!/usr/bin/env bash
# Agents as separate hosts (issue 4, point 8). Two network namespaces, each
# joined to the root namespace by a veth pair, stand for two machines; each
# runs ferry-agent, which joins a static environment with its join token and
# talks to ferryd over TLS on the root side's address (never loopback).
# Covered: joining (ids, not addresses); executions spread over both hosts
# with logs and outputs back; a stop that reaches the agent within a second
# or so; kill -9 of ferryd mid-run, and a graceful restart (SIGTERM, issue
# 16), each losing no line and no output; kill -9 of
# an agent ending its execution with "worker lost"; a wrong join token; and
# the presigned blob URLs an agent is given, checked with curl from inside a
# namespace (valid, altered sig/expires/key, expired).
# Needs root and `ip netns`: without them the test fails, it does not skip.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib_sched.sh"

T_ALICE="alice-$$-$RANDOM"
JOIN="join-$$-$RANDOM"
# Names unique to this run (interface names: at most 15 characters).
NSA=fy$$a
NSB=fy$$b
VA=fy$$a0 # root side of A's pair; A's own side is fy$$a1
VB=fy$$b0
AGENT_PIDS=()

# --- cleanup: agents, everything left in the namespaces, the namespaces ---
netns_cleanup() {
  local pid ns
  for pid in "${AGENT_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${AGENT_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  AGENT_PIDS=()
  for ns in "$NSA" "$NSB"; do
    # Orphans of a killed agent (its execution's commands) live on in there.
    ip netns pids "$ns" 2>/dev/null | xargs -r kill -KILL 2>/dev/null || true
    ip netns del "$ns" 2>/dev/null || true
  done
  # Deleting a namespace deletes its end of the pair, and so the pair; this
  # is for a run that stopped half way through the setup.
  ip link del "$VA" 2>/dev/null || true
  ip link del "$VB" 2>/dev/null || true
}
# shellcheck disable=SC2154 # rc_ is set inside the trap
trap 'rc_=$?; set +e; touch "$M/open-all"; netns_cleanup; (exit $rc_); cleanup' EXIT
# Namespaces outlive us: on a signal, exit through the trap above too.
trap 'exit 143' TERM INT HUP

# --- two "hosts": a namespace each, a /30 each, routed by the root side ---
# 10.X.Y.0/29 from our pid; moved along if this host already uses it.
X=$((100 + ($$ / 256) % 100))
Y=$(($$ % 256))
while ip -4 -o addr show | grep -q " 10\.$X\.$Y\."; do Y=$(((Y + 1) % 256)); done
NET=10.$X.$Y
IP=$NET.1 # ferryd: root side of A's pair
setup_host() { # setup_host NS VETH ROOT-IP NS-IP
  ip netns add "$1" || {
    echo "FAIL: cannot create network namespace $1 (root and ip netns needed)" >&2
    exit 1
  }
  ip link add "$2" type veth peer name "${2%0}1"
  ip link set "${2%0}1" netns "$1"
  ip addr add "$3/30" dev "$2"
  ip link set "$2" up
  ip -n "$1" link set lo up
  ip -n "$1" addr add "$4/30" dev "${2%0}1"
  ip -n "$1" link set "${2%0}1" up
  ip -n "$1" route add default via "$3"
}
setup_host "$NSA" "$VA" "$NET.1" "$NET.2"
setup_host "$NSB" "$VB" "$NET.5" "$NET.6"
NETNS_A=$(ip netns exec "$NSA" readlink /proc/self/ns/net)
NETNS_B=$(ip netns exec "$NSB" readlink /proc/self/ns/net)
ROOT_NETNS=$(readlink /proc/self/ns/net)
if [ "$NETNS_A" != "$NETNS_B" ] && [ "$NETNS_A" != "$ROOT_NETNS" ]; then pass; else
  fail "the namespaces are not separate: $NETNS_A $NETNS_B $ROOT_NETNS"
fi

# --- TLS: a private CA and a certificate for ferryd's address ---
P=$WORK/pki
mkdir -p "$P"
ossl() { openssl "$@" 2>>"$WORK/openssl.log"; }
ossl req -x509 -newkey rsa:2048 -nodes -keyout "$P/ca.key" -out "$P/ca.pem" -days 2 \
  -subj "/CN=ferry netns test CA"
ossl req -newkey rsa:2048 -nodes -keyout "$P/server.key" -out "$P/server.csr" -subj "/CN=$IP"
printf '%s\n' "subjectAltName=IP:$IP" "basicConstraints=CA:FALSE" \
  "extendedKeyUsage=serverAuth" >"$P/ext.cnf"
ossl x509 -req -in "$P/server.csr" -CA "$P/ca.pem" -CAkey "$P/ca.key" -CAcreateserial \
  -out "$P/server.pem" -days 2 -extfile "$P/ext.cnf"

cat >"$WORK/ferryd.conf" <<EOF
users = ( { name = "alice"; token_sha256 = "$(sha256_of "$T_ALICE")"; } );
tls = { cert = "$P/server.pem"; key = "$P/server.key"; };
environments = ( { name = "onprem"; compute = "static"; join_token_sha256 = "$(sha256_of "$JOIN")"; } );
default_environment = "onprem";
worker_lost_timeout = 3;
presigned_url_ttl = 3;
EOF
ferryd_start -c "$WORK/ferryd.conf" --listen "$IP:0"
expect_contains "ferryd serves https on the veth address" "$FERRY_SERVER" "https://$IP:"
PORT=${FERRY_SERVER##*:}
# The CLI and curl (lib_sched's api) in the root namespace, as alice.
export FERRY_TOKEN=$T_ALICE FERRY_CA=$P/ca.pem CURL_CA_BUNDLE=$P/ca.pem
expect_eq "whoami over https" "$("$FERRY" whoami 2>&1)" alice
# Host B reaches ferryd's address only through its own pair and its route.
expect_eq "host B reaches ferryd over https" "$(ip netns exec "$NSB" curl -sS --cacert "$P/ca.pem" \
  -H "Authorization: Bearer $T_ALICE" "$FERRY_SERVER/v1/whoami" 2>&1)" '{"user":"alice","admin":false}'

# Workers of onprem as "idle busy total".
onprem_workers() {
  api "$T_ALICE" GET /v1/environments | python3 -c '
import json, sys
e = [e for e in json.load(sys.stdin)["environments"] if e["name"] == "onprem"][0]["workers"]
print(e["idle"], e["busy"], e["total"])' 2>/dev/null || echo "? ? ?"
}
await_workers() { # await_workers "IDLE BUSY TOTAL" SECONDS: prints the last seen
  local deadline=$(($(now_ms) + $2 * 1000)) w=
  while :; do
    w=$(onprem_workers)
    if [ "$w" == "$1" ] || [ "$(now_ms)" -ge "$deadline" ]; then break; fi
    sleep 0.1
  done
  echo "$w"
}
agent_start() { # agent_start NS NAME [ARGS...]: starts ferry-agent in NS
  local ns=$1 name=$2
  shift 2
  # The work dir under $DATA: lib.sh's cleanup finds the agent by it.
  ip netns exec "$ns" "$BIN/ferry-agent" --server "$FERRY_SERVER" --environment onprem \
    --ca "$P/ca.pem" --work-dir "$DATA/agent-$name" "$@" >>"$WORK/agent-$name.log" 2>&1 &
}

# --- 6. a wrong join token: the agent exits non-zero, says why, shows no token ---
rc=0
timeout 30 ip netns exec "$NSA" "$BIN/ferry-agent" --server "$FERRY_SERVER" \
  --environment onprem --join-token "wrong-$JOIN" --ca "$P/ca.pem" \
  --work-dir "$DATA/agent-wrong" >"$WORK/wrong.out" 2>&1 || rc=$?
expect_eq "a wrong join token: exit 1" "$rc" 1
expect_contains "a wrong join token: a clear message" "$(cat "$WORK/wrong.out")" \
  "joining refused: unknown static environment or wrong join token"
expect_not_contains "a wrong join token: not echoed" "$(cat "$WORK/wrong.out")" "$JOIN"
expect_not_contains "a wrong join token: not in ferryd's log" "$(cat "$FERRYD_LOG")" "$JOIN"
expect_eq "a wrong join token: no worker" "$(onprem_workers)" "0 0 0"

# --- 1. both hosts join; each is given an id, not known by its address ---
agent_start "$NSA" a --join-token "$JOIN"
AGENT_A=$!
AGENT_PIDS+=("$AGENT_A")
agent_start "$NSB" b --join-token "$JOIN"
AGENT_B=$!
AGENT_PIDS+=("$AGENT_B")
expect_eq "both agents joined: two idle workers in onprem" "$(await_workers "2 0 2" 20)" "2 0 2"
if "$FERRY" envs | grep -q onprem; then pass; else fail "ferry envs does not list onprem"; fi
ids=()
for n in a b; do
  id=$(sed -n "s|.*joined $FERRY_SERVER as agent \([^ ]*\) .*|\1|p" "$WORK/agent-$n.log" | head -n 1)
  ids+=("$id")
  if [[ "$id" =~ ^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$ ]]; then pass; else
    fail "agent $n: no id from ferryd at registration (got '$id')"
  fi
  expect_not_contains "agent $n: its id is not its address" "$id" "$NET."
  expect_contains "agent $n: ferryd made a worker record for that id" "$(cat "$FERRYD_LOG")" \
    "worker $id joined environment 'onprem'"
  saved=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["agent_id"])' \
    "$DATA/agent-$n/agent.json" 2>/dev/null || true)
  expect_eq "agent $n: the id is kept in agent.json" "$saved" "$id"
done
if [ -n "${ids[0]}" ] && [ "${ids[0]}" != "${ids[1]}" ]; then pass; else
  fail "the two agents were not given two ids: '${ids[0]}' '${ids[1]}'"
fi
expect_not_contains "the join token is blanked from the agent's command line" \
  "$(tr '\0' ' ' <"/proc/$AGENT_A/cmdline")" "$JOIN"

proj=$(make_project netns <<'EOF'
- step:
    name: where
    image: none
    command:
      - echo "netns $(readlink /proc/self/ns/net)"
      - sleep 1.5
      - readlink /proc/self/ns/net > "$FERRY_OUTPUTS_DIR/netns.txt"
      - cp blob.bin "$FERRY_OUTPUTS_DIR/blob.bin"
- step:
    name: spin
    image: none
    command:
      - echo $$ > "$FERRY_REPOSITORY_DIR/../spin.pid"
      - echo spinning
      - i=0; while [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done
      - echo "spin ran out"
- step:
    name: count
    image: none
    command:
      - cp early.bin "$FERRY_OUTPUTS_DIR/early.bin"
      - i=1; while [ $i -le 3000 ]; do echo "line $i"; case $i in *00) sleep 0.15;; esac; i=$((i+1)); done
      - cp late.bin "$FERRY_OUTPUTS_DIR/late.bin"
      - mkdir -p "$FERRY_OUTPUTS_DIR/sub" && seq 1 3000 > "$FERRY_OUTPUTS_DIR/sub/seq.txt"
EOF
)
head -c 300000 /dev/urandom >"$proj/blob.bin"
head -c 200000 /dev/urandom >"$proj/early.bin"
head -c 500000 /dev/urandom >"$proj/late.bin"
seq 1 3000 >"$WORK/seq.txt"

# --- 2. executions run on both hosts; logs and outputs come back ---
run_ids=()
for _ in 1 2 3 4; do run_ids+=("$(run_id "$proj" where)"); done
# Two at once, one per agent's single slot.
expect_eq "two run at once: both workers busy" "$(await_workers "0 2 2" 20)" "0 2 2"
seen=
for id in "${run_ids[@]}"; do
  "$FERRY" wait "$id" --timeout 60 >/dev/null || true
  expect_eq "where $id: complete" "$(json_field "$id" 'e["status"]')" complete
  ns=$("$FERRY" logs "$id" 2>/dev/null | sed -n 's/.*netns \(net:\[[0-9]*\]\).*/\1/p' | head -n 1)
  if [ "$ns" == "$NETNS_A" ] || [ "$ns" == "$NETNS_B" ]; then pass; else
    fail "where $id: its log does not name a host's namespace (got '$ns')"
  fi
  seen="$seen $ns"
  rm -rf "$WORK/got"
  rc=0
  "$FERRY" outputs "$id" --download "$WORK/got" >/dev/null 2>&1 || rc=$?
  expect_eq "where $id: outputs download" "$rc" 0
  expect_eq "where $id: the output written on the host" "$(cat "$WORK/got/netns.txt" 2>/dev/null)" "$ns"
  if cmp -s "$proj/blob.bin" "$WORK/got/blob.bin"; then pass; else
    fail "where $id: blob.bin differs after the round trip"
  fi
done
expect_contains "an execution ran on host A" "$seen" "$NETNS_A"
expect_contains "an execution ran on host B" "$seen" "$NETNS_B"
expect_eq "both idle again" "$(await_workers "2 0 2" 10)" "2 0 2"

# --- 3. ferry stop reaches the agent on its host within about a second ---
id=$(run_id "$proj" spin)
await_status "$id" started 20 >/dev/null
for _ in $(seq 100); do
  "$FERRY" logs "$id" 2>/dev/null | grep -q spinning && break
  sleep 0.05
done
spin=$(cat "$DATA"/agent-?/executions/"$id"/spin.pid 2>/dev/null || true)
t0=$(now_ms)
"$FERRY" stop "$id" >/dev/null
rc=0
"$FERRY" wait "$id" --timeout 20 >/dev/null || rc=$?
stop_ms=$(($(now_ms) - t0))
echo "stop latency (ferry stop to stopped, agent in a namespace): $stop_ms ms"
expect_eq "stop: ferry wait says stopped (exit 2)" "$rc" 2
expect_eq "stop: stopped" "$(json_field "$id" 'e["status"]')" stopped
if [ "$stop_ms" -lt 3000 ]; then pass; else fail "stop: took $stop_ms ms to reach the agent"; fi
if [ -n "$spin" ] && ! kill -0 "$spin" 2>/dev/null; then pass; else
  fail "stop: the commands (pid '$spin') still run on their host"
fi
expect_not_contains "stop: the commands did not run out" "$("$FERRY" logs "$id" 2>/dev/null)" "spin ran out"
expect_eq "stop: both idle again" "$(await_workers "2 0 2" 10)" "2 0 2"

# --- 4. kill -9 of ferryd mid-run, then a graceful restart (SIGTERM, the
# agents kept): each time the run goes on, nothing lost or doubled ---
restart_mid_run() { # restart_mid_run STOP WHAT: STOP is ferryd_kill or ferryd_stop
  local id rc got f w=$2
  id=$(run_id "$proj" count)
  await_status "$id" started 20 >/dev/null
  sleep 1
  "$1"
  expect_eq "$w: the agents outlive ferryd" "$(alive_agents)" "${#AGENT_PIDS[@]}"
  sleep 1.5
  # The ferryd after this one keeps its workers on its stop too.
  FERRYD_KEEP_WORKERS=1 ferryd_start -c "$WORK/ferryd.conf" --listen "$IP:$PORT"
  rc=0
  "$FERRY" wait "$id" --timeout 60 >/dev/null || rc=$?
  expect_eq "$w: complete" "$(json_field "$id" 'e["status"]')" complete
  got=$(api "$T_ALICE" GET "/v1/executions/$id/logs" | python3 -c '
import json, sys
events = [json.loads(l) for l in sys.stdin]
out = [e["text"] for e in events if e["stream"] == "stdout"]
want = ["line %d" % i for i in range(1, 3001)]
first = next((i for i, (a, b) in enumerate(zip(out, want)) if a != b), min(len(out), len(want)))
print("ok" if out == want else "%d lines, first difference at %d" % (len(out), first))
print(" ".join(str(e["i"]) for e in events) == " ".join(str(i) for i in range(1, len(events) + 1)))')
  expect_eq "$w: every line once, in order" "$(sed -n 1p <<<"$got")" ok
  expect_eq "$w: events numbered 1..N" "$(sed -n 2p <<<"$got")" True
  expect_eq "$w: every output listed" \
    "$(json_field "$id" '" ".join(sorted(o["name"] for o in e["outputs"]))')" \
    "early.bin late.bin sub/seq.txt"
  rm -rf "$WORK/got"
  rc=0
  "$FERRY" outputs "$id" --download "$WORK/got" >/dev/null 2>&1 || rc=$?
  expect_eq "$w: outputs download" "$rc" 0
  for f in early.bin late.bin; do
    if cmp -s "$proj/$f" "$WORK/got/$f"; then pass; else fail "$w: $f differs"; fi
  done
  if cmp -s "$WORK/seq.txt" "$WORK/got/sub/seq.txt"; then pass; else
    fail "$w: sub/seq.txt differs"
  fi
  expect_eq "$w: both agents back, idle" "$(await_workers "2 0 2" 15)" "2 0 2"
}
alive_agents() {
  local n=0 pid
  for pid in "${AGENT_PIDS[@]}"; do kill -0 "$pid" 2>/dev/null && n=$((n + 1)); done
  echo "$n"
}
restart_mid_run ferryd_kill "across a crash of ferryd"
restart_mid_run ferryd_stop "across a graceful restart of ferryd"
expect_not_contains "the graceful stop ended no execution" "$(cat "$FERRYD_LOG")" \
  "ferryd is shutting down"

# --- 5. kill -9 of an agent mid-run: "worker lost" after worker_lost_timeout ---
id=$(run_id "$proj" spin)
await_status "$id" started 20 >/dev/null
host=
for _ in $(seq 100); do
  for n in a b; do [ -e "$DATA/agent-$n/executions/$id/spin.pid" ] && host=$n; done
  [ -n "$host" ] && break
  sleep 0.05
done
if [ -n "$host" ]; then pass; else fail "agent kill: cannot tell which host runs $id"; fi
victim=$AGENT_A
[ "$host" == b ] && victim=$AGENT_B
# The user's commands must not hold the agent's sockets (its connection to
# ferryd): they would keep that connection open after the agent died, and
# ferryd would see the poll as alive until its 25 s timeout.
spin=$(cat "$DATA/agent-$host/executions/$id/spin.pid" 2>/dev/null || true)
leaked=$(find "/proc/${spin:-none}/fd" -mindepth 1 ! -name 0 ! -name 1 ! -name 2 \
  -lname 'socket:*' -printf '%f ' 2>/dev/null || true)
expect_eq "agent kill: the commands inherit no socket of the agent" "$leaked" ""
t0=$(now_ms)
kill -KILL "$victim"
wait "$victim" 2>/dev/null || true
"$FERRY" wait "$id" --timeout 60 >/dev/null || true
lost_ms=$(($(now_ms) - t0))
echo "agent killed: its execution ended after $lost_ms ms (worker_lost_timeout = 3 s)"
expect_eq "agent killed: error" "$(json_field "$id" 'e["status"]')" error
expect_contains "agent killed: worker lost" "$(json_field "$id" 'e["status_reason"]')" "worker lost"
if [ "$lost_ms" -lt 10000 ]; then pass; else
  fail "agent killed: took $lost_ms ms for a 3 s worker_lost_timeout"
fi
# Its commands, orphaned on that host, are no concern of ferryd's any more.
pkill -KILL -F "$DATA/agent-$host/executions/$id/spin.pid" 2>/dev/null || true

# --- 5b. a host drops off the network mid-run, its connections left open ---
# No RST, no FIN: only the missing polls tell. Polls are held for under half
# of worker_lost_timeout, so this too is "worker lost" in about 3 s.
survivor=a
[ "$host" == a ] && survivor=b
id=$(run_id "$proj" spin)
await_status "$id" started 20 >/dev/null
link=$VA
[ "$survivor" == b ] && link=$VB
t0=$(now_ms)
ip link set "$link" down
"$FERRY" wait "$id" --timeout 60 >/dev/null || true
lost_ms=$(($(now_ms) - t0))
echo "host $survivor off the network: its execution ended after $lost_ms ms"
expect_eq "host off the network: error" "$(json_field "$id" 'e["status"]')" error
expect_contains "host off the network: worker lost" "$(json_field "$id" 'e["status_reason"]')" \
  "worker lost"
if [ "$lost_ms" -lt 10000 ]; then pass; else
  fail "host off the network: took $lost_ms ms for a 3 s worker_lost_timeout"
fi
ip link set "$link" up
pkill -KILL -F "$DATA/agent-$survivor/executions/$id/spin.pid" 2>/dev/null || true

# --- 7. presigned URLs, seen by an "agent" that is curl on host A ---
# The real agents leave first, so the work goes to curl's registration.
for pid in "${AGENT_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
for pid in "${AGENT_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
AGENT_PIDS=()
expect_eq "every real agent gone" "$(await_workers "0 0 0" 20)" "0 0 0"
in_a() { ip netns exec "$NSA" curl --cacert "$P/ca.pem" "$@"; }
reg=$(in_a -sS -H 'Content-Type: application/json' --data-binary \
  "{\"join_token\": \"$JOIN\", \"environment\": \"onprem\", \"hostname\": \"curl\", \"runtime\": \"local-process\", \"slots\": 1}" \
  "$FERRY_SERVER/v1/agent/register" || true)
agent_token=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])' <<<"$reg" 2>/dev/null || true)
if [ -n "$agent_token" ]; then pass; else fail "curl could not register with the join token: $reg"; fi
id=$(run_id "$proj" where)
poll() { # poll JSON: one agent poll from host A
  in_a -sS --max-time 30 -H "Authorization: Bearer $agent_token" \
    -H 'Content-Type: application/json' --data-binary "$1" "$FERRY_SERVER/v1/agent/poll"
}
work=$(poll '{"running": [], "free_slots": 1}' || true)
url=$(python3 -c '
import json, sys
w = json.load(sys.stdin)["work"]
print(w[0]["snapshot"]["url"] if w and w[0]["id"] == sys.argv[1] else "")' "$id" <<<"$work" 2>/dev/null || true)
# Polls, each held by ferryd for under half of worker_lost_timeout, are
# curl's heartbeat while the URL ages (a silent worker would be lost after
# 3 s), as a real agent polls again at once; the stop order comes on one.
poll_until_stop() {
  local answer
  for _ in $(seq 120); do
    answer=$(poll "{\"running\": [\"$id\"], \"free_slots\": 0}" 2>&1 || true)
    echo "$answer" >"$WORK/order"
    case $answer in *'"stop":[]'* | *'"stop": []'*) ;; *) return 0 ;; esac
  done
}
poll_until_stop &
held=$!
expect_contains "the assignment carries an https snapshot URL on ferryd's address" "$url" \
  "$FERRY_SERVER/v1/blobs/"
code() { in_a -sS -o "$WORK/blob" -w '%{http_code}' "$1" 2>/dev/null || true; }
# Variants: one hex digit of sig changed, expires moved, the key changed.
alter() { # alter URL WHAT
  python3 - "$1" "$2" <<'PY'
import re, sys
url, what = sys.argv[1], sys.argv[2]
flip = lambda c: "0" if c != "0" else "1"
if what == "sig":
    m = re.search(r"sig=([0-9a-f]+)", url); i = m.start(1) + 5
elif what == "expires":
    m = re.search(r"expires=([0-9]+)", url)
    print(url[:m.start(1)] + str(int(m.group(1)) + 100) + url[m.end(1):]); sys.exit()
else:  # a hex digit of the key (the snapshot's sha256 in the path)
    m = re.search(r"/v1/blobs/snapshots/([0-9a-f]+)", url); i = m.start(1) + 7
print(url[:i] + flip(url[i]) + url[i + 1:])
PY
}
expires=$(sed -n 's/.*[?&]expires=\([0-9]*\).*/\1/p' <<<"$url")
expect_eq "a valid URL at once: 200" "$(code "$url")" 200
snap=$(json_field "$id" 'e["snapshot"]')
expect_eq "it serves the snapshot" "$(sha256sum <"$WORK/blob" | cut -d' ' -f1)" "$snap"
expect_eq "one hex digit of sig changed: 403" "$(code "$(alter "$url" sig)")" 403
expect_eq "expires changed: 403" "$(code "$(alter "$url" expires)")" 403
expect_eq "the key changed: 403" "$(code "$(alter "$url" key)")" 403
# presigned_url_ttl = 3: past `expires` the same URL is refused.
while [ "$(date +%s)" -le "${expires:-0}" ]; do sleep 0.2; done
expect_eq "the valid URL after its TTL: 403" "$(code "$url")" 403
# Leave nothing held by curl: stop it, take the order, report the end.
expect_eq "curl's execution is still assigned, not lost" "$(json_field "$id" 'e["status"]')" queued
"$FERRY" stop "$id" >/dev/null
wait "$held" || true
expect_eq "a held poll carries the stop order" \
  "$(python3 -c 'import json,sys; print(json.load(sys.stdin)["stop"])' <"$WORK/order" 2>&1)" "['$id']"
in_a -sS -o /dev/null -H "Authorization: Bearer $agent_token" -H 'Content-Type: application/json' \
  --data-binary '{"status": "finished", "exit_code": -1, "reason": "stopped"}' \
  "$FERRY_SERVER/v1/agent/executions/$id/status" || true
expect_eq "curl's execution: stopped" "$(await_status "$id" stopped 10)" stopped
expect_not_contains "no join or agent token in ferryd's log" "$(cat "$FERRYD_LOG")" "$JOIN"
[ -z "$agent_token" ] ||
  expect_not_contains "no agent token in ferryd's log" "$(cat "$FERRYD_LOG")" "$agent_token"

finish
