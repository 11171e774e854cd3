#!/usr/bin/env bash
# rolling-restart.sh: restarts every node of a local 3-node cluster in
# turn (SIGTERM, start again on its data, wait until every shard is led)
# while followbench drives it, then prints followbench's report: its
# errors and the latency during the roll. Exit status 1 if any request
# failed.
#
#   scripts/rolling-restart.sh [-d DIR] [-p PRESET] [-u USERS] [-g SECONDS]
#
# DIR (default /tmp/followd-rolling) is emptied first. PRESET (default
# "default") and USERS (20000) shape the load, which runs from GAP seconds
# (default 5) before the first restart until GAP seconds after the last.
# Ports as in scripts/local-cluster.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=/tmp/followd-rolling
preset=default
users=20000
gap=5
while getopts d:p:u:g: opt; do
	case $opt in
	d) dir=$OPTARG ;;
	p) preset=$OPTARG ;;
	u) users=$OPTARG ;;
	g) gap=$OPTARG ;;
	*) sed -n '2,13p' "$0"; exit 2 ;;
	esac
done
make build >/dev/null
rm -rf "$dir"
scripts/local-cluster.sh start -d "$dir" >/dev/null
trap 'scripts/local-cluster.sh stop -d "$dir" >/dev/null 2>&1 || true' EXIT
target=(--target followd://127.0.0.1:27700 --metrics http://127.0.0.1:27800)
echo "loading $users users..."
bin/followbench run --preset "$preset" --users "$users" --duration 1s --verify 0 "${target[@]}" >/dev/null
# Long enough for the three restarts; followbench stops by itself.
bin/followbench run --preset "$preset" --users "$users" --load never --warmup 1ms \
	--duration "$((3 * (gap + 15) + gap))s" --out "$dir/roll.json" "${target[@]}" >"$dir/roll.txt" 2>&1 &
bench=$!
sleep "$gap"
for n in 1 2 3; do
	t0=$(date +%s.%N)
	scripts/local-cluster.sh restart -n "$n" -d "$dir"
	echo "node n$n restarted and every shard led again after $(echo "$(date +%s.%N) - $t0" | bc | cut -c1-5) s"
	sleep "$gap"
done
# The load runs on to its end; what matters is the roll inside it.
wait "$bench" || true
grep -v '^  run ' "$dir/roll.txt"
errors=$(python3 -c "import json,sys; r=json.load(open(sys.argv[1])); print(sum(sum(o.get('errors',{}).values()) for o in r['ops']))" "$dir/roll.json")
echo "requests failed during the rolling restart: $errors"
[ "$errors" = 0 ]
