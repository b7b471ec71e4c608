#!/usr/bin/env bash
# How the commands of a step run (issue 18): every command of the list, in
# order, in one shell session (a `cd` or an `export` carries over), a failing
# command in the middle does not stop the rest, and the execution's exit code
# is the last command's; valohai.yaml and ferry.yaml alike. The shell is bash
# where the host has it (local-process, the default environment), so
# `source` and [[ ]] work as on Valohai.
. "$(dirname "$0")/lib.sh"

ferryd_start

# The steps, for valohai.yaml and ferry.yaml alike; $1 names the file's kind.
steps() {
  cat <<'EOF'
- step:
    name: middle-fails
    image: busybox
    command:
      - cd sub
      - export X=42
      - "false"
      - echo "x=$X pwd=$(basename $(pwd))"
      - test "$X" = 42
- step:
    name: last-fails
    image: busybox
    command:
      - cd sub
      - echo "before the last"
      - exit 5
- step:
    name: bash
    image: busybox
    command:
      - source ./env.sh
      - "[[ 1 == 1 ]] && echo bash-ok from=$FROM_ENV_SH"
EOF
}

for kind in valohai ferry; do
  proj=$WORK/$kind
  mkdir -p "$proj/sub"
  steps >"$proj/$kind.yaml"
  echo 'FROM_ENV_SH=sourced' >"$proj/env.sh"

  # --- a failing middle command: the rest run, the last one's status wins ---
  id=$(run_id "$proj" middle-fails)
  rc=0
  "$FERRY" wait "$id" --timeout 30 >/dev/null || rc=$?
  expect_eq "$kind middle-fails: ferry wait exits 0" "$rc" 0
  expect_eq "$kind middle-fails: status, exit code" \
    "$(json_field "$id" 'e["status"], e["exit_code"]')" "complete 0"
  expect_contains "$kind middle-fails: cd and export carried over, after the failure" \
    "$("$FERRY" logs "$id" 2>/dev/null)" "x=42 pwd=sub"

  # --- the last command fails: error, with its exit code ---
  id=$(run_id "$proj" last-fails)
  rc=0
  "$FERRY" wait "$id" --timeout 30 >/dev/null || rc=$?
  expect_eq "$kind last-fails: ferry wait exits 1" "$rc" 1
  expect_eq "$kind last-fails: status, exit code" \
    "$(json_field "$id" 'e["status"], e["exit_code"]')" "error 5"
  expect_contains "$kind last-fails: the commands before it ran" \
    "$("$FERRY" logs "$id" 2>/dev/null)" "before the last"

  # --- bash where the host has it ---
  if [ -x /bin/bash ]; then
    id=$(run_id "$proj" bash)
    rc=0
    "$FERRY" wait "$id" --timeout 30 >/dev/null || rc=$?
    expect_eq "$kind bash: status" "$(json_field "$id" 'e["status"]')" complete
    expect_contains "$kind bash: source and [[ ]] work" \
      "$("$FERRY" logs "$id" 2>/dev/null)" "bash-ok from=sourced"
  fi
done

finish
