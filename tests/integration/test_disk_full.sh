#!/usr/bin/env bash
# Disk full (issue 16, #6): the data folder on a small tmpfs that fills up.
# Under the reserve (data_reserve_mb), ferryd keeps serving (lists, logs),
# refuses new executions and snapshot uploads with 507 naming the folder,
# and the agent keeps its log events spooled until ferryd takes them again:
# once the filler is gone the running execution ends complete, every
# numbered line once, its output kept. With no reserve the disk really
# fills (ENOSPC in the middle of the run): ferryd does not crash, and after
# the space is freed (and a restart) nothing it acknowledged is lost.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

if [ "$(id -u)" != 0 ]; then
  echo "$TEST_NAME: needs root (mounts a tmpfs)" >&2
  exit 1
fi
MNT=$(mktemp -d "${TMPDIR:-/tmp}/ferry-diskfull-mnt.XXXXXX")
mount -t tmpfs -o size=24m tmpfs "$MNT"
trap 'cleanup; umount -l "$MNT"; rmdir "$MNT"' EXIT
DATA=$MNT/data # lib.sh's ferryd_start uses it

conf() { # conf RESERVE_MB: the agents' work folders are on another disk
  cat >"$WORK/ferryd-$1.conf" <<EOF
data_reserve_mb = $1;
environments = ( { name = "local"; compute = "local"; max_workers = 2;
                   work_dir = "$WORK/workers"; } );
EOF
  echo "$WORK/ferryd-$1.conf"
}

free_kib() { df --output=avail -k "$MNT" | tail -n 1 | tr -d ' '; }

# Fill the tmpfs until KIB KiB are left (0: until a write fails).
fill() { # fill NAME KIB
  local left=$(($(free_kib) - $2))
  if [ "$2" -gt 0 ]; then
    [ "$left" -gt 0 ] && fallocate -l "${left}K" "$MNT/$1"
  else
    dd if=/dev/zero of="$MNT/$1" bs=64k 2>/dev/null || true
  fi
}

P=$(make_project full <<'EOF'
- step:
    name: count50
    image: none
    command:
      - for i in $(seq 1 50); do echo "line $i"; sleep 0.1; done
      - echo "model of $FERRY_EXECUTION_COUNTER" > $FERRY_OUTPUTS_DIR/model.txt
- step:
    name: count40
    image: none
    command: for i in $(seq 1 40); do echo "line $i"; sleep 0.1; done
- step:
    name: hello
    image: none
    command: echo hello
EOF
)

status_of() { json_field "$1" 'e["status"]'; }
stored_lines() { "$FERRY" logs "$1" 2>/dev/null | grep -c '^line ' || true; }
wait_lines() { # wait_lines ID N: until N lines are stored (or 20 s)
  for _ in $(seq 200); do
    [ "$("$FERRY" logs "$1" 2>/dev/null | grep -c '^line ')" -ge "$2" ] && return 0
    sleep 0.1
  done
  return 1
}
# Every numbered line 1..N once, in order.
check_lines() { # check_lines WHAT ID N
  local got
  got=$("$FERRY" logs "$2" 2>&1 | grep '^line ' | tr '\n' ' ')
  expect_eq "$1: every line once" "$got" "$(seq -f 'line %g' 1 "$3" | tr '\n' ' ')"
}
post_code() { # post_code PATH OUT [CURL ARGS...]: the HTTP status
  local path=$1 out=$2
  shift 2
  curl -sS -o "$out" -w '%{http_code}' "$@" "$FERRY_SERVER$path"
}

# --- 1: under the reserve ---
ferryd_start -c "$(conf 8)"
id=$(run_id "$P" count50)
wait_lines "$id" 5 || fail "no lines before the fill"
fill filler 4096 # 4 MiB left: under the 8 MiB reserve
sleep 1.2        # the free space is measured at most once a second
# The agent's events are refused from now on (507): it keeps them spooled.
held=$(stored_lines "$id")

rc=0
out=$(cd "$P" && "$FERRY" run hello 2>&1) || rc=$?
expect_eq "ferry run refused" "$([ "$rc" -ne 0 ] && echo yes)" yes
expect_contains "ferry run: says why" "$out" "no space left in $DATA"
code=$(post_code /v1/executions "$WORK/create.out" -H 'Content-Type: application/json' \
  -d '{"project":"full","step":"hello"}')
expect_eq "POST /v1/executions under the reserve" "$code" 507
expect_contains "507 names the folder" "$(cat "$WORK/create.out")" "no space left in $DATA ("
expect_contains "507 names the reserve" "$(cat "$WORK/create.out")" "8 MiB reserved"
tar -czf "$WORK/snap.tgz" -C "$P" ferry.yaml
code=$(post_code /v1/snapshots "$WORK/snap.out" --data-binary @"$WORK/snap.tgz" \
  -H 'Content-Type: application/gzip')
