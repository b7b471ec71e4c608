# shellcheck shell=bash
# Real git servers for the tests of projects linked to repositories (issue
# 17, point 7); sourced after lib.sh. Every server binds loopback or a
# network namespace of this test, serves bare repositories from disk, and
# is stopped by lib.sh's EXIT trap (cleanup_add).
#
# Repositories:
#   git_make_repo DIR            a working copy: branch main, one commit
#                                (valohai.yaml with step `train`, train.sh,
#                                version.txt = 1), tag v1.0
#   git_commit DIR MSG FILE CONTENT
#                                FILE (relative to DIR) := CONTENT, committed
#                                on the current branch; prints the new sha
#   git_make_bare DIR BARE       BARE: a bare clone of DIR, pushes allowed
#                                (http.receivepack)
#   git_push DIR URL             every branch and tag of DIR to URL (a bare
#                                repository's path is the simplest URL)
#   git_serve_repo               $src (git_make_repo), $bare (its bare clone
#                                mnist.git) served by git daemon, $v1
# Servers, each of BARE, a bare repository NAME.git (any folder):
#   git_daemon_start BARE   git daemon (git://, receive-pack enabled)
#     GIT_DAEMON_URL=git://127.0.0.1:PORT/NAME.git
#   git_http_start BARE     lighttpd + git http-backend, HTTPS (a test CA),
#                           basic auth for user alice, reads and pushes
#     GIT_HTTP_URL=https://localhost:PORT/git/NAME.git (what libgit2 with
#     mbedTLS, Debian's, can verify: it matches no IP address), and
#     GIT_HTTP_URL_IP=https://127.0.0.1:PORT/git/NAME.git (the same server,
#     for the git CLI and curl); lighttpd listens on 127.0.0.1 only
#     GIT_HTTP_USER (alice), GIT_HTTP_PASSWORD_FILE (the password, no
#     newline), GIT_CA_FILE (the CA's PEM), GIT_HTTP_ASKPASS (a GIT_ASKPASS
#     script answering alice and her password)
#   git_ssh_start BARE      sshd in a network namespace, key-only auth, as
#                           the current user on port 22 of the namespace's
#                           address; returns 77, saying why, without root
#                           or ip netns (git_ssh_check tells beforehand)
#     GIT_SSH_URL=ssh://USER@ADDR:22/ABS/PATH/NAME.git
#     GIT_SCP_URL=USER@ADDR:/ABS/PATH/NAME.git
#     GIT_SSH_KEY (an ed25519 deploy key, OpenSSH format, no passphrase; its
#     .pub beside it), GIT_SSH_WRONG_KEY (one not authorized),
#     GIT_SSH_KNOWN_HOSTS (the server's host key for ADDR), GIT_SSH_ADDR
#   git_ssh_command KEY     prints a GIT_SSH_COMMAND for KEY against that
#                           server (strict host key checking, batch mode)
# git itself is made hermetic: no system or user config (GIT_CONFIG_NOSYSTEM,
# GIT_CONFIG_GLOBAL to a file of this test), none of the caller's GIT_SSL_*,
# GIT_SSH*, GIT_ASKPASS or ssh agent, and never a prompt (GIT_TERMINAL_PROMPT=0).

GIT_T=$WORK/git
mkdir -p "$GIT_T"
GIT__PIDS=()
GIT__NS=
GIT__VETH=
# The caller's git and ssh settings would win over a test's: a
# GIT_SSL_CAINFO over http.sslCAInfo, an ssh agent's keys over the one named.
unset GIT_SSL_CAINFO GIT_SSL_CAPATH GIT_SSL_NO_VERIFY GIT_SSH GIT_SSH_COMMAND GIT_SSH_VARIANT \
  GIT_ASKPASS SSH_ASKPASS SSH_AUTH_SOCK GIT_DIR GIT_WORK_TREE GIT_INDEX_FILE
export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=$GIT_T/gitconfig GIT_TERMINAL_PROMPT=0
cat >"$GIT_CONFIG_GLOBAL" <<'EOF'
[user]
	name = Ferry Test
	email = ferry-test@example.invalid
