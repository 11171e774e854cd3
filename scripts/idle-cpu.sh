#!/usr/bin/env bash
# idle-cpu.sh: CPU used by an idle three-node cluster on loopback.
#
#   scripts/idle-cpu.sh [-s SHARDS] [-d SECONDS] [-b BINDIR] [-f 'FOLLOWD FLAGS']
#
# Starts three followd processes (SHARDS shards each, default 64, three
# replicas per shard) in a temporary directory, waits until every shard has
# a leader and the leaders have settled (30 s), then samples each process's
# user+system CPU time over SECONDS (default 60) with no client traffic and
# prints the CPU per node as a percentage of one core. Stops the nodes and
# removes the data at the end (KEEP_LOGS=DIR keeps the node logs there). -f adds followd flags (e.g. '--raft-heartbeat 1s'). Needs bin/followd and bin/followctl
# (make build).
set -euo pipefail

shards=64
secs=60
bindir=bin
extra=
while getopts s:d:b:f: opt; do
	case $opt in
	s) shards=$OPTARG ;;
	d) secs=$OPTARG ;;
	b) bindir=$OPTARG ;;
	f) extra=$OPTARG ;;
	*) echo "usage: $0 [-s SHARDS] [-d SECONDS] [-b BINDIR] [-f FLAGS]" >&2; exit 2 ;;
	esac
done

dir=$(mktemp -d /tmp/followd-idle.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	if [ -n "${KEEP_LOGS:-}" ]; then mkdir -p "$KEEP_LOGS" && cp "$dir"/n*.log "$KEEP_LOGS"/; fi
	rm -rf "$dir"
}
trap cleanup EXIT

# Ports well away from the defaults so a running node does not collide.
base=27700
join="127.0.0.1:$((base + 2)),127.0.0.1:$((base + 12)),127.0.0.1:$((base + 22))"
for i in 0 1 2; do
	p=$((base + 10 * i))
	"$bindir/followd" --node-id "n$((i + 1))" --data-dir "$dir/n$i" --shards "$shards" \
		--listen "127.0.0.1:$p" --http "127.0.0.1:$((p + 80))" \
		--raft-addr "127.0.0.1:$((p + 1))" --gossip-addr "127.0.0.1:$((p + 2))" \
		--join "$join" --bootstrap-expect 3 $extra >"$dir/n$i.log" 2>&1 &
	pids+=($!)
done

"$(dirname "$0")/cluster-wait.sh" -t 120 -c "$bindir/followctl" \
	"127.0.0.1:$base" "127.0.0.1:$((base + 10))" "127.0.0.1:$((base + 20))" >/dev/null
echo "cluster of 3 nodes x $shards shards ready; settling 30s"
sleep 30

hz=$(getconf CLK_TCK)
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
declare -a before
for i in 0 1 2; do before[i]=$(ticks "${pids[i]}"); done
sleep "$secs"
total=0
for i in 0 1 2; do
	used=$(($(ticks "${pids[i]}") - before[i]))
	total=$((total + used))
	awk -v u="$used" -v hz="$hz" -v s="$secs" -v n="n$((i + 1))" \
		'BEGIN { printf "%s: %.2f%% of one core (%.2f s CPU in %d s)\n", n, 100 * u / hz / s, u / hz, s }'
done
awk -v u="$total" -v hz="$hz" -v s="$secs" -v sh="$shards" \
	'BEGIN { printf "mean per node: %.2f%% of one core; %.3f%% per shard replica\n", 100 * u / hz / s / 3, 100 * u / hz / s / (3 * sh) }'
