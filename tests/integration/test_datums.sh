#!/usr/bin/env bash
# Issue 19, points 1-3: datums, aliases, lineage, under local-process.
#  - every output has a datum:// URI (ferry outputs, --json, GET .../outputs);
#  - a chain of three executions passes a model along, by datum and by
#    alias (ferry alias set), the last through a step default datum://ALIAS;
#    each reads the bytes its producer wrote; the log and inputs.json show
#    the datum:// URI; the second read of a datum on the worker comes from
#    its input cache;
#  - an alias moved (by an output's ferry.alias sidecar, then by Valohai's
#    valohai.alias): a copy of an execution made from its recorded inputs
#    still gets the old file, a new run the new one; ferry alias history;
#  - ferry show lists each input's datum and producer; ferry datum show
#    (and --json, and GET /v1/datums/ALIAS) its producer and consumers;
#  - bad input: an unknown datum or alias, alias names that break the rule,
#    an alias set to a datum that does not exist, a .metadata.json that is
#    not JSON (the output is kept, with its datum);
#  - users: bob can neither use nor see alice's datum or the alias that
#    points at it; an admin can.
# `test_datums.sh s3` runs the chain on the s3-storage store of
# tests/services (s3rver) instead: presigned URLs, no keys on the worker.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib_sched.sh"

MODE=${1:-local}
T_ALICE="alice-$$-$RANDOM"
T_BOB="bob-$$-$RANDOM"
T_ROOT="root-$$-$RANDOM"
STORE=
if [ "$MODE" = s3 ]; then
  EP=${FERRY_TEST_S3_ENDPOINT:-}
  BUCKET=${FERRY_TEST_S3_BUCKET:-ferry-test}
  if [ -z "$EP" ] || ! curl -s -o /dev/null --max-time 3 "$EP/"; then
    echo "FAIL: s3rver is not running (FERRY_TEST_S3_ENDPOINT='$EP'): start the test services" \
      "with tests/services/all.sh start" >&2
    exit 1
  fi
  SECRET="ferry-secret-$$-$RANDOM$RANDOM"
  export AWS_ACCESS_KEY_ID=${FERRY_TEST_S3_ACCESS_KEY_ID:-S3RVER} AWS_SECRET_ACCESS_KEY=$SECRET
  export AWS_DEFAULT_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
  PREFIX="test-datums-$$-$RANDOM/"
  STORE="store = { plugin = \"s3-storage\"; bucket = \"$BUCKET\"; prefix = \"$PREFIX\"; endpoint = \"$EP\"; };"
  s3_cleanup() {
    [ -x /usr/bin/aws ] && AWS_CONFIG_FILE=/dev/null /usr/bin/aws --endpoint-url "$EP" s3 rm \
      --quiet --recursive "s3://$BUCKET/$PREFIX" >/dev/null 2>&1 || true
  }
  cleanup_add s3_cleanup
fi

cat >"$WORK/ferryd.conf" <<EOF
$STORE
users = ( { name = "alice"; token_sha256 = "$(sha256_of "$T_ALICE")"; },
          { name = "bob"; token_sha256 = "$(sha256_of "$T_BOB")"; },
          { name = "root"; token_sha256 = "$(sha256_of "$T_ROOT")"; admin = true; } );
default_environment = "local";
environments = ( { name = "local"; compute = "local"; runtime = "local-process"; max_workers = 1; } );
EOF
ferryd_start -c "$WORK/ferryd.conf"
export FERRY_TOKEN=$T_ALICE

proj=$(make_project chain <<'EOF'
- step:
    name: train
    image: none
    command: sh train.sh {parameter-value:version} {parameter-value:alias} {parameter-value:key} {parameter-value:badmeta}
    parameters:
      - name: version
        type: string
        default: v1
      - name: alias
        type: string
        default: none
      - name: key
        type: string
        default: ferry.alias
      - name: badmeta
        type: string
        default: "no"
- step:
    name: refine
    image: none
    command:
      - cat "$FERRY_INPUTS_DIR/model/"* > "$FERRY_OUTPUTS_DIR/model.bin"
      - echo refined >> "$FERRY_OUTPUTS_DIR/model.bin"
    inputs:
      - name: model
- step:
    name: evaluate
    image: none
    command: sh evaluate.sh
    inputs:
      - name: model
- step:
    name: evaluate-prod
    image: none
    command: sh evaluate.sh
    inputs:
      - name: model
        default: datum://model-prod
EOF
)
cat >"$proj/train.sh" <<'EOF'
echo "model $1" >"$FERRY_OUTPUTS_DIR/model.bin"
[ "$2" != none ] && printf '{"%s": "%s"}' "$3" "$2" >"$FERRY_OUTPUTS_DIR/model.bin.metadata.json"
[ "$4" = yes ] && echo '{not json' >"$FERRY_OUTPUTS_DIR/model.bin.metadata.json"
exit 0
EOF
cat >"$proj/evaluate.sh" <<'EOF'
echo "EVAL $(cat "$FERRY_INPUTS_DIR/model/"* | tr '\n' ' ')"
python3 -c 'import json,os; f = json.load(open(os.environ["FERRY_CONFIG_DIR"] + "/inputs.json"))["model"]["files"][0]; print("URI", f["uri"]); print("SHA", f["checksums"]["sha256"], f["size"])'
EOF

