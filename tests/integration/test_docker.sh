#!/usr/bin/env bash
# Executions in containers through ferryd (issue 5): an environment whose
# runtime is local-docker, its settings (docker_socket, docker_memory) given
# in the environment block and passed by ferryd to the agents it starts; the
# step's image, its log and outputs; the valohai.yaml aliases; a pull from a
# registry with the credentials of ferryd's `registries`, shown as status
# lines; a pull refused (no credentials for that registry) ending the
# execution with the registry's message; a stop of commands that ignore
# SIGTERM, with the container removed. Needs the services of
# tests/services/all.sh (dockerd, registry): fails without them.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib_sched.sh"

if [ -z "${FERRY_TEST_DOCKER_SOCKET:-}" ] || [ -z "${FERRY_TEST_REGISTRY:-}" ] ||
  ! curl -sf --max-time 5 --unix-socket "$FERRY_TEST_DOCKER_SOCKET" http://docker/_ping >/dev/null; then
  echo "FAIL: dockerd and the registry of tests/services are not running (tests/services/all.sh start)"
  exit 1
fi
export DOCKER_HOST=unix://$FERRY_TEST_DOCKER_SOCKET
bash "$FERRY_SOURCE_DIR/tests/plugins/docker_images.sh" >/dev/null
REG=$FERRY_TEST_REGISTRY
# An image of this test's own in the registry, with no local copy, so that
# ferryd's agent has to pull it (other tests pull images of their own).
PULL=$REG/ferry-test/ferryd-pull-$$:1
docker login -u "$FERRY_TEST_REGISTRY_USER" --password-stdin "$REG" \
  <<<"$FERRY_TEST_REGISTRY_PASSWORD" >/dev/null 2>&1
docker tag ferry-test/busybox:1 "$PULL"
docker push -q "$PULL" >/dev/null
docker rmi -f "$PULL" >/dev/null
docker logout "$REG" >/dev/null 2>&1 || true
cleanup_docker() { # the containers go with the agents (their runtime's fini)
  docker rmi -f "$PULL" >/dev/null 2>&1 || true
}
trap 'rc=$?; cleanup_docker; (exit $rc); cleanup' EXIT

cat >"$WORK/docker.conf" <<EOF
environments = ( { name = "docker"; compute = "local"; runtime = "local-docker"; max_workers = 1;
                   docker_socket = "$FERRY_TEST_DOCKER_SOCKET"; docker_memory = "128m"; } );
default_environment = "docker";
registries = ( { server = "$REG"; username = "$FERRY_TEST_REGISTRY_USER";
                 password = "$FERRY_TEST_REGISTRY_PASSWORD"; } );
EOF
ferryd_start -c "$WORK/docker.conf"

proj=$(make_project docker <<EOF
- step:
    name: inside
    image: ferry-test/busybox:1
    command:
      - echo "out from \$(cat /proc/1/cgroup >/dev/null && hostname)"
      - echo "err line" >&2
      - echo "repo=\$FERRY_REPOSITORY_DIR outputs=\$FERRY_OUTPUTS_DIR pwd=\$(pwd)"
      - cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes
      - cat ferry.yaml | head -n 1
      - echo made-in-a-container > "\$FERRY_OUTPUTS_DIR/result.txt"
- step:
    name: no-bash
    image: ferry-test/busybox:1
    command:
      - cd /tmp
      - export Y=7
      - "false"
      - echo "shell=\${BASH_VERSION:-sh} y=\$Y pwd=\$(pwd)"
- step:
    name: pulled
    image: $PULL
    command: echo pulled image runs
- step:
    name: denied
    image: 127.0.0.1:1/ferry-test/nothing:1
    command: echo never
- step:
    name: stubborn
    image: ferry-test/busybox:1
    command:
      - trap '' TERM
      - echo ignoring TERM
      - sleep 600
EOF
)

# --- the step's image, log streams, directories, limits, outputs ---
id=$(run_id "$proj" inside)
"$FERRY" wait "$id" --timeout 120 >/dev/null || true
expect_eq "a container execution completes" "$(json_field "$id" 'e["status"]')" complete
log=$("$FERRY" logs "$id" 2>/dev/null)
expect_contains "its stdout" "$log" "out from "
expect_contains "its stderr, apart" "$("$FERRY" logs "$id" 2>&1 >/dev/null)" "err line"
expect_contains "the directories are where DESIGN.md puts them" "$log" \
  "repo=/ferry/repository outputs=/ferry/outputs pwd=/ferry/repository"
