#!/usr/bin/env bash
# Issue 18, point 13: output properties as a Valohai user's code writes
# them. valohai.metadata.jsonl in the outputs folder (two files, a line
# that is not JSON, a line naming no output) and a <file>.metadata.json
# sidecar that overrides one of its keys: each output's metadata is in
# GET .../outputs and `ferry outputs --json` whole, with valohai.tags and
# valohai.alias lifted to "tags" and "alias"; the table shows it short;
# the metadata files are not outputs; the log names each bad line.
. "$(dirname "$0")/lib.sh"

conf=$WORK/ferryd.conf
cat >"$conf" <<'EOF2'
default_environment = "local";
environments = (
  { name = "local"; compute = "local"; runtime = "local-process"; }
);
EOF2
ferryd_start -c "$conf"

proj=$WORK/props
mkdir -p "$proj"
cat >"$proj/valohai.yaml" <<'EOF2'
---
- step:
    name: train
    image: python:3.12
    command: python3 train.py
- step:
    name: huge
    image: python:3.12
    command: python3 huge.py
EOF2
# A sidecar over the agent's bound (4 MiB): not read, not an output, said.
cat >"$proj/huge.py" <<'EOF2'
import json, os
out = os.environ.get("VH_OUTPUTS_DIR", "/valohai/outputs")
with open(os.path.join(out, "a.bin"), "wb") as f:
    f.write(b"a")
with open(os.path.join(out, "a.bin.metadata.json"), "w") as f:
    json.dump({"x": "y" * (5 << 20)}, f)
EOF2
# As a Valohai user writes it (docs.valohai.com, "Add context to your data
# with metadata").
cat >"$proj/train.py" <<'EOF2'
import json, os
out = os.environ.get("VH_OUTPUTS_DIR", "/valohai/outputs")
os.makedirs(os.path.join(out, "data"), exist_ok=True)
with open(os.path.join(out, "model.pkl"), "wb") as f:
    f.write(b"\x80\x04model")
with open(os.path.join(out, "data", "train.csv"), "w") as f:
    f.write("a,b\n1,2\n")
with open(os.path.join(out, "notes.txt"), "w") as f:
    f.write("no properties\n")
lines = [
    {"file": "model.pkl", "metadata": {"valohai.tags": ["a", "b"], "valohai.alias": "best-model",
                                       "accuracy": 0.93, "stage": "dev"}},
    {"file": "data/train.csv", "metadata": {"valohai.dataset-versions": ["dataset://mydata/v2"],
                                            "rows": 2}},
]
with open(os.path.join(out, "valohai.metadata.jsonl"), "w") as f:
    for line in lines[:2]:
        f.write(json.dumps(line) + "\n")
    f.write("{this is not json\n")
    f.write(json.dumps({"file": "missing.bin", "metadata": {"k": 1}}) + "\n")
with open(os.path.join(out, "model.pkl.metadata.json"), "w") as f:
    json.dump({"stage": "prod", "epochs": 3}, f)
print("trained")
EOF2

id=$(run_id "$proj" train --project props)
rc=0
"$FERRY" wait "$id" --timeout 60 >/dev/null || rc=$?
expect_eq "train: wait exit status" "$rc" 0
expect_eq "train: status" "$(json_field "$id" 'e["status"]')" complete

check_answer() { # check_answer WHAT < an outputs answer (JSON)
  python3 -c '
import json, sys
outs = {o["name"]: o for o in json.load(sys.stdin)["outputs"]}
print(" ".join(sorted(outs)))
m = outs["model.pkl"]
print(json.dumps(m["metadata"], sort_keys=True))
print(m["tags"], m["alias"])
d = outs["data/train.csv"]
print(json.dumps(d["metadata"], sort_keys=True), d["tags"], "alias" in d)
n = outs["notes.txt"]
print(n["metadata"], n["tags"], "alias" in n)' >"$WORK/answer.txt" 2>&1 || true
  expect_eq "$1: the outputs, not the metadata files" "$(sed -n 1p "$WORK/answer.txt")" \
    "data/train.csv model.pkl notes.txt"
  expect_eq "$1: model.pkl's metadata (the sidecar wins for stage)" "$(sed -n 2p "$WORK/answer.txt")" \
    '{"accuracy": 0.93, "epochs": 3, "stage": "prod", "valohai.alias": "best-model", "valohai.tags": ["a", "b"]}'
  expect_eq "$1: tags and alias lifted" "$(sed -n 3p "$WORK/answer.txt")" "['a', 'b'] best-model"
  expect_eq "$1: data/train.csv's dataset versions" "$(sed -n 4p "$WORK/answer.txt")" \
    '{"rows": 2, "valohai.dataset-versions": ["dataset://mydata/v2"]} [] False'
  expect_eq "$1: no metadata: empty" "$(sed -n 5p "$WORK/answer.txt")" "{} [] False"
}
# (not through a pipe: the checks count in this shell)
check_answer "GET outputs" < <(curl -sf "$FERRY_SERVER/v1/executions/$id/outputs")
check_answer "outputs --json" < <("$FERRY" outputs "$id" --json)
check_answer "show --json" < <(json_field "$id" 'json.dumps({"outputs": e["outputs"]})')

table=$("$FERRY" outputs "$id")
expect_contains "table: a PROPERTIES column" "$(head -n 1 <<<"$table")" "PROPERTIES"
expect_contains "table: model.pkl's properties" "$(grep '^model.pkl ' <<<"$table")" "stage=prod"
expect_contains "table: cut short" "$(grep '^model.pkl ' <<<"$table")" "..."
expect_contains "table: data/train.csv's" "$(grep '^data/train.csv ' <<<"$table")" "rows=2"
expect_eq "table: one row per output" "$(($(wc -l <<<"$table") - 1))" 3

"$FERRY" logs "$id" >"$WORK/train.log" 2>&1 || true
expect_contains "log: the script ran" "$(cat "$WORK/train.log")" "trained"
expect_eq "log: line 3 is not JSON" \
  "$(grep -c 'valohai.metadata.jsonl:3: not JSON: ' "$WORK/train.log" || true)" 1
expect_eq "log: line 4 names no output" \
  "$(grep -c 'valohai.metadata.jsonl:4: "file" names no output: missing.bin' "$WORK/train.log" || true)" 1
expect_eq "log: no other metadata warning" \
  "$(grep -c 'metadata.json' "$WORK/train.log" || true)" 2

# --- a metadata file too large ---
id=$(run_id "$proj" huge --project props)
rc=0
"$FERRY" wait "$id" --timeout 60 >/dev/null || rc=$?
expect_eq "huge: wait exit status" "$rc" 0
expect_eq "huge: the output alone, without metadata" \
  "$("$FERRY" outputs "$id" --json | python3 -c 'import json,sys; print([(o["name"], o["metadata"]) for o in json.load(sys.stdin)["outputs"]])')" \
  "[('a.bin', {})]"
expect_contains "huge: the log says why" "$("$FERRY" logs "$id" 2>&1)" \
  "a.bin.metadata.json: larger than 4 MiB; not read (nor an output)"

finish
