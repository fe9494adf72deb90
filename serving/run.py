"""Start the service: what `heara serve` calls.

`bentoml serve` restarts a worker whose start-up fails, forever, so a missing champion would only
show as a server that never gets ready. `serve()` therefore resolves the model first (downloading
the champion into the cache, which the worker then reuses) and fails fast with the reason; likewise
for a bad API key file.

It then becomes `bentoml serve` run by serving.supervisor: the process manager's control endpoint
private, secrets moved out of every environment into files, a metrics folder per instance, workers
that stop when it dies.
"""

from __future__ import annotations

import logging
import os
import sys

from training.config import load_params
from training.paths import PROJECT_ROOT, state

SERVICE = "serving.service:HearaService"
log = logging.getLogger("heara.serve")


def serve_command(port: int, host: str) -> tuple[list[str], dict[str, str]]:
    """(argv, environment) of `bentoml serve` (through serving.supervisor) for this checkout: BentoML's
    home inside the state folder, usage tracking off."""
    env = {
        **os.environ,
        "BENTOML_HOME": str(state().bentoml),
        "BENTOML_DO_NOT_TRACK": "True",
        "MLFLOW_DISABLE_TELEMETRY": os.environ.get("MLFLOW_DISABLE_TELEMETRY", "true"),
    }
    argv = [
        sys.executable,
        "-m",
        "serving.supervisor",
        "serve",
        SERVICE,
        "--host",
        host,
        "--port",
        str(port),
        "--working-dir",
        str(PROJECT_ROOT),
        # On SIGTERM requests in flight get this long to finish; then the worker exits even if some
        # still wait (without it, a /readyz that hung while the model loaded held the split front's
        # shutdown for up to serve.timeout_s).
        "--timeout-graceful-shutdown",
        str(load_params().serve.shutdown_grace_s),
    ]
    return argv, env


def serve(port: int, host: str) -> None:
    """Check that there is a model to serve, then replace this process with `bentoml serve`.

    Raises NoChampionError (or FileNotFoundError for a bad HEARA_MODEL_DIR), or ConfigError for a bad
    key file, before starting anything.
    """
    from training import env
    from training.registry.champion import resolve_model

    env.api_key()  # a bad key file fails here, not in each worker's start
    env.metrics_token()

    source = resolve_model(load_params().task)
    log.info(
        "serving %s version %s (%s) on http://%s:%d",
        source.name,
        source.version_label,
        source.uri,
        host,
        port,
    )
    argv, env = serve_command(port, host)
    state().bentoml.mkdir(parents=True, exist_ok=True)
    os.execve(argv[0], argv, env)
