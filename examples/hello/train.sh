#!/bin/sh
# A stand-in for a training script: parses --epochs and --lr, prints one
# JSON metrics line per epoch (ferry keeps them as metadata) and writes
# outputs into $FERRY_OUTPUTS_DIR.
set -eu
epochs=3
lr=0.1
for arg in "$@"; do
  case "$arg" in
    --epochs=*) epochs=${arg#--epochs=} ;;
    --lr=*) lr=${arg#--lr=} ;;
  esac
done
echo "$GREETING: $epochs epochs at lr=$lr"
mkdir -p "$FERRY_OUTPUTS_DIR/plots"
echo "epoch,loss" >"$FERRY_OUTPUTS_DIR/plots/loss.csv"
i=1
while [ "$i" -le "$epochs" ]; do
  loss=$(awk "BEGIN { printf \"%.4f\", 1.0 / ($i * (1 + $lr)) }")
  echo "{\"epoch\": $i, \"loss\": $loss}"
  echo "$i,$loss" >>"$FERRY_OUTPUTS_DIR/plots/loss.csv"
  echo "epoch $i done" >&2
  sleep 0.2
  i=$((i + 1))
done
echo "weights after $epochs epochs" >"$FERRY_OUTPUTS_DIR/model.txt"
echo "done"
