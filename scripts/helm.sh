#!/usr/bin/env bash
# Prints the path of Helm v4 for the chart's checks (tests/chart.rs, scripts/validate-k8s.sh),
# building it from the Go module proxy once, into the cache (2–3.5 minutes; needs Go
# 1.26+). HELM names another.
set -euo pipefail
if [ -n "${HELM:-}" ]; then
  echo "$HELM"
  exit 0
fi
version=v4.3.2
dir="${XDG_CACHE_HOME:-$HOME/.cache}/driftwood/tools/helm-$version"
if [ ! -x "$dir/helm" ]; then
  command -v go >/dev/null || { echo "helm.sh: go not found (Helm is built with it); or set HELM" >&2; exit 1; }
  echo "building Helm $version from the Go module proxy into $dir…" >&2
  GOBIN="$dir.part" GOFLAGS=-trimpath go install -ldflags "-s -w" "helm.sh/helm/v4/cmd/helm@$version" >&2 \
    || { echo "helm.sh: building Helm failed" >&2; exit 1; }
  rm -rf "$dir" && mv "$dir.part" "$dir"
fi
echo "$dir/helm"
