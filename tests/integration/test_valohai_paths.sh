#!/usr/bin/env bash
# Issue 18, point 2: under local-process, a valohai.yaml project's code
# finds Valohai's paths. Each execution runs in a private mount namespace
# with its folders bind-mounted at /valohai/{repository,inputs,outputs,config}
# (and /ferry/...); the variables, the working folder and inputs.json keep
# the host's paths, which are seen there too, so code reads the same values
# with or without the namespace. Root makes it with a mount namespace, its
# mount points empty folders of the host (/valohai/..., /ferry/...) where no
# file of the run ever is; any other user through a user namespace and a
# root of its own (ferry-mountns, checked as nobody). Where it cannot be made
# (here: ferry-mountns missing beside the plugin), the execution runs with
# the host's paths and its log says once why /valohai is missing.
. "$(dirname "$0")/lib.sh"

files=$WORK/files
mkdir -p "$files"
printf 'a,b\n1,2\n' >"$files/train.csv"

proj=$WORK/vhpaths
mkdir -p "$proj"
cat >"$proj/valohai.yaml" <<YAML_END
---
- step:
    name: paths
    image: python:3.12
    command: python3 paths.py {parameters}
    parameters:
      - name: epochs
        type: integer
        default: 3
    inputs:
      - name: dataset
        default: file://$files/train.csv
YAML_END
# As a Valohai user writes it: Valohai's paths, hard-coded.
cat >"$proj/paths.py" <<'PY_END'
import json, os
print("cwd", os.getcwd())
with open("/valohai/config/inputs.json") as f:
    inputs = json.load(f)
path = inputs["dataset"]["files"][0]["path"]
print("inputs.json path", path)
print("read via inputs.json", open(path).read().splitlines()[1])
print("read hard-coded", open("/valohai/inputs/dataset/train.csv").read().splitlines()[0])
with open("/valohai/config/parameters.json") as f:
    print("epochs", json.load(f)["epochs"])
with open("/valohai/outputs/model.txt", "w") as f:
    f.write("trained\n")
os.makedirs("/valohai/outputs/sub", exist_ok=True)
open("/valohai/outputs/sub/extra.txt", "w").write("x\n")
for name in ("VH_REPOSITORY_DIR", "VH_INPUTS_DIR", "VH_OUTPUTS_DIR", "VH_CONFIG_DIR"):
    print("env", name, os.environ.get(name))
print("ferry outputs", os.path.isdir("/ferry/outputs"))
PY_END

run_paths() { # run_paths LOG: sets $id; waits, the log in LOG (not in a
  # subshell: its checks must count)
  local rc=0
  id=$(run_id "$proj" paths --project vhpaths)
  "$FERRY" wait "$id" --timeout 60 >/dev/null || rc=$?
  expect_eq "wait exit status ($1)" "$rc" 0
  "$FERRY" logs "$id" >"$1" 2>&1 || true
}

# --- root: a mount namespace ---
ferryd_start
log=$WORK/ns.log
run_paths "$log"
out=$(cat "$log")
expect_contains "working folder: the repository" "$out" "cwd $DATA/workers/"
expect_contains "inputs.json's path (the host's, seen there too)" "$out" "/inputs/dataset/train.csv"
expect_contains "read through inputs.json" "$out" "read via inputs.json 1,2"
expect_contains "read from the hard-coded path" "$out" "read hard-coded a,b"
expect_contains "parameters.json" "$out" "epochs 3"
for d in repository inputs outputs config; do
  up=$(echo "$d" | tr a-z A-Z)
  expect_contains "VH_${up}_DIR stays" "$out" "env VH_${up}_DIR $DATA/workers/"
done
expect_contains "/ferry/outputs too" "$out" "ferry outputs True"
expect_not_contains "no note about missing folders" "$out" "folders are missing"
names=$("$FERRY" outputs "$id" --json | python3 -c 'import json,sys; print(" ".join(sorted(o["name"] for o in json.load(sys.stdin)["outputs"])))')
expect_eq "outputs written to /valohai/outputs are kept" "$names" "model.txt sub/extra.txt"
# As root the mount points are the host's own, empty: nothing of the run is there.
expect_eq "the host's /valohai holds no file of the run" \
  "$(find /valohai /ferry -type f 2>/dev/null | wc -l)" 0
if grep -q namespace-root /proc/self/mountinfo; then fail "a mount leaked to the host"; else pass; fi
ferryd_stop

