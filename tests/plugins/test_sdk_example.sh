#!/bin/sh
# Builds sdk/examples/hello-store out of tree, the way a third party would
# (its own Makefile, then its own CMakeLists.txt, both finding the SDK with
# pkg-config), and checks that the loader accepts each build and that it
# works: store_roundtrip puts, heads and gets an object through it.
#
# usage: test_sdk_example.sh EXAMPLE_DIR PKG_CONFIG_DIR STORE_ROUNDTRIP EXPORTS_SCRIPT
set -eu
example=$1
export PKG_CONFIG_PATH=$2
roundtrip=$3
exports=$4
work=$(mktemp -d /tmp/ferry-sdk-example-XXXXXX)
trap 'rm -rf "$work"' EXIT

pkg-config --exists ferry-sdk || { echo "FAIL: pkg-config does not find ferry-sdk"; exit 1; }

echo "== make"
mkdir "$work/make" "$work/make-plugins"
cp "$example"/* "$work/make/"
make -C "$work/make" >"$work/make.log" 2>&1 || { cat "$work/make.log"; exit 1; }
cp "$work/make/hello-store.so" "$work/make-plugins/"
sh "$exports" "$work/make-plugins" hello-store
"$roundtrip" "$work/make/hello-store.so" max_bytes=1000000

echo "== cmake"
cmake -S "$example" -B "$work/cmake" >"$work/cmake.log" 2>&1 &&
    cmake --build "$work/cmake" >>"$work/cmake.log" 2>&1 || { cat "$work/cmake.log"; exit 1; }
mkdir "$work/cmake-plugins"
cp "$work/cmake/hello-store.so" "$work/cmake-plugins/"
sh "$exports" "$work/cmake-plugins" hello-store
"$roundtrip" "$work/cmake/hello-store.so"

echo "== a setting the plugin refuses"
if "$roundtrip" "$work/make/hello-store.so" max_bytes=lots >"$work/bad.log" 2>&1; then
    echo "FAIL: max_bytes=lots was accepted"
    exit 1
fi
grep -q 'max_bytes must be a number' "$work/bad.log" || { cat "$work/bad.log"; exit 1; }
echo "ok"
