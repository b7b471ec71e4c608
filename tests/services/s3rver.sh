#!/usr/bin/env bash
# A real S3 server (s3rver, from npm) of the tests' own, on loopback, with
# its data under the services folder.
#   start: installs s3rver into tests/services/node/ when it is missing
#          (npm ci, from the committed package-lock.json), starts it, makes
#          the test bucket, and prints FERRY_TEST_S3_ENDPOINT,
#          FERRY_TEST_S3_BUCKET, FERRY_TEST_S3_ACCESS_KEY_ID and
#          FERRY_TEST_S3_SECRET_ACCESS_KEY once it answers
#   stop:  stops it
# s3rver knows one key pair, S3RVER/S3RVER (nothing secret: it only opens
# this throwaway server). It refuses an unknown access key id but does not
# check V4 signatures; tests/unit/test_sigv4.c proves those.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
here=$(cd "$(dirname "$0")" && pwd)
dir=${FERRY_TEST_SERVICES:-/tmp/ferry-test-services}/s3rver
port=${FERRY_TEST_S3_PORT:-4569}
addr=127.0.0.1:$port
bucket=ferry-test
node_dir=$here/node
s3rver=$node_dir/node_modules/.bin/s3rver

answers() {
  # An anonymous GET of the service root: s3rver answers with a listing
  # (or AccessDenied), either way an HTTP status from an S3 server.
  local code
  code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://$addr/" 2>/dev/null) || return 1
  [ "$code" = 200 ] || [ "$code" = 403 ]
}

install_s3rver() {
  [ -x "$s3rver" ] && return 0
  command -v npm >/dev/null || {
    echo "s3rver.sh: npm is not installed (scripts/install-deps.sh installs nodejs and npm)" >&2
    exit 1
  }
  (cd "$node_dir" && npm ci --no-audit --no-fund --loglevel=error) >&2 || {
    echo "s3rver.sh: npm ci in $node_dir failed" >&2
    exit 1
  }
}

case "${1:-}" in
start)
  mkdir -p "$dir/data"
  if ! answers; then
    install_s3rver
    # s3rver makes ListObjectsV2 continuation tokens with DES, which
    # OpenSSL 3 keeps in its legacy provider: without it every truncated
    # listing is a 500.
    NODE_OPTIONS=--openssl-legacy-provider setsid "$s3rver" --directory "$dir/data" --address 127.0.0.1 --port "$port" --silent \
      --configure-bucket "$bucket" >"$dir/log" 2>&1 </dev/null &
    echo $! >"$dir/pid"
    wait_until 30 answers || {
      echo "s3rver.sh: s3rver did not answer on $addr within 30 s; its log:" >&2
      tail -20 "$dir/log" >&2
      exit 1
    }
  fi
  echo "FERRY_TEST_S3_ENDPOINT=http://$addr"
  echo "FERRY_TEST_S3_BUCKET=$bucket"
  echo "FERRY_TEST_S3_ACCESS_KEY_ID=S3RVER"
  echo "FERRY_TEST_S3_SECRET_ACCESS_KEY=S3RVER"
  ;;
stop)
  stop_pidfile "$dir/pid"
  ;;
*)
  echo "usage: $0 start|stop" >&2
  exit 2
  ;;
esac