expect_contains "docker_memory from the environment block is the limit" "$log" "134217728"
expect_contains "the snapshot is the working directory" "$log" "- step:"
out=$(cd "$WORK" && "$FERRY" outputs "$id" --download "$WORK/dl" >/dev/null 2>&1 && cat "$WORK/dl/result.txt" 2>/dev/null || true)
expect_eq "an output written in the container" "$out" "made-in-a-container"
left=$(docker ps -aq --filter "label=ferry.execution=$id")
expect_eq "the container is removed after the run" "$left" ""

# --- inputs.json in the container: the paths the commands see, under
# /valohai/inputs for a valohai.yaml project (issue 18, point 1) ---
vh=$WORK/vhdocker
mkdir -p "$vh"
echo "csv-in-docker" >"$WORK/in.csv"
cat >"$vh/valohai.yaml" <<'EOF'
- step:
    name: readinputs
    image: ferry-test/busybox:1
    command:
      - cat /valohai/config/inputs.json
      - cat /valohai/inputs/data/in.csv
    inputs:
      - name: data
EOF
id=$(run_id "$vh" readinputs --input "data=file://$WORK/in.csv")
"$FERRY" wait "$id" --timeout 120 >/dev/null || true
log=$("$FERRY" logs "$id" 2>/dev/null)
expect_contains "inputs.json's path is the container's" "$log" '"/valohai/inputs/data/in.csv"'
expect_contains "and the file is there" "$log" "csv-in-docker"

# --- an image without bash (busybox): its /bin/sh runs the commands, all of
# them in one session, the last one's status (issue 18) ---
id=$(run_id "$proj" no-bash)
"$FERRY" wait "$id" --timeout 120 >/dev/null || true
expect_eq "no-bash: status, exit code" "$(json_field "$id" 'e["status"], e["exit_code"]')" "complete 0"
expect_contains "no-bash: sh ran every command in one session" \
  "$("$FERRY" logs "$id" 2>/dev/null)" "shell=sh y=7 pwd=/tmp"

# --- a pull with ferryd's credentials for that registry ---
id=$(run_id "$proj" pulled)
"$FERRY" wait "$id" --timeout 120 >/dev/null || true
expect_eq "an image pulled with the registry's credentials" "$(json_field "$id" 'e["status"]')" complete
log=$("$FERRY" logs "$id" 2>&1)
expect_contains "the pulled image ran" "$log" "pulled image runs"
expect_contains "the pull shows as status lines" "$log" "--- "
expect_contains "the pull is named" "$log" "$PULL"
expect_not_contains "no password in the log" "$log" "$FERRY_TEST_REGISTRY_PASSWORD"
expect_not_contains "no password in ferryd's log" "$(cat "$FERRYD_LOG")" \
  "$FERRY_TEST_REGISTRY_PASSWORD"

# --- a pull that fails: the execution ends in error with the reason ---
id=$(run_id "$proj" denied)
"$FERRY" wait "$id" --timeout 120 >/dev/null || true
expect_eq "an image that cannot be pulled: error" "$(json_field "$id" 'e["status"]')" error
expect_contains "an image that cannot be pulled: the reason names it" \
  "$(json_field "$id" 'e["status_reason"]')" "127.0.0.1:1/ferry-test/nothing:1"

# --- stop: SIGTERM ignored, killed after the grace, container removed ---
id=$(run_id "$proj" stubborn)
await_status "$id" started 60 >/dev/null
for _ in $(seq 100); do
  "$FERRY" logs "$id" 2>/dev/null | grep -q "ignoring TERM" && break
  sleep 0.1
done
t0=$(now_ms)
"$FERRY" stop "$id" >/dev/null
"$FERRY" wait "$id" --timeout 60 >/dev/null || true
echo "stop of a container that ignores SIGTERM took $(($(now_ms) - t0)) ms"
expect_eq "a container ignoring SIGTERM: stopped" "$(json_field "$id" 'e["status"]')" stopped
left=$(docker ps -aq --filter "label=ferry.execution=$id")
expect_eq "a stopped container is removed" "$left" ""

finish