[init]
	defaultBranch = main
[advice]
	detachedHead = false
EOF

git__cleanup() {
  local pid
  for pid in "${GIT__PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${GIT__PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  GIT__PIDS=()
  if [ -n "$GIT__NS" ]; then
    # sshd's session children outlive the listener.
    ip netns pids "$GIT__NS" 2>/dev/null | xargs -r kill -KILL 2>/dev/null || true
    ip netns del "$GIT__NS" 2>/dev/null || true
    # Deleting the namespace deletes the pair; this is for a setup cut short.
    ip link del "$GIT__VETH" 2>/dev/null || true
    GIT__NS=
  fi
}
cleanup_add git__cleanup
# A namespace outlives us: on a signal, exit through the EXIT trap too.
trap 'exit 143' TERM INT HUP

# --- repositories ---

git_make_repo() { # git_make_repo DIR
  local d=$1
  mkdir -p "$d"
  git init -q -b main "$d"
  cat >"$d/valohai.yaml" <<'EOF'
---
- step:
    name: train
    image: busybox
    command:
      - sh train.sh
EOF
  cat >"$d/train.sh" <<'EOF'
#!/bin/sh
# What a test can tell commits apart by: version.txt, and the outputs.
echo "training version $(cat version.txt)"
if [ -n "${VH_OUTPUTS_DIR:-}" ]; then cp version.txt "$VH_OUTPUTS_DIR/version.txt"; fi
EOF
  echo 1 >"$d/version.txt"
  git -C "$d" add valohai.yaml train.sh version.txt
  git -C "$d" commit -q -m "first: train step"
  git -C "$d" tag v1.0
}

git_commit() { # git_commit DIR MSG FILE CONTENT: prints the new commit's sha
  local d=$1
  mkdir -p "$(dirname "$d/$3")"
  printf '%s\n' "$4" >"$d/$3"
  git -C "$d" add -- "$3"
  git -C "$d" commit -q -m "$2"
  git -C "$d" rev-parse HEAD
}

git_make_bare() { # git_make_bare DIR BARE
  git clone -q --bare "$1" "$2"
  git -C "$2" config http.receivepack true
}

git_push() { # git_push DIR URL
  git -C "$1" push -q "$2" 'refs/heads/*:refs/heads/*' 'refs/tags/*:refs/tags/*'
}

# --- helpers ---

# The usual fixture: a working copy $GIT_T/src (git_make_repo), its bare
# clone $GIT_T/srv/mnist.git served by git daemon; sets src, bare, v1 (the
# first commit) and GIT_DAEMON_URL.
git_serve_repo() {
  src=$GIT_T/src
  git_make_repo "$src"
  v1=$(git -C "$src" rev-parse HEAD)
  mkdir -p "$GIT_T/srv"
  bare=$GIT_T/srv/mnist.git
  git_make_bare "$src" "$bare"
  git_daemon_start "$bare"
}

git__free_port() { # a free TCP port on 127.0.0.1
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Until ADDR:PORT accepts connections (5 s); otherwise says so with LOG.
git__await_port() { # git__await_port WHAT PID ADDR PORT LOG
  local i
  for i in $(seq 100); do
    if (exec 3<>"/dev/tcp/$3/$4") 2>/dev/null; then return 0; fi
    kill -0 "$2" 2>/dev/null || break
    sleep 0.05
  done
  echo "$1 did not start on $3:$4 (try $i):" >&2
  cat "$5" >&2 2>/dev/null || true
  return 1
}

git__bare_name() { # git__bare_name BARE: NAME of NAME.git, or fails
  local n
  n=$(basename "$1")
  case $n in
  *.git) echo "${n%.git}" ;;
  *)
    echo "a served repository must be a folder NAME.git: $1" >&2
    return 1
    ;;
  esac
}

# --- git:// ---

