#!/usr/bin/env bash
# A real Docker registry (Debian docker-registry, distribution 2.x) of the
# tests' own, on loopback, with htpasswd (bcrypt) basic auth.
#   start: prints FERRY_TEST_REGISTRY=127.0.0.1:PORT, FERRY_TEST_REGISTRY_USER
#          and FERRY_TEST_REGISTRY_PASSWORD once /v2/ answers
#   stop:  stops it
# Plain HTTP is enough: dockerd treats registries on 127.0.0.0/8 as insecure
# (it falls back to HTTP) and still sends basic auth there. The password is
# made once per service folder and is only good for this throwaway registry.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
dir=${FERRY_TEST_SERVICES:-/tmp/ferry-test-services}/registry
port=${FERRY_TEST_REGISTRY_PORT:-5000}
addr=127.0.0.1:$port
user=ferry-test

answers() {
  # 401 without credentials: the registry is up and asks for auth.
  [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://$addr/v2/" 2>/dev/null)" = 401 ]
}

write_config() {
  cat >"$dir/config.yml" <<EOF
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $dir/data
  delete:
    enabled: true
http:
  addr: $addr
  secret: ferry-test-only
auth:
  htpasswd:
    realm: ferry-test-registry
    path: $dir/htpasswd
EOF
}

case "${1:-}" in
start)
  mkdir -p "$dir/data"
  if [ ! -s "$dir/password" ]; then
    (umask 077 && head -c 18 /dev/urandom | base64 | tr '+/' 'xy' >"$dir/password")
  fi
  password=$(cat "$dir/password")
  if ! answers; then
    for c in docker-registry htpasswd; do
      command -v "$c" >/dev/null || {
        echo "registry.sh: $c is not installed (scripts/install-deps.sh installs" \
          "docker-registry and apache2-utils)" >&2
        exit 1
      }
    done
    htpasswd -Bbc "$dir/htpasswd" "$user" "$password" 2>/dev/null
    write_config
    setsid docker-registry serve "$dir/config.yml" >"$dir/log" 2>&1 </dev/null &
    echo $! >"$dir/pid"
    wait_until 30 answers || {
      echo "registry.sh: the registry did not answer on $addr within 30 s; its log:" >&2
      tail -20 "$dir/log" >&2
      exit 1
    }
  fi
  echo "FERRY_TEST_REGISTRY=$addr"
  echo "FERRY_TEST_REGISTRY_USER=$user"
  echo "FERRY_TEST_REGISTRY_PASSWORD=$password"
  ;;
stop)
  stop_pidfile "$dir/pid"
  ;;
*)
  echo "usage: $0 start|stop" >&2
  exit 2
  ;;
esac
