#!/usr/bin/env bash
# Compares two followd builds on this machine, back to back: each runs as a
# single node with its defaults (fsync on) on its own data directory, and
# followbench compare drives both with the same workload, alternating
# between them (--rounds), and prints the ratios of B to A.
#
#   scripts/compare-builds.sh OLD_FOLLOWD NEW_FOLLOWD [preset] [duration]
#
# e.g. build the base commit into /tmp/before first:
#   git worktree add /tmp/base-src BASE && (cd /tmp/base-src && go build -o /tmp/before/ ./cmd/followd)
#   scripts/compare-builds.sh /tmp/before/followd bin/followd default 30s
#
# Reports go to $OUT (default compare-out/).
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 2 ] || { sed -n '2,13p' "$0"; exit 2; }
old="$1" new="$2"
preset="${3:-default}"
duration="${4:-30s}"
rounds="${ROUNDS:-4}"
OUT="${OUT:-compare-out}"
mkdir -p "$OUT"
make build >/dev/null
work=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

"$old" --data-dir "$work/a" --listen 127.0.0.1:27801 --http 127.0.0.1:27802 --log-level warn &
pids+=($!)
"$new" --data-dir "$work/b" --listen 127.0.0.1:27811 --http 127.0.0.1:27812 --log-level warn &
pids+=($!)
for port in 27802 27812; do
	for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.2; done
done
bin/followbench compare "followd://127.0.0.1:27801?metrics=http://127.0.0.1:27802" "followd://127.0.0.1:27811?metrics=http://127.0.0.1:27812" \
	--preset "$preset" --duration "$duration" --rounds "$rounds" --out "$OUT/$preset-builds.json" | tee "$OUT/$preset-builds.txt"
