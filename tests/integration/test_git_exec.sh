#!/usr/bin/env bash
# Issue 17, points 3 to 6, through the API: POST /v1/executions with
# "commit" (a branch, a tag, a full or abbreviated sha) runs the commit's
# tree fetched from a real git daemon: what is committed is what runs
# (.gitignore irrelevant, no .git, symlinks kept as symlinks, Git LFS
# pointers as they are and said so once in the log), its snapshot is built
# once per tree and reused, the execution records the commit (and
# execution.json its identifier), ?commit= lists by sha prefix, and bad
# input gets errors naming the commit: unknown ref, ambiguous prefix,
# missing or broken step file (5d6e7f8:valohai.yaml:N), a commit beyond
# max_snapshot_mb, an ad-hoc-only project.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_git.sh"

src=$GIT_T/src
git_make_repo "$src"
# What the snapshot must hold, and how the commands see it.
cat >"$src/train.sh" <<'EOF'
#!/bin/sh
echo "training version $(cat version.txt)"
echo "ignored but committed: $(cat build/ignored.txt)"
echo "link: $(readlink outside)"
[ -e .git ] && echo "a .git is here" || echo "no .git"
head -c 40 model.bin; echo
cp "$VH_CONFIG_DIR/execution.json" "$VH_OUTPUTS_DIR/execution.json"
cp version.txt "$VH_OUTPUTS_DIR/version.txt"
EOF
mkdir -p "$src/build"
echo "build/" >"$src/.gitignore"
echo "kept" >"$src/build/ignored.txt"
ln -s /etc/hostname "$src/outside"
printf 'version https://git-lfs.github.com/spec/v1\noid sha256:%064d\nsize 1048576\n' 7 >"$src/model.bin"
git -C "$src" add -f .gitignore build/ignored.txt outside model.bin train.sh
git -C "$src" commit -q -m "train: show what the snapshot holds"
v1=$(git -C "$src" rev-parse HEAD)
mkdir -p "$GIT_T/srv"
bare=$GIT_T/srv/mnist.git
git_make_bare "$src" "$bare"
# A second repository on the same daemon, beyond max_snapshot_mb = 1.
big=$GIT_T/big
git_make_repo "$big"
head -c 1500000 /dev/urandom >"$big/weights.bin"
git -C "$big" add weights.bin
git -C "$big" commit -q -m "weights"
git_make_bare "$big" "$GIT_T/srv/big.git"
git_daemon_start "$bare"
big_url=${GIT_DAEMON_URL%/mnist.git}/big.git

cat >"$WORK/ferryd.conf" <<EOF
max_snapshot_mb = 1;
projects = (
  { name = "mnist"; repository = "$GIT_DAEMON_URL"; default_ref = "main"; },
  { name = "big"; repository = "$big_url"; },
  { name = "scratch"; }
);
EOF
ferryd_start -c "$WORK/ferryd.conf"

# post BODY: prints "CODE BODY"
post() {
  local code
  code=$(curl -sS -o "$WORK/post.out" -w '%{http_code}' -H 'Content-Type: application/json' \
    --data-binary "$1" "$FERRY_SERVER/v1/executions")
  echo "$code $(cat "$WORK/post.out")"
}
sql() { # sql QUERY: the first column of the first row (python's sqlite3: no CLI needed)
  python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute(sys.argv[2]).fetchone()[0])' \
    "$DATA/ferry.db" "$1"
}
field() { # field JSON PYTHON-EXPR (on `e`)
  python3 -c "import json,sys; e=json.loads(sys.argv[1]); print($2)" "$1"
}

