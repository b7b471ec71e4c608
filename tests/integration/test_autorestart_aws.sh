#!/usr/bin/env bash
# Spot auto-restart (issue 19, point 5) on the fake EC2 (tests/fakes/fake_ec2.py):
# lib_autorestart.sh's checks, a spot interruption injected mid-run.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib_sched.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib_aws.sh"

fake_start
aws_conf "$(aws_env aws 'spot = true;')"
echo "max_restarts = 1;" >>"$WORK/ferryd.conf"
aws_ferryd_start
D=$(daemon_id)
RUNNING="i['daemon'] == '$D' and i['state'] == 'running'"
SPOT="spot interruption"
SPOT_ENV=aws
. "$(dirname "${BASH_SOURCE[0]}")/lib_autorestart.sh"
expect_none_running "$D" "at the end"
finish
