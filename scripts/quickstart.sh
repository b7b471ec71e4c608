#!/usr/bin/env bash
# Install, build, start ferryd on its embedded defaults and run the example
# project's `train` step, streaming its log and showing its outputs.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
bin=$PWD/build/bin
export FERRY_DATA_DIR=${FERRY_DATA_DIR:-$HOME/.local/share/ferry}

if ! "$bin/ferry" list >/dev/null 2>&1; then
  echo "== starting ferryd (log: $FERRY_DATA_DIR/ferryd.log)"
  mkdir -p "$FERRY_DATA_DIR"
  nohup "$bin/ferryd" >"$FERRY_DATA_DIR/ferryd.log" 2>&1 &
  for _ in $(seq 50); do
    "$bin/ferry" list >/dev/null 2>&1 && break
    sleep 0.1
  done
fi

echo "== ferry run train --adhoc examples/hello -p epochs=5 --watch"
set +e
"$bin/ferry" run train --adhoc examples/hello -p epochs=5 --watch
status=$?
set -e
id=$("$bin/ferry" list --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["executions"][0]["id"])')
echo
echo "== ferry outputs $id"
"$bin/ferry" outputs "$id"
out=$(mktemp -d)
"$bin/ferry" outputs "$id" --download "$out" >/dev/null
echo "== outputs downloaded to $out:"
find "$out" -type f | sort
echo
echo "ferryd keeps running. A stop leaves its workers' agents running for the next ferryd"
echo "(README: Stopping and restarting); to stop both: pkill -x ferryd; pkill -x ferry-agent."
echo "Try: $bin/ferry list,"
echo "or open its web app at http://127.0.0.1:8470/ in a browser."
exit $status