# Run a step and wait for it; prints the execution's id.
run_wait() { # run_wait ARGS...
  local id
  id=$(run_id "$proj" "$@")
  "$FERRY" wait "$id" --timeout 90 >/dev/null || true
  echo "$id"
}
datum_of() { # datum_of ID: the datum:// URI of its output model.bin (ferry outputs --json)
  "$FERRY" outputs "$1" --json |
    python3 -c 'import json,sys; print([o["datum"] for o in json.load(sys.stdin)["outputs"] if o["name"] == "model.bin"][0])'
}
status_of() { json_field "$1" 'e["status"]'; }
eval_line() { "$FERRY" logs "$1" 2>/dev/null | grep '^EVAL' | head -n 1; }

# --- 1. datums: every output has one ---
t1=$(run_wait train -p version=v1)
expect_eq "train #1: complete" "$(status_of "$t1")" complete
D1=$(datum_of "$t1")
expect_contains "train #1: its output is a datum" "$D1" "datum://"
expect_eq "the datum id is a UUID" "$(python3 -c 'import sys,uuid; print(str(uuid.UUID(sys.argv[1][8:])) == sys.argv[1][8:])' "$D1")" True
table=$("$FERRY" outputs "$t1")
expect_contains "ferry outputs: a DATUM column" "$(head -n 1 <<<"$table")" "DATUM"
expect_contains "ferry outputs: the datum of model.bin" "$(grep '^model.bin ' <<<"$table")" "$D1"
expect_eq "GET .../outputs: the same datum" \
  "$(api "$T_ALICE" GET "/v1/executions/$t1/outputs" | python3 -c 'import json,sys; print(json.load(sys.stdin)["outputs"][0]["datum"])')" "$D1"

