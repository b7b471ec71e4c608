#!/usr/bin/env bash
# Users and bearer tokens: with users configured every API call needs a valid
# token (401 and exit status 6 otherwise); a user sees, waits on, follows and
# stops only their own executions (another user's answers "no execution",
# 404), lists only their own; an admin sees and stops everyone's. Users alone
# do not let ferryd listen beyond loopback (that needs TLS too). Config
# mistakes in `users` name the file and the line.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib_sched.sh"

FERRYD=$BIN/ferryd
T_ALICE="alice-$$-$RANDOM"
T_BOB="bob-$$-$RANDOM"
T_ROOT="root-$$-$RANDOM"

cat >"$WORK/ferryd.conf" <<EOF
users = ( { name = "alice"; token_sha256 = "$(sha256_of "$T_ALICE")"; quota = 2; },
          { name = "bob"; token_sha256 = "$(sha256_of "$T_BOB")"; },
          { name = "root"; token_sha256 = "$(sha256_of "$T_ROOT")"; admin = true; } );
environments = ( { name = "local"; compute = "local"; max_workers = 3; } );
EOF
ferryd_start -c "$WORK/ferryd.conf"

PA=$(make_project pa <<'EOF'
- step:
    name: hello
    image: none
    command: echo hello from alice > $FERRY_OUTPUTS_DIR/a.txt; echo hi
EOF
)
PB=$(make_project pb <<'EOF'
- step:
    name: gate
    image: none
    command: sh gate.sh b$FERRY_EXECUTION_COUNTER
EOF
)
make_gate "$PB" "$M"

# Run the CLI as a user; sets RC, OUT (stdout) and ERR (stderr).
as() { # as TOKEN ARGS...
  local tok=$1
  shift
  RC=0
  OUT=$(FERRY_TOKEN=$tok "$FERRY" "$@" 2>"$WORK/err") || RC=$?
  ERR=$(cat "$WORK/err")
}

# --- no token, a wrong token, a malformed header: 401 everywhere ---
as "" list
expect_eq "no token: ferry list exits 6" "$RC" 6
expect_contains "no token: the CLI says to set FERRY_TOKEN" "$ERR" "FERRY_TOKEN"
as "" whoami
expect_eq "no token: ferry whoami exits 6" "$RC" 6
as "wrong-$RANDOM" list
expect_eq "wrong token: ferry list exits 6" "$RC" 6
expect_contains "wrong token: the CLI says the token is not accepted" "$ERR" "does not accept"
# The config holds the hash: sending the hash itself is no token.
as "$(sha256_of "$T_ALICE")" whoami
expect_eq "the hash as the token: exits 6" "$RC" 6
RC=0
(cd "$PA" && "$FERRY" run hello >/dev/null 2>&1) || RC=$?
expect_eq "no token: ferry run exits 6" "$RC" 6
for ep in "GET /v1/executions" "GET /v1/executions/1" "GET /v1/whoami" "GET /v1/environments" \
  "POST /v1/executions/1/stop" "GET /v1/executions/1/logs" "POST /v1/snapshots"; do
  read -r method path <<<"$ep"
  body=$(api "" "$method" "$path")
  expect_eq "no token: $ep answers 401" "$(http_code)" 401
  expect_contains "no token: $ep: a JSON error" "$body" '"error"'
  api "wrong-token" "$method" "$path" >/dev/null
  expect_eq "wrong token: $ep answers 401" "$(http_code)" 401