git_daemon_start() { # git_daemon_start BARE
  local bare name port log=$GIT_T/daemon.log
  bare=$(cd "$1" && pwd)
  name=$(git__bare_name "$bare")
  port=$(git__free_port)
  # git-daemon itself, not `git daemon`: the pid we stop is the listener's.
  "$(git --exec-path)/git-daemon" --export-all --base-path="$(dirname "$bare")" --reuseaddr \
    --listen=127.0.0.1 --port="$port" --enable=receive-pack --informative-errors \
    --verbose "$(dirname "$bare")" >>"$log" 2>&1 &
  GIT__PIDS+=($!)
  git__await_port "git daemon" "$!" 127.0.0.1 "$port" "$log"
  export GIT_DAEMON_URL=git://127.0.0.1:$port/$name.git
}

# --- https:// (lighttpd, git http-backend) ---

git_http_start() { # git_http_start BARE
  local bare name port d=$GIT_T/http
  bare=$(cd "$1" && pwd)
  name=$(git__bare_name "$bare")
  port=$(git__free_port)
  mkdir -p "$d/htdocs"
  # localhost as well as 127.0.0.1: libgit2's mbedTLS (Debian's) checks a
  # host name against DNS names only, never an IP address.
  test_pki "$d/pki" "ferry git test CA" localhost "DNS:localhost,IP:127.0.0.1"
  GIT_HTTP_USER=alice
  GIT_HTTP_PASSWORD_FILE=$d/password
  (umask 077 && openssl rand -hex 12 | tr -d '\n' >"$GIT_HTTP_PASSWORD_FILE")
  printf '%s:%s\n' "$GIT_HTTP_USER" "$(cat "$GIT_HTTP_PASSWORD_FILE")" >"$d/users"
  chmod 600 "$d/users"
  GIT_HTTP_ASKPASS=$d/askpass
  cat >"$GIT_HTTP_ASKPASS" <<EOF
#!/bin/sh
case \$1 in
Username*) echo '$GIT_HTTP_USER' ;;
*) cat '$GIT_HTTP_PASSWORD_FILE' ;;
esac
EOF
  chmod 700 "$GIT_HTTP_ASKPASS"
  cat >"$d/lighttpd.conf" <<EOF
server.modules = ( "mod_alias", "mod_setenv", "mod_auth", "mod_authn_file", "mod_cgi",
                   "mod_openssl", "mod_accesslog" )
server.bind = "127.0.0.1"
server.port = $port
server.document-root = "$d/htdocs"
server.errorlog = "$d/error.log"
accesslog.filename = "$d/access.log"
ssl.engine = "enable"
ssl.pemfile = "$d/pki/server.pem"
ssl.privkey = "$d/pki/server.key"
alias.url = ( "/git" => "$(git --exec-path)/git-http-backend" )
\$HTTP["url"] =~ "^/git" {
  cgi.assign = ( "" => "" )
  setenv.set-environment = ( "GIT_PROJECT_ROOT" => "$(dirname "$bare")",
                             "GIT_HTTP_EXPORT_ALL" => "1",
                             "PATH" => "/usr/local/bin:/usr/bin:/bin" )
  auth.backend = "plain"
  auth.backend.plain.userfile = "$d/users"
  auth.require = ( "" => ( "method" => "basic", "realm" => "ferry git test",
                           "require" => "valid-user" ) )
}
EOF
  lighttpd -tt -f "$d/lighttpd.conf" >>"$d/start.log" 2>&1 || {
    echo "lighttpd refuses its configuration:" >&2
    cat "$d/start.log" >&2
    return 1
  }
  lighttpd -D -f "$d/lighttpd.conf" >>"$d/start.log" 2>&1 &
  GIT__PIDS+=($!)
  git__await_port lighttpd "$!" 127.0.0.1 "$port" "$d/start.log"
  export GIT_HTTP_URL=https://localhost:$port/git/$name.git \
    GIT_HTTP_URL_IP=https://127.0.0.1:$port/git/$name.git GIT_HTTP_USER GIT_HTTP_PASSWORD_FILE \
    GIT_HTTP_ASKPASS GIT_CA_FILE=$d/pki/ca.pem
}

