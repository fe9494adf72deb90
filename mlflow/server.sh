#!/usr/bin/env bash
# The MLflow tracking server. Not a Python package (an __init__.py here would shadow `mlflow`).
#   local (default): SQLite in $HEARA_HOME/mlflow, artifacts served by the server
#   production:      MLFLOW_BACKEND_STORE_URI=postgresql://... MLFLOW_ARTIFACTS_DESTINATION=s3://...
set -euo pipefail
: "${HEARA_HOME:=$(cd "$(dirname "$0")/.." && pwd)/.heara}"
mkdir -p "$HEARA_HOME/mlflow"
BACKEND="${MLFLOW_BACKEND_STORE_URI:-sqlite:///$HEARA_HOME/mlflow/mlflow.db}"
ARTIFACTS="${MLFLOW_ARTIFACTS_DESTINATION:-$HEARA_HOME/mlflow/served-artifacts}"
exec mlflow server \
  --backend-store-uri "$BACKEND" \
  --artifacts-destination "$ARTIFACTS" \
  --serve-artifacts \
  --host "${MLFLOW_HOST:-127.0.0.1}" --port "${MLFLOW_PORT:-5000}" \
  --workers "${MLFLOW_WORKERS:-2}" "$@"
