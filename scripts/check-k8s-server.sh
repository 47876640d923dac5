#!/usr/bin/env bash
# Applies driftwood's Kubernetes objects to a real API server (scripts/kube.sh: etcd,
# kube-apiserver and kube-scheduler v1.32.13, KWOK), with strict server-side field validation:
#   1. the vendored CRDs (k8s/crds/), established before anything uses them;
#   2. every overlay (k8s/overlays/*), applied for real, each into its own namespace;
#   3. the chart (charts/driftwood), with its defaults and each overlay's twin: checked by a
#      server-side dry run, then installed for real by `helm install` into a namespace of its own;
#   4. mistakes, which the server must refuse: an unknown field in the Deployment and in the
#      ScaledObject (its CRD's schema), a Deployment whose selector misses its Pods' labels;
#   5. Pods made from the applied Deployments' templates (the dev overlay's and the chart's; no
#      controller-manager runs to make them), which the scheduler must place on a KWOK node
#      and KWOK mark Running.
# Prints the objects the server holds. Needs kubectl (KUBECTL, else the deployment tools' venv)
# and Helm (scripts/helm.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

python=$(scripts/py-env.sh tests/k8s/requirements.txt)
KUBECTL=${KUBECTL:-$(dirname "$python")/kubectl}
export KUBECTL
helm=$(scripts/helm.sh)

own_instance kube KUBE_STATE_DIR
started=$(date +%s%N)
kubeconfig=$(scripts/kube.sh start)
echo "== API server ready in $(( ($(date +%s%N) - started) / 1000000 )) ms"
export KUBECONFIG=$kubeconfig KUBE_FEATURE_WatchListClient=false
k() { "$KUBECTL" "$@"; }
apply() { k apply --server-side --field-manager driftwood-check --validate=strict "$@"; }
scratch=$(mktemp -d "${TMPDIR:-/tmp}/driftwood-kube.XXXXXX")
at_exit "rm -rf '$scratch'"

echo "== CRDs"
apply -f k8s/crds/ >/dev/null
k wait --for condition=Established --timeout 60s crd --all

echo "== overlays"
for overlay in k8s/overlays/*/; do
  apply -k "$overlay"
done

echo "== chart"
k create namespace driftwood-chart >/dev/null
for values in charts/driftwood/values.yaml charts/driftwood/ci/*-values.yaml; do
  "$helm" template driftwood charts/driftwood --namespace driftwood-chart -f "$values" 2>/dev/null |
    apply --dry-run=server -f - >/dev/null || die "the API server refused the chart with $values"
  echo "$values: accepted (server-side dry run)"
done
"$helm" install driftwood charts/driftwood --namespace driftwood-chart \
  -f charts/driftwood/ci/prod-values.yaml 2>&1 | grep -v "symbolic link"

echo "== mistakes the server must refuse"
k kustomize k8s/overlays/dev >"$scratch/dev.yaml"
# refused FILE WHAT EXPECTED: the server must refuse FILE, saying EXPECTED.
refused() {
  local file=$1 what=$2 expected=$3 out
  if out=$(apply --dry-run=server -f "$file" 2>&1); then
    die "the API server accepted $what"
  fi
  grep -q -- "$expected" <<<"$out" || die "refused $what, but not for the reason expected ($expected): $out"
  echo "refused: $what"
}
mutate() {
  "$python" - "$scratch/dev.yaml" "$1" >"$scratch/$2.yaml" <<'EOF'
import sys, yaml
docs = list(yaml.safe_load_all(open(sys.argv[1])))
kind, path, value = sys.argv[2].split(":", 2)
for doc in docs:
    if doc and doc["kind"] == kind:
        # A path like a JSON pointer's: "/" separates keys, "~1" is a "/" inside one.
        *parents, last = [key.replace("~1", "/") for key in path.split("/")]
        node = doc
        for key in parents:
            node = node[int(key)] if key.isdigit() else node[key]
        node[last] = yaml.safe_load(value)
yaml.safe_dump_all(docs, sys.stdout)
EOF
}
mutate "Deployment:spec/template/spec/containers/0/resource:{}" unknown-field
refused "$scratch/unknown-field.yaml" "a Deployment with an unknown field" 'containers\[name="driftwood"\].resource: field not declared in schema'
mutate "ScaledObject:spec/maxReplicas:2" unknown-crd-field
refused "$scratch/unknown-crd-field.yaml" "a ScaledObject with an unknown field" 'spec.maxReplicas: field not declared in schema'
mutate "Deployment:spec/selector/matchLabels/app.kubernetes.io~1name:other" selector
refused "$scratch/selector.yaml" "a Deployment whose selector misses its Pods" 'selector.*does not match template'

echo "== a Pod from the Deployment's template, on a KWOK node"
k apply -f - >/dev/null <<'EOF'
apiVersion: v1
kind: Node
metadata:
  name: kwok-node-0
  annotations:
    kwok.x-k8s.io/node: fake
  labels:
    kubernetes.io/hostname: kwok-node-0
    topology.kubernetes.io/zone: zone-a
    type: kwok
EOF
node_ready() {
  [ "$(k get node kwok-node-0 -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}')" = True ]
}
poll 30 1 node_ready || die "KWOK did not make kwok-node-0 Ready in 30 s: $KUBE_STATE_DIR/kwok.log"
# The node lifecycle controller (controller-manager) would lift the taint the API server puts
# on a new node once the node is Ready.
k taint node kwok-node-0 node.kubernetes.io/not-ready:NoSchedule- >/dev/null
# One from the dev overlay's Deployment, one from the chart's (installed with the prod twin).
for namespace in driftwood-dev driftwood-chart; do
  # The ServiceAccount controller (controller-manager) would have made it.
  k -n "$namespace" create serviceaccount default >/dev/null
  k -n "$namespace" get deployment driftwood -o json | "$python" -c '
import json, sys
template = json.load(sys.stdin)["spec"]["template"]
pod = {"apiVersion": "v1", "kind": "Pod",
       "metadata": {"name": "driftwood-from-template", "labels": template["metadata"]["labels"],
                    "annotations": template["metadata"].get("annotations", {})},
       "spec": template["spec"]}
json.dump(pod, sys.stdout)' | apply -n "$namespace" -f - >/dev/null
  pod_running() {
    [ "$(k -n "$namespace" get pod driftwood-from-template -o jsonpath='{.spec.nodeName}/{.status.phase}')" = kwok-node-0/Running ]
  }
  poll 60 1 pod_running ||
    die "the Pod was not Running on kwok-node-0 in 60 s: $(k -n "$namespace" describe pod driftwood-from-template)"
  k -n "$namespace" get pod driftwood-from-template -o wide --no-headers
done

echo "== what the API server holds"
k get deployment,service,configmap,poddisruptionbudget,networkpolicy,scaledobject,triggerauthentication,servicemonitor,prometheusrule,externalsecret \
  --all-namespaces --no-headers -o custom-columns=NAMESPACE:.metadata.namespace,KIND:.kind,NAME:.metadata.name |
  grep '^driftwood' | sort
echo "kubernetes objects ok"
