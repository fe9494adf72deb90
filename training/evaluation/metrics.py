"""Evaluation of a classifier on the frozen test split.

In: a `predict_proba(texts) -> [n, n_labels]` callable, the test DataFrame (id, text, label) and the
label order. Out: an `EvalResult` with overall and per-class metrics, calibration (ECE), latency,
robustness slices (short texts, spaces removed, typos) and the space-invariance rate; then
`write_artifacts` (plots, reports, predictions) and `flat_metrics` (for MLflow / DVC).
`paired_bootstrap_macro_f1` compares two models scored on the same rows (used by the promotion gate).

Macro-F1 is the headline (every class counts alike, however rare). Beside it, for tasks with many classes
(seed 001 had 359 counselling categories, most with a handful of rows): weighted-F1 (each class's F1
weighted by its test rows: what the typical row sees), top-k accuracy for k in `TOP_K` below the number of
labels (the true label among the k most probable: what `/classify`'s `top_k` offers a person who picks
from a short list) and each class's support (test rows) beside its precision, recall and F1.

Macro-F1 everywhere is sklearn's default: the mean over labels that occur in y_true or y_pred of the
rows scored. On the full test split (every class present) that is the mean over all labels; on a slice
or a bootstrap resample a class absent from both sides is left out rather than counted as 0.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, classification_report, confusion_matrix, f1_score

from training.config import EvaluateConfig
from training.evaluation.calibration import ECE_BINS, expected_calibration_error
from training.evaluation.confusion import confused_pairs
from training.evaluation.slices import add_typos, remove_spaces  # noqa: F401  (re-exported)
from training.pii import mask_pii

PredictProba = Callable[[list[str]], np.ndarray]
TOP_K = (3, 5)  # top-k accuracy for each k below the number of labels (with fewer labels it is trivially 1)


@dataclass
class EvalResult:
    """Everything one evaluation produced; y_true / y_pred hold label strings, probs is [n, n_labels]."""

    labels: list[str]
    ids: list[str]
    texts: list[str]
    y_true: np.ndarray
    y_pred: np.ndarray
    probs: np.ndarray
    confusion: np.ndarray
    report: dict[str, Any]
    report_text: str
    metrics: dict[str, Any] = field(default_factory=dict)

    @property
    def confidence(self) -> np.ndarray:
        return self.probs.max(axis=1)

    @property
    def correct(self) -> np.ndarray:
        return self.y_true == self.y_pred


def _scores(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, Any]:
    if len(y_true) == 0:
        return {"n": 0, "accuracy": None, "macro_f1": None}
    return {
        "n": len(y_true),
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": float(f1_score(y_true, y_pred, average="macro", zero_division=0)),
    }


def top_k_accuracy(probs: np.ndarray, true_idx: np.ndarray, k: int) -> float:
    """Share of rows whose true label is among the `k` most probable.

    Ranks break ties as argmax does (the lower label index first), so top-1 is exactly the accuracy
    and the figure never falls as k grows; a model that gives every label the same probability does not
    get credit for a tie."""
    probs = np.asarray(probs, dtype=float)
    true_idx = np.asarray(true_idx, dtype=int)
    if len(true_idx) == 0:
        raise ValueError("top_k_accuracy needs at least one row")
    p_true = probs[np.arange(len(true_idx)), true_idx][:, None]
    before = np.arange(probs.shape[1])[None, :] < true_idx[:, None]
    rank = (probs > p_true).sum(axis=1) + ((probs == p_true) & before).sum(axis=1)
    return float(np.mean(rank < k))


def _predict(predict_proba: PredictProba, texts: list[str], labels: list[str]) -> np.ndarray:
    probs = np.asarray(predict_proba(texts), dtype=float)
    if probs.shape != (len(texts), len(labels)):
        raise ValueError(
            f"predict_proba returned shape {probs.shape}; expected ({len(texts)}, {len(labels)})"
        )
    return probs


def _latency(predict_proba: PredictProba, texts: list[str], n: int, seed: int) -> dict[str, Any]:
    """Per-sample latency of single-text calls on up to `n` texts (chosen with `seed`), in ms."""
    n = min(n, len(texts))
    if n == 0:
        return {"latency_samples": 0}
    rng = np.random.default_rng(seed)
    picked = [texts[i] for i in rng.choice(len(texts), size=n, replace=False)]
    times = []
    for text in picked:
        t0 = time.perf_counter()
        predict_proba([text])
        times.append((time.perf_counter() - t0) * 1000)
    return {
        "latency_samples": n,
        "latency_ms_p50": float(np.percentile(times, 50)),
        "latency_ms_p95": float(np.percentile(times, 95)),
        "latency_ms_mean": float(np.mean(times)),
    }


def evaluate(
    predict_proba: PredictProba,
    test_df: pd.DataFrame,
    labels: list[str] | tuple[str, ...],
    cfg: EvaluateConfig | None = None,
) -> EvalResult:
    """Score `predict_proba` on `test_df` (columns text, label, optional id).

    `predict_proba(texts)` must return probabilities in `labels` order. It receives the texts as they
    are in test_df and, for the slices, with spaces removed or typos added; whether it preprocesses
    them (the serving path, which re-spaces with Kiwi) is the caller's choice.
    """
    cfg = cfg or EvaluateConfig()
    labels = list(labels)
    unknown = sorted(set(test_df["label"]) - set(labels))
    if unknown:
        raise ValueError(f"test labels not in the model's labels {labels}: {unknown}")
    if test_df.empty:
        raise ValueError("the test split is empty; nothing to evaluate")
    texts = [str(t) for t in test_df["text"]]
    ids = [str(i) for i in test_df.get("id", test_df.index)]
    y_true = np.asarray(test_df["label"], dtype=str)
    predict_proba(texts[:1])  # warm-up (lazy init, caches) kept out of every timing
    t0 = time.perf_counter()
    probs = _predict(predict_proba, texts, labels)
    batch_ms = (time.perf_counter() - t0) * 1000 / len(texts)
    names = np.asarray(labels, dtype=str)
    y_pred = names[probs.argmax(axis=1)]

    report = classification_report(y_true, y_pred, labels=labels, output_dict=True, zero_division=0)
    metrics: dict[str, Any] = _scores(y_true, y_pred)
    metrics["weighted_f1"] = float(f1_score(y_true, y_pred, average="weighted", zero_division=0))
    position = {lab: i for i, lab in enumerate(labels)}
    true_idx = np.array([position[y] for y in y_true], dtype=int)
    metrics["top_k_accuracy"] = {k: top_k_accuracy(probs, true_idx, k) for k in TOP_K if k < len(labels)}
    metrics["per_class"] = per_class_from_report(report, labels)
    correct = y_true == y_pred
    metrics["ece"] = expected_calibration_error(probs.max(axis=1), correct)
    metrics["latency_batch_ms_per_sample"] = batch_ms
    metrics.update(_latency(predict_proba, texts, cfg.latency_samples, cfg.seed))

    short = np.array([len(t) <= cfg.short_max_chars for t in texts], dtype=bool)
    no_space_texts = [remove_spaces(t) for t in texts]
    pred_ns = names[_predict(predict_proba, no_space_texts, labels).argmax(axis=1)]
    pred_typo = names[
        _predict(predict_proba, add_typos(texts, cfg.typo_rate, cfg.seed), labels).argmax(axis=1)
    ]
    metrics["slices"] = {
        "short": _scores(y_true[short], y_pred[short]),
        "no_spaces": _scores(y_true, pred_ns),
        "typos": _scores(y_true, pred_typo),
    }
    # Only texts that have a space can change; counting the others would inflate the rate.
    spaced = np.array([nt != t for nt, t in zip(no_space_texts, texts)], dtype=bool)
    metrics["space_invariance_n"] = int(spaced.sum())
    metrics["space_invariance_rate"] = (
        float(np.mean(pred_ns[spaced] == y_pred[spaced])) if spaced.any() else None
    )

    cm = confusion_matrix(y_true, y_pred, labels=labels)
    text = classification_report(y_true, y_pred, labels=labels, digits=4, zero_division=0)
    return EvalResult(labels, ids, texts, y_true, y_pred, probs, cm, report, text, metrics)


# ---------------------------------------------------------------- paired bootstrap
def _macro_f1_rows(t: np.ndarray, p: np.ndarray, k: int) -> np.ndarray:
    """Macro-F1 of each row of t, p ([b, n] labels encoded 0..k-1), from per-class counts.

    One np.bincount per count over all rows at once: 1,000 resamples cost about as much as a few
    sklearn calls instead of 1,000 of them.
    """
    b = t.shape[0]
    key_t = np.arange(b)[:, None] * k + t
    tp = np.bincount(key_t[t == p], minlength=b * k).reshape(b, k)
    n_true = np.bincount(key_t.ravel(), minlength=b * k).reshape(b, k)
    n_pred = np.bincount((np.arange(b)[:, None] * k + p).ravel(), minlength=b * k).reshape(b, k)
    denom = n_true + n_pred
    present = denom > 0  # a class absent from both sides is left out, as sklearn does
    f1 = np.divide(2 * tp, denom, out=np.zeros(denom.shape), where=present)
    return f1.sum(axis=1) / np.maximum(present.sum(axis=1), 1)


def paired_bootstrap_macro_f1(
    y_true,
    pred_a,
    pred_b,
    n: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> tuple[float, float, float]:
    """Macro-F1(b) - macro-F1(a) on all rows, with a paired percentile bootstrap CI at `level`.

    Each resample draws row indices with replacement and scores both models on the same rows, so the
    row-to-row difficulty cancels out. Labels may be strings or ints. Returns (delta, lo, hi).
    """
    arrays = [np.asarray(x).astype(str) for x in (y_true, pred_a, pred_b)]
    m = len(arrays[0])
    if m == 0 or any(len(x) != m for x in arrays):
        raise ValueError("y_true, pred_a and pred_b must be non-empty and of equal length")
    _, enc = np.unique(np.concatenate(arrays), return_inverse=True)
    t, a, b = enc[:m], enc[m : 2 * m], enc[2 * m :]
    k = int(enc.max()) + 1

    def diff(idx: np.ndarray) -> np.ndarray:
        return _macro_f1_rows(t[idx], b[idx], k) - _macro_f1_rows(t[idx], a[idx], k)

    delta = float(diff(np.arange(m)[None])[0])
    rng = np.random.default_rng(seed)
    chunk = max(1, 2_000_000 // m)  # bounds memory to a few [chunk, m] int arrays
    deltas = np.concatenate(
        [diff(rng.integers(0, m, size=(min(chunk, n - s), m))) for s in range(0, n, chunk)]
    )
    alpha = (1 - level) / 2
    lo, hi = np.quantile(deltas, [alpha, 1 - alpha])
    return delta, float(lo), float(hi)


# ---------------------------------------------------------------- outputs
def _key(label: str) -> str:
    return re.sub(r"[^\w.\- /]", "_", label)  # MLflow metric names allow only these characters


def per_class_from_report(report: dict[str, Any], labels: list[str]) -> dict[str, dict[str, Any]]:
    """scikit-learn's classification_report (output_dict) -> {label: precision, recall, f1, support}."""
    return {
        lab: {
            "precision": report[lab]["precision"],
            "recall": report[lab]["recall"],
            "f1": report[lab]["f1-score"],
            "support": int(report[lab]["support"]),
        }
        for lab in labels
    }


