#!/usr/bin/env bash
# A Python venv with the packages pinned in a requirements file (the argument), made once
# per set of pins in the cache; prints the interpreter's path. The parity test's
# (tests/parity/requirements.txt, through scripts/parity-env.sh) and schemathesis for the
# REST twin (tests/rest/requirements.txt).
set -euo pipefail
cd "$(dirname "$0")/.."

requirements=${1:?usage: scripts/py-env.sh REQUIREMENTS_FILE}
name=$(basename "$(dirname "$requirements")")
pins=$(sha256sum "$requirements" | cut -c1-12)
venv="${XDG_CACHE_HOME:-$HOME/.cache}/driftwood/py/$name-$pins"
# A venv cannot move (its scripts name their directory), so a stamp marks a finished one.
if [ ! -f "$venv/.complete" ]; then
  command -v python3 >/dev/null || { echo "py-env.sh: python3 not found" >&2; exit 1; }
  echo "installing $requirements into $venv…" >&2
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements" >&2
  touch "$venv/.complete"
fi
echo "$venv/bin/python"
