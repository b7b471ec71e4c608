#!/usr/bin/env bash
# Keys of a step that act (issue 18, point 9), through ferryd, its agents
# and the real dockerd of tests/services. Fails without dockerd.
# resources: the container's CPU and memory limits are the step's (over
# the environment's docker_memory).
# mounts: an allowed mount is there, read-only or read-write as asked; one
# outside allowed_mounts is a 400 naming it; local-process binds them in the
# execution's mount namespace.
# environment-variable-groups: a group's variables and secrets reach the
# commands, the step's own variables win, and a secret's value is in no log
# line nor in the API, under local-docker and local-process.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

if [ -z "${FERRY_TEST_DOCKER_SOCKET:-}" ] ||
  ! curl -sf --max-time 5 --unix-socket "$FERRY_TEST_DOCKER_SOCKET" http://docker/_ping >/dev/null; then
  echo "FAIL: dockerd of tests/services is not running (tests/services/all.sh start)"
  exit 1
fi
export DOCKER_HOST=unix://$FERRY_TEST_DOCKER_SOCKET
bash "$FERRY_SOURCE_DIR/tests/plugins/docker_images.sh" >/dev/null

SECRET="hunter2-$$-very-secret"
mkdir -p "$WORK/shared/ro" "$WORK/shared/rw" "$WORK/elsewhere"
echo "read-only-content" >"$WORK/shared/ro/file.txt"
cat >"$WORK/keys.conf" <<EOF
environments = (
  { name = "docker"; compute = "local"; runtime = "local-docker"; max_workers = 1;
    docker_socket = "$FERRY_TEST_DOCKER_SOCKET"; docker_memory = "128m";
    allowed_mounts = [ "$WORK/shared/" ]; },
  { name = "local"; compute = "local"; runtime = "local-process"; max_workers = 1;
    allowed_mounts = [ "$WORK/shared" ]; }
);
default_environment = "docker";
environment_variable_groups = (
  { name = "aws"; variables = { AWS_REGION = "eu-west-1"; OVERRIDDEN = "from-group"; };
    secrets = { AWS_SECRET_ACCESS_KEY = "$SECRET"; }; },
  { name = "other"; variables = { OTHER = "1"; }; }
);
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
- step:
    name: mounted
    image: ferry-test/busybox:1
    command:
      - cat /ro/file.txt
      - (echo x > /ro/new.txt) 2>/dev/null && echo ro-writable || echo ro-refused-write
      - echo written-inside > /rw/out.txt && echo rw-written
    mounts:
      - source: $WORK/shared/ro
        destination: /ro
        readonly: true
      - $WORK/shared/x/../rw:/rw
- step:
    name: outside
    image: ferry-test/busybox:1
    command: echo never
    mounts:
      - $WORK/elsewhere:/e
- step:
    name: sneaky
    image: ferry-test/busybox:1
    command: echo never
    mounts:
      - $WORK/shared/../elsewhere:/e
- step:
    name: mounted-local
    image: ferry-test/busybox:1
    environment: local
    command:
      - echo local-ran
      - cat /ro/file.txt
      - (echo x > /ro/new-local.txt) 2>/dev/null && echo ro-writable || echo ro-refused-write
    mounts:
      - source: $WORK/shared/ro
        destination: /ro
        readonly: true
- step:
    name: secrets
    image: ferry-test/busybox:1
    command:
      - echo "secret=\$AWS_SECRET_ACCESS_KEY region=\$AWS_REGION overridden=\$OVERRIDDEN"
      - printf %s "\$AWS_SECRET_ACCESS_KEY" | sha256sum
    environment-variables:
      - name: OVERRIDDEN
        default: from-step
    environment-variable-groups: [aws]
- step:
    name: secrets-local
    image: ferry-test/busybox:1
    environment: local
    command:
      - echo "secret=\$AWS_SECRET_ACCESS_KEY other=\$OTHER"
      - printf %s "\$AWS_SECRET_ACCESS_KEY" | sha256sum
    environment-variable-groups: [aws, other]
- step:
    name: unknown-group
    image: ferry-test/busybox:1
    command: echo never
    environment-variable-groups: [gcp]
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

