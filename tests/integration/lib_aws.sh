# shellcheck shell=bash
# Helpers of the aws compute plugin's tests (issue 7); sourced after lib.sh
# and lib_sched.sh. lib_cloud.sh sets up the network, ferryd's TLS and the
# fake's control helpers; here: the fake EC2 on loopback, which checks every
# request's signature with $AK/$SK, and the same keys in ferryd's
# environment only.
# Needs root and `ip netns`: without them the test fails, it does not skip.

AK="AKIDFERRYTEST$$"
SK="ferry/test+secret/$$-$RANDOM$RANDOM"
PFX=fa$$
. "$(dirname "${BASH_SOURCE[0]}")/lib_cloud.sh"

# --- the fake EC2 ---
fake_start() { # fake_start [ARGS...]
  cloud_fake_start ec2 "${FAKE_SCRIPT:-$FERRY_SOURCE_DIR/tests/fakes/fake_ec2.py}" \
    --access-key "$AK" --secret-key "$SK" "$@"
}
# Instances that carry ferryd's daemon tag and are not going: the python
# expression over the fake's state, and its value now.
ours_up_expr() {
  echo "' '.join(sorted(i['id'] for i in I if i['daemon'] == '$1' and i['state'] in ('pending', 'running', 'stopping', 'stopped')))"
}
running_ours() { fake_q "$(ours_up_expr "$1")"; }
# How many terminations ferryd asked for.
terminations() { fake_q "len([r for r in R if r['action'] == 'TerminateInstances'])"; }

# --- ferryd with aws environments ---
# aws_env NAME [EXTRA SETTINGS]: one environment block on the fake. The
# zones and their subnets are $ZONES and $SUBNETS (two in us-east-1), the
# idle timeout $IDLE seconds (4).
aws_env() {
  local zones='[ "us-east-1a", "us-east-1b" ]' subnets='[ "subnet-aaaa", "subnet-bbbb" ]'
  [ -n "${ZONES:-}" ] && zones=$ZONES
  [ -n "${SUBNETS:-}" ] && subnets=$SUBNETS
  cat <<EOF
{ name = "$1"; compute = "aws"; region = "us-east-1";
  zones = $zones; subnet_ids = $subnets;
  security_group_ids = [ "sg-0123", "sg-4567" ]; instance_profile = "ferry-worker";
  instance_type = "g5.xlarge"; image_id = "ami-0ferry"; disk_gb = 100;
  max_workers = 2; idle_timeout = ${IDLE:-4}; endpoint = "$FAKE"; call_timeout = 2; max_attempts = 4;
  list_page_size = 5; ${2:-} }
EOF
}
aws_conf() { # aws_conf ENV-BLOCKS...: writes $WORK/ferryd.conf
  local envs
  envs=$(printf '%s,\n' "$@")
  cat >"$WORK/ferryd.conf" <<EOF
users = ( { name = "alice"; token_sha256 = "$(sha256_of "$T_ALICE")"; } );
tls = { cert = "$PKI/server.pem"; key = "$PKI/server.key"; };
environments = ( ${envs%,} );
default_environment = "aws";
worker_lost_timeout = 4;
instance_sweep_interval = 2;
EOF
}
# ferryd with the keys in its environment only (aws-cli's chain).
aws_ferryd_start() { # aws_ferryd_start [ARGS...]
  AWS_ACCESS_KEY_ID=$AK AWS_SECRET_ACCESS_KEY=$SK AWS_SHARED_CREDENTIALS_FILE=/nonexistent \
    ferryd_start -c "$WORK/ferryd.conf" --listen "$IP:${1:-0}"
  export FERRY_TOKEN=$T_ALICE FERRY_CA=$PKI/ca.pem CURL_CA_BUNDLE=$PKI/ca.pem
}
# The check every test ends with: no instance ferry launched still runs.
expect_none_running() { # expect_none_running DAEMON-ID WHEN
  local left
  left=$(await_fake "' '.join(sorted(i['id'] for i in I if i['daemon'] == '$1' and i['state'] not in ('shutting-down', 'terminated')))" "" 20)
  expect_eq "$2: the fake holds no running instance ferry launched" "$left" ""
}
