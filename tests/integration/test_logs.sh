#!/usr/bin/env bash
# Logs: `ferry logs -f` sees a line well within half a second of its being
# printed, while the execution still runs; 5000 lines on each stream arrive
# complete and in order (printed, followed and raw); --tail N gives exactly
# the last N events; a stdout line that is a JSON object becomes metadata;
# odd lines (UTF-8, invalid bytes, empty, CRLF, 70000 bytes, no final
# newline) are kept.
. "$(dirname "$0")/lib.sh"

ferryd_start

proj=$(make_project logs <<'EOF'
- step:
    name: ticks
    image: busybox
    command:
      - sleep 0.5
      - for i in 1 2 3 4 5 6; do echo "tick $i $(date +%s.%N)"; sleep 0.25; done
- step:
    name: flood
    image: busybox
    command: i=1; while [ $i -le 5000 ]; do echo "o $i"; echo "e $i" >&2; i=$((i+1)); done
- step:
    name: lines
    image: busybox
    command:
      - for i in 1 2 3 4 5 6; do echo "line $i"; done
      - echo "warn 1" >&2
- step:
    name: metrics
    image: busybox
    command: sh metrics.sh
- step:
    name: odd
    image: busybox
    command: sh odd.sh
EOF
)
cat >"$proj/odd.sh" <<'EOF'
echo "héllo ✓ 日本"
printf 'bad \377\376 bytes\n'
echo ""
printf 'crlf\tline\r\n'
head -c 70000 /dev/zero | tr '\0' 'x'
echo
echo after
printf 'last without newline'
EOF
cat >"$proj/metrics.sh" <<'EOF'
echo '{"loss": 0.5, "epoch": 1}'
echo '{"loss": 0.25, "epoch": 2, "acc": "good"}'
echo '[1, 2]'
echo '{"note": "hi"}'
echo '42'
echo '"text"'
echo '{broken json'
echo '{"from_stderr": 1}' >&2
EOF

# --- follow: each tick arrives within half a second ---
# Six ticks, a quarter second apart: with one-second polling at least one of
# them would wait three quarters of a second or more.
id=$(run_id "$proj" ticks)
# Stamp each line with the time this side read it.
("$FERRY" logs -f "$id" 2>/dev/null | while IFS= read -r line; do
  echo "$(date +%s.%N) $line"
done >"$WORK/follow.txt") &
follower=$!
# While it runs: tick 1 shows up before the execution ends.
seen_running=no
for _ in $(seq 200); do
  if grep -q ' tick 1 ' "$WORK/follow.txt"; then
    status=$(json_field "$id" 'e["status"]')
    [ "$status" = started ] && ! grep -q ' tick 6 ' "$WORK/follow.txt" && seen_running=yes
    break
  fi
  sleep 0.02
done
expect_eq "tick 1 was followed while the execution ran" "$seen_running" yes
# A second follower joins after tick 2 with --tail 1: it starts at the latest
# event, so it never shows tick 1, then follows to the end.
for _ in $(seq 200); do grep -q ' tick 2 ' "$WORK/follow.txt" && break; sleep 0.02; done
"$FERRY" logs -f --tail 1 "$id" >"$WORK/follow-tail.txt" 2>/dev/null &
follower_tail=$!
rc=0
"$FERRY" wait "$id" --timeout 30 >/dev/null || rc=$?
expect_eq "ticks: wait" "$rc" 0
# The follower ends by itself once the execution has ended.
for _ in $(seq 100); do kill -0 "$follower" 2>/dev/null || break; sleep 0.05; done
if kill -0 "$follower" 2>/dev/null; then
  fail "logs -f still runs 5 s after the execution ended"
  kill "$follower" 2>/dev/null || true
else
  pass
fi
wait "$follower" 2>/dev/null || true
rc=0
wait "$follower_tail" || rc=$?
expect_eq "logs -f --tail 1: exit status" "$rc" 0
tail_ticks=$(awk '$1 == "tick" {print $2}' "$WORK/follow-tail.txt" | tr '\n' ' ')
case "$tail_ticks" in
"2 3 4 5 6 " | "3 4 5 6 " | "4 5 6 " | "5 6 " | "6 ") pass ;;
*) fail "logs -f --tail 1 joined after tick 2 printed ticks '$tail_ticks'" ;;
esac
expect_eq "logs -f got the ticks" "$(awk '$2 == "tick" {print $3}' "$WORK/follow.txt" | tr '\n' ' ')" "1 2 3 4 5 6 "
# Latency: read time minus printed time, for each tick.
lat=$(awk '$2 == "tick" { d = $1 - $4; if (d > 0.5 || d < -0.05) printf "tick %s: %.3f s; ", $3, d }' \
  "$WORK/follow.txt")
expect_eq "each tick arrived within 0.5 s" "$lat" ""
echo "follow latencies: $(awk '$2 == "tick" { printf "%.3f s ", $1 - $4 }' "$WORK/follow.txt")"

