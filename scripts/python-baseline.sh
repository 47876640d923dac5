#!/usr/bin/env bash
# The Python stack driftwood replaces (confluent-kafka + fastavro + scikit-learn), measured in
# the same run as `driftwood bench` on the same broker:
#
#   scripts/python-baseline.sh HOST:PORT [RECORDS]     (RECORDS: 200000)
#
# Produces RECORDS feature records with `driftwood produce`. Python scores SINGLE_RECORDS
# (5000) of them one message at a time, then all of them in micro-batches. Then
# `driftwood bench --records RECORDS` runs driftwood's pipeline. Prints records/s and CPU time
# per record (user + system, all threads) of each. Installs the pinned Python packages into
# .venv-baseline on first use.
set -euo pipefail
cd "$(dirname "$0")/.."
bootstrap=${1:?usage: scripts/python-baseline.sh HOST:PORT [RECORDS]}
records=${2:-200000}
single=${SINGLE_RECORDS:-5000}
venv=.venv-baseline
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet -r scripts/python-baseline/requirements.txt
fi
cargo build --release --quiet
driftwood=target/release/driftwood
tag=$(date +%s)
in="baseline-$tag-in" out="baseline-$tag-out"
py() { "$venv/bin/python" scripts/python-baseline/baseline.py --bootstrap-servers "$bootstrap" \
  --input-topic "$in" --output-topic "$out" "$@"; }

py --count 0 --mode create-topics
"$driftwood" produce --bootstrap-servers "$bootstrap" --topic "$in" --count "$records"
echo "python, one message at a time ($single records)…"
single_json=$(py --count "$single" --mode single)
echo "python, micro-batches of up to 1024 ($records records)…"
batch_json=$(py --count "$records" --mode batch)
echo "driftwood bench ($records records)…"
"$driftwood" bench --bootstrap-servers "$bootstrap" --records "$records" \
  --latency-rates 0 --json bench-baseline.json >/dev/null
"$venv/bin/python" - "$single_json" "$batch_json" bench-baseline.json <<'PY'
import json, sys
single, batch = (json.loads(a) for a in sys.argv[1:3])
bench = json.load(open(sys.argv[3]))
ours = bench["pipeline"]
print(f"{'':38}{'records/s':>11}{'× driftwood':>13}{'CPU µs/record':>15}{'× driftwood':>13}")
for name, run in [
    ("python, one message at a time", single),
    ("python, micro-batches of up to 1024", batch),
    ("driftwood run (full pipeline)", ours),
]:
    rate, cpu = run["records_per_second"], run["cpu_us_per_record"]
    print(f"{name:38}{rate:>11,.0f}{ours['records_per_second'] / rate:>12.1f}×"
          f"{cpu:>15.2f}{cpu / ours['cpu_us_per_record']:>12.1f}×")
PY
