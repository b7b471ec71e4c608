#!/usr/bin/env bash
# Bootstrap of a remote worker (issue 4). ferryd serves bootstrap.sh and the
# agent bundle without a token; the script, run in an empty folder with a
# static environment's join token, downloads the bundle, checks its SHA-256
# and starts ferry-agent, which joins (one idle worker) and runs executions.
# ferryd killed (kill -9) mid-run and started again loses no log line and no
# output. A tampered bundle is refused by the script; a wrong join token
# ends the agent with a clear message. Over HTTPS the script carries ferryd's
# CA, so a machine needs nothing but the script and its token.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib_sched.sh"

TOKEN="join-$$-$RANDOM"
AGENT_PIDS=()
stop_agents() {
  local pid
  for pid in "${AGENT_PIDS[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${AGENT_PIDS[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  AGENT_PIDS=()
}
trap 'rc=$?; stop_agents; (exit $rc); cleanup' EXIT

cat >"$WORK/onprem.conf" <<EOF
environments = ( { name = "onprem"; compute = "static"; join_token_sha256 = "$(sha256_of "$TOKEN")"; } );
default_environment = "onprem";
EOF
ferryd_start -c "$WORK/onprem.conf"
PORT=${FERRY_SERVER##*:}

# --- what ferryd serves, without a token ---
code=$(curl -sS -o "$WORK/bootstrap.sh" -w '%{http_code}' \
  "$FERRY_SERVER/v1/agent/bootstrap.sh?environment=onprem")
expect_eq "bootstrap.sh is served" "$code" 200
sum=$(curl -sS "$FERRY_SERVER/v1/agent/bundle.sha256")
sha=${sum%% *}
expect_eq "bundle.sha256 names bundle.tar.gz" "${sum#*  }" "bundle.tar.gz"
curl -sS -D "$WORK/bundle.headers" -o "$WORK/bundle.tar.gz" "$FERRY_SERVER/v1/agent/bundle.tar.gz"
expect_eq "the bundle has the announced sha256" "$(sha256sum <"$WORK/bundle.tar.gz" | cut -d' ' -f1)" "$sha"
expect_contains "the bundle's sha256 header" "$(tr -d '\r' <"$WORK/bundle.headers")" "x-ferry-sha256: $sha"
members=$(tar -tzf "$WORK/bundle.tar.gz" | sort | tr '\n' ' ')
# The agent and the runtime plugins, nothing of ferryd's (compute, store).
expect_contains "the bundle holds the agent" "$members" "bin/ferry-agent "
expect_contains "the bundle holds the runtime plugins" "$members" \
  "lib/ferry/plugins/local-process.so "
expect_not_contains "the bundle holds no store plugin" "$members" "local-storage.so"
expect_not_contains "the bundle holds no compute plugin" "$members" "plugins/local.so"
expect_contains "the script embeds the bundle's sha256" "$(cat "$WORK/bootstrap.sh")" \
  "BUNDLE_SHA256=$sha"
expect_contains "the script names ferryd's URL" "$(cat "$WORK/bootstrap.sh")" \
  "FERRY_SERVER='$FERRY_SERVER'"
curl -sS -o "$WORK/agent.bin" "$FERRY_SERVER/v1/agent/binary"
if cmp -s "$WORK/agent.bin" "$FERRY_BUILD_DIR/bin/ferry-agent"; then pass; else
  fail "/v1/agent/binary is not the ferry-agent next to ferryd"
fi
code=$(curl -sS -o /dev/null -w '%{http_code}' "$FERRY_SERVER/v1/agent/bootstrap.sh?environment=nope")
expect_eq "an unknown environment: 404" "$code" 404
sh -n "$WORK/bootstrap.sh" && pass || fail "bootstrap.sh is not valid sh"

# --- a tampered bundle is refused (the script is genuine, the bundle not) ---
mkdir -p "$WORK/evil/v1/agent"
{ cat "$WORK/bundle.tar.gz"; echo tampered; } >"$WORK/evil/v1/agent/bundle.tar.gz"
sed "s|^FERRY_SERVER=.*|FERRY_SERVER='file://$WORK/evil'|" "$WORK/bootstrap.sh" >"$WORK/evil.sh"
rc=0
FERRY_AGENT_DIR=$WORK/evil-agent sh "$WORK/evil.sh" "$TOKEN" >"$WORK/evil.out" 2>&1 || rc=$?
expect_eq "a tampered bundle: the script fails" "$rc" 1
expect_contains "a tampered bundle: it says why" "$(cat "$WORK/evil.out")" \
  "expected $sha: refusing to run it"
if [ -e "$WORK/evil-agent/$sha" ]; then fail "a tampered bundle was unpacked"; else pass; fi

# --- a wrong join token: the agent exits non-zero and says so ---
rc=0
FERRY_AGENT_DIR=$WORK/agent FERRY_WORK_DIR=$DATA/agent-wrong \
  timeout 60 sh "$WORK/bootstrap.sh" "wrong-$TOKEN" >"$WORK/wrong.out" 2>&1 || rc=$?
expect_eq "a wrong join token: exit 1" "$rc" 1
expect_contains "a wrong join token: a clear message" "$(cat "$WORK/wrong.out")" \
  "joining refused: unknown static environment or wrong join token"
expect_not_contains "a wrong join token: not logged" "$(cat "$WORK/wrong.out")" "wrong-$TOKEN"

# --- the right one: the agent joins and works ---
FERRY_AGENT_DIR=$WORK/agent FERRY_WORK_DIR=$DATA/agent-work \
  sh "$WORK/bootstrap.sh" "$TOKEN" >"$WORK/agent.log" 2>&1 &
AGENT_PIDS+=($!)
idle=
for _ in $(seq 100); do
  idle=$(curl -sS "$FERRY_SERVER/v1/environments" | python3 -c \
    'import json,sys; print([e["workers"]["idle"] for e in json.load(sys.stdin)["environments"] if e["name"] == "onprem"][0])')
  [ "$idle" = 1 ] && break
  sleep 0.1
done
expect_eq "the bootstrapped agent joined: one idle worker" "$idle" 1
expect_contains "it runs the unpacked agent" "$(tr '\0' ' ' <"/proc/${AGENT_PIDS[0]}/cmdline")" \
  "$WORK/agent/$sha/bin/ferry-agent --server $FERRY_SERVER --environment onprem"
expect_not_contains "the token is not on its command line" \
  "$(tr '\0' ' ' <"/proc/${AGENT_PIDS[0]}/cmdline")" "$TOKEN"

proj=$(make_project remote <<'EOF'
- step:
    name: hello
    image: none
    command:
      - echo "hello from $(hostname)"
      - echo kept > "$FERRY_OUTPUTS_DIR/out.txt"
- step:
    name: count
    image: none
    command:
      - i=1; while [ $i -le 20000 ]; do echo "line $i"; i=$((i+1)); case $i in *000) sleep 0.15;; esac; done
      - echo counted > "$FERRY_OUTPUTS_DIR/count.txt"
EOF
)
id=$(run_id "$proj" hello)
"$FERRY" wait "$id" --timeout 60 >/dev/null || true
expect_eq "an execution on the joined worker completes" "$(json_field "$id" 'e["status"]')" complete
expect_contains "its log" "$("$FERRY" logs "$id" 2>/dev/null)" "hello from"
expect_eq "its output" "$(json_field "$id" '" ".join(o["name"] for o in e["outputs"])')" out.txt

