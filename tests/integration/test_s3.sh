#!/usr/bin/env bash
# ferryd with the s3-storage store, end to end (issue 6), against the s3rver
# of tests/services and, for failures on purpose, tests/fakes/fake_s3.py:
#  - at start ferryd exits non-zero naming S3's code for a missing bucket
#    (NoSuchBucket) and an unknown key (InvalidAccessKeyId);
#  - snapshots are stored in S3 and reach the agent as presigned GET URLs;
#    outputs go up from the agent to presigned PUT URLs, and a 20 MB one in
#    parts (4 of 5 MiB: its ETag ends in "-4"); the bytes are checked with
#    aws-cli and `ferry outputs --download`, which follows ferryd's 302 to a
#    presigned GET (also over the API);
#  - the agent never holds the keys: the secret key appears nowhere in the
#    agent's environment, command line or log, the commands' environment,
#    the execution log, or a work spec (read by a hand-made agent that
#    joins a static environment and checks the spec and the outputs answer);
#  - s3:// inputs (an object aws-cli put, and a step default): checked at
#    submission (a 400 naming the input and the URL when missing), presigned
#    with size and ETag in the spec, downloaded once per worker and taken
#    from its cache by the next execution;
#  - s3:// inputs need the s3-storage store (a clear 400 otherwise);
#  - a store error during an execution ends it in error with S3's code in
#    status_reason: the bucket deleted mid-run (NoSuchBucket), a part refused
#    and a refused CompleteMultipartUpload (AccessDenied, fake_s3); the
#    upload is aborted, no part lingers and the output is not recorded, also
#    when the agent is killed in the middle of an upload.
# It fails, saying so, when s3rver is not running (tests/services/all.sh start).
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib_sched.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib_git.sh"

EP=${FERRY_TEST_S3_ENDPOINT:-}
BUCKET=${FERRY_TEST_S3_BUCKET:-ferry-test}
if [ -z "$EP" ] || ! curl -s -o /dev/null --max-time 3 "$EP/"; then
  echo "FAIL: s3rver is not running (FERRY_TEST_S3_ENDPOINT='$EP'): start the test services" \
    "with tests/services/all.sh start" >&2
  exit 1
fi
[ -x /usr/bin/aws ] || {
  echo "FAIL: aws-cli is not installed at /usr/bin/aws (Debian's awscli)" >&2
  exit 1
}

# s3rver knows the access key id S3RVER and checks no signature, so the
# secret key can be one that only this test knows: it must never show up
# anywhere an agent or a user could see it. ferryd reads both keys from its
# environment, the way aws-cli does.
SECRET="ferry-secret-$$-$RANDOM$RANDOM"
export AWS_ACCESS_KEY_ID=${FERRY_TEST_S3_ACCESS_KEY_ID:-S3RVER} AWS_SECRET_ACCESS_KEY=$SECRET
export AWS_DEFAULT_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
export AWS_CONFIG_FILE=$WORK/aws-config AWS_SHARED_CREDENTIALS_FILE=$WORK/aws-credentials
: >"$AWS_CONFIG_FILE"
: >"$AWS_SHARED_CREDENTIALS_FILE"
aws() { /usr/bin/aws --endpoint-url "$EP" "$@"; }
PREFIX="test-s3-$$-$RANDOM/"
JOIN="join-$$-$RANDOM"
FAKE_PID=
GONE=
# On the way out: the fake stops, and this test's objects leave s3rver.
# shellcheck disable=SC2154 # rc_ is set inside the trap
trap 'rc_=$?; set +e; touch "$M/open-all"; [ -n "$FAKE_PID" ] && kill "$FAKE_PID" 2>/dev/null
  aws s3 rm --quiet --recursive "s3://$BUCKET/$PREFIX" >/dev/null 2>&1
  [ -n "$GONE" ] && aws s3 rb --force "s3://$GONE" >/dev/null 2>&1; (exit $rc_); cleanup' EXIT

# Run the CLI in DIR; sets RC and OUT (stdout and stderr).
cli() { # cli DIR ARGS...
  local dir=$1
  shift
  RC=0
  OUT=$(cd "$dir" && "$FERRY" "$@" 2>&1) || RC=$?
}

conf() { # conf NAME < body: a config file, its path printed
  cat >"$WORK/$1.conf"
  echo "$WORK/$1.conf"
}

