#!/usr/bin/env bash
# Issue 20, point 2: a pipeline node with a `commit:` of its own runs that
# commit of the project (its tree and its step file), the other nodes the
# pipeline's; an unknown commit fails the node's creation, naming it.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_git.sh"

src=$GIT_T/src
git_make_repo "$src"
cat >"$src/valohai.yaml" <<'YAML_END'
- step:
    name: show
    image: none
    command:
      - echo "version $(cat version.txt)"
YAML_END
echo v1 >"$src/version.txt"
git -C "$src" add valohai.yaml version.txt
git -C "$src" commit -q -m v1
git -C "$src" tag v1
v1=$(git -C "$src" rev-parse HEAD)
echo v2 >"$src/version.txt"
cat >>"$src/valohai.yaml" <<'YAML_END'
- pipeline:
    name: both
    nodes:
      - name: old
        type: execution
        step: show
        commit: v1
      - name: new
        type: execution
        step: show
    edges:
      - [old.dependency.*, new.dependency.*]
- pipeline:
    name: lost
    nodes:
      - name: gone
        type: execution
        step: show
        commit: no-such-branch
    edges: []
YAML_END
git -C "$src" add valohai.yaml version.txt
git -C "$src" commit -q -m v2
v2=$(git -C "$src" rev-parse HEAD)
mkdir -p "$GIT_T/srv"
git_make_bare "$src" "$GIT_T/srv/proj.git"
git_daemon_start "$GIT_T/srv/proj.git"
cat >"$WORK/ferryd.conf" <<CONF_END
projects = ( { name = "proj"; repository = "$GIT_DAEMON_URL"; default_ref = "main"; } );
CONF_END
ferryd_start -c "$WORK/ferryd.conf"

api() {
  curl -s -X "$1" -H 'Content-Type: application/json' ${3:+--data "$3"} "$FERRY_SERVER$2"
}
py() { python3 -c "import json,sys; p=json.load(sys.stdin); print($1)"; }
wait_end() {
  local st=
  for _ in $(seq 300); do
    st=$(api GET "/v1/pipelines/$1" | py 'p["status"]')
    case $st in complete | error | stopped) break ;; esac
    sleep 0.1
  done
  echo "$st"
}
exec_of() { api GET "/v1/pipelines/$1" | py "[n for n in p['nodes'] if n['name']=='$2'][0]['execution']['id']"; }

P=$(api POST /v1/pipelines '{"project": "proj", "pipeline": "both", "commit": "main"}' | py 'p["id"]')
expect_eq "a node of another commit: complete" "$(wait_end "$P")" complete
expect_contains "the node of v1 runs v1's tree" "$("$FERRY" logs "$(exec_of "$P" old)")" "version v1"
expect_contains "the other node runs the pipeline's commit" "$("$FERRY" logs "$(exec_of "$P" new)")" \
  "version v2"
expect_eq "the node's execution records its commit" \
  "$(api GET "/v1/executions/$(exec_of "$P" old)" | py 'p["commit"]["sha"]')" "$v1"
expect_eq "the pipeline records its own" "$(api GET "/v1/pipelines/$P" | py 'p["commit"]["sha"]')" "$v2"

P=$(api POST /v1/pipelines '{"project": "proj", "pipeline": "lost", "commit": "main"}' | py 'p["id"]')
expect_eq "an unknown commit: error" "$(wait_end "$P")" error
expect_contains "an unknown commit: named" "$(api GET "/v1/pipelines/$P" | py 'p["reason"]')" \
  "node 'gone' could not be created: commit: "
expect_contains "an unknown commit: the ref" "$(api GET "/v1/pipelines/$P" | py 'p["reason"]')" \
  "no-such-branch"

finish
