#!/usr/bin/env bash
# A Docker engine for testcontainers (tests/integration/kafka_container.rs) and for running
# docker-compose.yml (scripts/check-compose.sh): Debian's dockerd, with the images they start
# built here (no registry is reachable), under the names they ask for.
#
#   scripts/docker.sh install       install docker.io with apt-get when dockerd is missing
#   scripts/docker.sh start         run dockerd on a socket of its own; prints DOCKER_HOST
#                                   once it answers
#   scripts/docker.sh kafka-image   build apache/kafka:4.4.0 unless the engine has it
#                                   (tests/images/kafka: Kafka's jars as scripts/kafka.sh
#                                   installs them, a Java runtime made by jlink); prints its name
#   scripts/docker.sh registry-image
#                                   the same for apicurio/apicurio-registry-mem:2.4.2.Final
#                                   (tests/images/apicurio, from scripts/registry.sh's build)
#   scripts/docker.sh driftwood-image [BINARY]
#                                   build driftwood:latest from the Dockerfile, with BINARY
#                                   (default target/debug/driftwood) built outside
#   scripts/docker.sh stop          SIGTERM dockerd, wait for it to exit
#
# DOCKER_STATE_DIR (default .docker-test) holds the socket, pid, log and exec root. Images
# live in ${XDG_CACHE_HOME:-~/.cache}/driftwood/docker, kept between runs.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

state=$(realpath -m "${DOCKER_STATE_DIR:-.docker-test}")
data="${XDG_CACHE_HOME:-$HOME/.cache}/driftwood/docker"
socket="unix://$state/docker.sock"
# The images are built in the engine DOCKER_HOST names, else in the one started here.
export DOCKER_HOST=${DOCKER_HOST:-$socket}
# Debian's client, which matches its engine.
docker() { /usr/bin/docker "$@"; }

install() {
  command -v dockerd >/dev/null && [ -x /usr/bin/docker ] && return
  apt_install "dockerd is not installed; install Docker (Debian: docker.io)" docker.io
}

start() {
  install
  mkdir -p "$state" "$data"
  alive "$state/dockerd.pid" && die "a dockerd runs in $state already"
  # Its own pid file: the engine writes one too, at --pidfile.
  spawn "$state/dockerd.pid" "$state/dockerd.log" dockerd --data-root "$data" \
    --exec-root "$state/exec" --pidfile "$state/engine.pid" --host "$socket"
  DOCKER_HOST=$socket poll 60 0.5 answers || die "dockerd did not answer in 30 s: $state/dockerd.log"
  echo "$socket"
}

answers() {
  alive "$state/dockerd.pid" || die "dockerd exited: $(tail -5 "$state/dockerd.log")"
  docker version >/dev/null 2>&1
}

# build TAG DIR FILL: builds TAG from DIR's Dockerfile and files unless the engine holds one
# built from them as they are now (a label keeps their hash); FILL CONTEXT first adds what the
# Dockerfile copies from this machine. Prints TAG.
build() {
  local tag=$1 dir=$2 fill=$3 hash context
  hash=$(cat "$dir"/* | sha256sum | cut -c1-16)
  if [ "$(docker image inspect -f '{{index .Config.Labels "driftwood.source"}}' "$tag" 2>/dev/null)" = "$hash" ]; then
    echo "$tag"
    return
  fi
  context=$(mktemp -d "${TMPDIR:-/tmp}/driftwood-image.XXXXXX")
  at_exit "rm -rf '$context'"
  docker image inspect debian:bookworm-slim >/dev/null 2>&1 ||
    docker import --change 'CMD ["bash"]' "$(debian_base_tar)" debian:bookworm-slim >/dev/null
  cp "$dir"/* "$context/"
  "$fill" "$context"
  echo "building $tag…" >&2
  DOCKER_BUILDKIT=0 docker build -q --label "driftwood.source=$hash" -t "$tag" "$context" >/dev/null ||
    die "building $tag failed"
  # The image this one replaces, if any, is left untagged: gone.
  docker image prune --force >/dev/null
  echo "$tag"
}

# java_runtime DIR: a Java runtime of every module the machine's JDK has, made by jlink.
java_runtime() {
  local java_home
  java_home=$(dirname "$(dirname "$(readlink -f "$(command -v java)")")")
  [ -d "$java_home/jmods" ] || die "$java_home has no jmods: jlink needs a full JDK (Debian: openjdk-17-jdk-headless)"
  "$java_home/bin/jlink" --module-path "$java_home/jmods" --add-modules ALL-MODULE-PATH \
    --strip-debug --no-man-pages --no-header-files --output "$1" 2>/dev/null || die "jlink failed"
}

# Apache Kafka: the jars scripts/kafka.sh installs and its probe (compose's healthcheck).
kafka_files() {
  scripts/kafka.sh install >/dev/null
  local kafka="${XDG_CACHE_HOME:-$HOME/.cache}/driftwood/kafka-4.4.0"
  cp -r "$kafka/lib" "$1/libs" && cp -r "$kafka/classes" "$1/classes"
  java_runtime "$1/java"
}

# Apicurio Registry: what scripts/registry.sh builds from Maven Central.
registry_files() {
  scripts/registry.sh install >/dev/null
  local target
  target="${XDG_CACHE_HOME:-$HOME/.cache}/driftwood/apicurio-registry-$(scripts/registry.sh version)/build/target"
  cp "$target"/apicurio-registry-*-runner.jar "$1/registry.jar" && cp -r "$target/lib" "$1/lib"
  java_runtime "$1/java"
}

# driftwood: the Dockerfile users build, with the binary built outside (BINARY=prebuilt, as
# scripts/image.sh does), BINARY the binary (default target/debug/driftwood). The `# syntax`
# line is left out: BuildKit would pull the frontend it names.
driftwood_image() {
  local binary=${1:-target/debug/driftwood}
  mkdir -p prebuilt && cp "$binary" prebuilt/driftwood && strip --strip-debug prebuilt/driftwood
  echo "building driftwood:latest…" >&2
  sed '/^# syntax=/d' Dockerfile | DOCKER_BUILDKIT=1 docker build -q --build-arg BINARY=prebuilt \
    -t driftwood:latest -f - . >/dev/null || die "building driftwood:latest failed"
  echo driftwood:latest
}

stop() {
  stop_pidfile "$state/dockerd.pid" TERM 150 "dockerd did not stop in 15 s; killing it"
}

case "${1:-}" in
  install) install ;;
  start) start ;;
  kafka-image) build apache/kafka:4.4.0 tests/images/kafka kafka_files ;;
  registry-image) build apicurio/apicurio-registry-mem:2.4.2.Final tests/images/apicurio registry_files ;;
  driftwood-image) driftwood_image "${2:-}" ;;
  stop) stop ;;
  *) echo "usage: scripts/docker.sh install|start|kafka-image|registry-image|driftwood-image [BINARY]|stop" >&2; exit 2 ;;
esac
