#!/usr/bin/env bash
# Where a download's time goes, through keepout's proxy and without it: per HTTPS connection
# (TCP connect, the proxy's CONNECT, the TLS handshake, one request), and the transfer of one
# large file. Each way runs ROUNDS times, interleaved (direct, --net host, --net pypi in turn),
# and the table gives the medians. bench/net.sh times whole pip downloads; this says which part
# of them the proxy costs.
#
#   bench/net_phases.sh        # HOST=pypi.org CONNECTIONS=20 ROUNDS=3 bench/net_phases.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
CONNECTIONS=${CONNECTIONS:-20}
HOST=${HOST:-pypi.org}
KEEPOUT=${KEEPOUT:-$PWD/target/release/keepout}
[ -x "$KEEPOUT" ] || cargo build --release --quiet
bench=$PWD/bench
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
cp "$bench/net_phases.py" .
# The numpy wheel bench/net.sh downloads (17 MB), found from PyPI's simple index.
url=$(python3 net_phases.py --wheel-url numpy)
echo "# $(uname -r), $(nproc) cores; $CONNECTIONS connections to $HOST per round, $ROUNDS rounds; transfer: $(basename "$url")"
ways=("direct" "keepout run --net host" "keepout run --net pypi")
run_way() {
    case $1 in
        direct) env -i PATH="$PATH" python3 net_phases.py "${@:2}" ;;
        "keepout run --net host") "$KEEPOUT" run --quiet --net host -- python3 net_phases.py "${@:2}" 2>/dev/null ;;
        "keepout run --net pypi") "$KEEPOUT" run --quiet --net pypi -- python3 net_phases.py "${@:2}" ;;
    esac
}
out=$(mktemp)
for ((round = 0; round < ROUNDS; round++)); do
    for way in "${ways[@]}"; do
        echo "$way|$(run_way "$way" --connections "$HOST" "$CONNECTIONS")|$(run_way "$way" --transfer "$url")" >>"$out"
    done
done
python3 - "$out" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    way, phases, transfer = line.rstrip("\n").split("|")
    got = dict(p.split("=") for p in phases.split())
    got["transfer"] = transfer
    for k, v in got.items():
        rows.setdefault(way, {}).setdefault(k, []).append(float(v))
keys = ["connect", "tunnel", "tls", "request", "total", "transfer"]
print("| way | " + " | ".join(keys) + " |")
print("|---|" + "---:|" * len(keys))
for way, got in rows.items():
    print(f"| {way} | " + " | ".join(f"{statistics.median(got[k]):.1f} ms" for k in keys) + " |")
PY
rm -f "$out"
