"""`heara evaluate` scores the candidate in fp32 and quantized to int8 on the same frozen test split,
and logs both (and the drop the service checks) to the candidate's MLflow run and metrics.json."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd
import pytest

from training.config import load_params, parse_overrides
from training.evaluation.quantization import INT8_AGREEMENT
from training.model.onnx_runtime import INT8_MACRO_F1, INT8_MACRO_F1_DROP

SAMPLE = Path(__file__).resolve().parents[3] / "data" / "sample" / "utterances.csv"


@pytest.fixture(scope="module")
def candidate(tmp_path_factory: pytest.TempPathFactory, tiny_model_factory):
    """A state folder holding a tiny candidate with its MLflow run, and a 40-row split."""
    import mlflow

    from training.registry import tracking
    from training.steps.workspace import DataFiles, candidate_file

    tmp = tmp_path_factory.mktemp("evaluate")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HEARA_HOME", str(tmp / "home"))
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        model_dir = tiny_model_factory(tmp / "model")
        tracking.setup("danger")
        with mlflow.start_run() as run:
            pass
        path = candidate_file("danger")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(
            json.dumps({"model_dir": str(model_dir), "run_id": run.info.run_id}), encoding="utf-8"
        )
        rows = pd.read_csv(SAMPLE).groupby("label").head(10)
        for name in ("train", "val", "test"):
            rows.to_parquet(tmp / f"{name}.parquet")
        files = DataFiles(tmp / "train.parquet", tmp / "val.parquet", tmp / "test.parquet")
        yield files, run.info.run_id, model_dir


def _params():
    return load_params(overrides=parse_overrides(["evaluate.latency_samples=3"]))


def test_evaluate_logs_the_int8_figures(candidate, tmp_path: Path, caplog) -> None:
    from mlflow import MlflowClient

    from training.steps.evaluate import evaluate_step

    files, run_id, model_dir = candidate
    with caplog.at_level(logging.INFO, logger="heara.pipeline"):
        metrics = evaluate_step(_params(), files, out_dir=tmp_path / "eval")
    assert 0 <= metrics[INT8_MACRO_F1] <= 1 and 0 <= metrics[INT8_AGREEMENT] <= 1
    assert metrics[INT8_MACRO_F1_DROP] == pytest.approx(metrics["test_macro_f1"] - metrics[INT8_MACRO_F1])
    written = json.loads((tmp_path / "eval" / "metrics.json").read_text(encoding="utf-8"))
    assert written[INT8_MACRO_F1_DROP] == metrics[INT8_MACRO_F1_DROP]
    logged = MlflowClient().get_run(run_id).data.metrics
    assert logged[INT8_MACRO_F1] == pytest.approx(metrics[INT8_MACRO_F1])
    assert logged[INT8_MACRO_F1_DROP] == pytest.approx(metrics[INT8_MACRO_F1_DROP])
    lines = [
        r.getMessage() for r in caplog.records if r.name == "heara.pipeline" and "int8" in r.getMessage()
    ]
    assert len(lines) == 1 and f"{metrics[INT8_MACRO_F1]:.4f}" in lines[0]
    assert (model_dir / "onnx").is_dir()  # registered with the model: the service need not export again


def test_evaluate_without_an_int8_model_still_scores_fp32(
    candidate, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog
) -> None:
    from training.model import onnx_runtime
    from training.steps.evaluate import evaluate_step

    def broken(*args, **kwargs):
        raise RuntimeError("the exporter does not know this architecture")

    monkeypatch.setattr(onnx_runtime.Int8Runner, "load", broken)
    with caplog.at_level(logging.WARNING, logger="heara.pipeline"):
        metrics = evaluate_step(_params(), candidate[0], out_dir=tmp_path / "eval")
    assert "test_macro_f1" in metrics and INT8_MACRO_F1 not in metrics
    assert any("int8" in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)


def test_evaluate_logs_explanations_and_their_faithfulness(candidate, tmp_path: Path, caplog) -> None:
    """explanations.html (the misclassified texts, highlighted) goes to the run's evaluation artifacts, and
    comprehensiveness / sufficiency at each k, beside a random ranking's, to its metrics."""
    from mlflow import MlflowClient

    from training.steps.evaluate import evaluate_step

    files, run_id, _ = candidate
    with caplog.at_level(logging.INFO, logger="heara.pipeline"):
        metrics = evaluate_step(_params(), files, out_dir=tmp_path / "eval")
    test_rows = len(pd.read_parquet(files.test))
    assert metrics["explain_texts"] == test_rows  # fewer than explain.faithfulness_max_texts: all of them
    for k in (10, 20, 50):
        for kind in ("comprehensiveness", "sufficiency"):
            assert -1 <= metrics[f"explain_{kind}_{k}"] <= 1
            assert -1 <= metrics[f"explain_{kind}_{k}_random"] <= 1
    logged = MlflowClient().get_run(run_id)
    assert logged.data.metrics["explain_comprehensiveness_20"] == pytest.approx(
        metrics["explain_comprehensiveness_20"]
    )
    assert logged.data.tags["heara.explain.method"] == "integrated_gradients"
    names = [a.path for a in MlflowClient().list_artifacts(run_id, "evaluation")]
    assert "evaluation/explanations.html" in names
    page = (tmp_path / "eval" / "explanations.html").read_text(encoding="utf-8")
    assert "Misclassified test texts" in page and "Danger predictions" in page
    wrong = int(round((1 - metrics["test_accuracy"]) * test_rows))
    assert page.count('class="u"') >= min(wrong, 30)  # each shown text has its words highlighted
    assert any("comprehensiveness@20%" in r.getMessage() for r in caplog.records)


def test_evaluate_reports_the_production_holdout_beside_the_test_split(candidate, tmp_path: Path) -> None:
    from training.steps.evaluate import evaluate_step
    from training.steps.review import holdout_path, write_holdout

    files, _, _ = candidate
    rows = pd.read_csv(SAMPLE).groupby("label").head(5)
    params = _params().override({"review": {"holdout_min_rows": 10, "holdout_bootstrap": 100}})
    reviewed = [
        {"prediction_id": i, "masked_text": t, "label": lab, "ts_reviewed": f"2026-11-28T09:{i % 60:02d}:00"}
        for i, (t, lab) in enumerate(zip(rows["text"], rows["label"]))
    ]
    try:
        assert evaluate_step(_params(), files, out_dir=tmp_path / "few")["production_rows"] == 0
        note = json.loads((tmp_path / "few" / "production.json").read_text(encoding="utf-8"))["note"]
        assert note.startswith("not enough reviewed rows")
        write_holdout(params, reviewed)
        metrics = evaluate_step(params, files, out_dir=tmp_path / "eval")
    finally:
        holdout_path(params.task).unlink(missing_ok=True)
    assert metrics["production_rows"] == len(reviewed)
    assert metrics["production_ci_low"] <= metrics["production_macro_f1"] <= metrics["production_ci_high"]
