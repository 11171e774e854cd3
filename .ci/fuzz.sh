#!/usr/bin/env bash
# Runs every native Go fuzz target of the module for $1 (default 30s) each.
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime="${1:-30s}"
status=0
while read -r file; do
	pkg="./$(dirname "${file#./}")"
	for name in $(grep -o '^func Fuzz[A-Za-z0-9_]*' "$file" | sed 's/^func //'); do
		echo "== $pkg $name ($fuzztime)"
		for attempt in 1 2; do
			if out=$(go test "$pkg" -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" 2>&1); then
				echo "$out" | tail -2
				break
			fi
			echo "$out" | grep -v '^fuzz: elapsed' | tail -30
			# The fuzzing engine can report "context deadline exceeded" when
			# the machine is too loaded to finish its baseline in time; that
			# is not a finding, so try once more. A real failure names a
			# failing input and stops here.
			if [ "$attempt" = 1 ] && echo "$out" | grep -q 'context deadline exceeded' && ! echo "$out" | grep -q 'Failing input'; then
				echo "(engine timeout, not a finding: retrying once)"
				continue
			fi
			status=1
			break
		done
	done
done < <(grep -rl --include='*_test.go' '^func Fuzz' .)
exit $status
