#!/usr/bin/env bash
# The web UI (issue 9) in a real browser: Debian's chromium driven by
# playwright-core (tests/web/test_web.mjs). ferryd with users: sign in with
# a token, see a running execution's log lines arrive (stdout and stderr
# apart), a metadata chart with the points printed so far and then the new
# ones, download an output and compare its bytes, pause and resume a log,
# load the earlier lines of a long log, stop an execution and see it
# stopped, filter the list, see the pool on the environments page, see
# pipelines listed, a pipeline's graph follow its nodes live, approve a
# node that waits and stop another pipeline; and a
# ferryd without users shows the app with no sign-in. Also, over plain
# HTTP: the assets' types and cache headers, and that /v1 stays the API.
# Screenshots of each page go to the work dir and to
# ${FERRY_TEST_ARTIFACTS:-<build>/test-artifacts}/web/.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_sched.sh"
. "$(dirname "$0")/lib_git.sh"

NODE_DIR=$FERRY_SOURCE_DIR/tests/web
CHROMIUM=${FERRY_CHROMIUM:-/usr/bin/chromium}
ARTIFACTS=${FERRY_TEST_ARTIFACTS:-$FERRY_BUILD_DIR/test-artifacts}/web
SHOTS=$WORK/screenshots
M=$WORK/markers
mkdir -p "$SHOTS" "$M"

if [ ! -x "$CHROMIUM" ]; then
  echo "test_web: $CHROMIUM is missing (scripts/install-deps.sh installs Debian's chromium)" >&2
  exit 1
fi
if [ ! -f "$NODE_DIR/node_modules/playwright-core/package.json" ]; then
  (cd "$NODE_DIR" && npm ci --no-audit --no-fund --loglevel=error) >&2 || {
    echo "test_web: npm ci in $NODE_DIR failed" >&2
    exit 1
  }
fi

T_ALICE="alice-$$-$RANDOM"
cat >"$WORK/ferryd.conf" <<EOF
users = ( { name = "alice"; token_sha256 = "$(sha256_of "$T_ALICE")"; } );
environments = ( { name = "local"; compute = "local"; max_workers = 3; } );
EOF
ferryd_start -c "$WORK/ferryd.conf"

# A second ferryd on the unauthenticated loopback default: no sign-in; a
# project linked to a repository there, for an execution of a commit.
git_make_repo "$GIT_T/src"
git_make_bare "$GIT_T/src" "$GIT_T/mnist.git"
COMMIT_SHA=$(git -C "$GIT_T/src" rev-parse HEAD)
printf 'projects = ( { name = "mnist"; repository = "file://%s"; } );\n' "$GIT_T/mnist.git" >"$WORK/open.conf"
OPEN_PID=
# set +e: under -e, `(exit $rc)` of a failed run would end the trap before
# lib.sh's cleanup (which reads the status as $?) stops the first ferryd.
trap 'rc=$?; set +e; [ -n "$OPEN_PID" ] && kill "$OPEN_PID" 2>/dev/null; (exit $rc); cleanup' EXIT
"$BIN/ferryd" -c "$WORK/open.conf" --data-dir "$WORK/open-data" --listen 127.0.0.1:0 >"$WORK/open.log" 2>&1 &
OPEN_PID=$!

P=$(make_project webproj <<'EOF'
- step:
    name: train
    image: none
    command: sh train.sh
    parameters:
      - name: epochs
        type: integer
        default: 7
      - name: lr
        type: float
        default: 0.01
- step:
    name: sleeper
    image: none
    command: sh sleeper.sh
- step:
    name: flood
    image: none
    command: i=1; while [ $i -le 2500 ]; do echo "flood line $i"; i=$((i+1)); done
- step:
    name: pipe-prep
    image: none
    command: sh pipe.sh prep
- step:
    name: pipe-fit
    image: none
    command: sh pipe.sh fit
    inputs:
      - name: model
    parameters:
      - name: n
        type: integer
        default: 3
- step:
    name: pipe-publish
    image: none
    command: sh pipe.sh publish
    inputs:
      - name: model
    parameters:
      - name: n
        type: integer
        default: 1
- step:
    name: pipe-hold
    image: none
    command: sh pipe.sh hold
    parameters:
      - name: n
        type: integer
        default: 1
- step:
    name: pipe-last
    image: none
    command: sh pipe.sh last
    parameters:
      - name: n
        type: integer
        default: 1
# prep -> fit -> publish, and prep -> publish over a column: publish waits
# for an approval before it runs.
- pipeline:
    name: web-flow
    nodes:
      - name: prep
        type: execution
        step: pipe-prep
      - name: fit
        type: execution
        step: pipe-fit
      - name: publish
        type: execution
        step: pipe-publish
        actions:
          - when: node-starting
            then: require-approval
    edges:
      - [prep.output.model*, fit.input.model]
      - [fit.parameter.n, publish.parameter.n]
      - [prep.output.model*, publish.input.model]
# hold runs until it is stopped (two minutes at most).
- pipeline:
    name: web-slow
    nodes:
      - name: hold
        type: execution
        step: pipe-hold
      - name: last
        type: execution
        step: pipe-last
    edges:
      - [hold.parameter.n, last.parameter.n]
EOF
)
cat >"$P/pipe.sh" <<'EOF'
echo "pipeline node $1"
case $1 in
prep) echo "model of prep" >"$FERRY_OUTPUTS_DIR/model.txt" ;;
hold) n=0; while [ $n -lt 1200 ]; do sleep 0.1; n=$((n + 1)); done ;;
esac
EOF
# Five points, then the gate; two more once the test opens it.
cat >"$P/train.sh" <<EOF
echo "hello from train"
echo "warming up on stderr" >&2
for e in 1 2 3 4 5; do
  echo "{\"epoch\": \$e, \"loss\": \$(awk "BEGIN { print 1 / \$e }"), \"phase\": \"warm\"}"
  echo "epoch \$e done"
