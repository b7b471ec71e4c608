#!/usr/bin/env bash
# build-previous.sh SRC SHA: builds what test_upgrade needs of commit SHA
# (ferryd, ferry, ferry-agent and the plugins of the default local
# environment), taken out of SRC's git history, and prints the build folder
# (its bin/ has the programs). The build is cached by sha, outside the source
# tree, in ${FERRY_PREVIOUS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ferry-test}/previous-SHA,
# so that a second pass (ASan) and reruns reuse it. Fails, saying why, when
# SRC's history lacks SHA (a shallow clone).
set -euo pipefail
src=$1
sha=$2
if ! git -C "$src" cat-file -e "$sha^{commit}" 2>/dev/null; then
  echo "build-previous: commit $sha (tests/upgrade/previous-release) is not in the git history of $src;" \
    "the upgrade test needs a full clone (git fetch --unshallow)" >&2
  exit 1
fi
cache=${FERRY_PREVIOUS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ferry-test}/previous-$sha
mkdir -p "$cache"
# One build at a time: two passes of the suite may run together.
exec 9>"$cache/lock"
flock 9
if [ ! -f "$cache/built" ]; then
  rm -rf "$cache/src" "$cache/build"
  mkdir -p "$cache/src"
  git -C "$src" archive "$sha" | tar -x -C "$cache/src"
  start=$(date +%s)
  # The release as shipped: its default flags, no sanitizers, no tests; the
  # caller's CFLAGS (an ASan pass) are not this build's.
  env -u CFLAGS -u LDFLAGS -u CPPFLAGS cmake -S "$cache/src" -B "$cache/build" \
    -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF -DFERRY_SANITIZE=OFF -DFERRY_WERROR=OFF \
    >"$cache/build.log" 2>&1 || { cat "$cache/build.log" >&2; exit 1; }
  env -u CFLAGS -u LDFLAGS -u CPPFLAGS cmake --build "$cache/build" -j2 \
    --target ferryd ferry ferry-agent local local-process local-storage \
    >>"$cache/build.log" 2>&1 || { tail -n 40 "$cache/build.log" >&2; exit 1; }
  echo "build-previous: built $sha in $(($(date +%s) - start)) s ($cache)" >&2
  touch "$cache/built"
fi
echo "$cache/build"
