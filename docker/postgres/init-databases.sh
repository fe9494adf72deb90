#!/usr/bin/env bash
# Runs once, when the postgres container starts on an empty data volume (docker-entrypoint-initdb.d):
# one database per component, each owned by its own role, so that a leaked service password
# exposes one database only and each can be dumped and restored on its own (docs/deploy.md).
#   airflow      Airflow's metadata and Celery results   AIRFLOW_DB_PASSWORD
#   mlflow       MLflow's tracking store and registry    MLFLOW_DB_PASSWORD
#   mlflow_auth  MLflow's users and permissions (owner mlflow)
#   predictions  the service's prediction log            PREDICTIONS_DB_PASSWORD
# Passwords are passed as psql variables (:'name' quotes them), never spliced into SQL text.
set -euo pipefail

: "${AIRFLOW_DB_PASSWORD:?}" "${MLFLOW_DB_PASSWORD:?}" "${PREDICTIONS_DB_PASSWORD:?}"

psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
  -v airflow_pw="$AIRFLOW_DB_PASSWORD" -v mlflow_pw="$MLFLOW_DB_PASSWORD" \
  -v predictions_pw="$PREDICTIONS_DB_PASSWORD" <<'SQL'
CREATE ROLE airflow LOGIN PASSWORD :'airflow_pw';
CREATE ROLE mlflow LOGIN PASSWORD :'mlflow_pw';
CREATE ROLE predictions LOGIN PASSWORD :'predictions_pw';
CREATE DATABASE airflow OWNER airflow;
CREATE DATABASE mlflow OWNER mlflow;
CREATE DATABASE mlflow_auth OWNER mlflow;
CREATE DATABASE predictions OWNER predictions;
-- Only the owner (and the superuser) may connect to each database.
REVOKE CONNECT, TEMPORARY ON DATABASE airflow, mlflow, mlflow_auth, predictions FROM PUBLIC;
SQL
echo "init-databases: created airflow, mlflow, mlflow_auth, predictions"
