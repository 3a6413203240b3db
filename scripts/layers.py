#!/usr/bin/env python3
"""The folders of src/ and what each may include (docs/architecture.md).

Usage: scripts/layers.py [SRC]

Prints the folder include graph and exits 1 when a folder includes one at
its own level or above it (a circle waiting to happen), or when the graph
has a circle. Run by scripts/lint.sh (lint.layers).
"""
import os
import re
import sys

# Lower numbers sit lower. A folder may include folders of lower rank only;
# the drivers share a rank, so the pairs among them that are allowed are
# listed in SIDEWAYS.
RANK = {
    "util": 0,
    "conf": 1,
    "sys": 2,
    "core": 3,
    "runtime": 4, "storage": 4, "net": 4, "ingress": 4, "image": 4,
    # compose: the compose-file translator (pure); it checks its output with
    # core's conf_build, and only the CLI uses it.
    "compose": 4, "docker": 4,
    # integrity: mtree manifests (the walk and the comparison); util only.
    "integrity": 4,
    "daemon": 5,
    "api": 6,
    "clbsdd": 7, "cli": 7, "shim": 7,
}
SIDEWAYS = {
    ("ingress", "net"),  # the ingress renders upstream addresses
    ("storage", "runtime"),  # a storage driver fills the runtime's struct rt_rootfs
}

INC = re.compile(r'^\s*#\s*include\s+"([a-z_]+)/')


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else \
        os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")
    edges = {}
    where = {}
    for folder in sorted(os.listdir(root)):
        top = os.path.join(root, folder)
        if not os.path.isdir(top):
            continue
        for dirpath, _, files in os.walk(top):
            for f in files:
                if not f.endswith((".c", ".h")):
                    continue
                path = os.path.join(dirpath, f)
                with open(path, encoding="utf-8") as fh:
                    for n, line in enumerate(fh, 1):
                        m = INC.match(line)
                        if not m or m.group(1) == folder:
                            continue
                        if not os.path.isdir(os.path.join(root, m.group(1))):
                            continue  # linux/... inside a folder
                        edges.setdefault(folder, set()).add(m.group(1))
                        where.setdefault((folder, m.group(1)),
                                         "%s:%d" % (os.path.relpath(path, os.path.join(root, "..")), n))
    bad = []
    for a in sorted(edges):
        for b in sorted(edges[a]):
            if a not in RANK or b not in RANK:
                bad.append("%s -> %s: %s is not in scripts/layers.py's RANK (%s)"
                           % (a, b, a if a not in RANK else b, where[(a, b)]))
            elif RANK[b] >= RANK[a] and (a, b) not in SIDEWAYS:
                bad.append("%s -> %s goes up or sideways (%s)" % (a, b, where[(a, b)]))
    # A circle, should SIDEWAYS ever allow one.
    state = {}

    def visit(n, stack):
        state[n] = 1
        for m in sorted(edges.get(n, ())):
            if state.get(m) == 1:
                bad.append("circle: " + " -> ".join(stack + [n, m]))
            elif not state.get(m):
                visit(m, stack + [n])
        state[n] = 2

    for n in sorted(edges):
        if not state.get(n):
            visit(n, [])
    for a in sorted(edges, key=lambda x: -RANK.get(x, 99)):
        print("%-8s -> %s" % (a, " ".join(sorted(edges[a], key=lambda x: -RANK.get(x, 99)))))
    sys.stdout.flush()
    for b in bad:
        print("layers: " + b, file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
