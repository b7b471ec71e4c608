#!/usr/bin/env bash
# Schema upgrade (issue 16, #5): the previous release of ferry
# (tests/upgrade/previous-release), built from this repository's git
# history, runs executions on a fresh data folder (numbered log lines,
# outputs, parameters, one that fails); this build's ferryd, started on the
# same folder, upgrades it in place: every execution keeps its status, its
# log lines (counted) and its outputs (sha256), a backup of the database is
# made when there are migrations to run, and a new execution runs. Then a
# folder of a newer ferryd (user_version beyond this build's) and a ferry.db
# that is no database are refused: ferryd exits non-zero, says why, and the
# folder stays byte for byte as it was.
. "$(dirname "$0")/lib.sh"

sha=$(grep -v '^#' "$FERRY_SOURCE_DIR/tests/upgrade/previous-release" | head -n 1 | tr -d '[:space:]')
if ! prev=$(bash "$FERRY_SOURCE_DIR/tests/upgrade/build-previous.sh" "$FERRY_SOURCE_DIR" "$sha"); then
  fail "the previous release ($sha) could not be built"
  finish
  exit 1
fi
OLD_FERRY=$prev/bin/ferry

# user_version of a database file, read without touching it (immutable: no
# lock, no -shm, no -wal).
user_version() {
  python3 -c 'import sqlite3, sys, urllib.parse
db = sqlite3.connect("file:%s?immutable=1" % urllib.parse.quote(sys.argv[1]), uri=True)
print(db.execute("PRAGMA user_version").fetchone()[0])' "$1"
}
# name size sha256 of every file under a folder, sorted: equal listings are
# equal folders.
folder_sums() {
  (cd "$1" && find . -type f | LC_ALL=C sort | while IFS= read -r f; do
    echo "$f $(stat -c %s "$f") $(sha256sum "$f" | cut -d' ' -f1)"
  done)
}
# The numbered lines "line K" of a log, as "1 2 ... N" when all are there once, in order.
numbered() { # reads a log on stdin
  grep -E '^line [0-9]+$' | sed 's/^line //' | tr '\n' ' ' | sed 's/ $//'
}

proj=$(make_project upgrade <<'EOF'
- step:
    name: count
    image: busybox
    command:
      - for i in $(seq 1 {parameter-value:n}); do echo "line $i"; done
      - echo "to stderr" >&2
      - mkdir -p "$FERRY_OUTPUTS_DIR/sub"
      - cp blob.bin "$FERRY_OUTPUTS_DIR/sub/blob.bin"
      - echo "n={parameter-value:n}" > "$FERRY_OUTPUTS_DIR/model.txt"
    parameters:
      - name: n
        type: integer
        default: 3
- step:
    name: fail
    image: busybox
    command:
      - for i in $(seq 1 7); do echo "line $i"; done
      - echo "partial" > "$FERRY_OUTPUTS_DIR/partial.txt"
      - exit 3
EOF
)
head -c 300000 /dev/urandom >"$proj/blob.bin"

