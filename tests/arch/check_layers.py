#!/usr/bin/env python3
"""The layering, read from the compiled objects (nm), not from the sources.

Usage: check_layers.py [--src ROOT] FOLDER=ARCHIVE ...   (one static library
       per folder; with --src, the #include lines of ROOT's folders too)

Fails when
  - an object of one folder refers to a symbol defined in a folder that is
    not below it (a call or an address taken "upward"), or
  - the objects of one folder refer to each other in a circle (file A uses a
    name of file B and B, directly or through others, one of A).
Every edge is a symbol reference, so a callback registered through a table
(a function pointer handed down) is not an edge: that is the allowed way up.
"""
import subprocess
import sys
from collections import defaultdict

# Allowed dependencies, bottom to top (each folder may use those listed,
# and what they may use).
BELOW = {
    "core": [],
    "proto": ["core"],
    "net_codec": ["proto"],
    "net": ["net_codec"],
    "migration": ["net"],
    "dispatcher": ["migration"],
    "receiver": ["migration"],
    "membership": ["proto"],
    "node": ["dispatcher", "receiver", "membership"],
}


def closure(folder):
    seen, todo = set(), list(BELOW[folder])
    while todo:
        f = todo.pop()
        if f not in seen:
            seen.add(f)
            todo.extend(BELOW[f])
    return seen


def nm(archive, flags):
    out = subprocess.run(["nm", "-A"] + flags + [archive], check=True,
                         capture_output=True, text=True).stdout
    rows = []
    for line in out.splitlines():
        # "archive:object.o:[value] TYPE name" (no value for undefined ones)
        parts = line.split()
        if len(parts) < 3 or parts[0].count(":") < 2:
            continue
        obj = parts[0].split(":")[1]
        rows.append((obj, parts[-2], parts[-1]))
    return rows


def sccs(nodes, edges):
    """Tarjan: the strongly connected components with more than one node."""
    index, low, stack, on, out, n = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = n[0]
        n[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in nodes:
        if v not in index:
            visit(v)
    return out


def folder_of(path):
    """The layer a source path belongs to, or None (tests, tools, bench)."""
    parts = path.split("/")
    if parts[0] == "net" and len(parts) > 2 and parts[1] == "codec":
        return "net_codec"
    return parts[0] if parts[0] in BELOW else None


def check_includes(root):
    """#include "x.h" of a folder's header from a folder not above it."""
    import os
    import re
    home, files = {}, []
    for dirpath, _, names in os.walk(root):
        rel = os.path.relpath(dirpath, root)
        if rel.startswith((".", "build")):
            continue
        for name in names:
            path = os.path.normpath(os.path.join(rel, name))
            f = folder_of(path)
            if f and name.endswith((".c", ".h")):
                files.append((path, f))
                if name.endswith(".h"):
                    home.setdefault(name, f)
    bad = []
    inc = re.compile(r'^\s*#\s*include\s+"([^"]+)"')
    for path, f in files:
        with open(os.path.join(root, path), encoding="utf-8", errors="replace") as fh:
            for n, line in enumerate(fh, 1):
                m = inc.match(line)
                if not m:
                    continue
                g = home.get(os.path.basename(m.group(1)))
                if g and g != f and g not in closure(f):
                    bad.append(f"upward include: {path}:{n} includes {m.group(1)} of {g}/")
    return bad, len(files)


def main(argv):
    src = None
    if argv[:1] == ["--src"]:
        src, argv = argv[1], argv[2:]
    archives = dict(a.split("=", 1) for a in argv)
    unknown = set(archives) - set(BELOW)
    if unknown:
        print("unknown folders:", ", ".join(sorted(unknown)))
        return 2
    owner = {}  # symbol -> (folder, object)
    uses = []   # (folder, object, symbol)
    for folder, ar in archives.items():
        for obj, typ, sym in nm(ar, ["--defined-only"]):
            if typ in "TDBRCGSVW" and typ.isupper():
                owner[sym] = (folder, obj)
        for obj, typ, sym in nm(ar, ["-u"]):
            uses.append((folder, obj, sym))
    bad = []
    edges = defaultdict(lambda: defaultdict(set))  # folder -> obj -> {obj}
    examples = {}
    for folder, obj, sym in uses:
        if sym not in owner:
            continue  # a system library's
        f2, obj2 = owner[sym]
        if f2 == folder:
            if obj2 != obj:
                edges[folder][obj].add(obj2)
                examples.setdefault((folder, obj, obj2), sym)
        elif f2 not in closure(folder):
            bad.append(f"upward: {folder}/{obj} uses {sym} of {f2}/{obj2}")
    circles = 0
    for folder, g in edges.items():
        nodes = set(g) | {w for vs in g.values() for w in vs}
        for comp in sccs(sorted(nodes), defaultdict(set, g)):
            circles += 1
            ties = [f"{a} -> {b} ({examples[(folder, a, b)]})"
                    for a in comp for b in sorted(g.get(a, ())) if b in comp]
            bad.append(f"circle in {folder}/: " + "; ".join(ties))
    nfiles = 0
    if src:
        inc_bad, nfiles = check_includes(src)
        bad += inc_bad
    for line in bad:
        print(line)
    links = sum(len(vs) for g in edges.values() for vs in g.values())
    print(f"{len(archives)} folders, {len(uses)} references, {links} file-to-file links "
          f"inside folders, {nfiles} sources' includes; {len(bad) - circles} upward, "
          f"{circles} circles")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
