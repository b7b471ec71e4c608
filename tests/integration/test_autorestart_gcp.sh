#!/usr/bin/env bash
# Spot auto-restart (issue 19, point 5) on the fake GCE (tests/fakes/fake_gce.py):
# lib_autorestart.sh's checks, a spot VM preempted mid-run.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib_sched.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib_gcp.sh"

fake_start --token-ttl 6 --end-delay 3
gcp_conf "$(gcp_env gcp 'spot = true;')"
echo "max_restarts = 1;" >>"$WORK/ferryd.conf"
gcp_ferryd_start ""
D=$(daemon_id)
DL=$(echo "$D" | tr '[:upper:]' '[:lower:]')
RUNNING="i['daemon'] == '$DL' and i['status'] == 'RUNNING'"
SPOT="spot preemption"
SPOT_ENV=gcp
. "$(dirname "${BASH_SOURCE[0]}")/lib_autorestart.sh"
expect_none_running "$DL" "at the end"
finish
