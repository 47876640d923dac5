#!/usr/bin/env bash
# Validates docker-compose.yml with Docker Compose v5 itself (`docker compose config`): the
# file's schema, interpolation, depends_on conditions, ports and volumes, as `docker compose
# up` would read them; then runs what of it can run here in the Docker engine DOCKER_HOST
# names (scripts/docker.sh builds the images: no registry can be pulled from). Compose is
# built from the Go module proxy once, into the cache (about 70 s). Needs Go 1.26+.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

version=v5.6.0
compose="${XDG_CACHE_HOME:-$HOME/.cache}/driftwood/tools/docker-compose-$version"
if [ ! -x "$compose" ]; then
  command -v go >/dev/null || { echo "check-compose.sh: go not found (Compose is built with it)" >&2; exit 1; }
  echo "building Docker Compose $version from the Go module proxy into $compose…" >&2
  src="$(dirname "$compose")/compose-src"
  rm -rf "$src" && mkdir -p "$src"
  (cd "$src" && go mod init driftwood-tools-compose >/dev/null 2>&1 \
    && go get "github.com/docker/compose/v5/cmd@$version" >/dev/null 2>&1 \
    && go build -o "$compose.part" github.com/docker/compose/v5/cmd) \
    || { echo "check-compose.sh: building Compose failed" >&2; exit 1; }
  mv "$compose.part" "$compose"
fi
"$compose" version
"$compose" -f docker-compose.yml config --quiet
echo "docker-compose.yml: $("$compose" -f docker-compose.yml config --services | wc -l) services, valid"
# The check can fail: a depends_on condition Compose does not know, in a copy.
broken=$(mktemp "${TMPDIR:-/tmp}/driftwood-compose.XXXXXX.yml")
at_exit "rm -f '$broken'"
sed 's/condition: service_healthy/condition: service_happy/' docker-compose.yml > "$broken"
if "$compose" -f "$broken" --project-directory . config --quiet 2>/dev/null; then
  echo "check-compose.sh: a wrong depends_on condition passed" >&2
  exit 1
fi

# Then the stack runs, as far as images can be built here (scripts/docker.sh): Kafka, the
# schema registry, driftwood and the producer; Prometheus and Grafana have no image here. The
# producer starts once driftwood's HEALTHCHECK says healthy, registers the feature schema and
# frames records with its id; driftwood must score them and dead-letter the corrupt ones,
# and stop with exit 0 on SIGTERM.
: "${DOCKER_HOST:?running the stack needs a Docker engine: DOCKER_HOST=\$(scripts/docker.sh start)}"
for image in kafka-image registry-image driftwood-image; do scripts/docker.sh "$image" >/dev/null; done
project="driftwood-check-$$"
dc=("$compose" -f docker-compose.yml -f tests/compose/here.yml -p "$project")
at_exit "${dc[*]} down --volumes --timeout 30 >/dev/null 2>&1"
started=$(date +%s%N)
"${dc[@]}" up --detach --no-build --quiet-pull kafka schema-registry driftwood producer 2>&1 | grep -v '^ ' || true
elapsed() { echo $(( ($(date +%s%N) - started) / 1000000 )); }
container() { "${dc[@]}" ps --all --quiet "$1"; }
state() { /usr/bin/docker inspect -f "$1" "$(container "$2")" 2>/dev/null; }
healthy() {
  [ "$(state '{{.State.Status}}' kafka)" != exited ] || die "kafka exited: $("${dc[@]}" logs --tail 20 kafka)"
  [ "$(state '{{if .State.Health}}{{.State.Health.Status}}{{end}}' driftwood)" = healthy ]
}
poll 120 1 healthy || die "driftwood was not healthy in 120 s: $("${dc[@]}" logs --tail 20 driftwood)"
echo "driftwood healthy $(elapsed) ms after \`up\`"
ip=$(state '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' driftwood)
sample() { curl -s "http://$ip:9090/metrics" | sed -n "s/^driftwood_records_total{outcome=\"$1\"} //p"; }
scoring() { [ "$(sample scored)" -ge 3000 ] 2>/dev/null && [ "$(sample dead_lettered)" -ge 1 ] 2>/dev/null; }
poll 120 1 scoring || die "driftwood did not score 3,000 records and dead-letter one in 120 s: $("${dc[@]}" logs --tail 20)"
echo "scored $(sample scored), dead-lettered $(sample dead_lettered) $(elapsed) ms after \`up\` (the producer writes 1,000 a second)"
"${dc[@]}" stop --timeout 30 driftwood >/dev/null 2>&1
[ "$(state '{{.State.ExitCode}}' driftwood)" = 0 ] || die "driftwood exited $(state '{{.State.ExitCode}}' driftwood) on SIGTERM"
echo "driftwood stopped by SIGTERM with exit 0; compose ran kafka, schema-registry, driftwood and producer"
