#!/usr/bin/env bash
# Live outputs (issue 19, point 4), under local-process: a file of outputs/
# made read-only (chmod 0444) while the commands run is stored at once and
# kept whatever happens to the execution after.
#  - a 20 MB checkpoint, then a file in a sub-folder made after the watch
#    began: listed with the right size and sha256 while the execution still
#    runs; after a stop both download byte for byte, and the final upload
#    does not send the checkpoint again;
#  - a file written continuously and made read-only only at the end, and one
#    made read-only while its writer still writes to it: never listed with a
#    content it did not end with;
#  - the command removes its read-only checkpoint and exits 1: the stored
#    copy is kept, intact;
#  - a checkpoint of an execution whose worker is then lost (the agent
#    frozen): kept, intact;
#  - the checkpoint's <file>.metadata.json, written after it was stored
#    live, applies at the end;
#  - the agent says it watches with inotify.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib_sched.sh"

cat >"$WORK/ferryd.conf" <<EOF
worker_lost_timeout = 3;
EOF
# FERRY_TEST_LIVE_S3=1: the same with the s3-storage store of s3rver (the
# checkpoint then goes in parts, checked before ferryd completes it).
if [ "${FERRY_TEST_LIVE_S3:-0}" = 1 ]; then
  export AWS_ACCESS_KEY_ID=$FERRY_TEST_S3_ACCESS_KEY_ID
  export AWS_SECRET_ACCESS_KEY=$FERRY_TEST_S3_SECRET_ACCESS_KEY
  echo "store = { plugin = \"s3-storage\"; bucket = \"$FERRY_TEST_S3_BUCKET\";" \
    "prefix = \"test-live-$$-$RANDOM/\"; endpoint = \"$FERRY_TEST_S3_ENDPOINT\";" \
    "multipart_threshold = \"5MiB\"; part_size = \"5MiB\"; };" >>"$WORK/ferryd.conf"
fi
ferryd_start -c "$WORK/ferryd.conf"

GATE=$WORK/gate
mkdir -p "$GATE"
proj=$(make_project live <<EOF
- step:
    name: ckpt
    image: none
    command:
      - R=\$PWD
      - cd "\$FERRY_OUTPUTS_DIR"
      - head -c 20000000 /dev/urandom > ckpt.bin
      - chmod 0444 ckpt.bin
      - echo "sha ckpt.bin \$(sha256sum ckpt.bin | cut -d' ' -f1)"
      - mkdir -p sub/deeper
      - head -c 100000 /dev/urandom > sub/deeper/note.bin
      - chmod 0444 sub/deeper/note.bin
      - echo "sha sub/deeper/note.bin \$(sha256sum sub/deeper/note.bin | cut -d' ' -f1)"
      - echo marker-ckpt
      - echo '{"valohai.tags":["late"]}' > ckpt.bin.metadata.json
      - python3 "\$R/writer.py"
      - echo marker-writers
      - sleep 60
- step:
    name: fail
    image: none
    command:
      - head -c 3000000 /dev/urandom > "\$FERRY_OUTPUTS_DIR/kept.bin"
      - chmod 0444 "\$FERRY_OUTPUTS_DIR/kept.bin"
      - echo "sha kept.bin \$(sha256sum "\$FERRY_OUTPUTS_DIR/kept.bin" | cut -d' ' -f1)"
      - for i in \$(seq 300); do [ -e "$GATE/fail" ] && break; sleep 0.1; done
      - rm -f "\$FERRY_OUTPUTS_DIR/kept.bin"
      - exit 1
- step:
    name: lost
    image: none
    command:
      - head -c 3000000 /dev/urandom > "\$FERRY_OUTPUTS_DIR/lost.bin"
      - chmod 0444 "\$FERRY_OUTPUTS_DIR/lost.bin"
      - echo "sha lost.bin \$(sha256sum "\$FERRY_OUTPUTS_DIR/lost.bin" | cut -d' ' -f1)"
      - sleep 15
EOF
)
# Two writers: grow.bin written in chunks for a while and made read-only
# only once closed; held.bin made read-only at once while its writer goes
# on (the agent sees a read-only file that still changes). Each prints the
# sha256 of what it finally holds.
cat >"$proj/writer.py" <<'EOF'
import hashlib, os, time
out = os.environ["FERRY_OUTPUTS_DIR"]
chunk = os.urandom(65536)
g = open(os.path.join(out, "grow.bin"), "wb")
h = open(os.path.join(out, "held.bin"), "wb")
h.write(chunk)
h.flush()
os.chmod(os.path.join(out, "held.bin"), 0o444)
for i in range(40):
    g.write(chunk)
    g.flush()
    h.write(chunk)
    h.flush()
    time.sleep(0.02)
