#!/usr/bin/env bash
# `cmake --install` gives a prefix that works on its own, also after it is
# moved: its ferryd, started with no config file and no FERRY_PLUGIN_DIR,
# loads the prefix's plugins and launches the prefix's ferry-agent, and
# the prefix's ferry runs an execution end to end.
. "$(dirname "$0")/lib.sh"

unset FERRY_PLUGIN_DIR FERRY_DATA_DIR

# --- install, then move the prefix: nothing may point back at the build ---
rc=0
cmake --install "$FERRY_BUILD_DIR" --prefix "$WORK/staging" >"$WORK/install.log" 2>&1 || rc=$?
expect_eq "cmake --install exit status" "$rc" 0
mv "$WORK/staging" "$WORK/prefix"
prefix=$WORK/prefix
for f in bin/ferryd bin/ferry bin/ferry-agent lib/ferry/plugins/local.so \
  lib/ferry/plugins/local-process.so lib/ferry/plugins/local-storage.so; do
  if [ -x "$prefix/$f" ] || [ -f "$prefix/$f" ]; then pass; else fail "$f is not installed"; fi
done

# The harness starts $BIN/ferryd and drives $FERRY: point both at the prefix.
BIN=$prefix/bin
FERRY=$BIN/ferry
ferryd_start

proj=$(make_project installed <<'EOF'
- step:
    name: hello
    image: busybox
    command:
      - echo "hello from the installed ferry"
      - echo result > "$FERRY_OUTPUTS_DIR/result.txt"
EOF
)
rc=0
(cd "$proj" && "$FERRY" run hello --watch >"$WORK/watch.out" 2>"$WORK/watch.err") || rc=$?
expect_eq "installed ferry run --watch exit status" "$rc" 0
expect_contains "installed run printed its line" "$(cat "$WORK/watch.out")" "hello from the installed ferry"
expect_eq "installed run's output" "$("$FERRY" outputs 1 --json | python3 -c '
import json, sys; print([o["name"] for o in json.load(sys.stdin)["outputs"]])')" "['result.txt']"

# ferryd loaded the prefix's plugins, and only those.
maps=$(cat "/proc/$FERRYD_PID/maps")
expect_contains "ferryd loaded the prefix's local.so" "$maps" "$prefix/lib/ferry/plugins/local.so"
expect_contains "ferryd loaded the prefix's local-storage.so" "$maps" "$prefix/lib/ferry/plugins/local-storage.so"
expect_not_contains "ferryd loaded nothing from the build tree" "$maps" "$FERRY_BUILD_DIR/"
# The agent it launched is the prefix's, with the prefix's runtime plugin.
agent=$(pgrep -f -- "--work-dir $DATA" | head -n 1 || true)
if [ -n "$agent" ]; then
  pass
  expect_eq "the agent is the prefix's ferry-agent" "$(readlink "/proc/$agent/exe")" "$prefix/bin/ferry-agent"
  amaps=$(cat "/proc/$agent/maps")
  expect_contains "the agent loaded the prefix's local-process.so" "$amaps" \
    "$prefix/lib/ferry/plugins/local-process.so"
  expect_not_contains "the agent loaded nothing from the build tree" "$amaps" "$FERRY_BUILD_DIR/"
else
  fail "no agent runs for $DATA after the execution"
fi

finish
