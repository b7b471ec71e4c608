#!/usr/bin/env bash
# Issue 19's first figure: an input of SIZE MiB (default 1024) by datum://
# on a worker that already holds it, time from submission to the command's
# start, next to the same step with no input (target: under 50 ms more; no
# bytes downloaded).
#   tests/bench/datum_input.sh [SIZE_MIB] [RUNS]      (RUNS default 5)
# Uses the build in $FERRY_BUILD_DIR (default build/). FERRY_BIND_INPUTS_MB=off
# measures the copy the agent made before cached inputs were bound read-only. One ferryd on
# local-storage with one local-process worker: an execution writes the
# datum, a first one reads it (the download that fills the worker's input
# cache), then RUNS executions read it again, alternating with RUNS of the
# same command without the input. The command prints the time it starts
# (date +%s.%N, the same clock the submission was timed with). Each timed
# read must say in its log that the file came from the worker's cache;
# the script fails otherwise. Prints the medians and their difference.
set -euo pipefail
BIN=$(cd "${FERRY_BUILD_DIR:-$(dirname "$0")/../../build}" && pwd)/bin
SIZE=${1:-1024}
RUNS=${2:-5}
work=$(mktemp -d)
pid=
cleanup() {
  [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

cat >"$work/ferryd.conf" <<EOF
default_environment = "local";
environments = ( { name = "local"; compute = "local"; runtime = "local-process";
                   min_workers = 1; max_workers = 1; } );
EOF
"$BIN/ferryd" -c "$work/ferryd.conf" --data-dir "$work/data" --listen 127.0.0.1:0 --retire-workers \
  >"$work/ferryd.log" 2>&1 &
pid=$!
server=
for _ in $(seq 100); do
  server=$(sed -n 's/.*listening on \(http:[^ ]*\).*/\1/p' "$work/ferryd.log" | tail -n 1)
  [ -n "$server" ] && break
  sleep 0.05
done
[ -n "$server" ] || { cat "$work/ferryd.log" >&2; exit 1; }
export FERRY_SERVER=$server

mkdir -p "$work/proj"
cat >"$work/proj/ferry.yaml" <<EOF
- step:
    name: make
    image: none
    command: head -c ${SIZE}M /dev/urandom > "\$FERRY_OUTPUTS_DIR/model.bin"
- step:
    name: use
    image: none
    command: echo "START \$(date +%s.%N)"
    inputs:
      - name: model
- step:
    name: bare
    image: none
    command: echo "START \$(date +%s.%N)"
EOF
api() { curl -sS -H 'Content-Type: application/json' "$@"; }
field() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
wait_done() { api "$server/v1/executions/$1/wait?timeout=600" >/dev/null; }

# The snapshot once, through the CLI; then every run is one POST.
make_id=$(cd "$work/proj" && "$BIN/ferry" run make --json | field '["id"]')
wait_done "$make_id"
snap=$(api "$server/v1/executions/$make_id" | field '["snapshot"]')
datum=$(api "$server/v1/executions/$make_id/outputs" | field '["outputs"][0]["datum"]')
echo "datum_input: $SIZE MiB datum $datum" >&2

submit() { # submit STEP [INPUT]: prints "<id> <ms from submission to START>"
  local body t0 id start
  if [ -n "${2:-}" ]; then
    body="{\"project\":\"proj\",\"step\":\"$1\",\"snapshot\":\"$snap\",\"inputs\":{\"model\":[\"$2\"]}}"
  else
    body="{\"project\":\"proj\",\"step\":\"$1\",\"snapshot\":\"$snap\"}"
  fi
  t0=$(date +%s.%N)
  id=$(api --data-binary "$body" "$server/v1/executions" | field '["id"]')
  wait_done "$id"
  start=$("$BIN/ferry" logs "$id" 2>/dev/null | sed -n 's/^START //p')
  echo "$id $(python3 -c "print(round(($start - $t0) * 1000, 1))")"
}

read -r first _ < <(submit use "$datum") # fills the worker's cache
grep -q "downloading input model" <<<"$("$BIN/ferry" logs "$first" 2>&1)" ||
  { echo "datum_input: the first read did not download" >&2; exit 1; }
with=() without=()
for i in $(seq "$RUNS"); do
  read -r id ms < <(submit use "$datum")
  if ! grep -q "from the worker's cache" <<<"$("$BIN/ferry" logs "$id" 2>&1)"; then
    echo "datum_input: run $i downloaded the datum again" >&2
    exit 1
  fi
  with+=("$ms")
  read -r _ ms < <(submit bare)
  without+=("$ms")
done
python3 - "$SIZE" "${with[*]}" "${without[*]}" <<'EOF'
import statistics, sys
size, w, wo = sys.argv[1], [float(x) for x in sys.argv[2].split()], [float(x) for x in sys.argv[3].split()]
mw, mwo = statistics.median(w), statistics.median(wo)
print(f"datum input of {size} MiB from the worker's cache (no bytes downloaded), submission -> command start:")
print(f"  with the input:    median {mw:.1f} ms  ({', '.join(f'{x:.0f}' for x in w)})")
print(f"  without an input:  median {mwo:.1f} ms  ({', '.join(f'{x:.0f}' for x in wo)})")
print(f"  difference:        {mw - mwo:+.1f} ms (target: under 50 ms); ratio {mw / mwo:.2f}")
EOF
