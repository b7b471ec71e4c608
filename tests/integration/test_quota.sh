#!/usr/bin/env bash
# Quotas: a user's executions in flight (queued, started, stopping) never
# exceed their quota; past it new ones stay `created`, saying "waiting for
# quota (N of N in flight)", and are admitted by themselves, in the order they
# were created, as earlier ones end. Per-environment quotas likewise. Two
# users submitting at once each stay within their own quota (sampled every
# 100 ms while they run).
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib_sched.sh"

T_ALICE="alice-$$-$RANDOM"
T_BOB="bob-$$-$RANDOM"
T_CAROL="carol-$$-$RANDOM"
T_ROOT="root-$$-$RANDOM"
cat >"$WORK/ferryd.conf" <<EOF
users = ( { name = "alice"; token_sha256 = "$(sha256_of "$T_ALICE")"; quota = 1; },
          { name = "bob"; token_sha256 = "$(sha256_of "$T_BOB")"; quota = 2; },
          { name = "carol"; token_sha256 = "$(sha256_of "$T_CAROL")"; quotas = { second = 1; }; },
          { name = "root"; token_sha256 = "$(sha256_of "$T_ROOT")"; admin = true; } );
environments = ( { name = "local"; compute = "local"; max_workers = 5; },
                 { name = "second"; compute = "local"; max_workers = 3; } );
EOF
ferryd_start -c "$WORK/ferryd.conf"

gate_project() { # gate_project NAME KEY-PREFIX
  local dir
  dir=$(make_project "$1" <<EOF
- step:
    name: gate
    image: none
    command: sh gate.sh $2\$FERRY_EXECUTION_COUNTER
- step:
    name: nap
    image: none
    command: sleep 0.7; echo napped
EOF
)
  make_gate "$dir" "$M"
  echo "$dir"
}
PB=$(gate_project pb b)
PC=$(gate_project pc c)

status_of() { FERRY_TOKEN=$T_ROOT json_field "$1" 'e["status"]'; }
reason_of() { FERRY_TOKEN=$T_ROOT json_field "$1" 'e["status_reason"]'; }
started_at() { FERRY_TOKEN=$T_ROOT json_field "$1" 'e["started_at"]'; }
wait_done() { # wait_done ID...: each completes
  local id rc
  for id in "$@"; do
    rc=0
    FERRY_TOKEN=$T_ROOT "$FERRY" wait "$id" --timeout 30 >/dev/null || rc=$?
    expect_eq "execution $id completes" "$rc" 0
  done
}

# --- bob (quota 2): the third and later wait in `created`, then go in order ---
b=()
for i in 1 2 3 4 5; do b[i]=$(FERRY_TOKEN=$T_BOB run_id "$PB" gate); done
await_file "$M/started-b1" 20 || fail "b1 did not start"
await_file "$M/started-b2" 20 || fail "b2 did not start"
sleep 0.5 # room for a wrong admission to show
for i in 3 4 5; do
  expect_eq "b$i waits in created" "$(status_of "${b[i]}")" created
  expect_eq "b$i says why" "$(reason_of "${b[i]}")" "waiting for quota (2 of 2 in flight)"
  expect_eq "b$i has not been queued" "$(FERRY_TOKEN=$T_ROOT json_field "${b[i]}" 'e["queued_at"]')" None
done
out=$(FERRY_TOKEN=$T_BOB "$FERRY" show "${b[3]}")
expect_contains "ferry show prints the quota reason" "$out" "waiting for quota (2 of 2 in flight)"
expect_eq "b3's command has not run" "$([ -e "$M/started-b3" ] && echo ran || echo no)" no

# b1 ends: b3 (and only b3) is admitted by itself.
touch "$M/open-b1"
await_file "$M/started-b3" 20 || fail "b3 was not admitted when b1 ended"
expect_eq "b1 complete" "$(FERRY_TOKEN=$T_ROOT await_status "${b[1]}" complete 10)" complete
for i in 4 5; do
  expect_eq "after b1 ended: b$i still created" "$(status_of "${b[i]}")" created
  expect_eq "after b1 ended: b$i's reason" "$(reason_of "${b[i]}")" "waiting for quota (2 of 2 in flight)"
done
# b3 ends before b2: b4 is next, still in order.
touch "$M/open-b3"
await_file "$M/started-b4" 20 || fail "b4 was not admitted when b3 ended"
expect_eq "after b3 ended: b5 still created" "$(status_of "${b[5]}")" created
expect_eq "b2 still runs" "$(status_of "${b[2]}")" started
touch "$M/open-b2"
await_file "$M/started-b5" 20 || fail "b5 was not admitted when b2 ended"
touch "$M/open-b4" "$M/open-b5"
wait_done "${b[@]}"
t3=$(started_at "${b[3]}") t4=$(started_at "${b[4]}") t5=$(started_at "${b[5]}") t2=$(started_at "${b[2]}")
if [[ "$t2" < "$t3" && "$t3" < "$t4" && "$t4" < "$t5" ]]; then pass; else
  fail "bob's executions did not start in order: b2 $t2, b3 $t3, b4 $t4, b5 $t5"
fi
expect_eq "b5, complete, no longer says it waits" \
  "$(FERRY_TOKEN=$T_ROOT "$FERRY" show "${b[5]}" --json | python3 -c 'import json,sys; e=json.load(sys.stdin); print(e["status"], e["status_reason"])')" "complete None"

