#!/usr/bin/env bash
# One style for the tree: every C file git tracks is as clang-format (with
# the repository's .clang-format) would write it.
set -euo pipefail
cd "$1"
bad=0
while IFS= read -r f; do
  if ! clang-format --dry-run --Werror "$f" >/dev/null 2>&1; then
    echo "not formatted: $f (run clang-format -i $f)"
    bad=$((bad + 1))
  fi
done < <(git ls-files '*.c' '*.h')
echo "$bad file(s) not formatted"
[ "$bad" -eq 0 ]
