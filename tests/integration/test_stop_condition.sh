#!/usr/bin/env bash
# Issue 18, point 9: a step's stop-condition stops the execution once a
# metadata point makes it true. The status is stopped, the reason names the
# condition, the commands saw SIGTERM before they printed their last point;
# metadata.KEY and parameter.NAME are the sources valohai's conditions name;
# a condition that never holds (or names a key that never comes) leaves the
# execution to end as it would have.
. "$(dirname "$0")/lib.sh"

ferryd_start
proj=$WORK/early
mkdir -p "$proj"
cat >"$proj/valohai.yaml" <<'YAML_END'
---
- step:
    name: train
    image: python:3.12
    command: python3 train.py
    stop-condition: loss < 0.2
- step:
    name: train-param
    image: python:3.12
    command: python3 train.py
    parameters:
      - name: target
        type: float
        default: 0.3
    stop-condition: metadata.loss <= parameter.target and metadata.epoch >= 2
- step:
    name: never
    image: python:3.12
    command: python3 train.py --short
    stop-condition: loss < 0 or accuracy > 0.99
YAML_END
# A training loop as a Valohai user writes one: a JSON line per epoch.
cat >"$proj/train.py" <<'PY_END'
import json, signal, sys, time
def on_term(*_):
    print("got SIGTERM", flush=True)
    sys.exit(143)
signal.signal(signal.SIGTERM, on_term)
epochs = 4 if "--short" in sys.argv else 60
for epoch in range(epochs):
    print(json.dumps({"epoch": epoch, "loss": 1.0 / (epoch + 1)}))
    time.sleep(0.25)
print("finished all epochs")
PY_END

status_of() { json_field "$1" 'e["status"]'; }
reason_of() { json_field "$1" 'e.get("status_reason") or ""'; }

id=$(run_id "$proj" train --project early)
"$FERRY" wait "$id" --timeout 60 >/dev/null 2>&1 || true
expect_eq "train: stopped" "$(status_of "$id")" stopped
expect_eq "train: the reason names the condition" "$(reason_of "$id")" "stop-condition met: loss < 0.2"
log=$("$FERRY" logs "$id" 2>&1 || true)
expect_contains "train: the commands were told to stop" "$log" "got SIGTERM"
expect_not_contains "train: they did not run to the end" "$log" "finished all epochs"
expect_not_contains "train: stopped well before epoch 20" "$log" '"epoch": 20'
expect_eq "train: the last loss seen met it" \
  "$(json_field "$id" '"yes" if e["metadata"]["loss"] < 0.2 else "no %s" % e["metadata"]')" yes
expect_eq "train: show --json has the condition" "$(json_field "$id" 'e["stop_condition"]')" "loss < 0.2"

id=$(run_id "$proj" train-param --project early)
"$FERRY" wait "$id" --timeout 60 >/dev/null 2>&1 || true
expect_eq "train-param: stopped" "$(status_of "$id")" stopped
expect_eq "train-param: at epoch 3 (loss 0.25 <= 0.3)" "$(json_field "$id" 'e["metadata"]["epoch"]')" 3

id=$(run_id "$proj" never --project early)
rc=0
"$FERRY" wait "$id" --timeout 60 >/dev/null 2>&1 || rc=$?
expect_eq "never: complete" "$(status_of "$id")" complete
expect_eq "never: wait exit status" "$rc" 0
expect_contains "never: ran to the end" "$("$FERRY" logs "$id" 2>&1)" "finished all epochs"

# A condition that can never work is refused when the step file is read.
cat >>"$proj/valohai.yaml" <<'YAML_END'
- step:
    name: broken
    image: python:3.12
    command: "true"
    stop-condition: "loss <"
YAML_END
rc=0
out=$(cd "$proj" && "$FERRY" run train --project early 2>&1) || rc=$?
expect_eq "a bad condition: refused" "$rc" 2
expect_contains "a bad condition: names the line and why" "$out" "stop-condition: 'loss <' is not a valid expression"
finish
