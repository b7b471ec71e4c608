#!/usr/bin/env bash
# ferry run / show / list / wait / logs against a real ferryd with local
# agents: --watch splits the streams and exits 0; the created line, --json,
# per-project counters, the execution object's fields, uuid and counter IDs,
# list filters, the status history, -p, --tag, --adhoc, .gitignore, a large
# project, and a rerun that uploads nothing.
. "$(dirname "$0")/lib.sh"

ferryd_start

proj=$(make_project basic <<'EOF'
- step:
    name: talk
    image: busybox
    command:
      - echo out-1
      - echo err-1 >&2
      - echo out-2
      - echo err-2 >&2
- step:
    name: count
    image: busybox
    command: echo "counting to {parameter-value:n}" {parameters}
    parameters:
      - name: n
        type: integer
        default: 3
- step:
    name: fail
    image: busybox
    command: exit 4
- step:
    name: ls
    image: busybox
    command: ls -a
EOF
)

# --- --watch: stdout to stdout, stderr to stderr, exit status 0 ---
rc=0
(cd "$proj" && "$FERRY" run talk --watch >"$WORK/watch.out" 2>"$WORK/watch.err") || rc=$?
expect_eq "run --watch exit status" "$rc" 0
err=$(cat "$WORK/watch.err")
expect_eq "run --watch stdout" "$(grep -E '^(out|err)-' "$WORK/watch.out" | tr '\n' ' ')" "out-1 out-2 "
expect_eq "run --watch stderr" "$(grep -E '^(out|err)-' "$WORK/watch.err" | tr '\n' ' ')" "err-1 err-2 "
expect_contains "run --watch prints the outcome" "$err" ": complete"
expect_contains "run --watch stdout starts with the created line" "$(head -n 1 "$WORK/watch.out")" \
  "Execution #1 ("

# --- --watch of a failing step: exit status 1 ---
rc=0
(cd "$proj" && "$FERRY" run fail --watch >/dev/null 2>&1) || rc=$?
expect_eq "run --watch of a failing step" "$rc" 1

