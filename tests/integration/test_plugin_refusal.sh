#!/usr/bin/env bash
# ferryd --plugin-dir with broken plugins beside the real ones: each broken
# file is refused with a message that names it and says why, and ferryd
# starts anyway, with the good plugins, and runs an execution.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

FIXTURES=$FERRY_BUILD_DIR/tests/plugins/fixtures
PDIR=$WORK/plugins
mkdir -p "$PDIR"
cp "$FERRY_BUILD_DIR"/lib/ferry/plugins/*.so "$PDIR/"
for b in wrong_major missing_launch missing_stop no_symbol short_ops; do
  [ -f "$FIXTURES/$b.so" ] || {
    echo "missing fixture $FIXTURES/$b.so (build the test_loader target)" >&2
    exit 1
  }
  cp "$FIXTURES/$b.so" "$PDIR/"
done
echo "not an ELF file" >"$PDIR/garbage.so"
echo "not a plugin at all" >"$PDIR/README.txt"

ferryd_start --plugin-dir "$PDIR"
if kill -0 "$FERRYD_PID" 2>/dev/null; then pass; else fail "ferryd did not keep running"; fi
log=$(cat "$FERRYD_LOG")

# refused FILE REASON: one "plugin refused" line names FILE and says REASON.
refused() {
  local line
  line=$(grep -F "plugin refused: $PDIR/$1:" <<<"$log" || true)
  if [ -n "$line" ]; then pass; else fail "no refusal naming $PDIR/$1 in the log"; fi
  expect_contains "$1: reason" "$line" "$2"
  expect_eq "$1: refused once" "$(grep -cF "$PDIR/$1:" <<<"$log")" 1
}
refused wrong_major.so "ABI major version 2"
refused missing_launch.so "required compute op launch is missing"
refused missing_stop.so "required runtime op stop is missing"
refused short_ops.so "too small"
refused no_symbol.so "ferry_plugin_v1"
refused garbage.so "garbage.so"
expect_not_contains "a file that is not a .so is not tried" "$log" "README.txt"
for good in local local-process local-storage; do
  expect_not_contains "$good.so is not refused" "$log" "plugin refused: $PDIR/$good.so"
done
expect_eq "exactly six refusals" "$(grep -c 'plugin refused' <<<"$log")" 6

P=$(make_project refusal <<'EOF'
- step:
    name: ok
    image: none
    command:
      - echo works despite broken plugins
      - echo result > $FERRY_OUTPUTS_DIR/result.txt
EOF
)
rc=0
out=$(cd "$P" && "$FERRY" run ok --watch 2>&1) || rc=$?
expect_eq "a run with broken plugins around completes" "$rc" 0
expect_contains "its output" "$out" "works despite broken plugins"
expect_contains "its output file (local-storage)" "$("$FERRY" outputs 1)" "result.txt"
if kill -0 "$FERRYD_PID" 2>/dev/null; then pass; else fail "ferryd died"; fi

# A folder of broken plugins only: ferryd cannot work, and says why.
BROKEN=$WORK/broken-only
mkdir -p "$BROKEN"
cp "$FIXTURES/wrong_major.so" "$FIXTURES/missing_launch.so" "$BROKEN/"
rc=0
out=$(timeout 5 "$BIN/ferryd" --data-dir "$WORK/data2" --listen 127.0.0.1:0 --plugin-dir "$BROKEN" 2>&1) || rc=$?
if [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ]; then pass; else fail "ferryd with only broken plugins: exit $rc"; fi
expect_contains "only broken plugins: each is refused" "$out" "$BROKEN/wrong_major.so"
expect_contains "only broken plugins: ... both" "$out" "$BROKEN/missing_launch.so"
expect_contains "only broken plugins: names the folder" "$out" "$BROKEN"
expect_not_contains "only broken plugins: not started" "$out" "listening on"

# A plugin folder that does not exist.
rc=0
out=$(timeout 5 "$BIN/ferryd" --data-dir "$WORK/data3" --listen 127.0.0.1:0 --plugin-dir "$WORK/nope" 2>&1) || rc=$?
if [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ]; then pass; else fail "ferryd with a missing plugin folder: exit $rc"; fi
expect_contains "a missing plugin folder: named" "$out" "$WORK/nope"

finish
