"""Step `evaluate`: score the candidate on the frozen test split; metrics and plots go to its MLflow run.

Beside the full-precision figures it scores the candidate quantized to int8 (the service's CPU runtime)
on the same rows: the service serves int8 only when this drop is known and small enough. And beside the
frozen test split, the production holdout (training/steps/review.py: reviewed rows of served traffic,
sampled uniformly): production macro-F1 with a 95 % interval once review.holdout_min_rows rows exist.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from training.config import Params
from training.data.labels import LABEL_JOIN
from training.data.reports import write_json
from training.data.validate import require_known_labels
from training.evaluation.explanations import GATE_METRIC as COMPREHENSIVENESS
from training.model.onnx_runtime import INT8_MACRO_F1, INT8_MACRO_F1_DROP
from training.steps.review import holdout_metrics, holdout_report
from training.steps.workspace import DataFiles, read_candidate, task_dir

if TYPE_CHECKING:
    from training.evaluation.metrics import EvalResult
    from training.model.predictor import Predictor

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
        multilabel=predictor.multilabel,
    )
    out = out_dir or task_dir(params.task) / "eval"
    if predictor.multilabel:
        from training.evaluation import multilabel

        result = multilabel.evaluate_multilabel(
            predictor.predict_proba, test, predictor.labels, predictor.thresholds, params.evaluate
        )
        artifacts = multilabel.write_artifacts(result, out, texts=test["text"].tolist())
        metrics = multilabel.flat_metrics(result)
    else:
        result = evaluate(predictor.predict_proba, test, predictor.labels, params.evaluate)
        artifacts = write_artifacts(result, out, texts=test["text"].tolist())
        metrics = {**flat_metrics(result), **_int8_metrics(predictor, cand["model_dir"], result)}
        production = _production(params, predictor, out)
        metrics.update(holdout_metrics(production))
        artifacts = [*artifacts, out / "production.json"]
    explained, page, method = _explanations(params, predictor, result, out)
    metrics.update(explained)
    artifacts = [*artifacts, page]
    write_json(out / "metrics.json", metrics)  # over write_artifacts' copy: with the int8 figures
    tracking.setup(params.task)
    with mlflow.start_run(run_id=cand["run_id"]):
        mlflow.log_metrics(metrics)
        mlflow.set_tag("heara.explain.method", method)
        for path in artifacts:
            mlflow.log_artifact(str(path), "evaluation")
    if INT8_MACRO_F1 in metrics:
        log.info(
            "evaluate: test macro-F1 %.4f, int8 %.4f (drop %.4f)",
            metrics["test_macro_f1"],
            metrics[INT8_MACRO_F1],
            metrics[INT8_MACRO_F1_DROP],
        )
    else:
        log.info("evaluate: test macro-F1 %.4f", metrics.get("test_macro_f1", float("nan")))
    if COMPREHENSIVENESS in metrics:
        log.info(
            "evaluate: explanations (%s) comprehensiveness@20%% %.4f vs random %.4f",
            method,
            metrics[COMPREHENSIVENESS],
            metrics[COMPREHENSIVENESS + "_random"],
        )
    return metrics


def _explanations(
    params: Params, predictor, result: EvalResult, out: Path
) -> tuple[dict[str, float], Path, str]:
    """Faithfulness of the family's explanations on the test split (explain.faithfulness) and
    explanations.html: the misclassified texts and a sample of danger predictions, highlighted."""
    from training.evaluation.explanations import explain_test_split
    from training.model.explain import Explainer

    cfg = params.explain
    explainer = Explainer(predictor, cfg)
    y_true, y_pred = [str(x) for x in result.y_true], [str(x) for x in result.y_pred]
    if predictor.multilabel:
        # One label per text to explain: the most probable one; "misclassified" when it is not one of the
        # text's true labels (its true side then shows the first true label).
        top = [predictor.labels[j] for j in result.probs.argmax(axis=1)]
        true_sets = [set(row) for row in (t.split(LABEL_JOIN) for t in y_true)]
        y_true = [p if p in ts else y.split(LABEL_JOIN)[0] for p, ts, y in zip(top, true_sets, y_true)]
        y_pred = top
    metrics, page = explain_test_split(
        explainer,
        list(result.texts),
        y_true,
        y_pred,
        danger_labels=params.serve.danger_labels,
        out_dir=out,
        ks=cfg.faithfulness_ks,
        max_texts=cfg.faithfulness_max_texts,
        examples=cfg.report_examples,
        seed=cfg.seed,
        measure=cfg.faithfulness,
    )
    return metrics, page, explainer.method


def _production(params: Params, predictor: Predictor, out: Path) -> dict:
    """The candidate on the production holdout, written to production.json and logged as one line."""
    report = holdout_report(
        params, lambda texts: [p.label for p in predictor.predict(texts)], labels=predictor.labels
    )
    write_json(out / "production.json", report)
    log.info("evaluate: production holdout: %s", report["note"])
    return report


def _int8_metrics(predictor: Predictor, model_dir: str, result: EvalResult) -> dict[str, float]:
    """The int8 model's test macro-F1, its drop from fp32 and their agreement; none when the model
    cannot be exported, which the service reads as "not measured" (it then serves fp32)."""
    from training.evaluation.quantization import int8_labels, int8_metrics

    if predictor.family == "linear":  # no neural network: nothing to quantize, served as it is
        return {}
    try:
        pred = int8_labels(predictor, model_dir, result.texts)
    except Exception:  # an architecture the exporter cannot handle must not cost the fp32 evaluation
        log.warning("evaluate: the int8 model could not be built; it will not be served", exc_info=True)
        return {}
    return int8_metrics(result.y_true, result.y_pred, pred, result.metrics["macro_f1"])
