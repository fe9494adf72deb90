#!/usr/bin/env bash
# The MLflow tracking server of the compose stack: mlflow/server.sh (Postgres backend, artifacts
# served through the server) with the basic-auth app. MLflow reads the auth store's URL from an ini
# file (MLFLOW_AUTH_CONFIG_PATH); it holds a password, so it is written here at start, from the
# environment, into a private temporary folder, never committed or baked into the image.
set -euo pipefail

: "${MLFLOW_AUTH_DATABASE_URI:?MLFLOW_AUTH_DATABASE_URI is not set}"
: "${MLFLOW_AUTH_ADMIN_USERNAME:?MLFLOW_AUTH_ADMIN_USERNAME is not set}"
: "${MLFLOW_AUTH_ADMIN_PASSWORD:?MLFLOW_AUTH_ADMIN_PASSWORD is not set}"
: "${MLFLOW_FLASK_SERVER_SECRET_KEY:?MLFLOW_FLASK_SERVER_SECRET_KEY is not set}"

# Empty settings mean "not used" (AWS S3 has no endpoint URL; a local artifact store no keys);
# boto3 and MLflow would take an empty value literally.
for var in MLFLOW_S3_ENDPOINT_URL AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY; do
  [ -n "${!var:-}" ] || unset "$var"
done

auth_dir="$(mktemp -d)"
chmod 700 "$auth_dir"
export MLFLOW_AUTH_CONFIG_PATH="$auth_dir/basic_auth.ini"
# MLflow 3.17 takes the admin user from MLFLOW_AUTH_ADMIN_USERNAME/PASSWORD (the environment wins
# over the file), so only the store and the default permission go into the file.
(umask 077 && cat > "$MLFLOW_AUTH_CONFIG_PATH" <<INI
[mlflow]
default_permission = ${MLFLOW_AUTH_DEFAULT_PERMISSION:-READ}
database_uri = ${MLFLOW_AUTH_DATABASE_URI}
authorization_function = mlflow.server.auth:authenticate_request_basic_auth
INI
)

# With an S3 artifact store behind MinIO, wait for it (compose cannot depend on a profile's service).
if [[ "${MLFLOW_ARTIFACTS_DESTINATION:-}" == s3://* && -n "${MLFLOW_S3_ENDPOINT_URL:-}" ]]; then
  for _ in $(seq 60); do
    curl -fsS -o /dev/null "$MLFLOW_S3_ENDPOINT_URL/minio/health/live" && break
    echo "waiting for the S3 endpoint $MLFLOW_S3_ENDPOINT_URL" >&2
    sleep 2
  done
fi

exec "$(dirname "$0")/../../mlflow/server.sh" --app-name basic-auth "$@"