# --- a branch, before any fetch: one fetch, then it runs ---
out=$(post '{"project": "mnist", "step": "train", "commit": "main"}')
expect_eq "commit main: created (201)" "${out%% *}" 201
e=${out#* }
id=$(field "$e" 'e["id"]')
expect_eq "commit main: resolved to the sha" "$(field "$e" 'e["commit"]["sha"]')" "$v1"
expect_eq "commit main: the ref as given" "$(field "$e" 'e["commit"]["ref"]')" main
expect_eq "commit main: the repository" "$(field "$e" 'e["commit"]["repository"]')" "$GIT_DAEMON_URL"
expect_eq "commit main: the message's first line" "$(field "$e" 'e["commit"]["message"]')" \
  "train: show what the snapshot holds"
expect_eq "commit main: the author" "$(field "$e" 'e["commit"]["author"]')" \
  "Ferry Test <ferry-test@example.invalid>"
expect_eq "commit main: the date" "$(field "$e" 'e["commit"]["date"]')" \
  "$(git -C "$src" log -1 --format=%ct)"
expect_eq "commit main: not ad hoc" "$(field "$e" 'e["adhoc"]')" None
rc=0
"$FERRY" wait "$id" --timeout 60 >/dev/null || rc=$?
expect_eq "commit main: complete" "$rc" 0
log=$("$FERRY" logs "$id" 2>&1)
expect_contains "the commit's files run" "$log" "training version 1"
expect_contains ".gitignore is irrelevant: a committed ignored file is there" "$log" \
  "ignored but committed: kept"
expect_contains "a symlink out of the tree is kept as a symlink" "$log" "link: /etc/hostname"
expect_contains "no .git in the snapshot" "$log" "no .git"
expect_contains "an LFS pointer is there as it is" "$log" "version https://git-lfs.github.com/spec"
expect_eq "the log says once that LFS files are pointers" \
  "$(grep -c "holds 1 Git LFS pointer file" <<<"$log")" 1
xj=$(curl -sS "$FERRY_SERVER/v1/executions/$id/outputs/execution.json")
expect_eq "execution.json: valohai.commit-identifier" \
  "$(field "$xj" 'e["valohai.commit-identifier"]')" "$v1"
expect_eq "the snapshot of the tree is cached" \
  "$(sql "SELECT count(*) FROM git_snapshots WHERE tree = '$(git -C "$src" rev-parse "HEAD^{tree}")'")" 1

# --- the same tree again: its snapshot reused; a tag; an abbreviated sha ---
snap1=$(field "$e" 'e["snapshot"]')
out=$(post '{"project": "mnist", "step": "train", "commit": "'"${v1:0:7}"'"}')
expect_eq "abbreviated sha: created" "${out%% *}" 201
expect_eq "abbreviated sha: the same snapshot" "$(field "${out#* }" 'e["snapshot"]')" "$snap1"
expect_eq "abbreviated sha: the ref as given" "$(field "${out#* }" 'e["commit"]["ref"]')" "${v1:0:7}"
v2=$(git_commit "$src" "second: version 2" version.txt 2)
git -C "$src" tag v2.0
git_push "$src" "$bare"
# v2.0 is not in the mirror yet: one fetch, then it resolves.
out=$(post '{"project": "mnist", "step": "train", "commit": "v2.0"}')
expect_eq "a new tag: fetched and created" "${out%% *}" 201
id2=$(field "${out#* }" 'e["id"]')
expect_eq "a new tag: its commit" "$(field "${out#* }" 'e["commit"]["sha"]')" "$v2"
"$FERRY" wait "$id2" --timeout 60 >/dev/null || true
expect_contains "a new tag: its files run" "$("$FERRY" logs "$id2")" "training version 2"
expect_eq "two trees: two snapshots" "$(sql "SELECT count(*) FROM git_snapshots")" 2

# --- listed and shown by commit ---
list=$(curl -sS "$FERRY_SERVER/v1/executions?commit=${v1:0:8}")
expect_eq "?commit=prefix: the two executions of v1" \
  "$(field "$list" 'sorted(x["commit"]["sha"] for x in e["executions"])')" "['$v1', '$v1']"
list=$(curl -sS "$FERRY_SERVER/v1/executions?commit=$v2")
expect_eq "?commit=full sha: the one of v2" "$(field "$list" 'len(e["executions"])')" 1
out=$(curl -sS -o /dev/null -w '%{http_code}' "$FERRY_SERVER/v1/executions?commit=xyz")
expect_eq "?commit=not hex: 400" "$out" 400

# --- ad hoc: says so, with the commit it was based on ---
tar -czf "$WORK/adhoc.tgz" -C "$src" valohai.yaml train.sh version.txt
snap=$(curl -sS --data-binary @"$WORK/adhoc.tgz" "$FERRY_SERVER/v1/snapshots" | python3 -c 'import json,sys; print(json.load(sys.stdin)["snapshot"])')
out=$(post '{"project": "mnist", "step": "train", "snapshot": "'"$snap"'", "based_on": "'"$v2"'"}')
expect_eq "ad hoc with based_on: created" "${out%% *}" 201
expect_eq "ad hoc: no commit" "$(field "${out#* }" 'e["commit"]')" None
expect_eq "ad hoc: its snapshot and base" "$(field "${out#* }" '[e["adhoc"]["snapshot"], e["adhoc"]["based_on"]]')" \
  "['$snap', '$v2']"
out=$(post '{"project": "mnist", "step": "train", "snapshot": "'"$snap"'", "based_on": "main"}')
expect_eq "ad hoc, based_on not a sha: 400" "${out%% *}" 400

# --- bad input ---
out=$(post '{"project": "mnist", "step": "train", "commit": "no-such-branch"}')
expect_eq "unknown ref: 404" "${out%% *}" 404
expect_contains "unknown ref: named with the URL" "$out" \
  "project 'mnist': no commit, branch or tag 'no-such-branch' in $GIT_DAEMON_URL"
# An ambiguous prefix: 2,000 commits on a side branch (git fast-import:
# quick) share some 4-digit prefix among them, almost surely.
python3 - "$src" <<'PYEOF2' | git -C "$src" fast-import --quiet
import sys
out = sys.stdout
for i in range(1, 2001):
    msg = "filler %d" % i
    data = "%d\n" % i
    out.write("commit refs/heads/fillers\nmark :%d\n" % i)
    out.write("committer Ferry Test <ferry-test@example.invalid> %d +0000\n" % (1700000000 + i))
    out.write("data %d\n%s\n" % (len(msg), msg))
    if i > 1:
        out.write("from :%d\n" % (i - 1))
    out.write("M 100644 inline filler.txt\ndata %d\n%s\n" % (len(data), data))
PYEOF2
pfx=$(git -C "$src" rev-list --all | cut -c1-4 | sort | uniq -d | head -n 1)
expect_eq "the test found a 4-digit prefix two commits share" "$([ -n "$pfx" ] && echo yes)" yes
git_push "$src" "$bare"
"$FERRY" project fetch mnist >/dev/null
out=$(post '{"project": "mnist", "step": "train", "commit": "'"$pfx"'"}')
expect_eq "ambiguous prefix: 400" "${out%% *}" 400
expect_contains "ambiguous prefix: says so" "$out" "'$pfx' is ambiguous"
out=$(post '{"project": "mnist", "step": "nosuch", "commit": "main"}')
expect_contains "unknown step: names the commit and the file" "$out" \
  "unknown step 'nosuch' in $(git -C "$src" rev-parse --short=7 HEAD):valohai.yaml"
printf -- '---\n- step:\n    name: train\n    image: busybox\n    command: [sh train.sh\n' >"$src/valohai.yaml"
broken=$(git -C "$src" add valohai.yaml && git -C "$src" commit -q -m broken && git -C "$src" rev-parse HEAD)
git -C "$src" rm -q valohai.yaml
git -C "$src" commit -q -m "no step file"
none=$(git -C "$src" rev-parse HEAD)
git_push "$src" "$bare"
out=$(post '{"project": "mnist", "step": "train", "commit": "'"$broken"'"}')
expect_eq "broken step file: 400" "${out%% *}" 400
expect_contains "broken step file: commit:file:line" "$out" "${broken:0:7}:valohai.yaml:"
out=$(post '{"project": "mnist", "step": "train", "commit": "'"$none"'"}')
expect_contains "no step file: names the commit" "$out" \
  "commit ${none:0:7} has no ferry.yaml or valohai.yaml"
out=$(post '{"project": "big", "step": "train", "commit": "main"}')
expect_eq "beyond max_snapshot_mb: 413" "${out%% *}" 413
expect_contains "beyond max_snapshot_mb: says so" "$out" "is larger than max_snapshot_mb = 1"
out=$(post '{"project": "scratch", "step": "train", "commit": "main"}')
expect_eq "ad-hoc-only project: 400" "${out%% *}" 400
expect_contains "ad-hoc-only project: says so" "$out" "project 'scratch' has no repository"
out=$(post '{"project": "nosuch", "step": "train", "commit": "main"}')
expect_eq "unknown project: 404" "${out%% *}" 404
out=$(post '{"project": "mnist", "step": "train", "commit": "main", "snapshot": "'"$snap"'"}')
expect_eq "commit and snapshot: 400" "${out%% *}" 400
out=$(post '{"project": "mnist", "step": "train", "commit": "a b"}')
expect_eq "a ref with a space: 400" "${out%% *}" 400
expect_contains "ferryd still serves" "$("$FERRY" envs 2>&1)" "local"

# --- a restart keeps the commit recorded ---
ferryd_stop
ferryd_start -c "$WORK/ferryd.conf"
expect_eq "after a restart: the commit is still recorded" "$(json_field "$id" 'e["commit"]["sha"]')" "$v1"

finish
