#!/usr/bin/env bash
# Every Airflow container of the compose stack starts through this script: `airflow.sh CMD...`.
# Where AIRFLOW_ADMIN_PASSWORD is set (the API server), it writes the simple auth manager's
# password file from it, so that the admin's password comes from .env instead of being generated
# and printed to the log. The file is private and rewritten at every start.
set -euo pipefail

if [ -n "${AIRFLOW_ADMIN_PASSWORD:-}" ]; then
  export AIRFLOW_ADMIN_USERNAME="${AIRFLOW_ADMIN_USERNAME:-${AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS%%:*}}"
  file="${AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE:?AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE is not set}"
  (umask 077 && python - "$file" <<'PY'
import json, os, sys
with open(sys.argv[1], "w") as f:
    json.dump({os.environ["AIRFLOW_ADMIN_USERNAME"]: os.environ["AIRFLOW_ADMIN_PASSWORD"]}, f)
PY
  )
  unset AIRFLOW_ADMIN_PASSWORD  # the file is enough; keep it out of the server's environment
fi

exec "$@"
