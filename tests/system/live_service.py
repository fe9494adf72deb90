"""What the tests over real HTTP share (tests/system/conftest.py starts the servers): the model's
labels, server A's API key, and registering a model folder as the champion of a throw-away registry.

Imported by name (`from live_service import ...`): pytest puts this folder on sys.path for its
conftest and test modules (rootdir-based "prepend" import mode, no __init__.py here).
"""

from __future__ import annotations

from pathlib import Path

import pytest

LABELS = ["normal", "emergency", "confusion", "distress"]
API_KEY = "heara-test-key"
AUTH = {"Authorization": f"Bearer {API_KEY}"}


def register_champion(model_dir: Path, tracking_uri: str, artifacts: Path) -> tuple[int, str]:
    """Log the folder as the pyfunc model of a run, register it and give it the champion alias."""
    import mlflow
    from mlflow import MlflowClient

    from training.errors import NoChampionError
    from training.model.pyfunc import log_pyfunc
    from training.registry.aliases import CHAMPION, model_name, register
    from training.registry.champion import from_registry

    mlflow.set_tracking_uri(tracking_uri)
    exp = mlflow.create_experiment("heara-danger", artifact_location=artifacts.as_uri())
    with mlflow.start_run(experiment_id=exp) as run:
        mlflow.log_metrics(
            {"test_macro_f1": 0.42, "test_accuracy": 0.5, "best_val_macro_f1": 0.4, "loss": 1.0}
        )
        info = log_pyfunc(model_dir, LABELS, ["안녕하세요"])
    client = MlflowClient(tracking_uri)
    version = register(client, model_name("danger"), run.info.run_id, info.model_uri)
    with pytest.raises(NoChampionError, match="no version with the alias 'champion'"):
        from_registry("danger")  # registered as challenger only: nothing to serve yet
    client.set_registered_model_alias(model_name("danger"), CHAMPION, str(version))
    return version, run.info.run_id
