#!/bin/sh
# Runs an s3-storage test with s3rver's variables (tests/services/s3rver.sh):
#   test_s3_storage.sh unit TEST_BINARY
#   test_s3_storage.sh conformance FERRY_CONFORMANCE PLUGIN_SO
# They come from the environment, else from the env file that
# tests/services/all.sh writes. Without them the test fails: it never skips.
set -eu
services=${FERRY_TEST_SERVICES:-/tmp/ferry-test-services}
if [ -z "${FERRY_TEST_S3_ENDPOINT:-}" ] && [ -f "$services/env" ]; then
  set -a
  . "$services/env"
  set +a
fi
if [ -z "${FERRY_TEST_S3_ENDPOINT:-}" ]; then
  echo "FAIL: FERRY_TEST_S3_ENDPOINT is not set and $services/env does not set it:" \
    "start s3rver with tests/services/s3rver.sh start (or tests/services/all.sh start)" >&2
  exit 1
fi
case "$1" in
unit)
  exec "$2"
  ;;
conformance)
  exec "$2" "$3" --set "bucket=$FERRY_TEST_S3_BUCKET" --set "endpoint=$FERRY_TEST_S3_ENDPOINT" \
    --set "access_key_id=$FERRY_TEST_S3_ACCESS_KEY_ID" \
    --secret "secret_access_key=$FERRY_TEST_S3_SECRET_ACCESS_KEY" --set prefix=conformance/
  ;;
*)
  echo "usage: $0 unit TEST | conformance FERRY_CONFORMANCE PLUGIN" >&2
  exit 2
  ;;
esac
