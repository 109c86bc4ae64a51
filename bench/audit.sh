#!/usr/bin/env bash
# `keepout audit` on a generated home of 100,000 files (a few credential files among many
# ordinary ones: source trees, caches, a big history). The issue's target: well under a second.
# The audit reads known places and small dotfiles only, so the size of the home should not
# matter; the numbers show whether that holds.
#
#   bench/audit.sh            # FILES=300000 bench/audit.sh for a bigger home
set -euo pipefail
cd "$(dirname "$0")/.."
FILES=${FILES:-100000}
RUNS=${RUNS:-30}
KEEPOUT=${KEEPOUT:-$PWD/target/release/keepout}
[ -x "$KEEPOUT" ] || cargo build --release --quiet
command -v hyperfine >/dev/null || { echo "needs hyperfine (apt-get install hyperfine)" >&2; exit 2; }

home=$(mktemp -d)
trap 'rm -rf "$home"' EXIT
python3 - "$home" "$FILES" <<'PY'
import os, sys
home, n = sys.argv[1], int(sys.argv[2])
per_dir = 500
for i in range(n):
    d = os.path.join(home, "src", f"project{i // (per_dir * 20)}", f"pkg{(i // per_dir) % 20}")
    if i % per_dir == 0:
        os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"file{i}.py"), "w") as f:
        f.write("print('hello')\n")
os.makedirs(os.path.join(home, ".ssh"), exist_ok=True)
with open(os.path.join(home, ".netrc"), "w") as f:
    f.write("machine example.org login a password p\n")
with open(os.path.join(home, ".bash_history"), "w") as f:
    for i in range(50000):
        f.write(f"ls -la /some/dir/{i}\n")
PY
echo "# $(uname -r), $(nproc) cores; a home of $(find "$home" -type f | wc -l) files, $(du -sh "$home" | cut -f1)"
json=$(mktemp)
hyperfine -N --warmup 3 --runs "$RUNS" -i --export-json "$json" \
    -n "keepout audit --home (100k files)" "$KEEPOUT audit --home $home" >/dev/null
python3 - "$json" <<'PY'
import json, sys
for r in json.load(open(sys.argv[1]))["results"]:
    ms = lambda v: v * 1000
    print(f"| {r['command']:<36} | {ms(r['median']):7.2f} ms | {ms(r['mean']):7.2f} ± {ms(r['stddev']):5.2f} ms |")
PY
rm -f "$json"
