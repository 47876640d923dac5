#!/bin/bash
# usage: ./build_cold.sh <hashmap|rocksdb|fjall|redb>
# Cold build of the bench binary with only that store enabled ("hashmap" = no feature;
# that binary also has the "none" harness-overhead store):
# `cargo clean` of this store's own target dir ($PWD/target-<store>), then one
# timed `cargo build --release`, all under nice -n 19.
# Crate sources are pre-fetched (cargo fetch) into $PWD/cargo-home, so the time
# is compile only, not download (--offline).
set -eu
cd "$(dirname "$0")"
export CARGO_HOME=$PWD/cargo-home
store=$1
export CARGO_TARGET_DIR=$PWD/target-$store
feat=""; [ "$store" != hashmap ] && feat="--features $store"
nice -n 19 cargo clean
tag=$store-$(date +%H%M%S)
log=logs/build-$tag.log
echo "start $(date -Is) loadavg $(cat /proc/loadavg)" > $log
/usr/bin/time -v -o logs/time-$tag.txt nice -n 19 cargo build --release --offline $feat >> $log 2>&1
echo "end $(date -Is) loadavg $(cat /proc/loadavg)" >> $log
cp $CARGO_TARGET_DIR/release/storebench bin/storebench-$store
echo "$tag: $(grep -E 'Elapsed' logs/time-$tag.txt | awk '{print $NF}') wall, user $(grep 'User time' logs/time-$tag.txt | awk '{print $NF}') s, sys $(grep 'System time' logs/time-$tag.txt | awk '{print $NF}') s" | tee -a logs/build-summary.txt
tail -2 $log
