#!/usr/bin/env bash
# The aws compute plugin (issue 7) against tests/fakes/fake_ec2.py, which
# checks every request's SigV4 signature and boots each instance's
# user-data as a host in its own network namespace, where the real
# ferry-agent from ferryd's bundle joins over TLS. Covered:
#   - Debian's aws-cli against the fake: run, describe (paged), terminate,
#     and a wrong key refused;
#   - an execution on an EC2 "instance": zone a has no capacity, zone b
#     launches (and `ferry show` said what each zone answered); what
#     RunInstances carried (image, type, subnet per zone, security groups,
#     profile, disk, tags with the daemon and worker ids, ClientToken);
#     the commands ran in the instance's namespace; outputs come back;
#   - no AWS credential in user-data, in the agent's environment or in any
#     log; the one-time token not in ferryd's log;
#   - idle timeout: TerminateInstances, and the record goes only after
#     DescribeInstances shows the instance going;
#   - a spot interruption mid-run: error "instance ... terminated (spot
#     interruption)";
#   - the orphan sweep: periodically, and at start; another daemon's
#     instance is left alone;
#   - kill -9 of ferryd mid-run: the execution completes, its instance kept;
#   - a graceful stop of ferryd terminates the instances it had.
# Every part ends with the fake holding no running instance ferry launched.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib_sched.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib_aws.sh"

fake_start

# --- Debian's aws-cli speaks to the fake (and the fake checks it) ---
AWSCLI=/usr/bin/aws
[ -x "$AWSCLI" ] || AWSCLI=$(command -v aws || true)
cli() {
  AWS_ACCESS_KEY_ID=$AK AWS_SECRET_ACCESS_KEY=$SK AWS_DEFAULT_REGION=us-east-1 AWS_PAGER= \
    AWS_CONFIG_FILE=/nonexistent AWS_SHARED_CREDENTIALS_FILE=/nonexistent \
    "$AWSCLI" ec2 --endpoint-url "$FAKE" "$@"
}
if [ -n "$AWSCLI" ]; then
  for _ in 1 2 3 4 5 6 7; do
    cli run-instances --image-id ami-0cli --instance-type t3.micro --count 1 \
      --tag-specifications 'ResourceType=instance,Tags=[{Key=ferry:daemon,Value=aws-cli}]' \
      --query 'Instances[0].InstanceId' --output text >>"$WORK/cli-ids" 2>>"$WORK/cli.err" || true
  done
  expect_eq "aws-cli: run-instances made 7 instances" "$(wc -l <"$WORK/cli-ids")" 7
  listed=$(cli describe-instances --filters Name=tag:ferry:daemon,Values=aws-cli --page-size 5 \
    --query 'Reservations[].Instances[].InstanceId' --output text 2>>"$WORK/cli.err" |
    tr '\t' '\n' | sort | tr '\n' ' ')
  expect_eq "aws-cli: describe-instances pages through them all" "$listed" \
    "$(sort "$WORK/cli-ids" | tr '\n' ' ')"
  expect_eq "aws-cli: the fake was asked for a second page" \
    "$(fake_q "len([r for r in R if r['action'] == 'DescribeInstances' and r['next_token']]) > 0")" True
  # shellcheck disable=SC2046 # one id per word
  states=$(cli terminate-instances --instance-ids $(cat "$WORK/cli-ids") \
    --query 'TerminatingInstances[].CurrentState.Name' --output text 2>>"$WORK/cli.err" |
    tr '\t' '\n' | sort -u)
  expect_eq "aws-cli: terminate-instances" "$states" shutting-down
  rc=0
  AWS_ACCESS_KEY_ID=$AK AWS_SECRET_ACCESS_KEY=wrong-$SK AWS_DEFAULT_REGION=us-east-1 \
    AWS_CONFIG_FILE=/nonexistent AWS_SHARED_CREDENTIALS_FILE=/nonexistent \
    "$AWSCLI" ec2 --endpoint-url "$FAKE" describe-instances >/dev/null 2>"$WORK/cli-bad.err" || rc=$?
  expect_contains "aws-cli with a wrong secret: refused" "$(cat "$WORK/cli-bad.err")" \
    SignatureDoesNotMatch
  expect_eq "aws-cli: every other request's signature checked out" \
    "$(fake_q "sorted(set((r['signed'], r['code']) for r in R))")" \
    "[(False, 'SignatureDoesNotMatch'), (True, '')]"
  expect_eq "aws-cli: its instances are going" \
    "$(await_fake "' '.join(sorted(set(i['state'] for i in I)))" terminated 10)" terminated
