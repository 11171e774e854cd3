#!/usr/bin/env bash
# Copies inputs the fuzzer found interesting (kept in the Go build cache by
# `make fuzz`) into each target's testdata/fuzz/<Target>/, so they are
# committed: `go test` replays them on every run, and CI's fuzzing starts
# from them. At most $1 (default 24) inputs per target, each under 4 KiB,
# the smallest first; existing files are kept.
set -euo pipefail
cd "$(dirname "$0")/.."
max="${1:-24}"
cache="$(go env GOCACHE)/fuzz"
module="$(go list -m)"
while read -r file; do
	dir="$(dirname "${file#./}")"
	for name in $(grep -o '^func Fuzz[A-Za-z0-9_]*' "$file" | sed 's/^func //'); do
		src="$cache/$module/$dir/$name"
		[ -d "$src" ] || continue
		dst="$dir/testdata/fuzz/$name"
		mkdir -p "$dst"
		have=$(find "$dst" -type f | wc -l)
		n=0
		while read -r f; do
			[ $((have + n)) -ge "$max" ] && break
			[ -e "$dst/$(basename "$f")" ] && continue
			cp "$f" "$dst/"
			n=$((n + 1))
		done < <(find "$src" -type f -size -4k -printf '%s %p\n' | sort -n | cut -d' ' -f2-)
		echo "$dir $name: +$n (now $(find "$dst" -type f | wc -l))"
	done
done < <(grep -rl --include='*_test.go' '^func Fuzz' .)
