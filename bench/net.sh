#!/usr/bin/env bash
# Downloading packages through keepout's proxy (`keepout run --net pypi`) against the same
# download directly on the host and inside `keepout run --net host` (no proxy). The issue's
# target: the proxy within 10% of direct. (Each runs with a clean environment, as inside.)
#
#   bench/net.sh              # PACKAGE=numpy RUNS=10 bench/net.sh
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-5}
PACKAGE=${PACKAGE:-numpy}
KEEPOUT=${KEEPOUT:-$PWD/target/release/keepout}
[ -x "$KEEPOUT" ] || cargo build --release --quiet
command -v hyperfine >/dev/null || { echo "needs hyperfine (apt-get install hyperfine)" >&2; exit 2; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
cert=${PIP_CERT:-/etc/ssl/certs/ca-certificates.crt}
pip="python3 -m pip download --no-deps --no-cache-dir --disable-pip-version-check -q -d dl $PACKAGE"
json=$(mktemp)
hyperfine --warmup 1 --runs "$RUNS" --export-json "$json" --prepare 'rm -rf dl' \
    -n "direct" "env -i PATH=$PATH HOME=$work PIP_CERT=$cert $pip" \
    -n "keepout run --net host" "$KEEPOUT run --net host --env PIP_CERT=$cert -- $pip" \
    -n "keepout run --net pypi (proxy)" "$KEEPOUT run --net pypi --env PIP_CERT=$cert -- $pip" \
    >/dev/null 2>&1
size=$(PIP_CERT=$cert $pip >/dev/null 2>&1; du -sh dl | cut -f1)
echo "# $(uname -r), $(nproc) cores; pip download $PACKAGE ($size), $RUNS runs each"
python3 - "$json" <<'PY'
import json, sys
rs = json.load(open(sys.argv[1]))["results"]
base = rs[0]["median"]
for r in rs:
    print(f"| {r['command']:<32} | {r['median']*1000:8.0f} ms | {r['mean']*1000:8.0f} ± {r['stddev']*1000:5.0f} ms | {r['median']/base:5.2f}x |")
PY
rm -f "$json"
