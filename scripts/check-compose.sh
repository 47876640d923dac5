#!/usr/bin/env bash
# Validates docker-compose.yml with Docker Compose v5 itself (`docker compose config`): the
# file's schema, interpolation, depends_on conditions, ports and volumes, as `docker compose
# up` would read them (nothing is started: no image can be pulled here). Compose is built
# from the Go module proxy once, into the cache (about 70 s). Needs Go 1.26+.
set -euo pipefail
cd "$(dirname "$0")/.."

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
trap 'rm -f "$broken"' EXIT
sed 's/condition: service_healthy/condition: service_happy/' docker-compose.yml > "$broken"
if "$compose" -f "$broken" --project-directory . config --quiet 2>/dev/null; then
  echo "check-compose.sh: a wrong depends_on condition passed" >&2
  exit 1
fi
