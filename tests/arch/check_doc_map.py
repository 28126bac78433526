#!/usr/bin/env python3
"""Every `file.c:function` that a document names exists: the file is in the
tree and defines the function. Keeps the message path of
docs/ARCHITECTURE.md from rotting.

Usage: check_doc_map.py ROOT DOC...
"""
import os
import re
import sys

REF = re.compile(r"`([A-Za-z0-9_./-]+\.[ch]):([A-Za-z_][A-Za-z0-9_]*)`")


def defines(text, fn):
    """A definition: the name at the start of a declaration line, followed
    by its parameter list and, after the closing parenthesis, a body."""
    pat = re.compile(r"^[A-Za-z_][^;{}()]*\b" + re.escape(fn) + r"\s*\(", re.M)
    for m in pat.finditer(text):
        depth, i = 0, m.end() - 1
        while i < len(text):
            c = text[i]
            depth += c == "("
            depth -= c == ")"
            i += 1
            if depth == 0:
                break
        rest = text[i:i + 200].lstrip()
        rest = re.sub(r"^(BFTNET_WUR|__attribute__\(\(.*?\)\))\s*", "", rest)
        if rest.startswith("{"):
            return True
    return False


def main(argv):
    root, docs = argv[0], argv[1:]
    bad, n = [], 0
    for doc in docs:
        with open(doc, encoding="utf-8") as fh:
            text = fh.read()
        for path, fn in sorted(set(REF.findall(text))):
            n += 1
            full = os.path.join(root, path)
            if not os.path.isfile(full):
                bad.append(f"{os.path.basename(doc)}: {path}:{fn}: no such file")
                continue
            with open(full, encoding="utf-8", errors="replace") as fh:
                if not defines(fh.read(), fn):
                    bad.append(f"{os.path.basename(doc)}: {path}:{fn}: not defined there")
    for line in bad:
        print(line)
    print(f"{n} file:function references, {len(bad)} broken")
    if n == 0:
        print("no references found: the map is missing")
        return 1
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
