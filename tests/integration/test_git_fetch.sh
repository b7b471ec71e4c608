#!/usr/bin/env bash
# Issue 17, points 1, 2 and 7: projects in ferryd's config linked to real
# git servers (git daemon, git http-backend behind lighttpd over HTTPS with
# basic auth, sshd in a network namespace with a deploy key), listed by
# `ferry projects` and fetched by `ferry project fetch` (libgit2 in ferryd):
# what changed is printed, a wrong key or password is "authentication
# failed at URL" at once (no hang), an unreachable server names the URL and
# libgit2's reason, no credential appears in an answer or ferryd's log, and
# ferryd keeps serving. The ssh part is skipped (the rest still checked)
# without root or ip netns.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_git.sh"

git_serve_repo
git_http_start "$bare"
ssh_ok=1
git_ssh_start "$bare" || ssh_ok=0
printf 'not-the-password' >"$WORK/wrong-password"
# A server that takes connections and never answers.
python3 -c '
import socket, sys
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(16)
open(sys.argv[1] + ".tmp", "w").write(str(s.getsockname()[1]))
__import__("os").rename(sys.argv[1] + ".tmp", sys.argv[1])
held = []
while True:
    held.append(s.accept()[0])
' "$WORK/silent.port" &
silent_pid=$!
silent_stop() { kill "$silent_pid" 2>/dev/null || true; }
cleanup_add silent_stop
for _ in $(seq 100); do [ -s "$WORK/silent.port" ] && break; sleep 0.05; done
silent_port=$(cat "$WORK/silent.port")
dead_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

