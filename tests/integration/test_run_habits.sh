#!/usr/bin/env bash
# Issue 18, point 12: the command-line habits of Valohai users. `ferry run`
# alone lists the steps; a unique prefix picks one; parameters as
# --NAME=VALUE, --NAME VALUE and --FLAG after the step (vh exec run's way),
# from --parameter-file (YAML or JSON, under the ones given one by one);
# -a and -w; .vhignore and .ferryignore honoured when packing; ferry list
# --tag; ferry show N in a project folder looks N up in that project;
# --title, --image, --var; and (point 14) two files of one input that end
# in the same name are both kept.
. "$(dirname "$0")/lib.sh"

ferryd_start

P=$(make_project habits <<'EOF'
- step:
    name: train
    image: none
    command:
      - echo "args:" {parameters}
      - ls -a | sort | tr '\n' ' '; echo
    parameters:
      - name: epochs
        type: integer
        default: 1
      - name: lr
        type: float
        default: 0.1
      - name: gpu
        type: flag
- step:
    name: evaluate
    image: none
    command: echo evaluated
- step:
    name: greet
    image: none
    command: echo "says $GREETING, $SPACED"
- step:
    name: files
    image: none
    command: echo "files:" $(ls "$FERRY_INPUTS_DIR/data")
    inputs:
      - name: data
EOF
)
printf 'data/\n*.ckpt\n' >"$P/.vhignore"
printf 'scratch.txt\n' >"$P/.ferryignore"
mkdir -p "$P/data"
echo big >"$P/data/big.bin"
echo w >"$P/m.ckpt"
echo s >"$P/scratch.txt"
echo k >"$P/keep.txt"
cd "$P"

out=$("$FERRY" run)
expect_contains "ferry run alone lists the steps" "$out" "  train"
expect_contains "ferry run alone lists every step" "$out" "  evaluate"

rc=0
out=$("$FERRY" run tr -a -w --epochs=5 --lr 0.25 --gpu 2>/dev/null) || rc=$?
expect_eq "-w: exit 0 for a complete execution" "$rc" 0
expect_contains "a prefix picked the step; --NAME=VALUE, --NAME VALUE, --FLAG" "$out" \
  "args: --epochs=5 --lr=0.25 --gpu"
expect_not_contains ".vhignore: data/ left out" "$out" "data"
expect_not_contains ".vhignore: *.ckpt left out" "$out" "m.ckpt"
expect_not_contains ".ferryignore: scratch.txt left out" "$out" "scratch.txt"
expect_contains "the rest is packed" "$out" "keep.txt"

printf 'epochs: 7\nlr: 1e-3\n' >"$WORK/params.yaml"
out=$("$FERRY" run train -w --parameter-file "$WORK/params.yaml" --lr=0.5 2>/dev/null)
expect_contains "--parameter-file (YAML), under the value given by name" "$out" \
  "args: --epochs=7 --lr=0.5"
printf '{"epochs": 9}' >"$WORK/params.json"
out=$("$FERRY" run train -w --parameter-file "$WORK/params.json" 2>/dev/null)
expect_contains "--parameter-file (JSON)" "$out" "args: --epochs=9 --lr=0.1"

# --title, --image, --var: over the step's
id=$(run_id "$P" evaluate --title "first try" --image my/image:2 --var GREETING=hello)
expect_eq "--title" "$(json_field "$id" 'e["title"]')" "first try"
expect_eq "--image" "$(json_field "$id" 'e["image"]')" "my/image:2"
expect_contains "ferry show prints the title" "$("$FERRY" show "$id")" "first try"
"$FERRY" wait "$id" >/dev/null || true
out=$("$FERRY" run greet -w --var GREETING=hello --var "SPACED=a b" 2>/dev/null)
expect_contains "--var: the commands' environment" "$out" "says hello, a b"

# Two URLs of one input that end in the same name: both kept (point 14).
mkdir -p "$WORK/a" "$WORK/b"
echo a >"$WORK/a/data.csv"
echo b >"$WORK/b/data.csv"
out=$("$FERRY" run files -w --input "data=file://$WORK/a/data.csv" --input "data=file://$WORK/b/data.csv" 2>/dev/null)
expect_contains "one input, two files of the same name: both kept, the second numbered" "$out" \
  "files: data-2.csv data.csv"

id=$(run_id "$P" evaluate --tag nightly)
"$FERRY" wait "$id" >/dev/null
list=$("$FERRY" list --tag nightly --json)
expect_eq "ferry list --tag: only the tagged one" \
  "$(python3 -c 'import json,sys; print([e["id"] for e in json.load(sys.stdin)["executions"]])' <<<"$list")" "['$id']"

# Another project with the same counters: in this folder, #1 is this one's.
O=$(make_project other <<'EOF'
- step:
    name: other
    image: none
    command: echo other
EOF
)
oid=$(run_id "$O" other)
"$FERRY" wait "$oid" >/dev/null
expect_eq "ferry show 1 in a project folder: that project's #1" \
  "$("$FERRY" show 1 --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["project"])')" habits
cd "$O"
expect_eq "ferry show 1 in the other folder: its #1" \
  "$("$FERRY" show 1 --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["project"])')" other

finish
