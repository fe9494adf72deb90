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
METRICS_TOKEN = "heara-metrics-token"  # server A's /metrics token (server B's /metrics is open)
METRICS_AUTH = {"Authorization": f"Bearer {METRICS_TOKEN}"}


def register_champion(model_dir: Path, tracking_uri: str, artifacts: Path) -> tuple[int, str]:
    """Log the folder as the pyfunc model of a run, register it and give it the champion alias."""
    from mlflow import MlflowClient

    from training.errors import NoChampionError
    from training.registry.aliases import CHAMPION, model_name, register_folder
    from training.registry.champion import from_registry

    metrics = {"test_macro_f1": 0.42, "test_accuracy": 0.5, "best_val_macro_f1": 0.4, "loss": 1.0}
    version, run_id = register_folder(model_dir, tracking_uri, artifacts, metrics=metrics, champion=False)
    with pytest.raises(NoChampionError, match="no version with the alias 'champion'"):
        from_registry("danger")  # registered as challenger only: nothing to serve yet
    MlflowClient(tracking_uri).set_registered_model_alias(model_name("danger"), CHAMPION, str(version))
    return version, run_id