s3_store() { # s3_store BUCKET [ENDPOINT]: the store block of the tests
  echo "store = { plugin = \"s3-storage\"; bucket = \"$1\"; prefix = \"$PREFIX\";" \
    "endpoint = \"${2:-$EP}\"; multipart_threshold = \"5MiB\"; part_size = \"5MiB\"; };"
}

# --- at start: S3's own code for a missing bucket and a wrong key ---
start_fails() { # start_fails WHAT CONFIG EXPECTED
  local rc=0
  "$BIN/ferryd" -c "$2" --data-dir "$WORK/refused" --listen 127.0.0.1:0 >"$WORK/refused.log" 2>&1 || rc=$?
  if [ "$rc" -ne 0 ]; then pass; else fail "$1: ferryd started"; fi
  expect_contains "$1: the message carries S3's code" "$(cat "$WORK/refused.log")" "$3"
}
start_fails "a missing bucket" "$(s3_store "no-such-bucket-$$" | conf nobucket)" NoSuchBucket
AWS_ACCESS_KEY_ID=NOSUCHKEY start_fails "a wrong key" "$(s3_store "$BUCKET" | conf wrongkey)" \
  InvalidAccessKeyId

# --- ferryd on s3rver ---
git_serve_repo # a project's repository: the snapshot of a commit goes to S3 too
cat >"$WORK/main.conf" <<EOF
$(s3_store "$BUCKET")
projects = ( { name = "mnist"; repository = "$GIT_DAEMON_URL"; } );
environments = ( { name = "local"; compute = "local"; runtime = "local-process"; max_workers = 1; },
                 { name = "probe"; compute = "static"; join_token_sha256 = "$(sha256_of "$JOIN")"; } );
EOF
ferryd_start -c "$WORK/main.conf"

