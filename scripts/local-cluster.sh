#!/usr/bin/env bash
# local-cluster.sh: a three-node followd cluster on loopback, from plain
# binaries, for benchmarks and trying things out.
#
#   scripts/local-cluster.sh start [-s SHARDS] [-d DIR] [-f 'FOLLOWD FLAGS']
#   scripts/local-cluster.sh stop  [-d DIR]
#
# start runs three followd processes (node IDs n1-n3, data in DIR/n1..n3,
# default DIR /tmp/followd-cluster, 16 shards) and waits until every shard
# has a leader. Node i (0, 1, 2) listens on 127.0.0.1:277i0 (client),
# 277i1 (raft), 277i2 (gossip) and 278i0 (HTTP). Logs go to DIR/nI.log.
# stop sends SIGTERM to the three and waits for them; the data stays (rm -rf
# DIR to start afresh). Needs bin/followd and bin/followctl (make build).
set -euo pipefail
cd "$(dirname "$0")/.."

cmd=${1:-}
shift || true
shards=16
dir=/tmp/followd-cluster
extra=
while getopts s:d:f: opt; do
	case $opt in
	s) shards=$OPTARG ;;
	d) dir=$OPTARG ;;
	f) extra=$OPTARG ;;
	*) exit 2 ;;
	esac
done

case $cmd in
start)
	mkdir -p "$dir"
	join="127.0.0.1:27702,127.0.0.1:27712,127.0.0.1:27722"
	for i in 0 1 2; do
		# shellcheck disable=SC2086 # $extra is a list of flags
		bin/followd --node-id "n$((i + 1))" --data-dir "$dir/n$((i + 1))" --shards "$shards" \
			--listen "127.0.0.1:277${i}0" --http "127.0.0.1:278${i}0" \
			--raft-addr "127.0.0.1:277${i}1" --gossip-addr "127.0.0.1:277${i}2" \
			--join "$join" --bootstrap-expect 3 $extra >>"$dir/n$((i + 1)).log" 2>&1 &
		echo $! >"$dir/n$((i + 1)).pid"
	done
	scripts/cluster-wait.sh -t 120 127.0.0.1:27700 127.0.0.1:27710 127.0.0.1:27720
	;;
stop)
	for i in 1 2 3; do
		[ -f "$dir/n$i.pid" ] && kill -TERM "$(cat "$dir/n$i.pid")" 2>/dev/null || true
	done
	for i in 1 2 3; do
		if [ -f "$dir/n$i.pid" ]; then
			pid=$(cat "$dir/n$i.pid")
			while kill -0 "$pid" 2>/dev/null; do sleep 0.2; done
			rm -f "$dir/n$i.pid"
		fi
	done
	;;
*)
	echo "usage: $0 start|stop [-s SHARDS] [-d DIR] [-f FLAGS]" >&2
	exit 2
	;;
esac
