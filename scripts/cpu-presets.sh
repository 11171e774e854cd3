#!/usr/bin/env bash
# Runs every followbench preset against one single-node followd (defaults,
# fsync on) and prints each run's CPU line: followd's and followbench's
# cores and CPU microseconds per operation over the measured period.
# Reports (JSON, with the cpu section) go to $OUT.
#
#   scripts/cpu-presets.sh [duration] [presets...]   (defaults: 20s, every preset)
#
# FB_FLAGS adds followbench flags (e.g. FB_FLAGS=--cpuprofile=...).
set -euo pipefail
cd "$(dirname "$0")/.."
duration="${1:-20s}"
shift || true
presets=("$@")
[ ${#presets[@]} -gt 0 ] || presets=(default read-heavy write-heavy celebrity smoke)
OUT="${OUT:-perf-out/cpu}"
mkdir -p "$OUT"
make build >/dev/null
work=$(mktemp -d)
cleanup() {
	[ -n "${fpid:-}" ] && kill "$fpid" 2>/dev/null || true
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT
bin/followd --data-dir "$work/followd" --listen 127.0.0.1:27821 --http 127.0.0.1:27822 --log-level warn &
fpid=$!
for _ in $(seq 1 100); do curl -sf http://127.0.0.1:27822/readyz >/dev/null && break; sleep 0.2; done
for p in "${presets[@]}"; do
	# shellcheck disable=SC2086
	bin/followbench run --preset "$p" --duration "$duration" --target followd://127.0.0.1:27821 \
		--metrics http://127.0.0.1:27822 --out "$OUT/$p.json" ${FB_FLAGS:-} >"$OUT/$p.txt" 2>"$OUT/$p.log"
	printf '%-12s %s  %s\n' "$p" "$(grep -E '^\s+all ' "$OUT/$p.txt" | awk '{print $2 " ops/s, p99 " $5 " ms"}')" "$(grep '^cpu:' "$OUT/$p.txt")"
done
