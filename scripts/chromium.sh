#!/usr/bin/env bash
# Prints the path of a Chromium for the status page's browser test, installing Debian's
# `chromium` package (and a font) with apt-get when there is none (as root, or with sudo).
# CHROMIUM names another.
set -euo pipefail
if [ -n "${CHROMIUM:-}" ]; then
  echo "$CHROMIUM"
  exit 0
fi
. "$(dirname "$0")/lib.sh"
command -v chromium >/dev/null ||
  apt_install "no chromium; install Chromium and set CHROMIUM to its path" chromium fonts-liberation
command -v chromium
