#!/usr/bin/env bash
# The ferry CLI without a ferryd: an unreachable server is reported with its
# URL and exit status 4, and a bad step file, step, parameter or input is
# reported (exit status 2) before anything is sent. Then, against a canned
# fake ferryd (python3): a 401 exits 6 with a token hint, envs and whoami
# print their answers, run sends priority and limits in seconds, and show
# prints them. Usage: test_cli_offline.sh FERRY
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
for cmd in wait list show logs stop outputs envs whoami; do
    check "$cmd --help" 0 "usage: ferry $cmd" -- "$ferry" "$cmd" --help
done
check "unknown command" 2 "unknown command 'frobnicate'" -- "$ferry" frobnicate
check "unknown option" 2 "unknown option '--bogus'" -- "$ferry" list --bogus
check "missing ID" 2 "expected one execution ID" -- "$ferry" show
check "bad --tail" 2 "--tail wants a number" -- "$ferry" logs 7 --tail many
check "help lists the 401 status" 0 "6  ferryd wants a valid token" -- "$ferry" --help
check "envs takes no argument" 2 "unexpected argument 'local'" -- "$ferry" envs local

# --- an unreachable ferryd: the URL, a hint, exit status 4 ---
for cmd in "list" "show 7" "logs 7" "logs -f 7" "wait 7" "stop 7" "outputs 7" "envs" "whoami"; do
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
# Issue 18: `ferry run` alone lists the steps (as vh exec run does); a
# unique prefix picks one, an ambiguous one is refused naming them.
check "no step given: the steps listed" 0 "  evaluate" -- "$ferry" run --adhoc "$proj"
check "a prefix shared by no step" 2 "unknown step 'x'" -- "$ferry" run x --adhoc "$proj"
check "a prefix is checked as its step" 2 "'dataset'" -- "$ferry" run tr --adhoc "$proj"
check "--NAME=VALUE is a parameter" 2 "parameter 'epochs'" \
    -- "$ferry" run train --adhoc "$proj" --epochs=many --input dataset=https://e/x
check "--NAME VALUE is a parameter" 2 "'colour'" \
    -- "$ferry" run train --adhoc "$proj" --colour red --input dataset=https://e/x
printf 'epochs: many\n' >"$work/params.yaml"
check "--parameter-file values are checked" 2 "parameter 'epochs'" \
    -- "$ferry" run train --adhoc "$proj" --parameter-file "$work/params.yaml" --input dataset=https://e/x
# A step name defined twice: the other steps stay usable; that one is refused.
dup=$work/dup
mkdir -p "$dup"
printf -- '- step: {name: a, image: i, command: x}\n- step: {name: ok, image: i, command: z}\n- step: {name: a, image: i, command: y}\n' >"$dup/ferry.yaml"
check "a step defined twice: refused, naming both lines" 2 "step 'a' is defined twice (lines 1 and 3)" \
    -- "$ferry" run a --adhoc "$dup"
check "a step defined twice: the file still lists its steps" 0 "  ok" -- "$ferry" run --adhoc "$dup"
printf 'epochs: [1\n' >"$work/broken.yaml"
check "--parameter-file: a broken file names itself" 2 "broken.yaml:" \
    -- "$ferry" run train --adhoc "$proj" --parameter-file "$work/broken.yaml" --input dataset=https://e/x
check "adhoc dir missing" 2 "is not a folder" -- "$ferry" run train --adhoc="$work/nowhere"
check "bad --time-limit" 2 "--time-limit wants a duration such as 90, 10m or 1h10m, not '10 parsecs'" \
    -- "$ferry" run train --adhoc "$proj" --time-limit "10 parsecs" --input dataset=https://e/x
check "negative --time-limit" 2 "--time-limit wants a duration" \
    -- "$ferry" run train --adhoc "$proj" --time-limit=-5 --input dataset=https://e/x
check "bad --no-output-timeout" 2 "--no-output-timeout wants a duration" \
    -- "$ferry" run train --adhoc "$proj" --no-output-timeout 1h10x --input dataset=https://e/x
check "--time-limit needs a value" 2 "option '--time-limit' needs a value" \
    -- "$ferry" run train --adhoc "$proj" --time-limit
check "good limits reach the network" 4 "cannot reach ferryd at $unreachable" \
    -- "$ferry" run train --adhoc "$proj" --priority --time-limit 1h10m \
    --no-output-timeout 90 --input dataset=https://example.com/d.csv

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

