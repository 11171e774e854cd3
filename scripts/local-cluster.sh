#!/usr/bin/env bash
# local-cluster.sh: a three-node followd cluster on loopback, from plain
# binaries, for benchmarks and trying things out.
#
#   scripts/local-cluster.sh start [-s SHARDS] [-d DIR] [-f 'FOLLOWD FLAGS']
#   scripts/local-cluster.sh stop  [-d DIR]
#   scripts/local-cluster.sh restart -n NODE [-s SHARDS] [-d DIR] [-f 'FLAGS']
#
# start runs three followd processes (node IDs n1-n3, data in DIR/n1..n3,
# default DIR /tmp/followd-cluster, 16 shards) and waits until every shard
# has a leader. Node i (0, 1, 2) listens on 127.0.0.1:277i0 (client),
# 277i1 (raft), 277i2 (gossip) and 278i0 (HTTP). Logs go to DIR/nI.log.
# stop sends SIGTERM to the three and waits for them; the data stays (rm -rf
# DIR to start afresh). restart stops node NODE (1-3) with SIGTERM, waits
# for it to exit, starts it again on its data and waits until every node
# reports every shard led. Needs bin/followd and bin/followctl (make build).
set -euo pipefail
cd "$(dirname "$0")/.."

cmd=${1:-}
shift || true
shards=16
dir=/tmp/followd-cluster
extra=
node=
while getopts s:d:f:n: opt; do
	case $opt in
	s) shards=$OPTARG; set_shards=1 ;;
	d) dir=$OPTARG ;;
	f) extra=$OPTARG; set_extra=1 ;;
	n) node=$OPTARG ;;
	*) exit 2 ;;
	esac
done
# restart reuses the shard count and flags the cluster was started with.
if [ "$cmd" = restart ] && [ -f "$dir/cluster.env" ]; then
	saved_shards=$(sed -n 1p "$dir/cluster.env")
	saved_extra=$(sed -n 2p "$dir/cluster.env")
	[ -n "${set_shards:-}" ] || shards=$saved_shards
	[ -n "${set_extra:-}" ] || extra=$saved_extra
fi
join="127.0.0.1:27702,127.0.0.1:27712,127.0.0.1:27722"

# start_node I: starts node I (0-2) in the background.
start_node() {
	local i=$1
	# shellcheck disable=SC2086 # $extra is a list of flags
	bin/followd --node-id "n$((i + 1))" --data-dir "$dir/n$((i + 1))" --shards "$shards" \
		--listen "127.0.0.1:277${i}0" --http "127.0.0.1:278${i}0" \
		--raft-addr "127.0.0.1:277${i}1" --gossip-addr "127.0.0.1:277${i}2" \
		--join "$join" --bootstrap-expect 3 $extra >>"$dir/n$((i + 1)).log" 2>&1 &
	echo $! >"$dir/n$((i + 1)).pid"
}

# stop_node N: SIGTERM to node N (1-3), and waits for it to exit.
stop_node() {
	local n=$1 pid
	[ -f "$dir/n$n.pid" ] || return 0
	pid=$(cat "$dir/n$n.pid")
	kill -TERM "$pid" 2>/dev/null || true
	while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
	rm -f "$dir/n$n.pid"
}

case $cmd in
start)
	mkdir -p "$dir"
	printf '%s\n%s\n' "$shards" "$extra" >"$dir/cluster.env"
	for i in 0 1 2; do start_node $i; done
	scripts/cluster-wait.sh -t 120 127.0.0.1:27700 127.0.0.1:27710 127.0.0.1:27720
	;;
stop)
	for i in 1 2 3; do
		[ -f "$dir/n$i.pid" ] && kill -TERM "$(cat "$dir/n$i.pid")" 2>/dev/null || true
	done
	for i in 1 2 3; do stop_node "$i"; done
	;;
restart)
	case $node in
	1 | 2 | 3) ;;
	*) echo "restart: -n 1, 2 or 3" >&2; exit 2 ;;
	esac
	stop_node "$node"
	start_node $((node - 1))
	scripts/cluster-wait.sh -t 120 127.0.0.1:27700 127.0.0.1:27710 127.0.0.1:27720 >/dev/null
	;;
*)
	echo "usage: $0 start|stop|restart [-n NODE] [-s SHARDS] [-d DIR] [-f FLAGS]" >&2
	exit 2
	;;
esac