# An execution of a commit: its snapshot, built by ferryd, is stored in S3
# (the agent fetches it from there) and kept in ferryd's cache for the step
# file; nothing is left in ferryd's tmp.
cid=$(curl -sS -H 'Content-Type: application/json' \
  --data-binary '{"project": "mnist", "step": "train", "commit": "main"}' "$FERRY_SERVER/v1/executions" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
"$FERRY" wait "$cid" --timeout 60 >/dev/null || true
expect_eq "a commit's execution on the S3 store: complete" "$(json_field "$cid" 'e["status"]')" complete
expect_contains "a commit's execution: its files ran" "$("$FERRY" logs "$cid")" "training version 1"
csnap=$(json_field "$cid" 'e["snapshot"]')
expect_eq "the commit's snapshot is in S3" \
  "$(aws s3api head-object --bucket "$BUCKET" --key "${PREFIX}snapshots/$csnap.tar.gz" --query ContentLength --output text >/dev/null 2>&1 && echo yes)" yes
expect_eq "and in ferryd's cache, for its step file" "$([ -s "$DATA/cache/$csnap.tar.gz" ] && echo yes)" yes
expect_eq "nothing left in ferryd's tmp" "$(ls "$DATA/tmp" | grep -c git-snapshot || true)" 0

# An object aws-cli put: an s3:// input.
head -c 100000 /dev/urandom >"$WORK/in.bin"
IN_URL="s3://$BUCKET/${PREFIX}inputs/in.bin"
aws s3 cp --quiet "$WORK/in.bin" "$IN_URL"
IN_SHA=$(sha256sum <"$WORK/in.bin" | cut -d' ' -f1)
IN_ETAG=$(aws s3api head-object --bucket "$BUCKET" --key "${PREFIX}inputs/in.bin" --query ETag --output text)

P=$(make_project s3proj <<EOF
- step:
    name: write
    image: none
    command:
      - head -c 20000000 /dev/urandom > "\$FERRY_OUTPUTS_DIR/big.bin"
      - mkdir -p "\$FERRY_OUTPUTS_DIR/sub"
      - echo "model v1" > "\$FERRY_OUTPUTS_DIR/model.txt"
      - echo spaced > "\$FERRY_OUTPUTS_DIR/sub/with space.txt"
      - sha256sum "\$FERRY_INPUTS_DIR/data/in.bin" | cut -d' ' -f1 > "\$FERRY_OUTPUTS_DIR/in.sha256"
      - env > "\$FERRY_OUTPUTS_DIR/env.txt"
      - cp meta.jsonl "\$FERRY_OUTPUTS_DIR/valohai.metadata.jsonl"
      - cp model.meta "\$FERRY_OUTPUTS_DIR/model.txt.metadata.json"
    inputs:
      - name: data
- step:
    name: defaulted
    image: none
    command: sha256sum "\$FERRY_INPUTS_DIR/data/in.bin" | cut -d' ' -f1
    inputs:
      - name: data
        default: $IN_URL
- step:
    name: gated
    image: none
    command:
      - while [ ! -e "$WORK/gate" ]; do sleep 0.1; done
      - echo after the gate > "\$FERRY_OUTPUTS_DIR/late.txt"
EOF
)

# Output properties (issue 18, point 13) through both kinds of upload: the
# multipart one ferryd completes and the one PUT the agent reports.
echo '{"file": "big.bin", "metadata": {"valohai.tags": ["large"], "parts": 4}}' >"$P/meta.jsonl"
echo '{"valohai.alias": "model-v1"}' >"$P/model.meta"

id=$(run_id "$P" write --input "data=$IN_URL")
rc=0
"$FERRY" wait "$id" --timeout 90 >/dev/null || rc=$?
expect_eq "write: completes" "$rc" 0
log1=$("$FERRY" logs "$id" 2>&1)
expect_contains "write: the agent downloaded the snapshot" "$log1" "downloading the snapshot"
expect_contains "write: the agent downloaded the input" "$log1" "downloading input data: in.bin"
expect_contains "write: every output stored" "$log1" "uploaded 5 of 5 outputs"

listed=$("$FERRY" outputs "$id" --json | python3 -c '
import json, sys
for o in sorted(json.load(sys.stdin)["outputs"], key=lambda o: o["name"]):
    print(o["name"], o["size"], o["sha256"])')
expect_contains "outputs: the large one" "$listed" "big.bin 20000000 "
expect_eq "outputs: all of them" "$(json_field "$id" '"|".join(sorted(o["name"] for o in e["outputs"]))')" \
  "big.bin|env.txt|in.sha256|model.txt|sub/with space.txt"
big_sha=$(awk '$1 == "big.bin" { print $3 }' <<<"$listed")
expect_eq "outputs: the metadata of both kinds of upload" \
  "$(json_field "$id" '" ".join("%s=%s/%s/%s" % (o["name"], json.dumps(o["metadata"], sort_keys=True), o["tags"], o.get("alias")) for o in sorted(e["outputs"], key=lambda o: o["name"]) if o["metadata"])')" \
  'big.bin={"parts": 4, "valohai.tags": ["large"]}/['"'large'"']/None model.txt={"valohai.alias": "model-v1"}/[]/model-v1'

# The large one went up in 4 parts (s3rver's ETag does not tell: it is
# the MD5 of the whole object), completed by ferryd.
expect_contains "big.bin was uploaded in 4 parts" "$(cat "$FERRYD_LOG")" \
  "execution $id: output big.bin stored from 4 parts"
# In S3, where aws-cli reads them.
okey="${PREFIX}executions/$id/outputs"
aws s3 cp --quiet --recursive "s3://$BUCKET/$okey/" "$WORK/aws-dl/"
expect_eq "aws-cli reads big.bin back identical" "$(sha256sum <"$WORK/aws-dl/big.bin" | cut -d' ' -f1)" "$big_sha"
snaps=$(aws s3 ls "s3://$BUCKET/${PREFIX}snapshots/")
expect_contains "the snapshot is kept in S3" "$snaps" ".tar.gz"
expect_eq "the input reached the commands intact" "$(cat "$WORK/aws-dl/in.sha256" 2>/dev/null)" "$IN_SHA"

# ferry outputs --download follows ferryd's redirect to the store.
rc=0
"$FERRY" outputs "$id" --download "$WORK/ferry-dl" >/dev/null || rc=$?
expect_eq "outputs --download: exit status" "$rc" 0
if diff -r "$WORK/aws-dl" "$WORK/ferry-dl" >"$WORK/dl.diff" 2>&1; then pass; else
  fail "ferry's download differs from aws-cli's: $(head -c 300 "$WORK/dl.diff")"
fi
hdrs=$(curl -sS -o /dev/null -D - "$FERRY_SERVER/v1/executions/$id/outputs/model.txt" | tr -d '\r')
expect_contains "GET an output: 302" "$(head -n 1 <<<"$hdrs")" " 302"
expect_contains "GET an output: to a presigned URL of the store" \
  "$(grep -i '^location:' <<<"$hdrs")" "$EP/$BUCKET/${okey}/model.txt?X-Amz-"
expect_eq "GET an output, following it" \
  "$(curl -sSfL "$FERRY_SERVER/v1/executions/$id/outputs/model.txt")" "model v1"
expect_eq "GET an unknown output: 404" \
  "$(curl -s -o /dev/null -w '%{http_code}' "$FERRY_SERVER/v1/executions/$id/outputs/nope.txt")" 404

# --- the same input again: from the worker's cache ---
id2=$(run_id "$P" write --input "data=$IN_URL")
"$FERRY" wait "$id2" --timeout 60 >/dev/null || true
log2=$("$FERRY" logs "$id2" 2>&1)
expect_contains "again: the input comes from the worker's cache" "$log2" \
  "input data: in.bin from the worker's cache (ETag $IN_ETAG)"
expect_not_contains "again: it is not downloaded" "$log2" "downloading input data"
"$FERRY" outputs "$id2" --download "$WORK/dl2" >/dev/null || true
expect_eq "again: the cached input is intact" "$(cat "$WORK/dl2/in.sha256" 2>/dev/null)" "$IN_SHA"
cid=$(run_id "$P" defaulted)
"$FERRY" wait "$cid" --timeout 60 >/dev/null || true
expect_contains "a step's s3:// default input" "$("$FERRY" logs "$cid" 2>&1)" "$IN_SHA"

# --- s3:// inputs are checked at submission ---
cli "$P" run write --input "data=s3://$BUCKET/${PREFIX}inputs/nope.bin"
expect_eq "a missing object: refused (exit 5)" "$RC" 5
expect_contains "a missing object: names the input and the URL" "$OUT" \
  "input 'data': s3://$BUCKET/${PREFIX}inputs/nope.bin does not exist"
cli "$P" run write --input "data=s3://no-such-bucket-$$/a.bin"
expect_contains "a missing bucket: S3's code" "$OUT" "NoSuchBucket"

# --- the keys stay with ferryd ---
agent_pid=$(pgrep -f -- "--work-dir $DATA" | head -n 1 || true)
if [ -n "$agent_pid" ]; then
  expect_not_contains "the agent's environment" "$(tr '\0' '\n' <"/proc/$agent_pid/environ")" "$SECRET"
  expect_not_contains "the agent's command line" "$(tr '\0' ' ' <"/proc/$agent_pid/cmdline")" "$SECRET"
else
  fail "no agent process to look at"
fi
expect_not_contains "ferryd's and the agent's log" "$(cat "$FERRYD_LOG")" "$SECRET"
expect_not_contains "the commands' environment" "$(cat "$WORK/aws-dl/env.txt")" "$SECRET"
expect_not_contains "the execution log" "$log1$log2" "$SECRET"

# A hand-made agent joins the static environment "probe" and reads a spec.
reg=$(api "" POST /v1/agent/register \
  "{\"join_token\": \"$JOIN\", \"environment\": \"probe\", \"slots\": 1, \"hostname\": \"probe\", \"runtime\": \"local-process\"}")
PTOK=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["token"])' "$reg")
pid_=$(run_id "$P" write --input "data=$IN_URL" -e probe)
api "$PTOK" POST /v1/agent/poll '{"running": [], "free_slots": 1}' >"$WORK/spec.json"
expect_not_contains "the work spec holds no key" "$(cat "$WORK/spec.json")" "$SECRET"
python3 - "$WORK/spec.json" "$EP" "$BUCKET" "$IN_URL" "$IN_ETAG" >"$WORK/spec.check" <<'PY' || true
import json, sys
spec = json.load(open(sys.argv[1]))["work"][0]
ep, bucket, in_url, etag = sys.argv[2:6]
snap = spec["snapshot"]["url"]
f = spec["inputs"][0]["files"][0]
print("snapshot presigned", snap.startswith(ep + "/" + bucket + "/") and "X-Amz-Signature=" in snap)
print("input presigned", f["url"].startswith(ep + "/" + bucket + "/") and "X-Amz-Signature=" in f["url"])
print("input described", f["source"] == in_url, f["size"], f["etag"] == etag, f["filename"])
PY
expect_eq "spec: the snapshot is a presigned GET of the store" \
  "$(grep '^snapshot' "$WORK/spec.check")" "snapshot presigned True"
expect_eq "spec: the input is a presigned GET" "$(grep '^input presigned' "$WORK/spec.check")" \
  "input presigned True"
expect_eq "spec: the input's source, size and ETag" "$(grep '^input described' "$WORK/spec.check")" \
  "input described True 100000 True in.bin"
snap_url=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["work"][0]["snapshot"]["url"])' "$WORK/spec.json")
snap_sha=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["work"][0]["snapshot"]["sha256"])' "$WORK/spec.json")
expect_eq "the presigned snapshot URL serves the snapshot" \
  "$(curl -sSf "$snap_url" | sha256sum | cut -d' ' -f1)" "$snap_sha"
