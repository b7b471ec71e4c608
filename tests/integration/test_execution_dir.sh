#!/usr/bin/env bash
# Inside an execution: the working folder is the snapshot; FERRY_* folders
# and ids are set and agree; config/parameters.json has typed values;
# config/inputs.json and config/execution.json are right; http:// (also
# through a redirect) and file:// inputs are downloaded into
# inputs/<name>/<file> before the commands start, with `filename` honoured;
# a missing input (404) fails the execution and the log names it; step
# environment variables are set and cannot override FERRY_*; the commands of
# a list run in order in one shell, every command of it (the last one gives the status).
. "$(dirname "$0")/lib.sh"

# --- a small file server on a free loopback port ---
files=$WORK/files
mkdir -p "$files/deep"
printf 'x,y\n1,2\n' >"$files/data.csv"
echo "second file" >"$files/deep/b.txt"
echo "renamed content" >"$files/original.txt"
echo "from a file url" >"$WORK/local.txt"
cat >"$WORK/server.py" <<'EOF'
import functools, http.server, sys

class Handler(http.server.SimpleHTTPRequestHandler):
    def do_GET(self):
        if self.path.startswith("/moved"):
            self.send_response(302)
            self.send_header("Location", "/data.csv")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        super().do_GET()

    def log_message(self, fmt, *args):
        sys.stderr.write("%s\n" % (fmt % args))
        sys.stderr.flush()

server = http.server.ThreadingHTTPServer(
    ("127.0.0.1", 0), functools.partial(Handler, directory=sys.argv[1]))
print(server.server_address[1], flush=True)
server.serve_forever()
EOF
python3 "$WORK/server.py" "$files" >"$WORK/http.port" 2>"$WORK/http.log" &
HTTP_PID=$!
# set +e: under errexit a failing (exit $rc_) would end the trap before cleanup.
trap 'rc_=$?; set +e; kill "$HTTP_PID" 2>/dev/null; wait "$HTTP_PID" 2>/dev/null; (exit $rc_); cleanup' EXIT
for _ in $(seq 100); do [ -s "$WORK/http.port" ] && break; sleep 0.05; done
HTTP=http://127.0.0.1:$(cat "$WORK/http.port")
expect_eq "file server is up" "$(curl -sf "$HTTP/data.csv" | head -n 1)" "x,y"

ferryd_start

proj=$(make_project xdir <<EOF
- step:
    name: inspect
    image: busybox
    command:
      - echo "inputs at start:" \$(cd "\$FERRY_INPUTS_DIR" && find . -type f | sort)
      - pwd > "\$FERRY_OUTPUTS_DIR/pwd.txt"
      - cat marker.txt > "\$FERRY_OUTPUTS_DIR/marker.txt"
      - env | grep -E '^(FERRY_|VH_|GREETING=|EMPTY_DEFAULT=)' | sort > "\$FERRY_OUTPUTS_DIR/env.txt"
      - cp -r "\$FERRY_CONFIG_DIR" "\$FERRY_OUTPUTS_DIR/config"
      - cd "\$FERRY_INPUTS_DIR" && for f in \$(find . -type f | sort); do echo "\$f=\$(cat "\$f" | tr '\n' ' ')"; done > "\$FERRY_OUTPUTS_DIR/inputs.txt"
    parameters:
      - name: epochs
        type: integer
        default: 3
      - name: lr
        type: float
        default: 0.25
      - name: verbose
        type: flag
        default: false
      - name: quiet
        type: flag
        default: false
      - name: title
        type: string
        default: none
      - name: layers
        type: string
        multiple: separate
        optional: true
    inputs:
      - name: data
        default: $HTTP/data.csv?token=secret123
      - name: many
        default:
          - $HTTP/data.csv
          - $HTTP/deep/b.txt
      - name: renamed
        default: $HTTP/original.txt
        filename: custom.txt
      - name: moved
        default: $HTTP/moved
        filename: moved.csv
      - name: local
        default: file:///nonexistent/replaced/on/the/command/line.txt
    environment-variables:
      - name: GREETING
        default: hello env
      - name: FERRY_EXECUTION_ID
        default: not-the-real-id
      - name: FERRY_OUTPUTS_DIR
        default: /nonexistent/outputs
- step:
    name: missing
    image: busybox
    command: echo "commands ran"
    inputs:
      - name: weights
        default: $HTTP/no-such-file.bin
- step:
    name: chain
    image: busybox
    command:
      - echo one
      - mkdir -p sub/inner
      - cd sub
      - cd inner
      - pwd > "\$FERRY_OUTPUTS_DIR/cwd.txt"
      - echo two
      - "false"
      - touch "\$FERRY_OUTPUTS_DIR/after-false.txt"
      - echo three
EOF
)
echo "project marker" >"$proj/marker.txt"

