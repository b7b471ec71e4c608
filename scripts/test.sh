#!/usr/bin/env bash
# Install what the tests need, build with warnings as errors, run every test.
#   scripts/test.sh            the suite
#   FERRY_SANITIZE=1 scripts/test.sh   the suite under ASan+UBSan (build-asan/)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
build=build
flags=(-DFERRY_WERROR=ON)
if [ "${FERRY_SANITIZE:-0}" = 1 ]; then
  build=build-asan
  flags+=(-DFERRY_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug)
fi
cmake -S . -B "$build" "${flags[@]}" >/dev/null
cmake --build "$build" -j"$(nproc)"
# dockerd, a registry and s3rver, for the tests that use the real thing.
root=$(pwd)
tests/services/all.sh start
trap '"$root/tests/services/all.sh" stop' EXIT
set -a
. "${FERRY_TEST_SERVICES:-/tmp/ferry-test-services}/env"
set +a
cd "$build"
ctest --output-on-failure -j"$(nproc)" --timeout 300
