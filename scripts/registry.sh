#!/usr/bin/env bash
# Apicurio Registry (in-memory storage) on 127.0.0.1, built from Maven Central jars with
# Quarkus' build (scripts/registry/pom.xml says how); Java 17+ and Maven. It serves the
# Confluent-compatible Schema Registry API under /apis/ccompat/v7.
#
#   scripts/registry.sh install        fetch and build it into the cache (once; no network after)
#   scripts/registry.sh start [PORT]   start it on PORT (8081); prints the Confluent-compatible
#                                      URL once it answers
#   scripts/registry.sh run [PORT]     the same in the foreground (for a harness that owns it)
#   scripts/registry.sh stop           SIGTERM to the registry of `start`, and wait for it to exit
#   scripts/registry.sh version        the pinned version
#
# REGISTRY_STATE_DIR (default .registry) holds its pid and log. Schemas live in memory only:
# a restarted registry is empty. KAFKA_CACHE_DIR (default ~/.cache/driftwood) holds the build.
set -euo pipefail
cd "$(dirname "$0")/.."

REGISTRY_VERSION=$(sed -n 's#^  <version>\(.*\)</version>#\1#p' scripts/registry/pom.xml | head -1)
cache="${KAFKA_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/driftwood}/apicurio-registry-$REGISTRY_VERSION"
state="${REGISTRY_STATE_DIR:-.registry}"
runner="$cache/build/target/apicurio-registry-$REGISTRY_VERSION-runner.jar"

die() { echo "registry.sh: $*" >&2; exit 1; }

install() {
  command -v java >/dev/null || die "java not found: Apicurio Registry needs Java 17 or newer"
  if [ -f "$runner" ] && [ ! scripts/registry/pom.xml -nt "$runner" ]; then return 0; fi
  command -v mvn >/dev/null || die "mvn not found: building Apicurio Registry needs Maven (and Java 17+)"
  echo "building Apicurio Registry $REGISTRY_VERSION from Maven Central into $cache…" >&2
  rm -rf "$cache/build" && mkdir -p "$cache/build/src/main/resources"
  cp scripts/registry/pom.xml "$cache/build/pom.xml"
  local app="io.apicurio:apicurio-registry-app:$REGISTRY_VERSION"
  (cd "$cache/build" && mvn -B -q -Dstyle.color=never dependency:copy \
    -Dartifact="$app" -DoutputDirectory="$cache/build/app") >&2 \
    || die "Maven could not fetch $app (see above)"
  # The release's own configuration, and the published app jar indexed as the application.
  unzip -p "$cache/build/app/apicurio-registry-app-$REGISTRY_VERSION.jar" application.properties \
    >"$cache/build/src/main/resources/application.properties"
  cat >>"$cache/build/src/main/resources/application.properties" <<'PROPS'
quarkus.index-dependency.registry.group-id=io.apicurio
quarkus.index-dependency.registry.artifact-id=apicurio-registry-app
PROPS
  (cd "$cache/build" && mvn -B -q -Dstyle.color=never package) >&2 \
    || die "building Apicurio Registry failed (see above)"
  [ -f "$runner" ] || die "the build made no $runner"
}

running() { [ -f "$state/pid" ] && kill -0 "$(cat "$state/pid")" 2>/dev/null; }

command_line() {
  local port=$1
  cmd=(java -Xms64m -Xmx384m -Dquarkus.http.host=127.0.0.1 -Dquarkus.http.port="$port"
    -jar "$runner")
}

# await PORT: until the Confluent-compatible API answers, or the process dies.
await() {
  local port=$1 url="http://127.0.0.1:$1/apis/ccompat/v7"
  for _ in $(seq 1 600); do
    running || die "the registry exited: $(tail -5 "$state/registry.log" 2>/dev/null)"
    if curl -fsS -m 2 "$url/subjects" >/dev/null 2>&1; then echo "$url"; return 0; fi
    sleep 0.1
  done
  die "no registry answering at $url after 60 s; log in $state/registry.log"
}

halt() {
  [ -f "$state/pid" ] || return 0
  local pid
  pid=$(cat "$state/pid")
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$state/pid"
}

case "${1:-}" in
  install)
    install
    echo "Apicurio Registry $REGISTRY_VERSION in $cache" ;;
  start|run)
    install
    port=${2:-8081}
    mkdir -p "$state"
    command_line "$port"
    [ "$1" = run ] && exec "${cmd[@]}"
    running && die "a registry already runs from $state (pid $(cat "$state/pid"))"
    nohup "${cmd[@]}" >"$state/registry.log" 2>&1 &
    echo $! >"$state/pid"
    await "$port" ;;
  stop) halt ;;
  version) echo "$REGISTRY_VERSION" ;;
  *) sed -n '2,15p' "$0" >&2; exit 2 ;;
esac
