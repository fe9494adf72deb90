"""The label column of a multi-label task (`task_type: multilabel`), and how every layer reads it.

A multi-label row keeps its labels in the one `label` column, joined by `LABEL_JOIN` in label-set order
("기쁨|놀람"). The tables, their content hashes, the conflict check, deduplication and the parquet files
then stay as they are for both task types; what needs the labels one by one (counting, stratifying,
training targets, metrics) goes through the functions here. A label name may not contain `LABEL_JOIN`
in a multi-label task (validation quarantines such rows).

Single-label tasks never go through `split_cell`: their label column holds one label per row.
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np

from training.errors import ConfigError

LABEL_JOIN = "|"


def split_cell(cell: str, sep: str) -> list[str]:
    """A raw label cell ("기쁨, 놀람 ,기쁨") -> its labels, trimmed, NFC, each once, in cell order."""
    out: list[str] = []
    for part in str(cell).split(sep):
        part = unicodedata.normalize("NFC", part).strip()
        if part and part not in out:
            out.append(part)
    return out


def join_labels(labels: Iterable[str], order: Sequence[str] | None = None) -> str:
    """Labels -> the label column's value: in `order` (the label set) when given, else sorted."""
    labels = set(labels)
    if order is not None:
        rank = {lab: i for i, lab in enumerate(order)}
        return LABEL_JOIN.join(sorted(labels, key=lambda lab: (rank.get(lab, len(rank)), lab)))
    return LABEL_JOIN.join(sorted(labels))


def row_labels(value: str, multilabel: bool = True) -> list[str]:
    """One row's labels from its label column."""
    if not multilabel:
        return [str(value)]
    return str(value).split(LABEL_JOIN) if value else []


def label_counts(column: Iterable[str], multilabel: bool) -> Counter:
    """Rows per label (a multi-label row counts once for each of its labels)."""
    if not multilabel:
        return Counter(map(str, column))
    return Counter(lab for value in column for lab in row_labels(value))


def indicator(column: Iterable[str], labels: Sequence[str]) -> np.ndarray:
    """Label column -> a 0/1 matrix [rows, labels] (float32) in `labels` order.

    Raises ConfigError naming labels that are not in `labels` (another task's label set)."""
    index = {lab: j for j, lab in enumerate(labels)}
    values = list(column)
    out = np.zeros((len(values), len(labels)), dtype=np.float32)
    unknown: set[str] = set()
    for i, value in enumerate(values):
        for lab in row_labels(value):
            j = index.get(lab)
            if j is None:
                unknown.add(lab)
            else:
                out[i, j] = 1.0
    if unknown:
        raise ConfigError(
            f"labels {sorted(unknown)} are not among the model's labels {list(labels)}: "
            "set `labels` for this data (a prepared folder's dataset.json does)"
        )
    return out


def decide(probs: np.ndarray, thresholds: Sequence[float]) -> np.ndarray:
    """Probabilities [n, k] -> 0/1 decisions: each label where its probability reaches its threshold."""
    return (np.asarray(probs) >= np.asarray(thresholds, dtype=np.float32)[None, :]).astype(np.int8)


def tune_thresholds(
    probs: np.ndarray, truth: np.ndarray, grid: Sequence[float] | None = None
) -> tuple[list[float], list[float]]:
    """Per-label decision thresholds that maximise each label's F1 on (validation) rows:
    (thresholds, the F1 each reaches). A label without positive rows keeps 0.5.

    The candidates are a fixed grid (0.05 .. 0.95), not every distinct score, so that a handful of
    validation rows cannot pin a threshold to one row's score; ties go to the threshold nearest 0.5."""
    grid = np.asarray(grid if grid is not None else np.round(np.arange(0.05, 0.951, 0.05), 2))
    probs, truth = np.asarray(probs, dtype=np.float64), np.asarray(truth) > 0
    thresholds, f1s = [], []
    for j in range(probs.shape[1]):
        pos = truth[:, j]
        if not pos.any():
            thresholds.append(0.5)
            f1s.append(0.0)
            continue
        pred = probs[:, j][:, None] >= grid[None, :]  # [n, grid]
        tp = (pred & pos[:, None]).sum(0)
        fp = (pred & ~pos[:, None]).sum(0)
        fn = pos.sum() - tp
        f1 = np.where(tp > 0, 2 * tp / np.maximum(2 * tp + fp + fn, 1), 0.0)
        best = np.flatnonzero(f1 == f1.max())
        pick = best[np.argmin(np.abs(grid[best] - 0.5))]
        thresholds.append(float(grid[pick]))
        f1s.append(float(f1[pick]))
    return thresholds, f1s