expect_eq "POST /v1/snapshots under the reserve" "$code" 507
expect_contains "snapshot 507 names the folder" "$(cat "$WORK/snap.out")" "$DATA"
code=$(post_code /v1/environments/local/drain "$WORK/drain.out" -X POST)
expect_eq "a drain, which must be stored to be taken, under the reserve" "$code" 507
expect_contains "drain 507 names the folder" "$(cat "$WORK/drain.out")" "no space left in $DATA ("
expect_eq "GET /v1/executions answers" \
  "$(curl -s -o /dev/null -w '%{http_code}' "$FERRY_SERVER/v1/executions")" 200
expect_eq "GET logs answers" \
  "$(curl -s -o /dev/null -w '%{http_code}' "$FERRY_SERVER/v1/executions/$id/logs")" 200
expect_eq "the execution still runs" "$(status_of "$id")" started
sleep 1 # the agent meets a few 507s for its events
expect_eq "ferryd alive while full" "$(kill -0 "$FERRYD_PID" && echo yes)" yes
expect_eq "no log events taken under the reserve" "$(stored_lines "$id")" "$held"
expect_eq "the lines printed meanwhile wait in the agent's spool" \
  "$([ "$held" -lt 50 ] && echo yes)" yes

rm -f "$MNT/filler"
"$FERRY" wait "$id" --timeout 40 >/dev/null 2>&1 || true
expect_eq "after the space is back: complete" "$(status_of "$id")" complete
check_lines "under the reserve" "$id" 50
rm -rf "$WORK/dl1"
"$FERRY" outputs "$id" --download "$WORK/dl1" >/dev/null 2>&1 || fail "download of the output"
expect_eq "the output is kept" "$(cat "$WORK/dl1/model.txt" 2>&1)" "model of 1"
id2=$(run_id "$P" hello)
"$FERRY" wait "$id2" --timeout 20 >/dev/null 2>&1 || true
expect_eq "a new execution is accepted and runs" "$(status_of "$id2")" complete

# --- 2: no reserve, the disk really fills while the execution runs ---
ferryd_stop
ferryd_start -c "$(conf 0)"
id3=$(run_id "$P" count40)
wait_lines "$id3" 5 || fail "no lines before the fill (no reserve)"
fill filler 0
sleep 2 # events meet ENOSPC; commits may fail
expect_eq "ferryd alive at ENOSPC" "$(kill -0 "$FERRYD_PID" && echo yes)" yes
expect_eq "GET /v1/executions answers at ENOSPC" \
  "$(curl -s -o /dev/null -w '%{http_code}' "$FERRY_SERVER/v1/executions")" 200
# Whatever it answers, an execution it accepts now must not be lost.
rc=0
out=$(cd "$P" && "$FERRY" run hello --json 2>&1) || rc=$?
accepted=
if [ "$rc" -eq 0 ]; then
  accepted=$(echo "$out" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
else
  expect_contains "ferry run at ENOSPC: says why" "$out" "$DATA"
fi
rm -f "$MNT/filler"
"$FERRY" wait "$id3" --timeout 40 >/dev/null 2>&1 || true
expect_eq "at ENOSPC: ferryd did not crash" "$(kill -0 "$FERRYD_PID" && echo yes)" yes
expect_eq "after ENOSPC: complete" "$(status_of "$id3")" complete
check_lines "after ENOSPC" "$id3" 40
if [ -n "$accepted" ]; then
  "$FERRY" wait "$accepted" --timeout 20 >/dev/null 2>&1 || true
  expect_eq "accepted at ENOSPC: runs" "$(status_of "$accepted")" complete
fi
# What was acknowledged is on disk: a restart still has it.
ferryd_stop
ferryd_start -c "$(conf 0)"
expect_eq "after a restart: still complete" "$(status_of "$id3")" complete
check_lines "after a restart" "$id3" 40
expect_eq "after a restart: the first one's output" \
  "$(rm -rf "$WORK/dl2" && "$FERRY" outputs "$id" --download "$WORK/dl2" >/dev/null 2>&1 &&
    cat "$WORK/dl2/model.txt")" "model of 1"
[ -z "$accepted" ] || expect_eq "after a restart: the one accepted at ENOSPC" \
  "$(status_of "$accepted")" complete
grep -q "Segmentation\|Assertion\|AddressSanitizer" "$FERRYD_LOG" && fail "ferryd crashed: $(grep -m1 "Segmentation\|Assertion\|AddressSanitizer" "$FERRYD_LOG")"
finish
