#!/usr/bin/env bash
# A project with only an unchanged valohai.yaml runs: VH_*_DIR are set and
# are the FERRY_*_DIR folders; {parameters}, {parameter:NAME} and
# {parameter-value:NAME} expand with shell quoting, so a value with spaces,
# quotes, $ and backquotes arrives as one argv element, byte for byte; an
# unknown {placeholder} is left alone.
. "$(dirname "$0")/lib.sh"

ferryd_start

proj=$WORK/vh
mkdir -p "$proj"
cat >"$proj/valohai.yaml" <<'EOF'
---
- step:
    name: dirs
    image: python:3.12
    command:
      - env | grep -E '^(FERRY|VH)_[A-Z]*_DIR=' | sort > "$VH_OUTPUTS_DIR/env.txt"
      - cat "$VH_INPUTS_DIR/data/data.txt" > "$VH_OUTPUTS_DIR/copied.txt"
      - ls "$VH_CONFIG_DIR" > "$VH_OUTPUTS_DIR/config.txt"
      - pwd > "$VH_OUTPUTS_DIR/pwd.txt"
    inputs:
      - name: data
- step:
    name: args
    image: python:3.12
    command:
      - sh args.sh A {parameters}
      - sh args.sh B {parameter:msg}
      - sh args.sh C {parameter-value:msg}
      - sh args.sh D {parameter-value:n} {parameter:n}
      - sh args.sh E {unknown} {parameter:nope}
    parameters:
      - name: msg
        type: string
        default: plain
      - name: n
        type: integer
        default: 3
- step:
    name: passas
    image: python:3.12
    command: sh args.sh F {parameters}
    parameters:
      - name: lr
        type: float
        pass-as: -lr {v}
        default: 0.5
      - name: tag
        type: string
        pass-as: --tag {v}
        default: two words
EOF
# Prints a label, the number of arguments, then each one between < and >.
cat >"$proj/args.sh" <<'EOF'
label=$1
shift
printf '%s %s' "$label" "$#"
for a in "$@"; do printf ' <%s>' "$a"; done
printf '\n'
EOF
echo "valohai input" >"$WORK/data.txt"
expect_eq "the project has no ferry.yaml" "$(test -e "$proj/ferry.yaml" && echo yes || echo no)" no

# --- VH_* folders ---
id=$(run_id "$proj" dirs --input "data=file://$WORK/data.txt")
rc=0
"$FERRY" wait "$id" --timeout 30 >/dev/null || rc=$?
expect_eq "dirs: wait exit status" "$rc" 0
"$FERRY" outputs "$id" --download "$WORK/dl" >/dev/null || fail "dirs: download failed"
var() { sed -n "s/^$1=//p" "$WORK/dl/env.txt"; }
for d in REPOSITORY INPUTS OUTPUTS CONFIG; do
  v=$(var "VH_${d}_DIR")
  if [ -n "$v" ]; then pass; else fail "VH_${d}_DIR is not set"; fi
  expect_eq "VH_${d}_DIR is FERRY_${d}_DIR" "$v" "$(var "FERRY_${d}_DIR")"
done
expect_eq "working folder is VH_REPOSITORY_DIR" "$(cat "$WORK/dl/pwd.txt" 2>/dev/null)" "$(var VH_REPOSITORY_DIR)"
expect_eq "input read through VH_INPUTS_DIR" "$(cat "$WORK/dl/copied.txt" 2>/dev/null)" "valohai input"
expect_eq "config files through VH_CONFIG_DIR" "$(tr '\n' ' ' <"$WORK/dl/config.txt" 2>/dev/null)" \
  "execution.json inputs.json parameters.json parameters.yaml "

# --- placeholders and shell quoting ---
nasty="it's a \"quoted\" value with \$HOME, \`id\`, \\ and  two  spaces; *"
id=$(run_id "$proj" args -p "msg=$nasty" -p n=12)
rc=0
"$FERRY" wait "$id" --timeout 30 >/dev/null || rc=$?
expect_eq "args: wait exit status" "$rc" 0
out=$("$FERRY" logs "$id" 2>/dev/null)
line() { grep "^$1 " <<<"$out" || echo "(no line $1)"; }
expect_eq "{parameters}" "$(line A)" "A 2 <--msg=$nasty> <--n=12>"
expect_eq "{parameter:msg}" "$(line B)" "B 1 <--msg=$nasty>"
expect_eq "{parameter-value:msg}" "$(line C)" "C 1 <$nasty>"
expect_eq "{parameter-value:n} {parameter:n}" "$(line D)" "D 2 <12> <--n=12>"
expect_eq "unknown placeholders are left alone" "$(line E)" "E 2 <{unknown}> <{parameter:nope}>"

# --- pass-as with a space: two argv elements, the value still one ---
id=$(run_id "$proj" passas)
"$FERRY" wait "$id" --timeout 30 >/dev/null || true
expect_eq "pass-as '-lr {v}' and '--tag {v}'" "$("$FERRY" logs "$id" 2>/dev/null | grep '^F ')" \
  "F 4 <-lr> <0.5> <--tag> <two words>"

finish
