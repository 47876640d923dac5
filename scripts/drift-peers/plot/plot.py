#!/usr/bin/env python3
"""Draws the drift benchmark's power curve from `driftwood bench-drift`'s results.

usage: plot.py OUT.png RESULTS.jsonl [MORE.jsonl …]   (merged as summary.py merges them)

One panel per window size: the share of windows flagged against the size of a mean shift in
one feature (0 is the false-alarm rate), with Wilson 95% intervals, for driftwood's alert
and warn levels and each peer on the same windows.
"""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

SHIFTS = {"no shift": 0.0, "mean 0.05 sd": 0.05, "mean 0.10 sd": 0.10, "mean 0.25 sd": 0.25, "mean 0.50 sd": 0.5}
STYLE = {
    "driftwood alert": dict(color="black", marker="o", linewidth=2.2),
    "driftwood warn": dict(color="black", marker="o", linestyle="--", linewidth=1.2),
}


def main(out: str, paths: list) -> None:
    best = {}
    for path in paths:
        for line in open(path):
            if line.strip():
                r = json.loads(line)
                key = (r["part"], r["tool"], r["scenario"], r["n"])
                if key not in best or r["windows"] > best[key]["windows"]:
                    best[key] = r
    rows = list(best.values())
    # driftwood's rates over all its windows (the peers' subset is in the tables).
    rows = [r for r in rows if r["part"] == "synthetic" and r["scenario"] in SHIFTS and "peers' windows" not in r["tool"]]
    sizes = sorted({r["n"] for r in rows})
    tools = sorted({r["tool"] for r in rows}, key=lambda t: (not t.startswith("driftwood"), t))
    # One colour per tool in every panel (a panel without a tool must not shift the others').
    palette = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    peers = [t for t in tools if t not in STYLE]
    style = {t: dict(color=palette[i % len(palette)], marker=".", linewidth=1) for i, t in enumerate(peers)}
    style.update(STYLE)
    fig, axes = plt.subplots(1, len(sizes), figsize=(5.2 * len(sizes), 4.4), sharey=True, squeeze=False)
    for ax, n in zip(axes[0], sizes):
        for tool in tools:
            points = sorted((SHIFTS[r["scenario"]], r) for r in rows if r["n"] == n and r["tool"] == tool)
            if not points:
                continue
            x = [p for p, _ in points]
            y = [r["rate"] for _, r in points]
            err = [[max(0.0, r["rate"] - r["low"]) for _, r in points], [max(0.0, r["high"] - r["rate"]) for _, r in points]]
            windows = max(r["windows"] for _, r in points)
            ax.errorbar(x, y, yerr=err, capsize=2, label=f"{tool} (≤{windows} windows)", **style[tool])
        ax.set_title(f"windows of {n:,} records, reference of 50,000")
        ax.set_xlabel("mean shift of one of 30 features (standard deviations)")
        ax.set_xscale("symlog", linthresh=0.05)
        ax.set_xticks(list(SHIFTS.values()))
        ax.set_xticklabels(["0", "0.05", "0.1", "0.25", "0.5"])
        ax.axhline(0.01, color="grey", linewidth=0.6, linestyle=":")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("share of windows flagged (Wilson 95%)")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, fontsize=8, loc="lower center", ncol=4, frameon=False)
    fig.suptitle("Detection rate against shift size; at 0, the false-alarm rate (dotted line: 1%)", fontsize=11)
    fig.tight_layout(rect=(0, 0.12, 1, 0.95))
    fig.savefig(out, dpi=110)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