ssh_projects=
if [ "$ssh_ok" = 1 ]; then
  ssh_projects="
  { name = \"byssh\"; repository = \"$GIT_SSH_URL\"; ssh_key = \"$GIT_SSH_KEY\";
    ssh_known_hosts = \"$GIT_SSH_KNOWN_HOSTS\"; },
  { name = \"byscp\"; repository = \"$GIT_SCP_URL\"; ssh_key = \"$GIT_SSH_KEY\";
    ssh_known_hosts = \"$GIT_SSH_KNOWN_HOSTS\"; },
  { name = \"wrongkey\"; repository = \"$GIT_SSH_URL\"; ssh_key = \"$GIT_SSH_WRONG_KEY\"; },"
fi
cat >"$WORK/ferryd.conf" <<EOF
git_timeout = 5;
projects = (
  { name = "mnist"; repository = "$GIT_DAEMON_URL"; default_ref = "main"; },
  { name = "byhttps"; repository = "$GIT_HTTP_URL"; username = "$GIT_HTTP_USER";
    password_file = "$GIT_HTTP_PASSWORD_FILE"; ca_file = "$GIT_CA_FILE"; },
  { name = "wrongpass"; repository = "$GIT_HTTP_URL"; username = "$GIT_HTTP_USER";
    password_file = "$WORK/wrong-password"; ca_file = "$GIT_CA_FILE"; },$ssh_projects
  { name = "dead"; repository = "git://127.0.0.1:$dead_port/none.git"; },
  { name = "silent"; repository = "git://127.0.0.1:$silent_port/none.git"; },
  { name = "silenthttps"; repository = "https://127.0.0.1:$silent_port/none.git"; },
  { name = "scratch"; }
);
EOF
ferryd_start -c "$WORK/ferryd.conf"

# --- ferry projects ---
out=$("$FERRY" projects 2>&1)
expect_contains "projects: mnist and its URL" "$out" "$GIT_DAEMON_URL"
expect_contains "projects: never fetched" "$out" "never"
expect_contains "projects: an ad-hoc-only project has no repository" "$(echo "$out" | grep scratch)" "-"
json=$("$FERRY" projects --json)
expect_eq "projects --json: every project" "$(echo "$json" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["projects"]))')" \
  "$([ "$ssh_ok" = 1 ] && echo 10 || echo 7)"
expect_not_contains "projects --json: no password" "$json" "$(cat "$GIT_HTTP_PASSWORD_FILE")"

# --- fetch over git:// ---
out=$("$FERRY" project fetch mnist 2>&1)
expect_contains "first fetch: main is new" "$out" "new: main ${v1:0:7}"
expect_contains "first fetch: tag v1.0 is new" "$out" "new: v1.0 ${v1:0:7}"
expect_eq "the mirror is under the data folder" "$(git --git-dir="$DATA/git/mnist.git" rev-parse main)" "$v1"
out=$("$FERRY" project fetch mnist 2>&1)
expect_contains "a second fetch: up to date" "$out" "mnist: up to date"
v2=$(git_commit "$src" "second: version 2" version.txt 2)
git -C "$src" tag v1.1
git_push "$src" "$bare"
out=$("$FERRY" project fetch mnist 2>&1)
expect_contains "a new commit: main old -> new" "$out" "main: ${v1:0:7} -> ${v2:0:7}"
expect_contains "a new tag" "$out" "new: v1.1 ${v2:0:7}"
json=$("$FERRY" project fetch mnist --json)
expect_contains "fetch --json: the project" "$json" '"project": "mnist"'
json=$("$FERRY" projects --json)
expect_eq "projects: fetched_at set, no error" "$(echo "$json" | python3 -c 'import json,sys; p=[p for p in json.load(sys.stdin)["projects"] if p["name"]=="mnist"][0]; print(p["fetched_at"] is not None and p["last_fetch_error"] is None)')" True

# --- https with basic auth and the test CA ---
out=$("$FERRY" project fetch byhttps 2>&1)
expect_contains "https: fetched with the password" "$out" "new: main ${v2:0:7}"
rc=0
t0=$(date +%s)
out=$(timeout 30 "$FERRY" project fetch wrongpass 2>&1) || rc=$?
expect_eq "https, wrong password: refused (exit 5: ferryd answered an error)" "$rc" 5
expect_contains "https, wrong password: authentication failed at the URL" "$out" \
  "project 'wrongpass': authentication failed at $GIT_HTTP_URL"
expect_eq "https, wrong password: no hang" "$(($(date +%s) - t0 < 15))" 1

# --- ssh with a deploy key ---
if [ "$ssh_ok" = 1 ]; then
  out=$("$FERRY" project fetch byssh 2>&1)
  expect_contains "ssh://: fetched with the deploy key" "$out" "new: main ${v2:0:7}"
  out=$("$FERRY" project fetch byscp 2>&1)
  expect_contains "scp-like URL: fetched" "$out" "new: main ${v2:0:7}"
  rc=0
  t0=$(date +%s)
  out=$(timeout 30 "$FERRY" project fetch wrongkey 2>&1) || rc=$?
  expect_eq "ssh, wrong key: refused (exit 5: ferryd answered an error)" "$rc" 5
  expect_contains "ssh, wrong key: authentication failed at the URL" "$out" \
    "project 'wrongkey': authentication failed at $GIT_SSH_URL"
  expect_eq "ssh, wrong key: no hang" "$(($(date +%s) - t0 < 15))" 1
fi

# --- unreachable, unknown, ad-hoc only ---
rc=0
out=$("$FERRY" project fetch dead 2>&1) || rc=$?
expect_eq "unreachable: refused (exit 5)" "$rc" 5
expect_contains "unreachable: names the URL" "$out" "project 'dead': cannot fetch git://127.0.0.1:$dead_port/none.git: "
out=$("$FERRY" project fetch nosuch 2>&1) || true
expect_contains "unknown project: named" "$out" "no project 'nosuch'"
out=$("$FERRY" project fetch scratch 2>&1) || true
expect_contains "ad-hoc-only project: says so" "$out" "project 'scratch' has no repository"
json=$("$FERRY" projects --json)
expect_contains "projects: the failed fetch is recorded" "$json" "cannot fetch git://127.0.0.1:$dead_port"

# --- ferryd kept serving and logged no secret ---
expect_contains "ferryd still serves" "$("$FERRY" envs 2>&1)" "local"
expect_not_contains "no password in ferryd's log" "$(cat "$FERRYD_LOG")" "$(cat "$GIT_HTTP_PASSWORD_FILE")"
expect_not_contains "no key in ferryd's log" "$(cat "$FERRYD_LOG")" "PRIVATE KEY"

# --- a server that never answers: git_timeout bounds the fetch, and a stop
# of ferryd does not wait for it ---
for p in silent silenthttps; do
  rc=0
  t0=$(date +%s)
  out=$(timeout 60 "$FERRY" project fetch "$p" 2>&1) || rc=$?
  expect_eq "$p: refused (exit 5)" "$rc" 5
  # Over TLS, libgit2's mbedTLS layer replaces our words with its own
  # ("SSL error: ... Generic error"); the URL is still named.
  if [ "$p" = silent ]; then
    expect_contains "$p: says the server did not answer in git_timeout" "$out" \
      "no answer from 127.0.0.1:$silent_port in 5 s (git_timeout)"
  else
    expect_contains "$p: names the URL" "$out" "cannot fetch https://127.0.0.1:$silent_port/none.git"
  fi
  expect_eq "$p: given up after git_timeout, not later" "$(($(date +%s) - t0 <= 12))" 1
done
"$FERRY" project fetch silent >/dev/null 2>&1 &
fetch_pid=$!
sleep 1
t0=$(date +%s%N)
ferryd_stop
stop_ms=$((($(date +%s%N) - t0) / 1000000))
wait "$fetch_pid" 2>/dev/null || true
expect_eq "a stop during a fetch from a silent server ends within 3 s (took $stop_ms ms)" \
  "$((stop_ms < 3000))" 1

finish