# --- mounts: allowed ones are there as asked; others are refused ---
id=$(run_id "$proj" mounted)
"$FERRY" wait "$id" --timeout 120 >/dev/null || true
expect_eq "a step with allowed mounts completes" "$(json_field "$id" 'e["status"]')" complete
log=$("$FERRY" logs "$id" 2>/dev/null)
expect_contains "the read-only mount is visible" "$log" "read-only-content"
expect_contains "the read-only mount cannot be written" "$log" "ro-refused-write"
expect_contains "the read-write mount can be written" "$log" "rw-written"
expect_eq "what the container wrote is on the host" "$(cat "$WORK/shared/rw/out.txt" 2>/dev/null)" \
  "written-inside"
expect_eq "nothing was written through the read-only mount" \
  "$([ -e "$WORK/shared/ro/new.txt" ] && echo there || echo absent)" absent

out=$(cd "$proj" && "$FERRY" run outside 2>&1) && fail "a mount outside allowed_mounts was accepted"
expect_contains "a mount outside allowed_mounts is refused, naming it" "$out" \
  "mount '$WORK/elsewhere:/e' is refused in environment 'docker'"
expect_contains "the refusal says what allowed_mounts lists" "$out" "allowed_mounts: $WORK/shared"
out=$(cd "$proj" && "$FERRY" run sneaky 2>&1) && fail "a mount leaving allowed_mounts by .. was accepted"
expect_contains "a mount that leaves allowed_mounts through .. is refused" "$out" \
  "mount '$WORK/shared/../elsewhere:/e' is refused"
id=$(run_id "$proj" mounted-local)
"$FERRY" wait "$id" --timeout 120 >/dev/null || true
log=$("$FERRY" logs "$id" 2>&1)
expect_contains "local-process runs the commands" "$log" "local-ran"
expect_contains "local-process: the mount is there (its mount namespace)" "$log" "read-only-content"
expect_contains "local-process: read-only as asked" "$log" "ro-refused-write"
if [ -e /ro ]; then fail "local-process: /ro appeared on the host"; else pass; fi

# --- environment-variable-groups, secrets masked ---
want=$(printf %s "$SECRET" | sha256sum | cut -d' ' -f1)
for step in secrets secrets-local; do
  id=$(run_id "$proj" "$step")
  "$FERRY" wait "$id" --timeout 120 >/dev/null || true
  expect_eq "$step: completes" "$(json_field "$id" 'e["status"]')" complete
  log=$("$FERRY" logs "$id" 2>&1)
  expect_contains "$step: the secret is masked in the log" "$log" "secret=***"
  expect_contains "$step: the command got the secret's value" "$log" "$want"
  expect_not_contains "$step: the secret's value is in no log line" "$log" "$SECRET"
  api=$(curl -s "$FERRY_SERVER/v1/executions/$id"; curl -s "$FERRY_SERVER/v1/executions/$id/logs")
  expect_not_contains "$step: nor in the API" "$api" "$SECRET"
  expect_contains "$step: the API's log has it masked" "$api" "secret=***"
  expect_not_contains "$step: nor in ferryd's data" "$(grep -rl -- "$SECRET" "$DATA" 2>/dev/null || true)" "/"
done
id=$(run_id "$proj" secrets)
"$FERRY" wait "$id" --timeout 120 >/dev/null || true
log=$("$FERRY" logs "$id" 2>/dev/null)
expect_contains "a group's variables are set" "$log" "region=eu-west-1"
expect_contains "the step's own variable wins over the group's" "$log" "overridden=from-step"
id=$(run_id "$proj" secrets --var OVERRIDDEN=given)
"$FERRY" wait "$id" --timeout 120 >/dev/null || true
expect_contains "a given variable wins over the group's" "$("$FERRY" logs "$id" 2>/dev/null)" \
  "overridden=given"
id=$(run_id "$proj" secrets-local)
"$FERRY" wait "$id" --timeout 120 >/dev/null || true
log=$("$FERRY" logs "$id" 2>&1)
expect_contains "variables of a second group" "$log" "other=1"

out=$(cd "$proj" && "$FERRY" run unknown-group 2>&1) && fail "an unknown group was accepted"
expect_contains "an unknown group is refused, naming it" "$out" \
  "environment variable group 'gcp' is not in ferryd's configuration"
expect_contains "and the known groups" "$out" "known groups: aws, other"

finish