# --- 2. a chain of three: by datum, then by alias ---
t2=$(run_wait refine --input "model=$D1")
expect_eq "refine by datum: complete" "$(status_of "$t2")" complete
D2=$(datum_of "$t2")
log2=$("$FERRY" logs "$t2" 2>&1)
expect_contains "refine: the log names the datum as the input's source" "$log2" "input model: $D1 (output model.bin)"
expect_contains "refine: the file keeps the output's name" "$log2" "downloading input model: model.bin"
RC=0
OUT=$("$FERRY" alias set model-prod "$D2" 2>&1) || RC=$?
expect_eq "ferry alias set: exit status" "$RC" 0
expect_contains "ferry alias set: says where it points" "$OUT" "model-prod -> $D2"
t3=$(run_wait evaluate --input model=datum://model-prod)
expect_eq "evaluate by alias: complete" "$(status_of "$t3")" complete
expect_eq "evaluate reads what refine made of train's model" "$(eval_line "$t3")" "EVAL model v1 refined "
expect_eq "inputs.json: the datum:// URI the alias resolved to" \
  "$("$FERRY" logs "$t3" 2>/dev/null | grep '^URI ')" "URI $D2"
expect_contains "the log says what the alias resolved to" "$("$FERRY" logs "$t3" 2>&1)" \
  "input model: datum://model-prod is $D2 (output model.bin)"
expect_eq "the execution keeps the resolved datum in its inputs" \
  "$(json_field "$t3" 'e["inputs"]["model"][0]')" "$D2"
expect_eq "and the alias it came through" \
  "$(json_field "$t3" 'e["input_datums"][0]["alias"]')" "model-prod"
expect_eq "and the file's sha256" "$(json_field "$t3" 'e["input_datums"][0]["sha256"]')" \
  "$(printf 'model v1\nrefined\n' | sha256sum | cut -d' ' -f1)"
show3=$("$FERRY" show "$t3")
expect_contains "ferry show: the input's datum and alias" "$show3" "model = $D2 (alias model-prod)"
expect_contains "ferry show: its producer" "$show3" "of #$(json_field "$t2" 'e["counter"]') ($t2) chain/refine"
t4=$(run_wait evaluate-prod)
expect_eq "a step default datum://model-prod: complete" "$(status_of "$t4")" complete
expect_eq "the default read the aliased model" "$(eval_line "$t4")" "EVAL model v1 refined "
expect_contains "the second read of that datum on the worker: its cache, no download" \
  "$("$FERRY" logs "$t4" 2>&1)" "from the worker's cache"
sha2="$(printf 'model v1\nrefined\n' | sha256sum | cut -d' ' -f1) 17"
expect_eq "inputs.json: the downloaded file's checksums" \
  "$("$FERRY" logs "$t3" 2>/dev/null | sed -n 's/^SHA //p')" "$sha2"
expect_eq "inputs.json: the cached copy's checksums (kept beside it)" \
  "$("$FERRY" logs "$t4" 2>/dev/null | sed -n 's/^SHA //p')" "$sha2"

# --- 3. the alias moves; a copy of an execution keeps the old file ---
t5=$(run_wait train -p version=v2 -p alias=model-prod)
expect_eq "train v2 (alias in its sidecar): complete" "$(status_of "$t5")" complete
D5=$(datum_of "$t5")
expect_contains "the output's sidecar moved the alias" "$("$FERRY" alias list)" "$D5"
expect_contains "its log says so" "$("$FERRY" logs "$t5" 2>&1)" "alias 'model-prod' now points at $D5"
# A copy of #3, made from its recorded inputs (what a rerun sends).
body=$(json_field "$t3" 'json.dumps({"project": e["project"], "step": e["step"], "snapshot": e["snapshot"], "inputs": e["inputs"]})')
copy=$(api "$T_ALICE" POST /v1/executions "$body" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
"$FERRY" wait "$copy" --timeout 90 >/dev/null || true
expect_eq "the copy of #3: complete" "$(status_of "$copy")" complete
expect_eq "the copy of #3 gets the old file" "$(eval_line "$copy")" "EVAL model v1 refined "
t6=$(run_wait evaluate --input model=datum://model-prod)
expect_eq "a new run by the alias gets the new file" "$(eval_line "$t6")" "EVAL model v2 "
t7=$(run_wait train -p version=v3 -p alias=model-prod -p key=valohai.alias)
D7=$(datum_of "$t7")
hist=$("$FERRY" alias history model-prod --json)
expect_eq "alias history: three moves, oldest first" \
  "$(python3 -c 'import json,sys; print(" ".join(h["datum"] for h in json.load(sys.stdin)["history"]))' <<<"$hist")" \
  "$D2 $D5 $D7"
expect_eq "alias history: who and how" \
  "$(python3 -c 'import json,sys; h=json.load(sys.stdin)["history"]; print(h[0]["set_by"], h[0]["source"], "|", h[2]["source"])' <<<"$hist")" \
  "alice ferry alias set | output model.bin of execution $t7"
expect_contains "ferry alias history: a table" "$("$FERRY" alias history model-prod)" "$D5"

# --- lineage: ferry datum show ---
ds=$("$FERRY" datum show "$D2")
expect_contains "datum show: the producer" "$ds" "$t2"
expect_contains "datum show: the consumers" "$ds" "$t3"
expect_contains "datum show: the copy is a consumer too" "$ds" "$copy"
dj=$("$FERRY" datum show "$D2" --json)
expect_eq "datum show --json: producer, step, parameters; consumers" \
  "$(python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["producer"]["id"], d["producer"]["step"], json.dumps(d["producer"]["parameters"]), " ".join(c["id"] for c in d["consumers"]))' <<<"$dj")" \
  "$t2 refine {} $t3 $t4 $copy"
expect_eq "GET /v1/datums/ALIAS: the datum it points at" \
  "$(api "$T_ALICE" GET /v1/datums/model-prod | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["datum"], d["aliases"], d["producer"]["id"])')" \
  "$D7 ['model-prod'] $t7"

if [ "$MODE" = s3 ]; then
  expect_eq "s3: the datum's bytes are in S3" \
    "$(AWS_CONFIG_FILE=/dev/null /usr/bin/aws --endpoint-url "$EP" s3 cp --quiet \
      "s3://$BUCKET/${PREFIX}executions/$t2/outputs/model.bin" - | tr '\n' ' ')" "model v1 refined "
  expect_eq "s3: the worker never had the secret key" \
    "$(grep -rl -- "$SECRET" "$DATA"/local 2>/dev/null | wc -l)" 0
  finish
  exit $?
fi

# --- bad input ---
RC=0
OUT=$(cd "$proj" && "$FERRY" run evaluate --input model=datum://model-nope 2>&1) || RC=$?
expect_eq "unknown alias: refused (exit 5)" "$RC" 5
expect_contains "unknown alias: the message" "$OUT" "input 'model': datum://model-nope is no alias or datum"
RC=0
OUT=$(cd "$proj" && "$FERRY" run evaluate --input model=datum://00000000-0000-4000-8000-000000000000 2>&1) || RC=$?
expect_eq "unknown datum: refused" "$RC" 5
expect_contains "unknown datum: the message" "$OUT" "datum://00000000-0000-4000-8000-000000000000 is no alias or datum"
for bad in Model-Prod _lead "a/b" "$(printf 'a%.0s' $(seq 65))" 11111111-2222-4333-8444-555555555555; do
  RC=0
  OUT=$("$FERRY" alias set "$bad" "$D1" 2>&1) || RC=$?
  expect_eq "alias name '$bad': refused" "$RC" 5
  expect_contains "alias name '$bad': names the rule" "$OUT" "[a-z0-9][a-z0-9._-]{0,63}"
done
api "$T_ALICE" PUT /v1/aliases/Bad '{"datum": "'"$D1"'"}' >/dev/null
expect_eq "PUT /v1/aliases/Bad: 400" "$(http_code)" 400
RC=0
OUT=$("$FERRY" alias set fine datum://nope 2>&1) || RC=$?
expect_eq "alias set to nothing: refused" "$RC" 5
expect_contains "alias set to nothing: says so" "$OUT" "datum://nope is no alias or datum"
tb=$(run_wait train -p version=vb -p badmeta=yes)
expect_eq "a .metadata.json that is not JSON: complete" "$(status_of "$tb")" complete
expect_contains "its output is kept, with a datum" "$(datum_of "$tb")" "datum://"

# --- users: bob cannot use or see alice's datum; an admin can ---
RC=0
OUT=$(cd "$proj" && FERRY_TOKEN=$T_BOB "$FERRY" run evaluate --input "model=$D1" 2>&1) || RC=$?
expect_eq "bob: alice's datum as an input: refused" "$RC" 5
expect_contains "bob: it does not exist for him" "$OUT" "input 'model': $D1 is no alias or datum"
RC=0
OUT=$(cd "$proj" && FERRY_TOKEN=$T_BOB "$FERRY" run evaluate --input model=datum://model-prod 2>&1) || RC=$?
expect_eq "bob: alice's alias: refused" "$RC" 5
expect_contains "bob: nor does her alias" "$OUT" "datum://model-prod is no alias or datum"
RC=0
OUT=$(FERRY_TOKEN=$T_BOB "$FERRY" datum show "$D1" 2>&1) || RC=$?
expect_eq "bob: ferry datum show of alice's: refused" "$RC" 5
expect_not_contains "bob: ferry alias list shows none of alice's" "$(FERRY_TOKEN=$T_BOB "$FERRY" alias list)" "model-prod"
RC=0
OUT=$(FERRY_TOKEN=$T_BOB "$FERRY" alias set bobs "$D1" 2>&1) || RC=$?
expect_eq "bob: an alias to alice's datum: refused" "$RC" 5
ta=$(cd "$proj" && FERRY_TOKEN=$T_ROOT "$FERRY" run evaluate --input "model=$D1" --json |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
FERRY_TOKEN=$T_ROOT "$FERRY" wait "$ta" --timeout 90 >/dev/null || true
expect_eq "the admin uses alice's datum" "$(FERRY_TOKEN=$T_ROOT "$FERRY" show "$ta" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["status"])')" complete
expect_eq "the admin's run read it" "$(FERRY_TOKEN=$T_ROOT "$FERRY" logs "$ta" 2>/dev/null | grep '^EVAL')" "EVAL model v1 "
expect_contains "the admin sees its consumers" "$(FERRY_TOKEN=$T_ROOT "$FERRY" datum show "$D1")" "$ta"
expect_not_contains "alice does not see the admin's run among the consumers" "$("$FERRY" datum show "$D1")" "$ta"

finish
