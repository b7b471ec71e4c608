#!/usr/bin/env bash
# ferry-test/python:1, an image with Python for the tests that run a
# Valohai user's Python code under local-docker, made without the internet:
# ferry-test/busybox:1 (docker_images.sh) plus the host's own Debian python3
# (the interpreter, its standard library and the shared libraries they
# load), through `docker import`. Idempotent; one at a time.
# Needs FERRY_TEST_DOCKER_SOCKET (tests/services/dockerd.sh).
set -euo pipefail
: "${FERRY_TEST_DOCKER_SOCKET:?FERRY_TEST_DOCKER_SOCKET is not set: start tests/services/all.sh}"
export DOCKER_HOST=unix://$FERRY_TEST_DOCKER_SOCKET
name=ferry-test/python:1
docker image inspect "$name" >/dev/null 2>&1 && exit 0

here=$(dirname "${BASH_SOURCE[0]}")
bash "$here/docker_images.sh" >/dev/null
exec 9>"${TMPDIR:-/tmp}/ferry-docker-python-image.lock"
flock 9
docker image inspect "$name" >/dev/null 2>&1 && exit 0

python=$(readlink -f /usr/bin/python3)
[ -x "$python" ] || { echo "docker_python_image.sh: /usr/bin/python3 missing (install python3)" >&2; exit 1; }
stdlib=$("$python" -c 'import sysconfig; print(sysconfig.get_paths()["stdlib"])')

work=$(mktemp -d "${TMPDIR:-/tmp}/ferry-docker-python.XXXXXX")
trap 'rm -rf "$work"' EXIT
root=$work/root
mkdir -p "$root/usr/bin" "$root$stdlib"

# The standard library, without what no test imports (tests, IDLE, Tk).
tar -C "$stdlib" --exclude=test --exclude=tests --exclude=idlelib --exclude=tkinter \
  --exclude=turtledemo --exclude=lib2to3 --exclude=ensurepip --exclude=__pycache__ \
  --exclude='config-*' -cf - . | tar -C "$root$stdlib" -xf -
cp "$python" "$root/usr/bin/"
ln -s "$(basename "$python")" "$root/usr/bin/python3"
ln -s python3 "$root/usr/bin/python"

# Every shared library the interpreter and its extension modules load.
libs() {
  for f in "$python" "$stdlib"/lib-dynload/*.so; do
    ldd "$f" 2>/dev/null | sed -n 's/.*=> \(\/[^ ]*\).*/\1/p; s/^[[:space:]]*\(\/[^ ]*\) (.*/\1/p'
  done | sort -u
}
for lib in $(libs); do
  mkdir -p "$root$(dirname "$lib")"
  cp -L "$lib" "$root$lib"
done

cid=$(docker create ferry-test/busybox:1)
docker export "$cid" >"$work/image.tar"
docker rm "$cid" >/dev/null
tar -C "$root" --numeric-owner -rf "$work/image.tar" .
docker import --change 'ENV PATH=/usr/bin:/bin' --change 'CMD ["/bin/sh"]' \
  "$work/image.tar" "$name" >/dev/null
docker run --rm "$name" python3 -c 'import json, hashlib, urllib.request' >/dev/null
