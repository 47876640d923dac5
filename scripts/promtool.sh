#!/usr/bin/env bash
# Checks the alert rules (monitoring/prometheus/alerts.yml) and docker-compose.yml's
# Prometheus configuration (prometheus.yml) with promtool, and runs the rules' unit tests
# (alerts_test.yml). promtool comes with Debian's `prometheus` package, installed here
# when missing (the server is not started).
set -euo pipefail
cd "$(dirname "$0")/../monitoring/prometheus"

if ! command -v promtool >/dev/null; then
  command -v apt-get >/dev/null || {
    echo "promtool.sh: promtool not found; install Prometheus (it ships promtool)" >&2
    exit 1
  }
  echo "installing Debian's prometheus package for promtool…" >&2
  sudo=""
  [ "$(id -u)" = 0 ] || sudo=sudo
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y --no-install-recommends prometheus >/dev/null ||
    { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y --no-install-recommends prometheus >/dev/null; }
fi
promtool --version | head -1
promtool check rules alerts.yml
# docker-compose.yml's Prometheus configuration, with the rule file it loads.
promtool check config prometheus.yml
promtool test rules alerts_test.yml
