#!/usr/bin/env bash
# The real git servers lib_git.sh gives the tests of issue 17, proven with
# the git CLI: git daemon (git://, clone and push), lighttpd + git
# http-backend (https with the test CA, basic auth: the password clones, no
# or a wrong password is refused with 401), sshd in a network namespace
# (the deploy key clones by ssh:// and by the scp-like URL, a wrong key is
# refused at once). Skips (77) the ssh part's checks without root or ip
# netns, after the others have run.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_git.sh"

now_ms() { echo $(($(date +%s%N) / 1000000)); }
t_start=$(now_ms)

src=$GIT_T/src
git_make_repo "$src"
v1=$(git -C "$src" rev-parse HEAD)
expect_eq "the repository: branch main" "$(git -C "$src" symbolic-ref --short HEAD)" main
expect_eq "the repository: tag v1.0 is HEAD" "$(git -C "$src" rev-parse 'v1.0^{commit}')" "$v1"
expect_eq "the repository: its files" "$(git -C "$src" ls-tree --name-only HEAD | tr '\n' ' ')" \
  "train.sh valohai.yaml version.txt "
expect_contains "the step file has step train" "$(cat "$src/valohai.yaml")" "name: train"
expect_eq "train.sh runs" "$(cd "$src" && sh train.sh)" "training version 1"
bare=$GIT_T/srv/mnist.git
mkdir -p "$GIT_T/srv"
git_make_bare "$src" "$bare"
v2=$(git_commit "$src" "second: version 2" version.txt 2)
git_push "$src" "$bare"
expect_eq "git_push: main reaches the bare repository" "$(git -C "$bare" rev-parse main)" "$v2"
expect_eq "git_push: the tag too" "$(git -C "$bare" rev-parse 'v1.0^{commit}')" "$v1"

# Clones URL into a fresh folder with extra git options; prints "rc sha".
clone() { # clone NAME URL [GIT-OPTIONS...]
  local name=$1 url=$2 rc=0
  shift 2
  rm -rf "${GIT_T:?}/clones/$name"
  mkdir -p "$GIT_T/clones"
  timeout 30 git "$@" clone -q "$url" "$GIT_T/clones/$name" >"$GIT_T/clones/$name.log" 2>&1 || rc=$?
  echo "$rc $(git -C "$GIT_T/clones/$name" rev-parse HEAD 2>/dev/null || echo none)"
}

# --- git:// ---
git_daemon_start "$bare"
expect_contains "git daemon: the URL" "$GIT_DAEMON_URL" "git://127.0.0.1:"
expect_eq "git daemon: clone" "$(clone daemon "$GIT_DAEMON_URL")" "0 $v2"
expect_eq "git daemon: the tag" "$(git -C "$GIT_T/clones/daemon" rev-parse 'v1.0^{commit}')" "$v1"
v3=$(git_commit "$src" "third: version 3" version.txt 3)
git_push "$src" "$GIT_DAEMON_URL"
expect_eq "git daemon: a push (receive-pack)" "$(git -C "$bare" rev-parse main)" "$v3"

