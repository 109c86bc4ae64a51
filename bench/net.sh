#!/usr/bin/env bash
# Downloading packages through keepout's proxy (`keepout run --net pypi`) against the same
# download directly on the host and inside `keepout run --net host` (no proxy), for two pip
# configurations: with PIP_CERT pointing at the system's CA bundle and no version check, and
# with pip's own defaults. The target: the proxy within 10% of direct, in every configuration.
#
# Interleaved: each round runs every command once (hyperfine --runs 1), in an order that
# rotates from round to round, so a network that drifts during the run (a mirror warming up,
# another download on the link) cannot favour one command; the table gives each command's
# median over the rounds and the median of its per-round ratio to direct.
#
#   bench/net.sh              # PACKAGE=numpy ROUNDS=40 bench/net.sh
#
# 20 rounds by default: a single pip download varies by ±20% from round to round here (the
# registry mirror), and with 8 rounds the two proxied medians swapped places from one run to
# the next (1.03x and 1.10x, then 1.17x and 1.05x).
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-20}
PACKAGE=${PACKAGE:-numpy}
KEEPOUT=${KEEPOUT:-$PWD/target/release/keepout}
[ -x "$KEEPOUT" ] || cargo build --release --quiet
command -v hyperfine >/dev/null || { echo "needs hyperfine (apt-get install hyperfine)" >&2; exit 2; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
cert=${PIP_CERT:-/etc/ssl/certs/ca-certificates.crt}
tuned="python3 -m pip download --no-deps --no-cache-dir --disable-pip-version-check -q -d dl $PACKAGE"
plain="python3 -m pip download --no-deps --no-cache-dir -q -d dl $PACKAGE"
names=(
    "direct (PIP_CERT, no version check)"
    "keepout run --net host (PIP_CERT)"
    "keepout run --net pypi (PIP_CERT)"
    "direct (pip defaults)"
    "keepout run --net host (pip defaults)"
    "keepout run --net pypi (pip defaults)"
)
commands=(
    "env -i PATH=$PATH HOME=$work PIP_CERT=$cert $tuned"
    "$KEEPOUT run --net host --env PIP_CERT=$cert -- $tuned"
    "$KEEPOUT run --net pypi --env PIP_CERT=$cert -- $tuned"
    "env -i PATH=$PATH HOME=$work $plain"
    "$KEEPOUT run --net host -- $plain"
    "$KEEPOUT run --net pypi -- $plain"
)
# One warm-up of each, not measured.
for c in "${commands[@]}"; do rm -rf dl; sh -c "$c" >/dev/null 2>&1 || true; done
rounds=$(mktemp -d)
n=${#commands[@]}
for ((round = 0; round < ROUNDS; round++)); do
    args=()
    for ((k = 0; k < n; k++)); do
        i=$(((k + round) % n))
        args+=(-n "${names[$i]}" "${commands[$i]}")
    done
    hyperfine --runs 1 --prepare 'rm -rf dl' --export-json "$rounds/$round.json" "${args[@]}" \
        >/dev/null 2>&1
done
size=$(PIP_CERT=$cert $tuned >/dev/null 2>&1; du -sh dl | cut -f1)
echo "# $(uname -r), $(nproc) cores; pip download $PACKAGE ($size), $ROUNDS interleaved rounds"
python3 - "$rounds" "${names[@]}" <<'PY'
import json, os, statistics, sys
folder, names = sys.argv[1], sys.argv[2:]
times = {n: [] for n in names}
ratios = {n: [] for n in names}
for f in sorted(os.listdir(folder)):
    got = {r["command"]: r["times"][0] for r in json.load(open(os.path.join(folder, f)))["results"]}
    for n in names:
        times[n].append(got[n])
        base = names[0] if "PIP_CERT" in n else names[3]
        ratios[n].append(got[n] / got[base])
print("| how | median | min–max | median ratio to direct (per round) |")
print("|---|---:|---:|---:|")
for n in names:
    t = times[n]
    print(f"| {n} | {statistics.median(t)*1000:.0f} ms | {min(t)*1000:.0f}–{max(t)*1000:.0f} ms "
          f"| {statistics.median(ratios[n]):.2f}x ({min(ratios[n]):.2f}–{max(ratios[n]):.2f}) |")
PY
rm -rf "$rounds"
