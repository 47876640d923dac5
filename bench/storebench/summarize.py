#!/usr/bin/env python3
"""Summarize results/runs.jsonl -> median [min-max] per store (3 runs each)."""
import json, statistics, sys
path = sys.argv[1] if len(sys.argv) > 1 else "results/runs.jsonl"
runs = [json.loads(l) for l in open(path) if l.strip()]
by = {}
for r in runs:
    by.setdefault(r["store"], []).append(r)
order = [s for s in ["none", "hashmap", "rocksdb", "fjall", "redb"] if s in by]

def mr(xs, fmt="{:.0f}"):
    xs = sorted(xs)
    return f"{fmt.format(statistics.median(xs))} [{fmt.format(xs[0])}–{fmt.format(xs[-1])}]"

def table(cols, rowf):
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for s in order:
        rs = by[s]
        print("| " + " | ".join([s] + rowf(rs)) + " |")
    print()

ph = lambda r, i: r["phases"][i]
n = runs[0]["n"]; rem = n - runs[0]["expire"]
RAW = 14 + 56

print("## ns per op: wall / process CPU (all threads, getrusage), median [min–max] of", len(by[order[0]]), "runs\n")
table(["store", "A wall", "A cpu", "B wall", "B cpu", "C wall", "C cpu"],
      lambda rs: [mr([ph(r, i)[k] for r in rs]) for i in range(3) for k in ("wall_ns_per_op", "cpu_ns_per_op")])

print("## main-thread CPU ns/op (the rest of process CPU is background threads)\n")
table(["store", "A", "B", "C", "sanity ok"],
      lambda rs: [mr([ph(r, i)["main_thread_cpu_ns_per_op"] for r in rs]) for i in range(3)]
      + [str(all(r["sanity_ok"] and r["label_misses"] == 0 for r in rs))])

print(f"## disk, bytes per entry (du -sb apparent / du -sB1 allocated); after A per {n} entries, later per {rem} remaining\n")
table(["store", "after A", "after A alloc", "after B", "after C", "after C+settle", "settle alloc", "after finish+close", "close alloc"],
      lambda rs: [
          mr([ph(r, 0)["du_bytes"] / n for r in rs], "{:.0f}"),
          mr([ph(r, 0)["du_alloc_bytes"] / n for r in rs], "{:.0f}"),
          mr([ph(r, 1)["du_bytes"] / n for r in rs], "{:.0f}"),
          mr([ph(r, 2)["du_bytes"] / rem for r in rs], "{:.0f}"),
          mr([r["du_after_settle"] / rem for r in rs], "{:.0f}"),
          mr([r["du_alloc_after_settle"] / rem for r in rs], "{:.0f}"),
          mr([r["du_after_close"] / rem for r in rs], "{:.0f}"),
          mr([r["du_alloc_after_close"] / rem for r in rs], "{:.0f}"),
      ])

print("## memory and other counters\n")
table(["store", "VmHWM MiB after A", "after B", "after C", "bytes dirtied (oublock) per op A/B/C", "minor faults per op A", "invol. ctx sw total", "settle CPU s", "sys busy % (2 cores)"],
      lambda rs: [mr([ph(r, i)["vmhwm_kb"] / 1024 for r in rs]) for i in range(3)]
      + ["/".join(mr([ph(r, i)["oublock_512"] * 512 / ph(r, i)["ops"] for r in rs]) for i in range(3)),
         mr([ph(r, 0)["minflt"] / n for r in rs], "{:.2f}"),
         mr([sum(ph(r, i)["nivcsw"] for i in range(3)) for r in rs]),
         mr([r["settle_cpu_s"] for r in rs], "{:.2f}"),
         mr([r.get("sys_busy_pct_2cores", 0) for r in rs])])
