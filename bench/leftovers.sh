#!/usr/bin/env bash
# What keepout does before and after a run on a large project (issue 12): one walk of the tree
# before (git directories at any depth, editor and tool files, sockets; pins) and one after
# (what was planted, index flags, bytecode). `keepout run -- true` on a project of $FILES files
# (default 100,000, in 2,000 directories, with a git repository and five nested clones) against
# the same on a project of one file; the difference is what the walks cost. Also, side by side,
# bubblewrap on both projects (it walks nothing: the floor), and keepout's --review run, which
# walks once (sockets only matter there).
#
#   bench/leftovers.sh             # RUNS=200 by default
#   FILES=200000 bench/leftovers.sh
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-200}
FILES=${FILES:-100000}
KEEPOUT=${KEEPOUT:-$PWD/target/release/keepout}
[ -x "$KEEPOUT" ] || cargo build --release --quiet -p keepout
command -v hyperfine >/dev/null || { echo "needs hyperfine (apt-get install hyperfine)" >&2; exit 2; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export XDG_CACHE_HOME="$work/cache" KEEPOUT_DATA_HOME="$work/data"
big="$work/big" small="$work/small"
mkdir -p "$small" && echo x > "$small/README"
python3 - "$big" "$FILES" <<'PY'
import os, subprocess, sys
root, files = sys.argv[1], int(sys.argv[2])
dirs = max(1, files // 50)
for d in range(dirs):
    p = os.path.join(root, f"pkg{d % 40}", f"mod{d}")
    os.makedirs(p, exist_ok=True)
    for f in range(files // dirs):
        with open(os.path.join(p, f"f{f}.py"), "w") as fh:
            fh.write("x = 1\n")
for sub in [""] + [f"vendor/lib{i}" for i in range(5)]:
    subprocess.run(["git", "init", "-q", os.path.join(root, sub)], check=True)
PY
echo "project: $(find "$big" -type f | wc -l) files, $(find "$big" -type d | wc -l) directories" >&2

bw="bwrap --unshare-all --die-with-parent --new-session --clearenv --ro-bind /usr /usr --symlink usr/bin /bin --symlink usr/lib /lib --symlink usr/lib64 /lib64 --ro-bind /etc /etc --proc /proc --dev /dev --tmpfs /tmp"
json=$(mktemp)
cmds=(
    -n "keepout run -- true (1 file)" "$KEEPOUT run -q --project $small -- /bin/true"
    -n "keepout run -- true ($FILES files)" "$KEEPOUT run -q --project $big -- /bin/true"
    -n "keepout run --review -- true ($FILES files)" "$KEEPOUT run -q --review --project $big -- /bin/true"
)
if command -v bwrap >/dev/null; then
    cmds+=(-n "bubblewrap (1 file)" "$bw --bind $small $small --chdir $small /bin/true"
           -n "bubblewrap ($FILES files)" "$bw --bind $big $big --chdir $big /bin/true")
fi
hyperfine -N --warmup 10 --runs "$RUNS" --export-json "$json" "${cmds[@]}" >&2
python3 - "$json" <<'PY'
import json, sys
r = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
print("| command | median | mean ± σ |")
print("|---|---:|---:|")
for name, x in r.items():
    print(f"| {name} | {x['median']*1000:.2f} ms | {x['mean']*1000:.2f} ± {x['stddev']*1000:.2f} ms |")
names = list(r)
print(f"\nthe two walks on the large project: {(r[names[1]]['median'] - r[names[0]]['median'])*1000:.1f} ms (median difference)")
PY
