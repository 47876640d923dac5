#!/usr/bin/env python3
"""Markdown tables of `driftwood bench-drift`'s results (the ones docs/drift.md shows).

usage: summary.py RESULTS.jsonl [MORE.jsonl …]

Several files merge: for each (part, tool, scenario, n) the row with the most windows is kept
(a longer run of the windows without a shift replaces a shorter one of the same seed).

- Synthetic: per window size, each tool's rate per scenario as `k/N rate [Wilson 95%]`;
  driftwood's over all its windows, and (for a paired comparison) over the peers' windows.
- Persistent shift: runs flagged within 10 windows, and the median windows to detection.
- Bundled model and the nannyml data sets: flagged windows (or chunks) per tool.
"""
import json
import sys
from collections import OrderedDict


def cell(r):
    return f"{r['flagged']}/{r['windows']} = {100 * r['rate']:.2f}% [{100 * r['low']:.2f}, {100 * r['high']:.2f}]"


def table(rows, columns, key_row, key_col):
    out = ["| " + " | ".join(["tool"] + columns) + " |", "|" + " --- |" * (len(columns) + 1)]
    tools = OrderedDict()
    for r in rows:
        tools.setdefault(key_row(r), {})[key_col(r)] = r
    for tool, by in tools.items():
        out.append("| " + " | ".join([tool] + [cell(by[c]) if c in by else "" for c in columns]) + " |")
    return "\n".join(out)


def load(paths):
    best = OrderedDict()
    for path in paths:
        for line in open(path):
            if not line.strip():
                continue
            r = json.loads(line)
            key = (r["part"], r["tool"], r["scenario"], r["n"])
            if key not in best or r["windows"] > best[key]["windows"]:
                best[key] = r
    return list(best.values())


def main(paths):
    rows = load(paths)
    synthetic = [r for r in rows if r["part"] == "synthetic"]
    scenarios = list(OrderedDict.fromkeys(r["scenario"] for r in synthetic))
    for n in sorted({r["n"] for r in synthetic}):
        print(f"\n#### Synthetic, windows of {n:,} records (30 features, references of 50,000 rows)\n")
        print(table([r for r in synthetic if r["n"] == n], scenarios, lambda r: r["tool"], lambda r: r["scenario"]))
    persistent = [r for r in rows if r["part"] == "persistent"]
    if persistent:
        print("\n#### Persistent 0.04 sd shift in one feature: runs flagged within 10 windows\n")
        print("| tool | n | runs flagged within 10 windows | median windows to detection |")
        print("| --- | --- | --- | --- |")
        for r in persistent:
            extra = r.get("extra") or {}
            print(f"| {r['tool']} | {r['n']:,} | {cell(r)} | {extra.get('median_windows')} |")
    for part in list(OrderedDict.fromkeys(r["part"] for r in rows if r["part"] not in ("synthetic", "persistent"))):
        these = [r for r in rows if r["part"] == part]
        print(f"\n#### {part}\n")
        columns = list(OrderedDict.fromkeys(f"{r['scenario']} (n = {r['n']:,})" for r in these))
        print(table(these, columns, lambda r: r["tool"], lambda r: f"{r['scenario']} (n = {r['n']:,})"))
        chunks = OrderedDict((r["tool"], (r.get("extra") or {}).get("chunks")) for r in these if (r.get("extra") or {}).get("chunks"))
        if chunks:
            print("\nchunk by chunk (A alert, w warn, S sequential alarm, . quiet):\n")
            for tool, symbols in chunks.items():
                print(f"    {tool:<24} {symbols}")


if __name__ == "__main__":
    main(sys.argv[1:])
