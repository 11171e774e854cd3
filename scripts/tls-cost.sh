#!/bin/sh
# tls-cost.sh: followbench ops/s against a single node without and with TLS
# on the client port, back to back: two followd (plaintext on
# 127.0.0.1:17900, TLS on 127.0.0.1:17910, fresh data directories under
# OUT), the same graph loaded into each, then ROUNDS alternating runs of
# the same workload. Reports go to OUT/plain-N.json and OUT/tls-N.json; the
# medians are printed. Needs make build and make certs (node1's
# certificate names 127.0.0.1). docs/PERFORMANCE.md, "Cost of TLS".
#
#   scripts/tls-cost.sh [ROUNDS (5)] [OUT (tls-cost-out)]
set -eu
rounds=${1:-5}
out=${2:-tls-cost-out}
B=${BIN:-bin}
C=${CERTS_DIR:-certs}
W="--preset read-heavy --users 20000 --duration 10s --warmup 2s --verify 0"
PLAIN="--target followd://127.0.0.1:17900 --metrics http://127.0.0.1:17980"
TLS="--target followd://127.0.0.1:17910 --metrics https://127.0.0.1:17990 --tls-ca $C/ca.crt"
rm -rf "$out" && mkdir -p "$out"
"$B/followd" --data-dir "$out/plain" --listen 127.0.0.1:17900 --http 127.0.0.1:17980 --log-level warn 2>"$out/plain.log" &
p1=$!
"$B/followd" --data-dir "$out/tls" --listen 127.0.0.1:17910 --http 127.0.0.1:17990 --log-level warn \
	--tls-cert "$C/node1.crt" --tls-key "$C/node1.key" 2>"$out/tls.log" &
p2=$!
trap 'kill $p1 $p2' EXIT
sleep 2
"$B/followbench" load $W $PLAIN >/dev/null 2>&1
"$B/followbench" load $W $TLS >/dev/null 2>&1
r=1
while [ "$r" -le "$rounds" ]; do
	"$B/followbench" run $W --load never $PLAIN --out "$out/plain-$r.json" >/dev/null 2>&1
	"$B/followbench" run $W --load never $TLS --out "$out/tls-$r.json" >/dev/null 2>&1
	r=$((r + 1))
done
python3 - "$out" "$rounds" <<'PY'
import json, statistics as st, sys
out, n = sys.argv[1], int(sys.argv[2])
med = {}
for mode in ("plain", "tls"):
    rows = []
    for r in range(1, n + 1):
        d = json.load(open(f"{out}/{mode}-{r}.json"))
        rows.append((d["total"]["opsPerSec"], d["total"]["p50Ms"], d["total"]["p99Ms"], d["cpu"]["server"]["usPerOp"]))
        print(mode, r, "%.0f ops/s, p50 %.2f ms, p99 %.2f ms, followd %.1f us/op" % rows[-1])
    med[mode] = [st.median(x[i] for x in rows) for i in range(4)]
    print(mode, "median: %.0f ops/s, p50 %.2f ms, p99 %.2f ms, followd %.1f us/op" % tuple(med[mode]))
print("tls/plain: ops/s %.2f, followd CPU per op %.2f" % (med["tls"][0] / med["plain"][0], med["tls"][3] / med["plain"][3]))
PY
