#!/usr/bin/env bash
# Issue 19's figure: a live output of a 100 MB checkpoint, from `chmod` to
# stored, side by side with `aws s3 cp` of the same file to the same s3rver.
#
#   ferry  a local-process execution copies the checkpoint into outputs/,
#          runs `chmod 0444` on it and prints the time at once (`date`, the
#          host's clock); the figure ends at the agent's log line "live
#          output ckpt.bin stored" (ferryd's log, the same clock, ms), which
#          the agent writes once ferryd acknowledged the upload's report:
#          the read (size, mtime, SHA-256), the declaration to ferryd, the
#          parts to the store, the check that the file did not change and
#          the completion by ferryd are all inside it. Then it is stopped.
#  aws     `aws s3 cp` of the same file to the same s3rver, wall clock, its
#          start-up included (what a user of aws-cli waits for).
#
# Both with their defaults (ferry: 16 MiB parts, 8 at once; aws-cli: 8 MiB
# parts, 10 at once), alternately; medians over the repeats, lower is
# better, ratio = ferry / aws.
#
# Needs s3rver running (tests/services/all.sh start; its env file at
# /tmp/ferry-test-services/env) and Debian's aws-cli at /usr/bin/aws.
# Usage: tests/bench/live_output.sh [BUILD_DIR] [--size-mb 100] [--repeats 5]
set -euo pipefail
build=build
size_mb=100
repeats=5
while [ $# -gt 0 ]; do
  case $1 in
  --size-mb) size_mb=$2; shift 2 ;;
  --repeats) repeats=$2; shift 2 ;;
  *) build=$1; shift ;;
  esac
done
build=$(cd "$build" && pwd)
services=${FERRY_TEST_SERVICES:-/tmp/ferry-test-services}/env
[ -f "$services" ] || { echo "s3rver is not running (no $services)" >&2; exit 1; }
set -a
. "$services"
set +a
[ -x /usr/bin/aws ] || { echo "aws-cli is not installed at /usr/bin/aws" >&2; exit 1; }
EP=$FERRY_TEST_S3_ENDPOINT
BUCKET=$FERRY_TEST_S3_BUCKET
export AWS_ACCESS_KEY_ID=$FERRY_TEST_S3_ACCESS_KEY_ID
export AWS_SECRET_ACCESS_KEY=$FERRY_TEST_S3_SECRET_ACCESS_KEY
export AWS_DEFAULT_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null

work=$(mktemp -d "${TMPDIR:-/tmp}/ferry-bench-live.XXXXXX")
prefix="bench-live-$$/"
pid=
cleanup() {
  [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  pkill -KILL -f -- "--work-dir $work/data" 2>/dev/null || true
  /usr/bin/aws --endpoint-url "$EP" s3 rm --quiet --recursive "s3://$BUCKET/$prefix" \
    >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

head -c $((size_mb * 1000000)) /dev/urandom >"$work/ckpt.bin"
cat >"$work/ferryd.conf" <<EOF
data_dir = "$work/data";
listen = "127.0.0.1:0";
store = { plugin = "s3-storage"; bucket = "$BUCKET"; prefix = "$prefix"; endpoint = "$EP";
  access_key_id = "$AWS_ACCESS_KEY_ID"; secret_access_key = "$AWS_SECRET_ACCESS_KEY"; };
environments = ( { name = "local"; compute = "local"; runtime = "local-process";
  max_workers = 1; } );
EOF
"$build/bin/ferryd" -c "$work/ferryd.conf" --retire-workers >"$work/ferryd.log" 2>&1 &
pid=$!
url=
for _ in $(seq 200); do
  url=$(sed -n 's/.*listening on \(http:[^ ]*\).*/\1/p' "$work/ferryd.log" | tail -n 1)
  [ -n "$url" ] && break
  sleep 0.05
done
[ -n "$url" ] || { cat "$work/ferryd.log" >&2; exit 1; }
export FERRY_SERVER=$url
mkdir -p "$work/project"
cat >"$work/project/ferry.yaml" <<EOF
- step:
    name: live
    image: none
    command:
      - cp "$work/ckpt.bin" "\$FERRY_OUTPUTS_DIR/ckpt.bin"
      - chmod 0444 "\$FERRY_OUTPUTS_DIR/ckpt.bin"; echo "chmod \$(date +%s.%N)"
      - sleep 600
EOF
ferry() { (cd "$work/project" && "$build/bin/ferry" "$@"); }

ferry_s=()
aws_s=()
for r in $(seq "$repeats"); do
  id=$(ferry run live --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
  stored=
  for _ in $(seq 6000); do
    stored=$({ grep "execution $id: live output ckpt.bin stored" "$work/ferryd.log" || true; } |
      head -n 1 | cut -d' ' -f1)
    [ -n "$stored" ] && break
    sleep 0.01
  done
  [ -n "$stored" ] || { echo "run $r: the checkpoint was not stored live" >&2; exit 1; }
  chmod_at=$(ferry logs "$id" | sed -n 's/^chmod \([0-9.]*\)$/\1/p' | head -n 1)
  ferry stop "$id" >/dev/null 2>&1
  ferry wait "$id" --timeout 120 >/dev/null 2>&1 || true
  ferry_s+=("$(python3 -c '
import datetime, sys
t = datetime.datetime.fromisoformat(sys.argv[1].replace("Z", "+00:00")).timestamp()
print("%.3f" % (t - float(sys.argv[2])))' "$stored" "$chmod_at")")
  t0=$(date +%s.%N)
  /usr/bin/aws --endpoint-url "$EP" s3 cp --quiet "$work/ckpt.bin" "s3://$BUCKET/${prefix}aws/ckpt.bin"
  aws_s+=("$(python3 -c 'import sys, time; print("%.3f" % (time.time() - float(sys.argv[1])))' "$t0")")
  echo "run $r: ferry ${ferry_s[-1]} s, aws ${aws_s[-1]} s" >&2
done

python3 - "$size_mb" "${ferry_s[*]}" "${aws_s[*]}" <<'EOF'
import json, statistics, sys
f = [float(x) for x in sys.argv[2].split()]
a = [float(x) for x in sys.argv[3].split()]
fm, am = statistics.median(f), statistics.median(a)
print(json.dumps({"live_output_s": {
    "size_bytes": int(sys.argv[1]) * 1000000, "runs": len(f),
    "ferry": {"median": fm, "min": min(f), "max": max(f), "what": "chmod to stored (agent log)"},
    "aws": {"median": am, "min": min(a), "max": max(a), "what": "aws s3 cp, wall clock"},
    "ratio": fm / am}}, indent=2))
print(f"live output of {sys.argv[1]} MB: ferry {fm:.3f} s (chmod to stored), "
      f"aws s3 cp {am:.3f} s; ratio {fm / am:.2f} (medians of {len(f)})", file=sys.stderr)
EOF
