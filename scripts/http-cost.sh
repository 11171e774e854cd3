#!/bin/bash
# http-cost.sh: followbench ops/s of the binary protocol and of the native
# JSON API (docs/HTTP.md) on one node and one graph, back to back: one
# followd (client port 127.0.0.1:17700, HTTP 127.0.0.1:17780, a fresh
# data directory under OUT), a 50k-user graph loaded once, then for each
# of 64 and 1 closed-loop clients (CLIENTS) and each of check, info and followers
# alone, ROUNDS alternating runs binary, binary with a connection per
# client, HTTP, HTTP pipelined, binary... (binary: the client's 4
# multiplexed connections; HTTP: one request at a time per keep-alive
# connection, one connection per client; pipelined: PIPELINE requests in
# flight on each of 4 connections, the binary target's connection count).
# Prints one line per run; docs/PERFORMANCE.md has the medians.
#
#   make build && [CLIENTS="64 1"] scripts/http-cost.sh [ROUNDS] [OUT] [PIPELINE]
set -euo pipefail
rounds="${1:-3}"
out="${2:-/tmp/http-cost}"
pipeline="${3:-64}"
bin="$(cd "$(dirname "$0")/.." && pwd)/bin"
rm -rf "$out/data" && mkdir -p "$out"
"$bin/followd" --data-dir "$out/data" --listen 127.0.0.1:17700 --http 127.0.0.1:17780 --shards 16 \
	--unsafe-no-fsync --log-level warn 2>"$out/followd.log" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null || true' EXIT
sleep 3
graph="--users 50000 --mean-following 16"
"$bin/followbench" load --target followd://127.0.0.1:17700 --metrics http://127.0.0.1:17780 $graph 2>&1 | tail -2
for clients in ${CLIENTS:-64 1}; do
	for mix in check=1 info=1 followers=1; do
		for round in $(seq "$rounds"); do
			for t in followd://127.0.0.1:17700 "followd://127.0.0.1:17700 conns=$clients" http://127.0.0.1:17780 "http://127.0.0.1:17780?pipeline=$pipeline"; do
				conns=4
				case "$t" in *" conns="*) conns="${t##*conns=}" ;; esac
				res=$("$bin/followbench" run --target "${t%% *}" --conns "$conns" --metrics http://127.0.0.1:17780 $graph --mix "$mix" \
					--duration 5s --warmup 1s --clients "$clients" --verify 0 --load never 2>&1)
				label="conns=$conns"; case "$t" in http*pipeline*) ;; http*) label="conns=per-client" ;; esac
				echo "clients=$clients mix=$mix round=$round target=${t%% *} $label :: $(echo "$res" | grep -E '^ +all ') :: $(echo "$res" | grep -E '^cpu:')"
			done
		done
	done
done
