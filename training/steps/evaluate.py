"""Step `evaluate`: score the candidate on the frozen test split; metrics and plots go to its MLflow run."""

from __future__ import annotations

import logging
from pathlib import Path

from training.config import Params
from training.data.reports import write_json
from training.data.validate import require_known_labels
from training.steps.workspace import DataFiles, read_candidate, task_dir

log = logging.getLogger("heara.pipeline")


def evaluate_step(params: Params, files: DataFiles | None = None, out_dir: Path | None = None) -> dict:
    """Score the candidate on the frozen test split; log metrics and plots to its MLflow run."""
    import mlflow

    from training.evaluation.metrics import evaluate, flat_metrics, write_artifacts
    from training.model.predictor import Predictor
    from training.registry import tracking

    cand = read_candidate(params.task)
    files = files or DataFiles.default()
    test = files.load()["test"]
    predictor = Predictor.load(cand["model_dir"])
    require_known_labels(
        test,
        predictor.labels,
        file=str(files.test),
        hint=f"the candidate of task '{params.task}' was trained on other labels; evaluate with "
        "the --data-dir (and params) it was trained with, or train on this folder first",
    )
    result = evaluate(predictor.predict_proba, test, predictor.labels, params.evaluate)
    out = out_dir or task_dir(params.task) / "eval"
    artifacts = write_artifacts(result, out, texts=test["text"].tolist())
    metrics = flat_metrics(result)
    tracking.setup(params.task)
    with mlflow.start_run(run_id=cand["run_id"]):
        mlflow.log_metrics(metrics)
        for path in artifacts:
            mlflow.log_artifact(str(path), "evaluation")
    write_json(out / "metrics.json", metrics)
    log.info("evaluate: test macro-F1 %.4f", metrics.get("test_macro_f1", float("nan")))
    return metrics
