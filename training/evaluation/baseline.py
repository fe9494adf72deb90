"""The baseline every model is read against: the `linear` family with its default settings
(character n-gram TF-IDF + logistic regression, training/model/linear.py), fitted on the original
train rows and scored on the same frozen test split as the model.

`promote.require_beat_baseline` holds challengers to it; `heara run` prints it beside the model."""

from __future__ import annotations

import time

import pandas as pd
from sklearn.metrics import accuracy_score, f1_score

from training.config import LinearConfig
from training.errors import DataError
from training.model.linear import describe, fit_pipeline, ordered_proba


def _originals(train: pd.DataFrame) -> pd.DataFrame:
    """The train rows without the augmented ones: the baseline gets the plain data."""
    return train[train["aug_method"] == "original"] if "aug_method" in train else train


def tfidf_baseline(
    train: pd.DataFrame,
    test: pd.DataFrame,
    *,
    originals_only: bool = True,
    seed: int = 0,
    cfg: LinearConfig | None = None,
) -> dict:
    """Fit on train (augmented rows dropped by default: the baseline gets the plain data), score on test."""
    cfg = cfg or LinearConfig()
    train = _originals(train) if originals_only else train
    if train["label"].nunique() < 2 or test.empty:
        raise DataError(
            f"the baseline needs train rows of two or more labels and a test split "
            f"(got {len(train)} train rows of {train['label'].nunique()} labels, {len(test)} test rows)"
        )
    t0 = time.perf_counter()
    pipe = fit_pipeline(cfg, train["text"].tolist(), train["label"].tolist(), seed=seed)
    labels = sorted(set(train["label"]))
    pred = [labels[i] for i in ordered_proba(pipe, test["text"].tolist(), labels).argmax(1)]
    return {
        "baseline": describe(cfg),
        "train_rows": int(len(train)),
        "test_rows": int(len(test)),
        # Not rounded: the gate holds a challenger's macro-F1 against this figure (a linear model with the
        # same settings scores exactly the same, and must pass)
        "test_macro_f1": float(f1_score(test["label"], pred, average="macro")),
        "test_accuracy": float(accuracy_score(test["label"], pred)),
        "fit_seconds": round(time.perf_counter() - t0, 2),
    }


def tfidf_baseline_multilabel(
    train: pd.DataFrame,
    test: pd.DataFrame,
    *,
    val: pd.DataFrame | None = None,
    originals_only: bool = True,
    seed: int = 0,
    cfg: LinearConfig | None = None,
) -> dict:
    """The baseline of a multi-label task: the same TF-IDF, one logistic regression per label
    (one-vs-rest), each label decided at a threshold tuned on `val` as the `linear` family tunes its own
    (at 0.5 without a validation split). It is then exactly what the linear family trains with its
    defaults, as the single-label baseline is, so `heara run`'s linear fallback reaches it."""
    from training.data.labels import decide, indicator, label_counts, tune_thresholds
    from training.evaluation.multilabel import macro_f1

    cfg = cfg or LinearConfig()
    train = _originals(train) if originals_only else train
    labels = sorted(set(label_counts(train["label"], True)) | set(label_counts(test["label"], True)))
    if len(labels) < 2 or train.empty or test.empty:
        raise DataError(
            f"the baseline needs train rows of two or more labels and a test split "
            f"(got {len(train)} train rows of {len(labels)} labels, {len(test)} test rows)"
        )
    t0 = time.perf_counter()
    pipe = fit_pipeline(
        cfg, train["text"].tolist(), train["label"].tolist(), seed=seed, label_names=labels, multilabel=True
    )
    thresholds = [0.5] * len(labels)
    if val is not None and not val.empty:
        val_probs = ordered_proba(pipe, val["text"].tolist(), labels)
        thresholds, _ = tune_thresholds(val_probs, indicator(val["label"], labels))
    decided = decide(ordered_proba(pipe, test["text"].tolist(), labels), thresholds) > 0
    truth = indicator(test["label"], labels) > 0
    return {
        "baseline": describe(cfg) + " one-vs-rest",
        "train_rows": int(len(train)),
        "test_rows": int(len(test)),
        "test_macro_f1": macro_f1(truth, decided),
        "test_micro_f1": float(f1_score(truth, decided, average="micro", zero_division=0)),
        "test_accuracy": float((truth == decided).all(axis=1).mean()),
        "thresholds": dict(zip(labels, thresholds)),
        "fit_seconds": round(time.perf_counter() - t0, 2),
    }
