#!/usr/bin/env bash
# Keys of a step that act (issue 18, point 9), through ferryd, its agents
# and the real dockerd of tests/services. Fails without dockerd.
# resources: the container's CPU and memory limits are the step's (over
# the environment's docker_memory).
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

if [ -z "${FERRY_TEST_DOCKER_SOCKET:-}" ] ||
  ! curl -sf --max-time 5 --unix-socket "$FERRY_TEST_DOCKER_SOCKET" http://docker/_ping >/dev/null; then
  echo "FAIL: dockerd of tests/services is not running (tests/services/all.sh start)"
  exit 1
fi
export DOCKER_HOST=unix://$FERRY_TEST_DOCKER_SOCKET
bash "$FERRY_SOURCE_DIR/tests/plugins/docker_images.sh" >/dev/null

cat >"$WORK/keys.conf" <<EOF
environments = (
  { name = "docker"; compute = "local"; runtime = "local-docker"; max_workers = 1;
    docker_socket = "$FERRY_TEST_DOCKER_SOCKET"; docker_memory = "128m"; }
);
default_environment = "docker";
EOF
ferryd_start -c "$WORK/keys.conf"

proj=$(make_project keys <<EOF
- step:
    name: limits
    image: ferry-test/busybox:1
    command:
      - cat /sys/fs/cgroup/cpu.max 2>/dev/null || echo "\$(cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us) \$(cat /sys/fs/cgroup/cpu/cpu.cfs_period_us)"
      - cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes
    resources:
      cpu: {min: 0.25, max: 0.5}
      memory: {min: 50, max: 100}
- step:
    name: no-limits
    image: ferry-test/busybox:1
    command: cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes
EOF
)

# --- resources: the step's limits, over the environment's docker_memory ---
id=$(run_id "$proj" limits)
"$FERRY" wait "$id" --timeout 120 >/dev/null || true
expect_eq "a step with resources completes" "$(json_field "$id" 'e["status"]')" complete
log=$("$FERRY" logs "$id" 2>/dev/null)
expect_contains "the step's cpu max is the container's CPU limit" "$log" "50000 100000"
expect_contains "the step's memory max (MB) is the container's limit" "$log" "104857600"
id=$(run_id "$proj" no-limits)
"$FERRY" wait "$id" --timeout 120 >/dev/null || true
expect_contains "without resources, docker_memory is the limit" \
  "$("$FERRY" logs "$id" 2>/dev/null)" "134217728"

finish
