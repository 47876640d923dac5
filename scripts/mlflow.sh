#!/usr/bin/env bash
# An MLflow tracking server with its Model Registry on 127.0.0.1, from PyPI (the version
# pinned in tests/mlflow/requirements.txt, in a venv made once by scripts/py-env.sh): a
# SQLite backend store and a local artifact store, served through the server's artifact
# proxy (mlflow-artifacts:), as a team's MLflow is.
#
#   scripts/mlflow.sh install        make the venv (once; in the cache)
#   scripts/mlflow.sh start [PORT]   start it on PORT (5000); prints its URL once it answers
#   scripts/mlflow.sh stop           SIGTERM to the server of `start`, and wait for it to exit
#   scripts/mlflow.sh python         the venv's interpreter (with the mlflow client)
#
# MLFLOW_STATE_DIR (default .mlflow) holds its pid, log, database and artifacts.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

state="${MLFLOW_STATE_DIR:-.mlflow}"

# answers URL: whether the server answers (2 s at most); dies when it has exited.
answers() {
  alive "$state/pid" || die "the MLflow server exited: $(tail -5 "$state/mlflow.log" 2>/dev/null)"
  curl -fsS -m 2 "$1/health" >/dev/null 2>&1
}

case "${1:-}" in
  start)
    python=$(scripts/py-env.sh tests/mlflow/requirements.txt)
    port=${2:-5000}
    mkdir -p "$state/artifacts"
    alive "$state/pid" && die "an MLflow server already runs from $state (pid $(cat "$state/pid"))"
    root=$(cd "$state" && pwd)
    # No telemetry from a test's server (MLflow 3 sends it by default).
    spawn "$state/pid" "$state/mlflow.log" env MLFLOW_DISABLE_TELEMETRY=true \
      "$(dirname "$python")/mlflow" server \
      --host 127.0.0.1 --port "$port" --workers 1 \
      --backend-store-uri "sqlite:///$root/mlflow.db" \
      --artifacts-destination "$root/artifacts" --serve-artifacts
    url="http://127.0.0.1:$port"
    poll 1200 0.1 answers "$url" || die "no MLflow server answering at $url after 120 s; log in $state/mlflow.log"
    echo "$url" ;;
  install) scripts/py-env.sh tests/mlflow/requirements.txt >/dev/null ;;
  stop) stop_pidfile "$state/pid" TERM 300 ;;
  python) scripts/py-env.sh tests/mlflow/requirements.txt ;;
  *) sed -n '2,13p' "$0" >&2; exit 2 ;;
esac
