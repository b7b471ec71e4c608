#!/usr/bin/env bash
# Issue 17, points 3 and 5, from the CLI: `ferry run` in a git working copy
# whose remote is a project's repository (a real git daemon) runs HEAD's
# commit and says how many changed files it leaves out; --adhoc runs the
# working copy and records the commit it was based on; a commit not pushed
# is "commit X is not in URL: push it, or run with --adhoc" (exit 2);
# --commit runs a branch, a tag or a sha; ferry show and ferry list
# --commit show the commit; outside a working copy ferry run is ad hoc.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_git.sh"

git_serve_repo

cat >"$WORK/ferryd.conf" <<EOF
projects = (
  { name = "mnist"; repository = "$GIT_DAEMON_URL"; default_ref = "main"; },
  { name = "scratch"; }
);
EOF
ferryd_start -c "$WORK/ferryd.conf"

# The user's working copy: cloned from the server, its remote the project's URL.
wc=$WORK/mnist
git clone -q "$bare" "$wc"
git -C "$wc" remote set-url origin "$GIT_DAEMON_URL"

# run_in DIR ARGS...: `ferry run ARGS --watch` in DIR; its stdout, stderr
# and exit status in $out, $err and $rc.
run_in() {
  local dir=$1
  shift
  rc=0
  out=$(cd "$dir" && "$FERRY" run "$@" --watch 2>"$WORK/err") || rc=$?
  err=$(cat "$WORK/err")
}
last_id() { "$FERRY" list --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["executions"][0]["id"])'; }

# --- plain ferry run in a linked working copy: HEAD's commit ---
run_in "$wc" train
expect_eq "HEAD: exit 0" "$rc" 0
expect_contains "HEAD: the committed version ran" "$out" "training version 1"
expect_not_contains "HEAD: nothing changed, nothing said" "$err" "changed since"
id=$(last_id)
expect_eq "HEAD: the execution records the commit" "$(json_field "$id" 'e["commit"]["sha"]')" "$v1"
expect_eq "HEAD: in the linked project" "$(json_field "$id" 'e["project"]')" mnist
expect_eq "HEAD: not ad hoc" "$(json_field "$id" 'e["adhoc"]')" None
show=$("$FERRY" show "$id")
expect_contains "show: the short sha" "$show" "${v1:0:7}"
expect_contains "show: the message" "$show" "first: train step"

# --- changes not committed: not included, said in one line ---
echo 2 >"$wc/version.txt"
echo new >"$wc/notes.txt"
run_in "$wc" train
expect_eq "changes: exit 0" "$rc" 0
expect_contains "changes: the commit ran, not the working copy" "$out" "training version 1"
expect_contains "changes: said" "$err" "2 files changed since ${v1:0:7} are not included; --adhoc runs the working copy"
expect_eq "changes: in one line" "$(grep -c "changed since" <<<"$err")" 1

# --- --adhoc: the working copy as it is, based on HEAD ---
run_in "$wc" train --adhoc
expect_eq "adhoc: exit 0" "$rc" 0
expect_contains "adhoc: the working copy ran" "$out" "training version 2"
id=$(last_id)
expect_eq "adhoc: based on HEAD" "$(json_field "$id" 'e["adhoc"]["based_on"]')" "$v1"
expect_eq "adhoc: no commit" "$(json_field "$id" 'e["commit"]')" None
expect_contains "show: ad hoc, based on" "$("$FERRY" show "$id")" "(based on ${v1:0:7})"

# --- a commit not pushed ---
git -C "$wc" checkout -q -- version.txt
rm "$wc/notes.txt"
v3=$(git_commit "$wc" "version 3" version.txt 3)
run_in "$wc" train
expect_eq "not pushed: exit 2" "$rc" 2
expect_contains "not pushed: what to do" "$err" "commit ${v3:0:7} is not in $GIT_DAEMON_URL: push it, or run with --adhoc"

# --- pushed: it runs ---
git_push "$wc" "$bare"
run_in "$wc" train
expect_eq "pushed: exit 0" "$rc" 0
expect_contains "pushed: the new commit ran" "$out" "training version 3"

# --- --commit: a tag, a branch, a sha prefix, an unknown ref ---
run_in "$wc" train --commit v1.0
expect_contains "--commit tag" "$out" "training version 1"
expect_eq "--commit tag: the ref as given" "$(json_field "$(last_id)" 'e["commit"]["ref"]')" v1.0
run_in "$WORK" train --commit main --project mnist
expect_contains "--commit branch, outside the working copy" "$out" "training version 3"
run_in "$wc" train --commit "${v1:0:8}"
expect_contains "--commit sha prefix" "$out" "training version 1"
run_in "$wc" train --commit nope
expect_eq "--commit unknown: refused" "$rc" 5
expect_contains "--commit unknown: names the ref" "$err" "no commit, branch or tag 'nope'"

# --- ferry list --commit ---
listed=$("$FERRY" list --commit "${v1:0:7}" --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["executions"]))')
expect_eq "list --commit: v1's executions (HEAD twice, the tag, the prefix)" "$listed" 4
expect_contains "list: a COMMIT column" "$("$FERRY" list)" "${v3:0:7}"

# --- outside a working copy: ad hoc as before ---
plain=$(make_project plain <<'YAML'
- step:
    name: hello
    image: busybox
    command: echo hello-plain
YAML
)
run_in "$plain" hello
expect_eq "no git: exit 0" "$rc" 0
expect_contains "no git: ran" "$out" "hello-plain"
expect_eq "no git: ad hoc, based on nothing" "$(json_field "$(last_id)" 'e["adhoc"]["based_on"]')" None

finish
