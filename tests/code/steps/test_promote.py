"""`heara promote` moves the champion alias only to a version the service can load and that answers a
smoke prediction, `--force` included; a refusal is recorded everywhere a decision is."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from training.config import load_params, parse_overrides
from training.errors import NotServableError

SAMPLE = Path(__file__).resolve().parents[3] / "data" / "sample" / "utterances.csv"


@pytest.fixture
def test_path(tmp_path: Path) -> Path:
    path = tmp_path / "test.parquet"
    pd.read_csv(SAMPLE).groupby("label").head(5).to_parquet(path)
    return path


def _params():
    return load_params(
        overrides=parse_overrides(["promote.bootstrap_samples=100", "promote.latency_budget_ms=5000"])
    )


def _champion() -> int | None:
    from mlflow import MlflowClient

    from training.registry.aliases import CHAMPION, alias_version
    from training.registry.tracking import tracking_uri

    return alias_version(MlflowClient(tracking_uri()), "heara-danger", CHAMPION)


def test_force_does_not_promote_a_version_without_weights(
    registry_home: Path, test_path: Path, register_tiny
) -> None:
    from mlflow import MlflowClient

    from training.registry.audit import AuditLedger
    from training.steps.promote import promote_step

    good, weightless = register_tiny(champion=True), register_tiny(without=("model.safetensors",))
    with pytest.raises(NotServableError, match=rf"version {weightless} .*model\.safetensors"):
        promote_step(_params(), weightless, force=True, test_path=test_path)
    assert _champion() == good
    entry = AuditLedger().entries("heara-danger")[-1]
    assert entry["action"] == "force" and entry["champion_changed"] is False
    assert entry["reason"].startswith("refused: not servable (--force does not override this)")
    tags = MlflowClient().get_model_version("heara-danger", str(weightless)).tags
    assert tags["heara.gate.decision"] == "refused" and "model.safetensors" in tags["heara.gate.reason"]
    decision = json.loads(
        (registry_home / "models" / "danger" / "promote" / "decision.json").read_text("utf-8")
    )
    assert decision["checks"] == {"servable": False} and decision["champion_after"] == good

    with pytest.raises(NotServableError, match=f"version {weightless} "):  # nor without --force
        promote_step(_params(), weightless, test_path=test_path)
    assert _champion() == good


def test_a_good_version_is_promoted_with_its_check_on_record(
    registry_home: Path, test_path: Path, register_tiny
) -> None:
    from mlflow import MlflowClient

    from training.registry.audit import AuditLedger
    from training.steps.promote import promote_step

    register_tiny(champion=True)
    challenger = register_tiny()
    record = promote_step(_params(), challenger, force=True, test_path=test_path)
    assert record["promote"] is True and _champion() == challenger
    assert record["smoke"]["version"] == str(challenger) and record["metrics"]["smoke_seconds"] > 0
    assert AuditLedger().entries("heara-danger")[-1]["smoke"] == record["smoke"]
    assert MlflowClient().get_run(record["mlflow_run_id"]).data.metrics["smoke_seconds"] > 0
