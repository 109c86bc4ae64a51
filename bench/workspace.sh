#!/usr/bin/env bash
# Start-up of a workspace against a plain `keepout run`: `keepout shell W -- true` in a plain
# workspace, in one on a layer, and in one on a stack of three layers (each layer holding a
# home of many files, like a set-up with Pythons and caches). The issue's target: a workspace
# on a layer starts in under 50 ms more than a plain `keepout run`.
#
#   bench/workspace.sh           # RUNS=1000 bench/workspace.sh for more runs
#   FILES=20000 bench/workspace.sh   # files per layer (default 5000)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-300}
FILES=${FILES:-5000}
KEEPOUT=${KEEPOUT:-$PWD/target/release/keepout}
[ -x "$KEEPOUT" ] || cargo build --release --quiet
command -v hyperfine >/dev/null || { echo "needs hyperfine (apt-get install hyperfine)" >&2; exit 2; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export KEEPOUT_DATA_HOME="$work/data"
mkdir -p "$work/project"

# A layer's worth of files: $FILES small files in 100 directories.
fill='i=0; while [ $i -lt 100 ]; do mkdir -p ~/.cache/d$i; i=$((i+1)); done;
n=0; while [ $n -lt '"$FILES"' ]; do echo $n > ~/.cache/d$((n % 100))/f$n; n=$((n+1)); done'
"$KEEPOUT" shell plain --new -- true 2>/dev/null
"$KEEPOUT" shell base --new -- sh -c "$fill" 2>/dev/null
"$KEEPOUT" workspace snapshot base l1 >/dev/null
"$KEEPOUT" shell on-one --from l1 -- true 2>/dev/null
"$KEEPOUT" shell base -- sh -c "touch ~/second" 2>/dev/null
"$KEEPOUT" workspace snapshot base l2 >/dev/null
"$KEEPOUT" shell base -- sh -c "touch ~/third" 2>/dev/null
"$KEEPOUT" workspace snapshot base l3 >/dev/null
"$KEEPOUT" shell on-three --from l3 -- true 2>/dev/null

json=$(mktemp)
hyperfine -N --warmup 20 --runs "$RUNS" --export-json "$json" \
    -n "keepout run -- true" "$KEEPOUT run --project $work/project -- true" \
    -n "keepout shell (plain workspace) -- true" "$KEEPOUT shell plain -- true" \
    -n "keepout shell (on a layer) -- true" "$KEEPOUT shell on-one -- true" \
    -n "keepout shell (on three layers) -- true" "$KEEPOUT shell on-three -- true" \
    >/dev/null
python3 - "$json" <<'PY'
import json, sys
rs = json.load(open(sys.argv[1]))["results"]
base = sorted(rs[0]["times"])[len(rs[0]["times"]) // 2] * 1000
print(f"| command | median ms | mean ± σ ms | vs keepout run |")
print(f"|---|---:|---:|---:|")
for r in rs:
    t = sorted(r["times"]); med = t[len(t) // 2] * 1000
    print(f"| {r['command']} | {med:.2f} | {r['mean']*1000:.2f} ± {r['stddev']*1000:.2f} | {med - base:+.2f} |")
PY
rm -f "$json"