g.close()
h.close()
os.chmod(os.path.join(out, "grow.bin"), 0o444)
for name in ("grow.bin", "held.bin"):
    with open(os.path.join(out, name), "rb") as f:
        print("sha", name, hashlib.sha256(f.read()).hexdigest(), flush=True)
EOF

listed() { # listed ID: "name size sha256" per output, sorted
  "$FERRY" outputs "$1" --json 2>/dev/null | python3 -c '
import json, sys
for o in sorted(json.load(sys.stdin)["outputs"], key=lambda o: o["name"].encode()):
    print(o["name"], o["size"], o["sha256"])'
}
# The sha256 the command printed for NAME ("sha NAME HEX" in its log).
printed_sha() { "$FERRY" logs "$1" 2>/dev/null | sed -n "s|^sha $2 \([0-9a-f]*\)$|\1|p" | tail -n 1; }
await_log() { # await_log ID LINE SECONDS
  local deadline=$(($(now_ms) + $3 * 1000))
  until "$FERRY" logs "$1" 2>/dev/null | grep -qx -- "$2"; do
    [ "$(now_ms)" -ge "$deadline" ] && return 1
    sleep 0.05
  done
}
await_listed() { # await_listed ID NAME SECONDS: its "size sha256" once listed
  local deadline=$(($(now_ms) + $3 * 1000)) row=
  while :; do
    row=$(listed "$1" | awk -v n="$2" '$1 == n {print $2, $3}')
    if [ -n "$row" ] || [ "$(now_ms)" -ge "$deadline" ]; then break; fi
    sleep 0.05
  done
  echo "$row"
}
sha_of_file() { sha256sum "$1" | cut -d' ' -f1; }

# --- while it runs: the checkpoint and the sub-folder's file ---
id=$(run_id "$proj" ckpt)
await_log "$id" marker-ckpt 30 || fail "ckpt: the command did not print its marker"
want_ckpt=$(printed_sha "$id" ckpt.bin)
want_note=$(printed_sha "$id" sub/deeper/note.bin)
expect_eq "ckpt: stored live, with its sha256" "$(await_listed "$id" ckpt.bin 30)" \
  "20000000 $want_ckpt"
expect_eq "ckpt: a file in a new sub-folder, stored live" \
  "$(await_listed "$id" sub/deeper/note.bin 30)" "100000 $want_note"
expect_eq "ckpt: still running" "$(json_field "$id" 'e["status"]')" started

# Every listing while the writers write: never a content they did not end with.
seen=$WORK/seen
: >"$seen"
deadline=$(($(now_ms) + 30000))
until "$FERRY" logs "$id" 2>/dev/null | grep -qx marker-writers; do
  listed "$id" | grep -E '^(grow|held)\.bin ' >>"$seen" || true
  [ "$(now_ms)" -ge "$deadline" ] && break
  sleep 0.02
done
want_grow=$(printed_sha "$id" grow.bin)
want_held=$(printed_sha "$id" held.bin)
expect_eq "writers: both printed their sha256" "${#want_grow} ${#want_held}" "64 64"
expect_eq "held.bin (read-only while written): stored live once still" \
  "$(await_listed "$id" held.bin 30 | cut -d' ' -f2)" "$want_held"
expect_eq "grow.bin (read-only once closed): stored live" \
  "$(await_listed "$id" grow.bin 30 | cut -d' ' -f2)" "$want_grow"
listed "$id" | grep -E '^(grow|held)\.bin ' >>"$seen" || true
expect_eq "no partial content was ever listed" \
  "$(awk -v g="$want_grow" -v h="$want_held" \
    '($1 == "grow.bin" && $3 != g) || ($1 == "held.bin" && $3 != h)' "$seen")" ""
