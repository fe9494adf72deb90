"""`heara promote` moves the champion alias only to a version the service can load and that answers a
smoke prediction, `--force` included; a refusal is recorded everywhere a decision is. A version below
the linear baseline on the same test split is refused (promote.require_beat_baseline)."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import pandas as pd
import pytest

from training.config import load_params, parse_overrides
from training.errors import NotFoundError, NotServableError

SAMPLE = Path(__file__).resolve().parents[3] / "data" / "sample" / "utterances.csv"


@pytest.fixture
def test_path(tmp_path: Path) -> Path:
    path = tmp_path / "test.parquet"
    pd.read_csv(SAMPLE).groupby("label").head(5).to_parquet(path)
    return path


@pytest.fixture
def split_dir(tmp_path: Path) -> Path:
    """A `--data-dir` folder: a test split and, beside it, a train split of other rows of the sample."""
    folder = tmp_path / "data"
    folder.mkdir()
    sample = pd.read_csv(SAMPLE)
    test = sample.groupby("label").head(5)
    test.to_parquet(folder / "test.parquet")
    sample.drop(test.index).groupby("label").head(40).to_parquet(folder / "train.parquet")
    return folder


def _params(*extra: str):
    """The servability tests are not about model quality: the shared untrained tiny model is far below
    the baseline, so the baseline floor is off except where a test turns it on."""
    return load_params(
        overrides=parse_overrides(
            [
                "promote.bootstrap_samples=100",
                "promote.latency_budget_ms=5000",
                "promote.require_beat_baseline=false",
                *extra,
            ]
        )
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
    assert "production holdout: not enough reviewed rows" in record["reason"]  # none reviewed here
    assert record["smoke"]["version"] == str(challenger) and record["metrics"]["smoke_seconds"] > 0
    assert AuditLedger().entries("heara-danger")[-1]["smoke"] == record["smoke"]
    assert MlflowClient().get_run(record["mlflow_run_id"]).data.metrics["smoke_seconds"] > 0


def test_a_version_below_the_baseline_is_refused_and_the_baseline_fitted_once(
    registry_home: Path, split_dir: Path, register_tiny, caplog: pytest.LogCaptureFixture
) -> None:
    """The untrained tiny model against the TF-IDF baseline fitted on the train split beside the test
    split: refused with both figures everywhere a decision is recorded; the second promotion on the same
    split reads the baseline from the cache; --force overrides the check like any other."""
    from mlflow import MlflowClient

    from training.registry.audit import AuditLedger
    from training.steps.promote import promote_step

    # min_f1 0: the baseline floor is the only check this version can fail
    params = _params("promote.require_beat_baseline=true", "promote.min_f1=0")
    version = register_tiny()
    refused = promote_step(params, version, test_path=split_dir / "test.parquet")
    model_f1, floor = refused["metrics"]["challenger_macro_f1"], refused["metrics"]["baseline_macro_f1"]
    assert refused["promote"] is False and _champion() is None
    assert refused["checks"] == {"min_f1": True, "beats_baseline": False, "latency": True}
    assert refused["reason"].startswith("refused: beats_baseline failed;")
    assert f"challenger macro-F1 {model_f1:.4f} < baseline {floor:.4f}" in refused["reason"]
    assert refused["baseline"]["cached"] is False and refused["baseline"]["train_rows"] == 160

    run = MlflowClient().get_run(refused["mlflow_run_id"])
    assert run.data.metrics["baseline_macro_f1"] == floor
    assert run.data.params["promote.require_beat_baseline"] == "True"
    assert run.data.tags["heara.baseline.cached"] == "False"
    tags = MlflowClient().get_model_version("heara-danger", str(version)).tags
    assert tags["heara.gate.decision"] == "refused" and f"baseline {floor:.4f}" in tags["heara.gate.reason"]
    assert AuditLedger().entries("heara-danger")[-1]["metrics"]["baseline_macro_f1"] == floor

    with caplog.at_level(logging.INFO, logger="heara.pipeline"):
        forced = promote_step(params, version, force=True, test_path=split_dir / "test.parquet")
    assert "reusing the cached macro-F1" in caplog.text and forced["baseline"]["cached"] is True
    assert forced["metrics"]["baseline_macro_f1"] == floor
    assert forced["promote"] is True and forced["forced"] is True and _champion() == version
    assert forced["reason"].startswith("FORCED despite failed checks (refused: beats_baseline failed;")


def test_a_missing_train_split_stops_the_gate_with_one_line(
    registry_home: Path, test_path: Path, register_tiny
) -> None:
    from training.registry.audit import AuditLedger
    from training.steps.promote import promote_step

    version = register_tiny()
    missing = re.escape(str(test_path.with_name("train.parquet")))
    with pytest.raises(NotFoundError, match=f"^train split not found at {missing}: "):
        promote_step(_params("promote.require_beat_baseline=true"), version, test_path=test_path)
    assert _champion() is None and AuditLedger().entries("heara-danger") == []
    # the check off: no train split needed
    record = promote_step(_params("promote.min_f1=0"), version, test_path=test_path)
    assert record["promote"] is True and record["baseline"] is None
    assert "beats_baseline" not in record["checks"]
