# What reached this node through its edges, one line each.
for f in "$FERRY_INPUTS_DIR"/data/*; do echo "input $(basename "$f"): $(cat "$f")"; done
echo "lr=$1 n=$2 DATA_VERSION=$DATA_VERSION"
