#!/usr/bin/env bash
# Start-up cost of a sandbox: `keepout run -- true` side by side with bubblewrap at comparable
# isolation, and bare `true`, in one hyperfine run (median of many runs). Optional rows for
# firejail and podman when they are installed.
#
#   bench/startup.sh                 # 300 runs each; RUNS=1000 bench/startup.sh for more
#   KEEPOUT=/path/to/keepout bench/startup.sh
#
# Prints a table of median, mean, min and max per command, in milliseconds.
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-300}
KEEPOUT=${KEEPOUT:-target/release/keepout}
if [ ! -x "$KEEPOUT" ]; then
    cargo build --release --quiet
fi
command -v hyperfine >/dev/null || { echo "needs hyperfine (apt-get install hyperfine)" >&2; exit 2; }
command -v bwrap >/dev/null || { echo "needs bubblewrap (apt-get install bubblewrap)" >&2; exit 2; }

project=$(mktemp -d)
trap 'rm -rf "$project"' EXIT
home=${HOME:-/root}

# bubblewrap with the isolation keepout gives by default: every namespace, a new session, death
# with the parent, the system read-only, a tmpfs home and /tmp, new /proc and /dev, the caller's
# toolchains read-only (below), the project read-write, a clean environment.
bwrap_cmd="bwrap --unshare-all --new-session --die-with-parent --clearenv --setenv PATH /usr/bin:/bin"
for d in /usr /etc /opt; do [ -d "$d" ] && bwrap_cmd+=" --ro-bind $d $d"; done
for l in /bin /sbin /lib /lib64; do
    if [ -L "$l" ]; then bwrap_cmd+=" --symlink $(readlink "$l") $l"; elif [ -d "$l" ]; then bwrap_cmd+=" --ro-bind $l $l"; fi
done
bwrap_cmd+=" --proc /proc --dev /dev --tmpfs /tmp --tmpfs $home"
# The caller's toolchains that keepout binds read-only by default (rustup, pyenv, ~/.cargo/bin,
# ...: `--print-policy` names them), bound the same way, so that both do the same mounts.
toolchains=$("$KEEPOUT" run --print-policy --project "$project" -- true 2>/dev/null | python3 -c '
import sys
path = None
for line in sys.stdin:
    key, _, value = line.strip().partition(" = ")
    if key == "path":
        path = value.strip("\"")
    elif key == "why" and value.startswith("\"toolchain:") and path:
        print(path)
')
for t in $toolchains; do bwrap_cmd+=" --ro-bind $t $t"; done
bwrap_cmd+=" --bind $project $project --chdir $project true"

args=(-N --warmup 30 --runs "$RUNS" --style basic)
names=(-n "bare true" true
       -n "bwrap (comparable isolation)" "$bwrap_cmd"
       -n "keepout run -- true" "$KEEPOUT run --project $project -- true"
       -n "keepout run --mode landlock -- true" "$KEEPOUT run --mode landlock --project $project -- true")
fj="firejail --quiet --noprofile --private --net=none true"
if command -v firejail >/dev/null && $fj >/dev/null 2>&1; then
    names+=(-n "$fj" "$fj")
elif command -v firejail >/dev/null; then
    echo "note: firejail is installed but cannot start here: $($fj 2>&1 | head -1)" >&2
fi
# @anthropic-ai/sandbox-runtime (npm install -g @anthropic-ai/sandbox-runtime; needs ripgrep and
# socat): its default, no network and the filesystem read-only but for the working directory.
if command -v srt >/dev/null && (cd "$project" && srt true) >/dev/null 2>&1; then
    names+=(-n "srt true" "bash -c 'cd $project && exec srt true'")
fi
# podman, with the host's / as the container's root (no image registry needed), no network.
if command -v podman >/dev/null && podman run --rm --network none --rootfs / true >/dev/null 2>&1; then
    names+=(-n "podman run --rm --network none --rootfs / true" "podman run --rm --network none --rootfs / true")
elif command -v podman >/dev/null; then
    echo "note: podman is installed but cannot start a container here: $(podman run --rm --network none --rootfs / true 2>&1 | tail -1)" >&2
fi

json=$(mktemp)
trap 'rm -rf "$project" "$json"' EXIT
hyperfine "${args[@]}" --export-json "$json" "${names[@]}" >/dev/null
echo "# $(uname -r), $(nproc) cores, as $(id -un), $RUNS runs each (milliseconds)"
python3 - "$json" <<'PY'
import json, sys
results = json.load(open(sys.argv[1]))["results"]
print(f"| {'command':<52} | median | mean ± σ    | min  | max   |")
print(f"|{'-'*54}|-------:|------------:|-----:|------:|")
for r in results:
    ms = lambda v: v * 1000
    print(f"| {r['command']:<52} | {ms(r['median']):6.2f} | {ms(r['mean']):5.2f} ± {ms(r['stddev']):4.2f} | {ms(r['min']):4.2f} | {ms(r['max']):5.2f} |")
PY
