#!/usr/bin/env bash
# A stop of ferryd (SIGTERM) keeps its Compute Engine workers (issue 16), on
# the fake GCE: see expect_graceful_restart (lib_cloud.sh).
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib_sched.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib_gcp.sh"

fake_start
IDLE=10 # the checks after the run come first; then the idle worker goes
gcp_conf "$(gcp_env gcp)"
expect_graceful_restart gcp_ferryd_start
finish