# --- plain run: "Execution #N (uuid) created" ---
line=$(cd "$proj" && "$FERRY" run talk)
if [[ "$line" =~ ^Execution\ \#3\ \(([0-9a-f-]{36})\)\ created ]]; then
  pass
  id3=${BASH_REMATCH[1]}
else
  fail "plain run printed '$line'"
  id3=3
fi

# --- --json: the execution object ---
(cd "$proj" && "$FERRY" run count -p n=7 --tag first --tag second --json) >"$WORK/run4.json"
read -r id4 counter4 step4 project4 cmd4 <<<"$(python3 -c '
import json, sys
e = json.load(open(sys.argv[1]))
print(e["id"], e["counter"], e["step"], e["project"], e["command"].replace(" ", "_"))
' "$WORK/run4.json")"
expect_eq "run --json counter" "$counter4" 4
expect_eq "run --json step" "$step4" count
expect_eq "run --json project (the folder's name)" "$project4" basic
# -p NAME=VALUE changes the command that ferryd builds.
expect_eq "run -p: built command" "$cmd4" 'echo_"counting_to_7"_--n=7'

# --- another project counts from 1 ---
other=$(make_project other <<'EOF'
- step:
    name: hi
    image: busybox
    command: echo "hi from $(basename "$PWD")"; cat marker.txt
EOF
)
echo "other-marker" >"$other/marker.txt"
# Run it with --adhoc from a folder without a step file.
mkdir -p "$WORK/elsewhere"
id_other=$(cd "$WORK/elsewhere" && "$FERRY" run hi --adhoc "$other" --json |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
expect_eq "other project's first counter" "$(json_field "$id_other" 'e["counter"]')" 1
expect_eq "--adhoc DIR: project named after DIR" "$(json_field "$id_other" 'e["project"]')" other

# --- ferry wait: prints the status, exit status 0 ---
for id in "$id3" "$id4" "$id_other"; do
  rc=0
  w=$("$FERRY" wait "$id" --timeout 30) || rc=$?
  expect_eq "wait $id exit status" "$rc" 0
  expect_contains "wait $id prints the status" "$w" "($id): complete"
done
expect_contains "wait by counter" "$("$FERRY" wait 4 --timeout 30)" "($id4): complete"
expect_contains "--adhoc DIR ran DIR's files" "$("$FERRY" logs "$id_other" 2>/dev/null)" "other-marker"
expect_contains "execution 4 ran with -p n=7" "$("$FERRY" logs "$id4" 2>/dev/null)" "counting to 7 --n=7"

# --- show --json: every field, by uuid and by counter ---
"$FERRY" show "$id4" --json >"$WORK/show4.json"
missing=$(python3 -c '
import json, sys
e = json.load(open(sys.argv[1]))
need = ["id", "counter", "step", "status", "status_reason", "exit_code", "parameters",
        "created_at", "queued_at", "started_at", "ended_at", "metadata", "outputs"]
print(" ".join(k for k in need if k not in e))
' "$WORK/show4.json")
expect_eq "show --json: missing fields" "$missing" ""
expect_eq "show --json values" "$(python3 -c '
import json, sys
e = json.load(open(sys.argv[1]))
print(e["id"] == sys.argv[2], e["counter"], e["step"], e["status"], e["status_reason"],
      e["exit_code"], e["parameters"], e["tags"], type(e["metadata"]).__name__,
      e["outputs"], all(e[k] for k in ["created_at", "queued_at", "started_at", "ended_at"]))
' "$WORK/show4.json" "$id4")" "True 4 count complete None 0 {'n': 7} ['first', 'second'] dict [] True"
# The same execution by counter (unique across projects) and with --project.
expect_eq "show by counter" "$(json_field 4 'e["id"]')" "$id4"
expect_eq "show by #counter" "$(json_field '#4' 'e["id"]')" "$id4"
expect_eq "show 1 --project other" \
  "$("$FERRY" show 1 --project other --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')" \
  "$id_other"
# Counter 1 exists in two projects: ambiguous without --project.
rc=0
amb=$("$FERRY" show 1 2>&1) || rc=$?
expect_eq "show of an ambiguous counter: exit status" "$rc" 5
expect_contains "show of an ambiguous counter: message" "$amb" "project"
# The plain page names the tags and the status.
page=$("$FERRY" show "$id4")
expect_contains "show page: status" "$page" "complete"
expect_contains "show page: tag" "$page" "second"

# --- counters 1..4 in project basic ---
expect_eq "basic's counters, newest first" "$("$FERRY" list --project basic --json | python3 -c '
import json, sys
print(" ".join(str(e["counter"]) for e in json.load(sys.stdin)["executions"]))')" "4 3 2 1"

# --- list: table, --json (newest first), --status ---
table=$("$FERRY" list)
expect_contains "list table heading" "$(head -n 1 <<<"$table")" "STATUS"
expect_eq "list table rows" "$(($(wc -l <<<"$table") - 1))" 5
expect_eq "list --json: all, newest first" "$("$FERRY" list --json | python3 -c '
import json, sys
print(" ".join(e["project"] + str(e["counter"]) for e in json.load(sys.stdin)["executions"]))')" \
  "other1 basic4 basic3 basic2 basic1"
expect_eq "list --status error --json" "$("$FERRY" list --status error --json | python3 -c '
import json, sys
print(" ".join(e["project"] + str(e["counter"]) + ":" + e["status"] for e in json.load(sys.stdin)["executions"]))')" \
  "basic2:error"
expect_eq "list --status complete: rows" "$(("$("$FERRY" list --status complete | wc -l)" - 1))" 4
expect_eq "list --status started: none" "$("$FERRY" list --status started --json | python3 -c '
import json, sys; print(len(json.load(sys.stdin)["executions"]))')" 0

# --- the status history, in order, in the log ---
statuses() { "$FERRY" logs "$1" 2>&1 >/dev/null | sed -n 's/^--- status: \([a-z]*\).*/\1/p' | tr '\n' ' '; }
expect_eq "status history of a complete execution" "$(statuses "$id4")" "created queued started complete "
expect_eq "status history of a failed execution" "$(statuses 2)" "created queued started error "

# --- .gitignore'd files and .git/ stay out of the snapshot ---
ign=$WORK/ignored
mkdir -p "$ign/cache" "$ign/.git" "$ign/keep"
cp "$proj/ferry.yaml" "$ign/"
printf 'secret.txt\ncache/\n*.tmp\n' >"$ign/.gitignore"
echo s >"$ign/secret.txt"
echo c >"$ign/cache/c.bin"
echo t >"$ign/scratch.tmp"
echo k >"$ign/keep/kept.txt"
echo v >"$ign/visible.txt"
echo g >"$ign/.git/HEAD"
id_ign=$(run_id "$ign" ls)
"$FERRY" wait "$id_ign" --timeout 30 >/dev/null
listing=$("$FERRY" logs "$id_ign" 2>/dev/null | tr '\n' ' ')
expect_contains "snapshot has ferry.yaml" "$listing" "ferry.yaml"
expect_contains "snapshot has visible.txt" "$listing" "visible.txt"
expect_contains "snapshot has keep/" "$listing" "keep"
expect_not_contains "snapshot lacks secret.txt" "$listing" "secret.txt"
expect_not_contains "snapshot lacks cache/" "$listing" "cache"
expect_not_contains "snapshot lacks *.tmp" "$listing" "scratch.tmp"
expect_not_contains "snapshot lacks .git/" "$listing" ".git "

# --- a large project (3 MiB of random bytes) uploads and runs ---
big=$(make_project big <<'EOF'
- step:
    name: sum
    image: busybox
    command: sha256sum data.bin
EOF
)
head -c 3145728 /dev/urandom >"$big/data.bin"
want_sum=$(sha256sum "$big/data.bin" | cut -d' ' -f1)
id_big=$(run_id "$big" sum)
"$FERRY" wait "$id_big" --timeout 30 >/dev/null || true
expect_eq "large project: status" "$(json_field "$id_big" 'e["status"]')" complete
expect_contains "large project: data.bin arrived intact" "$("$FERRY" logs "$id_big" 2>/dev/null)" "$want_sum"

# --- a rerun of an unchanged folder uploads nothing ---
sha=$(json_field "$id_big" 'e["snapshot"]')
head_status() { curl -s -o /dev/null -w '%{http_code}' -I "$FERRY_SERVER/v1/snapshots/$1"; }
expect_eq "HEAD of the stored snapshot" "$(head_status "$sha")" 200
expect_eq "HEAD of an unknown snapshot" "$(head_status "$(printf '0%.0s' {1..64})")" 404
stored=$DATA/store/snapshots/$sha.tar.gz
before=$(stat -c '%i %y' "$stored" 2>/dev/null || echo missing)
sleep 0.05
id_big2=$(run_id "$big" sum)
expect_eq "rerun: same snapshot" "$(json_field "$id_big2" 'e["snapshot"]')" "$sha"
expect_eq "rerun: the stored snapshot was not written again" \
  "$(stat -c '%i %y' "$stored" 2>/dev/null || echo missing)" "$before"
"$FERRY" wait "$id_big2" --timeout 30 >/dev/null || true
expect_eq "rerun: status" "$(json_field "$id_big2" 'e["status"]')" complete
# The method can tell: an upload of the same bytes does rewrite the file.
sleep 0.05
curl -s -o /dev/null -X POST -H 'Content-Type: application/gzip' --data-binary "@$stored" \
  "$FERRY_SERVER/v1/snapshots"
after=$(stat -c '%i %y' "$stored" 2>/dev/null || echo missing)
if [ "$after" != "$before" ]; then pass; else fail "an upload did not change $stored: the rerun check proves nothing"; fi

finish
