#!/usr/bin/env bash
# Issue 19, point 6: `ferry rerun ID` makes a new execution of what ID ran:
# the same step, snapshot (not the folder as it is now), parameters and
# inputs as resolved, environment and variables, with -p, -e and --title
# overrides; a bad override is refused naming it; a user cannot rerun
# another user's execution, an admin can, and the copy is the caller's.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

sha256_of() { printf %s "$1" | sha256sum | cut -d' ' -f1; }
T_ALICE="alice-$$-$RANDOM"
T_BOB="bob-$$-$RANDOM"
T_ROOT="root-$$-$RANDOM"
mkdir -p "$WORK/data"
echo "dataset v1" >"$WORK/data/d.txt"
cat >"$WORK/ferryd.conf" <<CONF_END
users = ( { name = "alice"; token_sha256 = "$(sha256_of "$T_ALICE")"; },
          { name = "bob"; token_sha256 = "$(sha256_of "$T_BOB")"; },
          { name = "root"; token_sha256 = "$(sha256_of "$T_ROOT")"; admin = true; } );
environments = ( { name = "local"; compute = "local"; max_workers = 2; },
                 { name = "other"; compute = "local"; max_workers = 1; } );
default_environment = "local";
CONF_END
ferryd_start -c "$WORK/ferryd.conf"
export FERRY_TOKEN=$T_ALICE

proj=$WORK/rr
mkdir -p "$proj"
cat >"$proj/ferry.yaml" <<YAML_END
- step:
    name: train
    image: none
    command:
      - echo "code \$(cat version.txt) epochs={parameter-value:epochs} lr={parameter-value:lr}"
      - echo "input \$(cat \$FERRY_INPUTS_DIR/data/d.txt) var=\$MY_VAR"
    parameters:
      - {name: epochs, type: integer, default: 3}
      - {name: lr, type: float, default: 0.1}
    inputs:
      - {name: data, default: "file://$WORK/data/d.txt"}
YAML_END
echo "v1" >"$proj/version.txt"

wait_log() { # wait_log ID: waits, sets LOG
  "$FERRY" wait "$1" --timeout 60 >/dev/null 2>&1 || true
  LOG=$("$FERRY" logs "$1" 2>&1 || true)
}
field() { json_field "$1" "$2"; }

first=$(cd "$proj" && "$FERRY" run train -p epochs=4 --var MY_VAR=given --title first --json |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
wait_log "$first"
expect_contains "first: ran" "$LOG" "code v1 epochs=4 lr=0.1"

# The folder changes; the rerun runs the first one's snapshot all the same.
echo "v2" >"$proj/version.txt"
echo "dataset v2" >"$WORK/data/d.txt"
out=$(cd "$proj" && "$FERRY" rerun "$first" --json)
again=$(echo "$out" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
wait_log "$again"
expect_contains "rerun: the same code and parameters" "$LOG" "code v1 epochs=4 lr=0.1"
expect_contains "rerun: the same variables" "$LOG" "var=given"
expect_eq "rerun: the same snapshot" "$(field "$again" 'e["snapshot"]')" "$(field "$first" 'e["snapshot"]')"
expect_eq "rerun: the same inputs" "$(field "$again" 'json.dumps(e["inputs"])')" "$(field "$first" 'json.dumps(e["inputs"])')"
expect_eq "rerun: the same title" "$(field "$again" 'e["title"]')" first
expect_eq "rerun: complete" "$(field "$again" 'e["status"]')" complete

# Overrides: a parameter, the environment, the title; by counter in the folder.
counter=$(field "$first" 'e["counter"]')
out=$(cd "$proj" && "$FERRY" rerun "$counter" -p epochs=9 -p lr=0.5 -e other --title tuned --json)
tuned=$(echo "$out" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
wait_log "$tuned"
expect_contains "rerun -p: the new values" "$LOG" "code v1 epochs=9 lr=0.5"
expect_eq "rerun -e: the environment" "$(field "$tuned" 'e["environment"]')" other
expect_eq "rerun --title" "$(field "$tuned" 'e["title"]')" tuned
out=$("$FERRY" rerun "$first" --watch 2>&1)
expect_contains "rerun --watch follows the log" "$out" "code v1 epochs=4"

# Bad overrides are refused, naming what is wrong.
rc=0; out=$("$FERRY" rerun "$first" -p epochs=many 2>&1) || rc=$?
expect_eq "rerun -p epochs=many: refused" "$rc" 5
expect_contains "rerun -p epochs=many: names it" "$out" "parameter 'epochs': many is not an integer"
rc=0; out=$("$FERRY" rerun "$first" -p nope=1 2>&1) || rc=$?
expect_contains "rerun -p nope=1: unknown parameter" "$out" "unknown parameter 'nope'"
rc=0; out=$("$FERRY" rerun "$first" -e nowhere 2>&1) || rc=$?
expect_contains "rerun -e nowhere: unknown environment" "$out" "unknown environment 'nowhere'"
rc=0; out=$("$FERRY" rerun "$first" -p broken 2>&1) || rc=$?
expect_eq "rerun -p without =: usage error" "$rc" 2

# Users: bob cannot see alice's execution; root can rerun it, and owns the copy.
rc=0; out=$(FERRY_TOKEN=$T_BOB "$FERRY" rerun "$first" 2>&1) || rc=$?
expect_eq "bob: alice's execution is not found" "$rc" 5
expect_contains "bob: no execution" "$out" "no execution"
byroot=$(FERRY_TOKEN=$T_ROOT "$FERRY" rerun "$first" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
expect_eq "root: the copy is root's" "$(FERRY_TOKEN=$T_ROOT "$FERRY" show "$byroot" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["owner"])')" root
FERRY_TOKEN=$T_ROOT "$FERRY" wait "$byroot" --timeout 60 >/dev/null 2>&1 || true
finish
