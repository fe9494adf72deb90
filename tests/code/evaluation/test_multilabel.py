"""Multi-label evaluation: the figures against scikit-learn's, thresholds per label, artifacts, and the
paired bootstrap the gate uses."""

import numpy as np
import pandas as pd
from sklearn.metrics import f1_score, hamming_loss

from training.config import EvaluateConfig
from training.data.labels import LABEL_JOIN
from training.evaluation.multilabel import (
    evaluate_multilabel,
    flat_metrics,
    paired_bootstrap_macro_f1,
    scores,
    write_artifacts,
)

LABELS = ["기쁨", "슬픔", "통증"]


def test_scores_match_scikit_learn():
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 2, size=(50, 3))
    decided = np.where(rng.random((50, 3)) < 0.8, truth, 1 - truth)
    s = scores(truth, decided)
    assert s["macro_f1"] == f1_score(truth, decided, average="macro")
    assert s["micro_f1"] == f1_score(truth, decided, average="micro")
    assert s["samples_f1"] == f1_score(truth, decided, average="samples", zero_division=0)
    assert s["hamming_loss"] == hamming_loss(truth, decided)
    assert s["accuracy"] == (truth == decided).all(1).mean()


def _keyword_model(texts):
    """Each label's probability from its keyword: 0.4 when present (below 0.5), 0.1 otherwise."""
    words = {"기쁨": "좋아", "슬픔": "슬퍼", "통증": "아파"}
    return np.array([[0.4 if words[lab] in t else 0.1 for lab in LABELS] for t in texts])


def test_each_label_is_decided_at_its_own_threshold_and_artifacts_are_written(tmp_path):
    test = pd.DataFrame(
        {
            "id": ["a", "b", "c", "d"],
            "text": ["좋아 슬퍼", "아파 010-1234-5678", "좋아", "슬퍼 아파"],
            "label": [f"기쁨{LABEL_JOIN}슬픔", "통증", "기쁨", f"슬픔{LABEL_JOIN}통증"],
        }
    )
    cfg = EvaluateConfig(latency_samples=2)
    at_half = evaluate_multilabel(_keyword_model, test, LABELS, [0.5, 0.5, 0.5], cfg)
    assert at_half.metrics["macro_f1"] == 0.0 and at_half.decided.sum() == 0
    tuned = evaluate_multilabel(_keyword_model, test, LABELS, [0.3, 0.3, 0.3], cfg)
    assert tuned.metrics["macro_f1"] == 1.0 and tuned.metrics["accuracy"] == 1.0
    assert list(tuned.y_pred) == list(test["label"])
    assert tuned.metrics["per_class"]["슬픔"] == {
        "precision": 1.0,
        "recall": 1.0,
        "f1": 1.0,
        "support": 2,
        "threshold": 0.3,
    }
    flat = flat_metrics(tuned)
    assert (
        flat["test_macro_f1"] == 1.0
        and flat["test_hamming_loss"] == 0.0
        and flat["test_threshold_통증"] == 0.3
    )
    paths = {p.name for p in write_artifacts(tuned, tmp_path)}
    assert {"per_label.png", "per_label.csv", "metrics.json", "predictions.csv"} <= paths
    rows = pd.read_csv(tmp_path / "predictions.csv")
    assert rows.loc[0, "labels"] == "기쁨,슬픔" and rows.loc[0, "predicted"] == "기쁨,슬픔"
    assert "010-1234-5678" not in (tmp_path / "predictions.csv").read_text(encoding="utf-8-sig")


def test_the_paired_bootstrap_sees_a_better_model_and_not_an_equal_one():
    rng = np.random.default_rng(1)
    truth = rng.integers(0, 2, size=(300, 4))
    weak = np.where(rng.random(truth.shape) < 0.7, truth, 1 - truth)
    strong = np.where(rng.random(truth.shape) < 0.95, truth, 1 - truth)
    delta, lo, hi = paired_bootstrap_macro_f1(truth, weak, strong, n=500)
    expected = f1_score(truth, strong, average="macro") - f1_score(truth, weak, average="macro")
    assert abs(delta - expected) < 1e-12 and 0 < lo < delta < hi
    same = paired_bootstrap_macro_f1(truth, weak, weak, n=200)
    assert same == (0.0, 0.0, 0.0)
    # Deterministic for a seed.
    assert paired_bootstrap_macro_f1(truth, weak, strong, n=200, seed=3) == paired_bootstrap_macro_f1(
        truth, weak, strong, n=200, seed=3
    )
