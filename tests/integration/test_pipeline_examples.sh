#!/usr/bin/env bash
# Issue 20: every pipeline of the valohai-yaml examples
# (tests/vectors/valohai-yaml/examples) is accepted by `ferry pipeline run`,
# or refused with a message that names the node or parameter, its line and
# why. The accepted ones are stopped at once: their steps' commands (python
# scripts of their own) are not here.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

EXAMPLES=${FERRY_VECTORS_DIR:-$FERRY_SOURCE_DIR/tests/vectors}/valohai-yaml/examples
ferryd_start

# file | pipeline | "created" or the refusal's words
while IFS='|' read -r file name expected; do
  [ -n "$file" ] || continue
  dir=$WORK/ex/$file
  mkdir -p "$dir"
  cp "$EXAMPLES/$file" "$dir/valohai.yaml"
  out=$(cd "$dir" && "$FERRY" pipeline run "$name" --adhoc 2>&1) && rc=0 || rc=$?
  if [ "$expected" = created ]; then
    expect_eq "$file: '$name' is accepted (exit status)" "$rc" 0
    expect_contains "$file: '$name' is accepted" "$out" "created: $name"
    id=$(sed -n 's/^pipeline #[0-9]* (\([0-9a-f-]*\)).*/\1/p' <<<"$out" | head -n 1)
    [ -n "$id" ] && "$FERRY" pipeline stop "$id" >/dev/null 2>&1 || true
  else
    expect_eq "$file: '$name' is refused (exit status)" "$rc" 5
    expect_contains "$file: '$name' is refused, saying why" "$out" "$expected"
  fi
done <<'TABLE_END'
edge-merge-mode.yaml|check-edge-merge-mode|created
pipeline-deployment-edge-example.yaml|Deployment edge pipeline|valohai.yaml:36: pipeline 'Deployment edge pipeline': node 'Deploy' is a deployment node: deployments are parsed, not run by ferry
pipeline-edge-types-example.yaml|Edge types showcase|valohai.yaml:60: pipeline 'Edge types showcase': node 'report': input 'results' of step 'Reporting' has no file (no default, override or edge)
pipeline-example.yaml|My little pipeline|valohai.yaml:43: pipeline 'My little pipeline': edge into batch2.parameter.aspect-ratio: step 'Batch feature extraction' has no parameter 'aspect-ratio'
pipeline-example.yaml|My deployment pipeline|node 'deploy-predictor' is a deployment node: deployments are parsed, not run by ferry
pipeline-example.yaml|My medium pipeline|valohai.yaml:95: pipeline 'My medium pipeline': edge into batch2.parameter.aspect-ratio
pipeline-example.yaml|Last action pipeline|valohai.yaml:113: pipeline 'Last action pipeline': node 'train': input 'training-images' of step 'Train model' has no file
pipeline-execution-retry-example.yaml|pipe|created
pipeline-with-automatic-deployment-creation.yaml|oracle-training-pipeline|node 'release' is a deployment node
pipeline-with-different-commit.yaml|Commits Specified|node 'preprocess': commit 'library:generic-preprocessors/csv-into-parquet' names a step of a Valohai library, which ferry cannot reach
pipeline-with-different-commit.yaml|One Library Step, One Local Step|valohai.yaml:19: pipeline 'One Library Step, One Local Step': node 'preprocess': commit 'library:
pipeline-with-override-example.yaml|My overriden input pipeline|valohai.yaml:43: pipeline 'My overriden input pipeline': node 'merged': input 'training-without-default' of step 'base step' has no file
pipeline-with-override-example.yaml|My parameter and input pipeline|node 'merged': parameter 'c' of step 'base step' has no value (no default, pipeline parameter or edge): give it (-p merged.c=VALUE)
pipeline-with-override-only-preset.yaml|Training pipeline with override-only preset|node 'train-node': override of 'runtime-config-preset' is not one ferry takes
pipeline-with-parameters-example.yaml|Example Pipeline with Parameters|valohai.yaml:63: pipeline 'Example Pipeline with Parameters': node 'train_parallel': parameter 'param0-float' of step 'train_step' has no value
pipeline-with-parameters-example.yaml|Short hand parameter target|valohai.yaml:71: pipeline 'Short hand parameter target': parameter 'id' has no default: give it (-p id=VALUE)
pipeline-with-parameters-example.yaml|Short hand parameter target 2|parameter 'id' has no default
pipeline-with-runtime-config-preset.yaml|Training pipeline|valohai.yaml:11: pipeline 'Training pipeline': node 'train-node': override of 'runtime-config-preset'
pipeline-with-task-blueprint-example.yaml|train-pipeline|valohai.yaml:43: pipeline 'train-pipeline': node 'train' is a task node: ferry does not run tasks yet
pipeline-with-tasks-example.yaml|dynamic-task|node 'train-with-errors' is a task node
TABLE_END

