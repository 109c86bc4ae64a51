#!/usr/bin/env bash
# `keepout run --image IMAGE -- true` side by side with `podman run --rm` of the same image with
# the flags a careful user would type (no network, no capabilities, no-new-privileges, a
# read-only root, an unprivileged user, limits, the project mounted), in one hyperfine run.
# Issue 16's target: at most 1.15x.
#
#   bench/image.sh                               # the test image .ci/test-image.sh makes
#   IMAGE=localhost/py-matrix RUNS=50 bench/image.sh
#
# As root it compares rootful podman; as a plain user, rootless podman (the image must be in
# that user's own storage). keepout adds what podman needs on this machine by itself (runc on
# hybrid cgroups, explicit ulimits, cgroupfs for rootless): the careful command gets the same.
# keepout runs with your HOME (an empty tmpfs home inside); it keeps what `podman info` said in
# ~/.cache/keepout, as in everyday use.
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-30}
IMAGE=${IMAGE:-localhost/keepout-test:bookworm}
KEEPOUT=${KEEPOUT:-$PWD/target/release/keepout}
[ -x "$KEEPOUT" ] || cargo build --release --quiet
command -v hyperfine >/dev/null || { echo "needs hyperfine (apt-get install hyperfine)" >&2; exit 2; }
command -v podman >/dev/null || { echo "needs podman (apt-get install podman runc uidmap)" >&2; exit 2; }
podman image exists "$IMAGE" || { echo "no image $IMAGE here (.ci/test-image.sh makes the test image)" >&2; exit 2; }

project=$(mktemp -d)
trap 'rm -rf "$project"' EXIT

# The global options keepout found this engine needs (its --print-policy line shows them).
line=$("$KEEPOUT" run --image "$IMAGE" --project "$project" --print-policy -- true 2>/dev/null | grep -m1 ' run ')
global=$(printf '%s\n' "$line" | python3 -c 'import sys; w=sys.stdin.read().split(); print(" ".join(w[1:w.index("run")]))')

nofile=$(ulimit -Hn)
if [ "$(id -u)" = 0 ]; then
    user="--user 65534:65534 --pids-limit 2048"
else
    # Rootless podman on cgroups v1 has no cgroup to limit: the nproc ulimit is the limit.
    user="--userns keep-id --user $(id -u):$(id -g)"
fi
careful="podman $global run --rm --pull never --network none --cap-drop ALL \
 --security-opt no-new-privileges --read-only --tmpfs /tmp $user \
 --ulimit nofile=$nofile:$nofile --ulimit nproc=2048:2048 \
 --volume $project:$project --workdir $project $IMAGE true"

json=$(mktemp)
trap 'rm -rf "$project" "$json"' EXIT
# Once each first: podman's first start after a while sets up its storage and network state.
$careful >/dev/null
(cd "$project" && "$KEEPOUT" run --image "$IMAGE" -- true)
hyperfine -N --warmup 3 --runs "$RUNS" --style basic --export-json "$json" \
    -n "podman run --rm (careful flags)" "$careful" \
    -n "keepout run --image -- true" "$KEEPOUT run --image $IMAGE --project $project -- true" \
    >/dev/null
echo "# $(uname -r), $(nproc) cores, as $(id -un), $(podman --version), $RUNS runs each (milliseconds)"
python3 - "$json" <<'PY'
import json, sys
results = json.load(open(sys.argv[1]))["results"]
base = results[0]["median"]
print(f"| {'command':<34} | median | mean ± σ       | ratio |")
print(f"|{'-'*36}|-------:|---------------:|------:|")
for r in results:
    ms = lambda v: v * 1000
    print(f"| {r['command']:<34} | {ms(r['median']):6.1f} | {ms(r['mean']):6.1f} ± {ms(r['stddev']):5.1f} | {r['median']/base:5.2f} |")
PY
