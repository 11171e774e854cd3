#!/bin/sh
# cluster-wait.sh: wait until a followgraph cluster answers and every shard
# has a leader.
#
#   scripts/cluster-wait.sh [-t SECONDS] [-c FOLLOWCTL] ADDR...
#
# Each ADDR (HOST:PORT of a node's client protocol) must answer
# `followctl status`, and in the status of each, every shard must name a
# leader. Polls every second, for at most SECONDS (default 60). Exit status
# 0 when ready (the first ADDR's status is printed), 1 on timeout (the last
# answers or errors are printed). Used by `make cluster-up`. Needs only a
# POSIX shell, grep and followctl; FOLLOWCTL_TOKEN is passed through.
set -u

timeout=60
followctl=bin/followctl
while getopts t:c: opt; do
	case $opt in
	t) timeout=$OPTARG ;;
	c) followctl=$OPTARG ;;
	*) echo "usage: $0 [-t SECONDS] [-c FOLLOWCTL] ADDR..." >&2; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
if [ $# -eq 0 ]; then
	echo "usage: $0 [-t SECONDS] [-c FOLLOWCTL] ADDR..." >&2
	exit 2
fi

# ready ADDR: the node answers, reports at least one shard, and every shard
# names a leader. followctl --json prints one compact JSON object; shards
# carry "leaderID" (nodes carry "nodeID", so the count is the shards').
ready() {
	out=$("$followctl" --addr "$1" --timeout 3s --json status 2>&1) || return 1
	total=$(printf '%s\n' "$out" | grep -o '"leaderID":"[^"]*"' | wc -l)
	none=$(printf '%s\n' "$out" | grep -o '"leaderID":""' | wc -l)
	[ "$total" -gt 0 ] && [ "$none" -eq 0 ]
}

start=$(date +%s)
while :; do
	waiting=""
	for addr in "$@"; do
		ready "$addr" || waiting="$waiting $addr"
	done
	elapsed=$(($(date +%s) - start))
	if [ -z "$waiting" ]; then
		echo "cluster ready after ${elapsed}s: every node answers and every shard has a leader"
		"$followctl" --addr "$1" --timeout 5s status
		exit 0
	fi
	if [ "$elapsed" -ge "$timeout" ]; then
		echo "cluster not ready after ${timeout}s; still waiting for:$waiting" >&2
		for addr in $waiting; do
			echo "--- $addr" >&2
			"$followctl" --addr "$addr" --timeout 5s status >&2
		done
		exit 1
	fi
	sleep 1
done