# Every example file's pipelines are in the table above: a new example
# must be added to it.
for f in "$EXAMPLES"/*.yaml; do
  if grep -q '^- pipeline:' "$f"; then
    if grep -q "^$(basename "$f")|" "$0"; then pass; else fail "$(basename "$f") is not in the table"; fi
  fi
done
# The examples whose steps can run here, as tests/pipelines/examples has
# them: steps of our own (the same names, inputs and parameters, sh
# commands) and the example's pipelines verbatim. Each runs to completion.
blocks() { # the `- pipeline:` and `- endpoint:` blocks of a file, as written
  awk '/^- /{keep = ($0 == "- pipeline:" || $0 == "- endpoint:")} keep' "$1"
}
echo "base-file" >"$WORK/base.txt"
while IFS='|' read -r file name args check; do
  [ -n "$file" ] || continue
  dir=$WORK/run/$file
  mkdir -p "$dir"
  sed "s|file://BASE_FILE|file://$WORK/base.txt|" "$FERRY_SOURCE_DIR/tests/pipelines/examples/$file" \
    >"$dir/valohai.yaml"
  expect_eq "$file: the runnable copy has the example's pipelines verbatim" \
    "$(blocks "$dir/valohai.yaml" | sha256sum)" "$(blocks "$EXAMPLES/$file" | sha256sum)"
  # shellcheck disable=SC2086 # $args: the -p options, split on purpose
  out=$(cd "$dir" && "$FERRY" pipeline run "$name" --adhoc --watch $args 2>&1) && rc=0 || rc=$?
  expect_eq "$file: '$name' runs to completion" "$rc" 0
  [ "$rc" = 0 ] || echo "$out" >&2
  if [ -n "$check" ]; then
    id=$(sed -n 's/^pipeline #[0-9]* (\([0-9a-f-]*\)).*/\1/p' <<<"$out" | head -n 1)
    node=${check%%:*}
    exec=$("$FERRY" pipeline show "$id" --json |
      python3 -c "import json,sys; p=json.load(sys.stdin); print([n for n in p['nodes'] if n['name']=='$node'][0]['execution']['id'])")
    expect_contains "$file: '$name': what node $node saw" "$("$FERRY" logs "$exec")" "${check#*:}"
  fi
done <<'RUN_END'
edge-merge-mode.yaml|check-edge-merge-mode||node-with-edge-merge-append:base.txt
pipeline-edge-types-example.yaml|Edge types showcase||evaluate:evaluated trained on data v1.0 full standard by accuracy, DATA_VERSION=v1.0
pipeline-example.yaml|My little pipeline||train:learning_rate=0.0125 on images of images of base-file at 1.5 at 1.5
pipeline-example.yaml|Last action pipeline||validate:tested model
pipeline-execution-retry-example.yaml|pipe||process:processed
pipeline-with-parameters-example.yaml|Example Pipeline with Parameters||train:--id=123
pipeline-with-parameters-example.yaml|Short hand parameter target|-p id=5|train:--id=5
pipeline-with-parameters-example.yaml|Short hand parameter target 2|-p id=6|train:--id=6
RUN_END
for f in "$FERRY_SOURCE_DIR"/tests/pipelines/examples/*.yaml; do
  if grep -q "^$(basename "$f")|" "$0"; then pass; else fail "$(basename "$f") is never run"; fi
done

finish
