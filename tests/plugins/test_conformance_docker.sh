#!/usr/bin/env bash
# ferry-conformance against local-docker, on the test dockerd of
# tests/services (FERRY_TEST_DOCKER_SOCKET, from the environment or from
# $FERRY_TEST_SERVICES/env), with the test image of docker_images.sh.
# Fails, saying why, when there is no daemon: it never skips.
#   test_conformance_docker.sh FERRY-CONFORMANCE PLUGIN-DIR
set -euo pipefail
conformance=$1
plugin_dir=$2
here=$(cd "$(dirname "$0")" && pwd)
if [ -z "${FERRY_TEST_DOCKER_SOCKET:-}" ] &&
  [ -f "${FERRY_TEST_SERVICES:-/tmp/ferry-test-services}/env" ]; then
  set -a
  . "${FERRY_TEST_SERVICES:-/tmp/ferry-test-services}/env"
  set +a
fi
if [ -z "${FERRY_TEST_DOCKER_SOCKET:-}" ]; then
  echo "FAIL: FERRY_TEST_DOCKER_SOCKET is not set: start tests/services/all.sh" >&2
  exit 1
fi
if ! curl -sf --max-time 5 --unix-socket "$FERRY_TEST_DOCKER_SOCKET" http://docker/_ping \
  >/dev/null; then
  echo "FAIL: no Docker daemon answers at FERRY_TEST_DOCKER_SOCKET=$FERRY_TEST_DOCKER_SOCKET" >&2
  exit 1
fi
# The image only; the registry is the pull tests' business.
FERRY_TEST_REGISTRY= bash "$here/docker_images.sh"
exec "$conformance" "$plugin_dir/local-docker.so" \
  --set "docker_socket=$FERRY_TEST_DOCKER_SOCKET" --image ferry-test/busybox:1
