#!/usr/bin/env bash
# Checks the Grafana dashboard (monitoring/grafana/driftwood.json) with Grafana's own types:
# tests/grafana (grafana-foundation-sdk, built from the Go module proxy once, into the
# cache) unmarshals it strictly, letting through only the required fields Grafana fills by
# default (listed there), and validates it; a copy with a misspelt key must fail the same
# check. Then every panel's PromQL is parsed by promtool, written as a recording rule
# ($__rate_interval and $job substituted). Runs after scripts/promtool.sh, which installs
# promtool. Needs Go 1.26+.
set -euo pipefail
cd "$(dirname "$0")/.."

dashboard=monitoring/grafana/driftwood.json
sources=$(cat tests/grafana/go.mod tests/grafana/go.sum tests/grafana/main.go | sha256sum | cut -c1-12)
check="${XDG_CACHE_HOME:-$HOME/.cache}/driftwood/tools/dashboard-check-$sources"
if [ ! -x "$check" ]; then
  command -v go >/dev/null || { echo "check-dashboard.sh: go not found (the check is built with it)" >&2; exit 1; }
  echo "building the dashboard check (grafana-foundation-sdk) from the Go module proxy…" >&2
  mkdir -p "$(dirname "$check")"
  (cd tests/grafana && go build -o "$check.part" .)
  mv "$check.part" "$check"
fi

scratch=$(mktemp -d "${TMPDIR:-/tmp}/driftwood-dashboard.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
"$check" "$dashboard"
# The check can fail: a misspelt key in a copy.
python3 - "$dashboard" "$scratch/misspelt.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
d["panels"][0]["gridPoss"] = d["panels"][0].pop("gridPos")
json.dump(d, open(sys.argv[2], "w"))
PY
if "$check" "$scratch/misspelt.json" 2>/dev/null; then
  echo "check-dashboard.sh: a misspelt key passed the strict check" >&2
  exit 1
fi

# Every panel's query, parsed by promtool as a recording rule (JSON is YAML).
python3 - "$dashboard" "$scratch/panels.rules.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
rules = []
for panel in d["panels"]:
    for target in panel.get("targets", []):
        expr = target["expr"].replace("$__rate_interval", "5m").replace("$job", "driftwood")
        rules.append({"record": f"panel_{panel['id']}_{target['refId']}", "expr": expr})
json.dump({"groups": [{"name": "dashboard panels", "rules": rules}]}, open(sys.argv[2], "w"))
print(f"{len(rules)} panel queries")
PY
promtool check rules "$scratch/panels.rules.json"
