#!/usr/bin/env bash
# Checks the deployment files with the tools their users run (scripts/test.sh runs this):
#   - kubectl kustomize renders each overlay (k8s/overlays/*), and Helm the chart
#     (charts/driftwood) with its default values and with each overlay's twin (ci/*-values.yaml);
#   - kubernetes-validate checks every rendered built-in object against the Kubernetes 1.30
#     API schemas, strictly (an unknown field fails);
#   - tests/k8s/crd_validate.py checks every custom resource (KEDA ScaledObject, Prometheus
#     Operator ServiceMonitor and PrometheusRule, External Secrets ExternalSecret) against
#     its CRD's schema in k8s/crds/, as strictly;
#   - checkov over the rendered manifests, the Dockerfile and the CI workflow (a skipped
#     check says why where it is skipped);
#   - yamllint over every YAML file of ours (.yamllint.yaml), hadolint over the Dockerfile,
#     actionlint over .github/workflows/.
# The Python tools come from PyPI into a venv (scripts/py-env.sh tests/k8s/requirements.txt);
# actionlint is built from the Go module proxy once, into the cache.
set -euo pipefail
cd "$(dirname "$0")/.."

python=$(scripts/py-env.sh tests/k8s/requirements.txt)
bin=$(dirname "$python")
actionlint_version=1.7.12
actionlint="${XDG_CACHE_HOME:-$HOME/.cache}/driftwood/actionlint-$actionlint_version/actionlint"
if [ ! -x "$actionlint" ]; then
  command -v go >/dev/null || { echo "validate-k8s.sh: go not found (actionlint is built with it)" >&2; exit 1; }
  echo "building actionlint $actionlint_version from the Go module proxy…" >&2
  GOBIN=$(dirname "$actionlint") go install "github.com/rhysd/actionlint/cmd/actionlint@v$actionlint_version"
fi

rendered=$(mktemp -d "${TMPDIR:-/tmp}/driftwood-k8s.XXXXXX")
trap 'rm -rf "$rendered"' EXIT
helm=$(scripts/helm.sh)
for overlay in k8s/overlays/*/ charts/driftwood/values.yaml charts/driftwood/ci/*-values.yaml; do
  case "$overlay" in
    k8s/*)
      name=$(basename "$overlay")
      "$bin/kubectl" kustomize "$overlay" > "$rendered/$name.yaml" ;;
    *)
      name=chart-$(basename "$overlay" .yaml)
      "$helm" template driftwood charts/driftwood --namespace driftwood -f "$overlay" 2>/dev/null > "$rendered/$name.yaml" ;;
  esac
  echo "== $overlay: $(grep -c '^kind:' "$rendered/$name.yaml") objects"
  # Custom kinds have no schema here: kubernetes-validate warns about them, the CRD check
  # below covers them.
  "$bin/kubernetes-validate" --kubernetes-version 1.30.0 --strict --quiet "$rendered/$name.yaml"
  "$bin/python" tests/k8s/crd_validate.py k8s/crds "$rendered/$name.yaml"
done

echo "== checkov"
checkov=("$bin/checkov" --quiet --compact --skip-download)
"${checkov[@]}" -d "$rendered" --framework kubernetes
"${checkov[@]}" -f Dockerfile --framework dockerfile
"${checkov[@]}" -d .github --framework github_actions

echo "== yamllint, hadolint, actionlint"
"$bin/yamllint" --strict -c .yamllint.yaml k8s charts monitoring docker-compose.yml .github .yamllint.yaml
"$bin/hadolint" Dockerfile
"$actionlint" .github/workflows/*.yml
echo "deployment files ok"
