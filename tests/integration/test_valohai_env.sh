#!/usr/bin/env bash
# Issue 18, points 5-7: what a Valohai user's code reads inside the
# execution. config/execution.json holds Valohai's valohai.* keys (id,
# counter, project, step, environment...), the environment holds the VH_*
# variables Valohai documents, ferry's FERRY_* twins and PYTHONUNBUFFERED=1
# (a step's own value wins); a step's environment that ferryd does not know
# (a Valohai slug) runs on the default one with one warning line in its
# log, and environment_aliases routes a slug to the environment it names
# (a request's -e too; an unknown -e is still refused).
. "$(dirname "$0")/lib.sh"

conf=$WORK/ferryd.conf
cat >"$conf" <<'EOF'
default_environment = "local";
environments = (
  { name = "local"; compute = "local"; runtime = "local-process"; },
  { name = "aws-gpu"; compute = "local"; runtime = "local-process"; }
);
environment_aliases = {
  aws-eu-west-1-g4dn-xlarge = "aws-gpu";
};
EOF
ferryd_start -c "$conf"

proj=$WORK/vhenv
mkdir -p "$proj"
cat >"$proj/valohai.yaml" <<'EOF'
---
- step:
    name: info
    image: python:3.12
    command: python3 info.py
- step:
    name: own-unbuffered
    image: python:3.12
    command: python3 info.py
    environment-variables:
      - name: PYTHONUNBUFFERED
        default: "0"
- step:
    name: unknown-slug
    image: python:3.12
    environment: azure-westeurope-f2sv2
    command: python3 info.py
- step:
    name: unused-keys
    image: python:3.12
    command: python3 info.py
    cache-volumes: [/cache]
    upload-store: my-store
- step:
    name: aliased
    image: python:3.12
    environment: aws-eu-west-1-g4dn-xlarge
    command: python3 info.py
EOF
# As a Valohai user's code reads it: the config file, then the variables.
cat >"$proj/info.py" <<'EOF'
import json, os
with open(os.path.join(os.environ.get("VH_CONFIG_DIR", "/valohai/config"), "execution.json")) as f:
    config = json.load(f)
for key in sorted(config):
    if key.startswith("valohai."):
        print("cfg %s=%s" % (key, json.dumps(config[key])))
for name in ("VH_JOB_ID", "VH_EXECUTION_ID", "VH_PROJECT_ID", "FERRY_EXECUTION_ID",
             "FERRY_EXECUTION_COUNTER", "FERRY_PROJECT", "PYTHONUNBUFFERED"):
    print("env %s=%s" % (name, os.environ.get(name, "<unset>")))
EOF

run_and_log() { # run_and_log STEP: sets $id, the log in $WORK/STEP.log (not
  # in a subshell: its checks must count)
  local rc=0
  id=$(run_id "$proj" "$1" --project vhenv)
  "$FERRY" wait "$id" --timeout 60 >/dev/null || rc=$?
  expect_eq "$1: wait exit status" "$rc" 0
  "$FERRY" logs "$id" >"$WORK/$1.log" 2>&1 || true
}
val() { sed -n "s/^$1 $2=//p" "$WORK/$3.log"; }

# --- execution.json and the variables ---
run_and_log info
counter=$(json_field "$id" 'e["counter"]')
expect_eq "valohai.execution-id" "$(val cfg valohai.execution-id info)" "\"$id\""
expect_eq "valohai.execution-counter" "$(val cfg valohai.execution-counter info)" "$counter"
expect_eq "valohai.project-name" "$(val cfg valohai.project-name info)" '"vhenv"'
expect_eq "valohai.execution-step" "$(val cfg valohai.execution-step info)" '"info"'
expect_eq "valohai.execution-image" "$(val cfg valohai.execution-image info)" '"python:3.12"'
expect_eq "valohai.execution-title (none)" "$(val cfg valohai.execution-title info)" null
expect_eq "valohai.execution-tags" "$(val cfg valohai.execution-tags info)" '[]'
expect_eq "valohai.environment-slug" "$(val cfg valohai.environment-slug info)" '"local"'
expect_contains "valohai.commit-identifier is an ad-hoc one" \
  "$(val cfg valohai.commit-identifier info)" '"~'
