#!/usr/bin/env bash
# Outputs: every file under outputs/ (subfolders, a 2 MiB binary, an empty
# file, a name with spaces) is listed with its size and sha256 and downloads
# byte for byte; outputs are kept after an error exit and after a stop; an
# empty outputs folder gives an empty list.
. "$(dirname "$0")/lib.sh"

ferryd_start

proj=$(make_project outs <<'EOF'
- step:
    name: write
    image: busybox
    command:
      - mkdir -p "$FERRY_OUTPUTS_DIR/sub/deep"
      - cp random.bin "$FERRY_OUTPUTS_DIR/sub/deep/random.bin"
      - echo "model v1" > "$FERRY_OUTPUTS_DIR/model.txt"
      - printf 'a,b\n1,2\n' > "$FERRY_OUTPUTS_DIR/sub/table.csv"
      - ': > "$FERRY_OUTPUTS_DIR/empty.txt"'
      - echo spaced > "$FERRY_OUTPUTS_DIR/sub/with space.txt"
- step:
    name: crash
    image: busybox
    command:
      - echo "written before the crash" > "$FERRY_OUTPUTS_DIR/partial.txt"
      - exit 3
- step:
    name: linger
    image: busybox
    command:
      - mkdir -p "$FERRY_OUTPUTS_DIR/ckpt"
      - echo "checkpoint 1" > "$FERRY_OUTPUTS_DIR/ckpt/step1.txt"
      - echo ready
      - sleep 30
- step:
    name: nothing
    image: busybox
    command: echo "no outputs here"
EOF
)
head -c 2097152 /dev/urandom >"$proj/random.bin"

# What the files must be, made here the same way.
want=$WORK/want
mkdir -p "$want/sub/deep"
cp "$proj/random.bin" "$want/sub/deep/random.bin"
echo "model v1" >"$want/model.txt"
printf 'a,b\n1,2\n' >"$want/sub/table.csv"
: >"$want/empty.txt"
echo spaced >"$want/sub/with space.txt"
want_list=$(cd "$want" && find . -type f | sed 's|^\./||' | LC_ALL=C sort | while IFS= read -r f; do
  echo "$f $(stat -c %s "$f") $(sha256sum "$f" | cut -d' ' -f1)"
done)

# --- a complete execution: list, sizes, sha256, download ---
id=$(run_id "$proj" write)
rc=0
"$FERRY" wait "$id" --timeout 30 >/dev/null || rc=$?
expect_eq "write: wait" "$rc" 0
listed() { # name size sha256 per line, sorted by name, from `ferry outputs ID --json`
  "$FERRY" outputs "$1" --json | python3 -c '
import json, sys
for o in sorted(json.load(sys.stdin)["outputs"], key=lambda o: o["name"].encode()):
    print(o["name"], o["size"], o["sha256"])'
}
expect_eq "outputs --json: names, sizes, sha256" "$(listed "$id")" "$want_list"
expect_eq "show --json outputs match outputs --json" \
  "$(json_field "$id" '"\n".join("%s %s %s" % (o["name"], o["size"], o["sha256"]) for o in sorted(e["outputs"], key=lambda o: o["name"].encode()))')" \
  "$want_list"
table=$("$FERRY" outputs "$id")
expect_contains "outputs table: heading" "$(head -n 1 <<<"$table")" "SHA256"
expect_contains "outputs table: nested binary" "$table" "sub/deep/random.bin"
expect_contains "outputs table: its size" "$table" "2.0 MiB"
expect_contains "outputs table: its sha256" "$table" "$(sha256sum "$want/sub/deep/random.bin" | cut -d' ' -f1)"
expect_eq "outputs table: one row per file" "$(($(wc -l <<<"$table") - 1))" 5

dl=$WORK/dl
rc=0
"$FERRY" outputs "$id" --download "$dl" >"$WORK/dl.txt" || rc=$?
expect_eq "outputs --download: exit status" "$rc" 0
if diff -r "$want" "$dl" >"$WORK/dl.diff" 2>&1; then pass; else fail "download differs: $(head -c 400 "$WORK/dl.diff")"; fi
if cmp -s "$proj/random.bin" "$dl/sub/deep/random.bin"; then pass; else fail "random.bin differs"; fi
expect_eq "download leaves no part files" "$(find "$dl" -name '*.ferry-part' | wc -l)" 0
# One output over the API, by name.
expect_eq "GET outputs/sub/table.csv" "$(curl -sf "$FERRY_SERVER/v1/executions/$id/outputs/sub/table.csv")" \
  "$(cat "$want/sub/table.csv")"
expect_eq "GET an unknown output: 404" \
  "$(curl -s -o /dev/null -w '%{http_code}' "$FERRY_SERVER/v1/executions/$id/outputs/nope.txt")" 404

# --- kept after an error exit ---
id=$(run_id "$proj" crash)
rc=0
"$FERRY" wait "$id" --timeout 30 >/dev/null || rc=$?
expect_eq "crash: wait exit status" "$rc" 1
expect_eq "crash: status and exit code" "$(json_field "$id" 'e["status"], e["exit_code"]')" "error 3"
expect_eq "crash: outputs" "$(listed "$id" | cut -d' ' -f1,2)" "partial.txt 25"
"$FERRY" outputs "$id" --download "$WORK/dl-crash" >/dev/null
expect_eq "crash: downloaded file" "$(cat "$WORK/dl-crash/partial.txt" 2>/dev/null)" "written before the crash"

# --- kept after a stop ---
id=$(run_id "$proj" linger)
ready=no
for _ in $(seq 200); do
  if "$FERRY" logs "$id" 2>/dev/null | grep -qx ready; then ready=yes; break; fi
  sleep 0.05
done
expect_eq "linger: printed ready" "$ready" yes
"$FERRY" stop "$id" >/dev/null
rc=0
"$FERRY" wait "$id" --timeout 30 >/dev/null || rc=$?
expect_eq "linger: wait exit status after a stop" "$rc" 2
expect_eq "linger: status" "$(json_field "$id" 'e["status"]')" stopped
expect_eq "linger: outputs" "$(listed "$id" | cut -d' ' -f1,2)" "ckpt/step1.txt 13"
"$FERRY" outputs "$id" --download "$WORK/dl-stop" >/dev/null
expect_eq "linger: downloaded file" "$(cat "$WORK/dl-stop/ckpt/step1.txt" 2>/dev/null)" "checkpoint 1"

# --- no outputs: an empty list ---
id=$(run_id "$proj" nothing)
"$FERRY" wait "$id" --timeout 30 >/dev/null
expect_eq "nothing: outputs --json" "$("$FERRY" outputs "$id" --json | python3 -c '
import json, sys; print(json.load(sys.stdin))')" "{'outputs': []}"
expect_eq "nothing: show --json outputs" "$(json_field "$id" 'e["outputs"]')" "[]"
expect_eq "nothing: table has only its heading" "$("$FERRY" outputs "$id" | wc -l)" 1
rc=0
"$FERRY" outputs "$id" --download "$WORK/dl-none" >/dev/null || rc=$?
expect_eq "nothing: download exit status" "$rc" 0
expect_eq "nothing: download wrote no files" "$(find "$WORK/dl-none" -type f 2>/dev/null | wc -l)" 0

finish
