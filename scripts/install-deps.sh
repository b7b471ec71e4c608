#!/usr/bin/env bash
# Install the Debian packages ferry needs to build, run and test.
# Idempotent; run as root (or with sudo available).
set -euo pipefail

packages=(
  build-essential cmake pkg-config clang-format clang libclang-rt-14-dev git curl ca-certificates openssl python3 procps iproute2
  libuv1-dev libh2o-dev libcurl4-openssl-dev libjansson-dev libconfig-dev libyaml-dev
  libsqlite3-dev libgit2-dev libarchive-dev libssl-dev libxml2-dev
  docker.io docker-registry apache2-utils busybox-static awscli nodejs npm chromium
  lighttpd lighttpd-mod-openssl openssh-server
)
# lighttpd and openssh-server are the git servers of the tests (their own
# instances, tests/integration/lib_git.sh); the services a package may
# start at install are not used.
# Packages a command can stand for: a machine whose Node.js came from
# elsewhere (nodesource's nodejs carries npm and conflicts with Debian's npm)
# needs neither.
provided_by_command() { # provided_by_command PACKAGE
  case $1 in
  nodejs) command -v node >/dev/null ;;
  npm) command -v npm >/dev/null ;;
  *) return 1 ;;
  esac
}

sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then
  sudo_cmd=(sudo)
fi

missing=()
for p in "${packages[@]}"; do
  provided_by_command "$p" && continue
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages are installed"
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
