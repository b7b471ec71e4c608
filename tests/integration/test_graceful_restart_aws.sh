#!/usr/bin/env bash
# A stop of ferryd (SIGTERM) keeps its EC2 workers (issue 16): on the fake
# EC2, an execution printing numbered lines goes on while ferryd is away; no
# TerminateInstances is sent, the instance keeps running, and after the
# restart the execution completes with every line once and its output. The
# tests' usual --retire-workers stop (lib.sh) then terminates it.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib_sched.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib_aws.sh"

fake_start
IDLE=60 aws_conf "$(IDLE=60 aws_env aws)"
export FERRYD_KEEP_WORKERS=1
aws_ferryd_start
PORT=${FERRY_SERVER##*:}
D=$(daemon_id)
P=$(make_project cloud <<'EOF'
- step:
    name: count
    image: none
    command:
      - for i in $(seq 1 8); do echo "line-$i"; sleep 1; done
      - echo counted > "$FERRY_OUTPUTS_DIR/count.txt"
EOF
)
id=$(run_id "$P" count)
for _ in $(seq 400); do
  "$FERRY" logs "$id" 2>/dev/null | grep -q "line-2" && break
  sleep 0.1
done
inst=$(running_ours "$D")
if [ -n "$inst" ]; then pass; else fail "no instance runs the execution"; fi
t0=$(date +%s%N)
ferryd_stop
ms=$((($(date +%s%N) - t0) / 1000000))
if [ "$ms" -lt 5000 ]; then pass; else fail "ferryd took $ms ms to stop (over 5 s)"; fi
expect_eq "the stop sent no TerminateInstances" \
  "$(fake_q "len([r for r in R if r['action'] == 'TerminateInstances'])")" 0
expect_eq "the instance still runs" "$(running_ours "$D")" "$inst"
sleep 1
aws_ferryd_start "$PORT"
"$FERRY" wait "$id" --timeout 60 >/dev/null || true
expect_eq "after the restart: complete" "$(json_field "$id" 'e["status"]')" complete
log=$("$FERRY" logs "$id" 2>/dev/null)
for i in $(seq 1 8); do
  expect_eq "line-$i once" "$(grep -cx "line-$i" <<<"$log" || true)" 1
done
expect_eq "its output is kept" "$(curl -sS -H "Authorization: Bearer $FERRY_TOKEN" "$FERRY_SERVER/v1/executions/$id/outputs/count.txt")" counted
expect_eq "no TerminateInstances yet (the worker idles)" \
  "$(fake_q "len([r for r in R if r['action'] == 'TerminateInstances'])")" 0
# --retire-workers: the stop terminates the instance, as before (once the
# new ferryd's sweep has seen it alive: instance_sweep_interval is 2 s).
ferryd_stop
unset FERRYD_KEEP_WORKERS
aws_ferryd_start "$PORT"
sleep 3
ferryd_stop
expect_none_running "$D" "after a --retire-workers stop"
finish
