# What the service scripts share (sourced, not run).

# wait_until SECONDS COMMAND...: run COMMAND every 0.25 s until it succeeds;
# its status after SECONDS is the answer.
wait_until() {
  local tries=$(($1 * 4))
  shift
  for _ in $(seq 1 "$tries"); do
    "$@" && return 0
    sleep 0.25
  done
  "$@"
}

# stop_pidfile FILE: SIGTERM to the process FILE names, SIGKILL if it is
# still there after 15 s; the file goes.
stop_pidfile() {
  [ -f "$1" ] || return 0
  local pid
  pid=$(cat "$1")
  kill -TERM "$pid" 2>/dev/null || true
  wait_until 15 eval "! kill -0 $pid 2>/dev/null" || kill -KILL "$pid" 2>/dev/null || true
  rm -f "$1"
}