# --- 5000 lines on each stream: none lost, none reordered ---
id=$(run_id "$proj" flood)
"$FERRY" logs -f "$id" >"$WORK/f.out" 2>"$WORK/f.err" &
follower=$!
rc=0
"$FERRY" wait "$id" --timeout 60 >/dev/null || rc=$?
expect_eq "flood: wait" "$rc" 0
rc=0
wait "$follower" || rc=$?
expect_eq "flood: logs -f exit status" "$rc" 0
seq 5000 | sed 's/^/o /' >"$WORK/want.out"
seq 5000 | sed 's/^/e /' >"$WORK/want.err"
check_seq() { # check_seq WHAT FILE WANT
  if cmp -s "$2" "$3"; then pass; else
    fail "$1: $(wc -l <"$2") lines, first difference: $(diff "$2" "$3" | head -n 3 | tr '\n' ' ')"
  fi
}
"$FERRY" logs "$id" >"$WORK/p.out" 2>"$WORK/p.err"
grep '^o ' "$WORK/p.out" >"$WORK/p.out.lines" || true
grep '^e ' "$WORK/p.err" >"$WORK/p.err.lines" || true
check_seq "logs: stdout lines" "$WORK/p.out.lines" "$WORK/want.out"
check_seq "logs: stderr lines" "$WORK/p.err.lines" "$WORK/want.err"
expect_eq "logs: nothing but the lines on stdout" "$(grep -vc '^o ' "$WORK/p.out" || true)" 0
grep '^o ' "$WORK/f.out" >"$WORK/f.out.lines" || true
grep '^e ' "$WORK/f.err" >"$WORK/f.err.lines" || true
check_seq "logs -f: stdout lines" "$WORK/f.out.lines" "$WORK/want.out"
check_seq "logs -f: stderr lines" "$WORK/f.err.lines" "$WORK/want.err"
# The raw log: i counts 1, 2, 3... and each line has its stream.
curl -sf "$FERRY_SERVER/v1/executions/$id/logs" >"$WORK/raw.ndjson"
expect_eq "raw log: i, streams and order" "$(python3 -c '
import json, sys
evs = [json.loads(l) for l in open(sys.argv[1])]
bad = [e["i"] for n, e in enumerate(evs, 1) if e["i"] != n]
out = [e["text"] for e in evs if e["stream"] == "stdout"]
err = [e["text"] for e in evs if e["stream"] == "stderr"]
print(bad[:3], out == ["o %d" % k for k in range(1, 5001)], err == ["e %d" % k for k in range(1, 5001)],
      all(set(e) >= {"i", "stream", "time", "text"} for e in evs))
' "$WORK/raw.ndjson")" "[] True True True"

# --- --tail N: exactly the last N events ---
id=$(run_id "$proj" lines)
"$FERRY" wait "$id" --timeout 30 >/dev/null
curl -sf "$FERRY_SERVER/v1/executions/$id/logs" >"$WORK/lines.ndjson"
render_last() { # the last N events as `ferry logs` prints them
  python3 -c '
import json, sys
evs = [json.loads(l) for l in open(sys.argv[1])]
n = int(sys.argv[2])
for e in evs[len(evs) - n:] if n else []:
    print(("--- " if e["stream"] == "status" else "") + e["text"])
' "$WORK/lines.ndjson" "$1"
}
total=$(wc -l <"$WORK/lines.ndjson")
expect_eq "full log is longer than the tails" "$((total > 9))" 1
for n in 1 3 9; do
  expect_eq "logs --tail $n" "$("$FERRY" logs "$id" --tail "$n" 2>&1)" "$(render_last "$n")"
  expect_eq "logs --tail $n: count" "$("$FERRY" logs "$id" --tail "$n" 2>&1 | wc -l)" "$n"
  expect_eq "logs -f --tail $n of an ended execution" "$("$FERRY" logs "$id" -f --tail "$n" 2>&1)" \
    "$(render_last "$n")"
done
expect_eq "logs --tail 0" "$("$FERRY" logs "$id" --tail 0 2>&1)" ""
expect_eq "raw ?tail=0" "$(curl -sf "$FERRY_SERVER/v1/executions/$id/logs?tail=0" | wc -l)" 0
expect_eq "logs --tail larger than the log" "$("$FERRY" logs "$id" --tail 100000 2>&1)" \
  "$(render_last "$total")"
expect_eq "raw ?tail=4: the last four i" "$(curl -sf "$FERRY_SERVER/v1/executions/$id/logs?tail=4" |
  python3 -c 'import json,sys; print([json.loads(l)["i"] for l in sys.stdin])')" \
  "[$((total - 3)), $((total - 2)), $((total - 1)), $total]"

# --- metadata: JSON-object stdout lines, latest value per key ---
id=$(run_id "$proj" metrics)
"$FERRY" wait "$id" --timeout 30 >/dev/null
expect_eq "metadata" "$(json_field "$id" 'json.dumps(e["metadata"], sort_keys=True)')" \
  '{"acc": "good", "epoch": 2, "loss": 0.25, "note": "hi"}'
out=$("$FERRY" logs "$id" 2>/dev/null)
expect_contains "metadata lines are logged too" "$out" '{"loss": 0.25, "epoch": 2, "acc": "good"}'
expect_contains "a JSON array line is logged" "$out" '[1, 2]'
expect_contains "show prints the metadata" "$("$FERRY" show "$id")" "note"

# --- odd lines ---
id=$(run_id "$proj" odd)
"$FERRY" wait "$id" --timeout 30 >/dev/null
curl -sf "$FERRY_SERVER/v1/executions/$id/logs" >"$WORK/odd.ndjson"
expect_eq "odd lines, as logged" "$(python3 -c '
import json, sys
out = [json.loads(l)["text"] for l in open(sys.argv[1]) if json.loads(l)["stream"] == "stdout"]
xs = [t for t in out if t and set(t) == {"x"}]
rest = [t for t in out if t not in xs]
print(json.dumps(rest, ensure_ascii=True), len("".join(xs)), out.index("after") == out.index(xs[-1]) + 1)
' "$WORK/odd.ndjson")" \
  '["h\u00e9llo \u2713 \u65e5\u672c", "bad \ufffd\ufffd bytes", "", "crlf\tline", "after", "last without newline"] 70000 True'
expect_eq "odd: the UTF-8 line through ferry logs" "$("$FERRY" logs "$id" 2>/dev/null | head -n 1)" "héllo ✓ 日本"

finish