def per_class_latency_slices(m: dict[str, Any], per_class_keys: tuple[str, ...]) -> dict[str, Any]:
    """The flat names both task types share: test_<key>_<label> per class, latency_*, slice_<name>_<key>."""
    out: dict[str, Any] = {}
    for lab, pc in m.get("per_class", {}).items():
        for name in per_class_keys:
            out[f"test_{name}_{_key(lab)}"] = pc[name]
    for q in ("p50", "p95", "mean"):
        out[f"latency_{q}_ms"] = m.get(f"latency_ms_{q}")
    out["latency_batch_ms_per_sample"] = m.get("latency_batch_ms_per_sample")
    for name, s in m.get("slices", {}).items():
        for k, v in s.items():
            out[f"slice_{name}_{k}"] = v
    return out


def flat_metrics(result: EvalResult) -> dict[str, float]:
    """One level of numeric metrics for MLflow and DVC; missing (None) values are left out."""
    m = result.metrics
    out: dict[str, Any] = {
        "test_n": m.get("n"),
        "test_accuracy": m.get("accuracy"),
        "test_macro_f1": m.get("macro_f1"),
        "test_weighted_f1": m.get("weighted_f1"),
        "test_ece": m.get("ece"),
    }
    for k, acc in m.get("top_k_accuracy", {}).items():
        out[f"test_top{k}_accuracy"] = acc
    out.update(per_class_latency_slices(m, ("precision", "recall", "f1", "support")))
    out["space_invariance_rate"] = m.get("space_invariance_rate")
    out["space_invariance_n"] = m.get("space_invariance_n")
    return {k: float(v) for k, v in out.items() if v is not None}


