#!/usr/bin/env python3
"""Run commands alternately, round after round, and print each one's median wall time.

    bench/interleave.py ROUNDS NAME 'CMD' NAME 'CMD' ...
    PAUSE=0.02 bench/interleave.py ...     # sleep before each run

Alternating puts every command in the same phases of a machine whose speed drifts (this VM's
moves by a third within minutes), which hyperfine's one-command-after-another cannot. Leading
VAR=value words set that command's environment (HOME=/tmp/h1 keeps each keepout's caches
apart). The first command is the base of the ratio column.

Alternating has its own bias: work a command leaves to the kernel after it exits (a namespace's
release, a network namespace's cleanup) falls into the next command's run. PAUSE lets it finish
first (and lets the CPUs go idle, which makes every wake-up slower in a VM); hyperfine's
back-to-back runs (bench/startup.sh) charge it to the same command's next run instead.
"""
import os
import shlex
import statistics
import subprocess
import sys
import time

rounds = int(sys.argv[1])
pause = float(os.environ.get("PAUSE", "0"))
commands = []
for name, line in zip(sys.argv[2::2], sys.argv[3::2]):
    words, env = shlex.split(line), dict(os.environ)
    while words and "=" in words[0] and not words[0].startswith("/"):
        key, value = words.pop(0).split("=", 1)
        env[key] = value
    commands.append((name, words, env))
times = {name: [] for name, _, _ in commands}
null = open(os.devnull, "w")
for _ in range(10):  # warm-up
    for _, words, env in commands:
        subprocess.run(words, stdout=null, stderr=null, env=env)
for _ in range(rounds):
    for name, words, env in commands:
        if pause:
            time.sleep(pause)
        start = time.perf_counter_ns()
        subprocess.run(words, stdout=null, stderr=null, env=env)
        times[name].append((time.perf_counter_ns() - start) / 1e6)
base = statistics.median(times[commands[0][0]])
for name, _, _ in commands:
    median = statistics.median(times[name])
    q1, _, q3 = statistics.quantiles(times[name], n=4)
    print(f"{name:24} median {median:6.3f}  q1 {q1:6.3f} q3 {q3:6.3f}  ratio {median / base:5.3f}")
