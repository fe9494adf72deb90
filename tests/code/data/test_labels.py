"""The label column of multi-label tasks: cells, joined sets, counts, indicator matrices, thresholds."""

import numpy as np
import pandas as pd
import pytest

from training.config import ValidateConfig
from training.data.labels import (
    LABEL_JOIN,
    decide,
    indicator,
    join_labels,
    label_counts,
    row_labels,
    split_cell,
    tune_thresholds,
)
from training.data.validate import validate
from training.errors import ConfigError, DataError


def test_a_cell_is_split_trimmed_and_each_label_kept_once():
    assert split_cell(" 기쁨, 놀람 ,기쁨,, ", ",") == ["기쁨", "놀람"]
    assert split_cell("기쁨;슬픔", ";") == ["기쁨", "슬픔"]
    # Decomposed Hangul (a macOS export) is the same label as the composed one.
    assert split_cell("\u1100\u1175\u1108\u1173\u11b7,슬픔", ",") == ["기쁨", "슬픔"]


def test_joined_sets_follow_the_label_set_order_and_read_back():
    order = ["슬픔", "기쁨", "분노"]
    value = join_labels(["분노", "기쁨"], order)
    assert value == f"기쁨{LABEL_JOIN}분노"
    assert row_labels(value) == ["기쁨", "분노"]
    assert row_labels("a|b", multilabel=False) == ["a|b"]
    assert label_counts(["a|b", "b", "a|b|c"], True) == {"a": 2, "b": 3, "c": 1}
    assert label_counts(["a|b", "b"], False) == {"a|b": 1, "b": 1}


def test_indicator_is_multi_hot_and_names_unknown_labels():
    y = indicator(["a|c", "b", "a"], ["a", "b", "c"])
    assert y.tolist() == [[1, 0, 1], [0, 1, 0], [1, 0, 0]]
    with pytest.raises(ConfigError, match=r"\['z'\]"):
        indicator(["a|z"], ["a", "b"])


def test_thresholds_maximise_each_labels_f1():
    rng = np.random.default_rng(0)
    truth = np.zeros((200, 2), dtype=int)
    truth[:80, 0] = 1
    truth[::3, 1] = 1
    probs = np.where(truth == 1, 0.35, 0.15) + rng.uniform(-0.05, 0.05, truth.shape)
    thresholds, f1 = tune_thresholds(probs, truth)
    # Positives sit around 0.35 and negatives around 0.15: 0.5 finds none, the tuned cut separates them.
    assert 0.2 <= thresholds[0] <= 0.3 and f1[0] == 1.0
    assert (decide(probs, thresholds) == truth).all()
    # A label with no positive row keeps 0.5 (nothing to tune on).
    t, f = tune_thresholds(probs, np.zeros_like(truth))
    assert t == [0.5, 0.5] and f == [0.0, 0.0]


def _raw(labels: list[str]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": [f"r{i}" for i in range(len(labels))],
            "text": [f"문장 {i}번 입니다" for i in range(len(labels))],
            "label": labels,
            "source_file": "f.csv",
            "source_row": range(len(labels)),
        }
    )


def test_validation_keeps_every_label_of_a_row_and_quarantines_unknown_ones():
    cells = ["기쁨,감사"] * 12 + ["슬픔, 기쁨"] * 12 + ["감사"] * 12 + ["슬픔,화남"] + [" , "]
    cfg = ValidateConfig(min_rows_per_class=10)
    valid, quarantined, report = validate(_raw(cells), ["기쁨", "슬픔", "감사"], cfg, label_sep=",")
    assert set(valid["label"]) == {f"기쁨{LABEL_JOIN}감사", f"기쁨{LABEL_JOIN}슬픔", "감사"}
    assert report["per_class"] == {"기쁨": 24, "슬픔": 12, "감사": 24}
    assert report["task_type"] == "multilabel"
    assert report["labels_per_row"]["histogram"] == {"1": 12, "2": 24}
    reasons = dict(zip(quarantined["id"], quarantined["reason"]))
    assert "'화남' is not in the label set" in reasons["r36"]
    assert "no label left" in reasons["r37"]


def test_a_label_list_column_trained_as_single_label_says_how_to_train_it():
    cells = ["기쁨,감사"] * 12 + ["슬픔"] * 12 + ["감사"] * 12
    with pytest.raises(DataError, match=r"--multilabel --label-sep ','"):
        validate(_raw(cells), None, ValidateConfig(min_rows_per_class=10))
