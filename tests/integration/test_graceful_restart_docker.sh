#!/usr/bin/env bash
# A stop of ferryd (SIGTERM) keeps work in containers (issue 16): on `local`
# with the local-docker runtime, an execution printing numbered lines in a
# container goes on while ferryd is away (the same container, its agent
# alive), and completes after ferryd restarts on the same data dir, with
# every line once, its output kept, and its container removed at the end.
# Needs the services of tests/services/all.sh (dockerd): fails without them.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

if [ -z "${FERRY_TEST_DOCKER_SOCKET:-}" ] ||
  ! curl -sf --max-time 5 --unix-socket "$FERRY_TEST_DOCKER_SOCKET" http://docker/_ping >/dev/null; then
  echo "FAIL: the dockerd of tests/services is not running (tests/services/all.sh start)"
  exit 1
fi
export DOCKER_HOST=unix://$FERRY_TEST_DOCKER_SOCKET
bash "$FERRY_SOURCE_DIR/tests/plugins/docker_images.sh" >/dev/null

PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$WORK/docker.conf" <<CONF
environments = ( { name = "docker"; compute = "local"; runtime = "local-docker"; max_workers = 1;
                   docker_socket = "$FERRY_TEST_DOCKER_SOCKET"; } );
default_environment = "docker";
CONF
N=8
P=$(make_project count <<STEP
- step:
    name: count
    image: ferry-test/busybox:1
    command:
      - for i in \$(seq 1 $N); do echo "line-\$i"; sleep 1; done
      - echo "counted $N" > "\$FERRY_OUTPUTS_DIR/counted.txt"
STEP
)
containers() { docker ps -q --no-trunc --filter "label=ferry.execution=$1"; }
agents() { pgrep -f -- "--work-dir $DATA/" || true; }

export FERRYD_KEEP_WORKERS=1
ferryd_start -c "$WORK/docker.conf" --listen "127.0.0.1:$PORT"
id=$(run_id "$P" count)
await_line_2 "$id"
ctr=$(containers "$id")
if [ -n "$ctr" ]; then pass; else fail "no container runs the execution"; fi
before=$(agents)
if [ -n "$before" ]; then pass; else fail "no agent runs the execution"; fi
t0=$(date +%s%N)
ferryd_stop
ms=$((($(date +%s%N) - t0) / 1000000))
if [ "$ms" -lt 5000 ]; then pass; else fail "ferryd took $ms ms to stop (over 5 s)"; fi
expect_eq "the container outlives ferryd's stop" "$(containers "$id")" "$ctr"
expect_eq "so does its agent" "$(agents)" "$before"
sleep 2 # the container goes on printing while ferryd is away
ferryd_start -c "$WORK/docker.conf" --listen "127.0.0.1:$PORT"
"$FERRY" wait "$id" --timeout 60 >/dev/null 2>&1 || true
expect_eq "the execution completes after the restart" "$(json_field "$id" 'e["status"]')" complete
expect_eq "it kept its exit code" "$(json_field "$id" 'e["exit_code"]')" 0
expect_lines_once "$id" $N "after the restart"
expect_eq "its output is kept" \
  "$(curl -sS "$FERRY_SERVER/v1/executions/$id/outputs/counted.txt")" "counted $N"
expect_eq "its container is gone" "$(docker ps -aq --filter "label=ferry.execution=$id")" ""
expect_eq "the old agent was taken back (none launched)" \
  "$(grep -c "ferryd\[$FERRYD_PID\].*launched agent" "$FERRYD_LOG" || true)" 0
# lib.sh's cleanup ends this ferryd and the agent it kept (under $WORK).
finish