api "$PTOK" POST "/v1/agent/executions/$pid_/status" '{"status": "started"}' >/dev/null
ZERO=$(printf %064d 0)
api "$PTOK" POST "/v1/agent/executions/$pid_/outputs" \
  "{\"outputs\": [{\"name\": \"big.bin\", \"size\": 20000000, \"sha256\": \"$ZERO\"}, {\"name\": \"s.txt\", \"size\": 6, \"sha256\": \"$ZERO\"}]}" \
  >"$WORK/uploads.json"
expect_not_contains "the outputs answer holds no key" "$(cat "$WORK/uploads.json")" "$SECRET"
python3 - "$WORK/uploads.json" "$EP" >"$WORK/uploads.check" <<'PY' || true
import json, sys
u = {x["name"]: x for x in json.load(open(sys.argv[1]))["uploads"]}
big, small = u["big.bin"], u["s.txt"]
print("big", bool(big.get("upload_id")), big.get("part_size"), len(big.get("parts", [])),
      all(p.startswith(sys.argv[2]) and "partNumber=%d" % (i + 1) in p for i, p in enumerate(big["parts"])))
print("small", small.get("report"), small["url"].startswith(sys.argv[2]) and "X-Amz-Signature=" in small["url"])
PY
expect_eq "outputs answer: a large file gets an upload id and a URL per part" \
  "$(grep '^big' "$WORK/uploads.check")" "big True 5242880 4 True"
