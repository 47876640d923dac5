#!/usr/bin/env bash
# Prints the path of a Chromium for the status page's browser test, installing Debian's
# `chromium` package (and a font) with apt-get when there is none (as root, or with sudo).
# CHROMIUM names another.
set -euo pipefail
if [ -n "${CHROMIUM:-}" ]; then
  echo "$CHROMIUM"
  exit 0
fi
if ! command -v chromium >/dev/null; then
  command -v apt-get >/dev/null || {
    echo "chromium.sh: no chromium; install Chromium and set CHROMIUM to its path" >&2
    exit 1
  }
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing Debian's chromium package for the status page's browser test…" >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y --no-install-recommends chromium fonts-liberation >/dev/null ||
    { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y --no-install-recommends chromium fonts-liberation >/dev/null; }
fi
command -v chromium
