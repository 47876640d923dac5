#!/usr/bin/env bash
# Jaeger 2 (an OpenTelemetry Collector distribution with an in-memory trace store and a query
# API), built from the Go module proxy; for driftwood's OTLP export test and for looking at
# traces by hand. Needs Go 1.26+.
#
#   scripts/jaeger.sh install        build the binary into the cache (once, about 3 minutes)
#   scripts/jaeger.sh start [PORT]   run it: OTLP/HTTP on PORT (4318), the query API and UI on
#                                    PORT+1; prints the OTLP endpoint once it is healthy
#   scripts/jaeger.sh query-url      the query API's address of what runs in $JAEGER_STATE_DIR
#   scripts/jaeger.sh stop           SIGTERM, and wait for it to exit
#
# JAEGER_STATE_DIR (default .jaeger) holds its config, log and pid. The binary is cached in
# ${XDG_CACHE_HOME:-~/.cache}/driftwood/tools.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

JAEGER_VERSION=v1.76.0
tools="${XDG_CACHE_HOME:-$HOME/.cache}/driftwood/tools"
binary="$tools/jaeger-$JAEGER_VERSION"
state="${JAEGER_STATE_DIR:-.jaeger}"

install() {
  [ -x "$binary" ] && return
  need go "building Jaeger $JAEGER_VERSION needs Go 1.26+"
  echo "building Jaeger $JAEGER_VERSION from the Go module proxy into $binary…" >&2
  local src="$tools/jaeger-src"
  rm -rf "$src" && mkdir -p "$src"
  (cd "$src" && go mod init driftwood-tools-jaeger >/dev/null 2>&1 \
    && go get -tool "github.com/jaegertracing/jaeger/cmd/jaeger@$JAEGER_VERSION" >/dev/null 2>&1 \
    && go build -o "$binary.part" github.com/jaegertracing/jaeger/cmd/jaeger) \
    || die "building Jaeger failed (see the go output above)"
  mv "$binary.part" "$binary"
}

# Only what the test needs, on ports of our choosing: the defaults (4317, 8888, 16686…) may
# belong to a Jaeger someone runs already.
write_config() {
  local port=$1
  cat <<EOF
service:
  extensions: [jaeger_storage, jaeger_query, healthcheckv2]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [jaeger_storage_exporter]
  telemetry:
    metrics:
      level: none
    logs:
      level: info
extensions:
  jaeger_storage:
    backends:
      memory_store:
        memory:
          max_traces: 100000
  jaeger_query:
    storage:
      traces: memory_store
    http:
      endpoint: 127.0.0.1:$((port + 1))
    grpc:
      endpoint: 127.0.0.1:$((port + 2))
  healthcheckv2:
    use_v2: true
    http:
      endpoint: 127.0.0.1:$((port + 3))
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:$port
processors:
  batch:
    timeout: 200ms
exporters:
  jaeger_storage_exporter:
    trace_storage: memory_store
EOF
}

start() {
  local port=${1:-4318}
  install
  mkdir -p "$state"
  if alive "$state/pid"; then
    die "already running (pid $(cat "$state/pid")); scripts/jaeger.sh stop first"
  fi
  write_config "$port" >"$state/config.yaml"
  echo "$port" >"$state/port"
  spawn "$state/pid" "$state/jaeger.log" "$binary" --config "$state/config.yaml"
  poll 100 0.2 healthy "$port" || die "not healthy after 20 s; see $state/jaeger.log"
  echo "http://127.0.0.1:$port"
}

# healthy PORT: whether the health check and the query API answer; dies when Jaeger has
# exited.
healthy() {
  local port=$1
  if curl -fsS "http://127.0.0.1:$((port + 3))/status" >/dev/null 2>&1 \
    && curl -fsS "http://127.0.0.1:$((port + 1))/api/services" >/dev/null 2>&1; then
    return 0
  fi
  alive "$state/pid" || die "exited at start; see $state/jaeger.log"
  return 1
}

case "${1:-}" in
  install) install ;;
  start) start "${2:-}" ;;
  query-url) echo "http://127.0.0.1:$(( $(cat "$state/port") + 1 ))" ;;
  stop) stop_pidfile "$state/pid" TERM 100 ;;
  *) die "usage: scripts/jaeger.sh install | start [PORT] | query-url | stop" ;;
esac