# A created execution can be stopped; it never runs and frees nothing.
x1=$(FERRY_TOKEN=$T_BOB run_id "$PB" gate)
x2=$(FERRY_TOKEN=$T_BOB run_id "$PB" gate)
x3=$(FERRY_TOKEN=$T_BOB run_id "$PB" gate)
n3=$(FERRY_TOKEN=$T_ROOT json_field "$x3" 'e["counter"]')
expect_eq "x3 waits for quota" "$(reason_of "$x3")" "waiting for quota (2 of 2 in flight)"
out=$(FERRY_TOKEN=$T_BOB "$FERRY" stop "$x3" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["status"])')
expect_eq "stopping a created execution: stopped at once" "$out" stopped
x4=$(FERRY_TOKEN=$T_BOB run_id "$PB" gate)
expect_eq "after the stop, x4 waits for quota still (2 of 2)" "$(reason_of "$x4")" "waiting for quota (2 of 2 in flight)"
touch "$M/open-b$(FERRY_TOKEN=$T_ROOT json_field "$x1" 'e["counter"]')" \
  "$M/open-b$(FERRY_TOKEN=$T_ROOT json_field "$x2" 'e["counter"]')" \
  "$M/open-b$(FERRY_TOKEN=$T_ROOT json_field "$x4" 'e["counter"]')"
wait_done "$x1" "$x2" "$x4"
expect_eq "x3 stays stopped" "$(status_of "$x3")" stopped
expect_eq "x3 never ran" "$([ -e "$M/started-b$n3" ] && echo ran || echo no)" no

# --- carol: quota 1 in environment `second` only ---
c1=$(FERRY_TOKEN=$T_CAROL run_id "$PC" gate -e second)
c2=$(FERRY_TOKEN=$T_CAROL run_id "$PC" gate -e local)
c3=$(FERRY_TOKEN=$T_CAROL run_id "$PC" gate -e second)
await_file "$M/started-c1" 20 || fail "c1 (second) did not start"
await_file "$M/started-c2" 20 || fail "c2 (local, no quota there) did not start"
sleep 0.3
expect_eq "c3 (second) waits in created" "$(status_of "$c3")" created
expect_eq "c3 says which quota" "$(reason_of "$c3")" "waiting for quota in environment 'second' (1 of 1 in flight)"
touch "$M/open-c1"
await_file "$M/started-c3" 20 || fail "c3 was not admitted when c1 ended"
touch "$M/open-c2" "$M/open-c3"
wait_done "$c1" "$c2" "$c3"

# --- alice (quota 1) and bob (quota 2) at once: sampled every 100 ms ---
PQA=$(gate_project qa a)
PQB=$(gate_project qb b)
python3 - "$FERRY_SERVER" "$T_ROOT" >"$WORK/samples.txt" 2>&1 <<'EOF' &
import json, sys, time, urllib.request
server, token = sys.argv[1], sys.argv[2]
inflight = {"queued", "started", "stopping"}
peak = {"alice": 0, "bob": 0}
bad = []
samples = 0
deadline = time.time() + 60
while time.time() < deadline:
    req = urllib.request.Request(server + "/v1/executions",
                                 headers={"Authorization": "Bearer " + token})
    ex = [e for e in json.load(urllib.request.urlopen(req))["executions"]
          if e["project"] in ("qa", "qb")]
    samples += 1
    n = {"alice": 0, "bob": 0}
    for e in ex:
        if e["status"] in inflight:
            n[e["owner"]] += 1
        if e["status"] == "created":
            q = {"alice": 1, "bob": 2}[e["owner"]]
            want = "waiting for quota (%d of %d in flight)" % (q, q)
            if e["status_reason"] != want:
                bad.append("%s #%d created: %r" % (e["owner"], e["counter"], e["status_reason"]))
    for u in n:
        peak[u] = max(peak[u], n[u])
    if n["alice"] > 1 or n["bob"] > 2:
        bad.append("over quota: %r" % n)
    if len(ex) == 8 and all(e["status"] in ("complete", "error", "stopped") for e in ex):
        break
    time.sleep(0.1)
print("peak alice=%d bob=%d samples=%d" % (peak["alice"], peak["bob"], samples))
for b in bad[:5]:
    print("BAD", b)
EOF
sampler=$!
sleep 0.2
(for _ in 1 2 3 4; do FERRY_TOKEN=$T_ALICE run_id "$PQA" nap >>"$WORK/alice.ids"; done) &
pa=$!
(for _ in 1 2 3 4; do FERRY_TOKEN=$T_BOB run_id "$PQB" nap >>"$WORK/bob.ids"; done) &
pb=$!
wait "$pa" "$pb"
wait "$sampler" || fail "the sampler failed: $(cat "$WORK/samples.txt")"
samples=$(cat "$WORK/samples.txt")
echo "$samples"
expect_not_contains "no sample saw a user over quota or a wrong reason" "$samples" "BAD"
expect_contains "alice reached her quota, bob his (they ran at once)" "$samples" "peak alice=1 bob=2"
n=$(sed -n 's/.*samples=\([0-9]*\).*/\1/p' <<<"$samples")
if [ "${n:-0}" -ge 10 ]; then pass; else fail "only ${n:-0} samples were taken"; fi
mapfile -t ai <"$WORK/alice.ids"
mapfile -t bi <"$WORK/bob.ids"
wait_done "${ai[@]}" "${bi[@]}"
for who in ai bi; do
  declare -n ids=$who
  prev=
  for id in "${ids[@]}"; do
    t=$(started_at "$id")
    if [ -z "$prev" ] || [[ "$prev" < "$t" ]]; then pass; else
      fail "$who: $id started at $t, not after the one before it ($prev)"
    fi
    prev=$t
  done
done

finish