done
api "" POST /v1/executions '{"project":"x","step":"hello","snapshot":"'"$(sha256_of x)"'"}' >/dev/null
expect_eq "no token: POST /v1/executions answers 401" "$(http_code)" 401
code=$(curl -sS -o /dev/null -w '%{http_code}' -H "Authorization: Basic $T_ALICE" "$FERRY_SERVER/v1/whoami")
expect_eq "a token not sent as Bearer: 401" "$code" 401
code=$(curl -sS -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $T_ALICE" "$FERRY_SERVER/v1/whoami")
expect_eq "alice's token as Bearer: 200" "$code" 200
expect_eq "nothing was created by the refused calls" \
  "$(api "$T_ROOT" GET /v1/executions | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["executions"]))')" 0

# --- whoami ---
as "$T_ALICE" whoami
expect_eq "whoami as alice" "$OUT" alice
as "$T_ROOT" whoami
expect_eq "whoami as root" "$OUT" "root (admin)"
expect_eq "whoami --json as alice" "$(api "$T_ALICE" GET /v1/whoami | python3 -c 'import json,sys; w=json.load(sys.stdin); print(w["user"], w["admin"])')" "alice False"
expect_eq "whoami --json as root" "$(api "$T_ROOT" GET /v1/whoami | python3 -c 'import json,sys; w=json.load(sys.stdin); print(w["user"], w["admin"])')" "root True"

# --- each user's executions ---
a1=$(FERRY_TOKEN=$T_ALICE run_id "$PA" hello)
b1=$(FERRY_TOKEN=$T_BOB run_id "$PB" gate)
b2=$(FERRY_TOKEN=$T_BOB run_id "$PB" gate)
rc=0
FERRY_TOKEN=$T_ALICE "$FERRY" wait "$a1" --timeout 30 >/dev/null || rc=$?
expect_eq "alice waits on her own execution: complete" "$rc" 0
expect_eq "alice's execution is owned by alice" "$(FERRY_TOKEN=$T_ALICE json_field "$a1" 'e["owner"]')" alice
await_file "$M/started-b1" 20 || fail "bob's first gate did not start"
await_file "$M/started-b2" 20 || fail "bob's second gate did not start"
expect_eq "bob's execution is owned by bob" "$(FERRY_TOKEN=$T_BOB json_field "$b1" 'e["owner"]')" bob

# Alice cannot see, wait on, follow, stop or download bob's execution.
for cmd in show wait logs stop outputs; do
  as "$T_ALICE" "$cmd" "$b1"
  expect_eq "alice: ferry $cmd of bob's execution exits 5" "$RC" 5
  expect_contains "alice: ferry $cmd of bob's execution: not found" "$ERR" "no execution '$b1'"
  expect_not_contains "alice: ferry $cmd of bob's execution shows nothing of it" "$OUT" "gate"
done
for ep in "GET /v1/executions/$b1" "POST /v1/executions/$b1/stop" "GET /v1/executions/$b1/wait?timeout=1" \
  "GET /v1/executions/$b1/logs" "GET /v1/executions/$b1/outputs" "GET /v1/executions/1?project=pb"; do
  read -r method path <<<"$ep"
  body=$(api "$T_ALICE" "$method" "$path")
  expect_eq "alice: $ep answers 404" "$(http_code)" 404
  expect_contains "alice: $ep says no execution" "$body" "no execution"
done
expect_eq "bob's execution still runs after alice's stop" "$(FERRY_TOKEN=$T_BOB json_field "$b1" 'e["status"]')" started
# Alice's #1 and bob's #1 are in different projects: to alice, #1 is hers.
as "$T_ALICE" show 1 --json
expect_eq "alice: ferry show 1 is her own #1 (bob's #1 is invisible to her; stderr: $ERR)" \
  "$(python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])' <<<"$OUT" 2>/dev/null)" "$a1"
api "$T_ALICE" GET /v1/executions/1 >/dev/null
expect_eq "alice: GET /v1/executions/1 answers her own #1" "$(http_code)" 200

# Lists: each user only their own; the admin all.
owners() { python3 -c 'import json,sys; print(" ".join(sorted(x["owner"] + ":" + x["id"] for x in json.load(sys.stdin)["executions"])))'; }
expect_eq "alice lists only her execution (API)" "$(api "$T_ALICE" GET /v1/executions | owners)" "alice:$a1"
expect_eq "alice lists only her execution (ferry list --json)" \
  "$(FERRY_TOKEN=$T_ALICE "$FERRY" list --json | python3 -c 'import json,sys; d=json.load(sys.stdin); d=d["executions"] if isinstance(d, dict) else d; print(" ".join(x["id"] for x in d))')" "$a1"
as "$T_ALICE" list
expect_contains "alice's ferry list shows her execution" "$OUT" "${a1:0:8}"
expect_not_contains "alice's ferry list hides bob's" "$OUT" "${b1:0:8}"
expect_not_contains "alice's ferry list hides bob's project" "$OUT" "pb"
expect_eq "bob lists only his executions" "$(api "$T_BOB" GET /v1/executions | owners)" \
  "$(printf 'bob:%s\n' "$b1" "$b2" | sort | tr '\n' ' ' | sed 's/ $//')"
expect_eq "bob: ?status=complete holds none of alice's" \
  "$(api "$T_BOB" GET '/v1/executions?status=complete' | owners)" ""
expect_eq "root lists everyone's" "$(api "$T_ROOT" GET /v1/executions | owners)" \
  "$(printf '%s\n' "alice:$a1" "bob:$b1" "bob:$b2" | sort | tr '\n' ' ' | sed 's/ $//')"
expect_eq "bob cannot see alice's execution either" "$(api "$T_BOB" GET "/v1/executions/$a1" >/dev/null; http_code)" 404

# The admin sees and stops bob's execution; bob stops his own.
as "$T_ROOT" show "$b1"
expect_eq "root: ferry show of bob's execution exits 0" "$RC" 0
expect_contains "root sees bob as the owner" "$OUT" "bob"
as "$T_ROOT" stop "$b1"
expect_eq "root: ferry stop of bob's execution exits 0" "$RC" 0
rc=0
FERRY_TOKEN=$T_BOB "$FERRY" wait "$b1" --timeout 15 >/dev/null || rc=$?
expect_eq "bob's execution stopped by root: ferry wait (as bob) exits 2" "$rc" 2
as "$T_BOB" stop "$b2"
expect_eq "bob stops his own execution" "$RC" 0
rc=0
FERRY_TOKEN=$T_BOB "$FERRY" wait "$b2" --timeout 15 >/dev/null || rc=$?
expect_eq "bob's own stop: ferry wait exits 2" "$rc" 2
as "$T_ALICE" outputs "$a1"
expect_eq "alice lists her own outputs" "$RC" 0
expect_contains "alice's outputs" "$OUT" "a.txt"
ferryd_stop

# --- users alone do not open every address: that needs TLS too (test_tls.sh
# serves 0.0.0.0 with both); a restart keeps alice's executions ---
RC=0
OUT=$(timeout 5 "$FERRYD" --data-dir "$WORK/x" -c "$WORK/ferryd.conf" --listen 0.0.0.0:0 2>&1 \
  </dev/null) || RC=$?
expect_eq "0.0.0.0 with users but no tls: refused" "$RC" 2
expect_contains "0.0.0.0 with users but no tls: says why" "$OUT" "clear text"
ferryd_start -c "$WORK/ferryd.conf"
as "$T_ALICE" whoami
expect_eq "whoami after the restart" "$OUT" alice
as "" list
expect_eq "no token after the restart: exits 6" "$RC" 6
as "$T_ALICE" list
expect_contains "alice's execution survived the restart" "$OUT" "${a1:0:8}"
ferryd_stop

# --- config mistakes in users name the file and the line ---
refused() { # refused CONFIG: sets RC and OUT
  RC=0
  OUT=$(timeout 5 "$FERRYD" --data-dir "$WORK/x" --listen 127.0.0.1:0 -c "$1" 2>&1 </dev/null) || RC=$?
}
expect_refused() { # expect_refused WHAT
  if [ "$RC" -ne 0 ] && [ "$RC" -ne 124 ]; then pass; else fail "$1: exit status $RC; output: $OUT"; fi
  expect_not_contains "$1: not started" "$OUT" "listening on"
}
ENVS='environments = ( { name = "local"; compute = "local"; }, { name = "second"; compute = "local"; } );'

f=$WORK/bad-hash.conf
printf '%s\nusers = (\n  { name = "alice";\n    token_sha256 = "abc123"; } );\n' "$ENVS" >"$f"
refused "$f"
expect_refused "a short token_sha256"
expect_contains "a short token_sha256: file and line" "$OUT" "$f:4"
expect_contains "a short token_sha256: names the setting" "$OUT" "token_sha256"
expect_contains "a short token_sha256: says what is expected" "$OUT" "64 hex"

f=$WORK/bad-hex.conf
printf '%s\nusers = ( { name = "alice"; token_sha256 = "%s"; } );\n' "$ENVS" "$(printf 'z%.0s' $(seq 64))" >"$f"
refused "$f"
expect_refused "a token_sha256 that is not hex"
expect_contains "a token_sha256 that is not hex: file and line" "$OUT" "$f:2"

f=$WORK/unknown-setting.conf
printf '%s\nusers = ( { name = "alice";\n  token_sha256 = "%s";\n  quotta = 2; } );\n' "$ENVS" "$(sha256_of x)" >"$f"
refused "$f"
expect_refused "an unknown user setting"
expect_contains "an unknown user setting: file and line" "$OUT" "$f:4"
expect_contains "an unknown user setting: names it" "$OUT" "quotta"
expect_contains "an unknown user setting: says what it is" "$OUT" "unknown user setting"

f=$WORK/unknown-env.conf
printf '%s\nusers = (\n  { name = "alice"; token_sha256 = "%s"; quotas = { second = 1; gpu = 1; }; } );\n' \
  "$ENVS" "$(sha256_of x)" >"$f"
refused "$f"
expect_refused "quotas naming an unknown environment"
expect_contains "quotas naming an unknown environment: the file" "$OUT" "$f"
if [[ "$OUT" == *"$f:3"* || "$OUT" == *"line 3"* ]]; then pass; else
  fail "quotas naming an unknown environment: line 3 not named: $OUT"
fi
expect_contains "quotas naming an unknown environment: names the setting" "$OUT" "quotas"
expect_contains "quotas naming an unknown environment: names the environment" "$OUT" "'gpu'"

f=$WORK/no-token.conf
printf '%s\nusers = ( { name = "alice"; quota = 1; } );\n' "$ENVS" >"$f"
refused "$f"
expect_refused "a user without token_sha256"
expect_contains "a user without token_sha256: file and line" "$OUT" "$f:2"
expect_contains "a user without token_sha256: names the setting" "$OUT" "token_sha256"

f=$WORK/same-token.conf
printf '%s\nusers = ( { name = "alice"; token_sha256 = "%s"; },\n  { name = "bob"; token_sha256 = "%s"; } );\n' \
  "$ENVS" "$(sha256_of x)" "$(sha256_of x)" >"$f"
refused "$f"
expect_refused "two users with the same token"
expect_contains "two users with the same token: file and line" "$OUT" "$f:3"

f=$WORK/good.conf
printf '%s\nusers = ( { name = "alice"; token_sha256 = "%s"; quotas = { second = 1; }; } );\n' \
  "$ENVS" "$(sha256_of x)" >"$f"
RC=0
OUT=$(timeout 3 "$FERRYD" --data-dir "$WORK/y" --listen 127.0.0.1:0 -c "$f" 2>&1 </dev/null) || RC=$?
expect_eq "a good users config: ferryd runs until the timeout ends it" "$RC" 124
expect_contains "a good users config: ferryd listens" "$OUT" "listening on"

finish