# --- download: on-demand: not fetched; inputs.json has the URL the code
# fetches it from (over HTTP here, as a Valohai user's code would) ---
files2=$WORK/served
mkdir -p "$files2"
printf 'big,data\n' >"$files2/big.csv"
printf 'small\n' >"$files2/small.txt"
python3 -m http.server 0 --bind 127.0.0.1 --directory "$files2" >"$WORK/http.out" 2>&1 &
HTTP_PID=$!
stop_http() { kill "$HTTP_PID" 2>/dev/null || true; wait "$HTTP_PID" 2>/dev/null || true; }
cleanup_add stop_http
port=
for _ in $(seq 100); do
  port=$(sed -n 's/.*port \([0-9]*\).*/\1/p' "$WORK/http.out" | head -n 1)
  [ -n "$port" ] && break
  sleep 0.05
done
lazy=$WORK/lazy
mkdir -p "$lazy"
cat >"$lazy/valohai.yaml" <<YAML_END
---
- step:
    name: lazy
    image: python:3.12
    command: python3 lazy.py
    inputs:
      - name: big
        default: http://127.0.0.1:$port/big.csv
        download: on-demand
      - name: small
        default: http://127.0.0.1:$port/small.txt
YAML_END
cat >"$lazy/lazy.py" <<'PY_END'
import json, os, urllib.request
with open("/valohai/config/inputs.json") as f:
    inputs = json.load(f)
big = inputs["big"]["files"][0]
print("big present", os.path.exists(big["path"]))
print("big download", big.get("download"))
print("big fetched", urllib.request.urlopen(big["url"]).read().decode().strip())
small = inputs["small"]["files"][0]
print("small present", open(small["path"]).read().strip())
PY_END
ferryd_start
run_id_lazy=$(run_id "$lazy" lazy --project vhlazy)
rc=0
"$FERRY" wait "$run_id_lazy" --timeout 60 >/dev/null || rc=$?
expect_eq "on-demand: wait exit status" "$rc" 0
out=$("$FERRY" logs "$run_id_lazy" 2>&1 || true)
expect_contains "on-demand: not downloaded" "$out" "big present False"
expect_contains "on-demand: inputs.json says so" "$out" "big download on-demand"
expect_contains "on-demand: the code fetches it from its URL" "$out" "big fetched big,data"
expect_contains "on-demand: the log says so" "$out" "big.csv is downloaded on demand"
expect_contains "always: downloaded as before" "$out" "small present small"
expect_eq "on-demand: the server served big.csv once (to the code)" \
  "$(grep -c 'GET /big.csv' "$WORK/http.out" || true)" 1
ferryd_stop

# --- another user: a user namespace (the program itself, as nobody) ---
mns=$(find "$FERRY_BUILD_DIR" -name ferry-mountns -type f -perm -u+x | head -n 1)
[ -n "$mns" ] || fail "ferry-mountns is not in the build"
u=$(mktemp -d /tmp/ferry-mountns-nobody.XXXXXX)
remove_nobody_dir() { rm -rf "$u"; }
cleanup_add remove_nobody_dir
mkdir -p "$u/exec/outputs" "$u/exec/repository"
cp "$mns" "$u/mns"
chown -R 65534:65534 "$u"
chmod 755 "$u"
as_nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }
if as_nobody "$u/mns" --check 2>"$WORK/check.err"; then
  out=$(as_nobody "$u/mns" -r "$u/exec/namespace-root" -C /valohai/repository \
    -b "$u/exec/outputs" /valohai/outputs -b "$u/exec/repository" /valohai/repository \
    -- /bin/sh -c 'pwd; id -u; echo made >/valohai/outputs/f.txt' 2>&1)
  # -C names the namespace's working folder (the plugin gives the repository)
  expect_eq "nobody: working folder and identity" "$out" "/valohai/repository
65534"
  expect_eq "nobody: the file is in the host folder" "$(cat "$u/exec/outputs/f.txt")" made
  expect_eq "nobody: owned by nobody" "$(stat -c %u "$u/exec/outputs/f.txt")" 65534
else
  echo "note: user namespaces are not allowed here ($(cat "$WORK/check.err")); skipping that part"
fi

# --- ferry-mountns missing: host paths, and one line saying why ---
plugins=$WORK/plugins
mkdir -p "$plugins"
for so in "$(dirname "$mns")"/*.so; do ln -s "$so" "$plugins/"; done
cat >"$proj/paths.py" <<'PY_END'
import os
print("cwd", os.getcwd())
print("vh inputs", os.environ["VH_INPUTS_DIR"])
print("valohai exists", os.path.exists("/valohai/config/inputs.json"))
PY_END
FERRY_PLUGIN_DIR=$plugins ferryd_start
log=$WORK/nons.log
run_paths "$log"
out=$(cat "$log")
expect_contains "without it: host paths" "$out" "vh inputs $DATA"
expect_contains "without it: no /valohai" "$out" "valohai exists False"
expect_eq "without it: the log says why, once" \
  "$(grep -c 'the /valohai and /ferry folders are missing.*ferry-mountns' "$log" || true)" 1
finish
