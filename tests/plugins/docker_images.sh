#!/usr/bin/env bash
# The test images of the local-docker tests, made without the internet:
# `docker import` of a tiny root file system built around busybox-static.
#   ferry-test/busybox:1        runs as root
#   ferry-test/busybox-user:1   USER 1000:1000
# With FERRY_TEST_REGISTRY set (tests/services/registry.sh), the registry also
# gets $FERRY_TEST_REGISTRY/ferry-test/pull:1 (no local copy is kept), for the
# pull tests. Idempotent.
# Needs FERRY_TEST_DOCKER_SOCKET (tests/services/dockerd.sh); test setup may
# use the docker CLI, the plugin itself never does.
set -euo pipefail
: "${FERRY_TEST_DOCKER_SOCKET:?FERRY_TEST_DOCKER_SOCKET is not set: start tests/services/all.sh}"
export DOCKER_HOST=unix://$FERRY_TEST_DOCKER_SOCKET
busybox=${FERRY_TEST_BUSYBOX:-/usr/bin/busybox}

have() { docker image inspect "$1" >/dev/null 2>&1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/ferry-docker-images.XXXXXX")
trap 'rm -rf "$work"' EXIT
# Several tests may run this at once: one at a time.
exec 9>"${TMPDIR:-/tmp}/ferry-docker-images.lock"
flock 9

make_rootfs() {
  local root=$work/rootfs
  [ -d "$root" ] && return 0
  [ -x "$busybox" ] || {
    echo "docker_images.sh: $busybox missing (scripts/install-deps.sh installs busybox-static)" >&2
    exit 1
  }
  mkdir -p "$root"/{bin,etc,tmp,proc,sys,dev,home/user,root}
  chmod 1777 "$root/tmp"
  cp "$busybox" "$root/bin/busybox"
  for applet in $("$busybox" --list); do
    [ "$applet" = busybox ] || ln -sf busybox "$root/bin/$applet"
  done
  printf 'root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/home/user:/bin/sh\n' \
    >"$root/etc/passwd"
  printf 'root:x:0:\nuser:x:1000:\n' >"$root/etc/group"
  chown 1000:1000 "$root/home/user"
  tar -C "$root" --numeric-owner -cf "$work/rootfs.tar" .
}

import_image() { # import_image NAME [CHANGE...]
  local name=$1
  shift
  have "$name" && return 0
  make_rootfs
  local changes=(--change 'ENV PATH=/bin' --change 'CMD ["/bin/sh"]')
  for c in "$@"; do changes+=(--change "$c"); done
  docker import "${changes[@]}" "$work/rootfs.tar" "$name" >/dev/null
}

import_image ferry-test/busybox:1
import_image ferry-test/busybox-user:1 'USER 1000:1000' 'WORKDIR /home/user'

# The pull tests' image lives only in the registry: a layer of its own (the
# root file system plus /pulled-marker), so that a pull downloads it.
if [ -n "${FERRY_TEST_REGISTRY:-}" ]; then
  remote=$FERRY_TEST_REGISTRY/ferry-test/pull:1
  code=$(curl -s -o /dev/null -w '%{http_code}' \
    -u "$FERRY_TEST_REGISTRY_USER:$FERRY_TEST_REGISTRY_PASSWORD" \
    -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
    "http://$FERRY_TEST_REGISTRY/v2/ferry-test/pull/manifests/1")
  if [ "$code" != 200 ]; then
    make_rootfs
    echo pulled >"$work/rootfs/pulled-marker"
    tar -C "$work/rootfs" --numeric-owner -cf "$work/pull.tar" .
    docker import --change 'ENV PATH=/bin' "$work/pull.tar" "$remote" >/dev/null
    # A private client config: never the user's ~/.docker.
    export DOCKER_CONFIG=$work/docker-config
    mkdir -p "$DOCKER_CONFIG"
    printf '%s' "$FERRY_TEST_REGISTRY_PASSWORD" |
      docker login -u "$FERRY_TEST_REGISTRY_USER" --password-stdin "$FERRY_TEST_REGISTRY" \
        >/dev/null 2>"$work/login.err" || {
      cat "$work/login.err" >&2
      exit 1
    }
    docker push "$remote" >/dev/null
    docker logout "$FERRY_TEST_REGISTRY" >/dev/null
  fi
  docker image rm "$remote" >/dev/null 2>&1 || true
fi