expect_eq "outputs answer: a small one a presigned PUT, to report" \
  "$(grep '^small' "$WORK/uploads.check")" "small True True"
upload_id=$(python3 -c 'import json,sys; print([u for u in json.load(open(sys.argv[1]))["uploads"] if u["name"] == "big.bin"][0]["upload_id"])' "$WORK/uploads.json")
api "$PTOK" POST "/v1/agent/executions/$pid_/uploaded" \
  "{\"name\": \"big.bin\", \"size\": 20000000, \"sha256\": \"$ZERO\", \"upload_id\": \"$upload_id\", \"error\": \"given up\"}" >/dev/null
expect_eq "a given-up upload is acknowledged" "$(http_code)" 200
api "$PTOK" POST "/v1/agent/executions/$pid_/uploaded" \
  "{\"name\": \"big.bin\", \"size\": 20000000, \"sha256\": \"$ZERO\", \"upload_id\": \"$upload_id\", \"parts\": [{\"part\": 1, \"etag\": \"x\"}]}" >/dev/null
expect_eq "an upload given up cannot be completed after" "$(http_code)" 409
api "$PTOK" POST "/v1/agent/executions/$pid_/status" '{"status": "finished", "exit_code": 0}' >/dev/null
expect_eq "probe: nothing recorded of the given-up output" "$(json_field "$pid_" 'len(e["outputs"])')" 0

# --- the bucket deleted mid-run: NoSuchBucket in status_reason ---
ferryd_stop
GONE="ferry-gone-$$-$RANDOM"
aws s3 mb "s3://$GONE" >/dev/null
pkill -KILL -f -- "--work-dir $DATA/" || true
DATA=$WORK/data-gone
ferryd_start -c "$(s3_store "$GONE" | conf gone)"
gid=$(run_id "$P" gated)
await_status "$gid" started 60 >/dev/null
aws s3 rb --force "s3://$GONE" >/dev/null
touch "$WORK/gate"
"$FERRY" wait "$gid" --timeout 60 >/dev/null || true
expect_eq "bucket deleted mid-run: error" "$(json_field "$gid" 'e["status"]')" error
expect_contains "bucket deleted mid-run: S3's code in status_reason" \
  "$(json_field "$gid" 'e["status_reason"]')" "NoSuchBucket"
expect_eq "bucket deleted mid-run: no output recorded" "$(json_field "$gid" 'len(e["outputs"])')" 0
ferryd_stop

