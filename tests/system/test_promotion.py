"""The champion/challenger gate against a real MLflow registry (SQLite) with real tiny models.

One module-scoped state folder: models are trained once and the scenarios run in order, as they
would in production: first champion -> unchanged retrain refused -> worse model refused ->
forced promotion -> rollback.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from training.config import load_params, parse_overrides

pytestmark = pytest.mark.slow
SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample" / "utterances.csv"
# params.yaml's tiny-profile training; a loose latency budget, since CI machines are shared. The baseline
# floor off: these scenarios are about champion against challenger, and the tiny profile is below the TF-IDF
# baseline on the sample (0.5825 < 0.7154, docs/benchmarks.md); tests/code/steps/test_promote.py tests it.
TRAIN = [
    "promote.latency_budget_ms=1000",
    "promote.bootstrap_samples=300",
    "evaluate.latency_samples=20",
    "promote.require_beat_baseline=false",
]


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory):
    home = tmp_path_factory.mktemp("promo-home")
    saved = {k: os.environ.get(k) for k in ("HEARA_HOME", "MLFLOW_TRACKING_URI")}
    os.environ["HEARA_HOME"] = str(home)
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    from training.steps.prepare import prepare

    data_dir = home / "prepared"
    prepare(load_params(), SAMPLE, data_dir)
    yield data_dir
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def _params(*extra: str):
    return load_params(overrides=parse_overrides(TRAIN + list(extra)))


def _train_and_register(data_dir: Path, *extra: str) -> int:
    from training.steps.evaluate import evaluate_step
    from training.steps.register import register_step
    from training.steps.train import train_step
    from training.steps.workspace import DataFiles

    p = _params(*extra)
    files = DataFiles.from_dir(data_dir)
    train_step(p, files)
    evaluate_step(p, files)
    return register_step(p)


def _champion() -> int | None:
    from mlflow import MlflowClient

    from training.registry.aliases import alias_version

    return alias_version(MlflowClient(), "heara-danger", "champion")


def test_gate_scenarios(env: Path) -> None:
    from mlflow import MlflowClient

    from training.registry.audit import AuditLedger
    from training.steps.promote import promote_step
    from training.steps.rollback import rollback_step

    test_path = env / "test.parquet"
    v1 = _train_and_register(env)

    # The first model becomes champion only above min_f1.
    refused = promote_step(_params("promote.min_f1=0.999"), v1, test_path=test_path)
    assert refused["promote"] is False and "min_f1" in refused["reason"] and _champion() is None
    first = promote_step(_params(), v1, test_path=test_path)
    assert first["promote"] is True and _champion() == v1, first["reason"]
    f1_v1 = first["metrics"]["challenger_macro_f1"]
    assert f1_v1 >= _params().promote.min_f1

    # A second run with unchanged config: same model quality, the gate refuses, the decision is logged.
    v2 = _train_and_register(env)
    assert v2 != v1
    second = promote_step(_params(), v2, test_path=test_path)
    assert second["promote"] is False and second["checks"]["min_delta"] is False
    assert _champion() == v1
    client = MlflowClient()
    tags = client.get_model_version("heara-danger", str(v2)).tags
    assert tags["heara.gate.decision"] == "refused"
    decision_run = client.get_run(second["mlflow_run_id"])
    assert decision_run.data.tags["heara.decision"] == "refused"
    assert "delta_macro_f1" in decision_run.data.metrics

    # A deliberately worse model (one training step) is refused.
    v3 = _train_and_register(env, "train.max_steps=1")
    worse = promote_step(_params(), v3, test_path=test_path)
    assert worse["promote"] is False and worse["metrics"]["challenger_macro_f1"] < f1_v1
    assert _champion() == v1

    # --force promotes anyway, and says so everywhere.
    forced = promote_step(_params(), v3, force=True, test_path=test_path)
    assert forced["promote"] is True and forced["forced"] is True and _champion() == v3
    assert client.get_model_version("heara-danger", str(v3)).tags["heara.gate.forced"] == "True"

    # Rollback restores the previous champion; --to picks any version.
    back = rollback_step("danger")
    assert back["to_version"] == v1 and _champion() == v1
    rollback_step("danger", to_version=v2)
    assert _champion() == v2

    ledger = AuditLedger().entries("heara-danger")
    assert [e["action"] for e in ledger] == [
        "promote",
        "promote",
        "promote",
        "promote",
        "force",
        "rollback",
        "rollback",
    ]
    assert all(e["who"] and e["at"] for e in ledger)
    assert [e["champion_changed"] for e in ledger] == [False, True, False, False, True, True, True]
    decision_file = json.loads(
        (Path(os.environ["HEARA_HOME"]) / "models" / "danger" / "promote" / "decision.json").read_text(
            encoding="utf-8"
        )
    )
    assert decision_file["challenger"] == v3
