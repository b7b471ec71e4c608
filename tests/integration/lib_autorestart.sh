# shellcheck shell=bash
# Spot auto-restart (issue 19, point 5), the same checks on each cloud's
# fake: sourced by test_autorestart_aws.sh and test_autorestart_gcp.sh once
# ferryd runs on the fake, with
#   RUNNING  the fake's condition (python, on `i`) for ferry's running instances
#   SPOT     the text the reason of a spot interruption holds
#   SPOT_ENV the environment of spot instances
# ferryd's config has max_restarts = 1.

P=$({
  step_spin
  cat <<'YAML'
- step:
    name: resumable
    image: none
    command:
      - if [ -f "$FERRY_INPUTS_DIR/_restart/checkpoint.txt" ]; then echo "resumed from $(cat "$FERRY_INPUTS_DIR/_restart/checkpoint.txt")"; echo done > "$FERRY_OUTPUTS_DIR/final.txt"; exit 0; fi
      - echo epoch-1 > "$FERRY_OUTPUTS_DIR/checkpoint.txt"
      - chmod 0444 "$FERRY_OUTPUTS_DIR/checkpoint.txt"
      - echo spinning
      - i=0; while [ $i -lt 1200 ]; do sleep 0.05; i=$((i+1)); done
YAML
} | make_project restarts)

# Until ID's outputs list NAME (a live output stored), 30 s at most.
await_output() { # await_output ID NAME
  for _ in $(seq 300); do
    "$FERRY" outputs "$1" --json 2>/dev/null | grep -q "\"$2\"" && return 0
    sleep 0.1
  done
  fail "$1: output $2 was not stored while it ran"
}
# The spot instance ID runs on is interrupted; ID ends. Sets $inst.
interrupt() { # interrupt ID
  inst=$(spin_instance "$1" "$RUNNING")
  fake POST "/__kill?id=$inst&how=spot" >/dev/null
  "$FERRY" wait "$1" --timeout 40 >/dev/null 2>&1 || true
}

# --- a run asked to restart: the checkpoint it made live comes back ---
id=$(run_id "$P" resumable --autorestart --environment "$SPOT_ENV")
await_status "$id" started 40 >/dev/null
await_output "$id" checkpoint.txt
interrupt "$id"
expect_eq "interrupted: error" "$(json_field "$id" 'e["status"]')" error
expect_contains "interrupted: the reason says why" "$(json_field "$id" 'e["status_reason"]')" "$SPOT"
again=$(json_field "$id" 'e["restarted_as"] or ""')
[ -n "$again" ] || fail "interrupted: no restarted_as"
expect_eq "the restart points back" "$(json_field "$again" 'e["restarted_from"]')" "$id"
expect_eq "the restart: the same step, parameters and snapshot" \
  "$(json_field "$again" '"%s %s %s %s" % (e["step"], json.dumps(e["parameters"]), e["snapshot"], e["autorestart"])')" \
  "$(json_field "$id" '"%s %s %s %s" % (e["step"], json.dumps(e["parameters"]), e["snapshot"], e["autorestart"])')"
"$FERRY" wait "$again" --timeout 90 >/dev/null 2>&1 || true
expect_eq "the restart completes" "$(json_field "$again" 'e["status"]')" complete
expect_contains "the restart got the checkpoint as _restart" "$("$FERRY" logs "$again" 2>&1)" \
  "resumed from epoch-1"
expect_contains "the first one's log names its restart" "$("$FERRY" logs "$id" 2>&1)" \
  "auto-restart: restarted as #"
# A rerun of the restart starts afresh: _restart is no input of the step.
rc=0
copy=$("$FERRY" rerun "$again" --json 2>&1) || rc=$?
expect_eq "a rerun of the restart is accepted" "$rc" 0
expect_eq "the rerun has no _restart input" \
  "$(echo "$copy" | python3 -c 'import json,sys; print("_restart" in json.load(sys.stdin)["inputs"])')" False
"$FERRY" stop "$(echo "$copy" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')" >/dev/null 2>&1 || true

# --- at most max_restarts in a chain ---
id=$(run_id "$P" spin --autorestart --environment "$SPOT_ENV")
interrupt "$id"
second=$(json_field "$id" 'e["restarted_as"] or ""')
[ -n "$second" ] || fail "spin: no restart"
interrupt "$second"
expect_eq "the second interruption: error" "$(json_field "$second" 'e["status"]')" error
expect_eq "max_restarts = 1: no third run" "$(json_field "$second" 'e["restarted_as"]')" None
expect_contains "its log says why" "$("$FERRY" logs "$second" 2>&1)" \
  "auto-restart: not restarted: max_restarts (1) reached"

# --- without --autorestart: no restart ---
id=$(run_id "$P" spin --environment "$SPOT_ENV")
interrupt "$id"
expect_eq "not asked: error" "$(json_field "$id" 'e["status"]')" error
expect_eq "not asked: not restarted" "$(json_field "$id" 'e["restarted_as"]')" None
