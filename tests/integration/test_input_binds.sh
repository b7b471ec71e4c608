#!/usr/bin/env bash
# Issue 19's cached datum input without a copy: a cached input of at least
# --bind-inputs-mb (FERRY_BIND_INPUTS_MB; 2 here) reaches the commands as a
# read-only bind of the worker's cached file onto an empty stand-in in
# inputs/, under local-process (ferry-mountns -F) or, with `docker`, under
# local-docker (a read-only file mount at every alias of the inputs folder).
#   test_input_binds.sh [process|docker]
# Checked: the bytes read at the host path ($VH_INPUTS_DIR), /valohai/inputs
# and /ferry/inputs are the producer's; a write to the bound file is refused
# and the next execution reads the original bytes; a new file beside it can
# be written; inputs.json holds the real file's size and sha256 (not the
# stand-in's); the log says the file was bound; a smaller input is still a
# copy the commands may change. Under process: ferry-mountns -F binds as
# another user too (user namespace), and a -F it cannot make ends it (126)
# with a message instead of running on the empty stand-in.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

MODE=${1:-process}
export FERRY_BIND_INPUTS_MB=2 # ferryd's agents inherit it
if [ "$MODE" = docker ]; then
  if [ -z "${FERRY_TEST_DOCKER_SOCKET:-}" ] ||
    ! curl -sf --max-time 5 --unix-socket "$FERRY_TEST_DOCKER_SOCKET" http://docker/_ping >/dev/null; then
    echo "FAIL: dockerd of tests/services is not running (tests/services/all.sh start)"
    exit 1
  fi
  bash "$FERRY_SOURCE_DIR/tests/plugins/docker_images.sh" >/dev/null
  ENV_CONF="{ name = \"binds\"; compute = \"local\"; runtime = \"local-docker\"; max_workers = 1;
              docker_socket = \"$FERRY_TEST_DOCKER_SOCKET\"; }"
else
  ENV_CONF='{ name = "binds"; compute = "local"; runtime = "local-process"; max_workers = 1; }'
fi
cat >"$WORK/ferryd.conf" <<CONF_END
default_environment = "binds";
environments = ( $ENV_CONF );
CONF_END
ferryd_start -c "$WORK/ferryd.conf"

proj=$WORK/binds
mkdir -p "$proj"
cat >"$proj/valohai.yaml" <<'YAML_END'
---
- step:
    name: make
    image: ferry-test/busybox:1
    command:
      - head -c 3145728 /dev/urandom > /valohai/outputs/model.bin
      - echo small > /valohai/outputs/notes.txt
- step:
    name: use
    image: ferry-test/busybox:1
    command:
      - echo "SHA-VH $(sha256sum /valohai/inputs/model/model.bin | cut -c1-64)"
      - echo "SHA-FERRY $(sha256sum /ferry/inputs/model/model.bin | cut -c1-64)"
      - echo "SHA-ENV $(sha256sum "$VH_INPUTS_DIR/model/model.bin" | cut -c1-64)"
      - (echo x >> /valohai/inputs/model/model.bin) 2>/dev/null && echo WRITE-OK || echo WRITE-REFUSED
      - (echo changed > /valohai/inputs/notes/notes.txt) 2>/dev/null && echo SMALL-WRITE-OK || echo SMALL-WRITE-REFUSED
      - echo beside > /valohai/inputs/model/extra.txt && echo NEWFILE-OK
      - echo "INPUTS $(tr -d '\n' < /valohai/config/inputs.json)"
    inputs:
      - name: model
      - name: notes
YAML_END

t_make=$(run_id "$proj" make --adhoc)
"$FERRY" wait "$t_make" --timeout 90 >/dev/null || true
expect_eq "make: complete" "$(json_field "$t_make" 'e["status"]')" complete
datum_of() { # datum_of NAME: the datum:// URI of make's output NAME
  "$FERRY" outputs "$t_make" --json |
    python3 -c 'import json,sys; print([o["datum"] for o in json.load(sys.stdin)["outputs"] if o["name"] == sys.argv[1]][0])' "$1"
}
MODEL=$(datum_of model.bin)
NOTES=$(datum_of notes.txt)
SHA=$("$FERRY" outputs "$t_make" --json |
  python3 -c 'import json,sys; print([o["sha256"] for o in json.load(sys.stdin)["outputs"] if o["name"] == "model.bin"][0])')