# --- the previous release writes the folder ---
BIN=$prev/bin FERRYD_KEEP_WORKERS=1 ferryd_start
declare -A lines=()
ids=()
old_run() { # old_run N ARGS...: an execution with N numbered lines, waited for
  local n=$1 id
  shift
  id=$(cd "$proj" && "$OLD_FERRY" run "$@" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
  "$OLD_FERRY" wait "$id" --timeout 60 >/dev/null || true
  lines[$id]=$n
  ids+=("$id")
}
old_run 3 count
old_run 200 count -p n=200
old_run 7 fail
old_run 1000 count -p n=1000
# What the previous release says of each: status, exit code, parameters,
# counter; its outputs by name, size and sha256, and their bytes.
describe() { # describe FERRY ID
  "$1" show "$2" --json | python3 -c 'import json,sys; e=json.load(sys.stdin)
print(e["counter"], e["step"], e["status"], e.get("exit_code"), json.dumps(e["parameters"], sort_keys=True))'
}
outputs_of() { # outputs_of FERRY ID
  "$1" outputs "$2" --json | python3 -c 'import json,sys
for o in sorted(json.load(sys.stdin)["outputs"], key=lambda o: o["name"]): print(o["name"], o["size"], o["sha256"])'
}
declare -A before_show=() before_outputs=() before_files=()
for id in "${ids[@]}"; do
  before_show[$id]=$(describe "$OLD_FERRY" "$id")
  before_outputs[$id]=$(outputs_of "$OLD_FERRY" "$id")
  "$OLD_FERRY" outputs "$id" --download "$WORK/old-dl/$id" >/dev/null
  before_files[$id]=$(folder_sums "$WORK/old-dl/$id")
  expect_eq "previous release: log of $id" "$("$OLD_FERRY" logs "$id" 2>/dev/null | numbered)" "$(seq -s ' ' 1 "${lines[$id]}")"
done
expect_eq "previous release: the statuses" \
  "$(for id in "${ids[@]}"; do cut -d' ' -f3,4 <<<"${before_show[$id]}"; done | tr '\n' ' ')" \
  "complete 0 complete 0 error 3 complete 0 "
expect_contains "previous release: outputs" "${before_outputs[${ids[1]}]}" "sub/blob.bin 300000 $(sha256sum "$proj/blob.bin" | cut -d' ' -f1)"
ferryd_stop
old_version=$(user_version "$DATA/ferry.db")

# --- this build's ferryd on the same folder ---
ferryd_start
for id in "${ids[@]}"; do
  expect_eq "upgraded: $id's counter, step, status, exit code, parameters" \
    "$(describe "$FERRY" "$id")" "${before_show[$id]}"
  expect_eq "upgraded: $id's log lines, each once, in order" \
    "$("$FERRY" logs "$id" 2>/dev/null | numbered)" "$(seq -s ' ' 1 "${lines[$id]}")"
  expect_eq "upgraded: $id's outputs listed" "$(outputs_of "$FERRY" "$id")" "${before_outputs[$id]}"
  "$FERRY" outputs "$id" --download "$WORK/new-dl/$id" >/dev/null
  expect_eq "upgraded: $id's outputs downloaded (sha256)" "$(folder_sums "$WORK/new-dl/$id")" "${before_files[$id]}"
done
new_id=$(run_id "$proj" count -p n=40)
rc=0
"$FERRY" wait "$new_id" --timeout 60 >/dev/null || rc=$?
expect_eq "a new execution after the upgrade" "$rc" 0
expect_eq "its counter follows the old ones" "$(json_field "$new_id" 'e["counter"]')" 5
expect_eq "its log" "$("$FERRY" logs "$new_id" 2>/dev/null | numbered)" "$(seq -s ' ' 1 40)"
ferryd_stop
new_version=$(user_version "$DATA/ferry.db")
log=$(cat "$FERRYD_LOG")
if [ "$new_version" -gt "$old_version" ]; then
  for ((v = old_version; v < new_version; v++)); do
    expect_eq "migration $v -> $((v + 1)) logged once" \
      "$(grep -c "schema migrated from version $v to $((v + 1))\$" <<<"$log")" 1
  done
  expect_eq "the backup is of version $old_version" "$(user_version "$DATA/ferry.db.bak-v$old_version")" "$old_version"
else
  expect_eq "same schema ($old_version): nothing migrated" "$(grep -c 'schema migrated' <<<"$log")" 0
  expect_eq "same schema: no backup" "$(ls "$DATA" | grep -c '\.bak-v')" 0
fi

# --- a folder of a newer ferryd: refused, untouched ---
newer=$((new_version + 5))
python3 -c 'import sqlite3, sys
db = sqlite3.connect(sys.argv[1]); db.execute("PRAGMA user_version = %d" % int(sys.argv[2])); db.commit(); db.close()' \
  "$DATA/ferry.db" "$newer"
sums_before=$(folder_sums "$DATA")
tree_before=$(cd "$DATA" && find . | LC_ALL=C sort)
rc=0
timeout 20 "$BIN/ferryd" --data-dir "$DATA" --listen 127.0.0.1:0 >"$WORK/newer.out" 2>&1 || rc=$?
expect_eq "newer folder: ferryd exits with status 1" "$rc" 1
expect_contains "newer folder: the message" "$(cat "$WORK/newer.out")" \
  "$DATA/ferry.db: written by a newer ferryd (schema $newer; this ferryd knows up to $new_version); refusing to start, the folder is left as it is"
expect_eq "newer folder: every file byte for byte as it was" "$(folder_sums "$DATA")" "$sums_before"
expect_eq "newer folder: no file or folder added or removed" "$(cd "$DATA" && find . | LC_ALL=C sort)" "$tree_before"

# --- a ferry.db that is no database ---
junk=$WORK/junk
mkdir -p "$junk"
head -c 8192 /dev/urandom >"$junk/ferry.db"
sums_before=$(folder_sums "$junk")
rc=0
timeout 20 "$BIN/ferryd" --data-dir "$junk" --listen 127.0.0.1:0 >"$WORK/junk.out" 2>&1 || rc=$?
expect_eq "not a database: ferryd exits with status 1" "$rc" 1
expect_contains "not a database: the message" "$(cat "$WORK/junk.out")" "$junk/ferry.db: not a SQLite database"
expect_eq "not a database: the folder as it was" "$(folder_sums "$junk")" "$sums_before"

finish
