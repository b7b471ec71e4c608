#!/bin/sh
# Builds sdk/examples/hello-store out of tree with its Makefile (as a third
# party would) and runs ferry-conformance on the result: the template people
# copy must pass the SDK's own conformance test.
#
# usage: test_conformance_sdk_example.sh EXAMPLE_DIR PKG_CONFIG_DIR FERRY_CONFORMANCE
set -eu
example=$1
export PKG_CONFIG_PATH=$2
conformance=$3
work=$(mktemp -d /tmp/ferry-conformance-example-XXXXXX)
trap 'rm -rf "$work"' EXIT

cp "$example"/* "$work/"
make -C "$work" >"$work/make.log" 2>&1 || { cat "$work/make.log"; exit 1; }
"$conformance" "$work/hello-store.so" --set max_bytes=4000000