expect_contains "valohai.execution-ctime is a time" "$(val cfg valohai.execution-ctime info)" 'T'
pid=$(val cfg valohai.project-id info)
if [[ "$pid" =~ ^\"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\"$ ]]; then pass
else fail "valohai.project-id is not a UUID: $pid"; fi
for k in execution-status creator-name pipeline-id task-id; do
  if grep -q "^cfg valohai.$k=" "$WORK/info.log"; then pass; else fail "no valohai.$k"; fi
done
expect_eq "VH_JOB_ID" "$(val env VH_JOB_ID info)" "exec-$id"
expect_eq "VH_EXECUTION_ID" "$(val env VH_EXECUTION_ID info)" "$id"
expect_eq "VH_PROJECT_ID is valohai.project-id" "\"$(val env VH_PROJECT_ID info)\"" "$pid"
expect_eq "FERRY_EXECUTION_ID" "$(val env FERRY_EXECUTION_ID info)" "$id"
expect_eq "FERRY_EXECUTION_COUNTER" "$(val env FERRY_EXECUTION_COUNTER info)" "$counter"
expect_eq "FERRY_PROJECT" "$(val env FERRY_PROJECT info)" vhenv
expect_eq "PYTHONUNBUFFERED by default" "$(val env PYTHONUNBUFFERED info)" 1
expect_eq "a known environment: no note" \
  "$(grep -c "is not one of ferryd's" "$WORK/info.log" || true)" 0

# --- the step's own PYTHONUNBUFFERED wins ---
run_and_log own-unbuffered
expect_eq "the step's PYTHONUNBUFFERED wins" "$(val env PYTHONUNBUFFERED own-unbuffered)" 0

# --- an unknown slug runs on the default, saying so once ---
run_and_log unknown-slug
expect_eq "unknown slug: runs on the default" "$(json_field "$id" 'e["environment"]')" local
expect_eq "unknown slug: one warning line" \
  "$(grep -c "environment 'azure-westeurope-f2sv2' is not one of ferryd's (known: local, aws-gpu): running on 'local'" "$WORK/unknown-slug.log" || true)" 1

# --- keys ferry accepts but does not act on: one warning, naming them ---
expect_eq "no unused keys: no warning" \
  "$(grep -c 'accepted but not acted on' "$WORK/unknown-slug.log" || true)" 0
run_and_log unused-keys
expect_eq "unused keys: one warning naming each with its line" \
  "$(grep -c "valohai.yaml: step 'unused-keys': accepted but not acted on by ferry: upload-store (line [0-9]*), cache-volumes (line [0-9]*)" "$WORK/unused-keys.log" || true)" 1

# --- an alias routes the slug, without a note ---
run_and_log aliased
expect_eq "alias: runs on aws-gpu" "$(json_field "$id" 'e["environment"]')" aws-gpu
expect_eq "alias: valohai.environment-slug" "$(val cfg valohai.environment-slug aliased)" '"aws-gpu"'
expect_eq "alias: no note" "$(grep -c "is not one of ferryd's" "$WORK/aliased.log" || true)" 0

# --- a request's environment: an alias routes it; an unknown one is refused
# (the user named it), as before ---
id=$(cd "$proj" && "$FERRY" run info --project vhenv -e aws-eu-west-1-g4dn-xlarge --json |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
rc=0
"$FERRY" wait "$id" --timeout 60 >/dev/null || rc=$?
expect_eq "-e SLUG: wait exit status" "$rc" 0
expect_eq "-e SLUG: the alias routes it" "$(json_field "$id" 'e["environment"]')" aws-gpu
rc=0
out=$(cd "$proj" && "$FERRY" run info --project vhenv -e no-such-env 2>&1) || rc=$?
expect_eq "-e no-such-env: refused (exit 5)" "$rc" 5
expect_contains "-e no-such-env: names it" "$out" "no-such-env"

finish
