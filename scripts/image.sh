#!/usr/bin/env bash
# Builds driftwood's image from the Dockerfile users build, and runs it the way a cluster
# does, against a Kafka broker (KAFKA_BOOTSTRAP_SERVERS): as its unprivileged user, with a
# read-only root filesystem. Checks `run --check-config`, /ready turning 200, records scored,
# the HEALTHCHECK reporting healthy, and SIGTERM handled within the grace; prints the image
# size and the start-up time (the container's start to /ready 200).
#
#   scripts/image.sh [BINARY]   BINARY: the driftwood binary to put in the image
#                               (default target/debug/driftwood, stripped)
#
# No container registry is reachable here, so the Debian base comes from Debian's mirror
# (mmdebstrap, cached in ~/.cache/driftwood/images) and the binary is built outside
# (--build-arg BINARY=prebuilt; the Dockerfile says how the two paths differ). buildah and
# podman come from Debian, installed with apt-get when missing (as root).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

binary=${1:-target/debug/driftwood}
: "${KAFKA_BOOTSTRAP_SERVERS:?set KAFKA_BOOTSTRAP_SERVERS to a broker the container can reach (host network)}"
[ "$(id -u)" -eq 0 ] || die "image.sh runs buildah and podman as root"

if ! command -v buildah >/dev/null || ! command -v podman >/dev/null || ! command -v mmdebstrap >/dev/null; then
  apt_install "buildah, podman or mmdebstrap not found; install them" \
    buildah podman mmdebstrap crun uidmap fuse-overlayfs runc
fi
# runc, and limits crun cannot set on this kernel's hybrid cgroups.
conf="${XDG_CACHE_HOME:-$HOME/.cache}/driftwood/containers.conf"
mkdir -p "$(dirname "$conf")"
printf '[containers]\ndefault_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]\n[engine]\nruntime = "runc"\n' > "$conf"
export CONTAINERS_CONF=$conf
# Without systemd, podman cannot set health-check timers and says so at every call; the
# health check itself is run below.
podman() { command podman --log-level=fatal "$@"; }

base=docker.io/library/debian:bookworm-slim
if ! podman image exists "$base"; then
  podman import --change 'CMD ["bash"]' "$(debian_base_tar)" "$base" >/dev/null
fi

mkdir -p prebuilt
cp "$binary" prebuilt/driftwood
strip --strip-debug prebuilt/driftwood
started=$(date +%s%N)
buildah build --isolation chroot --format docker --build-arg BINARY=prebuilt -t driftwood:test . >/dev/null
echo "image built in $(( ($(date +%s%N) - started) / 1000000 )) ms: $(podman image inspect --format '{{.Size}}' driftwood:test) bytes"

run=(podman run --rm --network host --read-only -e "DRIFTWOOD_BOOTSTRAP_SERVERS=$KAFKA_BOOTSTRAP_SERVERS")
"${run[@]}" driftwood:test run --check-config >/dev/null
[ "$(podman run --rm driftwood:test --version >/dev/null && podman image inspect --format '{{.Config.User}}' driftwood:test)" = 10001 ] \
  || die "the image does not run as user 10001"
echo "check-config ok, user 10001"

port=$(free_port)
topic="image-$(date +%s)-$$"
name="driftwood-image-test-$$"
trap 'podman rm -f "$name" >/dev/null 2>&1 || true' EXIT
started=$(date +%s%N)
podman run -d --name "$name" --network host --read-only \
  -e "DRIFTWOOD_BOOTSTRAP_SERVERS=$KAFKA_BOOTSTRAP_SERVERS" -e "DRIFTWOOD_HTTP_ADDR=127.0.0.1:$port" \
  -e "DRIFTWOOD_INPUT_TOPIC=$topic" -e "DRIFTWOOD_GROUP_ID=$topic" -e DRIFTWOOD_CREATE_TOPICS=true \
  driftwood:test >/dev/null
until [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/ready")" = 200 ]; do
  [ "$(podman inspect --format '{{.State.Running}}' "$name")" = true ] || { podman logs "$name" | tail -20 >&2; die "the container stopped"; }
  [ $(( ($(date +%s%N) - started) / 1000000000 )) -lt 60 ] || die "not ready within 60 s"
  sleep 0.2
done
echo "ready in $(( ($(date +%s%N) - started) / 1000000 )) ms from the container's start"

"$binary" produce --bootstrap-servers "$KAFKA_BOOTSTRAP_SERVERS" --topic "$topic" --count 1000 >/dev/null
until curl -s "http://127.0.0.1:$port/metrics" | grep -q '^driftwood_records_total{outcome="scored"} 1000$'; do
  [ $(( ($(date +%s%N) - started) / 1000000000 )) -lt 120 ] || die "1000 records not scored within 120 s"
  sleep 0.2
done
echo "1000 records scored"

podman healthcheck run "$name" >/dev/null || die "the HEALTHCHECK says unhealthy"
echo "HEALTHCHECK healthy"

stopped=$(date +%s%N)
podman stop -t 30 "$name" >/dev/null
code=$(podman inspect --format '{{.State.ExitCode}}' "$name")
echo "SIGTERM: exit $code after $(( ($(date +%s%N) - stopped) / 1000000 )) ms (grace 20 s)"
[ "$code" = 0 ] || { podman logs "$name" | tail -20 >&2; die "exit $code on SIGTERM"; }
podman rm "$name" >/dev/null
podman image prune -f >/dev/null
echo "image ok"