# --- inspect: everything the commands see ---
id=$(run_id "$proj" inspect -p epochs=7 -p verbose=true -p "title=hello world" \
  -p layers=a -p layers=b --input "local=file://$WORK/local.txt")
rc=0
"$FERRY" wait "$id" --timeout 30 >/dev/null || rc=$?
expect_eq "inspect: wait exit status" "$rc" 0
dl=$WORK/dl
"$FERRY" outputs "$id" --download "$dl" >/dev/null || fail "inspect: download failed"
counter=$(json_field "$id" 'e["counter"]')

env_of() { sed -n "s/^$1=//p" "$dl/env.txt"; }
repo=$(env_of FERRY_REPOSITORY_DIR)
exdir=$(dirname "$repo")
expect_eq "working folder is FERRY_REPOSITORY_DIR" "$(cat "$dl/pwd.txt")" "$repo"
expect_eq "a project file is in the working folder" "$(cat "$dl/marker.txt" 2>/dev/null)" "project marker"
expect_eq "FERRY_REPOSITORY_DIR is <exdir>/repository" "$(basename "$repo")" repository
expect_eq "FERRY_INPUTS_DIR" "$(env_of FERRY_INPUTS_DIR)" "$exdir/inputs"
expect_eq "FERRY_OUTPUTS_DIR (a step variable cannot move it)" "$(env_of FERRY_OUTPUTS_DIR)" "$exdir/outputs"
expect_eq "FERRY_CONFIG_DIR" "$(env_of FERRY_CONFIG_DIR)" "$exdir/config"
expect_eq "FERRY_EXECUTION_ID is the uuid (a step variable cannot change it)" \
  "$(env_of FERRY_EXECUTION_ID)" "$id"
expect_eq "the execution folder is named after the uuid" "$(basename "$exdir")" "$id"
expect_eq "FERRY_STEP" "$(env_of FERRY_STEP)" inspect
expect_eq "FERRY_PROJECT" "$(env_of FERRY_PROJECT)" xdir
expect_eq "FERRY_EXECUTION_COUNTER" "$(env_of FERRY_EXECUTION_COUNTER)" "$counter"
expect_eq "step environment variable default" "$(env_of GREETING)" "hello env"
expect_eq "no VH_ variables for a ferry.yaml project" "$(grep -c '^VH_' "$dl/env.txt" || true)" 0

# parameters.json: typed values.
expect_eq "config/parameters.json" "$(python3 -c '
import json, sys
p = json.load(open(sys.argv[1]))
print(json.dumps(p, sort_keys=True), [type(p[k]).__name__ for k in sorted(p)])
' "$dl/config/parameters.json")" \
  '{"epochs": 7, "layers": ["a", "b"], "lr": 0.25, "quiet": false, "title": "hello world", "verbose": true} '"['int', 'list', 'float', 'bool', 'str', 'bool']"

# inputs: downloaded before the commands started, into inputs/<name>/<file>.
expect_eq "inputs on disk" "$(cat "$dl/inputs.txt")" "./data/data.csv=x,y 1,2 
./local/local.txt=from a file url 
./many/b.txt=second file 
./many/data.csv=x,y 1,2 
./moved/moved.csv=x,y 1,2 
./renamed/custom.txt=renamed content "
expect_contains "inputs were there when the first command ran" "$("$FERRY" logs "$id" 2>/dev/null)" \
  "inputs at start: ./data/data.csv ./local/local.txt ./many/b.txt ./many/data.csv ./moved/moved.csv ./renamed/custom.txt"

