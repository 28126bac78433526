#!/usr/bin/env python3
"""Every metric family the library can export has a row in section 2 of
docs/OPERATING.md, and every family a row there names is exported.

The exported families are read from the sources: one per entry of
BFTNET_COUNTER_MAP (include/bftnet.h), named as node/src/metrics.c's
node_fams says (its own name or the counter's, `_total` unless a gauge),
and the names metrics.c passes to MF, CF, total_fams and family().

A row names families in its first cell, in backquotes: a full name
(`bftnet_x_total`, labels in braces ignored), a glob (`bftnet_bad_*_total`),
a short form completing the cell's first name (`bftnet_pings_sent_total`,
`_pings_answered_total`: the longest prefix of the first name, cut at an
underscore, that makes an exported name), or a range of node counters in
map order (`bftnet_mig_bad_message_total` ... `_mig_stream_limit_total`).

Usage: check_doc_metrics.py ROOT [DOC]
"""
import fnmatch
import os
import re
import sys


def counter_map(header):
    """The counters of BFTNET_COUNTER_MAP in order: [(ID, name)]."""
    m = re.search(r"#define BFTNET_COUNTER_MAP\(XX\)(.*?[^\\])\n", header, re.S)
    if not m:
        return []
    return re.findall(r'XX\((\w+),\s*"(\w+)"\)', m.group(1))


def node_families(counters, metrics_c):
    """The node-wide families, in map order."""
    fams = {}
    for cid, name, gauge in re.findall(
            r'\[BFTNET_COUNTER_(\w+)\]\s*=\s*\{\s*(NULL|"\w+")\s*,\s*(true|false)', metrics_c):
        fams[cid] = (None if name == "NULL" else name.strip('"'), gauge == "true")
    out = []
    for cid, name in counters:
        own, gauge = fams.get(cid, (None, False))
        out.append("bftnet_" + (own or name) + ("" if gauge else "_total"))
    return out


def other_families(metrics_c):
    """The members', classes', class totals' and membership families."""
    names = re.findall(r'\b[MC]F\(\s*"(\w+)"', metrics_c)
    names += re.findall(r'\{\s*"(\w+)"\s*,\s*\n?\s*"', metrics_c)  # total_fams
    names += re.findall(r'\bfamily\(\s*&?o\s*,\s*"(\w+)"', metrics_c)
    return ["bftnet_" + n for n in names]


def section2_rows(doc):
    """The first cell of every table row of section 2."""
    m = re.search(r"^## 2\..*?(?=^## )", doc, re.S | re.M)
    if not m:
        return []
    cells = []
    for line in m.group(0).splitlines():
        if line.startswith("|") and not re.match(r"^\|[-| ]+\|$", line):
            first = line.split("|")[1].strip()
            if first not in ("Metric", "Field"):
                cells.append(first)
    return cells


def resolve(token, lead, exported):
    """The exported name a short form stands for, or None."""
    parts = lead.split("_")
    for i in range(len(parts), 0, -1):
        prefix = "_".join(parts[:i])
        if "*" not in prefix and prefix + token in exported:
            return prefix + token
    return None


def documented(cells, exported, node_order):
    """(names the rows cover, what they name that is not exported)."""
    covered, unknown = set(), []
    for cell in cells:
        toks = re.findall(r"`([^`]+)`", cell)
        lead, names = None, []
        for tok in toks:
            tok = re.sub(r"\{.*\}$", "", tok.strip())
            if tok.startswith("bftnet_"):
                lead = lead or tok
                name = tok
            elif tok.startswith("_") and lead:
                name = resolve(tok, lead, exported) or tok
            else:
                continue
            hits = fnmatch.filter(exported, name) if "*" in name else [name] * (name in exported)
            if not hits:
                unknown.append(f"{cell}: {tok}")
            covered.update(hits)
            names.append(name)
        # `A` ... `B`: the node counters from A to B in map order.
        if re.search(r"`\s*\.\.\.\s*`", cell) and len(names) == 2:
            a, b = names
            if a in node_order and b in node_order:
                covered.update(node_order[node_order.index(a):node_order.index(b) + 1])
    return covered, unknown


def main(argv):
    root = argv[0]
    doc_path = argv[1] if len(argv) > 1 else os.path.join(root, "docs", "OPERATING.md")
    read = lambda p: open(p, encoding="utf-8").read()
    counters = counter_map(read(os.path.join(root, "include", "bftnet.h")))
    metrics_c = read(os.path.join(root, "node", "src", "metrics.c"))
    node_order = node_families(counters, metrics_c)
    others = other_families(metrics_c)
    exported = node_order + others
    if len(counters) < 10 or len(others) < 10:
        print(f"only {len(counters)} counters and {len(others)} other families found: "
              "the parser no longer matches the sources")
        return 1
    cells = section2_rows(read(doc_path))
    covered, unknown = documented(cells, exported, node_order)
    missing = [n for n in exported if n not in covered]
    for n in missing:
        print(f"{os.path.basename(doc_path)} section 2: no row for {n}")
    for u in unknown:
        print(f"{os.path.basename(doc_path)} section 2: names no exported family: {u}")
    print(f"{len(exported)} exported families ({len(node_order)} node counters), "
          f"{len(missing)} undocumented, {len(unknown)} unknown names")
    return 1 if missing or unknown else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
