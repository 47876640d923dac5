#!/usr/bin/env bash
# A Docker engine for testcontainers (tests/integration/kafka_container.rs): Debian's dockerd,
# with the Apache Kafka image testcontainers starts built locally (no registry is reachable).
#
#   scripts/docker.sh install       install docker.io with apt-get when dockerd is missing
#   scripts/docker.sh start         run dockerd on a socket of its own; prints DOCKER_HOST
#                                   once it answers
#   scripts/docker.sh kafka-image   build apache/kafka:4.4.0 unless the engine has it
#                                   (tests/kafka-image: Kafka's jars as scripts/kafka.sh
#                                   installs them, a Java runtime made by jlink); prints its name
#   scripts/docker.sh stop          SIGTERM dockerd, wait for it to exit
#
# DOCKER_STATE_DIR (default .docker-test) holds the socket, pid, log and exec root. Images
# live in ${XDG_CACHE_HOME:-~/.cache}/driftwood/docker, kept between runs.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

state=$(realpath -m "${DOCKER_STATE_DIR:-.docker-test}")
data="${XDG_CACHE_HOME:-$HOME/.cache}/driftwood/docker"
image=apache/kafka:4.4.0
socket="unix://$state/docker.sock"
# kafka-image builds in the engine DOCKER_HOST names, else in the one started here.
export DOCKER_HOST=${DOCKER_HOST:-$socket}
# Debian's client, which matches its engine.
docker() { /usr/bin/docker "$@"; }

install() {
  command -v dockerd >/dev/null && [ -x /usr/bin/docker ] && return
  need apt-get "dockerd is not installed; install Docker (Debian: docker.io)"
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing Debian's docker.io…" >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y --no-install-recommends docker.io >/dev/null ||
    { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y --no-install-recommends docker.io >/dev/null; }
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

kafka_image() {
  if docker image inspect "$image" >/dev/null 2>&1; then
    echo "$image"
    return
  fi
  scripts/kafka.sh install
  local kafka="${XDG_CACHE_HOME:-$HOME/.cache}/driftwood/kafka-4.4.0" context java_home
  context=$(mktemp -d "${TMPDIR:-/tmp}/driftwood-kafka-image.XXXXXX")
  at_exit "rm -rf '$context'"
  docker image inspect debian:bookworm-slim >/dev/null 2>&1 ||
    docker import --change 'CMD ["bash"]' "$(debian_base_tar)" debian:bookworm-slim >/dev/null
  cp tests/kafka-image/Dockerfile tests/kafka-image/run tests/kafka-image/log4j2.properties "$context/"
  cp -r "$kafka/lib" "$context/libs"
  # A runtime of every module the machine's JDK has (Kafka's tools use several).
  java_home=$(dirname "$(dirname "$(readlink -f "$(command -v java)")")")
  [ -d "$java_home/jmods" ] || die "$java_home has no jmods: jlink needs a full JDK (Debian: openjdk-17-jdk-headless)"
  "$java_home/bin/jlink" --module-path "$java_home/jmods" --add-modules ALL-MODULE-PATH \
    --strip-debug --no-man-pages --no-header-files --output "$context/java" ||
    die "jlink failed"
  echo "building $image from Kafka's jars and the machine's JDK…" >&2
  DOCKER_BUILDKIT=0 docker build -q -t "$image" "$context" >/dev/null || die "building $image failed"
  echo "$image"
}

stop() {
  stop_pidfile "$state/dockerd.pid" TERM 150 "dockerd did not stop in 15 s; killing it"
}

case "${1:-}" in
  install) install ;;
  start) start ;;
  kafka-image) kafka_image ;;
  stop) stop ;;
  *) echo "usage: scripts/docker.sh install|start|kafka-image|stop" >&2; exit 2 ;;
esac
