#!/usr/bin/env bash
# `keepout audit --repo` on a generated repository of 200 workflows (varied, realistic ones:
# CI matrices, PyPI trusted publishing, cargo and npm releases with tokens, pull_request_target
# previews, issue triage with template injection, reusable workflows, docker pushes). The
# issue's target: under 200 ms, offline.
#
#   bench/repo_audit.sh            # WORKFLOWS=1000 bench/repo_audit.sh for a bigger one
set -euo pipefail
cd "$(dirname "$0")/.."
WORKFLOWS=${WORKFLOWS:-200}
RUNS=${RUNS:-30}
KEEPOUT=${KEEPOUT:-$PWD/target/release/keepout}
[ -x "$KEEPOUT" ] || cargo build --release --quiet -p keepout
command -v hyperfine >/dev/null || { echo "needs hyperfine (apt-get install hyperfine)" >&2; exit 2; }

repo=$(mktemp -d)
trap 'rm -rf "$repo"' EXIT
git -C "$repo" init -q
git -C "$repo" remote add origin https://github.com/example/bench.git
python3 - "$repo" "$WORKFLOWS" <<'PY'
import os, sys
repo, n = sys.argv[1], int(sys.argv[2])
d = os.path.join(repo, ".github", "workflows")
os.makedirs(d)
kinds = {
"ci": """name: CI {i}
on:
  push:
    branches: [main]
  pull_request:
permissions:
  contents: read
jobs:
  test:
    strategy:
      matrix:
        python: ["3.10", "3.11", "3.12", "3.13"]
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
        with:
          persist-credentials: false
      - uses: actions/setup-python@v5
        with:
          python-version: ${{{{ matrix.python }}}}
          cache: pip
      - run: python -m pip install -e .[test]
      - run: pytest -q
  lint:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - run: pipx run ruff check .
""",
"pypi": """name: Publish {i}
on:
  release:
    types: [published]
permissions:
  contents: read
jobs:
  build:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
        with:
          persist-credentials: false
      - run: pipx run build
      - uses: actions/upload-artifact@v4
        with:
          name: dist
          path: dist/
  publish:
    needs: [build]
    runs-on: ubuntu-latest
    environment:
      name: pypi
      url: https://pypi.org/p/project{i}
    permissions:
      id-token: write
    steps:
      - uses: actions/download-artifact@v4
        with:
          name: dist
          path: dist/
      - uses: pypa/gh-action-pypi-publish@release/v1
""",
"cargo": """name: Release {i}
on:
  push:
    tags: ["v*"]
jobs:
  publish:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - uses: Swatinem/rust-cache@v2
      - run: cargo publish --locked
        env:
          CARGO_REGISTRY_TOKEN: ${{{{ secrets.CARGO_REGISTRY_TOKEN }}}}
      - run: gh release create "${{{{ github.ref_name }}}}" --generate-notes
        env:
          GH_TOKEN: ${{{{ secrets.GITHUB_TOKEN }}}}
""",
"npm": """name: npm {i}
on:
  workflow_dispatch:
permissions:
  contents: write
  id-token: write
jobs:
  test:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - run: npm ci && npm test
  publish:
    needs: test
    runs-on: ubuntu-latest
    environment: npm
    steps:
      - uses: actions/checkout@v4
      - uses: actions/setup-node@v4
        with:
          node-version: 22
          registry-url: https://registry.npmjs.org
      - run: npm publish --provenance
        env:
          NODE_AUTH_TOKEN: ${{{{ secrets.NPM_TOKEN }}}}
""",
"preview": """name: preview {i}
on:
  pull_request_target:
    types: [opened, synchronize]
jobs:
  preview:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
        with:
          ref: ${{{{ github.event.pull_request.head.sha }}}}
      - run: npm ci && npm run build
""",
"triage": """name: triage {i}
on:
  issues:
    types: [opened]
permissions:
  issues: write
jobs:
  label:
    runs-on: ubuntu-latest
    steps:
      - run: echo "${{{{ github.event.issue.title }}}}" | ./classify.sh
""",
"docker": """name: image {i}
on:
  push:
    branches: [main]
permissions:
  contents: read
  packages: write
jobs:
  image:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - uses: docker/login-action@v3
        with:
          registry: ghcr.io
          username: ${{{{ github.actor }}}}
          password: ${{{{ secrets.GITHUB_TOKEN }}}}
      - uses: docker/build-push-action@v6
        with:
          push: true
          tags: ghcr.io/example/image{i}:latest
""",
"reusable": """name: call {i}
on:
  push:
    tags: ["v*"]
jobs:
  release:
    uses: ./.github/workflows/pypi-{j:03}.yml
    secrets: inherit
""",
}
names = list(kinds)
for i in range(n):
    kind = names[i % len(names)]
    j = (i // len(names)) * len(names) + names.index("pypi")
    ext = "yaml" if i % 5 == 0 and kind != "pypi" else "yml"
    with open(os.path.join(d, f"{kind}-{i:03}.{ext}"), "w") as f:
        f.write(kinds[kind].format(i=i, j=j))
PY
echo "# $(uname -r), $(nproc) cores; a repository of $(ls "$repo/.github/workflows" | wc -l) workflows, $(cat "$repo"/.github/workflows/* | wc -l) lines"
"$KEEPOUT" audit --repo "$repo" --json | python3 -c 'import json,sys; d=json.load(sys.stdin); print("# %d publishing jobs, %d findings" % (len(d["release_path"]), len(d["findings"])))' || true
json=$(mktemp)
hyperfine -N --warmup 3 --runs "$RUNS" -i --export-json "$json" \
    -n "keepout audit --repo ($WORKFLOWS workflows)" "$KEEPOUT audit --repo $repo" >/dev/null
python3 - "$json" <<'PY'
import json, sys
for r in json.load(open(sys.argv[1]))["results"]:
    ms = lambda v: v * 1000
    print(f"| {r['command']:<40} | {ms(r['median']):7.2f} ms | {ms(r['mean']):7.2f} ± {ms(r['stddev']):5.2f} ms |")
PY
rm -f "$json"
