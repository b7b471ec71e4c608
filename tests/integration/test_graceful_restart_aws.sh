#!/usr/bin/env bash
# A stop of ferryd (SIGTERM) keeps its EC2 workers (issue 16), on the fake
# EC2: see expect_graceful_restart (lib_cloud.sh).
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib_sched.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib_aws.sh"

fake_start
IDLE=10 # the checks after the run come first; then the idle worker goes
aws_conf "$(aws_env aws)"
expect_graceful_restart aws_ferryd_start
finish