done
cp model.bin "\$FERRY_OUTPUTS_DIR/model.bin"
mkdir -p "\$FERRY_OUTPUTS_DIR/sub"
echo notes >"\$FERRY_OUTPUTS_DIR/sub/notes.txt"
echo '{"valohai.alias": "best-model", "valohai.tags": ["web"], "stage": "prod"}' >"\$FERRY_OUTPUTS_DIR/model.bin.metadata.json"
n=0
while [ ! -e "$M/open-train" ] && [ \$n -lt 1200 ]; do sleep 0.05; n=\$((n + 1)); done
for e in 6 7; do
  echo "{\"epoch\": \$e, \"loss\": \$(awk "BEGIN { print 1 / \$e }")}"
  echo "epoch \$e done"
done
echo "training done"
EOF
cat >"$P/sleeper.sh" <<'EOF'
echo "sleeping"
n=0
while [ $n -lt 300 ]; do echo "tick $n"; sleep 0.2; n=$((n + 1)); done
EOF
head -c 100000 /dev/urandom >"$P/model.bin"

export FERRY_TOKEN=$T_ALICE
FLOOD=$(run_id "$P" flood)
SLEEPER=$(run_id "$P" sleeper --tag nap)
TRAIN=$(run_id "$P" train --tag web --tag try-1)
# The snapshot the browser test's pipelines run (it creates them once the
# execution list checks are done: their nodes are executions too).
SNAPSHOT=$(json_field "$TRAIN" 'e["snapshot"]')
PROJECT=$(json_field "$TRAIN" 'e["project"]')

# --- the assets over plain HTTP ---
hdr() { curl -sS -D - -o /dev/null "$@" | tr -d '\r'; }
h=$(hdr "$FERRY_SERVER/")
expect_contains "/ is the app's page" "$h" "content-type: text/html; charset=utf-8"
expect_contains "/ has a content security policy" "$h" "content-security-policy: default-src 'self'"
expect_contains "/ revalidates" "$h" "cache-control: no-cache"
expect_contains "an app URL is the page too" "$(hdr "$FERRY_SERVER/executions/$TRAIN")" "content-type: text/html"
h=$(hdr "$FERRY_SERVER/assets/js/app.js")
expect_contains "a script's type" "$h" "content-type: text/javascript"
etag=$(sed -n 's/^etag: //p' <<<"$h")
expect_eq "a script has an ETag" "${etag:0:1}" '"'
code=$(curl -sS -o /dev/null -w '%{http_code}' -H "If-None-Match: $etag" "$FERRY_SERVER/assets/js/app.js")
expect_eq "an unchanged script answers 304" "$code" 304
expect_contains "the chart library is served" "$(hdr "$FERRY_SERVER/assets/vendor/uPlot.iife.min.js")" "200 OK"
expect_eq "a missing asset is a 404" "$(curl -sS -o /dev/null -w '%{http_code}' "$FERRY_SERVER/assets/nope.js")" 404
api "" GET /v1/executions >/dev/null
expect_eq "/v1 stays the API: no token, 401" "$(http_code)" 401
body=$(api "" GET /v1/nope)
expect_contains "/v1/nope is the API's JSON 404" "$body" '"error"'

# --- the browser ---
OPEN_URL=
for _ in $(seq 100); do
  OPEN_URL=$(sed -n 's/.*listening on \(http:[^ ]*\).*/\1/p' "$WORK/open.log" | head -n 1)
  [ -n "$OPEN_URL" ] && break
  sleep 0.05
