#!/usr/bin/env bash
# Reproduces docs/PERFORMANCE.md's single-node comparison: followd against
# Redis without persistence and Redis with appendfsync always, same machine,
# same graph, same workload. Writes JSON reports and charts to $OUT.
#
#   scripts/perf.sh [preset] [duration]     (defaults: default 30s)
#
# Needs redis-server (.ci/deps.sh installs it). Takes a few minutes: it
# loads the graph into each target first.
set -euo pipefail
cd "$(dirname "$0")/.."
preset="${1:-default}"
duration="${2:-30s}"
OUT="${OUT:-perf-out}"
clients="${CLIENTS:-64}"
mkdir -p "$OUT"
make build >/dev/null
work=$(mktemp -d)
cleanup() {
	[ -n "${fpid:-}" ] && kill "$fpid" 2>/dev/null || true
	redis-cli -p 26391 shutdown nosave >/dev/null 2>&1 || true
	redis-cli -p 26392 shutdown nosave >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap cleanup EXIT

bin/followd --data-dir "$work/followd" --listen 127.0.0.1:27791 --http 127.0.0.1:27792 --log-level warn &
fpid=$!
redis-server --port 26391 --bind 127.0.0.1 --save "" --appendonly no --daemonize yes --logfile "$work/r1.log"
redis-server --port 26392 --bind 127.0.0.1 --save "" --appendonly yes --appendfsync always --dir "$work" --daemonize yes --logfile "$work/r2.log"
for i in $(seq 1 50); do curl -sf http://127.0.0.1:27792/readyz >/dev/null && break; sleep 0.2; done

fb() { bin/followbench "$@" --preset "$preset" --duration "$duration" --clients "$clients" --metrics http://127.0.0.1:27792; }
fb compare followd://127.0.0.1:27791 redis://127.0.0.1:26391 --out "$OUT/$preset-vs-redis-nopersist.json" | tee "$OUT/$preset-vs-redis-nopersist.txt"
fb compare followd://127.0.0.1:27791 redis://127.0.0.1:26392 --out "$OUT/$preset-vs-redis-fsync-always.json" | tee "$OUT/$preset-vs-redis-fsync-always.txt"
