#!/usr/bin/env bash
# The services the tests talk to, started once for the whole suite:
#   tests/services/all.sh start   start each (idempotent), write $FERRY_TEST_SERVICES/env
#   tests/services/all.sh stop    stop each
# Each service is a script here with start and stop; it appends the variables
# its tests read (FERRY_TEST_*) to the env file, which tests source when the
# variables are not already set (tests/integration/lib.sh).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export FERRY_TEST_SERVICES=${FERRY_TEST_SERVICES:-/tmp/ferry-test-services}
services=(dockerd)
for s in registry s3rver; do
  [ -x "$here/$s.sh" ] && services+=("$s")
done

case "${1:-}" in
start)
  mkdir -p "$FERRY_TEST_SERVICES"
  : >"$FERRY_TEST_SERVICES/env.new"
  for s in "${services[@]}"; do
    "$here/$s.sh" start >>"$FERRY_TEST_SERVICES/env.new"
  done
  mv "$FERRY_TEST_SERVICES/env.new" "$FERRY_TEST_SERVICES/env"
  ;;
stop)
  for ((i = ${#services[@]} - 1; i >= 0; i--)); do
    "$here/${services[i]}.sh" stop || true
  done
  rm -f "$FERRY_TEST_SERVICES/env"
  ;;
*)
  echo "usage: $0 start|stop" >&2
  exit 2
  ;;
esac
