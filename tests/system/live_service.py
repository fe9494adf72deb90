"""What the tests over real HTTP share (tests/system/conftest.py starts the servers): the model's
labels, server A's API key, and registering a model folder as the champion of a throw-away registry.

Imported by name (`from live_service import ...`): pytest puts this folder on sys.path for its
conftest and test modules (rootdir-based "prepend" import mode, no __init__.py here).
"""

from __future__ import annotations

import itertools
import os
from datetime import UTC, datetime, timedelta
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


def review_queue(server, *, emptied: bool = False):
    """The review queue (serving.review_queue) of a live server's prediction database: what
    `heara review select` fills and the server's /review routes read and write. `emptied`: what
    earlier tests left queued is skipped first (by the reviewer `test-drain`)."""
    from serving.review_queue import ReviewQueue
    from training.paths import StatePaths

    queue = ReviewQueue(f"sqlite:///{StatePaths(server.home).prediction_log}")
    while emptied and (row := queue.next_item()) is not None:
        queue.record(row["id"], "skipped", reviewer="test-drain")
    return queue


_PREDICTION_IDS = itertools.count(int.from_bytes(os.urandom(3), "big") * 1000)  # unique per run
REVIEW_SCORES = {"normal": 0.2, "emergency": 0.5, "confusion": 0.2, "distress": 0.1}


def queue_for_review(queue, strata: list[str], texts: list[str] | None = None) -> list[int]:
    """Queue one made-up prediction per stratum (the model said `emergency`, REVIEW_SCORES; predicted a
    second apart, in order), as `heara review select` would; their review ids, in the same order."""
    t0 = datetime.now(UTC) - timedelta(minutes=5)
    texts = texts or [f"[PHONE]로 연락 주세요 {i}" for i in range(len(strata))]
    items = [
        {
            "prediction_id": next(_PREDICTION_IDS),
            "stratum": stratum,
            "model_version": "1",
            "label": "emergency",
            "masked_text": text,
            "raw_text": text.replace("[PHONE]", "010-1234-5678"),
            "scores": REVIEW_SCORES,
            "ts": (t0 + timedelta(seconds=i)).isoformat(),
        }
        for i, (stratum, text) in enumerate(zip(strata, texts, strict=True))
    ]
    assert queue.enqueue(items) == len(items)
    by_prediction = {row["prediction_id"]: row["id"] for row in queue.items(limit=10_000)}
    return [by_prediction[item["prediction_id"]] for item in items]
