#!/usr/bin/env bash
# Checks the alert rules (monitoring/prometheus/alerts.yml) and docker-compose.yml's
# Prometheus configuration (prometheus.yml) with promtool, and runs the rules' unit tests
# (alerts_test.yml). promtool comes with Debian's `prometheus` package, installed here
# when missing (the server is not started).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
cd monitoring/prometheus

command -v promtool >/dev/null ||
  apt_install "promtool not found; install Prometheus (it ships promtool)" prometheus
promtool --version | head -1
promtool check rules alerts.yml
# docker-compose.yml's Prometheus configuration, with the rule file it loads.
promtool check config prometheus.yml
promtool test rules alerts_test.yml