# --- a canned fake ferryd: 401, envs, whoami, run's body, show ---
cat >"$work/fake.py" <<'EOF'
import http.server, json
class H(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def answer(self, code, obj):
        data = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
    def route(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        if self.headers.get("Authorization") != "Bearer good":
            return self.answer(401, {"error": "unknown token"})
        if self.path == "/v1/whoami":
            return self.answer(200, {"user": "alice", "admin": False})
        if self.path == "/v1/environments":
            return self.answer(200, {"environments": [
                {"name": "local", "compute": "local", "runtime": "local-process", "gpus": 0,
                 "min_workers": 0, "max_workers": 4, "queued": 0, "queued_priority": 0,
                 "workers": {"idle": 1, "busy": 0, "launching": 0, "total": 1},
                 "last_launch_error": None},
                {"name": "gpu-a100", "compute": "aws", "runtime": "local-docker", "gpus": 8,
                 "min_workers": 1, "max_workers": 3, "queued": 5, "queued_priority": 2,
                 "workers": {"idle": 0, "busy": 2, "launching": 1, "total": 3},
                 "last_launch_error": "InsufficientInstanceCapacity"}]})
        if self.command == "HEAD" and self.path.startswith("/v1/snapshots/"):
            return self.answer(200, {})
        ex = {"id": "0123456789abcdef", "counter": 9, "project": "hello", "step": "train",
              "status": "queued", "owner": "alice", "priority": True, "gpus": "1",
              "time_limit": 4200, "no_output_timeout": 90,
              "status_reason": "waiting for a worker: launching 1 (pool 1 of max 2)"}
        if self.command == "POST" and self.path == "/v1/executions":
            ex["sent"] = json.loads(body)  # the test reads what run sent
            return self.answer(201, ex)
        if self.path == "/v1/executions/9":
            return self.answer(200, ex)
        self.answer(404, {"error": "no such path"})
    do_GET = do_POST = do_HEAD = route
srv = http.server.HTTPServer(("127.0.0.1", 0), H)
print(srv.server_address[1], flush=True)
srv.serve_forever()
EOF
# sent KEY...: the values of the KEYs in the body run sent ("-" when absent).
sent() {
    python3 -c 'import json,sys; b = json.load(sys.stdin)["sent"]
print(*(b.get(k, "-") for k in sys.argv[1:]))' "$@"
}
if command -v python3 >/dev/null; then
    coproc FAKE { exec python3 "$work/fake.py"; }
    read -r port <&"${FAKE[0]}"
    fake=http://127.0.0.1:$port
    check "401: exit 6 and a hint" 6 \
        "ferryd at $fake refused the request: unknown token (set FERRY_TOKEN to your token)" \
        -- "$ferry" --server "$fake" whoami
    check "401 with a token: says so" 6 "check FERRY_TOKEN" \
        -- env FERRY_TOKEN=bad "$ferry" --server "$fake" list
    export FERRY_TOKEN=good
    check "whoami" 0 "alice" -- "$ferry" --server "$fake" whoami
    check "envs: header" 0 "NAME      COMPUTE  WORKERS  MIN  MAX  QUEUED  GPUS" \
        -- "$ferry" --server "$fake" envs
    check "envs: a row" 0 "gpu-a100  aws      0/2/1    1    3    5 (2)   8" \
        -- "$ferry" --server "$fake" envs
    check "envs: launch error" 0 "gpu-a100: the last launch failed: InsufficientInstanceCapacity" \
        -- "$ferry" --server "$fake" envs
    check "envs --json" 0 '"queued_priority": 2' -- "$ferry" --server "$fake" envs --json
    out=$("$ferry" --server "$fake" run train --adhoc "$proj" --json --priority \
        --time-limit 1h10m --no-output-timeout 1.5m --input dataset=https://e/x)
    got=$(sent priority time_limit no_output_timeout <<<"$out")
    [ "$got" = "True 4200 90" ] || fail "run sends priority and limits in seconds: $got"
    out=$("$ferry" --server "$fake" run train --adhoc "$proj" --json --input dataset=https://e/x)
    got=$(sent priority time_limit no_output_timeout <<<"$out")
    [ "$got" = "- - -" ] || fail "run without them sends none (the step's apply): $got"
    check "show: owner" 0 "owner             alice" -- "$ferry" --server "$fake" show 9
    check "show: limits" 0 "time limit        1h10m" -- "$ferry" --server "$fake" show 9
    check "show: why it waits" 0 "waiting for a worker: launching 1" \
        -- "$ferry" --server "$fake" show 9
    unset FERRY_TOKEN
    kill "$FAKE_PID" 2>/dev/null
    wait "$FAKE_PID" 2>/dev/null
else
    echo "python3 is missing: skipping the fake ferryd checks" >&2
fi

if [ "$failures" -ne 0 ]; then
    echo "$failures check(s) failed" >&2
    exit 1
fi
echo "all CLI offline checks passed"