# --- https:// ---
git_http_start "$bare"
expect_contains "https: the URL" "$GIT_HTTP_URL" "https://localhost:"
expect_eq "https: the URL by address" "$GIT_HTTP_URL_IP" "https://127.0.0.1:${GIT_HTTP_URL#https://localhost:}"
expect_eq "https: the user" "$GIT_HTTP_USER" alice
pw=$(cat "$GIT_HTTP_PASSWORD_FILE")
if [ ${#pw} -ge 16 ]; then pass; else fail "https: a short password '$pw'"; fi
code=$(curl -sS -o /dev/null -w '%{http_code}' --cacert "$GIT_CA_FILE" \
  "$GIT_HTTP_URL/info/refs?service=git-upload-pack")
expect_eq "https: no password: 401" "$code" 401
code=$(curl -sS -o /dev/null -w '%{http_code}' --cacert "$GIT_CA_FILE" -u "alice:wrong-$pw" \
  "$GIT_HTTP_URL/info/refs?service=git-upload-pack")
expect_eq "https: a wrong password: 401" "$code" 401
code=$(curl -sS -o /dev/null -w '%{http_code}' --cacert "$GIT_CA_FILE" -u "alice:$pw" \
  "$GIT_HTTP_URL/info/refs?service=git-upload-pack")
expect_eq "https: the password: 200" "$code" 200
rc=0
curl -sS -o /dev/null "$GIT_HTTP_URL/" 2>/dev/null || rc=$?
expect_eq "https: the certificate is not trusted without the test CA (curl 60)" "$rc" 60
expect_eq "https: clone with the password (GIT_ASKPASS)" \
  "$(GIT_ASKPASS=$GIT_HTTP_ASKPASS clone https "$GIT_HTTP_URL" -c "http.sslCAInfo=$GIT_CA_FILE")" "0 $v3"
expect_eq "https: clone by address with the password" \
  "$(GIT_ASKPASS=$GIT_HTTP_ASKPASS clone https-ip "$GIT_HTTP_URL_IP" -c "http.sslCAInfo=$GIT_CA_FILE")" "0 $v3"
r=$(clone https-none "$GIT_HTTP_URL" -c "http.sslCAInfo=$GIT_CA_FILE")
expect_eq "https: clone without the password fails" "${r%% *}" 128
askwrong=$GIT_T/askwrong
printf '#!/bin/sh\necho wrong\n' >"$askwrong"
chmod 700 "$askwrong"
r=$(GIT_ASKPASS=$askwrong clone https-wrong "$GIT_HTTP_URL" -c "http.sslCAInfo=$GIT_CA_FILE")
expect_eq "https: clone with a wrong password fails" "${r%% *}" 128
expect_contains "https: ... authentication failed" "$(cat "$GIT_T/clones/https-wrong.log")" \
  "Authentication failed"
r=$(GIT_ASKPASS=$GIT_HTTP_ASKPASS clone https-noca "$GIT_HTTP_URL")
expect_eq "https: clone without the CA fails" "${r%% *}" 128
expect_contains "https: 401s in lighttpd's access log" "$(cat "$GIT_T/http/access.log")" '" 401 '
v4=$(git_commit "$src" "fourth: version 4" version.txt 4)
GIT_ASKPASS=$GIT_HTTP_ASKPASS git -c "http.sslCAInfo=$GIT_CA_FILE" -C "$src" push -q \
  "$GIT_HTTP_URL" main
expect_eq "https: a push (receive-pack, as alice)" "$(git -C "$bare" rev-parse main)" "$v4"

# --- ssh:// ---
ssh_rc=0
git_ssh_check || ssh_rc=$?
if [ "$ssh_rc" -eq 0 ]; then
  git_ssh_start "$bare"
  expect_eq "ssh: the URL" "$GIT_SSH_URL" "ssh://$(id -un)@$GIT_SSH_ADDR:22$bare"
  expect_eq "ssh: the scp-like URL" "$GIT_SCP_URL" "$(id -un)@$GIT_SSH_ADDR:$bare"
  if ! ip -4 -o addr show | grep -q " $GIT_SSH_ADDR/"; then pass; else
    fail "ssh: $GIT_SSH_ADDR is an address of the root namespace, not the server's own"
  fi
  expect_eq "ssh: clone with the deploy key" \
    "$(GIT_SSH_COMMAND=$(git_ssh_command "$GIT_SSH_KEY") clone ssh "$GIT_SSH_URL")" "0 $v4"
  expect_eq "ssh: clone by the scp-like URL" \
    "$(GIT_SSH_COMMAND=$(git_ssh_command "$GIT_SSH_KEY") clone scp "$GIT_SCP_URL")" "0 $v4"
  # The GIT_SSH_COMMAND spelled out as the brief's tests will.
  expect_eq "ssh: clone, the plain ssh options" "$(GIT_SSH_COMMAND="ssh -i $GIT_SSH_KEY \
-o UserKnownHostsFile=$GIT_SSH_KNOWN_HOSTS -o StrictHostKeyChecking=yes -o IdentitiesOnly=yes" \
    clone ssh-plain "$GIT_SSH_URL")" "0 $v4"
  t0=$(now_ms)
  r=$(GIT_SSH_COMMAND=$(git_ssh_command "$GIT_SSH_WRONG_KEY") clone ssh-wrong "$GIT_SSH_URL")
  wrong_ms=$(($(now_ms) - t0))
  expect_eq "ssh: a wrong key fails" "${r%% *}" 128
  expect_contains "ssh: ... permission denied" "$(cat "$GIT_T/clones/ssh-wrong.log")" \
    "Permission denied (publickey)"
  if [ "$wrong_ms" -lt 10000 ]; then pass; else fail "ssh: a wrong key took $wrong_ms ms"; fi
  empty=$GIT_T/empty_known_hosts
  : >"$empty"
  r=$(GIT_SSH_COMMAND="ssh -F /dev/null -i $GIT_SSH_KEY -o IdentitiesOnly=yes \
-o UserKnownHostsFile=$empty -o StrictHostKeyChecking=yes -o BatchMode=yes" clone ssh-unknown "$GIT_SSH_URL")
  expect_eq "ssh: an unknown host key fails" "${r%% *}" 128
  expect_contains "ssh: ... host key verification" "$(cat "$GIT_T/clones/ssh-unknown.log")" \
    "Host key verification failed"
  r=$(GIT_SSH_COMMAND="ssh -F /dev/null -i $GIT_SSH_KEY -o IdentitiesOnly=yes -o BatchMode=yes \
-o UserKnownHostsFile=$GIT_SSH_KNOWN_HOSTS -o PreferredAuthentications=password" clone ssh-pw "$GIT_SSH_URL")
  expect_eq "ssh: no password authentication" "${r%% *}" 128
  v5=$(git_commit "$src" "fifth: version 5" version.txt 5)
  GIT_SSH_COMMAND=$(git_ssh_command "$GIT_SSH_KEY") git_push "$src" "$GIT_SSH_URL"
  expect_eq "ssh: a push" "$(git -C "$bare" rev-parse main)" "$v5"
fi

# Every server on loopback or the namespace: none listens on another address.
listeners=$(ss -Hltnp 2>/dev/null | grep -E 'git-daemon|lighttpd|sshd' | awk '{print $4}' | sort -u |
  grep -v '^127\.0\.0\.1:' || true)
expect_eq "every server of the root namespace on 127.0.0.1" "$listeners" ""
echo "git servers: $(($(now_ms) - t_start)) ms"
finish
if [ "$ssh_rc" -ne 0 ]; then exit 77; fi
