"""The confusion matrix's ranked pairs (training/evaluation/confusion.py)."""

from __future__ import annotations

import numpy as np
import pytest

from training.evaluation.confusion import confused_pairs


def test_confused_pairs_most_rows_first():
    labels = ["a", "b", "c"]
    cm = np.array([[5, 3, 1], [0, 2, 2], [1, 0, 0]])
    assert confused_pairs(cm, labels) == [
        {"true": "a", "predicted": "b", "count": 3, "share": pytest.approx(3 / 9)},
        {"true": "b", "predicted": "c", "count": 2, "share": 0.5},
        {"true": "c", "predicted": "a", "count": 1, "share": 1.0},  # of equal counts, the larger share first
        {"true": "a", "predicted": "c", "count": 1, "share": pytest.approx(1 / 9)},
    ]
    assert [(p["true"], p["predicted"]) for p in confused_pairs(cm, labels, top=2)] == [
        ("a", "b"),
        ("b", "c"),
    ]
    assert confused_pairs(np.eye(3, dtype=int), labels) == []