# --- ssh:// (sshd in a network namespace) ---

# 0 when git_ssh_start can run here; otherwise prints why and returns 77.
git_ssh_check() {
  if [ "$(id -u)" -ne 0 ]; then
    echo "SKIP: the ssh git server needs root (a network namespace)"
    return 77
  fi
  if ! command -v ip >/dev/null || ! ip netns list >/dev/null 2>&1; then
    echo "SKIP: the ssh git server needs ip netns"
    return 77
  fi
  if [ ! -x /usr/sbin/sshd ]; then
    echo "SKIP: the ssh git server needs /usr/sbin/sshd (Debian openssh-server)"
    return 77
  fi
}

git_ssh_start() { # git_ssh_start BARE
  local bare net user d=$GIT_T/ssh rc=0
  git_ssh_check || return $?
  bare=$(cd "$1" && pwd)
  git__bare_name "$bare" >/dev/null
  mkdir -p "$d"
  net=$(netns_pick_net)
  GIT__NS=fg$$s
  GIT__VETH=fg$$s0
  netns_add_host "$GIT__NS" "$GIT__VETH" "$net.1" "$net.2" || rc=$?
  if [ "$rc" -ne 0 ]; then
    echo "SKIP: cannot set up a network namespace for the ssh git server"
    return 77
  fi
  GIT_SSH_ADDR=$net.2
  user=$(id -un)
  ssh-keygen -q -t ed25519 -N '' -C "ferry-test-host" -f "$d/host_ed25519"
  ssh-keygen -q -t ed25519 -N '' -C "ferry-test-deploy" -f "$d/deploy"
  ssh-keygen -q -t ed25519 -N '' -C "ferry-test-wrong" -f "$d/wrong"
  cp "$d/deploy.pub" "$d/authorized_keys"
  echo "$GIT_SSH_ADDR $(cut -d' ' -f1,2 "$d/host_ed25519.pub")" >"$d/known_hosts"
  cat >"$d/sshd_config" <<EOF
ListenAddress $GIT_SSH_ADDR
Port 22
HostKey $d/host_ed25519
PidFile none
AuthorizedKeysFile $d/authorized_keys
AuthenticationMethods publickey
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
AllowUsers $user
StrictModes no
UsePAM no
UseDNS no
MaxAuthTries 3
LoginGraceTime 10
X11Forwarding no
AllowTcpForwarding no
PermitTTY no
LogLevel VERBOSE
EOF
  # Debian's service makes sshd's privilege separation folder; we start
  # sshd ourselves.
  [ -d /run/sshd ] || install -d -m 755 /run/sshd
  /usr/sbin/sshd -t -f "$d/sshd_config" >>"$d/sshd.log" 2>&1 || {
    echo "sshd refuses its configuration:" >&2
    cat "$d/sshd.log" >&2
    return 1
  }
  ip netns exec "$GIT__NS" /usr/sbin/sshd -D -e -f "$d/sshd_config" >>"$d/sshd.log" 2>&1 &
  GIT__PIDS+=($!)
  git__await_port sshd "$!" "$GIT_SSH_ADDR" 22 "$d/sshd.log"
  export GIT_SSH_ADDR GIT_SSH_URL=ssh://$user@$GIT_SSH_ADDR:22$bare \
    GIT_SCP_URL=$user@$GIT_SSH_ADDR:$bare GIT_SSH_KEY=$d/deploy GIT_SSH_WRONG_KEY=$d/wrong \
    GIT_SSH_KNOWN_HOSTS=$d/known_hosts
}

git_ssh_command() { # git_ssh_command KEY: a GIT_SSH_COMMAND for that server
  printf 'ssh -F /dev/null -i %q -o IdentitiesOnly=yes -o UserKnownHostsFile=%q' \
    "$1" "$GIT_SSH_KNOWN_HOSTS"
  printf ' -o StrictHostKeyChecking=yes -o BatchMode=yes -o ConnectTimeout=5\n'
}
