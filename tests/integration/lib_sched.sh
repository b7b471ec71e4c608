# shellcheck shell=bash
# Helpers shared by the scheduling tests (users, quotas, priority, limits,
# environments and GPUs); sourced after lib.sh.

now_ms() { echo $(($(date +%s%N) / 1000000)); }

# Poll until ID has STATUS (or SECONDS pass); print the last status seen.
# Runs with the caller's FERRY_TOKEN.
await_status() { # await_status ID STATUS SECONDS
  local deadline=$(($(now_ms) + $3 * 1000)) s=
  while :; do
    s=$(json_field "$1" 'e["status"]' 2>/dev/null || true)
    if [ "$s" == "$2" ] || [ "$(now_ms)" -ge "$deadline" ]; then break; fi
    sleep 0.05
  done
  echo "$s"
}

await_file() { # await_file PATH SECONDS
  local deadline=$(($(now_ms) + $2 * 1000))
  until [ -e "$1" ]; do
    [ "$(now_ms)" -ge "$deadline" ] && return 1
    sleep 0.05
  done
}

sha256_of() { printf %s "$1" | sha256sum | cut -d' ' -f1; }

# The milliseconds between two RFC 3339 times of an execution object.
ms_between() { # ms_between ID FIELD1 FIELD2
  json_field "$1" "round((__import__('datetime').datetime.fromisoformat(e['$3'].replace('Z','+00:00')) - __import__('datetime').datetime.fromisoformat(e['$2'].replace('Z','+00:00'))).total_seconds() * 1000)"
}

# Raw API call: prints the body, writes the HTTP status to $WORK/http.code.
# TOKEN may be empty (no Authorization header).
api() { # api TOKEN METHOD PATH [JSON-BODY]
  local tok=$1 method=$2 path=$3 body=${4-}
  local args=(-sS -o "$WORK/http.body" -w '%{http_code}' -X "$method")
  [ -n "$tok" ] && args+=(-H "Authorization: Bearer $tok")
  [ -n "$body" ] && args+=(-H 'Content-Type: application/json' --data-binary "$body")
  curl "${args[@]}" "$FERRY_SERVER$path" >"$WORK/http.code" || echo 000 >"$WORK/http.code"
  cat "$WORK/http.body" 2>/dev/null || true
}
http_code() { cat "$WORK/http.code"; }

# Agent processes of an environment of the "test" compute plugin (their
# --work-dir is under $DATA/ENV/).
agents_of() { pgrep -f -- "--work-dir $DATA/$1/" | wc -l; }

# A field of one environment in GET /v1/environments, with FERRY_TOKEN's
# user or none: env_field ENV PYTHON-EXPR (on `e`).
env_field() {
  api "${FERRY_TOKEN:-}" GET /v1/environments |
    python3 -c "import json,sys; e=[x for x in json.load(sys.stdin)['environments'] if x['name']=='$1'][0]; print($2)"
}

# Poll until `env_field ENV EXPR` prints WANT (or SECONDS pass); print the last value.
await_env() { # await_env ENV EXPR WANT SECONDS
  local deadline=$(($(now_ms) + $4 * 1000)) v=
  while :; do
    v=$(env_field "$1" "$2" 2>/dev/null || true)
    if [ "$v" == "$3" ] || [ "$(now_ms)" -ge "$deadline" ]; then break; fi
    sleep 0.1
  done
  echo "$v"
}

await_agents() { # await_agents ENV COUNT SECONDS
  local deadline=$(($(now_ms) + $3 * 1000)) n=
  while :; do
    n=$(agents_of "$1")
    if [ "$n" == "$2" ] || [ "$(now_ms)" -ge "$deadline" ]; then break; fi
    sleep 0.1
  done
  echo "$n"
}

# A gate script in project DIR: `sh gate.sh KEY` writes its repository
# folder to $M/dir-KEY, touches $M/started-KEY (with $CUDA_VISIBLE_DEVICES
# in it), then waits until $M/open-KEY exists
# (or $M/open-all, or $M is gone; at most 60 s, so nothing outlives a failed
# test for long).
make_gate() { # make_gate DIR MARKERS
  cat >"$1/gate.sh" <<EOF
echo "\$FERRY_REPOSITORY_DIR" > "$2/dir-\$1"
echo "\${CUDA_VISIBLE_DEVICES-unset}" > "$2/started-\$1.tmp"
mv "$2/started-\$1.tmp" "$2/started-\$1"
n=0
while [ -d "$2" ] && [ ! -e "$2/open-\$1" ] && [ ! -e "$2/open-all" ] && [ \$n -lt 1200 ]; do sleep 0.05; n=\$((n + 1)); done
echo "gate \$1 passed"
EOF
}

# Marker files of the gates; on exit every gate opens, then lib.sh cleans up.
M=$WORK/markers
mkdir -p "$M"
# shellcheck disable=SC2154 # rc_ is set inside the trap
trap 'rc_=$?; set +e; touch "$M/open-all"; (exit $rc_); cleanup' EXIT
