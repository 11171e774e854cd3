#!/usr/bin/env bash
# Memory per edge and restart time of a single-node followd: loads a graph
# of USERS users (mean 20 follows, followbench's default popularity) into
# a fresh followd with its defaults, reports resident memory per edge, then
# restarts it (SIGTERM, start) and reports the time until /readyz answers.
#
#   scripts/load-memory.sh [USERS]        (default 1000000)
#   BIN=/tmp/other/bin scripts/load-memory.sh 200000   another build
#   FOLLOWD_FLAGS="-gogc 10" scripts/load-memory.sh    other followd flags
#   RESTARTS=3 SHOW_LOG=1 scripts/load-memory.sh        more restarts, then followd's log
set -euo pipefail
users=${1:-1000000}
bin=${BIN:-bin}
dir=$(mktemp -d /tmp/load-memory.XXXXXX)
addr=127.0.0.1:27960
http=127.0.0.1:27961
trap 'kill $pid 2>/dev/null || true; wait 2>/dev/null; rm -rf "$dir"' EXIT

start() {
	# shellcheck disable=SC2086 # FOLLOWD_FLAGS is a list of flags
	"$bin/followd" -data-dir "$dir/data" -listen $addr -http $http ${FOLLOWD_FLAGS:-} >>"$dir/followd.log" 2>&1 &
	pid=$!
	local t0=$(date +%s.%N)
	until curl -sf "http://$http/readyz" >/dev/null; do
		kill -0 $pid 2>/dev/null || { cat "$dir/followd.log"; exit 1; }
		sleep 0.05
	done
	ready=$(echo "$(date +%s.%N) - $t0" | bc)
}

start
"$bin/followbench" load --target followd://$addr --metrics http://$http \
	--users "$users" --mean-following 20 --load-workers 64 >"$dir/load.txt" 2>&1 || { cat "$dir/load.txt"; exit 1; }
tail -n 2 "$dir/load.txt"
sleep 5
edges=$(curl -s "http://$http/metrics" | awk '/^followgraph_shard_edges/ {s += $2} END {printf "%d", s}')
rss=$(awk '/VmRSS/ {print $2 * 1024}' /proc/$pid/status)
echo "users $users edges $edges rss_bytes $rss bytes_per_edge $(echo "scale=1; $rss / $edges" | bc)"
for i in $(seq "${RESTARTS:-1}"); do
	kill -TERM $pid
	wait $pid || true
	start
	echo "restart_to_ready_s $ready"
done
[ -z "${SHOW_LOG:-}" ] || tail -n 60 "$dir/followd.log"
rss=$(awk '/VmRSS/ {print $2 * 1024}' /proc/$pid/status)
echo "after restart rss_bytes $rss bytes_per_edge $(echo "scale=1; $rss / $edges" | bc)"