else
  fail "no aws-cli (apt-get install awscli)"
fi
fake POST /__reset >/dev/null

# --- ferryd with an aws environment on the fake ---
aws_conf "$(aws_env aws)"
aws_ferryd_start
PORT=${FERRY_SERVER##*:}
D=$(daemon_id)
P=$({
  step_where AWS_ 2
  step_spin
  cat <<'EOF'
- step:
    name: count
    image: none
    command:
      - i=1; while [ $i -le 2000 ]; do echo "line $i"; case $i in *00) sleep 0.2;; esac; i=$((i+1)); done
      - echo counted > "$FERRY_OUTPUTS_DIR/count.txt"
EOF
} | make_project cloud)

# --- zone a has no capacity: zone b launches; ferry show says so ---
fake_faults '[{"action": "RunInstances", "zone": "us-east-1a", "status": 500,
  "code": "InsufficientInstanceCapacity",
  "message": "We currently do not have sufficient g5.xlarge capacity in the Availability Zone you requested (us-east-1a).",
  "times": -1}]'
id=$(run_id "$P" where)
why=$(queued_reason "$id" "us-east-1a: InsufficientInstanceCapacity")
expect_contains "ferry show of the waiting execution: what zone a answered" "$why" \
  "us-east-1a: InsufficientInstanceCapacity"
expect_contains "ferry show of the waiting execution: zone b launched" "$why" "us-east-1b: launched i-"
expect_ran_on_instance "$id" "i['daemon'] == '$D'" AWS_
expect_eq "RunInstances: zone a refused, then zone b" \
  "$(fake_q "[(r['zone'], r['code'] or r['status']) for r in R if r['action'] == 'RunInstances']")" \
  "[('us-east-1a', 'InsufficientInstanceCapacity'), ('us-east-1b', 200)]"
q="[i for i in I if i['id'] == '$inst'][0]"
expect_eq "the instance: zone b, its subnet, the image and type" \
  "$(fake_q "($q['zone'], $q['subnet'], $q['image'], $q['type'])")" \
  "('us-east-1b', 'subnet-bbbb', 'ami-0ferry', 'g5.xlarge')"
expect_eq "the instance: security groups, profile, disk, on demand" \
  "$(fake_q "($q['groups'], $q['profile'], $q['disk_gb'], $q['spot'])")" \
  "(['sg-0123', 'sg-4567'], 'ferry-worker', '100', False)"
worker=$(fake_first "i['id'] == '$inst'" worker)
expect_eq "the instance is tagged with ferryd's daemon id" "$(fake_q "$q['daemon']")" "$D"
expect_contains "ferryd knows the worker of its worker tag" "$(cat "$FERRYD_LOG")" \
  "worker $worker registered"
expect_contains "the ClientToken is the worker's, per zone" "$(fake_q "$q['client_token']")" "$worker-1"
expect_eq "every request ferryd made was signed right" \
  "$(fake_q "all(r['signed'] and r['key_id'] == '$AK' for r in R)")" True

