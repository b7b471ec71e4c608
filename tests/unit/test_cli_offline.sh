#!/usr/bin/env bash
# The ferry CLI without a ferryd: an unreachable server is reported with its
# URL and exit status 4, and a bad step file, step, parameter or input is
# reported (exit status 2) before anything is sent. Usage: test_cli_offline.sh FERRY
set -u

ferry=$(realpath "${1:?usage: test_cli_offline.sh PATH-TO-ferry}")
work=$(mktemp -d "${TMPDIR:-/tmp}/ferry-test-cli-XXXXXX")
trap 'rm -rf "$work"' EXIT
# Nothing listens on port 1: every request must fail to connect.
unreachable=http://127.0.0.1:1
export FERRY_SERVER=$unreachable
unset FERRY_TOKEN FERRY_PROJECT
failures=0

fail() {
    echo "FAIL: $*" >&2
    failures=$((failures + 1))
}

# check NAME WANT_STATUS WANT_TEXT -- COMMAND...: run it, compare the exit
# status, and look for WANT_TEXT (a fixed string) in stdout+stderr.
check() {
    local name=$1 want_rc=$2 want_text=$3
    shift 4
    local out rc
    out=$("$@" 2>&1)
    rc=$?
    if [ "$rc" != "$want_rc" ]; then
        fail "$name: exit status $rc, expected $want_rc; output: $out"
    elif ! grep -qF -- "$want_text" <<<"$out"; then
        fail "$name: output lacks '$want_text': $out"
    fi
}

# --- a project ---
proj=$work/hello
mkdir -p "$proj"
cat >"$proj/ferry.yaml" <<'EOF'
- step:
    name: train
    image: python:3.12
    command: python train.py {parameters}
    parameters:
      - name: epochs
        type: integer
        default: 3
      - name: lr
        type: float
        default: 0.1
      - name: layers
        type: string
        multiple: separate
        optional: true
    inputs:
      - name: dataset
- step:
    name: evaluate
    image: python:3.12
    command: python eval.py
EOF
echo 'print("hi")' >"$proj/train.py"

# --- general ---
check "version" 0 "ferry " -- "$ferry" --version
check "help" 0 "exit status" -- "$ferry" --help
check "run --help" 0 "usage: ferry run STEP" -- "$ferry" run --help
for cmd in wait list show logs stop outputs; do
    check "$cmd --help" 0 "usage: ferry $cmd" -- "$ferry" "$cmd" --help
done
check "unknown command" 2 "unknown command 'frobnicate'" -- "$ferry" frobnicate
check "unknown option" 2 "unknown option '--bogus'" -- "$ferry" list --bogus
check "missing ID" 2 "expected one execution ID" -- "$ferry" show
check "bad --tail" 2 "--tail wants a number" -- "$ferry" logs 7 --tail many

# --- an unreachable ferryd: the URL, a hint, exit status 4 ---
for cmd in "list" "show 7" "logs 7" "logs -f 7" "wait 7" "stop 7" "outputs 7"; do
    # shellcheck disable=SC2086
    check "unreachable: $cmd" 4 "cannot reach ferryd at $unreachable: " -- "$ferry" $cmd
done
check "unreachable names the reason" 4 "Connection refused (is ferryd running? set --server or FERRY_SERVER)" -- "$ferry" list
check "--server wins over FERRY_SERVER" 4 "cannot reach ferryd at http://127.0.0.1:2:" \
    -- "$ferry" --server http://127.0.0.1:2/ list
check "--server after the command" 4 "cannot reach ferryd at http://127.0.0.1:3:" \
    -- "$ferry" list --server=http://127.0.0.1:3
# A valid run gets as far as contacting ferryd: local checks passed.
check "valid run reaches the network" 4 "cannot reach ferryd at $unreachable" \
    -- "$ferry" run train --adhoc "$proj" -p epochs=5 -p layers=a -p layers=b \
    --input dataset=https://example.com/d.csv --tag try

# --- local validation, before any contact (exit 2, not 4) ---
check "unknown step" 2 "unknown step 'trian' in ferry.yaml; known steps: train, evaluate" \
    -- "$ferry" run trian --adhoc "$proj"
check "bad parameter value" 2 "parameter 'epochs'" \
    -- "$ferry" run train --adhoc "$proj" -p epochs=many --input dataset=https://e/x
check "unknown parameter" 2 "'colour'" \
    -- "$ferry" run train --adhoc "$proj" -p colour=red --input dataset=https://e/x
check "single parameter given twice" 2 "parameter 'lr' is given more than once" \
    -- "$ferry" run train --adhoc "$proj" -p lr=1 -p lr=2 --input dataset=https://e/x
check "-p without =" 2 "-p wants NAME=VALUE" \
    -- "$ferry" run train --adhoc "$proj" -p epochs --input dataset=https://e/x
check "missing required input" 2 "'dataset'" -- "$ferry" run train --adhoc "$proj"
check "no step given" 2 "expected STEP" -- "$ferry" run --adhoc "$proj"
check "adhoc dir missing" 2 "is not a folder" -- "$ferry" run train --adhoc="$work/nowhere"

# The working folder is the default DIR; --adhoc DIR works in either order.
check "DIR defaults to ." 2 "unknown step 'nope' in ferry.yaml" \
    -- bash -c 'cd "$1" && exec "$2" run nope' - "$proj" "$ferry"
check "--adhoc DIR before STEP" 2 "unknown step 'nope'" -- "$ferry" run --adhoc "$proj" nope

mkdir -p "$work/empty"
check "no step file" 2 "no ferry.yaml or valohai.yaml in $work/empty" \
    -- "$ferry" run train --adhoc "$work/empty"

# A malformed step file: the message names the file and the line.
mkdir -p "$work/broken"
printf -- '- step:\n    name: train\n    image: x\n   command: [unclosed\n' >"$work/broken/ferry.yaml"
check "malformed step file" 2 "$work/broken/ferry.yaml:4" -- "$ferry" run train --adhoc "$work/broken"

# valohai.yaml is read when there is no ferry.yaml.
mkdir -p "$work/vh"
sed 's/name: train/name: vtrain/' "$proj/ferry.yaml" >"$work/vh/valohai.yaml"
check "valohai.yaml" 2 "unknown step 'train' in valohai.yaml; known steps: vtrain, evaluate" \
    -- "$ferry" run train --adhoc "$work/vh"

if [ "$failures" -ne 0 ]; then
    echo "$failures check(s) failed" >&2
    exit 1
fi
echo "all CLI offline checks passed"