done
[ -n "$OPEN_URL" ] || fail "the ferryd without users did not start: $(cat "$WORK/open.log")"
COMMIT_ID=$(curl -sS -H 'Content-Type: application/json' \
  --data-binary '{"project": "mnist", "step": "train", "commit": "main"}' "$OPEN_URL/v1/executions" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')

rc=0
FERRY_URL=$FERRY_SERVER FERRY_OPEN_URL=$OPEN_URL FERRY_WEB_TOKEN=$T_ALICE \
  COMMIT_ID=$COMMIT_ID COMMIT_SHA=$COMMIT_SHA SNAPSHOT=$SNAPSHOT PROJECT=$PROJECT TRAIN_ID=$TRAIN SLEEPER_ID=$SLEEPER FLOOD_ID=$FLOOD MARKERS=$M MODEL=$P/model.bin \
  SHOTS=$SHOTS PROFILE=$WORK/chromium-profile CHROMIUM=$CHROMIUM \
  timeout 180 node "$NODE_DIR/test_web.mjs" || rc=$?
expect_eq "the browser test passes" "$rc" 0
mkdir -p "$ARTIFACTS"
rm -f "$ARTIFACTS"/*.png # this run's only
cp "$SHOTS"/*.png "$ARTIFACTS"/ 2>/dev/null || true
echo "screenshots: $SHOTS (copied to $ARTIFACTS)"

# What the browser did, as the API sees it.
expect_eq "the stopped execution is stopped" "$(json_field "$SLEEPER" 'e["status"]')" stopped
expect_eq "the train execution completed" "$(json_field "$TRAIN" 'e["status"]')" complete
pipe() { # pipe NAME PYTHON-EXPR (on `p`, the newest pipeline of that name; `n`, its nodes by name)
  api "$T_ALICE" GET /v1/pipelines | python3 -c "import json,sys
p=[p for p in json.load(sys.stdin)['pipelines'] if p['name'] == '$1'][0]
n={x['name']: x for x in p['nodes']}
print($2)"
}
expect_eq "the approved pipeline completed" "$(pipe web-flow 'p["status"]')" complete
expect_eq "its node was approved by alice" "$(pipe web-flow 'n["publish"]["approval"], n["publish"]["approval_by"]')" "approved alice"
expect_eq "the node ran after its approval" "$(pipe web-flow 'n["publish"]["execution"]["status"]')" complete
expect_eq "the stopped pipeline is stopped" "$(pipe web-slow 'p["status"]')" stopped
expect_eq "its running node was stopped" "$(pipe web-slow 'n["hold"]["execution"]["status"]')" stopped
# The log names the status it ended with (it once read it after freeing it).
expect_contains "ferryd logs the stopped pipeline's end" "$(cat "$FERRYD_LOG")" "(web-slow) of $PROJECT: stopped: stopped by alice"

# --- what the UI asks of the API beyond the CLI ---
ev_i() { python3 -c 'import json,sys; print(" ".join(str(json.loads(l)["i"]) for l in sys.stdin if l.strip()))'; }
meta=$(api "$T_ALICE" GET "/v1/executions/$TRAIN/logs?metadata=1")
expect_eq "logs?metadata=1: the 7 points" "$(python3 -c 'import json,sys; print(sum(1 for l in sys.stdin if isinstance(json.loads(json.loads(l)["text"]), dict)))' <<<"$meta")" 7
expect_eq "logs?metadata=1&tail=2: the last 2" "$(api "$T_ALICE" GET "/v1/executions/$TRAIN/logs?metadata=1&tail=2" | ev_i)" \
  "$(ev_i <<<"$meta" | tr ' ' '\n' | tail -n 2 | paste -sd' ')"
expect_eq "logs?before=10&tail=3" "$(api "$T_ALICE" GET "/v1/executions/$TRAIN/logs?before=10&tail=3" | ev_i)" "7 8 9"
expect_eq "logs?after=2&before=5" "$(api "$T_ALICE" GET "/v1/executions/$TRAIN/logs?after=2&before=5" | ev_i)" "3 4"
steps=$(api "$T_ALICE" GET "/v1/executions?step=train" | python3 -c 'import json,sys; print(" ".join(e["step"] for e in json.load(sys.stdin)["executions"]))')
expect_eq "executions?step=train" "$steps" train
expect_eq "executions?limit=2" "$(api "$T_ALICE" GET "/v1/executions?limit=2" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["executions"]))')" 2
api "$T_ALICE" GET "/v1/executions?limit=0" >/dev/null
expect_eq "executions?limit=0 is refused" "$(http_code)" 400
finish
