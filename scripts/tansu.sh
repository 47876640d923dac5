#!/usr/bin/env bash
# Installs, starts and stops a local tansu broker (Kafka-compatible) on 127.0.0.1.
#
#   scripts/tansu.sh install            cargo install tansu 0.6.0 unless `tansu` already answers
#   scripts/tansu.sh start [PORT] [STORAGE]
#                                       STORAGE: memory (default) or sqlite (file $TANSU_STATE_DIR/tansu.db,
#                                       survives a broker restart); prints the bootstrap address
#   scripts/tansu.sh stop               stops the broker started by `start`
#
# TANSU_STATE_DIR (default .tansu) holds the pid, log and database, so two brokers (yours and
# the one scripts/test.sh starts) can run side by side.
# tansu does not auto-create topics: run driftwood with --create-topics.
set -euo pipefail
cd "$(dirname "$0")/.."
state_dir="${TANSU_STATE_DIR:-.tansu}"
mkdir -p "$state_dir"

tansu_bin() {
  if command -v tansu >/dev/null 2>&1; then command -v tansu; return; fi
  local cargo_bin="${CARGO_HOME:-$HOME/.cargo}/bin/tansu"
  if [ -x "$cargo_bin" ]; then echo "$cargo_bin"; return; fi
  return 1
}

case "${1:-}" in
  install)
    if bin=$(tansu_bin) && "$bin" --version >/dev/null 2>&1; then
      echo "tansu already installed: $("$bin" --version)"
    else
      echo "installing tansu 0.6.0 (about 10 minutes on 2 cores)…"
      cargo install tansu --version 0.6.0 --locked --features dynostore,libsql
    fi
    ;;
  start)
    port="${2:-9092}"
    storage="${3:-memory}"
    bin=$(tansu_bin) || { echo "tansu is not installed: run scripts/tansu.sh install" >&2; exit 1; }
    case "$storage" in
      memory) engine="memory://tansu/" ;;
      sqlite) engine="sqlite://$state_dir/tansu.db" ;;
      *) echo "storage must be memory or sqlite, not $storage" >&2; exit 1 ;;
    esac
    if [ -f "$state_dir/pid" ] && kill -0 "$(cat "$state_dir/pid")" 2>/dev/null; then
      echo "tansu already running (pid $(cat "$state_dir/pid"))" >&2; exit 1
    fi
    url="tcp://127.0.0.1:$port"
    nohup "$bin" broker --listener-url "$url" --advertised-listener-url "$url" \
      --storage-engine "$engine" >"$state_dir/tansu.log" 2>&1 &
    echo $! >"$state_dir/pid"
    for _ in $(seq 1 100); do
      if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        echo "127.0.0.1:$port"; exit 0
      fi
      sleep 0.1
    done
    echo "tansu did not start; see $state_dir/tansu.log" >&2; exit 1
    ;;
  stop)
    if [ -f "$state_dir/pid" ]; then
      pid=$(cat "$state_dir/pid")
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
      rm -f "$state_dir/pid"
    fi
    ;;
  *)
    sed -n '2,12p' "$0"; exit 2 ;;
esac