# --- no credential in user-data, the agent's environment or a log ---
curl -sS -o "$WORK/user-data" "$FAKE/__userdata?id=$inst"
ud=$(cat "$WORK/user-data")
expect_contains "user-data is the bootstrap script" "$ud" "BUNDLE_SHA256="
expect_contains "user-data names the worker" "$ud" "FERRY_WORKER_ID='$worker'"
expect_contains "user-data verifies ferryd with the CA" "$ud" "BEGIN CERTIFICATE"
token=$(sed -n "s/^FERRY_BOOTSTRAP_TOKEN='\(.*\)'$/\1/p" "$WORK/user-data")
if [ ${#token} -eq 64 ]; then pass; else fail "user-data carries no one-time token"; fi
for secret in "$AK" "$SK"; do
  expect_not_contains "no AWS key in user-data" "$ud" "$secret"
  expect_not_contains "no AWS key in ferryd's log" "$(cat "$FERRYD_LOG")" "$secret"
  expect_not_contains "no AWS key on the instance's console" "$(cat "$WORK/ec2/$inst/console.log")" "$secret"
done
expect_not_contains "the one-time token is not in ferryd's log" "$(cat "$FERRYD_LOG")" "$token"
agent_env=$(agent_environ "$ns")
expect_contains "the agent runs on the instance" "$agent_env" "FERRY_WORKER_ID=$worker"
expect_not_contains "no AWS_ variable in the agent's environment" "$agent_env" "AWS_"
expect_not_contains "no AWS key in the agent's environment" "$agent_env" "$SK"

# --- idle: terminated, and the record goes once DescribeInstances agrees ---
expect_eq "idle timeout: the worker is gone" "$(await_env_workers aws "0 0 0 0" 20)" "0 0 0 0"
expect_eq "idle timeout: the instance is terminated" \
  "$(fake_q "$q['state'] in ('shutting-down', 'terminated')")" True
expect_contains "idle timeout: retired" "$(cat "$FERRYD_LOG")" "($inst): retiring: idle timeout"
expect_eq "the record went after TerminateInstances, then DescribeInstances of it" \
  "$(fake_q "[r['action'] for r in R if '$inst' in r['ids']][:2]")" \
  "['TerminateInstances', 'DescribeInstances']"
expect_contains "the record went once the instance showed going" "$(cat "$FERRYD_LOG")" \
  "instance $inst is shutting-down: record removed"
fake_faults '[]'
expect_none_running "$D" "after the first run"

# --- a spot interruption mid-run ---
id=$(run_id "$P" spin)
inst=$(spin_instance "$id" "i['daemon'] == '$D' and i['state'] == 'running'")
t0=$(now_ms)
fake POST "/__kill?id=$inst&how=spot" >/dev/null
"$FERRY" wait "$id" --timeout 30 >/dev/null || true
echo "spot interruption: the execution ended $(($(now_ms) - t0)) ms later"
expect_eq "spot interruption: error" "$(json_field "$id" 'e["status"]')" error
expect_contains "spot interruption: the reason says so" "$(json_field "$id" 'e["status_reason"]')" \
  "instance $inst terminated (spot interruption)"
expect_none_running "$D" "after the spot interruption"

# --- the orphan sweep, every few seconds here ---
orphan=$(fake_orphan "daemon=$D&worker=nobody-knows")
other=$(fake_orphan "daemon=someone-else&worker=w")
# The other is left alone: pending or running (the fake boots it after a
# delay), never shutting down.
expect_sweep "an instance with ferryd's tag and no record: terminated by the sweep" \
  "i['state'] in ('shutting-down', 'terminated')" "i['state'] in ('pending', 'running')" \
  "$other" "$orphan"

# --- kill -9 of ferryd mid-run: the run goes on, its instance is kept ---
id=$(run_id "$P" count)
await_status "$id" started 40 >/dev/null
inst=$(fake_first "i['daemon'] == '$D' and i['state'] == 'running'" id)
sleep 0.5
ferryd_kill
sleep 1
aws_ferryd_start "$PORT"
"$FERRY" wait "$id" --timeout 60 >/dev/null || true
expect_eq "across a crash of ferryd: complete" "$(json_field "$id" 'e["status"]')" complete
expect_eq "across a crash of ferryd: every line" \
  "$("$FERRY" logs "$id" 2>/dev/null | grep -c '^line ')" 2000
expect_not_contains "across a crash of ferryd: the sweep kept its instance" "$(cat "$FERRYD_LOG")" \
  "instance $inst has no worker record"
expect_none_running "$D" "after the crash"

# --- kill -9 of ferryd while its worker is idle: retired all the same ---
# The worker taken back gets its idle timer at start (issue 16).
id=$(run_id "$P" where)
"$FERRY" wait "$id" --timeout 60 >/dev/null || true
expect_eq "idle at a crash: the execution completes" "$(json_field "$id" 'e["status"]')" complete
expect_idle_retired_across ferryd_kill aws_ferryd_start "$D" "idle at a crash"

# --- the sweep at start: an orphan left while ferryd was down ---
ferryd_kill
orphan=$(fake_orphan "daemon=$D&worker=lost-in-a-crash")
sed -i 's/^instance_sweep_interval = 2;/instance_sweep_interval = 600;/' "$WORK/ferryd.conf"
aws_ferryd_start "$PORT"
expect_eq "at start: the orphan is terminated (the next sweep is 10 minutes away)" \
  "$(await_each "i['state'] in ('shutting-down', 'terminated')" 15 "$orphan")" True

# --- a graceful stop retires the instances ferryd has ---
expect_graceful_stop "$P" aws "$D"
fake POST "/__kill?id=$other&how=user" >/dev/null

finish
