"""Evaluation of a multi-label classifier (`task_type: multilabel`) on the frozen test split.

Each label is decided on its own: the model's probability for it against the threshold tuned on the
validation split and stored with the model (training/data/labels.py). The figures are the ones the
multi-label literature reports side by side, because each hides something the others show:
- macro-F1: the mean of the labels' F1 (every label counts alike; the headline, as for single-label tasks,
  so that the gate, leaderboards and the baseline compare the same figure); a label that neither the test
  rows nor the model's decisions contain is left out, as in single-label macro-F1;
- micro-F1: F1 over all (row, label) decisions pooled (frequent labels dominate);
- samples-F1: F1 of each row's predicted set against its true set, averaged over rows (what one
  utterance's answer looks like);
- Hamming loss: the share of wrong (row, label) decisions;
- subset accuracy (`accuracy`): rows whose whole label set is right;
- per label: precision, recall, F1, support (test rows carrying it) and its threshold.
`paired_bootstrap_macro_f1` compares two models' decisions on the same rows for the promotion gate.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import classification_report, f1_score, hamming_loss

from training.config import EvaluateConfig
from training.data.labels import LABEL_JOIN, decide, indicator
from training.evaluation.metrics import (
    PredictProba,
    _latency,
    _predict,
    per_class_from_report,
    per_class_latency_slices,
)
from training.evaluation.slices import add_typos, remove_spaces
from training.pii import mask_pii


@dataclass
class MultiLabelResult:
    """One multi-label evaluation. truth / decided are 0/1 [n, labels]; y_true / y_pred the same as
    label-column strings ("기쁨|놀람"), for the pages that show rows."""

    labels: list[str]
    ids: list[str]
    texts: list[str]
    truth: np.ndarray
    decided: np.ndarray
    probs: np.ndarray
    thresholds: list[float]
    report_text: str
    metrics: dict[str, Any] = field(default_factory=dict)

    def _names(self, rows: np.ndarray) -> np.ndarray:
        return np.array(
            [LABEL_JOIN.join(self.labels[j] for j in np.flatnonzero(r)) for r in rows], dtype=object
        )

    @property
    def y_true(self) -> np.ndarray:
        return self._names(self.truth)

    @property
    def y_pred(self) -> np.ndarray:
        return self._names(self.decided)


def macro_f1(truth: np.ndarray, decided: np.ndarray) -> float:
    """The mean F1 of the labels that occur in `truth` or `decided`: a label absent from both (no test
    row carries it, the model never says it) is left out rather than counted as 0, as single-label
    macro-F1 (scikit-learn's default there) and the bootstrap do."""
    truth, decided = np.asarray(truth) > 0, np.asarray(decided) > 0
    present = truth.any(axis=0) | decided.any(axis=0)
    if not present.any():
        return 0.0
    return float(f1_score(truth[:, present], decided[:, present], average="macro", zero_division=0))


def scores(truth: np.ndarray, decided: np.ndarray) -> dict[str, Any]:
    """The headline figures of one set of decisions (an empty set of rows gives None)."""
    if len(truth) == 0:
        return {"n": 0, "macro_f1": None, "micro_f1": None, "samples_f1": None, "accuracy": None}
    return {
        "n": int(len(truth)),
        "macro_f1": macro_f1(truth, decided),
        "micro_f1": float(f1_score(truth, decided, average="micro", zero_division=0)),
        "samples_f1": float(f1_score(truth, decided, average="samples", zero_division=0)),
        "hamming_loss": float(hamming_loss(truth, decided)),
        "accuracy": float((truth == decided).all(axis=1).mean()),
    }


def evaluate_multilabel(
    predict_proba: PredictProba,
    test_df: pd.DataFrame,
    labels: list[str] | tuple[str, ...],
    thresholds: list[float],
    cfg: EvaluateConfig | None = None,
) -> MultiLabelResult:
    """Score `predict_proba` (each label's own probability) on `test_df` (text, label sets, optional id)
    with the model's per-label `thresholds`; slices and latency as for single-label models."""
    cfg = cfg or EvaluateConfig()
    labels = list(labels)
    if test_df.empty:
        raise ValueError("the test split is empty; nothing to evaluate")
    truth = indicator(test_df["label"], labels).astype(np.int8)
    texts = [str(t) for t in test_df["text"]]
    ids = [str(i) for i in test_df.get("id", test_df.index)]
    predict_proba(texts[:1])  # warm-up kept out of the timing
    t0 = time.perf_counter()
    probs = _predict(predict_proba, texts, labels)
    batch_ms = (time.perf_counter() - t0) * 1000 / len(texts)
    decided = decide(probs, thresholds)

    metrics: dict[str, Any] = scores(truth, decided)
    report = classification_report(truth, decided, target_names=labels, output_dict=True, zero_division=0)
    metrics["per_class"] = {
        lab: {**pc, "threshold": float(t)}
        for (lab, pc), t in zip(per_class_from_report(report, labels).items(), thresholds)
    }
    metrics["labels_per_row_true"] = float(truth.sum(1).mean())
    metrics["labels_per_row_pred"] = float(decided.sum(1).mean())
    metrics["latency_batch_ms_per_sample"] = batch_ms
    metrics.update(_latency(predict_proba, texts, cfg.latency_samples, cfg.seed))

    short = np.array([len(t) <= cfg.short_max_chars for t in texts], dtype=bool)
    no_space = decide(_predict(predict_proba, [remove_spaces(t) for t in texts], labels), thresholds)
    typos = decide(_predict(predict_proba, add_typos(texts, cfg.typo_rate, cfg.seed), labels), thresholds)
    metrics["slices"] = {
        "short": scores(truth[short], decided[short]),
        "no_spaces": scores(truth, no_space),
        "typos": scores(truth, typos),
    }
    text = classification_report(truth, decided, target_names=labels, digits=4, zero_division=0)
    return MultiLabelResult(labels, ids, texts, truth, decided, probs, list(thresholds), text, metrics)


def flat_metrics(result: MultiLabelResult) -> dict[str, float]:
    """One level of numeric metrics for MLflow and DVC (the single-label names where they mean the same:
    test_macro_f1, test_accuracy, per-class test_f1_<label>)."""
    m = result.metrics
    out: dict[str, Any] = {
        f"test_{k}": m.get(k) for k in ("n", "accuracy", "macro_f1", "micro_f1", "samples_f1", "hamming_loss")
    }
    out["test_labels_per_row_true"] = m.get("labels_per_row_true")
    out["test_labels_per_row_pred"] = m.get("labels_per_row_pred")
    out.update(per_class_latency_slices(m, ("precision", "recall", "f1", "support", "threshold")))
    return {k: float(v) for k, v in out.items() if v is not None}


def write_artifacts(
    result: MultiLabelResult, out_dir: Path | str, texts: list[str] | None = None
) -> list[Path]:
    """per_label.png (each label's F1, precision and recall with its support and threshold),
    per_label.csv, classification_report.txt, metrics.json and predictions.csv (id, masked text, true
    labels, predicted labels, every label's probability) into `out_dir`."""
    from training.evaluation.plots import per_label_png

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    per_label = pd.DataFrame(result.metrics["per_class"]).T.rename_axis("label")
    paths = [per_label_png(per_label, out / "per_label.png")]
    per_label.to_csv(out / "per_label.csv")
    paths.append(out / "per_label.csv")
    for name, content in (
        ("classification_report.txt", result.report_text),
        ("metrics.json", json.dumps(flat_metrics(result), indent=2, sort_keys=True)),
    ):
        (out / name).write_text(content + "\n", encoding="utf-8")
        paths.append(out / name)
    shown = texts if texts is not None else result.texts
    rows = pd.DataFrame(
        {
            "id": result.ids,
            "text": [mask_pii(str(t)) for t in shown],
            "labels": [s.replace(LABEL_JOIN, ",") for s in result.y_true],
            "predicted": [s.replace(LABEL_JOIN, ",") for s in result.y_pred],
            "exact": (result.truth == result.decided).all(axis=1),
        }
    )
    probs = pd.DataFrame(np.round(result.probs, 4), columns=[f"p_{lab}" for lab in result.labels])
    pd.concat([rows, probs], axis=1).to_csv(out / "predictions.csv", index=False, encoding="utf-8-sig")
    paths.append(out / "predictions.csv")
    return paths


# ---------------------------------------------------------------- paired bootstrap
def _macro_f1_weighted(weights: np.ndarray, truth: np.ndarray, decided: np.ndarray) -> np.ndarray:
    """Macro-F1 of each resample, a resample given as row counts `weights` [b, n]: per-label true
    positives, predicted and true rows are weighted sums, so 1,000 resamples are three matrix products.
    A label absent from both sides of a resample is left out, as in the single-label bootstrap."""
    tp = weights @ (truth & decided)
    n_true = weights @ truth
    n_pred = weights @ decided
    denom = n_true + n_pred
    present = denom > 0
    f1 = np.divide(2 * tp, denom, out=np.zeros(denom.shape), where=present)
    return f1.sum(axis=1) / np.maximum(present.sum(axis=1), 1)


def paired_bootstrap_macro_f1(
    truth: np.ndarray,
    decided_a: np.ndarray,
    decided_b: np.ndarray,
    n: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> tuple[float, float, float]:
    """Macro-F1(b) - macro-F1(a) over the same rows, with a paired percentile bootstrap CI over rows
    (both models scored on each resample's rows). 0/1 arrays [rows, labels]. Returns (delta, lo, hi)."""
    t, a, b = (np.asarray(x).astype(np.int64) for x in (truth, decided_a, decided_b))
    m = len(t)
    if m == 0 or a.shape != t.shape or b.shape != t.shape:
        raise ValueError("truth and both decision arrays must be non-empty and of the same shape")
    rng = np.random.default_rng(seed)

    def diff(weights: np.ndarray) -> np.ndarray:
        return _macro_f1_weighted(weights, t, b) - _macro_f1_weighted(weights, t, a)

    delta = float(diff(np.ones((1, m)))[0])
    chunk = max(1, 2_000_000 // m)
    deltas = []
    for s in range(0, n, chunk):
        draws = rng.integers(0, m, size=(min(chunk, n - s), m))
        weights = np.zeros((len(draws), m))
        np.add.at(weights, (np.repeat(np.arange(len(draws)), m), draws.ravel()), 1)
        deltas.append(diff(weights))
    alpha = (1 - level) / 2
    lo, hi = np.quantile(np.concatenate(deltas), [alpha, 1 - alpha])
    return delta, float(lo), float(hi)
