#!/usr/bin/env bash
# Issue 18's contract as a Valohai user's Python code sees it, the same
# project under local-process and under local-docker (a Python image made
# from the host's python3: tests/plugins/docker_python_image.sh). The code
# reads Valohai's files at Valohai's paths, never ferry's variables:
# /valohai/config/{parameters.json,inputs.json,execution.json}, the input at
# the path inputs.json gives and at the hard-coded /valohai/inputs/..., its
# arguments as valohai-yaml builds them (--lr=1e-5 as written), its
# metadata lines live, outputs in /valohai/outputs with their properties in
# valohai.metadata.jsonl; a stop-condition stops it in both runtimes.
# Fails without the dockerd of tests/services.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

if [ -z "${FERRY_TEST_DOCKER_SOCKET:-}" ] ||
  ! curl -sf --max-time 5 --unix-socket "$FERRY_TEST_DOCKER_SOCKET" http://docker/_ping >/dev/null; then
  echo "FAIL: dockerd of tests/services is not running (tests/services/all.sh start)"
  exit 1
fi
bash "$FERRY_SOURCE_DIR/tests/plugins/docker_python_image.sh"

mkdir -p "$WORK/data"
printf 'x,y\n1,2\n3,4\n' >"$WORK/data/train.csv"
cat >"$WORK/ferryd.conf" <<CONF_END
environments = (
  { name = "local"; compute = "local"; runtime = "local-process"; max_workers = 1; },
  { name = "docker"; compute = "local"; runtime = "local-docker"; max_workers = 1;
    docker_socket = "$FERRY_TEST_DOCKER_SOCKET"; }
);
default_environment = "local";
CONF_END
ferryd_start -c "$WORK/ferryd.conf"

proj=$WORK/vhuser
mkdir -p "$proj"
cat >"$proj/valohai.yaml" <<YAML_END
---
- step:
    name: train
    image: ferry-test/python:1
    command:
      - export STAGE=training
      - python3 train.py {parameters}
    parameters:
      - name: epochs
        type: integer
        default: 3
      - name: lr
        type: float
        default: 1e-5
    inputs:
      - name: dataset
        default: file://$WORK/data/train.csv
- step:
    name: early
    image: ferry-test/python:1
    command: python3 early.py
    stop-condition: loss < 0.3
YAML_END
cat >"$proj/train.py" <<'PY_END'
import json, os, sys
print("argv", " ".join(sys.argv[1:]))
print("stage", os.environ.get("STAGE"))
print("unbuffered", os.environ.get("PYTHONUNBUFFERED"))
with open("/valohai/config/parameters.json") as f:
    params = json.load(f)
print("params", params["epochs"], params["lr"])
with open("/valohai/config/inputs.json") as f:
    inputs = json.load(f)
entry = inputs["dataset"]["files"][0]
print("input", entry["name"], entry["size"], len(entry["checksums"]["sha256"]))
print("rows", len(open(entry["path"]).read().splitlines()))
print("hard-coded", open("/valohai/inputs/dataset/train.csv").readline().strip())
with open("/valohai/config/execution.json") as f:
    ex = json.load(f)
print("execution", ex["valohai.project-name"], ex["valohai.execution-step"],
      ex["valohai.execution-id"] == os.environ.get("VH_EXECUTION_ID"))
for epoch in range(params["epochs"]):
    print(json.dumps({"epoch": epoch, "loss": 1.0 / (epoch + 1)}))
with open("/valohai/outputs/model.txt", "w") as f:
    f.write("weights\n")
with open("/valohai/outputs/valohai.metadata.jsonl", "w") as f:
    f.write(json.dumps({"file": "model.txt", "metadata": {"valohai.tags": ["best"], "acc": 0.9}}) + "\n")
print("done")
PY_END
cat >"$proj/early.py" <<'PY_END'
import json, time
for epoch in range(100):
    print(json.dumps({"epoch": epoch, "loss": 1.0 / (epoch + 1)}), flush=True)
    time.sleep(0.2)
print("finished all epochs")
PY_END

for env in local docker; do
  id=$(cd "$proj" && "$FERRY" run train --project vhuser -e "$env" --json |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
  rc=0
  "$FERRY" wait "$id" --timeout 120 >/dev/null || rc=$?
  expect_eq "$env: train completes" "$rc" 0
  log=$("$FERRY" logs "$id" 2>&1 || true)
  expect_contains "$env: arguments as valohai-yaml builds them" "$log" "argv --epochs=3 --lr=1e-5"
  expect_contains "$env: one shell for the commands" "$log" "stage training"
  expect_contains "$env: PYTHONUNBUFFERED" "$log" "unbuffered 1"
  expect_contains "$env: parameters.json" "$log" "params 3 1e-05"
  expect_contains "$env: inputs.json entry" "$log" "input train.csv 12 64"
  expect_contains "$env: the input at inputs.json's path" "$log" "rows 3"
  expect_contains "$env: the input at /valohai/inputs" "$log" "hard-coded x,y"
  expect_contains "$env: execution.json" "$log" "execution vhuser train True"
  expect_contains "$env: ran to the end" "$log" "done"
  # (ferryd's JSON has 15 significant digits: 0.1 reads 0.1, not 0.10000000000000001)
  expect_eq "$env: metadata points" "$(json_field "$id" '"%s %.12f" % (e["metadata"]["epoch"], e["metadata"]["loss"])')" "2 0.333333333333"
  expect_eq "$env: outputs and their properties" "$("$FERRY" outputs "$id" --json | python3 -c '
import json, sys
for o in json.load(sys.stdin)["outputs"]:
    print(o["name"], ",".join(o.get("tags", [])), o.get("metadata", {}).get("acc"))')" "model.txt best 0.9"

  id=$(cd "$proj" && "$FERRY" run early --project vhuser -e "$env" --json |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
  "$FERRY" wait "$id" --timeout 120 >/dev/null 2>&1 || true
  expect_eq "$env: the stop-condition stops it" "$(json_field "$id" 'e["status"]')" stopped
  expect_eq "$env: and says why" "$(json_field "$id" 'e["status_reason"]')" \
    "stop-condition met: loss < 0.3"
  expect_not_contains "$env: before the end" "$("$FERRY" logs "$id" 2>&1)" "finished all epochs"
done
finish
