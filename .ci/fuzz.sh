#!/usr/bin/env bash
# Runs every native Go fuzz target of the module for $1 (default 30s) each.
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime="${1:-30s}"
grep -rl --include='*_test.go' '^func Fuzz' . | while read -r file; do
	pkg="./$(dirname "${file#./}")"
	for name in $(grep -o '^func Fuzz[A-Za-z0-9_]*' "$file" | sed 's/^func //'); do
		echo "== $pkg $name ($fuzztime)"
		go test "$pkg" -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime"
	done
done