# --- s3:// inputs need the s3-storage store ---
pkill -KILL -f -- "--work-dir $DATA/" || true
DATA=$WORK/data-local
ferryd_start
cli "$P" run write --input "data=$IN_URL"
expect_eq "local-storage: an s3:// input is refused (exit 5)" "$RC" 5
expect_contains "local-storage: says the store must be s3-storage" "$OUT" \
  "need the s3-storage store; this ferryd's store is local-storage"
ferryd_stop

# --- failures on purpose (fake_s3): aborted, nothing lingers or is recorded ---
python3 "$FERRY_SOURCE_DIR/tests/fakes/fake_s3.py" fake-bucket >"$WORK/fake.out" 2>&1 &
FAKE_PID=$!
for _ in $(seq 100); do grep -q PORT= "$WORK/fake.out" && break; sleep 0.05; done
FAKE="http://127.0.0.1:$(sed -n 's/PORT=//p' "$WORK/fake.out")"
pkill -KILL -f -- "--work-dir $DATA/" || true
DATA=$WORK/data-fake
ferryd_start -c "$({
  s3_store fake-bucket "$FAKE"
  echo 'worker_lost_timeout = 3;'
} | conf fake)"
# The rules replace the last ones; objects stay (the snapshot, the input).
faults() { curl -sS -X PUT --data "$1" "$FAKE/__faults"; }
fake_state() { curl -sS "$FAKE/__state" | python3 -c "import json,sys; s=json.load(sys.stdin); print($1)"; }
big_output() { fake_state "sorted(k for k in s['objects'] if k.endswith('$1/outputs/big.bin'))"; }

failing_run() { # failing_run WHAT FAULTS CODE: a part or the completion refused
  faults "$2"
  local fid
  fid=$(run_id "$P" write --input "data=$IN_URL" 2>/dev/null) || true
  "$FERRY" wait "$fid" --timeout 60 >/dev/null || true
  expect_eq "$1: error" "$(json_field "$fid" 'e["status"]')" error
  expect_contains "$1: S3's code in status_reason" "$(json_field "$fid" 'e["status_reason"]')" "$3"
  expect_contains "$1: the other outputs are kept" "$(json_field "$fid" '[o["name"] for o in e["outputs"]]')" "model.txt"
  expect_not_contains "$1: no partial output recorded" "$(json_field "$fid" '[o["name"] for o in e["outputs"]]')" "big.bin"
  expect_eq "$1: the upload was aborted, no part lingers" "$(fake_state 's["uploads"]')" "{}"
  expect_eq "$1: no object for it" "$(big_output "$fid")" "[]"
}
# This ferryd reads s3:// inputs at its own endpoint: the fake's.
curl -sS -X PUT --data-binary @"$WORK/in.bin" "$FAKE/fake-bucket/inputs/in.bin" >/dev/null
IN_URL="s3://fake-bucket/inputs/in.bin"
failing_run "a part refused" \
  '[{"method": "PUT", "query": "partNumber=2&", "action": "status", "status": 403, "code": "AccessDenied", "times": -1}]' \
  AccessDenied
failing_run "the completion refused" \
  '[{"method": "POST", "query": "uploadId=", "action": "status", "status": 403, "code": "AccessDenied", "times": -1}]' \
  AccessDenied

# The agent killed while a part is on its way: once the worker is lost,
# ferryd aborts the upload.
faults '[{"method": "PUT", "query": "partNumber=1&", "action": "delay", "seconds": 15, "times": 1}]'
kid=$(run_id "$P" write --input "data=$IN_URL")
open_uploads=0
for _ in $(seq 300); do
  open_uploads=$(fake_state 'len(s["uploads"])')
  [ "$open_uploads" = 1 ] && break
  sleep 0.1
done
expect_eq "killed: an upload was open" "$open_uploads" 1
pkill -KILL -f -- "--work-dir $DATA" || true
"$FERRY" wait "$kid" --timeout 30 >/dev/null || true
expect_contains "killed: the execution ends in error" "$(json_field "$kid" 'e["status"], e["status_reason"]')" "worker lost"
for _ in $(seq 50); do [ "$(fake_state 's["uploads"]')" = "{}" ] && break; sleep 0.1; done
expect_eq "killed: the upload was aborted" "$(fake_state 's["uploads"]')" "{}"
expect_not_contains "killed: no partial output recorded" "$(json_field "$kid" '[o["name"] for o in e["outputs"]]')" "big.bin"
expect_not_contains "the fake's ferryd logged no key" "$(cat "$FERRYD_LOG")" "$SECRET"

finish
