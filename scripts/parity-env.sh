#!/usr/bin/env bash
# A Python with scikit-learn, XGBoost, LightGBM, their ONNX exporters, onnxruntime and
# tl2cgen, pinned in tests/parity/requirements.txt, for the parity test (tests/parity.rs)
# and the model speed comparison; prints the interpreter's path (see scripts/py-env.sh).
set -euo pipefail
exec "$(dirname "$0")/py-env.sh" tests/parity/requirements.txt