def write_artifacts(result: EvalResult, out_dir: Path | str, texts: list[str] | None = None) -> list[Path]:
    """Write plots, reports, metrics.json and predictions.csv into `out_dir`; returns the paths.

    Beside the plot, the confusion matrix in full (confusion_matrix.csv: rows true, columns predicted),
    its off-diagonal cells as a list, most rows first (confused_pairs.csv), and per_class.csv (support,
    precision, recall, F1, the label the class is most often mistaken for): above
    `plots.MAX_GRID_LABELS` labels the plot shows the most confused pairs only, and these files hold the
    rest. `texts`: what predictions.csv shows per row (e.g. the raw texts); default: the evaluated texts.
    Personal data in them is masked either way.
    """
    from training.evaluation.plots import (  # matplotlib only when writing
        confusion_matrix_png,
        reliability_png,
    )

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = [
        confusion_matrix_png(result.confusion, result.labels, out / "confusion_matrix.png"),
        reliability_png(result.confidence, result.correct, out / "reliability.png", bins=ECE_BINS),
    ]
    for name, content in (
        ("classification_report.txt", result.report_text),
        ("classification_report.json", json.dumps(result.report, indent=2, ensure_ascii=False)),
        ("metrics.json", json.dumps(flat_metrics(result), indent=2, sort_keys=True)),
    ):
        (out / name).write_text(content + "\n", encoding="utf-8")
        paths.append(out / name)
    labels = result.labels
    pd.DataFrame(result.confusion, index=pd.Index(labels, name="true"), columns=labels).to_csv(
        out / "confusion_matrix.csv"
    )
    pairs = confused_pairs(result.confusion, labels)
    pd.DataFrame(pairs, columns=["true", "predicted", "count", "share"]).round({"share": 6}).to_csv(
        out / "confused_pairs.csv", index=False
    )
    mistaken_for = {}
    for pair in pairs:  # most rows first: the first pair of a class is its most frequent mistake
        mistaken_for.setdefault(pair["true"], pair["predicted"])
    per_class = result.metrics["per_class"]
    pd.DataFrame(
        [
            {"label": lab, **{k: per_class[lab][k] for k in ("support", "precision", "recall", "f1")}}
            | {"most_confused_with": mistaken_for.get(lab, "")}
            for lab in labels
        ]
    ).round(6).to_csv(out / "per_class.csv", index=False)
    paths += [out / "confusion_matrix.csv", out / "confused_pairs.csv", out / "per_class.csv"]
    shown = texts if texts is not None else result.texts
    if len(shown) != len(result.ids):
        raise ValueError(f"texts has {len(shown)} rows; the evaluation has {len(result.ids)}")
    pd.DataFrame(
        {
            "id": result.ids,
            "label": result.y_true,
            "predicted": result.y_pred,
            "score": result.confidence.round(6),
            "correct": result.correct,
            "text": [mask_pii(str(t)) for t in shown],
        }
    ).to_csv(out / "predictions.csv", index=False)
    paths.append(out / "predictions.csv")
    return paths
