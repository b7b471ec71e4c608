#!/usr/bin/env bash
# Bad input, from the CLI and straight to the API: each gets a clear error and
# a non-zero exit (or a 4xx with a JSON "error"), nothing is created, and
# ferryd survives it all: earlier executions are still there, the counter is
# not used up, and a valid run still works.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ferryd_start

P=$(make_project inputs <<'EOF'
- step:
    name: train
    image: none
    command: echo trained {parameters}
    parameters:
      - name: epochs
        type: integer
        default: 3
        min: 1
        max: 10
- step:
    name: needs-data
    image: none
    command: ls $FERRY_INPUTS_DIR
    inputs:
      - name: dataset
EOF
)

# Run the CLI in DIR; sets RC and OUT (stdout and stderr).
cli() { # cli DIR ARGS...
  local dir=$1
  shift
  RC=0
  OUT=$(cd "$dir" && "$FERRY" "$@" 2>&1) || RC=$?
}

count_executions() {
  curl -sS "$FERRY_SERVER/v1/executions" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["executions"]))'
}

# A valid run first: it must still be there at the end.
cli "$P" run train --watch
expect_eq "a first valid run completes" "$RC" 0
first=$(json_field 1 'e["id"]')

# --- the CLI: step file, step, parameters, inputs ---
B=$(make_project broken-yaml <<'EOF'
- step:
    name: train
    image: none
    command: [echo,
  - what: : :
EOF
)
cli "$B" run train
expect_eq "malformed step file: exit 2" "$RC" 2
expect_contains "malformed step file: names the file and line" "$OUT" "ferry.yaml:5"

B2=$(make_project not-a-list <<'EOF'
step: {name: train}
EOF
)
cli "$B2" run train
expect_eq "step file of the wrong shape: exit 2" "$RC" 2
expect_contains "step file of the wrong shape: names the file" "$OUT" "ferry.yaml"

E=$WORK/empty-folder
mkdir -p "$E"
cli "$E" run train
expect_eq "no step file: exit 2" "$RC" 2
expect_contains "no step file: says so" "$OUT" "no ferry.yaml"

cli "$P" run trian
expect_eq "unknown step: exit 2" "$RC" 2
expect_contains "unknown step: names it" "$OUT" "trian"
expect_contains "unknown step: lists the known steps" "$OUT" "train, needs-data"

cli "$P" run train -p epochs=abc
expect_eq "bad integer: exit 2" "$RC" 2
expect_contains "bad integer: names the parameter" "$OUT" "epochs"
expect_contains "bad integer: says why" "$OUT" "not an integer"

cli "$P" run train -p epochs=11
expect_eq "above max: exit 2" "$RC" 2
expect_contains "above max: names the parameter" "$OUT" "epochs"
expect_contains "above max: names the maximum" "$OUT" "maximum 10"

cli "$P" run train -p epochs=0
expect_eq "below min: exit 2" "$RC" 2
expect_contains "below min: names the minimum" "$OUT" "minimum 1"

cli "$P" run train -p epochs
expect_eq "-p without a value: exit 2" "$RC" 2
expect_contains "-p without a value: says NAME=VALUE" "$OUT" "NAME=VALUE"

cli "$P" run train -p nosuch=1
expect_eq "unknown parameter: exit 2" "$RC" 2
expect_contains "unknown parameter: names it" "$OUT" "nosuch"

cli "$P" run needs-data
expect_eq "missing required input: exit 2" "$RC" 2
expect_contains "missing required input: names it" "$OUT" "dataset"

cli "$P" run train --server http://127.0.0.1:1
expect_eq "ferryd not reachable: exit 4" "$RC" 4
expect_contains "ferryd not reachable: names the URL" "$OUT" "http://127.0.0.1:1"
cli "$P" list --server http://127.0.0.1:1
expect_eq "ferryd not reachable (list): exit 4" "$RC" 4
expect_contains "ferryd not reachable (list): names the URL" "$OUT" "http://127.0.0.1:1"

cli "$P" run train -e mars
expect_eq "unknown environment: exit 5 (ferryd refused)" "$RC" 5
expect_contains "unknown environment: names it" "$OUT" "mars"
expect_contains "unknown environment: lists the known ones" "$OUT" "local"

cli "$P" show 999
expect_eq "show of an unknown execution: exit 5" "$RC" 5
expect_contains "show of an unknown execution: names it" "$OUT" "999"

expect_eq "no execution was created by the bad runs" "$(count_executions)" 1

# --- the API, straight: a 4xx with a JSON error for each ---
S=$(json_field 1 'e["snapshot"]')
api() { # api METHOD PATH [BODY]: sets CODE and BODY
  local args=(-sS -o "$WORK/api.out" -w '%{http_code}' -X "$1" "$FERRY_SERVER$2")
  [ $# -ge 3 ] && args+=(-H 'Content-Type: application/json' --data-binary "$3")
  CODE=$(curl "${args[@]}")
  BODY=$(cat "$WORK/api.out")
}
# The value of a top-level key of $BODY, '' when absent.
body_field() {
  python3 -c 'import json,sys; v=json.loads(sys.argv[1]).get(sys.argv[2], ""); print(v if isinstance(v, str) else json.dumps(v))' "$BODY" "$1" 2>/dev/null ||
    echo "<body is not JSON: $BODY>"
}
create() { api POST /v1/executions "$1"; }

create '{"project": "inputs", "step": '
expect_eq "malformed JSON: 400" "$CODE" 400
expect_contains "malformed JSON: JSON error" "$(body_field error)" "JSON"

create '["a", "list"]'
expect_eq "a JSON list: 400" "$CODE" 400
expect_contains "a JSON list: error" "$(body_field error)" "object"

create '{"project": "inputs", "step": "train", "snapshot": "'"$(printf '%064d' 0)"'"}'
expect_eq "unknown snapshot: 404" "$CODE" 404
expect_contains "unknown snapshot: error names it" "$(body_field error)" "$(printf '%064d' 0)"

create '{"project": "inputs", "step": "trian", "snapshot": "'"$S"'"}'
expect_eq "unknown step: 400" "$CODE" 400
expect_contains "unknown step: names the known steps" "$(body_field error)" "train, needs-data"
expect_eq "unknown step: field" "$(body_field field)" step

create '{"project": "inputs", "step": "train", "snapshot": "'"$S"'", "parameters": {"epochs": "abc"}}'
expect_eq "bad parameter: 400" "$CODE" 400
expect_eq "bad parameter: field" "$(body_field field)" parameters
expect_contains "bad parameter: names it" "$(body_field error)" "epochs"
expect_contains "bad parameter: says why" "$(body_field error)" "not an integer"

create '{"project": "inputs", "step": "train", "snapshot": "'"$S"'", "parameters": {"epochs": 5000}}'
expect_eq "parameter above max: 400" "$CODE" 400
expect_contains "parameter above max: says so" "$(body_field error)" "maximum"

create '{"project": "inputs", "step": "train", "snapshot": "'"$S"'", "parameters": {"epochs": 2.5}}'
expect_eq "a float for an integer: 400" "$CODE" 400
expect_eq "a float for an integer: field" "$(body_field field)" parameters

create '{"project": "inputs", "step": "train", "snapshot": "'"$S"'", "environment": "mars"}'
expect_eq "unknown environment: 400" "$CODE" 400
expect_contains "unknown environment: names it" "$(body_field error)" "mars"
expect_contains "unknown environment: lists the known" "$(body_field error)" "local"

create '{"project": "inputs", "step": "needs-data", "snapshot": "'"$S"'"}'
expect_eq "missing input: 400" "$CODE" 400
expect_contains "missing input: names it" "$(body_field error)" "dataset"

create '{"project": "inputs", "snapshot": "'"$S"'"}'
expect_eq "no step: 400" "$CODE" 400
expect_contains "no step: names the field" "$(body_field error)$(body_field field)" "step"

create '{"project": "inputs", "step": 42, "snapshot": "'"$S"'"}'
expect_eq "step of the wrong type: 400" "$CODE" 400

# --- query parameters that can't be read are a 400 naming them, never "no
# filter": ?project=%zz% used to list every execution the user may see ---
bad_query() { # bad_query WHAT PATH PARAM
  api GET "$2"
  expect_eq "$1: 400" "$CODE" 400
  expect_eq "$1: field" "$(body_field field)" "$3"
  expect_contains "$1: names the parameter" "$(body_field error)" "'$3'"
}
bad_query "a malformed %-escape in the project filter" "/v1/executions?project=%zz%" project
bad_query "a cut-short %-escape in the status filter" "/v1/executions?status=%4" status
bad_query "%00 in the step filter" "/v1/executions?step=a%00b" step
bad_query "a malformed limit" "/v1/executions?project=inputs&limit=%x1" limit
bad_query "a project filter too long to hold" "/v1/executions?project=$(printf 'p%.0s' {1..300})" project
bad_query "a malformed project of one execution" "/v1/executions/$first?project=%zz" project
bad_query "a malformed after of the logs" "/v1/executions/$first/logs?after=%zz" after
bad_query "a malformed follow of the logs" "/v1/executions/$first/logs?follow=1%" follow
bad_query "a malformed timeout of wait" "/v1/executions/$first/wait?timeout=%G1" timeout
api GET "/v1/executions?project=inp%75ts"
expect_eq "a well-formed %-escape still filters: 200" "$CODE" 200
expect_eq "... and finds the execution" \
  "$(python3 -c 'import json,sys; print(len(json.loads(sys.argv[1])["executions"]))' "$BODY")" 1
api GET "/v1/executions?project=%6eope"
expect_eq "... and filters out what does not match" \
  "$(python3 -c 'import json,sys; print(len(json.loads(sys.argv[1])["executions"]))' "$BODY")" 0

# A snapshot that is not a gzip'd tar, and one without a step file.
api POST /v1/snapshots "this is not a tarball"
junk=$(body_field snapshot)
if [ "$CODE" == 201 ]; then
  create '{"project": "inputs", "step": "train", "snapshot": "'"$junk"'"}'
  expect_eq "a snapshot that is not a tarball: 400" "$CODE" 400
  expect_contains "... with an error" "$BODY" '"error"'
else
  expect_eq "a snapshot that is not a tarball: refused with 400" "$CODE" 400
fi
mkdir -p "$WORK/nostepfile" && echo hi >"$WORK/nostepfile/README"
tar -czf "$WORK/nostepfile.tgz" -C "$WORK/nostepfile" .
CODE=$(curl -sS -o "$WORK/api.out" -w '%{http_code}' --data-binary @"$WORK/nostepfile.tgz" \
  -H 'Content-Type: application/gzip' "$FERRY_SERVER/v1/snapshots")
BODY=$(cat "$WORK/api.out")
expect_eq "upload of a snapshot without a step file" "$CODE" 201
create '{"project": "inputs", "step": "train", "snapshot": "'"$(body_field snapshot)"'"}'
expect_eq "a snapshot without a step file: 400" "$CODE" 400
expect_contains "a snapshot without a step file: says so" "$(body_field error)" "ferry.yaml"

api GET /v1/executions/nonexistent
expect_eq "GET an unknown execution: 404" "$CODE" 404
expect_contains "GET an unknown execution: JSON error" "$(body_field error)" "nonexistent"
api GET /v1/executions/999/logs
expect_eq "logs of an unknown execution: 404" "$CODE" 404
api POST /v1/executions/nonexistent/stop
expect_eq "stop of an unknown execution: 404" "$CODE" 404
api GET /v1/executions/$first/outputs/no-such-file
expect_eq "an unknown output: 404" "$CODE" 404
api GET /v1/executions/$first/outputs/../../ferry.db
expect_eq "an output path with ..: 4xx" "${CODE:0:1}" 4
# Under /v1 an unknown path is the API's JSON 404; elsewhere it is a page
# of the web app, which finds its route itself.
api GET /garbage
expect_eq "GET /garbage: the web app" "$CODE" 200
expect_contains "GET /garbage: the web app's page" "$BODY" "<!doctype html>"
for path in /v1/garbage /v1 /v1/nothing/here /v1/executions/$first/nothing "/v1/executions/$first/logs/extra"; do
  api GET "$path"
  expect_eq "GET $path: 404" "$CODE" 404
  expect_contains "GET $path: JSON error" "$BODY" '"error"'
done
api DELETE /v1/executions
expect_eq "DELETE /v1/executions: 404 or 405" "$([ "$CODE" == 404 ] || [ "$CODE" == 405 ] && echo ok || echo "$CODE")" ok
api GET /v1/executions/%zz
expect_eq "invalid percent-encoding: 400" "$CODE" 400
expect_contains "invalid percent-encoding: JSON error" "$BODY" '"error"'
api GET "/v1/executions/%00"
expect_eq "a NUL in the path: 4xx" "${CODE:0:1}" 4
api GET "/v1/executions?status=nonsense"
expect_eq "an unknown status filter: 400" "$CODE" 400
expect_contains "an unknown status filter: names it" "$(body_field error)" "nonsense"
api GET "/v1/executions/$first/wait?timeout=abc"
expect_eq "a non-numeric wait timeout: 400" "$CODE" 400

# --- hostile requests: ferryd answers or drops them, and keeps serving ---
python3 - "$FERRY_SERVER" <<'EOF' >"$WORK/hostile.out" 2>&1 || fail "hostile requests: $(cat "$WORK/hostile.out")"
import socket, sys, urllib.parse
u = urllib.parse.urlsplit(sys.argv[1])

def conn():
    s = socket.create_connection((u.hostname, u.port), timeout=10)
    return s

def send(data, read=True, shut=False):
    s = conn()
    try:
        s.sendall(data)
    except OSError:
        pass  # ferryd may close on us mid-way: that is fine
    if shut:
        try:
            s.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # already closed by ferryd
    answer = b""
    if read:
        try:
            while True:
                b = s.recv(65536)
                if not b:
                    break
                answer += b
        except OSError:
            pass
    s.close()
    return answer

# A 1 MiB header.
a = send(b"GET /v1/executions HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (1 << 20) + b"\r\n\r\n")
if a and not (a.startswith(b"HTTP/1.1 4") or a.startswith(b"HTTP/1.0 4")):
    sys.exit("a 1 MiB header was answered with %r" % a[:60])
# Thousands of headers.
send(b"GET /v1/executions HTTP/1.1\r\nHost: x\r\n" + b"X-A: b\r\n" * 20000 + b"\r\n")
# A body shorter than its Content-Length, then the connection closes.
send(b"POST /v1/executions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
     b"Content-Length: 100000\r\n\r\n{\"project\": ", read=False)
send(b"POST /v1/snapshots HTTP/1.1\r\nHost: x\r\nContent-Length: 5000000\r\n\r\n" + b"x" * 1000,
     read=False)
# A negative and an absurd Content-Length.
send(b"POST /v1/executions HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n{}", shut=True)
send(b"POST /v1/executions HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n{}",
     shut=True)
# Not HTTP at all, and a bare newline storm.
send(b"\x00\xff\x16\x03\x01 hello there\r\n\r\n", shut=True)
send(b"\r\n" * 10000, shut=True)
# A request line with no version, an absurd method, a very long path.
send(b"GET /v1/executions\r\n\r\n", shut=True)
send(b"FROBNICATE /v1/executions HTTP/1.1\r\nHost: x\r\n\r\n", shut=True)
send(b"GET /" + b"a" * 200000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
# Invalid percent-encoding, through a raw socket too.
a = send(b"GET /v1/executions/%zz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
if not a.startswith(b"HTTP/1.1 4"):
    sys.exit("%%zz was answered with %r" % a[:60])
# Chunked body that never ends.
send(b"POST /v1/executions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab", read=False)
# A connection opened and closed without a byte.
conn().close()
EOF
if kill -0 "$FERRYD_PID" 2>/dev/null; then pass; else fail "ferryd died from the hostile requests"; fi
api GET /v1/executions
expect_eq "after the hostile requests ferryd still answers" "$CODE" 200

# --- inputs no store or downloader serves: refused at submission, naming
# the input and the scheme (issue 18, point 11), not later on a worker ---
for url in gs://bucket/data.csv azure://container/data.csv dataset://mnist/v1; do
  cli "$P" run needs-data --input "dataset=$url"
  expect_eq "input $url: refused by ferryd (exit 5)" "$RC" 5
  expect_contains "input $url: names the input and the scheme" "$OUT" \
    "input 'dataset': $url cannot be read: no loaded store plugin reads ${url%%://*}:// URLs"
done

# --- nothing was lost, nothing was created, and a run still works ---
expect_eq "still exactly one execution" "$(count_executions)" 1
expect_eq "the first execution is still listed" "$(json_field 1 'e["id"]')" "$first"
expect_eq "the first execution is still complete" "$(json_field 1 'e["status"]')" complete
cli "$P" run train -p epochs=4 --watch
expect_eq "a valid run after all of it completes" "$RC" 0
expect_contains "... with its parameter" "$OUT" "trained --epochs=4"
expect_eq "the refused requests used no counter" "$(json_field 2 'e["step"]')" train
expect_eq "... the new one is #2" "$(json_field 2 'e["counter"]')" 2
if kill -0 "$FERRYD_PID" 2>/dev/null; then pass; else fail "ferryd is gone at the end"; fi

finish