# inputs.json: name, path and url (without its query string) per file.
expect_eq "config/inputs.json" "$(python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
inputs_dir, http, work = sys.argv[2:5]
want = {
    "data": [("data.csv", http + "/data.csv")],
    "many": [("data.csv", http + "/data.csv"), ("b.txt", http + "/deep/b.txt")],
    "renamed": [("custom.txt", http + "/original.txt")],
    "moved": [("moved.csv", http + "/moved")],
    "local": [("local.txt", "file://" + work + "/local.txt")],
}
bad = []
if sorted(d) != sorted(want):
    bad.append("names %s" % sorted(d))
for name, files in want.items():
    got = d.get(name, {}).get("files", [])
    if len(got) != len(files):
        bad.append("%s: %d files" % (name, len(got)))
        continue
    for g, (fname, url) in zip(got, files):
        if g.get("name") != fname or g.get("url") != url or g.get("path") != "%s/%s/%s" % (inputs_dir, name, fname):
            bad.append("%s: %s" % (name, g))
        # the Valohai format too: uri, size, checksums, metadata.
        sums = g.get("checksums") or {}
        if (g.get("uri") != url or not isinstance(g.get("size"), int) or g.get("metadata") != []
                or [len(sums.get(k, "")) for k in ("md5", "sha1", "sha256")] != [32, 40, 64]):
            bad.append("%s (Valohai fields): %s" % (name, g))
import hashlib
local = d.get("local", {}).get("files", [{}])[0]
body = open(work + "/local.txt", "rb").read()
if (local.get("size") != len(body) or local.get("checksums", {}).get("sha256") != hashlib.sha256(body).hexdigest()
        or local.get("checksums", {}).get("md5") != hashlib.md5(body).hexdigest()):
    bad.append("local: size or checksums: %s" % local)
print(bad)
' "$dl/config/inputs.json" "$exdir/inputs" "$HTTP" "$WORK")" "[]"
expect_not_contains "the query string is not in inputs.json" "$(cat "$dl/config/inputs.json")" "secret123"
expect_not_contains "the query string is not in the log" "$("$FERRY" logs "$id" 2>&1)" "secret123"

# execution.json: the execution object.
expect_eq "config/execution.json" "$(python3 -c '
import json, sys
e = json.load(open(sys.argv[1]))
print(e["id"], e["counter"], e["project"], e["step"], e["parameters"]["epochs"], e["parameters"]["title"])
' "$dl/config/execution.json")" "$id $counter xdir inspect 7 hello world"

# --- a missing input: error before the commands, and the log says which ---
id=$(run_id "$proj" missing)
rc=0
"$FERRY" wait "$id" --timeout 30 >/dev/null || rc=$?
expect_eq "missing input: wait exit status" "$rc" 1
expect_eq "missing input: status, exit code" "$(json_field "$id" 'e["status"], e["exit_code"]')" "error -1"
reason=$(json_field "$id" 'e["status_reason"]')
expect_contains "missing input: status_reason names the input" "$reason" 'input "weights"'
expect_contains "missing input: status_reason says 404" "$reason" "404"
log=$("$FERRY" logs "$id" 2>&1)
expect_contains "missing input: the log names the input" "$log" 'input "weights"'
expect_contains "missing input: the log names the file" "$log" "no-such-file.bin"
expect_contains "missing input: the log says 404" "$log" "404"
expect_not_contains "missing input: the commands did not run" "$log" "commands ran"

# --- a command list: in order, one shell, every command runs (a failure in
# the middle does not stop it); the status is the last command's (issue 18) ---
id=$(run_id "$proj" chain)
rc=0
"$FERRY" wait "$id" --timeout 30 >/dev/null || rc=$?
expect_eq "chain: wait exit status" "$rc" 0
expect_eq "chain: status, exit code" "$(json_field "$id" 'e["status"], e["exit_code"]')" "complete 0"
expect_eq "chain: stdout" "$("$FERRY" logs "$id" 2>/dev/null | tr '\n' ' ')" "one two three "
"$FERRY" outputs "$id" --download "$WORK/dl-chain" >/dev/null || true
cwd=$(cat "$WORK/dl-chain/cwd.txt" 2>/dev/null || echo missing)
expect_contains "chain: cd in one command carries to the next" "$cwd" "/repository/sub/inner"
expect_eq "chain: a command after the failure ran" \
  "$(test -e "$WORK/dl-chain/after-false.txt" && echo ran || echo "did not run")" "ran"

finish
