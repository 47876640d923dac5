#!/usr/bin/env bash
# Prints the path of keda-kafka-lag (tests/keda/main.go): KEDA v2.20.2's own Kafka scaler,
# asked once what it would report for a ScaledObject trigger, for tests/integration/keda.rs.
# Built from the Go module proxy once, into the cache (KEDA's scaler package holds all of its
# scalers, so the first build fetches and compiles much: several minutes). Needs Go 1.26+.
# DRIFTWOOD_KEDA_SCALER names another.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
if [ -n "${DRIFTWOOD_KEDA_SCALER:-}" ]; then
  echo "$DRIFTWOOD_KEDA_SCALER"
  exit 0
fi
tools="${XDG_CACHE_HOME:-$HOME/.cache}/driftwood/tools"
# The program's own hash in the name: a change to it builds a new one.
binary="$tools/keda-kafka-lag-v2.20.2-$(cat tests/keda/go.mod tests/keda/go.sum tests/keda/main.go | sha256sum | cut -c1-12)"
if [ ! -x "$binary" ]; then
  need go "building KEDA's Kafka scaler needs Go 1.26+"
  echo "building KEDA v2.20.2's Kafka scaler from the Go module proxy into $binary…" >&2
  src="$tools/keda-src"
  rm -rf "$src" && mkdir -p "$src"
  cp tests/keda/go.mod tests/keda/go.sum tests/keda/main.go "$src/"
  (cd "$src" && go build -trimpath -ldflags "-s -w" -o "$binary.part" .) >&2 || die "building KEDA's scaler failed"
  mv "$binary.part" "$binary"
fi
echo "$binary"
