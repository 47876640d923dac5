#!/usr/bin/env bash
# A Python with scikit-learn, XGBoost, LightGBM, their ONNX exporters, onnxruntime and
# tl2cgen, pinned in tests/parity/requirements.txt, for the parity test (tests/parity.rs)
# and the model speed comparison. Made once per set of pins, in the cache; prints the
# interpreter's path.
set -euo pipefail
cd "$(dirname "$0")/.."

requirements=tests/parity/requirements.txt
pins=$(sha256sum "$requirements" | cut -c1-12)
venv="${XDG_CACHE_HOME:-$HOME/.cache}/driftwood/py/parity-$pins"
# A venv cannot move (its scripts name their directory), so a stamp marks a finished one.
if [ ! -f "$venv/.complete" ]; then
  command -v python3 >/dev/null || { echo "parity-env.sh: python3 not found" >&2; exit 1; }
  echo "installing the parity test's Python packages into $venv…" >&2
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements" >&2
  touch "$venv/.complete"
fi
echo "$venv/bin/python"
