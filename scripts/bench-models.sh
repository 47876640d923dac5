#!/usr/bin/env bash
# Compares driftwood's tree engine with onnxruntime, tl2cgen-compiled C and the libraries' own
# predict on the same trees and rows, one thread each (scripts/bench-models/compare.py). Uses
# the parity test's Python (scripts/parity-env.sh) and gcc; trains its models first (a few
# minutes on two cores). Prints a table; writes it as JSON into OUT_DIR (default
# target/bench-models).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-target/bench-models}
python=$(scripts/parity-env.sh)
cargo build --release --quiet --bin driftwood
exec "$python" scripts/bench-models/compare.py "$out" --driftwood target/release/driftwood "${@:2}"
