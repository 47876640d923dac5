#!/usr/bin/env bash
# A real Kubernetes API server on this machine, for applying driftwood's manifests and chart
# (scripts/check-k8s-server.sh): etcd (Debian's etcd-server), kube-apiserver and
# kube-scheduler v1.32.13 built from the Go module proxy (tests/k8s/apiserver/go.mod), and
# KWOK v0.8.0, which runs fake nodes on which scheduled Pods are marked Running. No
# controller-manager (it does not build from the proxy: k8s.io/endpointslice is refused), so
# a Deployment makes no Pods by itself, and no kubelet runs a container.
#
#   scripts/kube.sh install   build the binaries into the cache (once: about 5 minutes) and
#                             install etcd-server with apt-get when missing
#   scripts/kube.sh start     run the four on free loopback ports; prints the kubeconfig's path
#                             once the API server is ready
#   scripts/kube.sh stop      SIGTERM each, wait for it to exit
#
# KUBE_STATE_DIR (default .kube-test) holds etcd's data, certificates, logs, pids and the
# kubeconfig (a static token in system:masters). Binaries are cached in
# ${XDG_CACHE_HOME:-~/.cache}/driftwood/tools/kube-v1.32.13.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

KUBE_VERSION=v1.32.13
KWOK_VERSION=v0.8.0
tools="${XDG_CACHE_HOME:-$HOME/.cache}/driftwood/tools"
bin="$tools/kube-$KUBE_VERSION"
state=$(realpath -m "${KUBE_STATE_DIR:-.kube-test}")

install_etcd() {
  command -v etcd >/dev/null && return
  apt_install "etcd is not installed; install etcd 3.4+ (Debian: etcd-server)" etcd-server
}

# kube-apiserver and kube-scheduler from one module; KWOK on its own, with its stages (the
# node and pod lifecycles it plays) rendered from its module into the cache, since Go's module
# cache may be wiped.
install() {
  install_etcd
  [ -x "$bin/kwok" ] && return
  need go "building Kubernetes $KUBE_VERSION needs Go 1.26+"
  local src="$tools/kube-src" part="$bin.part"
  rm -rf "$src" "$part" && mkdir -p "$src" "$part"
  cp tests/k8s/apiserver/go.mod tests/k8s/apiserver/go.sum "$src/"
  local v=k8s.io/component-base/version minor=${KUBE_VERSION#v1.}
  local version_flags="-X $v.gitVersion=$KUBE_VERSION -X $v.gitMajor=1 -X $v.gitMinor=${minor%%.*} -X $v.gitTreeState=clean"
  echo "building kube-apiserver and kube-scheduler $KUBE_VERSION from the Go module proxy (about 5 minutes)…" >&2
  for command in kube-apiserver kube-scheduler; do
    # The version it reports (Helm checks a chart's kubeVersion against it); a module build
    # would say v0.0.0-master.
    (cd "$src" && GOFLAGS=-mod=mod go build -trimpath -ldflags "-s -w $version_flags" -o "$part/$command" \
      "k8s.io/kubernetes/cmd/$command") >&2 || die "building $command failed"
  done
  echo "building KWOK $KWOK_VERSION…" >&2
  GOBIN="$part" go install -trimpath -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION" >&2 ||
    die "building KWOK failed"
  local stages
  stages="$(go env GOMODCACHE)/sigs.k8s.io/kwok@$KWOK_VERSION/kustomize/stage"
  { cat "$stages"/node/fast/node-initialize.yaml; for f in pod-ready pod-complete pod-delete; do
      echo "---"; cat "$stages/pod/fast/$f.yaml"; done; } >"$part/stages.yaml"
  rm -rf "$bin" && mv "$part" "$bin"
}

kubeconfig() {
  local port=$1 token=$2
  cat <<EOF
apiVersion: v1
kind: Config
clusters:
  - name: driftwood-test
    cluster:
      server: https://127.0.0.1:$port
      certificate-authority: $state/ca.pem
users:
  - name: admin
    user:
      token: $token
contexts:
  - name: driftwood-test
    context: {cluster: driftwood-test, user: admin}
current-context: driftwood-test
EOF
}

start() {
  install
  mkdir -p "$state"
  alive "$state/apiserver.pid" && die "an API server runs in $state already"
  local etcd_port peer_port api_port scheduler_port kwok_port token
  etcd_port=$(free_port) peer_port=$(free_port) api_port=$(free_port)
  scheduler_port=$(free_port) kwok_port=$(free_port)
  token=$(openssl rand -hex 16)
  (cd "$state" && server_certificate driftwood-kube-ca apiserver >/dev/null 2>&1 &&
    openssl genrsa -out sa.key 2048 2>/dev/null && openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null) ||
    die "making certificates failed"
  echo "$token,admin,admin,system:masters" >"$state/tokens.csv"
  kubeconfig "$api_port" "$token" >"$state/kubeconfig"

  spawn "$state/etcd.pid" "$state/etcd.log" etcd --name driftwood-test --data-dir "$state/etcd" \
    --listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
    --listen-peer-urls "http://127.0.0.1:$peer_port" --initial-advertise-peer-urls "http://127.0.0.1:$peer_port" \
    --initial-cluster "driftwood-test=http://127.0.0.1:$peer_port"
  spawn "$state/apiserver.pid" "$state/apiserver.log" "$bin/kube-apiserver" \
    --etcd-servers "http://127.0.0.1:$etcd_port" --bind-address 127.0.0.1 --advertise-address 127.0.0.1 \
    --secure-port "$api_port" --tls-cert-file "$state/apiserver.pem" --tls-private-key-file "$state/apiserver.key" \
    --token-auth-file "$state/tokens.csv" --authorization-mode Node,RBAC \
    --service-account-issuer https://kubernetes.default.svc --service-account-key-file "$state/sa.pub" \
    --service-account-signing-key-file "$state/sa.key" --service-cluster-ip-range 10.96.0.0/16 \
    --endpoint-reconciler-type none
  poll 120 0.5 ready || die "the API server was not ready in 60 s: $state/apiserver.log"
  spawn "$state/scheduler.pid" "$state/scheduler.log" "$bin/kube-scheduler" \
    --kubeconfig "$state/kubeconfig" --leader-elect=false --bind-address 127.0.0.1 --secure-port "$scheduler_port"
  spawn "$state/kwok.pid" "$state/kwok.log" "$bin/kwok" --kubeconfig "$state/kubeconfig" \
    --config "$bin/stages.yaml" --manage-all-nodes=false \
    --manage-nodes-with-annotation-selector kwok.x-k8s.io/node=fake \
    --server-address "127.0.0.1:$kwok_port" --cidr 10.244.0.0/16 --node-ip 10.0.0.1
  echo "$state/kubeconfig"
}

ready() {
  alive "$state/apiserver.pid" || die "the API server exited: $state/apiserver.log"
  [ "$(KUBE_FEATURE_WatchListClient=false kubectl_any --kubeconfig "$state/kubeconfig" get --raw /readyz 2>/dev/null)" = ok ]
}

# Any kubectl: KUBECTL's, else the one on the PATH.
kubectl_any() { "${KUBECTL:-kubectl}" "$@"; }

stop() {
  for name in kwok scheduler apiserver etcd; do
    stop_pidfile "$state/$name.pid" TERM 100 "$name did not stop in 10 s; killing it"
  done
}

case "${1:-}" in
  install) install ;;
  start) start ;;
  stop) stop ;;
  *) echo "usage: scripts/kube.sh install|start|stop" >&2; exit 2 ;;
esac
