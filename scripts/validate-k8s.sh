#!/usr/bin/env bash
# Validates the core Kubernetes manifests in k8s/ against the Kubernetes API schemas
# (strict: unknown fields fail), with kubernetes-validate from PyPI installed into
# .venv-k8s. KEDA's ScaledObject is a custom resource without a bundled schema; tests/deploy.rs
# checks it against the ConfigMap and the Deployment instead.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.venv-k8s
if [ ! -x "$venv/bin/kubernetes-validate" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet kubernetes-validate==1.37.0
fi
"$venv/bin/kubernetes-validate" --kubernetes-version 1.30.0 --strict \
  k8s/configmap.yaml k8s/deployment.yaml k8s/service.yaml k8s/poddisruptionbudget.yaml