expect_eq "make: the model's sha256 is known" "${#SHA}" 64

use_run() { # use_run: sets $id and $log (not in a subshell: its checks must count)
  id=$(run_id "$proj" use --adhoc --input "model=$MODEL" --input "notes=$NOTES")
  "$FERRY" wait "$id" --timeout 90 >/dev/null || true
  log=$("$FERRY" logs "$id" 2>&1)
}
check_use() { # check_use WHAT
  expect_eq "$1: complete" "$(json_field "$id" 'e["status"]')" complete
  expect_contains "$1: the log says the model was bound" "$log" \
    "input model: model.bin is the worker's cached file, bound read-only"
  expect_not_contains "$1: the small input is a copy" "$log" \
    "input notes: notes.txt is the worker's cached file"
  expect_contains "$1: /valohai/inputs reads the producer's bytes" "$log" "SHA-VH $SHA"
  expect_contains "$1: /ferry/inputs reads them too" "$log" "SHA-FERRY $SHA"
  expect_contains "$1: and the host path of \$VH_INPUTS_DIR" "$log" "SHA-ENV $SHA"
  expect_contains "$1: a write to the bound file is refused" "$log" "WRITE-REFUSED"
  expect_contains "$1: the small copy may be changed" "$log" "SMALL-WRITE-OK"
  expect_contains "$1: a new file beside it can be written" "$log" "NEWFILE-OK"
  expect_eq "$1: inputs.json has the real file's size and sha256" \
    "$(sed -n 's/^INPUTS //p' <<<"$log" | python3 -c 'import json,sys; f = json.load(sys.stdin)["model"]["files"][0]; print(f["size"], f["checksums"]["sha256"])')" \
    "3145728 $SHA"
}
use_run
expect_contains "first use: the model is downloaded into the cache" "$log" \
  "downloading input model: model.bin"
check_use "first use"
use_run
expect_contains "second use: from the worker's cache" "$log" \
  "input model: model.bin from the worker's cache"
expect_not_contains "second use: no download" "$log" "downloading input model"
check_use "second use (after a refused write)"

if [ "$MODE" = process ]; then
  MNS=$FERRY_BUILD_DIR/lib/ferry/plugins/ferry-mountns
  d=$WORK/mns
  mkdir -p "$d/inputs/model" "$d/root"
  printf 'cached bytes\n' >"$d/cached"
  : >"$d/inputs/model/model.bin"
  chmod -R a+rwX "$d"
  chmod 755 "$WORK"
  as_nobody=(setpriv --reuid=nobody --regid=nogroup --clear-groups --)
  rc=0
  out=$("${as_nobody[@]}" "$MNS" -r "$d/root" -F "$d/cached" "$d/inputs/model/model.bin" \
    -b "$d/inputs" /ferry/inputs -- sh -c "cat /ferry/inputs/model/model.bin $d/inputs/model/model.bin; (echo x >> $d/inputs/model/model.bin) 2>/dev/null && echo WRITE-OK || echo WRITE-REFUSED" 2>&1) || rc=$?
  if grep -q "user and mount namespace" <<<"$out"; then
    echo "note: user namespaces are not allowed here; -F as another user is not checked"
  else
    expect_eq "ferry-mountns -F as nobody: exit status" "$rc" 0
    expect_eq "ferry-mountns -F as nobody: both paths read the file, writes refused" "$out" \
      "cached bytes
cached bytes
WRITE-REFUSED"
  fi
  expect_eq "the host's stand-in stays empty" "$(stat -c %s "$d/inputs/model/model.bin")" 0
  rc=0
  out=$("$MNS" -r "$d/root" -F "$d/cached" "$d/inputs/model/missing.bin" -- sh -c 'echo RAN' 2>&1) || rc=$?
  expect_eq "ferry-mountns -F onto no stand-in: exit 126" "$rc" 126
  expect_contains "and says which input could not be placed" "$out" \
    "ferry: the inputs cannot be placed: the input's place $d/inputs/model/missing.bin"
  expect_not_contains "and the program does not run" "$out" "RAN"
fi

finish