# --- ferryd killed mid-run and started again: the run goes on, nothing lost ---
id=$(run_id "$proj" count)
await_status "$id" started 30 >/dev/null
sleep 1
ferryd_kill
sleep 1.5
ferryd_start -c "$WORK/onprem.conf" --listen "127.0.0.1:$PORT"
"$FERRY" wait "$id" --timeout 90 >/dev/null || true
expect_eq "across a crash of ferryd: complete" "$(json_field "$id" 'e["status"]')" complete
got=$(curl -sS "$FERRY_SERVER/v1/executions/$id/logs" | python3 -c '
import json, sys
events = [json.loads(l) for l in sys.stdin]
out = [e["text"] for e in events if e["stream"] == "stdout"]
want = ["line %d" % i for i in range(1, 20001)]
first = next((i for i, (a, b) in enumerate(zip(out, want)) if a != b), min(len(out), len(want)))
print("ok" if out == want else "%d lines, first difference at %d" % (len(out), first))
print(" ".join(str(e["i"]) for e in events) == " ".join(str(i) for i in range(1, len(events) + 1)))')
expect_eq "across a crash of ferryd: every line once, in order" "$(sed -n 1p <<<"$got")" ok
expect_eq "across a crash of ferryd: events numbered 1..N" "$(sed -n 2p <<<"$got")" True
expect_eq "across a crash of ferryd: the output is kept" \
  "$(json_field "$id" '" ".join(o["name"] for o in e["outputs"])')" count.txt
expect_not_contains "the join token never reaches the agent's log" "$(cat "$WORK/agent.log")" "$TOKEN"
stop_agents
ferryd_stop

# --- over HTTPS: the script carries ferryd's CA; the machine needs no file ---
P=$WORK/pki
mkdir -p "$P"
ossl() { openssl "$@" 2>>"$WORK/openssl.log"; }
ossl req -x509 -newkey rsa:2048 -nodes -keyout "$P/ca.key" -out "$P/ca.pem" -days 2 \
  -subj "/CN=ferry bootstrap test CA"
ossl req -newkey rsa:2048 -nodes -keyout "$P/server.key" -out "$P/server.csr" -subj "/CN=localhost"
printf '%s\n' "subjectAltName=DNS:localhost,IP:127.0.0.1" "basicConstraints=CA:FALSE" \
  "extendedKeyUsage=serverAuth" >"$P/ext.cnf"
ossl x509 -req -in "$P/server.csr" -CA "$P/ca.pem" -CAkey "$P/ca.key" -CAcreateserial \
  -out "$P/server.pem" -days 2 -extfile "$P/ext.cnf"
cat >"$WORK/tls.conf" <<EOF
tls = { cert = "$P/server.pem"; key = "$P/server.key"; ca = "$P/ca.pem"; };
environments = ( { name = "onprem"; compute = "static"; join_token_sha256 = "$(sha256_of "$TOKEN")"; } );
default_environment = "onprem";
EOF
ferryd_start -c "$WORK/tls.conf"
expect_contains "ferryd serves https" "$FERRY_SERVER" "https://"
curl -sS --cacert "$P/ca.pem" -o "$WORK/tls.sh" "$FERRY_SERVER/v1/agent/bootstrap.sh"
expect_contains "the script carries the CA" "$(cat "$WORK/tls.sh")" "$(sed -n 2p "$P/ca.pem")"
expect_not_contains "the script carries no key" "$(cat "$WORK/tls.sh")" "PRIVATE KEY"
FERRY_AGENT_DIR=$WORK/agent-tls FERRY_WORK_DIR=$DATA/agent-tls \
  sh "$WORK/tls.sh" "$TOKEN" >"$WORK/agent-tls.log" 2>&1 &
AGENT_PIDS+=($!)
joined=
for _ in $(seq 100); do
  joined=$(grep -o "joined https://[^ ]*" "$WORK/agent-tls.log" || true)
  [ -n "$joined" ] && break
  kill -0 "${AGENT_PIDS[0]}" 2>/dev/null || break
  sleep 0.1
done
expect_eq "over https: the agent verified ferryd and joined" "$joined" "joined $FERRY_SERVER"
id=$(cd "$proj" && "$FERRY" --ca "$P/ca.pem" run hello --json |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
"$FERRY" --ca "$P/ca.pem" wait "$id" --timeout 60 >/dev/null || true
expect_eq "over https: an execution completes" \
  "$("$FERRY" --ca "$P/ca.pem" show "$id" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["status"])')" \
  complete
stop_agents

finish
