#!/usr/bin/env bash
# Sign latency of `keepout agent` (policy confirm = "never", no question) against OpenSSH's
# ssh-agent holding the same Ed25519 key. Two measures:
#   1. per signature on one open connection (a small Python client speaking the agent protocol:
#      SSH_AGENTC_SIGN_REQUEST, N times), the agent's own cost;
#   2. `ssh-keygen -Y sign` end to end (a new process and connection each time), what a user
#      or git sees.
# The issue's target: keepout within 1.5x of ssh-agent.
#
#   bench/agent.sh            # RUNS=500 N=5000 bench/agent.sh for more
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-200}
N=${N:-2000}
KEEPOUT=${KEEPOUT:-$PWD/target/release/keepout}
[ -x "$KEEPOUT" ] || cargo build --release --quiet
command -v hyperfine >/dev/null || { echo "needs hyperfine (apt-get install hyperfine)" >&2; exit 2; }

work=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; rm -rf "$work"' EXIT
mkdir -p "$work/run" "$work/home/.ssh"
chmod 700 "$work/run"
printf '#!/bin/sh\necho bench-passphrase\n' > "$work/askpass"
chmod +x "$work/askpass"
printf '[[ssh.key]]\nname = "id_ed25519"\nconfirm = "never"\n' > "$work/config.toml"
export HOME="$work/home" XDG_RUNTIME_DIR="$work/run" KEEPOUT_VAULT="$work/vault.age"
export KEEPOUT_CONFIG="$work/config.toml" KEEPOUT_ASKPASS="$work/askpass" KEEPOUT_CACHE_IDLE=30m
ssh-keygen -q -t ed25519 -N '' -f "$work/home/.ssh/id_ed25519"
cp "$work/home/.ssh/id_ed25519" "$work/id_ed25519.copy"
"$KEEPOUT" ssh import "$work/home/.ssh/id_ed25519" --yes 2>/dev/null
cp "$work/id_ed25519.copy" "$work/home/.ssh/id_ed25519"

"$KEEPOUT" agent --socket "$work/keepout.sock" >/dev/null 2>&1 & pids+=($!)
ssh-agent -D -a "$work/openssh.sock" >/dev/null 2>&1 & pids+=($!)
for _ in $(seq 100); do [ -S "$work/keepout.sock" ] && [ -S "$work/openssh.sock" ] && break; sleep 0.05; done
SSH_AUTH_SOCK="$work/openssh.sock" ssh-add -q "$work/home/.ssh/id_ed25519"
rm -f "$work/home/.ssh/id_ed25519" "$work/id_ed25519.copy"   # both agents sign; no key file left
echo m > "$work/msg"
# The first signature unlocks the vault (one passphrase, then cached).
SSH_AUTH_SOCK="$work/keepout.sock" ssh-keygen -q -Y sign -n file -f "$work/home/.ssh/id_ed25519.pub" "$work/msg"
rm -f "$work/msg.sig"

echo "# $(uname -r), $(nproc) cores; ssh-agent from $(ssh -V 2>&1 | cut -d, -f1)"
echo "## per signature, one connection, $N signatures (microseconds)"
for agent in openssh keepout; do
python3 - "$work/$agent.sock" "$work/home/.ssh/id_ed25519.pub" "$N" "$agent" <<'PY'
import base64, socket, struct, sys, time
path, pub, n, name = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
blob = base64.b64decode(open(pub).read().split()[1])
s = socket.socket(socket.AF_UNIX); s.connect(path)
def string(b): return struct.pack(">I", len(b)) + b
body = bytes([13]) + string(blob) + string(b"x" * 64) + struct.pack(">I", 0)
msg = struct.pack(">I", len(body)) + body
def recv_exact(k):
    out = b""
    while len(out) < k:
        out += s.recv(k - len(out))
    return out
def sign():
    s.sendall(msg)
    (length,) = struct.unpack(">I", recv_exact(4))
    reply = recv_exact(length)
    assert reply[0] == 14, f"{name}: sign failed ({reply[0]})"
for _ in range(50): sign()
times = []
for _ in range(n):
    t = time.perf_counter(); sign(); times.append(time.perf_counter() - t)
times.sort()
print(f"| {name:<8} | median {times[n//2]*1e6:7.1f} | mean {sum(times)/n*1e6:7.1f} | p99 {times[int(n*0.99)]*1e6:7.1f} |")
PY
done

json=$(mktemp)
hyperfine -N --warmup 10 --runs "$RUNS" --export-json "$json" \
    -n "ssh-keygen -Y sign via ssh-agent" "bash -c 'rm -f $work/msg.sig; SSH_AUTH_SOCK=$work/openssh.sock exec ssh-keygen -q -Y sign -n file -f $work/home/.ssh/id_ed25519.pub $work/msg'" \
    -n "ssh-keygen -Y sign via keepout agent" "bash -c 'rm -f $work/msg.sig; SSH_AUTH_SOCK=$work/keepout.sock exec ssh-keygen -q -Y sign -n file -f $work/home/.ssh/id_ed25519.pub $work/msg'" \
    >/dev/null
echo "## ssh-keygen -Y sign end to end, $RUNS runs each (milliseconds)"
python3 - "$json" <<'PY'
import json, sys
for r in json.load(open(sys.argv[1]))["results"]:
    ms = lambda v: v * 1000
    print(f"| {r['command']:<40} | {ms(r['median']):6.2f} | {ms(r['mean']):5.2f} ± {ms(r['stddev']):4.2f} |")
PY
rm -f "$json"
