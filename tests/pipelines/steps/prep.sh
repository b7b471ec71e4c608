# A preprocessing node: two outputs (only data* crosses the edge) and its
# metadata (lr for the next node, accuracy for an action's if:).
printf 'data-%s\n' "$1" >"$FERRY_OUTPUTS_DIR/data.txt"
echo other >"$FERRY_OUTPUTS_DIR/other.txt"
echo "{\"lr\": 0.25, \"accuracy\": $2}"
echo "prep DATA_VERSION=$DATA_VERSION"
