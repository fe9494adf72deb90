"""MLflow URIs pointed at a second store for a block and put back (the throw-away registry of tests and
`heara bench serve` must never catch later work of the same process)."""

from __future__ import annotations

import os

import mlflow

from training.registry.tracking import using_store


def test_using_store_points_both_uris_there_and_back(monkeypatch, tmp_path) -> None:
    own, other = f"sqlite:///{tmp_path / 'own.db'}", f"sqlite:///{tmp_path / 'other.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", own)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    mlflow.set_tracking_uri(own)
    with using_store(other):
        assert mlflow.get_tracking_uri() == mlflow.get_registry_uri() == other
        assert os.environ["MLFLOW_TRACKING_URI"] == os.environ["MLFLOW_REGISTRY_URI"] == other
    assert mlflow.get_tracking_uri() == mlflow.get_registry_uri() == own
    assert os.environ["MLFLOW_TRACKING_URI"] == own and "MLFLOW_REGISTRY_URI" not in os.environ


def test_using_store_leaves_unset_variables_unset(monkeypatch, tmp_path) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    with using_store(f"sqlite:///{tmp_path / 'other.db'}"):
        pass
    assert "MLFLOW_TRACKING_URI" not in os.environ and "MLFLOW_REGISTRY_URI" not in os.environ
