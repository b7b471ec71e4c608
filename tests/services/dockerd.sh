#!/usr/bin/env bash
# A real dockerd (Debian docker.io) of the tests' own, on its own socket and
# data root, so it never touches a system daemon.
#   start: prints FERRY_TEST_DOCKER_SOCKET=... once the API answers
#   stop:  stops it (containers die with it)
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
dir=${FERRY_TEST_SERVICES:-/tmp/ferry-test-services}/dockerd
sock=$dir/docker.sock

api_answers() {
  curl -sf --max-time 2 --unix-socket "$sock" http://docker/_ping >/dev/null 2>&1
}

case "${1:-}" in
start)
  mkdir -p "$dir"
  if ! api_answers; then
    command -v dockerd >/dev/null || {
      echo "dockerd.sh: dockerd is not installed (scripts/install-deps.sh installs docker.io)" >&2
      exit 1
    }
    rm -f "$sock"
    setsid dockerd --data-root "$dir/root" --exec-root "$dir/exec" --pidfile "$dir/pid" \
      -H "unix://$sock" >"$dir/log" 2>&1 </dev/null &
    wait_until 30 api_answers || {
      echo "dockerd.sh: dockerd did not answer on $sock within 30 s; its log:" >&2
      tail -20 "$dir/log" >&2
      exit 1
    }
  fi
  echo "FERRY_TEST_DOCKER_SOCKET=$sock"
  ;;
stop)
  stop_pidfile "$dir/pid"
  ;;
*)
  echo "usage: $0 start|stop" >&2
  exit 2
  ;;
esac
