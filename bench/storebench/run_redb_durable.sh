#!/bin/bash
# extra variant (not in the brief's config): redb with every K-th write txn Durability::Immediate
set -eu
cd "$(dirname "$0")"
K=${1:-100}
cpu() { awk '/^cpu /{idle=$5+$6; tot=0; for(i=2;i<=NF;i++) tot+=$i; print tot, idle}' /proc/stat; }
for round in 1 2 3; do
  dir=$PWD/data/redb-d; rm -rf $dir; sync; sleep 2
  read t0 i0 < <(cpu)
  json=$(REDB_DURABLE_EVERY=$K ./bin/storebench-redb redb $dir)
  read t1 i1 < <(cpu)
  busy=$(awk -v a=$((t1-t0)) -v b=$((i1-i0)) 'BEGIN{printf "%.1f", 100*(a-b)/a}')
  echo "${json%\}},\"round\":$round,\"durable_every\":$K,\"sys_busy_pct_2cores\":$busy}" >> results/redb-durable-every-$K.jsonl
  rm -rf $dir
done
