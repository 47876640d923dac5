#!/usr/bin/env bash
# Runs every test against a real tansu broker: installs tansu when missing, starts it on a
# free loopback port, runs the tests, stops it; then validates k8s/ against the Kubernetes
# schemas (scripts/validate-k8s.sh). Set KAFKA_BOOTSTRAP_SERVERS to use another
# broker instead (nothing is started then).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${KAFKA_BOOTSTRAP_SERVERS:-}" ]; then
  scripts/tansu.sh install
  # A state directory of its own, so a broker you started with scripts/tansu.sh keeps running.
  TANSU_STATE_DIR=$(mktemp -d "${TMPDIR:-/tmp}/driftwood-test-tansu.XXXXXX")
  export TANSU_STATE_DIR
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  trap 'scripts/tansu.sh stop; rm -rf "$TANSU_STATE_DIR"' EXIT
  KAFKA_BOOTSTRAP_SERVERS=$(scripts/tansu.sh start "$port" memory)
  export KAFKA_BOOTSTRAP_SERVERS
  echo "tansu broker at $KAFKA_BOOTSTRAP_SERVERS"
fi

# The sidecar test starts (and stops) a second tansu of its own, so it needs the binary too.
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
cargo test --all-targets "$@"

# The Kubernetes manifests against the API schemas (tests/deploy.rs checked them against the
# code already).
scripts/validate-k8s.sh