expect_eq "writers: still running" "$(json_field "$id" 'e["status"]')" started

"$FERRY" stop "$id" >/dev/null
rc=0
"$FERRY" wait "$id" --timeout 30 >/dev/null || rc=$?
expect_eq "ckpt: stopped" "$rc $(json_field "$id" 'e["status"]')" "2 stopped"
"$FERRY" outputs "$id" --download "$WORK/dl" >/dev/null
expect_eq "ckpt: downloads byte for byte" "$(sha_of_file "$WORK/dl/ckpt.bin")" "$want_ckpt"
expect_eq "sub-folder file: downloads byte for byte" \
  "$(sha_of_file "$WORK/dl/sub/deeper/note.bin")" "$want_note"
expect_eq "grow.bin: downloads whole" "$(sha_of_file "$WORK/dl/grow.bin")" "$want_grow"
expect_eq "held.bin: downloads whole" "$(sha_of_file "$WORK/dl/held.bin")" "$want_held"
expect_eq "ckpt: four outputs" "$(listed "$id" | wc -l)" 4
expect_eq "ckpt: its sidecar, written after it was stored live, applies at the end" \
  "$("$FERRY" outputs "$id" --json | python3 -c '
import json, sys
print([o["tags"] for o in json.load(sys.stdin)["outputs"] if o["name"] == "ckpt.bin"])')" "[['late']]"
# The final upload sent none of them again: all four were stored live.
final=$(grep "execution $id: .* outputs (.* bytes) uploaded" "$FERRYD_LOG" | tail -n 1)
expect_contains "ckpt: the final upload sent nothing again" "$final" "4 of 4 outputs (0 bytes)"
expect_eq "ckpt: one live store of the checkpoint" \
  "$(grep -c "execution $id: live output ckpt.bin stored" "$FERRYD_LOG")" 1
expect_contains "the agent watches with inotify" "$(cat "$FERRYD_LOG")" \
  "execution $id: watching outputs/ for live outputs with inotify"

# --- the command removes its checkpoint and fails: the stored copy stays ---
id=$(run_id "$proj" fail)
await_log "$id" "sha kept.bin .*" 30 2>/dev/null || true
want=$(await_listed "$id" kept.bin 30)
touch "$GATE/fail"
rc=0
"$FERRY" wait "$id" --timeout 30 >/dev/null || rc=$?
expect_eq "fail: status, exit code" "$rc $(json_field "$id" 'e["status"], e["exit_code"]')" "1 error 1"
expect_eq "fail: stored live with the printed sha256" "$(cut -d' ' -f2 <<<"$want")" \
  "$(printed_sha "$id" kept.bin)"
expect_eq "fail: kept after the file was removed and the run failed" \
  "$(listed "$id" | cut -d' ' -f1,2)" "kept.bin 3000000"
"$FERRY" outputs "$id" --download "$WORK/dl-fail" >/dev/null
expect_eq "fail: downloads byte for byte" "$(sha_of_file "$WORK/dl-fail/kept.bin")" \
  "$(printed_sha "$id" kept.bin)"

# --- the worker is lost: what was stored live stays ---
id=$(run_id "$proj" lost)
want=$(await_listed "$id" lost.bin 30)
expect_eq "lost: stored live with the printed sha256" "$(cut -d' ' -f2 <<<"$want")" \
  "$(printed_sha "$id" lost.bin)"
agent=$(pgrep -f -- "ferry-agent.*--work-dir $DATA/" | head -n 1 || true)
if [ -n "$agent" ]; then
  kill -STOP "$agent"
  expect_eq "lost: the execution ends with its worker" "$(await_status "$id" error 30)" error
  expect_contains "lost: why" "$(json_field "$id" 'e["status_reason"]')" "lost"
  kill -KILL "$agent" 2>/dev/null || true
  expect_eq "lost: the live output is kept" "$(listed "$id" | cut -d' ' -f1,2)" "lost.bin 3000000"
  "$FERRY" outputs "$id" --download "$WORK/dl-lost" >/dev/null
  expect_eq "lost: downloads byte for byte" "$(sha_of_file "$WORK/dl-lost/lost.bin")" \
    "$(cut -d' ' -f2 <<<"$want")"
else
  fail "lost: no ferry-agent process found under $DATA"
fi

finish
