"""Training the `linear` family: one fit of the scikit-learn pipeline, scored on the validation split.

It answers with the same TrainResult as the transformer loop (one "epoch"), so the train step, the
sweep and the comparison treat every family alike."""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.metrics import f1_score, log_loss

from training.config import LinearConfig
from training.data.labels import indicator
from training.model.linear import fit_pipeline, ordered_proba
from training.trainer.loop import EpochCallback, TrainResult


def train_rows(train_df: pd.DataFrame, cfg: LinearConfig) -> pd.DataFrame:
    """The rows the linear model fits on: the original train rows unless `augmented_rows`."""
    if not cfg.augmented_rows and "aug_method" in train_df:
        return train_df[train_df["aug_method"] == "original"]
    return train_df


def train_linear(
    train_df: pd.DataFrame,
    val_df: pd.DataFrame,
    labels: Sequence[str],
    cfg: LinearConfig,
    *,
    seed: int = 0,
    on_epoch: EpochCallback | None = None,
    multilabel: bool = False,
):
    """(fitted pipeline, TrainResult). train_df/val_df: preprocessed text and label columns.
    `multilabel`: label sets, one-vs-rest; the validation macro-F1 is at a 0.5 threshold per label."""
    labels = list(labels)
    rows = train_rows(train_df, cfg)
    t0 = time.perf_counter()
    pipe = fit_pipeline(
        cfg,
        rows["text"].tolist(),
        rows["label"].tolist(),
        seed=seed,
        label_names=labels,
        multilabel=multilabel,
    )
    seconds = time.perf_counter() - t0
    idx = {lab: i for i, lab in enumerate(labels)}

    def loss(df: pd.DataFrame) -> float:
        p = np.clip(ordered_proba(pipe, df["text"].tolist(), labels), 1e-7, 1 - 1e-7)
        if multilabel:  # mean binary cross-entropy over labels, as the sigmoid head's loss
            y = indicator(df["label"], labels)
            return float(-(y * np.log(p) + (1 - y) * np.log(1 - p)).mean())
        return float(
            log_loss([idx[y] for y in df["label"]], p / p.sum(1, keepdims=True), labels=range(len(labels)))
        )

    val_proba = ordered_proba(pipe, val_df["text"].tolist(), labels)
    if multilabel:
        val_f1 = float(
            f1_score(indicator(val_df["label"], labels), val_proba >= 0.5, average="macro", zero_division=0)
        )
    else:
        val_pred = [labels[i] for i in val_proba.argmax(1)]
        val_f1 = float(f1_score(val_df["label"], val_pred, labels=labels, average="macro", zero_division=0))
    record = {"epoch": 1, "train_loss": loss(rows), "val_loss": loss(val_df), "val_macro_f1": val_f1}
    if on_epoch is not None:
        on_epoch(1, record)
    return pipe, TrainResult(
        best_val_macro_f1=val_f1,
        history=[record],
        epochs_run=1,
        steps=1,
        stopped_early=False,
        device="cpu",
        precision="fp64",
        samples_per_s=round(len(rows) / max(seconds, 1e-6), 1),
        best_epoch=1,
        stop_reason="epochs",
        extra={"fit_seconds": round(seconds, 3), "train_rows": len(rows)},
    )
