#!/bin/bash
# usage: ./run_all.sh [N] [labels] [expire]
# 3 rounds, store order alternates per round. Each run is a fresh process and a fresh
# store directory (removed afterwards). Output: results/runs.jsonl (one JSON per run,
# with round, order position, and system-wide CPU busy % during the run, to spot
# interference from other users of the 2 cores).
set -eu
cd "$(dirname "$0")"
N=${1:-2000000}; L=${2:-1000000}; E=${3:-1000000}
out=results/runs.jsonl
orders=("none hashmap rocksdb fjall redb" "redb fjall rocksdb hashmap none" "fjall redb none hashmap rocksdb")
cpu() { awk '/^cpu /{idle=$5+$6; tot=0; for(i=2;i<=NF;i++) tot+=$i; print tot, idle}' /proc/stat; }
for round in 1 2 3; do
  pos=0
  for s in ${orders[$((round-1))]}; do
    pos=$((pos+1))
    dir=$PWD/data/$s
    rm -rf $dir
    sync; sleep 2
    read t0 i0 < <(cpu); la=$(cut -d' ' -f1 /proc/loadavg)
    bin=./bin/storebench-$s; [ $s = none ] && bin=./bin/storebench-hashmap
    json=$($bin $s $dir $N $L $E)
    read t1 i1 < <(cpu)
    busy=$(awk -v a=$((t1-t0)) -v b=$((i1-i0)) 'BEGIN{printf "%.1f", 100*(a-b)/a}')
    echo "${json%\}},\"round\":$round,\"pos\":$pos,\"sys_busy_pct_2cores\":$busy,\"loadavg1_before\":$la}" >> $out
    echo "round $round $s done: busy=$busy% la=$la"
    rm -rf $dir
  done
done
