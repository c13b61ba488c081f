#!/usr/bin/env python3
"""Checks that `rust-version` in Cargo.toml is true of the dependencies: no crate in the build
(normal and build dependencies, all features) declares a higher `rust-version`. Clippy's
`incompatible_msrv` lint checks portcullis's own use of the standard library against it."""
import json
import subprocess
import sys

meta = json.loads(subprocess.check_output(
    ["cargo", "metadata", "--format-version", "1", "--all-features", "--locked"]))
packages = {p["id"]: p for p in meta["packages"]}
nodes = {n["id"]: n for n in meta["resolve"]["nodes"]}
root = meta["resolve"]["root"]


def version(text):
    parts = [int(part) for part in (text or "0").split(".")]
    return tuple(parts + [0] * (3 - len(parts)))


ours = version(packages[root]["rust_version"])
seen, stack = set(), [root]
while stack:
    node = stack.pop()
    if node in seen:
        continue
    seen.add(node)
    for dep in nodes[node]["deps"]:
        if any(kind["kind"] != "dev" for kind in dep["dep_kinds"]):
            stack.append(dep["pkg"])
needs = sorted(((version(packages[p]["rust_version"]), packages[p]["name"]) for p in seen if p != root),
               reverse=True)
highest, name = needs[0]
print(f"rust-version {packages[root]['rust_version']}; highest among {len(seen) - 1} dependencies: "
      f"{'.'.join(map(str, highest))} ({name})")
if highest > ours:
    sys.exit(f"rust-version is below what {name} needs")
