#!/bin/sh
# check_layers.py fails, naming the file, line and layers, on a tree whose
# state layer includes an HTTP header and whose plugin includes lib/.
set -eu
check=$1
tree=$(mktemp -d)
trap 'rm -rf "$tree"' EXIT
mkdir -p "$tree/core/state" "$tree/core/http" "$tree/lib" "$tree/plugins/p" "$tree/sdk/include/ferry"
printf '#include "server.h"\n' >"$tree/core/state/exec.c"
: >"$tree/core/http/server.h"
: >"$tree/lib/util.h"
printf '#include "ferry/ferry.h"\n\n#include "util.h"\n' >"$tree/plugins/p/p.c"
: >"$tree/sdk/include/ferry/ferry.h"
if out=$(python3 "$check" "$tree"); then
  echo "check_layers.py passed a tree that goes against the layers"
  exit 1
fi
echo "$out"
echo "$out" | grep -q 'core/state/exec.c:1: includes core/http/server.h: layer state may not depend on http'
echo "$out" | grep -q 'plugins/p/p.c:3: includes lib/util.h: layer plugin p may not depend on lib'
echo "$out" | grep -q '^2 include(s) against the layers$'
